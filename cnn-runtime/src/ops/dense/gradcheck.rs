//! Finite-difference gradient checks of the dense layer (see
//! [`crate::testing`]), and its forward pass against an f64 reference.

use super::{dense_backward, dense_forward};
use crate::ops::activation::activation_backward;
use crate::testing::{dot, fd_check, noise, ACTIVATIONS};
use crate::{Activation, DenseSpec};

fn check_dense(inputs: usize, units: usize, act: Activation, batch: usize) {
    let spec = DenseSpec { inputs, units };
    let x = noise(batch * inputs, 11);
    let k = noise(inputs * units, 12);
    let b = noise(units, 13);
    let g = noise(batch * units, 14);
    let fwd = |x: &[f32], k: &[f32], b: &[f32]| {
        let mut y = vec![f32::NAN; batch * units];
        dense_forward(&spec, act, batch, x, k, Some(b), &mut y);
        y
    };
    if act == Activation::Linear {
        let y = fwd(&x, &k, &b);
        for n in 0..batch {
            for u in 0..units {
                let want: f64 = b[u] as f64
                    + (0..inputs)
                        .map(|i| x[n * inputs + i] as f64 * k[i * units + u] as f64)
                        .sum::<f64>();
                assert!((y[n * units + u] as f64 - want).abs() < 1e-4 * (1.0 + want.abs()));
            }
        }
    }
    let y = fwd(&x, &k, &b);
    let mut dz = vec![0f32; y.len()];
    activation_backward(act, units, &y, &g, &mut dz);
    let mut dx = vec![f32::NAN; x.len()];
    let mut dk = vec![f32::NAN; k.len()];
    let mut db = vec![f32::NAN; units];
    dense_backward(
        &spec,
        batch,
        &x,
        &k,
        &dz,
        Some(&mut dx),
        &mut dk,
        Some(&mut db),
    );
    let h = if act == Activation::Linear {
        1e-2
    } else {
        2e-3
    };
    let (mut xv, mut kv, mut bv) = (x.clone(), k.clone(), b.clone());
    fd_check("dense dx", &mut xv, &dx, h, 2e-3, |xx| {
        dot(&fwd(xx, &k, &b), &g)
    });
    fd_check("dense dk", &mut kv, &dk, h, 2e-3, |kk| {
        dot(&fwd(&x, kk, &b), &g)
    });
    fd_check("dense db", &mut bv, &db, h, 2e-3, |bb| {
        dot(&fwd(&x, &k, bb), &g)
    });
}

#[test]
fn dense_all_activations() {
    for act in ACTIVATIONS {
        check_dense(7, 5, act, 3);
    }
    check_dense(300, 70, Activation::Linear, 33);
}
