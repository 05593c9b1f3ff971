//! Transposed conv against a reference that builds Keras's uncropped output and
//! crops it, and finite differences (see [`crate::ops::gradcheck`]).

use super::{deconv_backward, deconv_forward};
use crate::ops::Operands;
use crate::testing::check_kernel_op;
use crate::{Activation, Conv2dSpec};

/// Scatter every input pixel into the full `(h-1)*s + k` output, then keep
/// `out` cells from `crop` on (zeros past the full output), plus the bias.
fn reference(t: &Conv2dSpec, op: Operands<'_>) -> Vec<f64> {
    let Operands {
        batch,
        x,
        kernel: k,
        bias,
    } = op;
    let (f, c) = (t.in_c, t.out_c);
    let (fh, fw) = ((t.out_h - 1) * t.sh + t.kh, (t.out_w - 1) * t.sw + t.kw);
    let mut y = vec![0f64; batch * t.in_h * t.in_w * f];
    for n in 0..batch {
        let mut full = vec![0f64; fh * fw * f];
        for i in 0..t.out_h {
            for j in 0..t.out_w {
                for a in 0..t.kh {
                    for b in 0..t.kw {
                        for o in 0..f {
                            for ch in 0..c {
                                let xv = x[((n * t.out_h + i) * t.out_w + j) * c + ch];
                                let kv = k[((a * t.kw + b) * f + o) * c + ch];
                                full[((i * t.sh + a) * fw + j * t.sw + b) * f + o] +=
                                    f64::from(xv) * f64::from(kv);
                            }
                        }
                    }
                }
            }
        }
        for u in 0..t.in_h {
            for v in 0..t.in_w {
                for o in 0..f {
                    let (fu, fv) = (u + t.pad_top, v + t.pad_left);
                    let val = if fu < fh && fv < fw {
                        full[(fu * fw + fv) * f + o]
                    } else {
                        0.0
                    };
                    y[((n * t.in_h + u) * t.in_w + v) * f + o] =
                        val + bias.map_or(0.0, |b| f64::from(b[o]));
                }
            }
        }
    }
    y
}

fn check(t: Conv2dSpec, with_bias: bool) {
    let batch = 2;
    let lens = (
        batch * t.out_h * t.out_w * t.out_c,
        t.kh * t.kw * t.in_c * t.out_c,
        t.in_c,
        batch * t.in_h * t.in_w * t.in_c,
    );
    check_kernel_op(
        &format!("{t:?}"),
        batch,
        lens,
        with_bias,
        |op, y| deconv_forward(&t, Activation::Linear, op, y),
        |op, g, grads| deconv_backward(&t, op, g, grads),
        |op| reference(&t, op),
    );
}

#[test]
fn deconv_matches_reference_and_finite_differences() {
    // (h, w, c, filters, k, stride, same): kernels smaller than, equal to and
    // larger than the stride, even and odd.
    for (h, w, c, f, k, s, sm) in [
        (3, 3, 2, 2, 1, 2, false),
        (4, 3, 3, 2, 2, 2, false),
        (4, 5, 2, 3, 3, 1, true),
        (4, 4, 2, 3, 3, 2, true),
        (4, 4, 2, 2, 3, 2, false),
        (3, 3, 2, 2, 4, 2, true),
        (2, 3, 4, 5, 5, 3, true),
    ] {
        for bias in [true, false] {
            check(
                Conv2dSpec::transposed([h, w, c], f, [k, k], [s, s], sm),
                bias,
            );
        }
    }
}

#[test]
fn writing_into_a_concat_gives_the_plain_outputs_bits() {
    use crate::testing::{assert_cells_agree, noise};
    for (t, act) in [
        (
            Conv2dSpec::transposed([3, 4, 5], 6, [2, 2], [2, 2], false),
            Activation::Relu,
        ),
        (
            Conv2dSpec::transposed([4, 4, 3], 2, [3, 3], [2, 2], true),
            Activation::Sigmoid,
        ),
    ] {
        let batch = 2;
        let x = noise(batch * t.out_h * t.out_w * t.out_c, 1);
        let k = noise(t.kh * t.kw * t.in_c * t.out_c, 2);
        let b = noise(t.in_c, 3);
        let op = Operands {
            batch,
            x: &x,
            kernel: &k,
            bias: Some(&b),
        };
        let cells = batch * t.in_h * t.in_w;
        assert_cells_agree(&format!("{t:?}"), cells, t.in_c, |y| {
            deconv_forward(&t, act, op, y)
        });
    }
}
