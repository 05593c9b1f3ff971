//! Single-precision matrix multiplication, `C (+)= A * B`, written for this runtime.
//!
//! The structure is the classic Goto/BLIS one: B is packed into `KC x NR` column
//! panels, A into `MR x KC` row panels, and a register-blocked microkernel
//! (`14 x 32` with AVX-512: 28 zmm accumulators) runs over them. Operands are
//! abstract [`Source`]s that pack themselves, so a convolution can pack its
//! im2col matrix straight from the image (no materialised column buffer) and a
//! transposed operand costs nothing but strided packing.
//!
//! Pack buffers are the thread pool's per-thread scratch (made when a worker
//! starts, then reused), so a call allocates nothing once warm. Parallelism comes
//! from [`crate::pool`]: [`gemm_par`] splits the rows of C across the cores.
//!
//! This file holds the operands, the blocked driver and its parallel split;
//! beside it are the microkernels (`avx512`, `avx2`, `portable`, chosen by
//! [`crate::cpu::avx512`] and [`crate::cpu::avx2`]) and the few-row streaming
//! paths (`small`).
//!
//! # Why hand-written: the measurements behind the choice
//!
//! Machine: AMD EPYC (Zen 5 class: 48 KiB L1d, 1 MiB L2 per core), 2 cores,
//! shared with other builds while measuring (load average 8-11), so every
//! figure below is a best-of-N and noisy; ratios within one run are what count.
//!
//! * Register-only FMA loop, quiet machine (start of the session): **263 GFLOP/s
//!   per core with 512-bit FMAs, 132 with 256-bit** (530 / 264 on both cores).
//!   The AVX-512 datapath is full width, so any AVX2-only kernel is capped at half
//!   the machine.
//! * `matrixmultiply` 0.3 (already in the tree through ndarray): AVX2/FMA kernels
//!   only (so at most 264 GFLOP/s here); one heap allocation per call (counted
//!   with a counting global allocator: 1 per `sgemm`, ours 0); threading through
//!   its own pool. On 1024^3 under load, paired runs in one process gave
//!   matrixmultiply 64-107 GFLOP/s vs this module 76-97 (both on 2 threads);
//!   with `CNN_THREADS=1 MATMUL_NUM_THREADS=1`, 79-200 vs 76-219 (matrixmultiply
//!   once exceeded one core's AVX2 ceiling, so it probably still used both
//!   cores). Indistinguishable through the noise; its ceiling is half of ours.
//! * `gemm` (faer): AVX-512 kernels but rayon parallelism (a boxed job per
//!   spawn: allocation in every step) and scratch allocated per call; not
//!   measured here (the machine was too noisy to separate two fast GEMMs).
//! * Neither can pack from an implicit im2col operand: a convolution would need a
//!   materialised column buffer (57 MB for the 64->64, 56x56, batch-8 layer:
//!   pure memory traffic), and neither avoids allocation in a training step.
//!
//! So: this module (`14 x 32` AVX-512 microkernel, 28 zmm accumulators, checked
//! to stay in registers with `perf annotate`), abstract packing sources, no
//! allocation per call, and [`crate::pool`]'s allocation-free pool.
//! Convolutions go further (`ops::conv2d`): their forward pass and stride-1 input
//! gradient skip A packing entirely (indirect GEMM, `6x64` .. `12x16` tiles).
//! In `cargo bench --bench throughput` (same-run FMA peak as the reference, on
//! the busy machine): `conv64_fwd_b8` ran at 66-90% of the measured peak,
//! `conv64_fwdbwd_b8` at 56-64%, `sgemm_1024` at 55-87%. In a quieter moment
//! `conv64_fwd_b8` reached 318 GFLOP/s and `conv64_fwdbwd_b8` 368 GFLOP/s, i.e.
//! 60% and 69% of the quiet-machine AVX-512 peak of 530.
//!
//! Blocking (`KC`, `MC`, `NC`) was not tuned beyond a first try (KC 128 / 256 /
//! 384 were inconclusive under load).

