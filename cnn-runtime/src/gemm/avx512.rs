//! The AVX-512 microkernel of [`super::gemm`]: a `14 x 32` tile in 28 zmm
//! accumulators, B read through masked loads (so it may be an unpacked
//! matrix whose last panel is narrower).

#[cfg(not(target_arch = "x86_64"))]
use super::portable::kernel_generic;
use super::{MR, NR};

/// `C (+)= A B` on one tile: `mr x nr` of C (`mr <= MR`, `nr <= NR`) from a
/// packed A panel (`kc x MR`) and B rows `bp + p * ldb` for `p < kc`.
///
/// # Safety
/// AVX-512F must be available; `a` must hold `kc * MR` values; for every
/// `p < kc`, `bp + p * ldb` must be readable for `nr` floats (lanes past `nr`
/// are masked off, never touched); `c` must hold `(mr - 1) * ldc + nr` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn kernel_avx512(
    kc: usize,
    a: &[f32],
    bp: *const f32,
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    mr: usize,
    nr: usize,
    acc: bool,
) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= kc * MR);
    debug_assert!(mr <= MR && nr <= NR && (mr == 0 || c.len() >= (mr - 1) * ldc + nr));
    let mut c0 = [_mm512_setzero_ps(); MR];
    let mut c1 = [_mm512_setzero_ps(); MR];
    let ap = a.as_ptr();
    // Masked loads: B may be an unpacked matrix whose last panel is narrower.
    let l0: __mmask16 = if nr >= 16 {
        0xffff
    } else {
        ((1u32 << nr) - 1) as u16
    };
    let l1: __mmask16 = if nr >= 32 {
        0xffff
    } else if nr > 16 {
        ((1u32 << (nr - 16)) - 1) as u16
    } else {
        0
    };
    for p in 0..kc {
        // SAFETY: row p of B is readable for nr floats and the masks cover only
        // those lanes (caller's contract); A holds kc * MR values, so row p of
        // the panel is in bounds.
        let (b0, b1, arow) = unsafe {
            (
                _mm512_maskz_loadu_ps(l0, bp.add(p * ldb)),
                _mm512_maskz_loadu_ps(l1, bp.add(p * ldb + 16)),
                ap.add(p * MR),
            )
        };
        for i in 0..MR {
            // SAFETY: i < MR: inside row p of the A panel.
            let av = _mm512_set1_ps(unsafe { *arow.add(i) });
            c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
        }
    }
    // The stores cover the same lanes as the loads.
    let (m0, m1) = (l0, l1);
    let cp = c.as_mut_ptr();
    for i in 0..mr {
        let (mut v0, mut v1) = (c0[i], c1[i]);
        // SAFETY: i < mr, so row i of the tile starts inside `c`, which holds
        // its first nr values (caller's contract); the masks cover only those.
        unsafe {
            let row = cp.add(i * ldc);
            if acc {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row.add(16)));
            }
            _mm512_mask_storeu_ps(row, m0, v0);
            _mm512_mask_storeu_ps(row.add(16), m1, v1);
        }
    }
}

/// Stand-in where there is no AVX-512 (never called: [`crate::cpu::avx512`] is
/// false there): the portable kernel on B as a packed panel.
///
/// # Safety
/// `bp` must be readable for `kc * NR` floats.
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn kernel_avx512(
    kc: usize,
    a: &[f32],
    bp: *const f32,
    _ldb: usize,
    c: &mut [f32],
    ldc: usize,
    mr: usize,
    nr: usize,
    acc: bool,
) {
    // SAFETY: the caller's contract.
    let b = unsafe { std::slice::from_raw_parts(bp, kc * NR) };
    kernel_generic(kc, a, b, c, ldc, mr, nr, acc)
}
