//! The AVX-512 microkernel of [`super::gemm`]: a `14 x 32` tile in 28 zmm
//! accumulators, B read through masked loads (so it may be an unpacked
//! matrix whose last panel is narrower).

use super::MR;
#[cfg(not(target_arch = "x86_64"))]
use super::{portable::kernel_generic, NR};

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
        let b0 = _mm512_maskz_loadu_ps(l0, bp.add(p * ldb));
        let b1 = _mm512_maskz_loadu_ps(l1, bp.add(p * ldb + 16));
        let arow = ap.add(p * MR);
        for i in 0..MR {
            let av = _mm512_set1_ps(*arow.add(i));
            c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
        }
    }
    let m0: __mmask16 = if nr >= 16 {
        0xffff
    } else {
        ((1u32 << nr) - 1) as u16
    };
    let m1: __mmask16 = if nr >= 32 {
        0xffff
    } else if nr > 16 {
        ((1u32 << (nr - 16)) - 1) as u16
    } else {
        0
    };
    let cp = c.as_mut_ptr();
    for i in 0..mr {
        let row = cp.add(i * ldc);
        let (mut v0, mut v1) = (c0[i], c1[i]);
        if acc {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row.add(16)));
        }
        _mm512_mask_storeu_ps(row, m0, v0);
        _mm512_mask_storeu_ps(row.add(16), m1, v1);
    }
}

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
    kernel_generic(
        kc,
        a,
        std::slice::from_raw_parts(bp, kc * NR),
        c,
        ldc,
        mr,
        nr,
        acc,
    )
}
