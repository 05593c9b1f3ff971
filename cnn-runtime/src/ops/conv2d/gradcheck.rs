//! Finite-difference gradient checks of the convolution (see [`crate::ops::gradcheck`]),
//! and its forward pass against a naive f64 reference.

use super::{conv2d_backward, conv2d_forward, Conv2dScratch};
use crate::ops::activation::activation_backward;
use crate::ops::gradcheck::{dot, fd_check, noise, same, valid};
use crate::{Activation, Conv2dSpec};

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
