//! Upsampling by integer factors (Keras's `UpSampling2D`): `nearest` repeats
//! each row `sh` and each column `sw` times; `bilinear` interpolates with
//! half-pixel centres (the source coordinate of output cell `i` is
//! `(i + 0.5) / s - 0.5`, clamped to the image), as Keras's bilinear resize.
//!
//! Both are a sum over at most two source cells per axis with fixed weights,
//! so one table per axis serves the forward and (transposed) the backward.

/// Which interpolation an upsample uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// Repeat rows and columns.
    Nearest,
    /// Half-pixel bilinear.
    Bilinear,
}

/// Source cells and weights of each output index of one axis:
/// `out[i] = in[lo] * (1 - f) + in[hi] * f`.
fn axis(n: usize, s: usize, how: Interpolation) -> Vec<(usize, usize, f32)> {
    (0..n * s)
        .map(|i| match how {
            Interpolation::Nearest => (i / s, i / s, 0.0),
            Interpolation::Bilinear => {
                let src = ((i as f64 + 0.5) / s as f64 - 0.5).max(0.0);
                let lo = (src.floor() as usize).min(n - 1);
                let hi = (lo + 1).min(n - 1);
                (lo, hi, (src - lo as f64) as f32)
            }
        })
        .collect()
}

/// A sample's width and channels and the two axis tables.
struct Dims {
    w: usize,
    c: usize,
    rows: Vec<(usize, usize, f32)>,
    cols: Vec<(usize, usize, f32)>,
}

impl Dims {
    fn new(h: usize, w: usize, c: usize, (sh, sw): (usize, usize), how: Interpolation) -> Dims {
        assert!(h > 0 && w > 0 && sh > 0 && sw > 0, "upsample: empty size");
        Dims {
            w,
            c,
            rows: axis(h, sh, how),
            cols: axis(w, sw, how),
        }
    }
}

/// `y` (overwritten) = each `h x w x c` sample of `x` upsampled by `(sh, sw)`.
///
/// # Panics
/// When a length does not match the sizes.
#[allow(clippy::too_many_arguments)]
pub fn upsample_forward(
    how: Interpolation,
    factor: (usize, usize),
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    x: &[f32],
    y: &mut [f32],
) {
    let d = Dims::new(h, w, c, factor, how);
    let (oh, ow) = (d.rows.len(), d.cols.len());
    assert_eq!(
        x.len(),
        batch * h * w * c,
        "upsample: x has the wrong length"
    );
    assert_eq!(
        y.len(),
        batch * oh * ow * c,
        "upsample: y has the wrong length"
    );
    for (xs, ys) in x
        .chunks_exact(h * w * c)
        .zip(y.chunks_exact_mut(oh * ow * c))
    {
        for (r, &(r0, r1, fr)) in d.rows.iter().enumerate() {
            for (q, &(q0, q1, fq)) in d.cols.iter().enumerate() {
                let at = |a: usize, b: usize| &xs[(a * d.w + b) * d.c..(a * d.w + b + 1) * d.c];
                let (tl, tr, bl, br) = (at(r0, q0), at(r0, q1), at(r1, q0), at(r1, q1));
                let out = &mut ys[(r * ow + q) * c..(r * ow + q + 1) * c];
                for j in 0..c {
                    let top = tl[j] + (tr[j] - tl[j]) * fq;
                    let bottom = bl[j] + (br[j] - bl[j]) * fq;
                    out[j] = top + (bottom - top) * fr;
                }
            }
        }
    }
}

/// Backward of [`upsample_forward`]: each source cell (in `dx`, overwritten)
/// collects the output gradients weighted as the forward weighted it.
///
/// # Panics
/// When a length does not match the sizes.
#[allow(clippy::too_many_arguments)]
pub fn upsample_backward(
    how: Interpolation,
    factor: (usize, usize),
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    dy: &[f32],
    dx: &mut [f32],
) {
    let d = Dims::new(h, w, c, factor, how);
    let (oh, ow) = (d.rows.len(), d.cols.len());
    assert_eq!(
        dx.len(),
        batch * h * w * c,
        "upsample: dx has the wrong length"
    );
    assert_eq!(
        dy.len(),
        batch * oh * ow * c,
        "upsample: dy has the wrong length"
    );
    dx.fill(0.0);
    for (dxs, dys) in dx
        .chunks_exact_mut(h * w * c)
        .zip(dy.chunks_exact(oh * ow * c))
    {
        for (r, &(r0, r1, fr)) in d.rows.iter().enumerate() {
            for (q, &(q0, q1, fq)) in d.cols.iter().enumerate() {
                let g = &dys[(r * ow + q) * c..(r * ow + q + 1) * c];
                let cells = [
                    (r0, q0, (1.0 - fr) * (1.0 - fq)),
                    (r0, q1, (1.0 - fr) * fq),
                    (r1, q0, fr * (1.0 - fq)),
                    (r1, q1, fr * fq),
                ];
                for (a, b, wgt) in cells {
                    if wgt == 0.0 {
                        continue;
                    }
                    let cell = &mut dxs[(a * w + b) * c..(a * w + b + 1) * c];
                    for j in 0..c {
                        cell[j] += g[j] * wgt;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dot, fd_check, noise, Fd};

    #[test]
    fn nearest_repeats_rows_and_columns() {
        let x = [1.0, 2.0]; // 1x2x1
        let mut y = [0f32; 12];
        upsample_forward(Interpolation::Nearest, (2, 3), 1, 1, 2, 1, &x, &mut y);
        let want = [1., 1., 1., 2., 2., 2., 1., 1., 1., 2., 2., 2.];
        assert_eq!(&y[..], &want[..]);
    }

    /// Half-pixel centres: a 2-cell row upsampled by 2 is 1, 1.25, 1.75, 2.
    #[test]
    fn bilinear_uses_half_pixel_centres() {
        let mut y = [0f32; 4];
        upsample_forward(
            Interpolation::Bilinear,
            (1, 2),
            1,
            1,
            2,
            1,
            &[1.0, 2.0],
            &mut y,
        );
        assert_eq!(y, [1.0, 1.25, 1.75, 2.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (batch, h, w, c) = (2, 3, 4, 2);
        for how in [Interpolation::Nearest, Interpolation::Bilinear] {
            for factor in [(2, 2), (2, 3), (3, 1)] {
                let mut x = noise(batch * h * w * c, 1);
                let ylen = batch * h * factor.0 * w * factor.1 * c;
                let fwd = |x: &[f32]| {
                    let mut y = vec![f32::NAN; ylen];
                    upsample_forward(how, factor, batch, h, w, c, x, &mut y);
                    y
                };
                let g = noise(ylen, 2);
                let mut dx = vec![f32::NAN; x.len()];
                upsample_backward(how, factor, batch, h, w, c, &g, &mut dx);
                fd_check(
                    Fd::Sampled,
                    &format!("{how:?} {factor:?}"),
                    &mut x,
                    &dx,
                    1e-2,
                    1e-3,
                    |xp| dot(&fwd(xp), &g),
                );
            }
        }
    }
}
