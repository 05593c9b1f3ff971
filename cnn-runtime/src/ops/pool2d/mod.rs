//! Max / average / min pooling, NHWC. Padding cells are never read: max and min
//! ignore them, average leaves them out of the divisor (as Keras). Ties in max/min
//! go to the first cell in row-major window order (strict comparisons).

#[cfg(test)]
mod gradcheck;

use crate::pool::{self, SendPtr};
use crate::{Pool2dSpec, PoolKind};

/// Marks an output cell whose window holds no real input cell (cannot happen with
/// Keras-consistent specs; kept so that any spec is memory-safe).
const NONE: u32 = u32::MAX;

fn window(o: usize, s: usize, pad: usize, k: usize, n: usize) -> (usize, usize) {
    let start = (o * s) as isize - pad as isize;
    let lo = start.max(0) as usize;
    let hi = ((start + k as isize).max(0) as usize).min(n);
    (lo, hi.max(lo))
}

fn check(spec: &Pool2dSpec, batch: usize, x: usize, y: usize) {
    assert_eq!(
        x,
        batch * spec.in_h * spec.in_w * spec.c,
        "pool2d: x has the wrong length"
    );
    assert_eq!(
        y,
        batch * spec.out_h * spec.out_w * spec.c,
        "pool2d: y has the wrong length"
    );
}

/// Forward pass. For max/min, `argmax[i]` receives the index (within its sample)
/// of the input cell chosen for output `i`; `argmax` may be empty for avg.
///
/// # Panics
/// When a slice length does not match the spec and batch.
pub fn pool2d_forward(
    spec: &Pool2dSpec,
    batch: usize,
    x: &[f32],
    y: &mut [f32],
    argmax: &mut [u32],
) {
    let s = spec;
    check(s, batch, x.len(), y.len());
    let track = s.kind != PoolKind::Avg;
    if track {
        assert_eq!(argmax.len(), y.len(), "pool2d: argmax has the wrong length");
    }
    let xs = s.in_h * s.in_w * s.c;
    let ys = s.out_h * s.out_w * s.c;
    let parts = pool::parts_for(y.len() * s.ph * s.pw * 4, batch);
    let yp = SendPtr(y.as_mut_ptr());
    let ap = argmax.as_mut_ptr() as usize;
    pool::run(parts, &|t| {
        let r = pool::split(batch, parts, t);
        for n in r {
            // SAFETY: sample n of y / argmax belongs to this part only.
            let yo = unsafe { yp.slice(n * ys, ys) };
            let am: &mut [u32] = if track {
                // SAFETY: so does sample n of argmax (checked to match y's length).
                unsafe { std::slice::from_raw_parts_mut((ap as *mut u32).add(n * ys), ys) }
            } else {
                &mut []
            };
            forward_sample_dispatch(s, &x[n * xs..(n + 1) * xs], yo, am);
        }
    });
}

/// [`forward_sample`] compiled for AVX-512 when the CPU has it.
fn forward_sample_dispatch(s: &Pool2dSpec, x: &[f32], y: &mut [f32], am: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        /// `forward_sample` compiled for AVX-512.
        ///
        /// # Safety
        /// AVX-512F/BW/VL, AVX2 and FMA must be available.
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
        unsafe fn wide(s: &Pool2dSpec, x: &[f32], y: &mut [f32], am: &mut [u32]) {
            forward_sample(s, x, y, am)
        }
        if crate::cpu::avx512() {
            // SAFETY: the features were detected at run time.
            unsafe { wide(s, x, y, am) };
            return;
        }
    }
    forward_sample(s, x, y, am)
}

