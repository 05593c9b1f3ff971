//! Finite-difference gradient checks of every op and option combination.
//!
//! For an op `y = f(x, K, b)` and a fixed random `g`, the scalar loss is
//! `L = sum(y * g)` (accumulated in f64). The analytic gradients from the op's
//! backward (with `dy = g`) are compared with central differences of `L`. The
//! ops run in f32, so steps are moderately large (`h = 1e-2`, exact for the
//! ops that are linear in the perturbed tensor) and the tolerance is relative
//! to the largest gradient of the tensor: an indexing bug gives O(1) errors,
//! rounding gives about 1e-4.
//!
//! Forward values are also checked against a naive f64 reference, so that a
//! wrong forward with a consistent backward cannot pass.

use cnn_runtime::ops::{
    activation_backward, activation_forward, conv2d_backward, conv2d_forward, dense_backward,
    dense_forward, pool2d_backward, pool2d_forward, Conv2dScratch,
};
use cnn_runtime::{Activation, Conv2dSpec, DenseSpec, Pool2dSpec, PoolKind};

fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e3779b97f4a7c15).wrapping_add(12345);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn dot(y: &[f32], g: &[f32]) -> f64 {
    y.iter().zip(g).map(|(a, b)| *a as f64 * *b as f64).sum()
}

/// Checks `analytic` against central differences of `loss` over (a sample of)
/// the entries of `v`.
fn fd_check(
    what: &str,
    v: &mut [f32],
    analytic: &[f32],
    h: f32,
    tol: f64,
    mut loss: impl FnMut(&[f32]) -> f64,
) {
    assert_eq!(v.len(), analytic.len());
    let scale = analytic
        .iter()
        .fold(0f64, |a, &b| a.max(b.abs() as f64))
        .max(1e-3);
    let step = (v.len() / 150).max(1);
    let mut worst = 0f64;
    for i in (0..v.len()).step_by(step) {
        let old = v[i];
        v[i] = old + h;
        let lp = loss(v);
        v[i] = old - h;
        let lm = loss(v);
        v[i] = old;
        let num = (lp - lm) / (2.0 * (h as f64));
        let err = (num - analytic[i] as f64).abs() / scale;
        worst = worst.max(err);
        assert!(
            err <= tol,
            "{what}[{i}]: numeric {num} vs analytic {} (scale {scale})",
            analytic[i]
        );
    }
    assert!(worst.is_finite());
}

fn same(n: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let e = (k - 1) * d + 1;
    let out = n.div_ceil(s);
    let total = ((out - 1) * s + e).saturating_sub(n);
    (out, total / 2)
}

fn valid(n: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let e = (k - 1) * d + 1;
    ((n - e) / s + 1, 0)
}

#[allow(clippy::too_many_arguments)]
fn conv_spec(
    h: usize,
    w: usize,
    c: usize,
    f: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    dh: usize,
    dw: usize,
    is_same: bool,
) -> Conv2dSpec {
    let ax = if is_same { same } else { valid };
    let (oh, pt) = ax(h, kh, sh, dh);
    let (ow, pl) = ax(w, kw, sw, dw);
    Conv2dSpec {
        in_h: h,
        in_w: w,
        in_c: c,
        out_h: oh,
        out_w: ow,
        out_c: f,
        kh,
        kw,
        sh,
        sw,
        dh,
        dw,
        pad_top: pt,
        pad_left: pl,
    }
}

/// Naive f64 convolution (pre-activation).
fn conv_ref(s: &Conv2dSpec, batch: usize, x: &[f32], k: &[f32], b: &[f32]) -> Vec<f64> {
    let mut y = vec![0f64; batch * s.out_h * s.out_w * s.out_c];
    for n in 0..batch {
        for oh in 0..s.out_h {
            for ow in 0..s.out_w {
                for o in 0..s.out_c {
                    let mut acc = b[o] as f64;
                    for a in 0..s.kh {
                        for bb in 0..s.kw {
                            let ih = (oh * s.sh + a * s.dh) as isize - s.pad_top as isize;
                            let iw = (ow * s.sw + bb * s.dw) as isize - s.pad_left as isize;
                            if ih < 0 || iw < 0 || ih as usize >= s.in_h || iw as usize >= s.in_w {
                                continue;
                            }
                            for c in 0..s.in_c {
                                let xv = x[((n * s.in_h + ih as usize) * s.in_w + iw as usize)
                                    * s.in_c
                                    + c] as f64;
                                acc += xv * k[((a * s.kw + bb) * s.in_c + c) * s.out_c + o] as f64;
                            }
                        }
                    }
                    y[((n * s.out_h + oh) * s.out_w + ow) * s.out_c + o] = acc;
                }
            }
        }
    }
    y
}