mod avx2;
mod avx512;
mod portable;
mod small;

#[cfg(target_arch = "x86_64")]
use avx2::kernel_avx2;
use avx512::kernel_avx512;
use portable::kernel_generic;
use small::{small_m_dot, small_m_split_k, small_m_stream_b, SMALL_M};

use std::ops::Range;

use crate::pool::{self, SendPtr};

/// Rows of the microkernel tile.
pub const MR: usize = 14;
/// Columns of the microkernel tile (two 16-lane vectors).
pub const NR: usize = 32;
/// Depth of one packed block (the B micro-panel `KC x NR` stays in L1).
const KC: usize = 256;
/// Rows of A packed at once (`MC x KC` stays in L2).
const MC: usize = MR * 12;
/// Columns of B packed at once.
const NC: usize = 1024;

/// A logical matrix that can copy blocks of itself into the packed layouts.
///
/// Implementations must write every element of the requested block, padding
/// with zeros up to the panel width `w`.
pub trait Source: Sync {
    /// `dst[p * w + i] = self[r0 + i, c0 + p]` for `i < nr`, `p < kc`, and 0 for
    /// `nr <= i < w`. Used for A.
    fn pack_rows(&self, r0: usize, nr: usize, c0: usize, kc: usize, w: usize, dst: &mut [f32]);
    /// `dst[p * w + j] = self[p0 + p, j0 + j]` for `j < nc`, `p < kc`, and 0 for
    /// `nc <= j < w`. Used for B.
    fn pack_cols(&self, p0: usize, kc: usize, j0: usize, nc: usize, w: usize, dst: &mut [f32]);
    /// The matrix as `(data, row_stride)` when it is row-major with unit column
    /// stride, so a small-`m` product can stream it without packing.
    fn as_row_major(&self) -> Option<(&[f32], usize)> {
        None
    }
    /// The matrix as `(data, col_stride)` when its columns are contiguous.
    fn as_col_major(&self) -> Option<(&[f32], usize)> {
        None
    }
}

/// A dense matrix in a slice, element `(i, j)` at `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub struct Strided<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

impl<'a> Strided<'a> {
    /// A row-major matrix with `cols` columns.
    pub fn row_major(data: &'a [f32], cols: usize) -> Self {
        Strided {
            data,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Strided {
            data,
            rs: 1,
            cs: cols,
        }
    }
}

impl Source for Strided<'_> {
    fn as_row_major(&self) -> Option<(&[f32], usize)> {
        (self.cs == 1).then_some((self.data, self.rs))
    }
    fn as_col_major(&self) -> Option<(&[f32], usize)> {
        (self.rs == 1).then_some((self.data, self.cs))
    }

    fn pack_rows(&self, r0: usize, nr: usize, c0: usize, kc: usize, w: usize, dst: &mut [f32]) {
        let dst = &mut dst[..kc * w];
        if nr < w {
            dst.fill(0.0);
        }
        if self.rs == 1 {
            // Rows contiguous: each packed column is one contiguous run.
            for p in 0..kc {
                let s = r0 + (c0 + p) * self.cs;
                copy_short(&mut dst[p * w..p * w + nr], &self.data[s..s + nr]);
            }
        } else {
            for i in 0..nr {
                let base = (r0 + i) * self.rs + c0 * self.cs;
                if self.cs == 1 {
                    for (p, &v) in self.data[base..base + kc].iter().enumerate() {
                        dst[p * w + i] = v;
                    }
                } else {
                    for p in 0..kc {
                        dst[p * w + i] = self.data[base + p * self.cs];
                    }
                }
            }
        }
    }

