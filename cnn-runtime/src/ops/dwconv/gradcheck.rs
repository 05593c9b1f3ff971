//! Depthwise conv against a direct f64 reference and finite differences (see
//! [`crate::ops::gradcheck`]), over strides, dilations, both paddings,
//! multipliers and with and without a bias.

use super::{dwconv_backward, dwconv_forward};
use crate::ops::Operands;
use crate::testing::{check_kernel_op, noise, window_reference};
use crate::{Activation, Conv2dSpec, Padding};

/// An `h x w x c` input, `k x k` taps, multiplier `m`, stride, dilation.
#[allow(clippy::too_many_arguments)]
pub(super) fn spec(
    h: usize,
    w: usize,
    c: usize,
    m: usize,
    k: usize,
    st: usize,
    d: usize,
    pad_same: bool,
) -> Conv2dSpec {
    let p = if pad_same {
        Padding::Same
    } else {
        Padding::Valid
    };
    let (out_h, pad_top) = p.axis(h, k, st, d);
    let (out_w, pad_left) = p.axis(w, k, st, d);
    Conv2dSpec {
        in_h: h,
        in_w: w,
        in_c: c,
        out_h,
        out_w,
        out_c: c * m,
        kh: k,
        kw: k,
        sh: st,
        sw: st,
        dh: d,
        dw: d,
        pad_top,
        pad_left,
    }
}

/// `y[n, r, q, c*M + j] = b + sum_taps x[n, r*sh + a*dh - pt, q*sw + b*dw - pl, c] k[a, b, c*M + j]`.
fn reference(s: &Conv2dSpec, op: Operands<'_>) -> Vec<f64> {
    let m = s.out_c / s.in_c;
    window_reference(s, op, |tap, o| vec![(o / m, tap * s.out_c + o)])
}

fn check(s: Conv2dSpec, with_bias: bool) {
    let batch = 2;
    let lens = (
        batch * s.in_h * s.in_w * s.in_c,
        s.kh * s.kw * s.out_c,
        s.out_c,
        batch * s.out_h * s.out_w * s.out_c,
    );
    check_kernel_op(
        &format!("{s:?}"),
        batch,
        lens,
        with_bias,
        |op, y| dwconv_forward(&s, Activation::Linear, op, y),
        |op, g, grads| dwconv_backward(&s, op, g, grads),
        |op| reference(&s, op),
    );
}

#[test]
fn dwconv_matches_reference_and_finite_differences() {
    // (h, w, c, multiplier, k, stride, dilation, same)
    for (h, w, c, m, k, st, d, sm) in [
        (6, 6, 4, 1, 3, 1, 1, true),
        (7, 5, 3, 2, 3, 2, 1, true),
        (8, 8, 2, 1, 3, 2, 1, true),
        (9, 9, 3, 1, 3, 1, 2, true),
        (9, 7, 2, 3, 2, 1, 1, false),
        (10, 9, 5, 1, 3, 2, 2, false),
        (5, 5, 16, 1, 5, 1, 1, true),
    ] {
        for bias in [true, false] {
            check(spec(h, w, c, m, k, st, d, sm), bias);
        }
    }
}

/// The activation is applied after the bias, as in conv.
#[test]
fn dwconv_applies_its_activation() {
    let s = spec(4, 4, 2, 1, 3, 1, 1, true);
    let x = noise(32, 5);
    let k = noise(18, 6);
    let (mut lin, mut relu) = (vec![0f32; 32], vec![0f32; 32]);
    let op = Operands {
        batch: 1,
        x: &x,
        kernel: &k,
        bias: None,
    };
    dwconv_forward(&s, Activation::Linear, op, &mut lin);
    dwconv_forward(&s, Activation::Relu, op, &mut relu);
    assert!(lin.iter().any(|v| *v < 0.0));
    for (l, r) in lin.iter().zip(&relu) {
        assert_eq!(*r, l.max(0.0));
    }
}
