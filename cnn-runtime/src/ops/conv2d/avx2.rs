//! The AVX2 (with FMA) register tile of the direct forward pass
//! ([`super::direct`]), chosen by [`super`] when [`crate::cpu::avx2`] allows:
//! what a laptop or cloud CPU without AVX-512 runs instead of the im2col
//! GEMM, whose packing of the image was about a quarter of a ResNet-20
//! training step there.

use super::direct::{self, DkTileFn, Run, TileFn, Tiles};
use super::{Conv2dScratch, Im2col};
use crate::Conv2dSpec;
use std::ops::Range;

pub(super) use crate::ops::simd::Avx2;

impl Tiles for Avx2 {
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

direct::tile_entry_points!(Avx2, "avx2,fma");
