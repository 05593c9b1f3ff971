//! Finite-difference gradient checks of the convolution (see [`crate::testing`]),
//! and its forward pass against a naive f64 reference.

use super::Conv2dScratch;
use crate::ops::activation::activation_backward;
use crate::ops::Operands;
use crate::testing::{conv_backward, conv_forward, dot, fd_check, noise, window_reference};
use crate::{Activation, Conv2dSpec, Padding, Window};

/// Naive f64 convolution (pre-activation).
fn conv_ref(s: &Conv2dSpec, batch: usize, x: &[f32], k: &[f32], b: &[f32]) -> Vec<f64> {
    let op = Operands {
        batch,
        x,
        kernel: k,
        bias: Some(b),
    };
    window_reference(s, op, |tap, o| {
        (0..s.in_c)
            .map(|c| (c, (tap * s.in_c + c) * s.out_c + o))
            .collect()
    })
}

fn check_conv(s: Conv2dSpec, act: Activation, batch: usize) {
    let x = noise(batch * s.in_h * s.in_w * s.in_c, 1);
    let k = noise(s.kh * s.kw * s.in_c * s.out_c, 2);
    let b = noise(s.out_c, 3);
    let ylen = batch * s.out_h * s.out_w * s.out_c;
    let g = noise(ylen, 4);
    let mut scratch = Conv2dScratch::default();
    let fwd = |x: &[f32], k: &[f32], b: &[f32], scratch: &mut Conv2dScratch| {
        conv_forward(&s, act, batch, x, k, b, scratch)
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
    let (dx, dk, db) = conv_backward(&s, batch, (&x, &k, &dz), true, &mut scratch);
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
    let (_, dk2, db2) = conv_backward(&s, batch, (&x, &k, &dz), false, &mut scratch);
    assert_eq!(dk, dk2);
    assert_eq!(db, db2);
}

/// Linear convs of `(h, w, c, f, kh, kw, sh, sw, dh, dw, padding)`, batch 2.
type Case = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    Padding,
);

#[test]
fn conv_same_odd_sizes_strides_and_dilations() {
    use Padding::{Same, Valid};
    let cases: [Case; 22] = [
        (7, 7, 2, 4, 3, 3, 2, 2, 1, 1, Same),
        (8, 8, 2, 4, 3, 3, 2, 2, 1, 1, Same),
        (7, 7, 2, 2, 5, 3, 2, 1, 1, 1, Same),
        (8, 8, 2, 3, 4, 4, 2, 2, 1, 1, Same),
        (5, 6, 2, 3, 2, 2, 1, 1, 1, 1, Same),
        (5, 5, 2, 2, 4, 4, 1, 1, 1, 1, Same),
        (7, 8, 2, 2, 3, 3, 3, 3, 1, 1, Same),
        (7, 8, 2, 3, 1, 1, 2, 2, 1, 1, Same),
        (4, 4, 3, 2, 5, 5, 2, 2, 1, 1, Same),
        (9, 11, 2, 3, 2, 4, 1, 2, 1, 1, Valid),
        (6, 6, 3, 5, 1, 1, 1, 1, 1, 1, Valid),
        (5, 4, 3, 4, 5, 4, 1, 1, 1, 1, Valid),
        (6, 6, 33, 40, 3, 3, 1, 1, 1, 1, Same),
        (6, 5, 5, 70, 3, 3, 1, 1, 1, 1, Same),
        // Dilations.
        (9, 9, 3, 4, 3, 3, 1, 1, 2, 2, Same),
        (9, 10, 3, 4, 3, 2, 1, 1, 2, 3, Valid),
        (11, 9, 3, 4, 3, 3, 2, 2, 2, 1, Same),
        (8, 8, 3, 4, 2, 2, 2, 1, 3, 3, Valid),
        // Single input channel (vectorised kernel gradient), a masked row tail.
        (7, 20, 1, 6, 5, 3, 2, 1, 1, 1, Same),
        (9, 18, 1, 3, 3, 3, 1, 1, 2, 1, Valid),
        // Enough input channels for the direct (flipped-kernel) input gradient.
        (9, 9, 13, 5, 3, 3, 1, 1, 2, 2, Same),
        (9, 10, 16, 3, 3, 2, 1, 1, 2, 3, Valid),
    ];
    for (h, w, c, f, kh, kw, sh, sw, dh, dw, pad) in cases {
        let s = Conv2dSpec::new(
            [h, w, c],
            f,
            Window::new([kh, kw], pad)
                .stride([sh, sw])
                .dilation([dh, dw]),
        );
        check_conv(s, Activation::Linear, 2);
    }
}

