//! The AVX-512 paths of the convolution, chosen by [`super`] when
//! [`crate::cpu::avx512`] allows: the forward pass as an indirect GEMM (A never
//! packed), the stride-1 input gradient as a forward pass of the flipped kernel
//! (no col2im), and the kernel gradient of a single-channel input vectorised
//! over pixels. Each has a portable counterpart in [`super`] (im2col GEMM).
//! The forward pass and the stride-1 input gradient are [`super::direct`],
//! over this file's tile.

use super::direct::{self, DkTileFn, Run, TileFn, Tiles};
use super::{Conv2dScratch, Im2col};
use std::ops::Range;

use crate::Conv2dSpec;

pub(super) use crate::ops::simd::Avx512;

impl Tiles for Avx512 {
    fn panel_width(n: usize) -> usize {
        match n {
            0..=16 => 16,
            17..=32 => 32,
            33..=48 => 48,
            _ => 64,
        }
    }

    fn run(self, s: &Conv2dSpec, r: Run<'_>, scratch: &mut Conv2dScratch) {
        // Tile shapes keep accumulators + B vectors + broadcasts within the 32
        // zmm registers and the per-row pointers within the general registers
        // (measured: 14x32 spilled both and ran at half speed).
        match Self::panel_width(s.out_c) {
            16 => direct::run_tiles::<Self, 12, 1>(s, r, scratch),
            32 => direct::run_tiles::<Self, 10, 2>(s, r, scratch),
            48 => direct::run_tiles::<Self, 8, 3>(s, r, scratch),
            _ => direct::run_tiles::<Self, 6, 4>(s, r, scratch),
        }
    }

    fn tile<const DMR: usize>(nv: usize) -> TileFn<DMR> {
        match nv {
            1 => direct_tile::<DMR, 1>,
            2 => direct_tile::<DMR, 2>,
            3 => direct_tile::<DMR, 3>,
            _ => direct_tile::<DMR, 4>,
        }
    }

    fn dk_tile<const DMR: usize>(nv: usize) -> DkTileFn<DMR> {
        match nv {
            1 => dk_tile::<DMR, 1>,
            2 => dk_tile::<DMR, 2>,
            3 => dk_tile::<DMR, 3>,
            _ => dk_tile::<DMR, 4>,
        }
    }

    fn kernel_grad(self, col: &Im2col<'_>, pixels: Range<usize>, dz: &[f32], dk: &mut [f32]) {
        // The forward pass's tile shapes: the same register budget.
        match Self::panel_width(col.s.out_c) {
            16 => direct::kernel_grad_tiles::<Self, 12, 1>(col, pixels, dz, dk),
            32 => direct::kernel_grad_tiles::<Self, 10, 2>(col, pixels, dz, dk),
            48 => direct::kernel_grad_tiles::<Self, 8, 3>(col, pixels, dz, dk),
            _ => direct::kernel_grad_tiles::<Self, 6, 4>(col, pixels, dz, dk),
        }
    }
}

/// Most accumulators (`KH * KW * COUT`) of the single-channel kernel gradient.
const DK_CIN1_MAX_ACC: usize = 240;

/// Whether [`dk_cin1`] applies: one input channel, unit horizontal stride, and
/// few enough accumulators.
pub(super) fn dk_cin1_fits(s: &Conv2dSpec) -> bool {
    s.in_c == 1 && s.sw == 1 && s.out_c <= 16 && s.kh * s.kw * s.out_c <= DK_CIN1_MAX_ACC
}

