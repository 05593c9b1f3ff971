//! The vector paths of the depthwise forward pass (multiplier 1), for AVX-512
//! and for AVX2 with FMA: one kernel, written once over [`Isa`], compiled into
//! each instruction set by a `#[target_feature]` entry point.
//!
//! Register blocking: a block of `P` output pixels of one row times one vector
//! of channels stays in registers across all `KH x KW` taps, and is stored
//! once (the portable path reads and writes its output row once per tap). Per
//! tap, the block loads one weight vector and one input vector per pixel, all
//! from L1/L2 (three input rows of a MobileNet layer fit there).

use super::{cols, portable_row, row};
use crate::ops::simd::Isa;
#[cfg(target_arch = "x86_64")]
use crate::ops::simd::{Avx2, Avx512};
use crate::Conv2dSpec;

/// Output pixels per register block: `P` accumulators, one weight and one
/// input vector stay within the 16 registers of AVX2 (and leave AVX-512 room).
const P: usize = 8;

/// The rows `first..` of the output (`ys`, whole rows of `out_w * C` values;
/// row `g` is row `g % out_h` of sample `g / out_h`), multiplier 1, before the
/// activation.
#[inline(always)]
fn rows<I: Isa>(
    isa: I,
    s: &Conv2dSpec,
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    first: usize,
    ys: &mut [f32],
) {
    let c = s.in_c;
    let xs_len = s.in_h * s.in_w * c;
    // The columns where every tap lies inside the input row: no checks there.
    let (mut qa, mut qb) = (0, s.out_w);
    for b in 0..s.kw {
        let (lo, hi) = cols(s, b);
        qa = qa.max(lo);
        qb = qb.min(hi);
    }
    let qa = qa.min(s.out_w);
    let qb = qb.max(qa);
    let cv = c / I::W * I::W;
    for (i, yrow) in ys.chunks_exact_mut(s.out_w * c).enumerate() {
        let g = first + i;
        let (n, r) = (g / s.out_h, g % s.out_h);
        let xs = &x[n * xs_len..(n + 1) * xs_len];
        let blk = Block {
            isa,
            s,
            xs,
            kernel,
            bias,
            r,
        };
        for q in 0..qa {
            blk.edge(q, cv, yrow);
        }
        let mut q = qa;
        while q + P <= qb {
            blk.interior::<P>(q, cv, yrow);
            q += P;
        }
        // MobileNet's last layers are 7 and 14 pixels wide: 4-pixel blocks
        // before single pixels.
        if q + P / 2 <= qb {
            blk.interior::<{ P / 2 }>(q, cv, yrow);
            q += P / 2;
        }
        while q < qb {
            blk.interior::<1>(q, cv, yrow);
            q += 1;
        }
        for q in qb..s.out_w {
            blk.edge(q, cv, yrow);
        }
        if cv < c {
            // The channels past the last whole vector.
            portable_row(s, xs, kernel, bias, r, cv..c, yrow);
        }
    }
}

/// What a register block reads: the sample, the kernel, the output row `r`.
struct Block<'a, I> {
    isa: I,
    s: &'a Conv2dSpec,
    xs: &'a [f32],
    kernel: &'a [f32],
    bias: Option<&'a [f32]>,
    r: usize,
}