#[test]
fn conv_with_activations_incl_softmax_over_channels() {
    for act in [
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Softmax,
    ] {
        let s = Conv2dSpec::new([5, 5, 2], 4, Window::new([3, 3], Padding::Same));
        check_conv(s, act, 2);
    }
}

#[test]
fn conv_large_enough_to_run_in_parallel() {
    // Big enough for the thread pool to split rows and samples.
    let s = Conv2dSpec::new([20, 20, 8], 20, Window::new([3, 3], Padding::Same));
    check_conv(s, Activation::Linear, 5);
}

#[test]
fn without_a_bias_the_other_gradients_are_the_same() {
    // `None` skips the bias reduction; dK and dx must not change with it. Big
    // enough to split the reduction across parts and to flip its orientation.
    for (shape, f) in [([20, 20, 8], 20), ([9, 9, 16], 3)] {
        let s = Conv2dSpec::new(shape, f, Window::new([3, 3], Padding::Same));
        let batch = 4;
        let x = noise(batch * shape[0] * shape[1] * shape[2], 11);
        let k = noise(9 * shape[2] * f, 12);
        let dz = noise(batch * s.out_h * s.out_w * f, 13);
        let mut sc = Conv2dScratch::default();
        let (dx, dk, _) = conv_backward(&s, batch, (&x, &k, &dz), true, &mut sc);
        let mut dx2 = vec![f32::NAN; x.len()];
        let mut dk2 = vec![f32::NAN; k.len()];
        super::conv2d_backward(
            &s,
            batch,
            &x,
            &k,
            &dz,
            Some(&mut dx2),
            &mut dk2,
            None,
            &mut sc,
        );
        assert_eq!((dx, dk), (dx2, dk2));
    }
}

#[test]
fn writing_into_a_concat_gives_the_plain_outputs_bits() {
    // The direct tiles (relu in the tile, tanh after it; a narrower last
    // panel) on AVX-512 and AVX2, the GEMM path under CNN_PORTABLE=1, and
    // the packed form.
    use crate::ops::conv2d::{conv2d_forward, conv2d_forward_packed, conv2d_pack, PackedConv};
    use crate::testing::assert_cells_agree;
    for (s, batch) in [
        (
            Conv2dSpec::new([7, 6, 3], 20, Window::new([3, 3], Padding::Same)),
            2,
        ),
        (
            Conv2dSpec::new(
                [9, 9, 16],
                48,
                Window::new([3, 3], Padding::Valid).stride([2, 2]),
            ),
            3,
        ),
        (
            Conv2dSpec::new([5, 5, 8], 4, Window::new([1, 1], Padding::Valid)),
            1,
        ),
    ] {
        let x = noise(batch * s.in_h * s.in_w * s.in_c, 5);
        let k = noise(s.kh * s.kw * s.in_c * s.out_c, 6);
        let b = noise(s.out_c, 7);
        let cells = batch * s.out_h * s.out_w;
        for act in [Activation::Linear, Activation::Relu, Activation::Tanh] {
            let what = format!("{s:?} {act:?}");
            let mut scratch = Conv2dScratch::default();
            assert_cells_agree(&what, cells, s.out_c, |y| {
                conv2d_forward(&s, act, batch, &x, &k, Some(&b), y, &mut scratch)
            });
            let mut packed = PackedConv::default();
            if conv2d_pack(&s, &k, Some(&b), &mut packed) {
                assert_cells_agree(&format!("packed {what}"), cells, s.out_c, |y| {
                    conv2d_forward_packed(&s, act, batch, &x, &packed, y, &mut scratch)
                });
            }
        }
    }
}