/// Kernel gradient of a single-channel-input conv with unit horizontal stride,
/// over samples `samples`: 16 consecutive output pixels of a row read 16
/// consecutive input cells per tap, so `dK[t, o] += x_tap . dz_o` runs on full
/// vectors (the GEMM form filled 6 of 32 lanes for LeNet's first layer).
///
/// # Safety
/// AVX-512F must be available, [`dk_cin1_fits`] must hold for `s`, and `col`
/// must be the im2col view [`prepare`] made for `s` over a batch that includes
/// `samples` (its padded image holds every window).
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn dk_cin1(
    s: &Conv2dSpec,
    samples: std::ops::Range<usize>,
    col: &Im2col<'_>,
    dz: &[f32],
    dk: &mut [f32],
) {
    use std::arch::x86_64::*;
    let n = s.out_c;
    let kk = s.kh * s.kw;
    let mut acc = [_mm512_setzero_ps(); DK_CIN1_MAX_ACC];
    let mut dzt = [[0f32; 16]; 16];
    let xp = col.xp.as_ptr();
    for img in samples {
        for oh in 0..s.out_h {
            let rowbase = (img * col.hp + oh * s.sh) * col.wp;
            let dzrow =
                &dz[(img * s.out_h + oh) * s.out_w * n..(img * s.out_h + oh + 1) * s.out_w * n];
            for ow0 in (0..s.out_w).step_by(16) {
                let cnt = (s.out_w - ow0).min(16);
                let mask: __mmask16 = if cnt == 16 {
                    0xffff
                } else {
                    ((1u32 << cnt) - 1) as u16
                };
                // Transpose the 16 x n block of dz into n vectors (zero past cnt).
                for (i, px) in dzt.iter_mut().enumerate() {
                    for o in 0..n {
                        px[o] = if i < cnt {
                            dzrow[(ow0 + i) * n + o]
                        } else {
                            0.0
                        };
                    }
                }
                let mut dzv = [_mm512_setzero_ps(); 16];
                for (o, v) in dzv.iter_mut().enumerate().take(n) {
                    let mut lanes = [0f32; 16];
                    for (i, l) in lanes.iter_mut().enumerate() {
                        *l = dzt[i][o];
                    }
                    // SAFETY: `lanes` holds 16 floats.
                    *v = unsafe { _mm512_loadu_ps(lanes.as_ptr()) };
                }
                for t in 0..kk {
                    // SAFETY: the window of output pixel (img, oh, ow0 + i) at tap
                    // t lies inside the padded image for i < cnt (`prepare`,
                    // caller's contract), and the mask covers only those lanes.
                    let xv =
                        unsafe { _mm512_maskz_loadu_ps(mask, xp.add(rowbase + ow0 + col.toff[t])) };
                    for o in 0..n {
                        acc[t * n + o] = _mm512_fmadd_ps(xv, dzv[o], acc[t * n + o]);
                    }
                }
            }
        }
    }
    for (d, a) in dk.iter_mut().zip(&acc[..kk * n]) {
        *d = _mm512_reduce_add_ps(*a);
    }
}

