//! Average pooling specialised at compile time: every size is a const generic
//! parameter, so loops have constant trip counts that the compiler unrolls and
//! vectorises (LeNet's 6- and 16-channel layers leave most of a dynamic kernel's
//! vector lanes and loop overhead idle).
//!
//! Generated code calls these for the layers of small models, inside one batch
//! part (see `cnn-compiler`'s codegen: a part runs every layer on its own
//! samples, on one core), so they run on the calling thread and never touch
//! the thread pool. They match the dynamic kernels of [`super`] bit for bit
//! (same summation order).
//!
//! Each public kernel has a `#[target_feature]` twin of its `#[inline(always)]`
//! body (the crate itself targets baseline x86-64), chosen at run time by
//! [`crate::cpu::avx512`] (see `cpu::avx512_twin`).
//!
//! Sizes are checked against the slices (a mismatch is a caller bug and panics).

use crate::cpu::avx512_twin;

/// `(OH, OW, 1 / (PH PW))` of the pooling, after checking that `input` (named
/// `names.0`) holds `batch` samples of `IH x IW x C` and `output` (`names.1`)
/// their pooled `OH x OW x C`.
fn geometry<const IH: usize, const IW: usize, const C: usize, const PH: usize, const PW: usize>(
    batch: usize,
    (input, output): (usize, usize),
    names: (&str, &str),
) -> (usize, usize, f32) {
    let (oh, ow) = (IH / PH, IW / PW);
    let msg = |name| format!("avgpool: {name} has the wrong length");
    assert_eq!(input, batch * IH * IW * C, "{}", msg(names.0));
    assert_eq!(output, batch * oh * ow * C, "{}", msg(names.1));
    // The dynamic kernel's divisor, computed the same way.
    (oh, ow, 1.0 / (PH * PW) as f32)
}

/// The first `batch` samples of `a` (`a_len` values each) beside those of `b`.
#[inline(always)]
fn samples<'a>(
    batch: usize,
    (a, a_len): (&'a [f32], usize),
    (b, b_len): (&'a mut [f32], usize),
) -> impl Iterator<Item = (&'a [f32], &'a mut [f32])> {
    a.chunks_exact(a_len)
        .zip(b.chunks_exact_mut(b_len))
        .take(batch)
}

avx512_twin! {
    for [const IH: usize, const IW: usize, const C: usize, const PH: usize, const PW: usize]
    with "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma";

    /// Average pooling with a `PH x PW` window and the same stride, no padding
    /// (trailing rows / columns that fill no window are left out, as Keras's
    /// `valid`), on `batch` NHWC samples of `IH x IW x C`.
    ///
    /// # Panics
    /// When a slice length does not match the sizes.
    pub fn avgpool_forward(batch: usize, x: &[f32], y: &mut [f32]) {
        let (oh, ow, inv) = geometry::<IH, IW, C, PH, PW>(batch, (x.len(), y.len()), ("x", "y"));
        for (xs, ys) in samples(batch, (x, IH * IW * C), (y, oh * ow * C)) {
            for (r, yrow) in ys.chunks_exact_mut(ow * C).enumerate() {
                for (q, yo) in yrow.chunks_exact_mut(C).enumerate() {
                    // Same order as the dynamic kernel: 0 + cells in row-major order.
                    let mut acc = [0f32; C];
                    for a in 0..PH {
                        for b in 0..PW {
                            let base = ((r * PH + a) * IW + q * PW + b) * C;
                            let cell = &xs[base..base + C];
                            for c in 0..C {
                                acc[c] += cell[c];
                            }
                        }
                    }
                    for c in 0..C {
                        yo[c] = acc[c] * inv;
                    }
                }
            }
        }
    }

    /// Backward pass of [`avgpool_forward`]: `dx` (overwritten) gets `dy / (PH PW)`
    /// in every cell of each window, zero in cells no window covers.
    ///
    /// # Panics
    /// When a slice length does not match the sizes.
    pub fn avgpool_backward(batch: usize, dy: &[f32], dx: &mut [f32]) {
        let (oh, ow, inv) =
            geometry::<IH, IW, C, PH, PW>(batch, (dx.len(), dy.len()), ("dx", "dy"));
        for (dys, dxs) in samples(batch, (dy, oh * ow * C), (dx, IH * IW * C)) {
            if oh * PH != IH || ow * PW != IW {
                // Uncovered trailing cells get no gradient.
                dxs.fill(0.0);
            }
            for r in 0..oh {
                for a in 0..PH {
                    let row = &mut dxs[((r * PH + a) * IW) * C..((r * PH + a) * IW + ow * PW) * C];
                    for (q, win) in row.chunks_exact_mut(PW * C).enumerate() {
                        let g = &dys[(r * ow + q) * C..(r * ow + q + 1) * C];
                        for cell in win.chunks_exact_mut(C) {
                            for c in 0..C {
                                cell[c] = g[c] * inv;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::pool2d;
    use crate::testing::{data, fd_check, Fd};
    use crate::{Padding, Pool2dSpec, PoolKind, Window};

    fn pool_spec(ih: usize, iw: usize, c: usize, p: usize) -> Pool2dSpec {
        Pool2dSpec::new(
            PoolKind::Avg,
            [ih, iw, c],
            Window::new([p, p], Padding::Valid).stride([p, p]),
        )
    }

    /// Same results as the dynamic kernel, bit for bit, including odd sizes
    /// whose last row / column no window covers.
    #[test]
    fn avgpool_equals_dynamic_kernel() {
        fn case<const IH: usize, const IW: usize, const C: usize, const P: usize>() {
            let s = pool_spec(IH, IW, C, P);
            let batch = 3;
            let x = data(batch * IH * IW * C, 1);
            let ny = batch * s.out_h * s.out_w * C;
            let (mut y1, mut y2) = (vec![f32::NAN; ny], vec![f32::NAN; ny]);
            avgpool_forward::<IH, IW, C, P, P>(batch, &x, &mut y1);
            pool2d::pool2d_forward(&s, batch, &x, &mut y2, &mut []);
            assert_eq!(y1, y2);
            let dy = data(ny, 2);
            let (mut d1, mut d2) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
            avgpool_backward::<IH, IW, C, P, P>(batch, &dy, &mut d1);
            pool2d::pool2d_backward(&s, batch, &dy, &[], &mut d2);
            assert_eq!(d1, d2);
        }
        case::<28, 28, 6, 2>();
        case::<10, 10, 16, 2>();
        case::<7, 5, 3, 2>();
        case::<9, 9, 1, 3>();
    }

    /// Finite differences of `L = sum(y * r)` through the fixed forward.
    #[test]
    fn avgpool_gradient_matches_finite_differences() {
        const IH: usize = 5;
        const IW: usize = 6;
        const C: usize = 2;
        let batch = 2;
        let x = data(batch * IH * IW * C, 3);
        let ny = batch * (IH / 2) * (IW / 2) * C;
        let r = data(ny, 4);
        let loss = |x: &[f32]| {
            let mut y = vec![0f32; ny];
            avgpool_forward::<IH, IW, C, 2, 2>(batch, x, &mut y);
            y.iter().zip(&r).map(|(a, b)| f64::from(a * b)).sum::<f64>()
        };
        let mut dx = vec![0f32; x.len()];
        avgpool_backward::<IH, IW, C, 2, 2>(batch, &r, &mut dx);
        let mut xv = x.clone();
        fd_check(Fd::Every, "dx", &mut xv, &dx, 1e-2, 1e-3, loss);
    }
}
