//! The AVX2 (with FMA) register tile of the direct forward pass
//! ([`super::direct`]), chosen by [`super`] when [`crate::cpu::avx2`] allows:
//! what a laptop or cloud CPU without AVX-512 runs instead of the im2col
//! GEMM, whose packing of the image was about a quarter of a ResNet-20
//! training step there.

use super::direct::{self, DkTileFn, Run, TileFn, Tiles};
use super::{Conv2dScratch, Im2col};
use crate::Conv2dSpec;
use std::ops::Range;

/// AVX2 and FMA's register tiles (a value proves the CPU has them).
#[derive(Clone, Copy)]
pub(super) struct Avx2(());

impl Avx2 {
    /// The token, where [`crate::cpu::avx2`] allows.
    pub(super) fn detect() -> Option<Self> {
        crate::cpu::avx2().then_some(Avx2(()))
    }
}

impl Tiles for Avx2 {
    const LANES: usize = 8;

    fn panel_width(n: usize) -> usize {
        if n <= 8 {
            8
        } else {
            16
        }
    }

    fn run(self, s: &Conv2dSpec, r: Run<'_>, scratch: &mut Conv2dScratch) {
        // Accumulators + B vectors + one broadcast within the 16 ymm
        // registers: 12 x 1 + 1 + 1 and 6 x 2 + 2 + 1.
        match Self::panel_width(s.out_c) {
            8 => direct::run_tiles::<Self, 12, 1>(s, r, scratch),
            _ => direct::run_tiles::<Self, 6, 2>(s, r, scratch),
        }
    }

    fn tile<const DMR: usize>(nv: usize) -> TileFn<DMR> {
        match nv {
            1 => direct_tile::<DMR, 1>,
            _ => direct_tile::<DMR, 2>,
        }
    }

    fn dk_tile<const DMR: usize>(nv: usize) -> DkTileFn<DMR> {
        match nv {
            1 => dk_tile::<DMR, 1>,
            _ => dk_tile::<DMR, 2>,
        }
    }

    fn kernel_grad(self, col: &Im2col<'_>, pixels: Range<usize>, dz: &[f32], dk: &mut [f32]) {
        match Self::panel_width(col.s.out_c) {
            8 => direct::kernel_grad_tiles::<Self, 12, 1>(col, pixels, dz, dk),
            _ => direct::kernel_grad_tiles::<Self, 6, 2>(col, pixels, dz, dk),
        }
    }
}

/// One tile of the kernel gradient (see [`DkTileFn`]): `mr <= DMR` rows of
/// dK by `NV` vectors of output channels, summed over `count` pixels.
///
/// # Safety
/// As [`DkTileFn`], with AVX2 and FMA available.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn dk_tile<const DMR: usize, const NV: usize>(
    count: usize,
    pb: *const usize,
    xp: *const f32,
    offs: &[usize; DMR],
    dz: *const f32,
    ldz: usize,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    add: bool,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); NV]; DMR];
    for p in 0..count {
        // SAFETY: p < count: inside the pixel bases and dz's rows (contract).
        let (base, row) = unsafe { (xp.add(*pb.add(p)), dz.add(p * ldz)) };
        let mut bv = [_mm256_setzero_ps(); NV];
        for (v, b) in bv.iter_mut().enumerate() {
            // SAFETY: v < NV: inside the row's columns the tile covers.
            *b = unsafe { _mm256_loadu_ps(row.add(v * 8)) };
        }
        for i in 0..DMR {
            // SAFETY: the window cell at offs[i] is inside the image (contract).
            let a = _mm256_set1_ps(unsafe { *base.add(offs[i]) });
            for v in 0..NV {
                acc[i][v] = _mm256_fmadd_ps(a, bv[v], acc[i][v]);
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (v, &val) in row.iter().enumerate() {
            // SAFETY: i < mr, v < NV: this tile's cells of C (contract).
            unsafe {
                let at = c.add(i * ldc + v * 8);
                let val = if add {
                    _mm256_add_ps(_mm256_loadu_ps(at), val)
                } else {
                    val
                };
                _mm256_storeu_ps(at, val);
            }
        }
    }
}

/// One `mr x nc` tile of the direct forward (`mr <= DMR`, `nc <= NV * 8`):
/// `c[i, j] = act(bias[j] + sum_p xp[pb[i] + toff[p]] * bp[p * NV * 8 + j])`,
/// with relu applied here when asked.
///
/// # Safety
/// AVX2 and FMA must be available; `toff` must hold `kk` offsets with
/// `xp + pb[i] + toff[p]` readable for every `i < DMR`, `p < kk`; `bp` must hold
/// `kk * NV * 8` floats and `bias` `NV * 8`; `c + i * ldc + j` must be
/// writable for `i < mr`, `j < nc`, and touched by no other thread meanwhile.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn direct_tile<const DMR: usize, const NV: usize>(
    kk: usize,
    toff: *const usize,
    xp: *const f32,
    pb: &[usize; DMR],
    bp: *const f32,
    bias: *const f32,
    relu: bool,
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nc: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); NV]; DMR];
    for row in acc.iter_mut() {
        for (v, a) in row.iter_mut().enumerate() {
            // SAFETY: v < NV: inside the NV * 8 bias values.
            *a = unsafe { _mm256_loadu_ps(bias.add(v * 8)) };
        }
    }
    let mut ptrs = [xp; DMR];
    for i in 0..DMR {
        // SAFETY: the pixel's window base lies inside the image (contract).
        ptrs[i] = unsafe { xp.add(pb[i]) };
    }
    for p in 0..kk {
        // SAFETY: p < kk: inside the offset table.
        let t = unsafe { *toff.add(p) };
        let mut bv = [_mm256_setzero_ps(); NV];
        for (v, b) in bv.iter_mut().enumerate() {
            // SAFETY: p < kk and v < NV: inside the kk * NV * 8 panel values.
            *b = unsafe { _mm256_loadu_ps(bp.add((p * NV + v) * 8)) };
        }
        for i in 0..DMR {
            // SAFETY: the window cell at offset t is readable (contract).
            let a = _mm256_set1_ps(unsafe { *ptrs[i].add(t) });
            for v in 0..NV {
                acc[i][v] = _mm256_fmadd_ps(a, bv[v], acc[i][v]);
            }
        }
    }
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for v in 0..NV {
        let left = nc.saturating_sub(v * 8);
        if left == 0 {
            break;
        }
        // Lanes below `left` (at most 8, so the cast is exact).
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(left.min(8) as i32), lane);
        for (i, row) in acc.iter().enumerate().take(mr) {
            let mut val = row[v];
            if relu {
                // Zero where val < 0 (ordered compare: NaN stays NaN).
                let neg = _mm256_cmp_ps::<_CMP_LT_OQ>(val, _mm256_setzero_ps());
                val = _mm256_blendv_ps(val, _mm256_setzero_ps(), neg);
            }
            // SAFETY: i < mr and the mask covers columns below nc only: this
            // tile's cells of C (contract); masked-out lanes are not touched.
            unsafe { _mm256_maskstore_ps(c.add(i * ldc + v * 8), mask, val) };
        }
    }
}
