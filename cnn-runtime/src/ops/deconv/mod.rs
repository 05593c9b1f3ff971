//! Transposed convolution (Keras's `Conv2DTranspose`), described by the
//! convolution it is the transpose of: a [`Conv2dSpec`] `t` whose *input* is the
//! deconv's output (`t.in_h x t.in_w x t.in_c`, `in_c` = the deconv's filters
//! F) and whose *output* is the deconv's input (`t.out_h x t.out_w x t.out_c`,
//! `out_c` = the input channels C), with the deconv's kernel size and stride
//! and `pad_top`/`pad_left` = the cells Keras crops before (`floor((k - s) / 2)`
//! for `same`, 0 for `valid`); dilation is 1.
//!
//! Input pixel `(i, j)` and tap `(a, b)` land on output cell
//! `(i * sh + a - pad_top, j * sw + b - pad_left)`; cells outside the output
//! are cropped, output cells no tap reaches get the bias alone. The kernel is
//! Keras's `(KH, KW, F, C)`, which is the layout of `t`'s own kernel, so a
//! tap's `F x C` block multiplies an input pixel's `C` channels.
//!
//! The kernels run on the calling thread (the executor splits the batch).

#[cfg(test)]
mod gradcheck;

use crate::ops::{activation_forward_inplace, check_lens, Cells, Grads, Operands};
use crate::{Activation, Conv2dSpec};

/// Checks the operands and an output (or output gradient) of `y` values.
fn check(t: &Conv2dSpec, op: &Operands<'_>, y: usize) {
    assert!(t.dh == 1 && t.dw == 1, "deconv: dilation must be 1");
    let per = |h: usize, w: usize, c: usize| op.batch * h * w * c;
    check_lens(
        "deconv",
        [
            ("x", op.x.len(), per(t.out_h, t.out_w, t.out_c)),
            ("kernel", op.kernel.len(), t.kh * t.kw * t.in_c * t.out_c),
            ("y", y, per(t.in_h, t.in_w, t.in_c)),
        ],
    );
    if let Some(b) = op.bias {
        assert_eq!(b.len(), t.in_c, "deconv: bias has the wrong length");
    }
}

/// The output cell of input index `i` and tap `a` on one axis, if kept.
fn land(i: usize, a: usize, stride: usize, crop: usize, out: usize) -> Option<usize> {
    (i * stride + a).checked_sub(crop).filter(|&u| u < out)
}

/// Calls `f(input pixel, output pixel, tap)` (flat indices within a sample)
/// for every contribution that survives the crop.
fn for_each_tap(t: &Conv2dSpec, mut f: impl FnMut(usize, usize, usize)) {
    for i in 0..t.out_h {
        for a in 0..t.kh {
            let Some(u) = land(i, a, t.sh, t.pad_top, t.in_h) else {
                continue;
            };
            for j in 0..t.out_w {
                for b in 0..t.kw {
                    let Some(v) = land(j, b, t.sw, t.pad_left, t.in_w) else {
                        continue;
                    };
                    f(i * t.out_w + j, u * t.in_w + v, a * t.kw + b);
                }
            }
        }
    }
}

/// Forward pass: `y = act(deconv(x, kernel) + bias)` (`bias` `None` for
/// `nobias`); see the module docs for `t`.
///
/// # Panics
/// When a slice length does not match `t` and the batch.
pub fn deconv_forward<'y>(
    t: &Conv2dSpec,
    act: Activation,
    op: Operands<'_>,
    y: impl Into<Cells<'y>>,
) {
    let mut y = y.into();
    let (f, c) = (t.in_c, t.out_c);
    let (xs_len, pixels) = (t.out_h * t.out_w * c, t.in_h * t.in_w);
    check(t, &op, op.batch * pixels * f);
    y.check("deconv", op.batch * pixels, f);
    let ld = y.step(f);
    for (n, xs) in op.x.chunks_exact(xs_len.max(1)).enumerate() {
        // Sample n's cells: pixel p's f values at (n * pixels + p) * ld.
        let ys = &mut y.y[n * pixels * ld..];
        for p in 0..pixels {
            let cell = &mut ys[p * ld..p * ld + f];
            match op.bias {
                Some(b) => cell.copy_from_slice(b),
                None => cell.fill(0.0),
            }
        }
        for_each_tap(t, |px, py, tap| {
            let xp = &xs[px * c..(px + 1) * c];
            let w = &op.kernel[tap * f * c..(tap + 1) * f * c];
            for (o, wr) in ys[py * ld..py * ld + f].iter_mut().zip(w.chunks_exact(c)) {
                *o += wr.iter().zip(xp).map(|(a, b)| a * b).sum::<f32>();
            }
        });
    }
    if y.stride.is_none() {
        activation_forward_inplace(act, f, y.y);
    } else {
        for cell in y.each(op.batch * pixels, f) {
            activation_forward_inplace(act, f, cell);
        }
    }
}

/// Backward pass from `dz = dL/d(pre-activation)` into `grads` (see [`Grads`]).
///
/// # Panics
/// When a slice length does not match `t` and the batch.
pub fn deconv_backward(t: &Conv2dSpec, op: Operands<'_>, dz: &[f32], grads: Grads<'_>) {
    check(t, &op, dz.len());
    let (f, c) = (t.in_c, t.out_c);
    let lens = (t.out_h * t.out_w * c, t.in_h * t.in_w * f, f);
    grads.each_sample(op, dz, lens, |xs, gs, dkernel, mut dx| {
        for_each_tap(t, |px, py, tap| {
            let (xp, g) = (&xs[px * c..(px + 1) * c], &gs[py * f..(py + 1) * f]);
            let taps = tap * f * c..(tap + 1) * f * c;
            for (dr, gv) in dkernel[taps.clone()].chunks_exact_mut(c).zip(g) {
                for (d, v) in dr.iter_mut().zip(xp) {
                    *d += gv * v;
                }
            }
            if let Some(dx) = dx.as_deref_mut() {
                let dxp = &mut dx[px * c..(px + 1) * c];
                for (wr, gv) in op.kernel[taps].chunks_exact(c).zip(g) {
                    for (d, wv) in dxp.iter_mut().zip(wr) {
                        *d += gv * wv;
                    }
                }
            }
        });
    });
}