#[inline(always)]
fn forward_sample(s: &Pool2dSpec, x: &[f32], y: &mut [f32], am: &mut [u32]) {
    let c = s.c;
    for oh in 0..s.out_h {
        let (h0, h1) = window(oh, s.sh, s.pad_top, s.ph, s.in_h);
        for ow in 0..s.out_w {
            let (w0, w1) = window(ow, s.sw, s.pad_left, s.pw, s.in_w);
            let o = (oh * s.out_w + ow) * c;
            let yo = &mut y[o..o + c];
            if h0 == h1 || w0 == w1 {
                yo.fill(0.0);
                if !am.is_empty() {
                    am[o..o + c].fill(NONE);
                }
                continue;
            }
            match s.kind {
                PoolKind::Avg => {
                    yo.fill(0.0);
                    for ih in h0..h1 {
                        for iw in w0..w1 {
                            let b = (ih * s.in_w + iw) * c;
                            for (d, v) in yo.iter_mut().zip(&x[b..b + c]) {
                                *d += v;
                            }
                        }
                    }
                    let inv = 1.0 / ((h1 - h0) * (w1 - w0)) as f32;
                    for d in yo.iter_mut() {
                        *d *= inv;
                    }
                }
                PoolKind::Max => pick(s, x, yo, &mut am[o..o + c], h0, h1, w0, w1, |v, b| v > b),
                PoolKind::Min => pick(s, x, yo, &mut am[o..o + c], h0, h1, w0, w1, |v, b| v < b),
            }
        }
    }
}

/// Max or min over one window for all channels, with the chosen indices. Strict
/// `better` keeps the first cell on ties. Branch-free selects so it vectorises.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pick(
    s: &Pool2dSpec,
    x: &[f32],
    yo: &mut [f32],
    ao: &mut [u32],
    h0: usize,
    h1: usize,
    w0: usize,
    w1: usize,
    better: impl Fn(f32, f32) -> bool,
) {
    let c = s.c;
    let b = (h0 * s.in_w + w0) * c;
    yo.copy_from_slice(&x[b..b + c]);
    for (ci, a) in ao.iter_mut().enumerate() {
        *a = (b + ci) as u32;
    }
    for ih in h0..h1 {
        for iw in w0..w1 {
            let b = (ih * s.in_w + iw) * c;
            for (ci, ((y, a), &v)) in yo
                .iter_mut()
                .zip(ao.iter_mut())
                .zip(&x[b..b + c])
                .enumerate()
            {
                let take = better(v, *y);
                *y = if take { v } else { *y };
                *a = if take { (b + ci) as u32 } else { *a };
            }
        }
    }
}

/// Backward pass: `dx` (overwritten) from `dy`; max/min route each gradient to the
/// cell recorded in `argmax`, avg spreads it evenly over the real cells.
///
/// # Panics
/// When a slice length does not match the spec and batch, or an argmax index is
/// out of range.
pub fn pool2d_backward(
    spec: &Pool2dSpec,
    batch: usize,
    dy: &[f32],
    argmax: &[u32],
    dx: &mut [f32],
) {
    let s = spec;
    check(s, batch, dx.len(), dy.len());
    let xs = s.in_h * s.in_w * s.c;
    let ys = s.out_h * s.out_w * s.c;
    let c = s.c;
    if s.kind != PoolKind::Avg {
        assert_eq!(
            argmax.len(),
            dy.len(),
            "pool2d: argmax has the wrong length"
        );
    }
    let parts = pool::parts_for(dy.len() * s.ph * s.pw * 4, batch);
    let dxp = SendPtr(dx.as_mut_ptr());
    pool::run(parts, &|t| {
        for n in pool::split(batch, parts, t) {
            // SAFETY: sample n of dx belongs to this part only.
            let dxs = unsafe { dxp.slice(n * xs, xs) };
            dxs.fill(0.0);
            let dys = &dy[n * ys..(n + 1) * ys];
            match s.kind {
                PoolKind::Max | PoolKind::Min => {
                    for (&g, &a) in dys.iter().zip(&argmax[n * ys..(n + 1) * ys]) {
                        if a != NONE {
                            dxs[a as usize] += g;
                        }
                    }
                }
                PoolKind::Avg => {
                    for oh in 0..s.out_h {
                        let (h0, h1) = window(oh, s.sh, s.pad_top, s.ph, s.in_h);
                        for ow in 0..s.out_w {
                            let (w0, w1) = window(ow, s.sw, s.pad_left, s.pw, s.in_w);
                            let cnt = (h1 - h0) * (w1 - w0);
                            if cnt == 0 {
                                continue;
                            }
                            let inv = 1.0 / cnt as f32;
                            let o = (oh * s.out_w + ow) * c;
                            let g = &dys[o..o + c];
                            for ih in h0..h1 {
                                for iw in w0..w1 {
                                    let b = (ih * s.in_w + iw) * c;
                                    for (d, v) in dxs[b..b + c].iter_mut().zip(g) {
                                        *d += v * inv;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    });
}
