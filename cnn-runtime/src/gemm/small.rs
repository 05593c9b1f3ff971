//! The few-row paths of [`super::gemm`] (dense layers at small batch): with a
//! handful of rows of C the product is bound by streaming B, so B is read in
//! place, once, in memory order, instead of being packed.

use super::avx512::kernel_avx512;
use super::{with_packs, Source, KC, MR, NR};
use crate::cpu::avx512_twin;
use crate::pool::{self, SendPtr};
use std::ops::Range;

/// Largest row count handled by the streaming small-`m` paths.
pub(super) const SMALL_M: usize = 16;

/// `C (+)= A B` for few rows (at most [`SMALL_M`], or `2 * MR` where AVX-512 is
/// available), B row-major and read in place, once.
///
/// * Up to [`SMALL_M`] rows: `C[i, :] += A[i, p] * B[p, :]`, so each row of B is
///   read once, contiguously (the register-blocked kernel read it in 128-byte
///   pieces 1 KiB apart, which defeated the prefetchers: 18 ms for a 41472 x 256
///   dense layer at batch 8, now 6.6 ms; the memory bound is ~2 ms).
/// * More (AVX-512 only): the microkernel on packed A panels and unpacked B.
#[allow(clippy::too_many_arguments)]
pub(super) fn small_m_stream_b<A: Source + ?Sized>(
    m: usize,
    n: usize,
    k: usize,
    a: &A,
    a_row0: usize,
    bd: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    if m > SMALL_M {
        direct_b(m, n, k, (a, a_row0), (bd, ldb), (c, ldc), accumulate);
        return;
    }
    with_packs(|apack, _| {
        stream_rows(
            m,
            n,
            0..k,
            (a, a_row0),
            (bd, ldb),
            (c, ldc),
            accumulate,
            apack,
        )
    });
}

/// Weights (`k x n` values of B) from which [`small_m_split_k`] streams B's
/// rows in several parts: 4 MB, well past the caches.
const SPLIT_K_MIN: usize = 1 << 20;

/// [`small_m_stream_b`] for at most [`SMALL_M`] rows with B's rows cut into
/// parts streamed on the pool: each part reads a contiguous run of whole rows
/// (one core streaming alone left the other's share of the memory bandwidth
/// unused; two cores on half-rows each defeated the prefetchers, see
/// `gemm_par`). Part 0 writes C, the others private sums added to C in part
/// order afterwards. The number of parts depends on the shape alone, so the
/// result is the same bits on any number of cores. Returns `false`, having done
/// nothing, for a product too small to gain or too wide for the scratch.
#[allow(clippy::too_many_arguments)]
pub(super) fn small_m_split_k<A: Source + ?Sized>(
    m: usize,
    n: usize,
    k: usize,
    a: &A,
    a_row0: usize,
    (bd, ldb): (&[f32], usize),
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) -> bool {
    if m == 0 || m > SMALL_M || k.saturating_mul(n) < SPLIT_K_MIN {
        return false;
    }
    // Each part packs its A block; parts 1.. also keep an m x n sum.
    let need = |parts: usize| parts * m * KC + (parts - 1) * m * n;
    let Some(parts) = (2..=pool::FIXED_PARTS)
        .rev()
        .find(|&p| need(p) <= pool::THREAD_SCRATCH && k >= p * KC)
    else {
        return false;
    };
    assert!(
        c.len() >= (m - 1) * ldc + n && bd.len() >= (k - 1) * ldb + n,
        "gemm: C or B too small"
    );
    pool::with_scratch(need(parts), |buf| {
        let (apacks, sums) = buf.split_at_mut(parts * m * KC);
        let (ap, sp, cp) = (
            SendPtr(apacks.as_mut_ptr()),
            SendPtr(sums.as_mut_ptr()),
            SendPtr(c.as_mut_ptr()),
        );
        let clen = c.len();
        pool::run(parts, &|t| {
            let ks = pool::split(k, parts, t);
            // SAFETY: part t alone uses the A block t of `apacks`, and (t > 0)
            // the sum t - 1 of `sums`, or (t = 0) C; all outlive the run.
            let apack = unsafe { ap.slice(t * m * KC, m * KC) };
            if t == 0 {
                // SAFETY: as above: C is part 0's alone.
                let c = unsafe { cp.slice(0, clen) };
                stream_rows(
                    m,
                    n,
                    ks,
                    (a, a_row0),
                    (bd, ldb),
                    (c, ldc),
                    accumulate,
                    apack,
                );
            } else {
                // SAFETY: as above.
                let sum = unsafe { sp.slice((t - 1) * m * n, m * n) };
                stream_rows(m, n, ks, (a, a_row0), (bd, ldb), (sum, n), false, apack);
            }
        });
        for sum in sums.chunks_exact(m * n) {
            for (i, srow) in sum.chunks_exact(n).enumerate() {
                for (cv, sv) in c[i * ldc..i * ldc + n].iter_mut().zip(srow) {
                    *cv += sv;
                }
            }
        }
    });
    true
}

