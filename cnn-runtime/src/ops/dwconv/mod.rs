//! Depthwise convolution (Keras's `DepthwiseConv2D`): each input channel `c` is
//! convolved with its own `M` filters, giving output channels `c * M + m`. The
//! spec is a [`Conv2dSpec`] whose `out_c` is `in_c * M`; the kernel's layout is
//! Keras's `(KH, KW, C, M)`, which flattens to `(KH, KW, C * M)`: a tap's row of
//! weights lines up with an output pixel's channels.
//!
//! Its own kernel rather than a grouped GEMM with one channel per group. The
//! forward pass splits the output rows across the thread pool (large models
//! run their kernels one at a time, at any batch size); per row it takes the
//! register-blocked vector kernel of `wide` (multiplier 1, AVX-512 or AVX2)
//! where it can, else the portable one: per tap, one pass over the row's
//! pixels multiplies a contiguous run of input channels by the tap's weight
//! row, the output row staying in L1 throughout. The backward pass (`backward`)
//! runs on the calling thread.

mod backward;
#[cfg(test)]
mod gradcheck;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
mod wide;

use std::ops::Range;

use crate::ops::{activation_forward_inplace, check_lens, Grads, Operands};
use crate::pool::{self, SendPtr};
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
/// The output rows (over the batch) are split across the thread pool, so that a
/// batch of one uses every core too; each row is computed the same way in any
/// part, so the result does not depend on the number of threads.
///
/// # Panics
/// When a slice length does not match the spec and batch.
pub fn dwconv_forward(s: &Conv2dSpec, act: Activation, op: Operands<'_>, y: &mut [f32]) {
    check(s, &op, y.len());
    let Operands {
        batch,
        x,
        kernel,
        bias,
    } = op;
    let row_len = s.out_w * s.out_c;
    let rows = batch * s.out_h;
    let parts = pool::parts_for(2 * y.len() * s.kh * s.kw, rows);
    let yp = SendPtr(y.as_mut_ptr());
    pool::run(parts, &|t| {
        let part = pool::split(rows, parts, t);
        // SAFETY: the output rows `part` lie inside `y` (`check`), belong to
        // this part only, and `y` outlives the run.
        let ys = unsafe { yp.slice(part.start * row_len, part.len() * row_len) };
        for (i, yrow) in ys.chunks_exact_mut(row_len).enumerate() {
            forward_rows(s, x, kernel, bias, part.start + i, yrow);
            // The activation while the row is in L1 (measured: after the
            // part's rows, it read them back from memory).
            activation_forward_inplace(act, s.out_c, yrow);
        }
    });
}

/// The output rows `first..` (`ys`: whole rows; row `g` is row `g % out_h` of
/// sample `g / out_h`) before the activation, on the widest path available.
fn forward_rows(
    s: &Conv2dSpec,
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    first: usize,
    ys: &mut [f32],
) {
    // The vector kernels take a multiplier of 1 (what MobileNets use).
    #[cfg(target_arch = "x86_64")]
    if s.out_c == s.in_c {
        if let Some(isa) = crate::ops::simd::Avx512::detect() {
            // SAFETY: the token proves AVX-512F, AVX2 and FMA were detected.
            unsafe { wide::rows_avx512(isa, s, x, kernel, bias, first, ys) };
            return;
        }
        if let Some(isa) = crate::ops::simd::Avx2::detect() {
            // SAFETY: the token proves AVX2 and FMA were detected.
            unsafe { wide::rows_avx2(isa, s, x, kernel, bias, first, ys) };
            return;
        }
    }
    let xs_len = s.in_h * s.in_w * s.in_c;
    for (i, yrow) in ys.chunks_exact_mut(s.out_w * s.out_c).enumerate() {
        let g = first + i;
        let (n, r) = (g / s.out_h, g % s.out_h);
        let xs = &x[n * xs_len..(n + 1) * xs_len];
        portable_row(s, xs, kernel, bias, r, 0..s.out_c, yrow);
    }
}

/// Output row `r` of one sample (`xs`), output channels `ch` only, before the
/// activation: per tap, one pass over the row's pixels multiplies a run of
/// input channels by the tap's weights, which the compiler vectorises.
fn portable_row(
    s: &Conv2dSpec,
    xs: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    r: usize,
    ch: Range<usize>,
    yrow: &mut [f32],
) {
    let (c, cm) = (s.in_c, s.out_c);
    let m = cm / c;
    for q in 0..s.out_w {
        let yp = &mut yrow[q * cm + ch.start..q * cm + ch.end];
        match bias {
            Some(b) => yp.copy_from_slice(&b[ch.clone()]),
            None => yp.fill(0.0),
        }
    }
    for a in 0..s.kh {
        let Some(ih) = row(s, r, a) else { continue };
        let xrow = &xs[ih * s.in_w * c..(ih + 1) * s.in_w * c];
        for b in 0..s.kw {
            let t = (a * s.kw + b) * cm;
            let w = &kernel[t + ch.start..t + ch.end];
            let (lo, hi) = cols(s, b);
            for q in lo..hi {
                let iw = q * s.sw + b * s.dw - s.pad_left;
                let yp = &mut yrow[q * cm + ch.start..q * cm + ch.end];
                if m == 1 {
                    let xp = &xrow[iw * c + ch.start..iw * c + ch.end];
                    for ((o, v), k) in yp.iter_mut().zip(xp).zip(w) {
                        *o += v * k;
                    }
                } else {
                    let xp = &xrow[iw * c..(iw + 1) * c];
                    for ((j, o), k) in ch.clone().zip(yp.iter_mut()).zip(w) {
                        *o += xp[j / m] * k;
                    }
                }
            }
        }
    }
}

/// Backward pass from `dz = dL/d(pre-activation)` into `grads` (see [`Grads`]),
/// one sample after another on the calling thread. (Splitting the channels
/// across the pool was measured 2x slower: two cores writing neighbouring
/// channels of the same gradient cache lines.)
///
/// # Panics
/// When a slice length does not match the spec and batch.
pub fn dwconv_backward(s: &Conv2dSpec, op: Operands<'_>, dz: &[f32], grads: Grads<'_>) {
    check(s, &op, dz.len());
    let (c, cm) = (s.in_c, s.out_c);
    let lens = (s.in_h * s.in_w * c, s.out_h * s.out_w * cm, cm);
    grads.each_sample(op, dz, lens, |xs, gs, dkernel, dx| {
        backward::sample(s, xs, gs, op.kernel, dkernel, dx);
    });
}
