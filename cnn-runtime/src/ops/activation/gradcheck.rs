//! Finite-difference gradient checks of the activations (see
//! [`crate::testing`]), and their forward values against f64 formulas.

use super::{activation_backward, activation_forward};
use crate::testing::{dot, fd_check, noise, ACTIVATIONS};
use crate::Activation;

#[test]
fn activations_forward_and_backward() {
    let z: Vec<f32> = noise(60, 21).iter().map(|v| v * 6.0).collect();
    let g = noise(60, 22);
    for act in ACTIVATIONS {
        let ch = 6;
        let f = |z: &[f32]| {
            let mut y = vec![0f32; z.len()];
            activation_forward(act, ch, z, &mut y);
            y
        };
        let y = f(&z);
        // forward against f64 formulas
        for (r, (yr, zr)) in y.chunks(ch).zip(z.chunks(ch)).enumerate() {
            let zs: Vec<f64> = zr.iter().map(|&v| v as f64).collect();
            let mx = zs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let se: f64 = zs.iter().map(|v| (v - mx).exp()).sum();
            for (j, &yv) in yr.iter().enumerate() {
                let zv = zs[j];
                let want = match act {
                    Activation::Linear => zv,
                    Activation::Relu => zv.max(0.0),
                    Activation::Sigmoid => 1.0 / (1.0 + (-zv).exp()),
                    Activation::Tanh => zv.tanh(),
                    Activation::Softmax => (zv - mx).exp() / se,
                    // The language-2 activations are checked in pointwise.rs.
                    _ => unreachable!("only language-1 activations here"),
                };
                assert!(
                    (yv as f64 - want).abs() < 2e-7 * (1.0 + want.abs()) * 4.0,
                    "{act:?} row {r}: {yv} vs {want}"
                );
            }
        }
        let mut dz = vec![0f32; 60];
        activation_backward(act, ch, &y, &g, &mut dz);
        let mut zv = z.clone();
        fd_check(&format!("{act:?}"), &mut zv, &dz, 1e-3, 2e-3, |zz| {
            dot(&f(zz), &g)
        });
    }
    // relu'(0) = 0
    let mut dz = [1f32; 2];
    activation_backward(Activation::Relu, 1, &[0.0, 0.0], &[1.0, -1.0], &mut dz);
    assert_eq!(dz, [0.0, 0.0]);
}

#[test]
fn cells_apart_give_the_plain_bits_forward_and_backward() {
    // A concat's channels written in place: the forward pass writes them,
    // the backward pass reads the output from them.
    use super::{activation_backward_cells, activation_forward_cells};
    use crate::testing::assert_cells_agree;
    let (ch, cells) = (6, 7);
    let z: Vec<f32> = noise(ch * cells, 31).iter().map(|v| v * 4.0).collect();
    let g = noise(ch * cells, 32);
    for act in ACTIVATIONS
        .into_iter()
        .filter(|&a| a != Activation::Softmax)
    {
        assert_cells_agree(&format!("{act:?}"), cells, ch, |y| {
            activation_forward_cells(act, ch, &z, y)
        });
        let mut y = vec![0f32; z.len()];
        activation_forward(act, ch, &z, &mut y);
        let stride = ch + 4;
        let mut wide = vec![f32::NAN; cells * stride];
        for (w, c) in wide.chunks_exact_mut(stride).zip(y.chunks_exact(ch)) {
            w[2..2 + ch].copy_from_slice(c);
        }
        let (mut plain, mut strided) = (vec![0f32; z.len()], vec![0f32; z.len()]);
        activation_backward_cells(act, ch, Some(&z), (&y, ch), &g, &mut plain);
        activation_backward_cells(act, ch, Some(&z), (&wide[2..], stride), &g, &mut strided);
        assert_eq!(plain, strided, "{act:?} backward");
        if act.from_output() {
            activation_backward(act, ch, &y, &g, &mut plain);
            activation_backward_cells(act, ch, None, (&wide[2..], stride), &g, &mut strided);
            assert_eq!(plain, strided, "{act:?} backward from the output");
        }
    }
}
