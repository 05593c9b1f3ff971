//! The few-row paths of [`super::gemm`] (dense layers at small batch): with a
//! handful of rows of C the product is bound by streaming B, so B is read in
//! place, once, in memory order, instead of being packed.

use super::avx512::kernel_avx512;
use super::{with_packs, Source, KC, MR, NR};

/// Largest row count handled by the streaming small-`m` paths.
pub(super) const SMALL_M: usize = 16;

/// `C (+)= A B` for few rows, B row-major: `C[i, :] += A[i, p] * B[p, :]`, so each
/// row of B is read once, contiguously (the register-blocked kernel read it in
/// 128-byte pieces 1 KiB apart, which defeated the prefetchers: 18 ms for a
/// 41472 x 256 dense layer at batch 8, now 6.6 ms; the memory bound is ~2 ms).
#[allow(clippy::too_many_arguments)]
pub(super) fn small_m_axpy<A: Source + ?Sized>(
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
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn body(
        m: usize,
        nc: usize,
        kc: usize,
        ap: &[f32],
        bd: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
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
    /// `body` compiled for AVX-512.
    ///
    /// # Safety
    /// AVX-512F, AVX2 and FMA must be available.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn wide(
        m: usize,
        nc: usize,
        kc: usize,
        ap: &[f32],
        bd: &[f32],
        ldb: usize,
        c: &mut [f32],
        ldc: usize,
    ) {
        body(m, nc, kc, ap, bd, ldb, c, ldc)
    }
    // Column chunks keep the m rows of C being updated in L1.
    const NCH: usize = 512;
    with_packs(|apack, _| {
        for j0 in (0..n).step_by(NCH) {
            let nc = (n - j0).min(NCH);
            if !accumulate {
                for i in 0..m {
                    c[i * ldc + j0..i * ldc + j0 + nc].fill(0.0);
                }
            }
            for pc in (0..k).step_by(KC) {
                let kc = (k - pc).min(KC);
                a.pack_rows(a_row0, m, pc, kc, m, apack);
                let bs = &bd[pc * ldb + j0..];
                let cs = &mut c[j0..];
                #[cfg(target_arch = "x86_64")]
                if crate::cpu::avx512() {
                    // SAFETY: the features were detected at run time.
                    unsafe { wide(m, nc, kc, apack, bs, ldb, cs, ldc) };
                    continue;
                }
                body(m, nc, kc, apack, bs, ldb, cs, ldc);
            }
        }
    });
}

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
) {
    #[inline(always)]
    fn dot(x: &[f32], y: &[f32]) -> f32 {
        // 64 lanes = 4 independent vector chains, then 16, then scalars.
        let mut acc = [0f32; 64];
        let xc = x.chunks_exact(64);
        let yc = y.chunks_exact(64);
        let (xr, yr) = (xc.remainder(), yc.remainder());
        for (a, b) in xc.zip(yc) {
            for l in 0..64 {
                acc[l] += a[l] * b[l];
            }
        }
        let mut acc16 = [0f32; 16];
        for q in 0..4 {
            for l in 0..16 {
                acc16[l] += acc[q * 16 + l];
            }
        }
        let x16 = xr.chunks_exact(16);
        let y16 = yr.chunks_exact(16);
        let (xt, yt) = (x16.remainder(), y16.remainder());
        for (a, b) in x16.zip(y16) {
            for l in 0..16 {
                acc16[l] += a[l] * b[l];
            }
        }
        let mut s: f32 = acc16.iter().sum();
        for (a, b) in xt.iter().zip(yt) {
            s += a * b;
        }
        s
    }
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn body(
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
    ) {
        for j in 0..n {
            let bcol = &bd[j * ldb..j * ldb + k];
            for i in 0..m {
                let d = dot(&ad[i * lda..i * lda + k], bcol);
                let cv = &mut c[i * ldc + j];
                *cv = if accumulate { *cv + d } else { d };
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        /// `body` compiled for AVX-512.
        ///
        /// # Safety
        /// AVX-512F, AVX2 and FMA must be available.
        #[target_feature(enable = "avx512f,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn wide(
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
        ) {
            body(m, n, k, ad, lda, bd, ldb, c, ldc, accumulate)
        }
        if crate::cpu::avx512() {
            // SAFETY: the features were detected at run time.
            unsafe { wide(m, n, k, ad, lda, bd, ldb, c, ldc, accumulate) };
            return;
        }
    }
    body(m, n, k, ad, lda, bd, ldb, c, ldc, accumulate)
}

/// `C (+)= A B` for at most `2 * MR` rows, B read in place (row-major).
#[allow(clippy::too_many_arguments)]
pub(super) fn small_m_direct_b<A: Source + ?Sized>(
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
                    // SAFETY: AVX-512F detected by the caller; rows pc..pc+kc and
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
