//! The backward pass of a `valid` stride-1 convolution specialised at compile
//! time: every size is a const generic parameter, so loops have constant trip
//! counts that the compiler unrolls and vectorises (LeNet's 6- and 16-channel
//! layers leave most of a dynamic kernel's vector lanes, loop overhead and
//! packing idle).
//!
//! Generated code calls it for the layers of small models, inside one batch
//! part (see `cnn-compiler`'s codegen: a part runs every layer on its own
//! samples, on one core), so it runs on the calling thread and never touches
//! the thread pool. It matches the dynamic kernel of [`super`] up to float
//! rounding (another summation order).
//!
//! Each public kernel has a `#[target_feature]` twin of its `#[inline(always)]`
//! body (the crate itself targets baseline x86-64), chosen at run time by
//! [`crate::cpu::avx512`].
//!
//! Sizes are checked against the slices (a mismatch is a caller bug and panics);
//! the const parameters that repeat a product of the others (`KK = KH * KW *
//! CIN`, `KC = KK * COUT`, there because stable Rust cannot size an array by an
//! expression of generic parameters) are checked too.

use crate::cpu::avx512_twin;

/// `a * b + c`, fused (one rounding, one instruction) in the builds that have
/// FMA; plain otherwise (a software `mul_add` would be slow).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Taps of the kernel gradient accumulated at once (kept in registers).
const TAP_BLOCK: usize = 8;

avx512_twin! {
    /// Backward pass of a stride-1, undilated, unpadded (`valid`) convolution of
    /// `IH x IW x CIN` samples with a `KH x KW x CIN x COUT` kernel, from
    /// `dz = dL/d(pre-activation)` (`OH = IH - KH + 1`, `OW = IW - KW + 1`):
    /// overwrites `dkernel`, `dbias` and, when given, `dx`. `KK` must be
    /// `KH * KW * CIN` and `KC` must be `KK * COUT`.
    ///
    /// * `dK[t, o] = sum_pixels x[pixel + t] dz[pixel, o]`, `TAP_BLOCK` taps at a
    ///   time over every pixel of every sample: the accumulators stay in registers,
    ///   each `dz` row is loaded once per block;
    /// * `dx`: per output pixel, the column `col[t] = sum_o K[t, o] dz[o]` (vectorised
    ///   over the taps, from the transposed kernel), added into the pixel's window:
    ///   a window row is one contiguous run of `KW * CIN` values in NHWC.
    ///
    /// # Panics
    /// When a slice length does not match the sizes.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_valid_backward<
        const IH: usize,
        const IW: usize,
        const CIN: usize,
        const KH: usize,
        const KW: usize,
        const COUT: usize,
        const KK: usize,
        const KC: usize,
    >(
        batch: usize,
        x: &[f32],
        kernel: &[f32],
        dz: &[f32],
        dx: Option<&mut [f32]>,
        dkernel: &mut [f32],
        dbias: &mut [f32],
    )
    // FMA: the twin's build, with the AVX-512 kernel gradient.
    => "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma", FMA, {
        assert!(KK == KH * KW * CIN && KC == KK * COUT, "conv: KK or KC");
        assert!(
            KH <= IH && KW <= IW && KH > 0 && KW > 0,
            "conv: kernel larger than input"
        );
        let (oh, ow) = (IH - KH + 1, IW - KW + 1);
        assert_eq!(
            x.len(),
            batch * IH * IW * CIN,
            "conv: x has the wrong length"
        );
        assert_eq!(kernel.len(), KC, "conv: kernel has the wrong length");
        assert_eq!(dkernel.len(), KC, "conv: dkernel has the wrong length");
        assert_eq!(dbias.len(), COUT, "conv: dbias has the wrong length");
        assert_eq!(
            dz.len(),
            batch * oh * ow * COUT,
            "conv: dz has the wrong length"
        );
        if let Some(dx) = &dx {
            assert_eq!(dx.len(), x.len(), "conv: dx has the wrong length");
        }
        let xs_len = IH * IW * CIN;
        let zs_len = oh * ow * COUT;
        // Offset of tap t = (a, b, ci) from its window's top-left cell.
        let mut toff = [0usize; KK];
        for (t, o) in toff.iter_mut().enumerate() {
            let (a, rest) = (t / (KW * CIN), t % (KW * CIN));
            *o = a * IW * CIN + rest;
        }
        // Kernel gradient, by blocks of taps.
        #[cfg(target_arch = "x86_64")]
        if FMA && COUT <= 16 {
            // SAFETY: the FMA build runs only where AVX-512F was detected (only the
            // `#[target_feature]` twin in `conv_valid_backward` passes FMA = true);
            // the lengths were checked above.
            unsafe { dk_avx512::<IH, IW, CIN, COUT, KK>(batch, x, dz, &toff, dkernel) };
        } else {
            dk_portable::<FMA, IH, IW, CIN, KH, KW, COUT, KK>(batch, x, dz, &toff, dkernel);
        }
        #[cfg(not(target_arch = "x86_64"))]
        dk_portable::<FMA, IH, IW, CIN, KH, KW, COUT, KK>(batch, x, dz, &toff, dkernel);
        dbias.fill(0.0);
        for row in dz.chunks_exact(COUT) {
            for (d, v) in dbias.iter_mut().zip(row) {
                *d += v;
            }
        }
        let Some(dx) = dx else { return };
        // kt[o][t] = K[t][o]: the column of a pixel is a sum of COUT scaled rows.
        let mut kt = [0f32; KC];
        for t in 0..KK {
            for o in 0..COUT {
                kt[o * KK + t] = kernel[t * COUT + o];
            }
        }
        dx.fill(0.0);
        for n in 0..batch {
            let dxs = &mut dx[n * xs_len..(n + 1) * xs_len];
            let zs = &dz[n * zs_len..(n + 1) * zs_len];
            for r in 0..oh {
                for q in 0..ow {
                    let g = &zs[(r * ow + q) * COUT..(r * ow + q + 1) * COUT];
                    // By chunks of 16 taps: each chunk's sums stay in one register
                    // across the COUT terms (a whole-column loop per term spilled).
                    let mut col = [0f32; KK];
                    let mut t0 = 0;
                    // Groups of 8 chunks: 8 independent sums per term hide the FMA
                    // latency (one chunk alone is a chain of COUT dependent FMAs).
                    while KK - t0 >= 128 {
                        let chunk = column_chunk::<FMA, 128>(g, &kt, KK, t0);
                        col[t0..t0 + 128].copy_from_slice(&chunk);
                        t0 += 128;
                    }
                    while t0 < KK {
                        if KK - t0 >= 16 {
                            let chunk = column_chunk::<FMA, 16>(g, &kt, KK, t0);
                            col[t0..t0 + 16].copy_from_slice(&chunk);
                            t0 += 16;
                        } else {
                            let mut acc = [0f32; 16];
                            let n = KK - t0;
                            for (o, &gv) in g.iter().enumerate() {
                                let kr = &kt[o * KK + t0..o * KK + KK];
                                for j in 0..n {
                                    acc[j] = madd::<FMA>(gv, kr[j], acc[j]);
                                }
                            }
                            col[t0..].copy_from_slice(&acc[..n]);
                            t0 = KK;
                        }
                    }
                    for a in 0..KH {
                        let base = ((r + a) * IW + q) * CIN;
                        let d = &mut dxs[base..base + KW * CIN];
                        let s = &col[a * KW * CIN..(a + 1) * KW * CIN];
                        for (dv, sv) in d.iter_mut().zip(s) {
                            *dv += sv;
                        }
                    }
                }
            }
        }
    }
}