fn check_conv(s: Conv2dSpec, act: Activation, batch: usize) {
    let x = noise(batch * s.in_h * s.in_w * s.in_c, 1);
    let k = noise(s.kh * s.kw * s.in_c * s.out_c, 2);
    let b = noise(s.out_c, 3);
    let ylen = batch * s.out_h * s.out_w * s.out_c;
    let g = noise(ylen, 4);
    let mut scratch = Conv2dScratch::default();
    let fwd = |x: &[f32], k: &[f32], b: &[f32], scratch: &mut Conv2dScratch| {
        let mut y = vec![f32::NAN; ylen];
        conv2d_forward(&s, act, batch, x, k, b, &mut y, scratch);
        y
    };
    // forward against the f64 reference (linear activation)
    if act == Activation::Linear {
        let y = fwd(&x, &k, &b, &mut scratch);
        let r = conv_ref(&s, batch, &x, &k, &b);
        for (a, w) in y.iter().zip(&r) {
            assert!(
                (*a as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{s:?}: forward {a} vs {w}"
            );
        }
    }
    let y = fwd(&x, &k, &b, &mut scratch);
    let mut dz = vec![0f32; ylen];
    activation_backward(act, s.out_c, &y, &g, &mut dz);
    let mut dx = vec![f32::NAN; x.len()];
    let mut dk = vec![f32::NAN; k.len()];
    let mut db = vec![f32::NAN; b.len()];
    conv2d_backward(
        &s,
        batch,
        &x,
        &k,
        &dz,
        Some(&mut dx),
        &mut dk,
        &mut db,
        &mut scratch,
    );
    let tag = format!("{s:?} {act:?}");
    let h = if act == Activation::Linear {
        1e-2
    } else {
        2e-3
    };
    let (mut xv, mut kv, mut bv) = (x.clone(), k.clone(), b.clone());
    fd_check(&format!("dx {tag}"), &mut xv, &dx, h, 2e-3, |xx| {
        dot(&fwd(xx, &k, &b, &mut Conv2dScratch::default()), &g)
    });
    fd_check(&format!("dk {tag}"), &mut kv, &dk, h, 2e-3, |kk| {
        dot(&fwd(&x, kk, &b, &mut Conv2dScratch::default()), &g)
    });
    fd_check(&format!("db {tag}"), &mut bv, &db, h, 2e-3, |bb| {
        dot(&fwd(&x, &k, bb, &mut Conv2dScratch::default()), &g)
    });
    // Without dx: the parameter gradients are the same.
    let mut dk2 = vec![0f32; k.len()];
    let mut db2 = vec![0f32; b.len()];
    conv2d_backward(
        &s,
        batch,
        &x,
        &k,
        &dz,
        None,
        &mut dk2,
        &mut db2,
        &mut scratch,
    );
    assert_eq!(dk, dk2);
    assert_eq!(db, db2);
}

#[test]
fn conv_same_odd_sizes_and_strides() {
    // (h, w, c, f, kh, kw, sh, sw, dh, dw, same)
    for &(h, w, c, f, kh, kw, sh, sw, dh, dw, sm) in &[
        (7, 7, 2, 4, 3, 3, 2, 2, 1, 1, true),
        (8, 8, 2, 4, 3, 3, 2, 2, 1, 1, true),
        (7, 7, 2, 2, 5, 3, 2, 1, 1, 1, true),
        (8, 8, 2, 3, 4, 4, 2, 2, 1, 1, true),
        (5, 6, 2, 3, 2, 2, 1, 1, 1, 1, true),
        (5, 5, 2, 2, 4, 4, 1, 1, 1, 1, true),
        (7, 8, 2, 2, 3, 3, 3, 3, 1, 1, true),
        (7, 8, 2, 3, 1, 1, 2, 2, 1, 1, true),
        (4, 4, 3, 2, 5, 5, 2, 2, 1, 1, true),
        (9, 11, 2, 3, 2, 4, 1, 2, 1, 1, false),
        (6, 6, 3, 5, 1, 1, 1, 1, 1, 1, false),
        (5, 4, 3, 4, 5, 4, 1, 1, 1, 1, false),
        (6, 6, 33, 40, 3, 3, 1, 1, 1, 1, true),
        (6, 5, 5, 70, 3, 3, 1, 1, 1, 1, true),
    ] {
        check_conv(
            conv_spec(h, w, c, f, kh, kw, sh, sw, dh, dw, sm),
            Activation::Linear,
            2,
        );
    }
}

#[test]
fn conv_dilation() {
    for &(h, w, kh, kw, sh, sw, dh, dw, sm) in &[
        (9, 9, 3, 3, 1, 1, 2, 2, true),
        (9, 10, 3, 2, 1, 1, 2, 3, false),
        (11, 9, 3, 3, 2, 2, 2, 1, true),
        (8, 8, 2, 2, 2, 1, 3, 3, false),
    ] {
        check_conv(
            conv_spec(h, w, 3, 4, kh, kw, sh, sw, dh, dw, sm),
            Activation::Linear,
            2,
        );
    }
    // Single input channel (vectorised kernel gradient), a masked row tail.
    check_conv(
        conv_spec(7, 20, 1, 6, 5, 3, 2, 1, 1, 1, true),
        Activation::Linear,
        2,
    );
    check_conv(
        conv_spec(9, 18, 1, 3, 3, 3, 1, 1, 2, 1, false),
        Activation::Linear,
        2,
    );
    // Enough input channels for the direct (flipped-kernel) input gradient.
    check_conv(
        conv_spec(9, 9, 13, 5, 3, 3, 1, 1, 2, 2, true),
        Activation::Linear,
        2,
    );
    check_conv(
        conv_spec(9, 10, 16, 3, 3, 2, 1, 1, 2, 3, false),
        Activation::Linear,
        2,
    );
}

#[test]
fn conv_with_activations_incl_softmax_over_channels() {
    for act in [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ] {
        check_conv(conv_spec(5, 5, 2, 4, 3, 3, 1, 1, 1, 1, true), act, 2);
    }
}

#[test]
fn conv_large_enough_to_run_in_parallel() {
    // Big enough for the thread pool to split rows and samples.
    check_conv(
        conv_spec(20, 20, 8, 20, 3, 3, 1, 1, 1, 1, true),
        Activation::Linear,
        5,
    );
}

fn check_pool(s: Pool2dSpec, batch: usize) {
    let xlen = batch * s.in_h * s.in_w * s.c;
    // Distinct values, so max/min are differentiable at the test point.
    let mut x: Vec<f32> = (0..xlen)
        .map(|i| ((i * 7919) % xlen) as f32 / xlen as f32 * 4.0 - 2.0)
        .collect();
    let ylen = batch * s.out_h * s.out_w * s.c;
    let g = noise(ylen, 9);
    let fwd = |x: &[f32]| {
        let mut y = vec![f32::NAN; ylen];
        let mut am = vec![0u32; if s.kind == PoolKind::Avg { 0 } else { ylen }];
        pool2d_forward(&s, batch, x, &mut y, &mut am);
        (y, am)
    };
    let (y, am) = fwd(&x);
    // forward reference: real cells of each window only
    for n in 0..batch {
        for oh in 0..s.out_h {
            for ow in 0..s.out_w {
                for c in 0..s.c {
                    let mut vals = Vec::new();
                    for a in 0..s.ph {
                        for b in 0..s.pw {
                            let ih = (oh * s.sh + a) as isize - s.pad_top as isize;
                            let iw = (ow * s.sw + b) as isize - s.pad_left as isize;
                            if ih >= 0
                                && iw >= 0
                                && (ih as usize) < s.in_h
                                && (iw as usize) < s.in_w
                            {
                                vals.push(
                                    x[((n * s.in_h + ih as usize) * s.in_w + iw as usize) * s.c
                                        + c],
                                );
                            }
                        }
                    }
                    let want = match s.kind {
                        PoolKind::Max => vals.iter().cloned().fold(f32::NEG_INFINITY, f32::max),
                        PoolKind::Min => vals.iter().cloned().fold(f32::INFINITY, f32::min),
                        PoolKind::Avg => vals.iter().sum::<f32>() / vals.len() as f32,
                    };
                    let got = y[((n * s.out_h + oh) * s.out_w + ow) * s.c + c];
                    assert!((got - want).abs() < 1e-5, "{s:?}: {got} vs {want}");
                }
            }
        }
    }
    let mut dx = vec![f32::NAN; xlen];
    pool2d_backward(&s, batch, &g, &am, &mut dx);
    // Avg is linear (large step); max/min values are >= 4/xlen apart, so a step
    // of 1e-3 never changes the chosen cell.
    let h = if s.kind == PoolKind::Avg { 1e-2 } else { 1e-3 };
    fd_check(&format!("pool dx {s:?}"), &mut x, &dx, h, 2e-3, |xx| {
        dot(&fwd(xx).0, &g)
    });
}

#[allow(clippy::too_many_arguments)]
fn pool_spec(
    kind: PoolKind,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    sh: usize,
    sw: usize,
    is_same: bool,
) -> Pool2dSpec {
    let ax = if is_same { same } else { valid };
    let (oh, pt) = ax(h, ph, sh, 1);
    let (ow, pl) = ax(w, pw, sw, 1);
    Pool2dSpec {
        kind,
        in_h: h,
        in_w: w,
        c: 3,
        out_h: oh,
        out_w: ow,
        ph,
        pw,
        sh,
        sw,
        pad_top: pt,
        pad_left: pl,
    }
}

#[test]
fn pools_overlap_same_rect_and_sparse_strides() {
    for kind in [PoolKind::Max, PoolKind::Avg, PoolKind::Min] {
        for &(h, w, ph, pw, sh, sw, sm) in &[
            (9, 9, 3, 3, 2, 2, false), // overlapping windows
            (7, 7, 3, 3, 2, 2, true),
            (8, 8, 3, 3, 2, 2, true),
            (7, 7, 2, 2, 1, 1, true),
            (4, 4, 5, 5, 2, 2, true), // window larger than the input
            (7, 9, 2, 3, 2, 3, false),
            (8, 8, 2, 2, 3, 3, false), // stride > window: skipped cells get 0
            (7, 7, 2, 2, 2, 2, false),
            (6, 5, 2, 3, 1, 2, true),
        ] {
            check_pool(pool_spec(kind, h, w, ph, pw, sh, sw, sm), 2);
        }
    }
}

#[test]
fn pool_ties_go_to_the_first_cell() {
    let s = pool_spec(PoolKind::Max, 2, 4, 2, 2, 2, 2, false);
    let s = Pool2dSpec { c: 1, ..s };
    let x = [1.0, 1.0, 0.0, 2.0, 1.0, 0.5, 2.0, 2.0];
    let mut y = [0.0; 2];
    let mut am = [0u32; 2];
    pool2d_forward(&s, 1, &x, &mut y, &mut am);
    assert_eq!(y, [1.0, 2.0]);
    assert_eq!(am, [0, 3]);
    let mut dx = [9.0; 8];
    pool2d_backward(&s, 1, &[1.0, 1.0], &am, &mut dx);
    assert_eq!(dx, [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
}

fn check_dense(inputs: usize, units: usize, act: Activation, batch: usize) {
    let spec = DenseSpec { inputs, units };
    let x = noise(batch * inputs, 11);
    let k = noise(inputs * units, 12);
    let b = noise(units, 13);
    let g = noise(batch * units, 14);
    let fwd = |x: &[f32], k: &[f32], b: &[f32]| {
        let mut y = vec![f32::NAN; batch * units];
        dense_forward(&spec, act, batch, x, k, b, &mut y);
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
    dense_backward(&spec, batch, &x, &k, &dz, Some(&mut dx), &mut dk, &mut db);
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
    for act in [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ] {
        check_dense(7, 5, act, 3);
    }
    check_dense(300, 70, Activation::Linear, 33);
}

#[test]
fn activations_forward_and_backward() {
    let z: Vec<f32> = noise(60, 21).iter().map(|v| v * 6.0).collect();
    let g = noise(60, 22);
    for act in [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ] {
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
