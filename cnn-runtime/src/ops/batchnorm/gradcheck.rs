//! Finite-difference checks of batchnorm in both modes (see
//! [`crate::testing`]), with and without gamma and beta, and its forward pass
//! against a direct f64 reference.

use super::*;
use crate::testing::{dot, fd_check, noise};

/// One batchnorm under test: its mode, options, moving statistics and input.
struct Bn {
    train: bool,
    scale: bool,
    center: bool,
    c: usize,
    eps: f32,
    mean: Vec<f32>,
    var: Vec<f32>,
}

impl Bn {
    /// Training or inference forward of the whole batch, as the checks perturb it.
    fn forward(&self, x: &[f32], gamma: &[f32], beta: &[f32]) -> Vec<f32> {
        let (c, eps) = (self.c, self.eps);
        let (gamma, beta) = (self.scale.then_some(gamma), self.center.then_some(beta));
        let mut y = vec![f32::NAN; x.len()];
        let (mut a, mut b) = (vec![0f32; c], vec![0f32; c]);
        if self.train {
            train_forward(c, eps, gamma, beta, x, &mut y, &mut a, &mut b);
        } else {
            fold(eps, gamma, beta, &self.mean, &self.var, &mut a, &mut b);
            scale_shift(&a, &b, x, &mut y);
        }
        y
    }

    /// The definition in f64: `(x - mu) / sqrt(s2 + eps) * gamma + beta`, with
    /// the batch's (biased) or the moving statistics.
    fn reference(&self, x: &[f32], gamma: &[f32], beta: &[f32]) -> Vec<f64> {
        let c = self.c;
        let mut y = vec![0f64; x.len()];
        for j in 0..c {
            let col: Vec<f64> = x.iter().skip(j).step_by(c).map(|v| f64::from(*v)).collect();
            let n = col.len() as f64;
            let (mu, s2) = if self.train {
                let mu = col.iter().sum::<f64>() / n;
                (mu, col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n)
            } else {
                (f64::from(self.mean[j]), f64::from(self.var[j]))
            };
            for (r, v) in col.iter().enumerate() {
                let g = if self.scale { f64::from(gamma[j]) } else { 1.0 };
                let b = if self.center { f64::from(beta[j]) } else { 0.0 };
                y[r * c + j] = (v - mu) / (s2 + f64::from(self.eps)).sqrt() * g + b;
            }
        }
        y
    }
}

fn check(train: bool, scale: bool, center: bool, rows: usize, c: usize) {
    let tag = format!("train {train} scale {scale} center {center} {rows}x{c}");
    let bn = Bn {
        train,
        scale,
        center,
        c,
        eps: 1e-3,
        mean: noise(c, 4),
        var: noise(c, 5).iter().map(|v| 0.5 + v.abs()).collect(),
    };
    // Channels with different offsets and spreads, so normalising matters.
    let mut x: Vec<f32> = noise(rows * c, 1)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i % c) as f32) + (i % c) as f32 * 0.5)
        .collect();
    let mut gamma: Vec<f32> = noise(c, 2).iter().map(|v| 1.0 + 0.5 * v).collect();
    let mut beta = noise(c, 3);
    let g = noise(rows * c, 6);

    let y = bn.forward(&x, &gamma, &beta);
    for (got, want) in y.iter().zip(bn.reference(&x, &gamma, &beta)) {
        let got = f64::from(*got);
        assert!(
            (got - want).abs() < 1e-5 * (1.0 + want.abs()),
            "{tag}: {got} vs {want}"
        );
    }

    let (mut dx, mut dgamma, mut dbeta) = (
        vec![f32::NAN; x.len()],
        vec![f32::NAN; c],
        vec![f32::NAN; c],
    );
    let grads = BatchNormGrads {
        dx: Some(&mut dx),
        dgamma: scale.then_some(&mut dgamma[..]),
        dbeta: center.then_some(&mut dbeta[..]),
    };
    let gm = scale.then_some(&gamma[..]);
    if train {
        let (mut bm, mut bv, mut y) = (vec![0f32; c], vec![0f32; c], vec![0f32; x.len()]);
        train_forward(
            c,
            bn.eps,
            gm,
            center.then_some(&beta[..]),
            &x,
            &mut y,
            &mut bm,
            &mut bv,
        );
        let n = Norm {
            c,
            eps: bn.eps,
            gamma: gm,
            mean: &bm,
            var: &bv,
        };
        batchnorm_backward(true, n, &x, &g, grads, &mut Vec::new());
    } else {
        let n = Norm {
            c,
            eps: bn.eps,
            gamma: gm,
            mean: &bn.mean,
            var: &bn.var,
        };
        batchnorm_backward(false, n, &x, &g, grads, &mut Vec::new());
    }

    let (x0, g0, b0) = (x.clone(), gamma.clone(), beta.clone());
    let loss = |x: &[f32], gm: &[f32], bt: &[f32]| dot(&bn.forward(x, gm, bt), &g);
    let h = 1e-2;
    fd_check(&format!("{tag} dx"), &mut x, &dx, h, 2e-3, |v| {
        loss(v, &g0, &b0)
    });
    if scale {
        fd_check(
            &format!("{tag} dgamma"),
            &mut gamma,
            &dgamma,
            h,
            2e-3,
            |v| loss(&x0, v, &b0),
        );
    }
    if center {
        fd_check(&format!("{tag} dbeta"), &mut beta, &dbeta, h, 2e-3, |v| {
            loss(&x0, &g0, v)
        });
    }
    // Training mode: the output of every channel is centred, so the input
    // gradient sums to zero over the batch.
    if train {
        for j in 0..c {
            let s: f64 = dx.iter().skip(j).step_by(c).map(|v| f64::from(*v)).sum();
            assert!(s.abs() < 1e-4, "{tag}: dx of channel {j} sums to {s}");
        }
    }
}

#[test]
fn batchnorm_gradients_match_finite_differences() {
    for train in [true, false] {
        for (scale, center) in [(true, true), (false, true), (true, false), (false, false)] {
            // A dense layer's output (few positions) and a conv's (many).
            check(train, scale, center, 6, 3);
            check(train, scale, center, 2 * 5 * 5, 4);
        }
    }
}

#[test]
fn moving_statistics_follow_keras_update() {
    let mut moving = vec![1.0f32, -2.0, 0.5];
    moving_update(0.9, &[3.0, 0.0, 0.5], &mut moving);
    let want = [1.0 * 0.9 + 3.0 * 0.1, -2.0 * 0.9, 0.5];
    for (m, w) in moving.iter().zip(want) {
        assert!((m - w).abs() < 1e-6, "{m} vs {w}");
    }
    // Biased variance: over 1, 2, 3, 4 it is 1.25 (the unbiased one is 5/3).
    let (mut mean, mut var) = ([0f32], [0f32]);
    batch_moments(
        1,
        &[1.0, 2.0, 3.0, 4.0],
        &mut mean,
        &mut var,
        &mut Vec::new(),
    );
    assert_eq!((mean[0], var[0]), (2.5, 1.25));
}