/// `C (+)= A[:, ks] B[ks, :]` for at most [`SMALL_M`] rows, B's rows `ks` read
/// once, in order; `apack` holds `m * KC` values.
#[allow(clippy::too_many_arguments)]
fn stream_rows<A: Source + ?Sized>(
    m: usize,
    n: usize,
    ks: Range<usize>,
    (a, a_row0): (&A, usize),
    (bd, ldb): (&[f32], usize),
    (c, ldc): (&mut [f32], usize),
    accumulate: bool,
    apack: &mut [f32],
) {
    // Column chunks keep the m rows of C being updated in L1.
    const NCH: usize = 512;
    for j0 in (0..n).step_by(NCH) {
        let nc = (n - j0).min(NCH);
        if !accumulate {
            for i in 0..m {
                c[i * ldc + j0..i * ldc + j0 + nc].fill(0.0);
            }
        }
        for pc in ks.clone().step_by(KC) {
            let kc = (ks.end - pc).min(KC);
            a.pack_rows(a_row0, m, pc, kc, m, apack);
            let bs = &bd[pc * ldb + j0..];
            let cs = &mut c[j0..];
            axpy_block(m, nc, kc, apack, bs, ldb, cs, ldc);
        }
    }
}

avx512_twin! {
    /// One block of the few-row product: `C[i, :nc] += A[i, p] B[p, :nc]` for
    /// `p < kc`, A packed (`ap[p * m + i]`).
    #[allow(clippy::too_many_arguments)]
    fn axpy_block(
        m: usize,
        nc: usize,
        kc: usize,
        ap: &[f32],
        bd: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) => "avx512f,avx2,fma", {
        for p in 0..kc {
            let brow = &bd[p * ldb..p * ldb + nc];
            for i in 0..m {
                let av = ap[p * m + i];
                let crow = &mut c[i * ldc..i * ldc + nc];
                for (cv, bv) in crow.iter_mut().zip(brow) {
                    *cv += av * bv;
                }
            }
        }
    }
}

/// `acc[l] += x[l] y[l]` over the whole `W`-value chunks of `x` and `y` (one
/// sum per lane); returns the remainders.
#[inline(always)]
fn lane_dots<'a, const W: usize>(
    acc: &mut [f32; W],
    x: &'a [f32],
    y: &'a [f32],
) -> (&'a [f32], &'a [f32]) {
    let (xc, yc) = (x.chunks_exact(W), y.chunks_exact(W));
    let rest = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..W {
            acc[l] += a[l] * b[l];
        }
    }
    rest
}

/// 64 lanes = 4 independent vector chains, then 16, then scalars.
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; 64];
    let (xr, yr) = lane_dots(&mut acc, x, y);
    let mut acc16 = [0f32; 16];
    for q in 0..4 {
        for l in 0..16 {
            acc16[l] += acc[q * 16 + l];
        }
    }
    let (xt, yt) = lane_dots(&mut acc16, xr, yr);
    let mut s: f32 = acc16.iter().sum();
    for (a, b) in xt.iter().zip(yt) {
        s += a * b;
    }
    s
}

avx512_twin! {
    /// `C (+)= A B` for few rows, A row-major and B column-major (e.g. `dz W^T`):
    /// each entry is a dot product of contiguous vectors, B read once in order.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn small_m_dot(
        m: usize,
        n: usize,
        k: usize,
        ad: &[f32],
        lda: usize,
        bd: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
        accumulate: bool,
    ) => "avx512f,avx2,fma", {
        for j in 0..n {
            let bcol = &bd[j * ldb..j * ldb + k];
            for i in 0..m {
                let d = dot(&ad[i * lda..i * lda + k], bcol);
                let cv = &mut c[i * ldc + j];
                *cv = if accumulate { *cv + d } else { d };
            }
        }
    }
}

/// [`small_m_stream_b`] for `SMALL_M < m <= 2 * MR` (AVX-512 only): packed A
/// panels, B read in place by the microkernel.
fn direct_b<A: Source + ?Sized>(
    m: usize,
    n: usize,
    k: usize,
    (a, a_row0): (&A, usize),
    (bd, ldb): (&[f32], usize),
    (c, ldc): (&mut [f32], usize),
    accumulate: bool,
) {
    with_packs(|apack, _| {
        for pc in (0..k).step_by(KC) {
            let kc = (k - pc).min(KC);
            let acc = accumulate || pc > 0;
            for (ip, i0) in (0..m).step_by(MR).enumerate() {
                let mr = (m - i0).min(MR);
                a.pack_rows(a_row0 + i0, mr, pc, kc, MR, &mut apack[ip * MR * kc..]);
            }
            for j0 in (0..n).step_by(NR) {
                let nr = (n - j0).min(NR);
                for (ip, i0) in (0..m).step_by(MR).enumerate() {
                    let mr = (m - i0).min(MR);
                    let ap = &apack[ip * MR * kc..(ip + 1) * MR * kc];
                    let off = i0 * ldc + j0;
                    let ctile = &mut c[off..off + (mr - 1) * ldc + nr];
                    // SAFETY: AVX-512F detected by the caller (`gemm` streams B for
                    // more than SMALL_M rows only then); rows pc..pc+kc and
                    // columns j0..j0+nr of B are inside `bd` (checked by the
                    // caller's assert), loads beyond nr are masked off.
                    unsafe {
                        kernel_avx512(
                            kc,
                            ap,
                            bd.as_ptr().add(pc * ldb + j0),
                            ldb,
                            ctile,
                            ldc,
                            mr,
                            nr,
                            acc,
                        )
                    }
                }
            }
        }
    });
}