/// `W` taps of a pixel's input-gradient column from `t0`: `sum_o g[o] kt[o][t]`
/// (`kt` the transposed kernel, rows of `kk` taps), the `W` sums kept in
/// registers across the terms.
#[inline(always)]
fn column_chunk<const FMA: bool, const W: usize>(
    g: &[f32],
    kt: &[f32],
    kk: usize,
    t0: usize,
) -> [f32; W] {
    let mut acc = [0f32; W];
    for (o, &gv) in g.iter().enumerate() {
        let kr = &kt[o * kk + t0..o * kk + t0 + W];
        for j in 0..W {
            acc[j] = madd::<FMA>(gv, kr[j], acc[j]);
        }
    }
    acc
}

/// Kernel gradient of [`conv_valid_backward`], portable form: `TAP_BLOCK` taps
/// at a time over every pixel, accumulators in registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn dk_portable<
    const FMA: bool,
    const IH: usize,
    const IW: usize,
    const CIN: usize,
    const KH: usize,
    const KW: usize,
    const COUT: usize,
    const KK: usize,
>(
    batch: usize,
    x: &[f32],
    dz: &[f32],
    toff: &[usize; KK],
    dkernel: &mut [f32],
) {
    let (oh, ow) = (IH - KH + 1, IW - KW + 1);
    let xs_len = IH * IW * CIN;
    let zs_len = oh * ow * COUT;
    let span = (KH - 1) * IW * CIN + KW * CIN;
    let mut t0 = 0;
    while t0 < KK {
        let nt = (KK - t0).min(TAP_BLOCK);
        let mut acc = [[0f32; COUT]; TAP_BLOCK];
        // The block's tap offsets, clamped into a window slice of constant
        // length (a no-op: every offset is below `span`) so that the pixel loop
        // needs no bounds check per tap.
        let mut offs = [0usize; TAP_BLOCK];
        for (j, o) in offs.iter_mut().enumerate().take(nt) {
            *o = toff[t0 + j].min(span - 1);
        }
        for n in 0..batch {
            let xs = &x[n * xs_len..(n + 1) * xs_len];
            let zs = &dz[n * zs_len..(n + 1) * zs_len];
            for r in 0..oh {
                for q in 0..ow {
                    let pb = (r * IW + q) * CIN;
                    let win = &xs[pb..pb + span];
                    let g: &[f32; COUT] = zs[(r * ow + q) * COUT..(r * ow + q + 1) * COUT]
                        .try_into()
                        .expect("COUT values");
                    if nt == TAP_BLOCK {
                        for (j, aj) in acc.iter_mut().enumerate() {
                            let v = win[offs[j]];
                            for o in 0..COUT {
                                aj[o] = madd::<FMA>(v, g[o], aj[o]);
                            }
                        }
                    } else {
                        for (j, aj) in acc.iter_mut().enumerate().take(nt) {
                            let v = win[offs[j]];
                            for o in 0..COUT {
                                aj[o] = madd::<FMA>(v, g[o], aj[o]);
                            }
                        }
                    }
                }
            }
        }
        for (j, aj) in acc.iter().enumerate().take(nt) {
            dkernel[(t0 + j) * COUT..(t0 + j + 1) * COUT].copy_from_slice(aj);
        }
        t0 += nt;
    }
}

