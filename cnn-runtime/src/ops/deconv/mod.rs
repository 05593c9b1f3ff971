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

use crate::ops::activation_forward_inplace;
use crate::{Activation, Conv2dSpec};

fn check(t: &Conv2dSpec, batch: usize, x: usize, k: usize, y: usize) {
    assert!(t.dh == 1 && t.dw == 1, "deconv: dilation must be 1");
    assert_eq!(
        x,
        batch * t.out_h * t.out_w * t.out_c,
        "deconv: x has the wrong length"
    );
    assert_eq!(
        k,
        t.kh * t.kw * t.in_c * t.out_c,
        "deconv: kernel has the wrong length"
    );
    assert_eq!(
        y,
        batch * t.in_h * t.in_w * t.in_c,
        "deconv: y has the wrong length"
    );
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
#[allow(clippy::too_many_arguments)]
pub fn deconv_forward(
    t: &Conv2dSpec,
    act: Activation,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) {
    check(t, batch, x.len(), kernel.len(), y.len());
    let (f, c) = (t.in_c, t.out_c);
    let (xs_len, ys_len) = (t.out_h * t.out_w * c, t.in_h * t.in_w * f);
    for (xs, ys) in x.chunks_exact(xs_len).zip(y.chunks_exact_mut(ys_len)) {
        match bias {
            Some(b) => {
                assert_eq!(b.len(), f, "deconv: bias has the wrong length");
                ys.chunks_exact_mut(f).for_each(|p| p.copy_from_slice(b));
            }
            None => ys.fill(0.0),
        }
        for_each_tap(t, |px, py, tap| {
            let xp = &xs[px * c..(px + 1) * c];
            let w = &kernel[tap * f * c..(tap + 1) * f * c];
            for (o, wr) in ys[py * f..(py + 1) * f].iter_mut().zip(w.chunks_exact(c)) {
                *o += wr.iter().zip(xp).map(|(a, b)| a * b).sum::<f32>();
            }
        });
    }
    activation_forward_inplace(act, f, y);
}

/// Backward pass from `dz = dL/d(pre-activation)`: overwrites `dkernel`,
/// `dbias` (when the layer has one) and, when given, `dx`.
///
/// # Panics
/// When a slice length does not match `t` and the batch.
#[allow(clippy::too_many_arguments)]
pub fn deconv_backward(
    t: &Conv2dSpec,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    dz: &[f32],
    mut dx: Option<&mut [f32]>,
    dkernel: &mut [f32],
    dbias: Option<&mut [f32]>,
) {
    check(t, batch, x.len(), kernel.len(), dz.len());
    assert_eq!(
        dkernel.len(),
        kernel.len(),
        "deconv: dkernel has the wrong length"
    );
    let (f, c) = (t.in_c, t.out_c);
    if let Some(db) = dbias {
        assert_eq!(db.len(), f, "deconv: dbias has the wrong length");
        db.fill(0.0);
        for p in dz.chunks_exact(f) {
            for (d, g) in db.iter_mut().zip(p) {
                *d += g;
            }
        }
    }
    dkernel.fill(0.0);
    if let Some(dx) = dx.as_deref_mut() {
        assert_eq!(dx.len(), x.len(), "deconv: dx has the wrong length");
        dx.fill(0.0);
    }
    let (xs_len, ys_len) = (t.out_h * t.out_w * c, t.in_h * t.in_w * f);
    for n in 0..batch {
        let xs = &x[n * xs_len..(n + 1) * xs_len];
        let gs = &dz[n * ys_len..(n + 1) * ys_len];
        for_each_tap(t, |px, py, tap| {
            let xp = &xs[px * c..(px + 1) * c];
            let g = &gs[py * f..(py + 1) * f];
            let dk = &mut dkernel[tap * f * c..(tap + 1) * f * c];
            for (dr, gv) in dk.chunks_exact_mut(c).zip(g) {
                for (d, v) in dr.iter_mut().zip(xp) {
                    *d += gv * v;
                }
            }
            if let Some(dx) = dx.as_deref_mut() {
                let w = &kernel[tap * f * c..(tap + 1) * f * c];
                let dxp = &mut dx[n * xs_len + px * c..n * xs_len + (px + 1) * c];
                for (wr, gv) in w.chunks_exact(c).zip(g) {
                    for (d, wv) in dxp.iter_mut().zip(wr) {
                        *d += gv * wv;
                    }
                }
            }
        });
    }
}
