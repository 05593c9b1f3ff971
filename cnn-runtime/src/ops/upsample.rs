//! Upsampling by integer factors (Keras's `UpSampling2D`): `nearest` repeats
//! each row `sh` and each column `sw` times; `bilinear` interpolates with
//! half-pixel centres (the source coordinate of output cell `i` is
//! `(i + 0.5) / s - 0.5`, clamped to the image), as Keras's bilinear resize.
//!
//! Both are a sum over at most two source cells per axis with fixed weights,
//! so one description per axis serves the forward and (transposed) the
//! backward.

use crate::ops::per_sample;
use crate::{Interpolation, UpsampleSpec};

/// Source cells and weight of output index `i` of an axis of `n` cells
/// upsampled `s` times: `out[i] = in[lo] * (1 - f) + in[hi] * f`. Computed
/// where needed rather than tabled, so that a call allocates nothing.
fn entry(i: usize, n: usize, s: usize, how: Interpolation) -> (usize, usize, f32) {
    match how {
        Interpolation::Nearest => (i / s, i / s, 0.0),
        Interpolation::Bilinear => {
            let src = ((i as f64 + 0.5) / s as f64 - 0.5).max(0.0);
            let lo = (src.floor() as usize).min(n - 1);
            let hi = (lo + 1).min(n - 1);
            (lo, hi, (src - lo as f64) as f32)
        }
    }
}

/// The two axes of one upsample.
struct Tables<'a> {
    s: &'a UpsampleSpec,
    /// Values per sample of the input and of the output.
    lens: (usize, usize),
}

impl Tables<'_> {
    fn new(s: &UpsampleSpec) -> Tables<'_> {
        assert!(
            s.in_h > 0 && s.in_w > 0 && s.sh > 0 && s.sw > 0,
            "upsample: empty size"
        );
        let lens = (s.in_h * s.in_w * s.c, s.in_h * s.sh * s.in_w * s.sw * s.c);
        Tables { s, lens }
    }

    /// Calls `f(source pixel, output pixel, weight)` for every nonzero weight
    /// of one sample (pixels as flat `row * width + column` indices; the input
    /// is `w` wide).
    fn each(&self, w: usize, mut f: impl FnMut(usize, usize, f32)) {
        let s = self.s;
        let (oh, ow) = (s.in_h * s.sh, s.in_w * s.sw);
        for r in 0..oh {
            let (r0, r1, fr) = entry(r, s.in_h, s.sh, s.interpolation);
            for q in 0..ow {
                let (q0, q1, fq) = entry(q, s.in_w, s.sw, s.interpolation);
                let cells = [
                    (r0, q0, (1.0 - fr) * (1.0 - fq)),
                    (r0, q1, (1.0 - fr) * fq),
                    (r1, q0, fr * (1.0 - fq)),
                    (r1, q1, fr * fq),
                ];
                for (a, b, wgt) in cells {
                    if wgt != 0.0 {
                        f(a * w + b, r * ow + q, wgt);
                    }
                }
            }
        }
    }
}

/// `y` (overwritten) = each sample of `x` upsampled.
///
/// # Panics
/// When a length does not match the spec and batch.
pub fn upsample_forward(s: &UpsampleSpec, batch: usize, x: &[f32], y: &mut [f32]) {
    spread(s, batch, x, y, true);
}

/// Backward of [`upsample_forward`]: each source cell (in `dx`, overwritten)
/// collects the output gradients weighted as the forward weighted it.
///
/// # Panics
/// When a length does not match the spec and batch.
pub fn upsample_backward(s: &UpsampleSpec, batch: usize, dy: &[f32], dx: &mut [f32]) {
    spread(s, batch, dy, dx, false);
}

/// `dst = W src` per sample (`forward`) or `dst = W^T src`, with `W` the
/// interpolation weights.
fn spread(s: &UpsampleSpec, batch: usize, src: &[f32], dst: &mut [f32], forward: bool) {
    let (t, c) = (Tables::new(s), s.c);
    let (xl, yl) = t.lens;
    let (names, lens) = if forward {
        (["upsample", "x", "y"], (xl, yl))
    } else {
        (["upsample", "dy", "dx"], (yl, xl))
    };
    for (ss, ds) in per_sample(names, batch, (src, lens.0), (dst, lens.1)) {
        ds.fill(0.0);
        t.each(s.in_w, |cell, out, wgt| {
            let (from, to) = if forward { (cell, out) } else { (out, cell) };
            let v = &ss[from * c..(from + 1) * c];
            for (o, v) in ds[to * c..(to + 1) * c].iter_mut().zip(v) {
                *o += v * wgt;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dot, fd_check, noise};

    fn spec(
        h: usize,
        w: usize,
        c: usize,
        (sh, sw): (usize, usize),
        how: Interpolation,
    ) -> UpsampleSpec {
        UpsampleSpec {
            in_h: h,
            in_w: w,
            c,
            sh,
            sw,
            interpolation: how,
        }
    }

    #[test]
    fn nearest_repeats_rows_and_columns() {
        let mut y = [0f32; 12];
        let s = spec(1, 2, 1, (2, 3), Interpolation::Nearest);
        upsample_forward(&s, 1, &[1.0, 2.0], &mut y);
        let want = [1., 1., 1., 2., 2., 2., 1., 1., 1., 2., 2., 2.];
        assert_eq!(&y[..], &want[..]);
    }

    /// Half-pixel centres: a 2-cell row upsampled by 2 is 1, 1.25, 1.75, 2.
    #[test]
    fn bilinear_uses_half_pixel_centres() {
        let mut y = [0f32; 4];
        let s = spec(1, 2, 1, (1, 2), Interpolation::Bilinear);
        upsample_forward(&s, 1, &[1.0, 2.0], &mut y);
        assert_eq!(y, [1.0, 1.25, 1.75, 2.0]);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let batch = 2;
        for how in [Interpolation::Nearest, Interpolation::Bilinear] {
            for factor in [(2, 2), (2, 3), (3, 1)] {
                let s = spec(3, 4, 2, factor, how);
                let (xl, yl) = Tables::new(&s).lens;
                let mut x = noise(batch * xl, 1);
                let fwd = |x: &[f32]| {
                    let mut y = vec![f32::NAN; batch * yl];
                    upsample_forward(&s, batch, x, &mut y);
                    y
                };
                let g = noise(batch * yl, 2);
                let mut dx = vec![f32::NAN; x.len()];
                upsample_backward(&s, batch, &g, &mut dx);
                let tag = format!("{s:?}");
                fd_check(&tag, &mut x, &dx, 1e-2, 1e-3, |xp| dot(&fwd(xp), &g));
            }
        }
    }
}
