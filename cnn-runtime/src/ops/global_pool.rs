//! Global average and max pooling: `H x W x C` to `C` per sample, as Keras's
//! `GlobalAveragePooling2D` and `GlobalMaxPooling2D`.
//!
//! The max's gradient is split equally among the cells that tie for the
//! maximum (Keras's rule, pinned by the oracle), unlike the windowed pools,
//! which send it to the first.

use crate::{GlobalPoolSpec, PoolKind};

/// `y[n, c]` = mean or max over the `hw` positions of `x[n, .., c]`.
///
/// # Panics
/// When `kind` is `Min`, or a length does not match `batch`, `hw` and `c`.
pub fn global_pool_forward(s: &GlobalPoolSpec, batch: usize, x: &[f32], y: &mut [f32]) {
    let GlobalPoolSpec { kind, hw, c } = *s;
    check(s, batch, x.len(), y.len());
    for (xs, ys) in x.chunks_exact(hw * c).zip(y.chunks_exact_mut(c)) {
        match kind {
            PoolKind::Avg => {
                ys.fill(0.0);
                for row in xs.chunks_exact(c) {
                    for (o, v) in ys.iter_mut().zip(row) {
                        *o += v;
                    }
                }
                let inv = 1.0 / hw as f32;
                ys.iter_mut().for_each(|o| *o *= inv);
            }
            _ => {
                ys.copy_from_slice(&xs[..c]);
                for row in xs.chunks_exact(c).skip(1) {
                    for (o, v) in ys.iter_mut().zip(row) {
                        // Not `f32::max`: a NaN input must reach the output
                        // (and stay there).
                        if *v > *o || v.is_nan() {
                            *o = *v;
                        }
                    }
                }
            }
        }
    }
}

/// Backward of [`global_pool_forward`]: `dx` (overwritten) gets `dy / hw`
/// everywhere (average), or `dy / ties` at the cells equal to the output `y`
/// (max).
///
/// # Panics
/// As [`global_pool_forward`].
pub fn global_pool_backward(
    s: &GlobalPoolSpec,
    batch: usize,
    (x, y): (&[f32], &[f32]),
    dy: &[f32],
    dx: &mut [f32],
) {
    let GlobalPoolSpec { kind, hw, c } = *s;
    check(s, batch, dx.len(), dy.len());
    if kind == PoolKind::Max {
        assert_eq!(x.len(), dx.len(), "global pool: x has the wrong length");
        assert_eq!(y.len(), dy.len(), "global pool: y has the wrong length");
    }
    let per = hw * c;
    for n in 0..batch {
        let dys = &dy[n * c..(n + 1) * c];
        let dxs = &mut dx[n * per..(n + 1) * per];
        match kind {
            PoolKind::Avg => {
                let inv = 1.0 / hw as f32;
                for row in dxs.chunks_exact_mut(c) {
                    for (o, g) in row.iter_mut().zip(dys) {
                        *o = g * inv;
                    }
                }
            }
            _ => {
                let (xs, ys) = (&x[n * per..(n + 1) * per], &y[n * c..(n + 1) * c]);
                // Channel by channel (strided), so that nothing is allocated.
                for j in 0..c {
                    let column = || xs.iter().skip(j).step_by(c);
                    let ties = column().filter(|v| **v == ys[j]).count();
                    let share = dys[j] / ties.max(1) as f32;
                    for (v, o) in column().zip(dxs.iter_mut().skip(j).step_by(c)) {
                        *o = if *v == ys[j] { share } else { 0.0 };
                    }
                }
            }
        }
    }
}

fn check(s: &GlobalPoolSpec, batch: usize, xlen: usize, ylen: usize) {
    let GlobalPoolSpec { kind, hw, c } = *s;
    assert!(kind != PoolKind::Min, "global pool: no global min pool");
    assert!(hw > 0, "global pool: empty image");
    assert_eq!(xlen, batch * hw * c, "global pool: x has the wrong length");
    assert_eq!(ylen, batch * c, "global pool: y has the wrong length");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dot, fd_check, noise};

    #[test]
    fn gradients_match_finite_differences() {
        let (batch, hw, c) = (3, 7, 5);
        for kind in [PoolKind::Avg, PoolKind::Max] {
            // Distinct values: the max is differentiable at the test point.
            let mut x: Vec<f32> = (0..batch * hw * c)
                .map(|i| ((i * 7919) % 211) as f32 / 50.0 - 2.0)
                .collect();
            let g = noise(batch * c, 2);
            let fwd = |x: &[f32]| {
                let mut y = vec![f32::NAN; batch * c];
                global_pool_forward(&GlobalPoolSpec { kind, hw, c }, batch, x, &mut y);
                y
            };
            let y = fwd(&x);
            for n in 0..batch {
                for j in 0..c {
                    let col = (0..hw).map(|p| x[(n * hw + p) * c + j]);
                    let want = match kind {
                        PoolKind::Avg => col.sum::<f32>() / hw as f32,
                        _ => col.fold(f32::NEG_INFINITY, f32::max),
                    };
                    assert!((y[n * c + j] - want).abs() < 1e-6);
                }
            }
            let mut dx = vec![f32::NAN; x.len()];
            global_pool_backward(
                &GlobalPoolSpec { kind, hw, c },
                batch,
                (&x, &y),
                &g,
                &mut dx,
            );
            let h = if kind == PoolKind::Avg { 1e-2 } else { 1e-3 };
            fd_check(&format!("{kind:?}"), &mut x, &dx, h, 2e-3, |xp| {
                dot(&fwd(xp), &g)
            });
        }
    }

    /// Three cells tie for a channel's maximum: each gets a third.
    #[test]
    fn max_ties_share_the_gradient() {
        let x = [1.0, 0.0, 3.0, 1.0, 3.0, 2.0, 3.0, -1.0];
        let mut y = [0f32; 2];
        let s = GlobalPoolSpec {
            kind: PoolKind::Max,
            hw: 4,
            c: 2,
        };
        global_pool_forward(&s, 1, &x, &mut y);
        assert_eq!(y, [3.0, 2.0]);
        let mut dx = [f32::NAN; 8];
        global_pool_backward(&s, 1, (&x, &y), &[1.5, 1.0], &mut dx);
        assert_eq!(dx, [0.0, 0.0, 0.5, 0.0, 0.5, 1.0, 0.5, 0.0]);
    }

    #[test]
    fn max_propagates_nan() {
        let mut y = [0f32];
        let s = GlobalPoolSpec {
            kind: PoolKind::Max,
            hw: 3,
            c: 1,
        };
        global_pool_forward(&s, 1, &[1.0, f32::NAN, 0.0], &mut y);
        assert!(y[0].is_nan());
    }
}
