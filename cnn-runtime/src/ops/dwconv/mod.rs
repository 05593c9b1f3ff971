//! Depthwise convolution (Keras's `DepthwiseConv2D`): each input channel `c` is
//! convolved with its own `M` filters, giving output channels `c * M + m`. The
//! spec is a [`Conv2dSpec`] whose `out_c` is `in_c * M`; the kernel's layout is
//! Keras's `(KH, KW, C, M)`, which flattens to `(KH, KW, C * M)`: a tap's row of
//! weights lines up with an output pixel's channels.
//!
//! Its own kernel rather than a grouped GEMM with one channel per group: per
//! output row and tap, one pass over the row's pixels multiplies a contiguous
//! run of input channels by the tap's weight row, which the compiler
//! vectorises over the channels, and the output row stays in L1 throughout.
//! The kernels run on the calling thread (the executor already splits the
//! batch across cores).

#[cfg(test)]
mod gradcheck;

use crate::ops::{activation_forward_inplace, check_lens, Grads, Operands};
use crate::{Activation, Conv2dSpec};

/// Checks the operands and an output (or output gradient) of `y` values.
fn check(s: &Conv2dSpec, op: &Operands<'_>, y: usize) {
    assert!(
        s.in_c > 0 && s.out_c.is_multiple_of(s.in_c),
        "dwconv: out_c is not a multiple of in_c"
    );
    let per = |h: usize, w: usize, c: usize| op.batch * h * w * c;
    check_lens(
        "dwconv",
        [
            ("x", op.x.len(), per(s.in_h, s.in_w, s.in_c)),
            ("kernel", op.kernel.len(), s.kh * s.kw * s.out_c),
            ("y", y, per(s.out_h, s.out_w, s.out_c)),
        ],
    );
    if let Some(b) = op.bias {
        assert_eq!(b.len(), s.out_c, "dwconv: bias has the wrong length");
    }
}

/// The output columns `lo..hi` whose tap `b` lands inside the input row, and
/// the input column of output column `q`: `q * sw + b * dw - pad_left`.
fn cols(s: &Conv2dSpec, b: usize) -> (usize, usize) {
    let off = b * s.dw;
    // q * sw + off >= pad_left  and  q * sw + off - pad_left < in_w
    let lo = s.pad_left.saturating_sub(off).div_ceil(s.sw);
    let hi = if s.in_w + s.pad_left > off {
        (s.in_w + s.pad_left - off).div_ceil(s.sw).min(s.out_w)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// The input row of output row `r` and tap row `a`, when inside the image.
fn row(s: &Conv2dSpec, r: usize, a: usize) -> Option<usize> {
    (r * s.sh + a * s.dh)
        .checked_sub(s.pad_top)
        .filter(|&ih| ih < s.in_h)
}

/// Forward pass: `y = act(dwconv(x, kernel) + bias)`; `bias` is `None` for a
/// layer without one (`nobias`).
///
/// # Panics
/// When a slice length does not match the spec and batch.
pub fn dwconv_forward(s: &Conv2dSpec, act: Activation, op: Operands<'_>, y: &mut [f32]) {
    check(s, &op, y.len());
    let Operands {
        x, kernel, bias, ..
    } = op;
    let (c, cm) = (s.in_c, s.out_c);
    let m = cm / c;
    let (xs_len, ys_len) = (s.in_h * s.in_w * c, s.out_h * s.out_w * cm);
    for (xs, ys) in x.chunks_exact(xs_len).zip(y.chunks_exact_mut(ys_len)) {
        for r in 0..s.out_h {
            let yrow = &mut ys[r * s.out_w * cm..(r + 1) * s.out_w * cm];
            match bias {
                Some(b) => yrow.chunks_exact_mut(cm).for_each(|p| p.copy_from_slice(b)),
                None => yrow.fill(0.0),
            }
            for a in 0..s.kh {
                let Some(ih) = row(s, r, a) else { continue };
                let xrow = &xs[ih * s.in_w * c..(ih + 1) * s.in_w * c];
                for b in 0..s.kw {
                    let w = &kernel[(a * s.kw + b) * cm..(a * s.kw + b + 1) * cm];
                    let (lo, hi) = cols(s, b);
                    for q in lo..hi {
                        let iw = q * s.sw + b * s.dw - s.pad_left;
                        let xp = &xrow[iw * c..(iw + 1) * c];
                        let yp = &mut yrow[q * cm..(q + 1) * cm];
                        if m == 1 {
                            for ((o, v), k) in yp.iter_mut().zip(xp).zip(w) {
                                *o += v * k;
                            }
                        } else {
                            for (j, o) in yp.iter_mut().enumerate() {
                                *o += xp[j / m] * w[j];
                            }
                        }
                    }
                }
            }
        }
    }
    activation_forward_inplace(act, cm, y);
}

/// Backward pass from `dz = dL/d(pre-activation)` into `grads` (see [`Grads`]).
///
/// # Panics
/// When a slice length does not match the spec and batch.
pub fn dwconv_backward(s: &Conv2dSpec, op: Operands<'_>, dz: &[f32], grads: Grads<'_>) {
    check(s, &op, dz.len());
    let (c, cm) = (s.in_c, s.out_c);
    let m = cm / c;
    let lens = (s.in_h * s.in_w * c, s.out_h * s.out_w * cm, cm);
    grads.each_sample(op, dz, lens, |xs, gs, dkernel, mut dx| {
        for r in 0..s.out_h {
            let grow = &gs[r * s.out_w * cm..(r + 1) * s.out_w * cm];
            for a in 0..s.kh {
                let Some(ih) = row(s, r, a) else { continue };
                for b in 0..s.kw {
                    let t = (a * s.kw + b) * cm;
                    let (lo, hi) = cols(s, b);
                    for q in lo..hi {
                        let px = (ih * s.in_w + q * s.sw + b * s.dw - s.pad_left) * c;
                        let (g, xp) = (&grow[q * cm..(q + 1) * cm], &xs[px..px + c]);
                        let (dk, w) = (&mut dkernel[t..t + cm], &op.kernel[t..t + cm]);
                        let dxp = dx.as_deref_mut().map(|dx| &mut dx[px..px + c]);
                        // One multiplier (the common case) without the index
                        // division, so both loops vectorise.
                        if m == 1 {
                            for ((d, v), gv) in dk.iter_mut().zip(xp).zip(g) {
                                *d += v * gv;
                            }
                            if let Some(dxp) = dxp {
                                for ((d, gv), wv) in dxp.iter_mut().zip(g).zip(w) {
                                    *d += gv * wv;
                                }
                            }
                        } else {
                            for (j, d) in dk.iter_mut().enumerate() {
                                *d += xp[j / m] * g[j];
                            }
                            if let Some(dxp) = dxp {
                                for (j, (gv, wv)) in g.iter().zip(w).enumerate() {
                                    dxp[j / m] += gv * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
    });
}
