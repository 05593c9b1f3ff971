//! The AVX2 + FMA microkernel of [`super::gemm`], for the CPUs without AVX-512
//! (most laptops and many cloud machines). It reads the same packed panels as
//! the AVX-512 kernel (`MR x KC` of A, `KC x NR` of B) and walks the `14 x 32`
//! tile in strips that fit AVX2's 16 registers: two `6 x 16` strips per half of
//! the columns (12 accumulators, 2 B vectors, 1 broadcast A value) and a
//! `2 x 32` strip for the last two rows (8 accumulators, 4 B vectors).

use super::{MR, NR};

/// `C (+)= A B` on one tile: `mr x nr` of C (`mr <= MR`, `nr <= NR`) from a
/// packed A panel (`kc x MR`) and a packed B panel (`kc x NR`, zero-padded).
///
/// # Safety
/// AVX2 and FMA must be available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn kernel_avx2(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    mr: usize,
    nr: usize,
    acc: bool,
) {
    assert!(
        a.len() >= kc * MR && b.len() >= kc * NR,
        "kernel_avx2: short panel"
    );
    assert!(mr <= MR && nr <= NR && (mr == 0 || c.len() >= (mr - 1) * ldc + nr));
    const _: () = assert!(MR == 6 + 6 + 2 && NR == 32);
    for r0 in [0, 6] {
        for c0 in [0, 16] {
            if r0 < mr && c0 < nr {
                // SAFETY: this function's features; the strip is inside the tile.
                unsafe { strip::<6, 2>(kc, a, b, r0, c0, c, ldc, mr, nr, acc) };
            }
        }
    }
    if 12 < mr {
        // SAFETY: as above.
        unsafe { strip::<2, 4>(kc, a, b, 12, 0, c, ldc, mr, nr, acc) };
    }
}

/// Rows `r0..r0 + R` and columns `c0..c0 + 8 V` of the tile, kept in `R * V`
/// accumulators over the whole depth; stores the part inside `mr x nr`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn strip<const R: usize, const V: usize>(
    kc: usize,
    a: &[f32],
    b: &[f32],
    r0: usize,
    c0: usize,
    c: &mut [f32],
    ldc: usize,
    mr: usize,
    nr: usize,
    acc: bool,
) {
    use std::arch::x86_64::*;
    let mut t = [[_mm256_setzero_ps(); V]; R];
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    for p in 0..kc {
        let mut bv = [_mm256_setzero_ps(); V];
        for (v, x) in bv.iter_mut().enumerate() {
            // SAFETY: p < kc and c0 + 8 V <= NR: inside the B panel, whose
            // length the caller asserted.
            *x = unsafe { _mm256_loadu_ps(bp.add(p * NR + c0 + 8 * v)) };
        }
        for (i, row) in t.iter_mut().enumerate() {
            // SAFETY: r0 + i < MR: inside row p of the A panel.
            let av = _mm256_set1_ps(unsafe { *ap.add(p * MR + r0 + i) });
            for v in 0..V {
                row[v] = _mm256_fmadd_ps(av, bv[v], row[v]);
            }
        }
    }
    for (i, row) in t.iter().enumerate().take(mr.saturating_sub(r0)) {
        let line = (r0 + i) * ldc;
        for (v, &x) in row.iter().enumerate() {
            let j = c0 + 8 * v;
            if j >= nr {
                break;
            }
            let out = &mut c[line + j..line + nr.min(j + 8)];
            let mut lanes = [0f32; 8];
            // SAFETY: `lanes` holds 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), x) };
            for (o, l) in out.iter_mut().zip(lanes) {
                *o = if acc { *o + l } else { l };
            }
        }
    }
}
