//! Finite-difference checks of batchnorm in both modes (see
//! [`crate::ops::gradcheck`]), with and without gamma and beta, and its forward
//! pass against a direct f64 reference.

use super::*;
use crate::testing::{dot, fd_check, noise, Fd};

/// Training or inference forward of the whole batch, as the checks perturb it.
#[allow(clippy::too_many_arguments)]
fn forward(
    train: bool,
    c: usize,
    eps: f32,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    mean: &[f32],
    var: &[f32],
    x: &[f32],
) -> Vec<f32> {
    let mut y = vec![f32::NAN; x.len()];
    if train {
        let (mut m, mut v) = (vec![0f32; c], vec![0f32; c]);
        train_forward(c, eps, gamma, beta, x, &mut y, &mut m, &mut v);
    } else {
        let (mut a, mut b) = (vec![0f32; c], vec![0f32; c]);
        fold(eps, gamma, beta, mean, var, &mut a, &mut b);
        scale_shift(&a, &b, x, &mut y);
    }
    y
}

fn check(train: bool, scale: bool, center: bool, rows: usize, c: usize) {
    let eps = 1e-3;
    let tag = format!("train {train} scale {scale} center {center} {rows}x{c}");
    // Channels with different offsets and spreads, so normalising matters.
    let x: Vec<f32> = noise(rows * c, 1)
        .iter()
        .enumerate()
        .map(|(i, v)| v * (1.0 + (i % c) as f32) + (i % c) as f32 * 0.5)
        .collect();
    let mut gamma: Vec<f32> = noise(c, 2).iter().map(|v| 1.0 + 0.5 * v).collect();
    let mut beta = noise(c, 3);
    let mean = noise(c, 4);
    let var: Vec<f32> = noise(c, 5).iter().map(|v| 0.5 + v.abs()).collect();
    let g = noise(rows * c, 6);

    // The forward against the definition, in f64.
    let y = forward(
        train,
        c,
        eps,
        scale.then_some(&gamma[..]),
        center.then_some(&beta[..]),
        &mean,
        &var,
        &x,
    );
    for j in 0..c {
        let col: Vec<f64> = x.iter().skip(j).step_by(c).map(|v| f64::from(*v)).collect();
        let (mu, s2) = if train {
            let mu = col.iter().sum::<f64>() / col.len() as f64;
            let s2 = col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / col.len() as f64;
            (mu, s2)
        } else {
            (f64::from(mean[j]), f64::from(var[j]))
        };
        for (r, v) in col.iter().enumerate() {
            let mut want = (v - mu) / (s2 + f64::from(eps)).sqrt();
            if scale {
                want *= f64::from(gamma[j]);
            }
            if center {
                want += f64::from(beta[j]);
            }
            let got = f64::from(y[r * c + j]);
            assert!(
                (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{tag}: {got} vs {want}"
            );
        }
    }

    let mut dx = vec![f32::NAN; x.len()];
    let mut dgamma = vec![f32::NAN; c];
    let mut dbeta = vec![f32::NAN; c];
    let (mut bm, mut bv) = (vec![0f32; c], vec![0f32; c]);
    if train {
        let mut y = vec![0f32; x.len()];
        train_forward(
            c,
            eps,
            scale.then_some(&gamma[..]),
            center.then_some(&beta[..]),
            &x,
            &mut y,
            &mut bm,
            &mut bv,
        );
    }
    let grads = BatchNormGrads {
        dx: Some(&mut dx),
        dgamma: scale.then_some(&mut dgamma[..]),
        dbeta: center.then_some(&mut dbeta[..]),
    };
    let back = if train {
        train_backward
    } else {
        inference_backward
    };
    let (sm, sv) = if train { (&bm, &bv) } else { (&mean, &var) };
    back(c, eps, scale.then_some(&gamma[..]), sm, sv, &x, &g, grads);

    let (gm, bt) = (gamma.clone(), beta.clone());
    let h = 1e-2;
    fd_check(
        Fd::Sampled,
        &format!("{tag} dx"),
        &mut x.clone(),
        &dx,
        h,
        2e-3,
        |xp| {
            let y = forward(
                train,
                c,
                eps,
                scale.then_some(&gm[..]),
                center.then_some(&bt[..]),
                &mean,
                &var,
                xp,
            );
            dot(&y, &g)
        },
    );
    if scale {
        fd_check(
            Fd::Sampled,
            &format!("{tag} dgamma"),
            &mut gamma,
            &dgamma,
            h,
            2e-3,
            |gp| {
                let y = forward(
                    train,
                    c,
                    eps,
                    Some(gp),
                    center.then_some(&bt[..]),
                    &mean,
                    &var,
                    &x,
                );
                dot(&y, &g)
            },
        );
    }
    if center {
        fd_check(
            Fd::Sampled,
            &format!("{tag} dbeta"),
            &mut beta,
            &dbeta,
            h,
            2e-3,
            |bp| {
                let y = forward(
                    train,
                    c,
                    eps,
                    scale.then_some(&gm[..]),
                    Some(bp),
                    &mean,
                    &var,
                    &x,
                );
                dot(&y, &g)
            },
        );
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
    batch_moments(1, &[1.0, 2.0, 3.0, 4.0], &mut mean, &mut var);
    assert_eq!((mean[0], var[0]), (2.5, 1.25));
}