impl<I: Isa> Block<'_, I> {
    /// Output pixels `q0..q0 + N` of the row, channels `0..cv` (whole vectors),
    /// all of whose taps lie inside the input row (`q0..q0 + N` within the
    /// interior columns of [`rows`]; checked once, then loads unchecked).
    ///
    /// # Panics
    /// When a tap of the block lies outside the input row.
    #[inline(always)]
    fn interior<const N: usize>(&self, q0: usize, cv: usize, yrow: &mut [f32]) {
        let Block {
            isa,
            s,
            xs,
            kernel,
            bias,
            r,
        } = *self;
        let c = s.in_c;
        // Every load below reads `xs[((ih * in_w + iw) * c + c0)..][..W]` with
        // ih < in_h (`row`), c0 + W <= cv <= c, and iw between the first tap
        // of pixel q0 and the last of pixel q0 + N - 1, both checked here to
        // lie inside the input row: inside `xs`, which holds the sample.
        assert!(N > 0 && xs.len() == s.in_h * s.in_w * c && cv <= c);
        let first = (q0 * s.sw)
            .checked_sub(s.pad_left)
            .expect("dwconv: an interior block starts left of the image");
        assert!(
            (q0 + N - 1) * s.sw + (s.kw - 1) * s.dw < s.in_w + s.pad_left,
            "dwconv: an interior block ends right of the image"
        );
        let step = s.sw * c;
        for c0 in (0..cv).step_by(I::W) {
            let init = bias.map_or(isa.zero(), |b| isa.load(&b[c0..]));
            let mut acc = [init; N];
            for a in 0..s.kh {
                let Some(ih) = row(s, r, a) else { continue };
                // The cell of (ih, first), channel c0: tap 0 of pixel q0.
                let base = (ih * s.in_w + first) * c + c0;
                for b in 0..s.kw {
                    let w = isa.load(&kernel[(a * s.kw + b) * c + c0..]);
                    let tap = base + b * s.dw * c;
                    for (i, acc) in acc.iter_mut().enumerate() {
                        // SAFETY: pixel q0 + i, tap (a, b): the cell
                        // (ih, (q0 + i) * sw + b * dw - pad_left), channels
                        // c0..c0 + W, inside `xs` (checked above).
                        let x = unsafe { isa.load_at(xs.as_ptr().add(tap + i * step)) };
                        *acc = isa.fma(x, w, *acc);
                    }
                }
            }
            for (i, v) in acc.into_iter().enumerate() {
                isa.store(v, &mut yrow[(q0 + i) * c + c0..]);
            }
            // The input row the next output row reads first (its last tap
            // row), one row ahead: measured, the loads of a new row waited
            // on memory.
            let ih = (r + 1) * s.sh + (s.kh - 1) * s.dh;
            if let Some(ih) = ih.checked_sub(s.pad_top).filter(|&ih| ih < s.in_h) {
                let base = (ih * s.in_w + first) * c + c0;
                for i in 0..N * s.sw {
                    isa.prefetch(xs.as_ptr().wrapping_add(base + i * c));
                }
            }
        }
    }

    /// Output pixel `q` of the row, channels `0..cv`, skipping the taps
    /// outside the input row (the edge columns, few: checked loads).
    #[inline(always)]
    fn edge(&self, q: usize, cv: usize, yrow: &mut [f32]) {
        let Block {
            isa,
            s,
            xs,
            kernel,
            bias,
            r,
        } = *self;
        let c = s.in_c;
        for c0 in (0..cv).step_by(I::W) {
            let mut acc = bias.map_or(isa.zero(), |b| isa.load(&b[c0..]));
            for a in 0..s.kh {
                let Some(ih) = row(s, r, a) else { continue };
                for b in 0..s.kw {
                    let (lo, hi) = cols(s, b);
                    if !(lo..hi).contains(&q) {
                        continue;
                    }
                    let iw = q * s.sw + b * s.dw - s.pad_left;
                    let w = isa.load(&kernel[(a * s.kw + b) * c + c0..]);
                    let x = isa.load(&xs[(ih * s.in_w + iw) * c + c0..]);
                    acc = isa.fma(x, w, acc);
                }
            }
            isa.store(acc, &mut yrow[q * c + c0..]);
        }
    }
}

/// [`rows`] on AVX-512.
///
/// # Safety
/// The CPU must have AVX-512F, AVX2 and FMA (which `Avx512::detect` checks).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn rows_avx512(
    isa: Avx512,
    s: &Conv2dSpec,
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    first: usize,
    ys: &mut [f32],
) {
    rows(isa, s, x, kernel, bias, first, ys)
}

/// [`rows`] on AVX2 and FMA.
///
/// # Safety
/// The CPU must have AVX2 and FMA (which `Avx2::detect` checks).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn rows_avx2(
    isa: Avx2,
    s: &Conv2dSpec,
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    first: usize,
    ys: &mut [f32],
) {
    rows(isa, s, x, kernel, bias, first, ys)
}