    fn pack_cols(&self, p0: usize, kc: usize, j0: usize, nc: usize, w: usize, dst: &mut [f32]) {
        let dst = &mut dst[..kc * w];
        if nc < w {
            dst.fill(0.0);
        }
        if self.cs == 1 {
            for p in 0..kc {
                let s = (p0 + p) * self.rs + j0;
                copy_short(&mut dst[p * w..p * w + nc], &self.data[s..s + nc]);
            }
        } else {
            for j in 0..nc {
                let base = p0 * self.rs + (j0 + j) * self.cs;
                for p in 0..kc {
                    dst[p * w + j] = self.data[base + p * self.rs];
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for panel-width copies: below 16 elements a loop
/// beats the `memcpy` call (packing a 6-channel gradient made 50k such calls).
#[inline(always)]
fn copy_short(dst: &mut [f32], src: &[f32]) {
    if src.len() >= 16 {
        dst.copy_from_slice(src);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// Floats of the packed A block (`MC x KC`, whole `MR` panels).
const A_PACK: usize = MC.div_ceil(MR) * MR * KC;
/// Floats of the packed B block (`KC x NC`, whole `NR` panels).
const B_PACK: usize = NC.div_ceil(NR) * NR * KC;
// The pack buffers are the pool's per-thread scratch, which every worker makes
// when it starts (so a worker's first GEMM in a later step does not allocate).
const _: () = assert!(A_PACK + B_PACK <= pool::THREAD_SCRATCH);

/// Runs `f` on this thread's pack buffers (A, B), reused across calls. Sized for
/// the largest block at once: which thread runs which part varies from call to
/// call, so growing on demand could allocate in a steady-state step.
fn with_packs<R>(f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    pool::with_scratch(A_PACK + B_PACK, |buf| {
        let (a, b) = buf.split_at_mut(A_PACK);
        f(a, b)
    })
}

/// `C[i, j] (+)= sum_p A[i, p] * B[p, j]` for `i < m`, `j < n`, on this thread.
///
/// `c` holds C row-major with row stride `ldc` (`c[i * ldc + j]`); rows `0..m`
/// of C correspond to rows `a_row0..a_row0 + m` of A. With `accumulate` false C
/// is overwritten (its old contents, even NaN, are ignored).
#[allow(clippy::too_many_arguments)]
pub fn gemm<A: Source + ?Sized, B: Source + ?Sized>(
    m: usize,
    n: usize,
    k: usize,
    a: &A,
    a_row0: usize,
    b: &B,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n, "gemm: C too small");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                c[i * ldc..i * ldc + n].fill(0.0);
            }
        }
        return;
    }
    let use512 = crate::cpu::avx512();
    let use256 = crate::cpu::avx2();
    // A handful of rows (dense layers at small batch): the product is bound by
    // streaming B, which must then be read once, in memory order. With AVX-512,
    // up to 2 * MR rows stream B unpacked too (packing it would cost more than
    // the product, e.g. a dense layer's weights at batch 8).
    if m <= SMALL_M || (use512 && m <= 2 * MR) {
        if let Some((bd, ldb)) = b.as_row_major() {
            assert!(bd.len() >= (k - 1) * ldb + n, "gemm: B too small");
            small_m_stream_b(m, n, k, a, a_row0, bd, ldb, c, ldc, accumulate);
            return;
        }
    }
    if m <= SMALL_M {
        if let (Some((ad, lda)), Some((bd, ldb))) = (a.as_row_major(), b.as_col_major()) {
            assert!(ad.len() >= (a_row0 + m - 1) * lda + k, "gemm: A too small");
            assert!(bd.len() >= (n - 1) * ldb + k, "gemm: B too small");
            small_m_dot(
                m,
                n,
                k,
                &ad[a_row0 * lda..],
                lda,
                bd,
                ldb,
                c,
                ldc,
                accumulate,
            );
            return;
        }
    }
    with_packs(|apack, bpack| {
        for jc in (0..n).step_by(NC) {
            let ncb = (n - jc).min(NC);
            for pc in (0..k).step_by(KC) {
                let kc = (k - pc).min(KC);
                let acc = accumulate || pc > 0;
                for (jp, j0) in (0..ncb).step_by(NR).enumerate() {
                    let nr = (ncb - j0).min(NR);
                    b.pack_cols(pc, kc, jc + j0, nr, NR, &mut bpack[jp * NR * kc..]);
                }
                for ic in (0..m).step_by(MC) {
                    let mcb = (m - ic).min(MC);
                    for (ip, i0) in (0..mcb).step_by(MR).enumerate() {
                        let mr = (mcb - i0).min(MR);
                        a.pack_rows(a_row0 + ic + i0, mr, pc, kc, MR, &mut apack[ip * MR * kc..]);
                    }
                    for (jp, j0) in (0..ncb).step_by(NR).enumerate() {
                        let nr = (ncb - j0).min(NR);
                        let bp = &bpack[jp * NR * kc..(jp + 1) * NR * kc];
                        for (ip, i0) in (0..mcb).step_by(MR).enumerate() {
                            let mr = (mcb - i0).min(MR);
                            let ap = &apack[ip * MR * kc..(ip + 1) * MR * kc];
                            let off = (ic + i0) * ldc + jc + j0;
                            let ctile = &mut c[off..off + (mr - 1) * ldc + nr];
                            if use512 {
                                // SAFETY: AVX-512F is present (checked at run time);
                                // the slices cover every element the kernel touches.
                                unsafe {
                                    kernel_avx512(kc, ap, bp.as_ptr(), NR, ctile, ldc, mr, nr, acc)
                                }
                            } else if use256 {
                                #[cfg(target_arch = "x86_64")]
                                // SAFETY: AVX2 and FMA are present (checked at run time).
                                unsafe {
                                    kernel_avx2(kc, ap, bp, ctile, ldc, mr, nr, acc)
                                }
                            } else {
                                kernel_generic(kc, ap, bp, ctile, ldc, mr, nr, acc)
                            }
                        }
                    }
                }
            }
        }
    });
}

/// B restricted to its columns `j0..`.
struct ColShift<'a, B: ?Sized> {
    inner: &'a B,
    j0: usize,
}

impl<B: Source + ?Sized> Source for ColShift<'_, B> {
    fn pack_rows(&self, r0: usize, nr: usize, c0: usize, kc: usize, w: usize, dst: &mut [f32]) {
        self.inner.pack_rows(r0, nr, c0 + self.j0, kc, w, dst)
    }
    fn pack_cols(&self, p0: usize, kc: usize, j0: usize, nc: usize, w: usize, dst: &mut [f32]) {
        self.inner.pack_cols(p0, kc, j0 + self.j0, nc, w, dst)
    }
    fn as_row_major(&self) -> Option<(&[f32], usize)> {
        self.inner.as_row_major().map(|(d, rs)| (&d[self.j0..], rs))
    }
    fn as_col_major(&self) -> Option<(&[f32], usize)> {
        self.inner
            .as_col_major()
            .map(|(d, cs)| (&d[self.j0 * cs..], cs))
    }
}

/// [`gemm`] with the rows of C split across the thread pool (when the work is
/// large enough to pay for waking the other cores).
#[allow(clippy::too_many_arguments)]
pub fn gemm_par<A: Source + ?Sized, B: Source + ?Sized>(
    m: usize,
    n: usize,
    k: usize,
    a: &A,
    a_row0: usize,
    b: &B,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let flops = 2 * m * n * k;
    let col_panels = n.div_ceil(NR);
    if m <= SMALL_M {
        if let Some(bd) = b.as_row_major() {
            // Whole rows of B per thread: two threads each reading half-rows
            // (a strided pattern the prefetchers miss) measured 14.7 ms
            // against one thread's 6.6 ms for a 41472 x 256 dense layer at
            // batch 8 (busy machine); runs of rows split the bandwidth.
            if !small_m_split_k(m, n, k, a, a_row0, bd, c, ldc, accumulate) {
                gemm(m, n, k, a, a_row0, b, c, ldc, accumulate);
            }
            return;
        }
    }
    if m.div_ceil(MR) < 2 * pool::num_threads() && col_panels >= 2 {
        // Few rows: split the columns instead.
        let parts = pool::parts_for(flops, col_panels);
        if parts > 1 {
            assert!(c.len() >= (m - 1) * ldc + n, "gemm_par: C too small");
            let cp = SendPtr(c.as_mut_ptr());
            pool::run(parts, &|t| {
                let pr = pool::split(col_panels, parts, t);
                let (j0, j1) = (pr.start * NR, (pr.end * NR).min(n));
                if j0 >= j1 {
                    return;
                }
                // SAFETY: columns j0..j1 of every row belong to this part only;
                // the slice spans rows 0..m from column j0 but the part writes
                // nothing outside its columns.
                let cs = unsafe { cp.slice(j0, (m - 1) * ldc + (j1 - j0)) };
                gemm(
                    m,
                    j1 - j0,
                    k,
                    a,
                    a_row0,
                    &ColShift { inner: b, j0 },
                    cs,
                    ldc,
                    accumulate,
                );
            });
            return;
        }
    }
    let parts = pool::parts_for(flops, m.div_ceil(MR));
    if parts <= 1 || m == 0 || n == 0 {
        gemm(m, n, k, a, a_row0, b, c, ldc, accumulate);
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n, "gemm_par: C too small");
    let cp = SendPtr(c.as_mut_ptr());
    for_row_tiles(m, parts, &|rows| {
        let (r0, nr) = (rows.start, rows.len());
        // SAFETY: each part owns rows r0..r1 of C, disjoint from the others.
        let cs = unsafe { cp.slice(r0 * ldc, (nr - 1) * ldc + n) };
        gemm(nr, n, k, a, a_row0 + r0, b, cs, ldc, accumulate);
    });
}

/// Runs `f(r0..r1)` on `parts` parts of the thread pool, the ranges splitting
/// the rows `0..m` into whole `MR`-row tiles (a part left without rows is not
/// called).
pub(crate) fn for_row_tiles(m: usize, parts: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    let tiles = m.div_ceil(MR);
    // At least 3 tiles (more than 2 * MR rows) a part: every part then takes
    // the packed path, as the whole product would, so that the values do not
    // depend on how many parts (cores) there are; see `gemm`'s few-rows paths.
    let parts = parts.min(tiles / 3).max(1);
    pool::run(parts, &|t| {
        let tr = pool::split(tiles, parts, t);
        let r0 = tr.start * MR;
        let r1 = (tr.end * MR).min(m);
        if r0 < r1 {
            f(r0..r1);
        }
    });
}

/// [`gemm_par`] overwriting all of a row-major `m x n` C (row stride `n`), A
/// from its first row.
pub(crate) fn matmul_par<A: Source + ?Sized, B: Source + ?Sized>(
    (m, n, k): (usize, usize, usize),
    a: &A,
    b: &B,
    c: &mut [f32],
) {
    gemm_par(m, n, k, a, 0, b, c, n, false);
}

/// Row-major `C = A * B` (`A: m x k`, `B: k x n`, `C: m x n`) on all cores.
pub fn sgemm(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "sgemm: slice too small"
    );
    matmul_par(
        (m, n, k),
        &Strided::row_major(a, k),
        &Strided::row_major(b, n),
        c,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    fn naive(m: usize, n: usize, k: usize, a: &Strided, b: &Strided) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] +=
                        a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
            }
        }
        c
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let h = (i as u32)
                    .wrapping_mul(2654435761)
                    .wrapping_add(seed.wrapping_mul(40503));
                ((h >> 8) % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_naive_all_shapes_and_transposes() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 7),
            (14, 32, 256),
            (15, 33, 257),
            (29, 70, 600),
            (200, 40, 30),
            (5, 1100, 3),
        ] {
            for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
                let ad = data(m * k, 1);
                let bd = data(k * n, 2);
                let a = if ta {
                    Strided::transposed(&ad, m)
                } else {
                    Strided::row_major(&ad, k)
                };
                let b = if tb {
                    Strided::transposed(&bd, k)
                } else {
                    Strided::row_major(&bd, n)
                };
                let want = naive(m, n, k, &a, &b);
                for par in [false, true] {
                    let mut c = vec![f32::NAN; m * n];
                    if par {
                        gemm_par(m, n, k, &a, 0, &b, &mut c, n, false);
                    } else {
                        gemm(m, n, k, &a, 0, &b, &mut c, n, false);
                    }
                    for (x, y) in c.iter().zip(&want) {
                        assert!(
                            (*x as f64 - y).abs() <= 1e-4 * (1.0 + y.abs()),
                            "{m}x{n}x{k} {ta} {tb}: {x} vs {y}"
                        );
                    }
                    // accumulate adds on top
                    gemm(m, n, k, &a, 0, &b, &mut c, n, true);
                    for (x, y) in c.iter().zip(&want) {
                        assert!((*x as f64 - 2.0 * y).abs() <= 2e-4 * (1.0 + y.abs()));
                    }
                }
            }
        }
    }

    /// The blocked path and the streaming few-row paths, both operand
    /// orientations, on all cores and on one, give the same results with the
    /// portable paths forced as through the switch's own choice (AVX-512 on an
    /// AVX-512 machine without `CNN_PORTABLE`; otherwise portable both times).
    #[test]
    fn portable_paths_match_the_avx512_paths() {
        for &(m, n, k) in &[(3, 70, 33), (20, 40, 33), (29, 70, 600), (200, 40, 30)] {
            for tb in [false, true] {
                let ad = testing::data(m * k, 1);
                let bd = testing::data(k * n, 2);
                let a = Strided::row_major(&ad, k);
                let b = if tb {
                    Strided::transposed(&bd, k)
                } else {
                    Strided::row_major(&bd, n)
                };
                let run = || {
                    let mut c = vec![f32::NAN; m * n];
                    gemm_par(m, n, k, &a, 0, &b, &mut c, n, false);
                    let mut c1 = vec![f32::NAN; m * n];
                    gemm(m, n, k, &a, 0, &b, &mut c1, n, false);
                    (c, c1)
                };
                let (wide, wide1) = run();
                let (slow, slow1) = crate::cpu::portable(run);
                for (x, y) in wide.iter().chain(&wide1).zip(slow.iter().chain(&slow1)) {
                    assert!(
                        (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                        "gemm {m}x{n}x{k} {tb}: {x} vs {y}"
                    );
                }
            }
        }
    }

    /// A dense layer's product at small batch with large weights: B's rows
    /// streamed in parts (4, 3, and none for a B too shallow to cut), right
    /// against a naive product, overwriting and accumulating, with a row
    /// stride wider than C; and the same bits when every part runs on one
    /// thread (inside a part of another job, where the pool does not split).
    #[test]
    fn few_rows_with_large_weights_stream_parts_of_b_in_a_fixed_order() {
        for &(m, n, k) in &[(8, 300, 4000), (16, 1100, 1000), (3, 20_000, 60)] {
            let ldc = n + 3;
            let ad = testing::data(m * k, 1);
            let bd = testing::data(k * n, 2);
            let (a, b) = (Strided::row_major(&ad, k), Strided::row_major(&bd, n));
            let want = naive(m, n, k, &a, &b);
            let start = testing::data(m * ldc, 3);
            for accumulate in [false, true] {
                let mut c = start.clone();
                gemm_par(m, n, k, &a, 0, &b, &mut c, ldc, accumulate);
                for i in 0..m {
                    for j in 0..n {
                        let w = want[i * n + j]
                            + if accumulate {
                                start[i * ldc + j] as f64
                            } else {
                                0.0
                            };
                        let x = c[i * ldc + j] as f64;
                        assert!(
                            (x - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "{m}x{n}x{k} ({i}, {j}): {x} vs {w}"
                        );
                    }
                    let pad = i * ldc + n..(i + 1) * ldc;
                    assert_eq!(c[pad.clone()], start[pad], "wrote between rows");
                }
                let one = std::sync::Mutex::new(start.clone());
                pool::run(2, &|t| {
                    if t == 0 {
                        let mut c1 = one.lock().unwrap();
                        gemm_par(m, n, k, &a, 0, &b, &mut c1, ldc, accumulate);
                    }
                });
                let one = one.into_inner().unwrap();
                assert!(
                    c.iter().zip(&one).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}x{n}x{k}: one thread gave other bits"
                );
            }
        }
    }

    #[test]
    fn generic_kernel_matches_avx512() {
        let (m, n, k) = (20, 40, 33);
        let ad = data(m * k, 3);
        let bd = data(k * n, 4);
        let a = Strided::row_major(&ad, k);
        let b = Strided::row_major(&bd, n);
        let mut ap = vec![0.0; MR * k];
        let mut bp = vec![0.0; NR * k];
        a.pack_rows(0, MR, 0, k, MR, &mut ap);
        b.pack_cols(0, k, 0, NR, NR, &mut bp);
        let mut c1 = vec![0.0; MR * NR];
        let mut c2 = vec![0.0; MR * NR];
        kernel_generic(k, &ap, &bp, &mut c1, NR, MR, NR, false);
        if crate::cpu::avx512() {
            // SAFETY: AVX-512F is present; the packed panels hold k * MR and
            // k * NR values and the tile MR * NR.
            unsafe { kernel_avx512(k, &ap, bp.as_ptr(), NR, &mut c2, NR, MR, NR, false) };
            for (x, y) in c1.iter().zip(&c2) {
                assert!((x - y).abs() < 1e-4);
            }
        }
    }

    /// The AVX2 kernel against the portable one on every partial tile (rows
    /// 1..=MR, columns around each vector edge), overwriting and accumulating.
    /// Runs wherever the CPU has AVX2 and FMA, whatever the switch says.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernel_matches_generic_on_every_edge() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("skipped: this CPU has no AVX2 and FMA");
            return;
        }
        let k = 37;
        let ap = data(MR * k, 5);
        let bp = data(NR * k, 6);
        let ldc = NR + 3;
        for mr in 1..=MR {
            for nr in [1, 5, 8, 9, 15, 16, 17, 24, 31, 32] {
                for acc in [false, true] {
                    let start = data(MR * ldc, 7);
                    let (mut c1, mut c2) = (start.clone(), start.clone());
                    kernel_generic(k, &ap, &bp, &mut c1, ldc, mr, nr, acc);
                    // SAFETY: AVX2 and FMA were detected; the panels hold
                    // k * MR and k * NR values and C MR rows of ldc.
                    unsafe { avx2::kernel_avx2(k, &ap, &bp, &mut c2, ldc, mr, nr, acc) };
                    for (i, (x, y)) in c1.iter().zip(&c2).enumerate() {
                        let inside = i / ldc < mr && i % ldc < nr;
                        if inside {
                            assert!(
                                (x - y).abs() <= 1e-4 * (1.0 + x.abs()),
                                "{mr}x{nr} {acc} at {i}: {x} vs {y}"
                            );
                        } else {
                            assert_eq!(
                                x.to_bits(),
                                y.to_bits(),
                                "{mr}x{nr} {acc}: wrote outside the tile at {i}"
                            );
                        }
                    }
                }
            }
        }
    }
}