/// Taps of a block of the AVX-512 kernel gradient (16 accumulators, the
/// dz row and a broadcast fit the 32 vector registers).
#[cfg(target_arch = "x86_64")]
const DK_TAPS: usize = 16;

/// Kernel gradient of [`conv_valid_backward`] for at most 16 output channels
/// (one masked vector): per pixel, one load of its dz row and one broadcast
/// per tap feed `DK_TAPS` independent accumulators. A last partial block
/// repeats tap 0 for its missing taps and drops their sums.
///
/// # Safety
/// AVX-512F must be available; `x` holds `batch` samples of `IH*IW*CIN`, `dz`
/// `batch` of `OH*OW*COUT`, `dkernel` `KK*COUT` values; `toff` holds offsets
/// inside a window of a valid convolution.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dk_avx512<
    const IH: usize,
    const IW: usize,
    const CIN: usize,
    const COUT: usize,
    const KK: usize,
>(
    batch: usize,
    x: &[f32],
    dz: &[f32],
    toff: &[usize; KK],
    dkernel: &mut [f32],
) {
    use std::arch::x86_64::*;
    let kh = toff[KK - 1] / (IW * CIN) + 1;
    let kw = (toff[KK - 1] % (IW * CIN)) / CIN + 1;
    let (oh, ow) = (IH - kh + 1, IW - kw + 1);
    let xs_len = IH * IW * CIN;
    let zs_len = oh * ow * COUT;
    debug_assert!(x.len() >= batch * xs_len && dz.len() >= batch * zs_len);
    let mask: __mmask16 = ((1u32 << COUT) - 1) as u16;
    let mut t0 = 0;
    while t0 < KK {
        let nt = (KK - t0).min(DK_TAPS);
        let mut offs = [toff[t0]; DK_TAPS];
        offs[..nt].copy_from_slice(&toff[t0..t0 + nt]);
        let mut acc = [_mm512_setzero_ps(); DK_TAPS];
        for n in 0..batch {
            let xs = &x[n * xs_len..(n + 1) * xs_len];
            let zs = &dz[n * zs_len..(n + 1) * zs_len];
            for r in 0..oh {
                for q in 0..ow {
                    let pix = r * ow + q;
                    // SAFETY: the pixel's COUT values lie inside this sample's dz
                    // rows; the mask covers exactly COUT lanes.
                    let g = unsafe { _mm512_maskz_loadu_ps(mask, zs.as_ptr().add(pix * COUT)) };
                    let pb = (r * IW + q) * CIN;
                    for j in 0..DK_TAPS {
                        // SAFETY: every tap offset lies inside the window of
                        // pixel (r, q) of a valid convolution, inside the sample.
                        let v = _mm512_set1_ps(unsafe { *xs.as_ptr().add(pb + offs[j]) });
                        acc[j] = _mm512_fmadd_ps(v, g, acc[j]);
                    }
                }
            }
        }
        for (j, a) in acc.iter().enumerate().take(nt) {
            // SAFETY: t0 + j < KK, so the COUT lanes (the mask) of row t0 + j
            // lie inside dkernel's KK * COUT values.
            unsafe { _mm512_mask_storeu_ps(dkernel.as_mut_ptr().add((t0 + j) * COUT), mask, *a) };
        }
        t0 += nt;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv2d::Conv2dScratch;
    use crate::testing::{assert_close, conv_backward, conv_forward, data, fd_check, Fd};
    use crate::{Activation, Conv2dSpec, Padding, Window};

    fn conv_spec(ih: usize, iw: usize, cin: usize, k: usize, cout: usize) -> Conv2dSpec {
        Conv2dSpec::new([ih, iw, cin], cout, Window::new([k, k], Padding::Valid))
    }

    /// The fixed conv backward agrees with the dynamic kernel (LeNet's second
    /// conv and a small odd one whose tap count is not a multiple of the block).
    /// `(dx, dk, db)` of the backward `kernel`, into NaN-filled buffers of `lens`.
    fn grads(
        lens: [usize; 3],
        kernel: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]),
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let [mut dx, mut dk, mut db] = lens.map(|n| vec![f32::NAN; n]);
        kernel(&mut dx, &mut dk, &mut db);
        (dx, dk, db)
    }

    #[test]
    fn conv_backward_equals_dynamic_kernel() {
        fn case<
            const IH: usize,
            const IW: usize,
            const CIN: usize,
            const K: usize,
            const COUT: usize,
            const KK: usize,
            const KC: usize,
        >() {
            let s = conv_spec(IH, IW, CIN, K, COUT);
            let batch = 3;
            let x = data(batch * IH * IW * CIN, 5);
            let k = data(KC, 6);
            let dz = data(batch * s.out_h * s.out_w * COUT, 7);
            let mut scratch = Conv2dScratch::default();
            let d = conv_backward(&s, batch, (&x, &k, &dz), true, &mut scratch);
            // The portable build (no FMA, no intrinsics) agrees too.
            for (build, portable) in [("", false), ("portable ", true)] {
                let kernel = |dx: Option<&mut [f32]>, dk: &mut [f32], db: &mut [f32]| {
                    let run = || {
                        conv_valid_backward::<IH, IW, CIN, K, K, COUT, KK, KC>(
                            batch, &x, &k, &dz, dx, dk, db,
                        )
                    };
                    if portable {
                        crate::cpu::portable(run)
                    } else {
                        run()
                    }
                };
                let g = grads([x.len(), KC, COUT], |dx, dk, db| kernel(Some(dx), dk, db));
                assert_close(&format!("{build}dx"), &g.0, &d.0, 1e-5);
                assert_close(&format!("{build}dk"), &g.1, &d.1, 1e-5);
                assert_close(&format!("{build}db"), &g.2, &d.2, 1e-5);
                // Without dx, the parameter gradients are the same.
                let (_, dk, db) = grads([0, KC, COUT], |_, dk, db| kernel(None, dk, db));
                assert_eq!(dk, g.1);
                assert_eq!(db, g.2);
            }
        }
        case::<14, 14, 6, 5, 16, 150, 2400>();
        case::<6, 7, 3, 3, 5, 27, 135>();
        // More than 16 output channels: the portable kernel gradient.
        case::<5, 5, 2, 2, 20, 8, 160>();
    }

    /// Finite differences of `L = sum(conv(x) * r)` (the dynamic forward, which
    /// the fixed backward must differentiate) for the kernel, bias and input.
    #[test]
    fn conv_backward_matches_finite_differences() {
        const IH: usize = 5;
        const IW: usize = 6;
        const CIN: usize = 2;
        const K: usize = 3;
        const COUT: usize = 3;
        const KK: usize = K * K * CIN;
        const KC: usize = KK * COUT;
        let s = conv_spec(IH, IW, CIN, K, COUT);
        let batch = 2;
        let x = data(batch * IH * IW * CIN, 8);
        let k = data(KC, 9);
        let bias = data(COUT, 10);
        let ny = batch * s.out_h * s.out_w * COUT;
        let r = data(ny, 11);
        let loss = |x: &[f32], k: &[f32], b: &[f32]| {
            let mut scratch = Conv2dScratch::default();
            let y = conv_forward(&s, Activation::Linear, batch, x, k, b, &mut scratch);
            y.iter()
                .zip(&r)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum::<f64>()
        };
        let (mut dx, mut dk, mut db) = (vec![0f32; x.len()], vec![0f32; KC], vec![0f32; COUT]);
        conv_valid_backward::<IH, IW, CIN, K, K, COUT, KK, KC>(
            batch,
            &x,
            &k,
            &r,
            Some(&mut dx),
            &mut dk,
            &mut db,
        );
        let h = 1e-2f32;
        let (mut xv, mut kv, mut bv) = (x.clone(), k.clone(), bias.clone());
        fd_check(Fd::Every, "dx", &mut xv, &dx, h, 2e-3, |xx| {
            loss(xx, &k, &bias)
        });
        fd_check(Fd::Every, "dk", &mut kv, &dk, h, 2e-3, |kk| {
            loss(&x, kk, &bias)
        });
        fd_check(Fd::Every, "db", &mut bv, &db, h, 2e-3, |bb| {
            loss(&x, &k, bb)
        });
    }
}