direct::tile_entry_points!(Avx512, "avx512f");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, conv_backward, conv_forward, data};
    use crate::{Activation, Padding, Window};

    /// A kernel packed once gives the forward pass of packing per call, bit
    /// for bit, over the four panel widths and narrower last panels, with and
    /// without a bias; a pack
    /// for another kernel shape is refused.
    #[test]
    fn packed_forward_is_the_forward_pass() {
        use crate::ops::conv2d::{conv2d_forward, conv2d_forward_packed, conv2d_pack};
        let mut packed = super::super::PackedConv::default();
        for (f, bias) in [(5, true), (20, false), (40, true), (70, false), (100, true)] {
            let s = Conv2dSpec::new([7, 6, 3], f, Window::new([3, 3], Padding::Same));
            let batch = 2;
            let x = data(batch * 7 * 6 * 3, 1);
            let k = data(9 * 3 * f, 2);
            let b = data(f, 3);
            let b = bias.then_some(&b[..]);
            let mut scratch = Conv2dScratch::default();
            let mut want = vec![0f32; batch * 7 * 6 * f];
            conv2d_forward(
                &s,
                Activation::Elu,
                batch,
                &x,
                &k,
                b,
                &mut want,
                &mut scratch,
            );
            if !conv2d_pack(&s, &k, b, &mut packed) {
                assert!(!crate::cpu::avx512(), "the AVX-512 path packs");
                return;
            }
            let mut got = vec![0f32; want.len()];
            let a = Activation::Elu;
            conv2d_forward_packed(&s, a, batch, &x, &packed, &mut got, &mut scratch);
            assert_eq!(got, want, "{f} filters");
        }
        let s = Conv2dSpec::new([7, 6, 3], 8, Window::new([3, 3], Padding::Same));
        let other = std::panic::catch_unwind(|| {
            let mut y = vec![0f32; 7 * 6 * 8];
            let mut scratch = Conv2dScratch::default();
            let x = data(7 * 6 * 3, 1);
            conv2d_forward_packed(&s, Activation::Linear, 1, &x, &packed, &mut y, &mut scratch);
        });
        assert!(other.is_err(), "a kernel packed for 70 filters used for 8");
    }

    /// The direct paths and the portable im2col/col2im paths agree: the
    /// AVX-512 ones, or under `CNN_PORTABLE=avx2` (CI's third pass) the AVX2
    /// direct forward.
    #[test]
    fn direct_and_portable_paths_agree() {
        let specs = [
            // (h, w, c, f, kh, kw, sh, dh, pt, pl, oh, ow)
            (9, 9, 3, 5, 3, 3, 1, 1, 1, 1, 9, 9),
            (8, 7, 6, 70, 3, 2, 1, 2, 2, 0, 8, 6),
            (12, 12, 16, 33, 5, 5, 1, 1, 0, 0, 8, 8),
            (11, 10, 4, 20, 3, 3, 2, 1, 1, 1, 6, 5),
            (28, 28, 1, 6, 5, 5, 1, 1, 2, 2, 28, 28),
            // Stride 1 with enough channels for the direct input gradient, and
            // a single-channel input (vectorised kernel gradient).
            (10, 10, 16, 20, 3, 3, 1, 1, 1, 1, 10, 10),
            (12, 12, 1, 6, 5, 5, 1, 1, 2, 2, 12, 12),
            // A last panel of 3 and 2 vectors (of 4), as MobileNetV2's 144
            // channels end in one of 1.
            (6, 6, 8, 100, 3, 3, 1, 1, 1, 1, 6, 6),
            (6, 5, 5, 90, 1, 1, 1, 1, 0, 0, 6, 5),
            (5, 5, 4, 144, 1, 1, 1, 1, 0, 0, 5, 5),
            // Whole vectors of output channels: the direct kernel gradient,
            // over chunks of pixels (a sample of 400 is two), strided, dilated,
            // with row blocks that end inside a tap, and (AVX2) 8 and 24
            // channels.
            (20, 20, 4, 16, 3, 3, 1, 1, 1, 1, 20, 20),
            (11, 10, 5, 32, 3, 3, 2, 1, 1, 1, 6, 5),
            (9, 9, 7, 48, 3, 3, 1, 2, 2, 2, 9, 9),
            (12, 12, 3, 64, 5, 5, 1, 1, 2, 2, 12, 12),
            (6, 6, 4, 8, 3, 3, 1, 1, 1, 1, 6, 6),
            (7, 7, 5, 24, 3, 3, 1, 1, 1, 1, 7, 7),
        ];
        for &(h, w, c, f, kh, kw, st, d, pt, pl, oh, ow) in &specs {
            let window = Window::new([kh, kw], Padding::Valid);
            let s = Conv2dSpec {
                out_h: oh,
                out_w: ow,
                pad_top: pt,
                pad_left: pl,
                ..Conv2dSpec::new([h, w, c], f, window.stride([st, st]).dilation([d, d]))
            };
            let batch = 3;
            let x = data(batch * h * w * c, 1);
            let k = data(kh * kw * c * f, 2);
            let b = data(f, 3);
            let dz = data(batch * oh * ow * f, 4);
            let run = || {
                let mut scratch = Conv2dScratch::default();
                let y = conv_forward(&s, Activation::Relu, batch, &x, &k, &b, &mut scratch);
                let (dx, dk, db) = conv_backward(&s, batch, (&x, &k, &dz), true, &mut scratch);
                [y, dx, dk, db]
            };
            let fast = run();
            let slow = crate::cpu::portable(run);
            for (i, name) in ["y", "dx", "dk", "db"].into_iter().enumerate() {
                assert_close(&format!("{s:?} {name}"), &fast[i], &slow[i], 1e-5);
            }
        }
    }
}
