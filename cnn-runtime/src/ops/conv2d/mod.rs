//! 2-D convolution (cross-correlation), NHWC, kernel `(KH, KW, CIN, COUT)`.
//!
//! All three products are GEMMs over the implicit im2col matrix `col`
//! (`rows = batch * OH * OW` output pixels, `cols = KH * KW * CIN`), which is
//! never materialised: `Im2col` packs blocks of it straight from the image.
//! * forward: `y = col * K` (+ bias, activation, applied per thread part while hot);
//! * kernel gradient: `dK = col^T * dz` (the pixel axis is the reduction; parts
//!   reduce disjoint pixel ranges into private buffers, summed at the end);
//! * input gradient: `dcol = dz * K^T` per block of rows, scattered back (col2im)
//!   into `dx`; parts own whole samples so their scatters never overlap.

use super::activation::activation_forward_inplace;
use crate::pool::{self, SendPtr};
use crate::gemm::{self, Source, Strided, MR};
use crate::{Activation, Conv2dSpec};

/// Reusable buffers of the convolution kernels; grows on demand, never shrinks.
#[derive(Default)]
pub struct Conv2dScratch {
    /// The input with its zero padding made explicit (unused for valid convs).
    xpad: Vec<f32>,
    /// Offset of each im2col column `kk` from its window's top-left cell.
    toff: Vec<usize>,
    /// Column-gradient blocks, one region per thread part.
    dcol: Vec<f32>,
    /// Partial kernel gradients of parts 1.. (part 0 writes the output directly).
    dk_part: Vec<f32>,
    /// Partial bias gradients of parts 1...
    db_part: Vec<f32>,
    /// The kernel packed in column panels for the direct (indirect-GEMM) path.
    kpack: Vec<f32>,
    /// The flipped, transposed kernel of the input-gradient convolution.
    kflip: Vec<f32>,
    /// A zero bias for it.
    zeros: Vec<f32>,
    /// Buffers of the input-gradient convolution (boxed: the type is recursive).
    inner: Option<Box<Conv2dScratch>>,
}

fn grow<T: Copy + Default>(v: &mut Vec<T>, len: usize) {
    if v.len() < len {
        v.resize(len, T::default());
    }
}

/// Padded input geometry: `(hp, wp)`, the smallest padded image holding every
/// window (`pad_top`/`pad_left` before, the rest after).
fn padded_dims(s: &Conv2dSpec) -> (usize, usize) {
    let need_h = (s.out_h - 1) * s.sh + (s.kh - 1) * s.dh + 1;
    let need_w = (s.out_w - 1) * s.sw + (s.kw - 1) * s.dw + 1;
    (
        (s.in_h + s.pad_top).max(need_h),
        (s.in_w + s.pad_left).max(need_w),
    )
}

/// Makes the padded input (or borrows `x` when there is no padding) and the
/// column offset table; returns the im2col view.
fn prepare<'a>(
    s: &'a Conv2dSpec,
    batch: usize,
    x: &'a [f32],
    xpad: &'a mut Vec<f32>,
    toff: &'a mut Vec<usize>,
    transposed: bool,
) -> Im2col<'a> {
    let (hp, wp) = padded_dims(s);
    let c = s.in_c;
    toff.clear();
    for a in 0..s.kh {
        for b in 0..s.kw {
            for ci in 0..c {
                toff.push((a * s.dh * wp + b * s.dw) * c + ci);
            }
        }
    }
    // Then, per column, the length of the contiguous run starting there (whole
    // kernel rows when dw = 1), so packing copies runs instead of gathering.
    let kk = toff.len();
    toff.resize(2 * kk, 1);
    for i in (0..kk.saturating_sub(1)).rev() {
        if toff[i + 1] == toff[i] + 1 {
            toff[kk + i] = toff[kk + i + 1] + 1;
        }
    }
    let toff: &'a [usize] = toff;
    let (toff, rlen) = toff.split_at(kk);
    let xp: &'a [f32] = if hp == s.in_h && wp == s.in_w {
        x
    } else {
        let sample = hp * wp * c;
        grow(xpad, batch * sample);
        let row = wp * c;
        let (pl, il) = (s.pad_left * c, s.in_w * c);
        let xpp = SendPtr(xpad.as_mut_ptr());
        let parts = pool::parts_for(batch * sample * 8, batch);
        pool::run(parts, &|t| {
            for n in pool::split(batch, parts, t) {
                // SAFETY: sample n of the padded buffer belongs to this part only.
                let dst = unsafe { xpp.slice(n * sample, sample) };
                for h in 0..hp {
                    let r = &mut dst[h * row..(h + 1) * row];
                    if h < s.pad_top || h >= s.pad_top + s.in_h {
                        r.fill(0.0);
                    } else {
                        let src = ((n * s.in_h) + h - s.pad_top) * il;
                        r[..pl].fill(0.0);
                        r[pl..pl + il].copy_from_slice(&x[src..src + il]);
                        r[pl + il..].fill(0.0);
                    }
                }
            }
        });
        &xpad[..batch * sample]
    };
    Im2col {
        s,
        xp,
        toff,
        rlen,
        hp,
        wp,
        transposed,
    }
}

/// The implicit im2col matrix of a batch (or its transpose), over the padded input.
///
/// `col[m, kk]` with `m = (n * OH + oh) * OW + ow` and `kk = (a * KW + b) * CIN + c`
/// is `xpad[n, oh*SH + a*DH, ow*SW + b*DW, c]`.
struct Im2col<'a> {
    s: &'a Conv2dSpec,
    xp: &'a [f32],
    toff: &'a [usize],
    /// Contiguous run length from each column on.
    rlen: &'a [usize],
    hp: usize,
    wp: usize,
    transposed: bool,
}

impl Im2col<'_> {
    /// Calls `f(i, base)` for pixels `m0..m0 + count`, where `base` is the offset
    /// of the top-left cell of the pixel's window. Walks the pixels in order, so
    /// only the first needs divisions (they dominated small layers).
    #[inline(always)]
    fn for_each_pixel(&self, m0: usize, count: usize, mut f: impl FnMut(usize, usize)) {
        let s = self.s;
        let ohw = s.out_h * s.out_w;
        let (mut n, r) = (m0 / ohw, m0 % ohw);
        let (mut oh, mut ow) = (r / s.out_w, r % s.out_w);
        for i in 0..count {
            f(
                i,
                ((n * self.hp + oh * s.sh) * self.wp + ow * s.sw) * s.in_c,
            );
            ow += 1;
            if ow == s.out_w {
                ow = 0;
                oh += 1;
                if oh == s.out_h {
                    oh = 0;
                    n += 1;
                }
            }
        }
    }

    /// `out[t * stride] = col[m, kk0 + t]` for `t < len`, `pb` = the pixel's base.
    #[inline]
    fn run(&self, pb: usize, kk0: usize, len: usize, out: &mut [f32], stride: usize) {
        let src = &self.xp[pb..];
        let mut t = 0;
        while t < len {
            let r = self.rlen[kk0 + t].min(len - t);
            let b = self.toff[kk0 + t];
            let src = &src[b..b + r];
            if stride == 1 {
                if r >= 16 {
                    out[t..t + r].copy_from_slice(src);
                } else {
                    // Short runs: a loop beats a memcpy call.
                    for (o, v) in out[t..t + r].iter_mut().zip(src) {
                        *o = *v;
                    }
                }
            } else {
                for (q, &v) in src.iter().enumerate() {
                    out[(t + q) * stride] = v;
                }
            }
            t += r;
        }
    }

    /// Packs rows `r0..r0+nr` (output pixels) x columns `c0..c0+kc` into
    /// `dst[p * w + i]`: contiguous writes across the pixels of the panel.
    fn pack_pixels(&self, r0: usize, nr: usize, c0: usize, kc: usize, w: usize, dst: &mut [f32]) {
        const MAXW: usize = 64;
        debug_assert!(w <= MAXW);
        let mut pb = [0usize; MAXW];
        self.for_each_pixel(r0, nr, |i, b| pb[i] = b);
        let pb = &pb[..nr];
        let xp = self.xp;
        for (p, &t) in self.toff[c0..c0 + kc].iter().enumerate() {
            let d = &mut dst[p * w..p * w + nr];
            for (dv, &b) in d.iter_mut().zip(pb) {
                *dv = xp[b + t];
            }
        }
    }
}

impl Source for Im2col<'_> {
    fn pack_rows(&self, r0: usize, nr: usize, c0: usize, kc: usize, w: usize, dst: &mut [f32]) {
        let dst = &mut dst[..kc * w];
        if nr < w {
            dst.fill(0.0);
        }
        if self.transposed {
            // rows are kk, columns pixels: each packed column is a contiguous kk run.
            self.for_each_pixel(c0, kc, |p, b| {
                self.run(b, r0, nr, &mut dst[p * w..p * w + nr], 1)
            });
        } else {
            self.pack_pixels(r0, nr, c0, kc, w, dst);
        }
    }

    fn pack_cols(&self, p0: usize, kc: usize, j0: usize, nc: usize, w: usize, dst: &mut [f32]) {
        let dst = &mut dst[..kc * w];
        if nc < w {
            dst.fill(0.0);
        }
        if self.transposed {
            self.for_each_pixel(j0, nc, |j, b| self.run(b, p0, kc, &mut dst[j..], w));
        } else {
            self.for_each_pixel(p0, kc, |p, b| {
                self.run(b, j0, nc, &mut dst[p * w..p * w + nc], 1)
            });
        }
    }
}

/// Most accumulators (`KH * KW * COUT`) of the single-channel kernel gradient.
const DK_CIN1_MAX_ACC: usize = 240;

/// Kernel gradient of a single-channel-input conv with unit horizontal stride,
/// over samples `samples`: 16 consecutive output pixels of a row read 16
/// consecutive input cells per tap, so `dK[t, o] += x_tap . dz_o` runs on full
/// vectors (the GEMM form filled 6 of 32 lanes for LeNet's first layer).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dk_cin1(
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
                    *v = _mm512_loadu_ps(lanes.as_ptr());
                }
                let base = xp.add(rowbase + ow0);
                for t in 0..kk {
                    let xv = _mm512_maskz_loadu_ps(mask, base.add(col.toff[t]));
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

/// Input channels from which the stride-1 input gradient runs as a direct
/// convolution rather than GEMM + col2im.
const DX_DIRECT_MIN_CHANNELS: usize = 12;

/// Whether the AVX-512 direct paths may be used (else im2col GEMM + col2im).
fn fast_paths() -> bool {
    crate::cpu::avx512()
}

fn check_sizes(s: &Conv2dSpec, batch: usize, x: usize, k: usize, y: usize) {
    assert_eq!(
        x,
        batch * s.in_h * s.in_w * s.in_c,
        "conv2d: x has the wrong length"
    );
    assert_eq!(
        k,
        s.kh * s.kw * s.in_c * s.out_c,
        "conv2d: kernel has the wrong length"
    );
    assert_eq!(
        y,
        batch * s.out_h * s.out_w * s.out_c,
        "conv2d: output has the wrong length"
    );
    assert!(
        s.sh > 0 && s.sw > 0 && s.dh > 0 && s.dw > 0,
        "conv2d: zero stride or dilation"
    );
}

/// Forward pass: `y = act(conv(x, kernel) + bias)`.
///
/// # Panics
/// When a slice length does not match the spec and batch (a caller bug: the
/// interpreter and generated code size their buffers from the same spec).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_forward(
    spec: &Conv2dSpec,
    act: Activation,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    bias: &[f32],
    y: &mut [f32],
    scratch: &mut Conv2dScratch,
) {
    let s = spec;
    check_sizes(s, batch, x.len(), kernel.len(), y.len());
    assert_eq!(bias.len(), s.out_c, "conv2d: bias has the wrong length");
    let m = batch * s.out_h * s.out_w;
    let kk = s.kh * s.kw * s.in_c;
    let n = s.out_c;
    if m == 0 || n == 0 {
        return;
    }
    if fast_paths() {
        #[cfg(target_arch = "x86_64")]
        {
            direct_forward(s, act, batch, x, kernel, bias, y, scratch);
            return;
        }
    }
    let col = prepare(s, batch, x, &mut scratch.xpad, &mut scratch.toff, false);
    let kmat = Strided::row_major(kernel, n);
    let tiles = m.div_ceil(MR);
    let parts = pool::parts_for(2 * m * n * kk, tiles);
    let yp = SendPtr(y.as_mut_ptr());
    pool::run(parts, &|t| {
        let tr = pool::split(tiles, parts, t);
        let r0 = tr.start * MR;
        let r1 = (tr.end * MR).min(m);
        if r0 >= r1 {
            return;
        }
        // SAFETY: rows r0..r1 of y belong to this part only.
        let ys = unsafe { yp.slice(r0 * n, (r1 - r0) * n) };
        gemm::gemm(r1 - r0, n, kk, &col, r0, &kmat, ys, n, false);
        epilogue(ys, bias, act);
    });
}

/// Forward pass as an indirect GEMM: the microkernel broadcasts its A values
/// straight from the padded image through per-pixel base offsets and the column
/// offset table, so A is never packed (packing cost as much as the FMAs for
/// small layers). Only the kernel (B) is packed, once per call.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn direct_forward(
    s: &Conv2dSpec,
    act: Activation,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    bias: &[f32],
    y: &mut [f32],
    scratch: &mut Conv2dScratch,
) {
    // Tile shapes keep accumulators + B vectors + broadcasts within the 32 zmm
    // registers and the per-row pointers within the general registers (measured:
    // 14x32 spilled both and ran at half speed).
    match s.out_c {
        0..=16 => direct_forward_mr_nv::<12, 1>(s, act, batch, x, kernel, bias, y, scratch),
        17..=32 => direct_forward_mr_nv::<10, 2>(s, act, batch, x, kernel, bias, y, scratch),
        33..=48 => direct_forward_mr_nv::<8, 3>(s, act, batch, x, kernel, bias, y, scratch),
        _ => direct_forward_mr_nv::<6, 4>(s, act, batch, x, kernel, bias, y, scratch),
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn direct_forward_mr_nv<const DMR: usize, const NV: usize>(
    s: &Conv2dSpec,
    act: Activation,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    bias: &[f32],
    y: &mut [f32],
    scratch: &mut Conv2dScratch,
) {
    let nrw = NV * 16;
    let m = batch * s.out_h * s.out_w;
    let kk = s.kh * s.kw * s.in_c;
    let n = s.out_c;
    let panels = n.div_ceil(nrw);
    let Conv2dScratch {
        xpad, toff, kpack, ..
    } = scratch;
    grow(kpack, panels * kk * nrw);
    for jp in 0..panels {
        let j0 = jp * nrw;
        let nc = (n - j0).min(nrw);
        for p in 0..kk {
            let d = &mut kpack[(jp * kk + p) * nrw..(jp * kk + p + 1) * nrw];
            d[..nc].copy_from_slice(&kernel[p * n + j0..p * n + j0 + nc]);
            d[nc..].fill(0.0);
        }
    }
    // Bias panels after the kernel panels, zero-padded like them.
    let boff = panels * kk * nrw;
    grow(kpack, boff + panels * nrw);
    for jp in 0..panels {
        let j0 = jp * nrw;
        let nc = (n - j0).min(nrw);
        let d = &mut kpack[boff + j0..boff + j0 + nrw];
        d[..nc].copy_from_slice(&bias[j0..j0 + nc]);
        d[nc..].fill(0.0);
    }
    let kpack: &[f32] = kpack;
    // Bias and relu are applied in the microkernel; other activations after.
    let relu = act == Activation::Relu;
    let rest = if relu || act == Activation::Linear {
        Activation::Linear
    } else {
        act
    };
    let col = prepare(s, batch, x, xpad, toff, false);
    let tiles = m.div_ceil(DMR);
    let parts = pool::parts_for(2 * m * n * kk, tiles);
    let yp = SendPtr(y.as_mut_ptr());
    pool::run(parts, &|t| {
        let tr = pool::split(tiles, parts, t);
        // Epilogue every few tiles, while the rows are still in cache.
        const CHUNK: usize = 8;
        let mut tile = tr.start;
        while tile < tr.end {
            let tend = (tile + CHUNK).min(tr.end);
            let r0 = tile * DMR;
            let r1 = (tend * DMR).min(m);
            for tt in tile..tend {
                let rs = tt * DMR;
                let mr = (m - rs).min(DMR);
                let mut pb = [0usize; DMR];
                col.for_each_pixel(rs, mr, |i, b| pb[i] = b);
                // Rows past the end reuse the last pixel; they are not stored.
                for i in mr..DMR {
                    pb[i] = pb[mr - 1];
                }
                for jp in 0..panels {
                    let j0 = jp * nrw;
                    let nc = (n - j0).min(nrw);
                    // SAFETY: AVX-512F was detected; offsets stay inside the padded
                    // image (windows fit by construction of `padded_dims`), the
                    // panel holds kk * nrw values, and rows rs..rs+mr, columns
                    // j0..j0+nc of y belong to this part.
                    unsafe {
                        direct_tile::<DMR, NV>(
                            kk,
                            col.toff.as_ptr(),
                            col.xp.as_ptr(),
                            &pb,
                            kpack[jp * kk * nrw..].as_ptr(),
                            kpack[boff + j0..].as_ptr(),
                            relu,
                            yp.0.add(rs * n + j0),
                            n,
                            mr,
                            nc,
                        );
                    }
                }
            }
            if rest != Activation::Linear {
                // SAFETY: rows r0..r1 belong to this part.
                let ys = unsafe { yp.slice(r0 * n, (r1 - r0) * n) };
                activation_forward_inplace(rest, n, ys);
            }
            tile = tend;
        }
    });
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
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
    let mut acc = [[_mm512_setzero_ps(); NV]; DMR];
    for row in acc.iter_mut() {
        for (v, a) in row.iter_mut().enumerate() {
            *a = _mm512_loadu_ps(bias.add(v * 16));
        }
    }
    let mut ptrs = [xp; DMR];
    for i in 0..DMR {
        ptrs[i] = xp.add(pb[i]);
    }
    for p in 0..kk {
        let t = *toff.add(p);
        let mut bv = [_mm512_setzero_ps(); NV];
        for (v, b) in bv.iter_mut().enumerate() {
            *b = _mm512_loadu_ps(bp.add((p * NV + v) * 16));
        }
        for i in 0..DMR {
            let a = _mm512_set1_ps(*ptrs[i].add(t));
            for v in 0..NV {
                acc[i][v] = _mm512_fmadd_ps(a, bv[v], acc[i][v]);
            }
        }
    }
    for v in 0..NV {
        let left = nc.saturating_sub(v * 16);
        if left == 0 {
            break;
        }
        let mask: __mmask16 = if left >= 16 {
            0xffff
        } else {
            ((1u32 << left) - 1) as u16
        };
        for (i, row) in acc.iter().enumerate().take(mr) {
            let mut val = row[v];
            if relu {
                // Zero where val < 0 (ordered compare: NaN stays NaN).
                let neg = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(val, _mm512_setzero_ps());
                val = _mm512_mask_mov_ps(val, neg, _mm512_setzero_ps());
            }
            _mm512_mask_storeu_ps(c.add(i * ldc + v * 16), mask, val);
        }
    }
}

/// Adds the bias to every row and applies the activation, in place.
fn epilogue(y: &mut [f32], bias: &[f32], act: Activation) {
    let n = bias.len();
    for row in y.chunks_exact_mut(n) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
    activation_forward_inplace(act, n, y);
}

/// Backward pass from `dz = dL/d(pre-activation)`: overwrites `dkernel`, `dbias`
/// and, when given, `dx`.
///
/// # Panics
/// When a slice length does not match the spec and batch.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    spec: &Conv2dSpec,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    dz: &[f32],
    dx: Option<&mut [f32]>,
    dkernel: &mut [f32],
    dbias: &mut [f32],
    scratch: &mut Conv2dScratch,
) {
    let s = spec;
    check_sizes(s, batch, x.len(), kernel.len(), dz.len());
    assert_eq!(
        dkernel.len(),
        kernel.len(),
        "conv2d: dkernel has the wrong length"
    );
    assert_eq!(dbias.len(), s.out_c, "conv2d: dbias has the wrong length");
    let ohw = s.out_h * s.out_w;
    let m = batch * ohw;
    let kk = s.kh * s.kw * s.in_c;
    let n = s.out_c;
    let flops = 2 * m * n * kk;
    if m == 0 || n == 0 || kk == 0 {
        // Nothing flows back through an empty layer.
        dkernel.fill(0.0);
        dbias.fill(0.0);
        if let Some(dx) = dx {
            dx.fill(0.0);
        }
        return;
    }
    let Conv2dScratch {
        xpad,
        toff,
        dcol,
        dk_part,
        db_part,
        kflip,
        zeros,
        inner,
        ..
    } = scratch;

    // Parameter gradients: split the pixel (reduction) axis by whole samples.
    // Orientation: dK = col^T dz (rows kk) or dK^T = dz^T col (rows o), whichever
    // fills the 14x32 microkernel tile better (few output channels: the latter).
    let fill = |rows: usize, cols: usize| {
        (rows * cols) as f64
            / ((rows.div_ceil(MR) * MR) * (cols.div_ceil(gemm::NR) * gemm::NR)) as f64
    };
    // Single-channel input (a grayscale first layer): vectorise over pixels.
    let cin1 = s.in_c == 1 && s.sw == 1 && n <= 16 && kk * n <= DK_CIN1_MAX_ACC && fast_paths();
    let flip = !cin1 && fill(n, kk) > fill(kk, n) + 0.05;
    let parts = pool::parts_for(flops, batch);
    let own = usize::from(flip);
    grow(dk_part, (parts - 1 + own) * kk * n);
    grow(db_part, parts.saturating_sub(1) * n);
    {
        let col = prepare(s, batch, x, xpad, toff, !flip);
        let dkp = SendPtr(dkernel.as_mut_ptr());
        let dbp = SendPtr(dbias.as_mut_ptr());
        let partp = SendPtr(dk_part.as_mut_ptr());
        let dbpartp = SendPtr(db_part.as_mut_ptr());
        pool::run(parts, &|t| {
            let sr = pool::split(batch, parts, t);
            let (p0, p1) = (sr.start * ohw, sr.end * ohw);
            // SAFETY: part 0 owns dkernel/dbias (unless flipped: then every part
            // t owns region t of the partials), part t owns region t-1 (or t).
            let (dk, db) = unsafe {
                let db = if t == 0 {
                    dbp.slice(0, n)
                } else {
                    dbpartp.slice((t - 1) * n, n)
                };
                if t == 0 && !flip {
                    (dkp.slice(0, kk * n), db)
                } else {
                    (partp.slice((t + own - 1) * kk * n, kk * n), db)
                }
            };
            if cin1 {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX-512F was detected (`fast_paths`); the padded image
                // holds every window (see `padded_dims`).
                unsafe {
                    dk_cin1(s, sr.clone(), &col, dz, dk)
                };
            } else if flip {
                // dK^T[o, kk] = sum_p dz[p, o] col[p, kk] over this part's pixels.
                let dzt = Strided {
                    data: &dz[p0 * n..],
                    rs: 1,
                    cs: n,
                };
                let b = Shifted {
                    inner: &col,
                    off: p0,
                };
                gemm::gemm(n, kk, p1 - p0, &dzt, 0, &b, dk, kk, false);
            } else {
                // dK[kk, o] = sum_p col[p, kk] dz[p, o] over this part's pixels.
                let dzp = Strided {
                    data: &dz[p0 * n..],
                    rs: n,
                    cs: 1,
                };
                let a = Shifted {
                    inner: &col,
                    off: p0,
                };
                gemm::gemm(kk, n, p1 - p0, &a, 0, &dzp, dk, n, false);
            }
            db.fill(0.0);
            for row in dz[p0 * n..p1 * n].chunks_exact(n) {
                for (d, v) in db.iter_mut().zip(row) {
                    *d += v;
                }
            }
        });
        if flip {
            dkernel.fill(0.0);
            for t in 0..parts {
                let part = &dk_part[t * kk * n..(t + 1) * kk * n];
                for (i, drow) in dkernel.chunks_exact_mut(n).enumerate() {
                    for (o, d) in drow.iter_mut().enumerate() {
                        *d += part[o * kk + i];
                    }
                }
            }
        } else {
            for t in 1..parts {
                for (d, v) in dkernel
                    .iter_mut()
                    .zip(&dk_part[(t - 1) * kk * n..t * kk * n])
                {
                    *d += v;
                }
            }
        }
        for t in 1..parts {
            for (d, v) in dbias.iter_mut().zip(&db_part[(t - 1) * n..t * n]) {
                *d += v;
            }
        }
    }

    // Input gradient: dcol = dz * K^T by blocks of rows, then col2im.
    let Some(dx) = dx else { return };
    assert_eq!(dx.len(), x.len(), "conv2d: dx has the wrong length");
    #[cfg(target_arch = "x86_64")]
    // Few input channels would fill few lanes of the direct tiles (the input
    // gradient's channels are its output channels): the GEMM + col2im path wins.
    if s.sh == 1
        && s.sw == 1
        && s.in_c >= DX_DIRECT_MIN_CHANNELS
        && fast_paths()
        && (s.kh - 1) * s.dh >= s.pad_top
        && (s.kw - 1) * s.dw >= s.pad_left
    {
        // Stride 1: dx is the convolution of dz with the flipped, transposed
        // kernel, `dx[ih] = sum_a' dz[ih - P + a' dh] K[kh-1-a', .., c, o]` with
        // `P = (kh-1) dh - pad_top`: the fast forward path, no col2im.
        let t = Conv2dSpec {
            in_h: s.out_h,
            in_w: s.out_w,
            in_c: s.out_c,
            out_h: s.in_h,
            out_w: s.in_w,
            out_c: s.in_c,
            kh: s.kh,
            kw: s.kw,
            sh: 1,
            sw: 1,
            dh: s.dh,
            dw: s.dw,
            pad_top: (s.kh - 1) * s.dh - s.pad_top,
            pad_left: (s.kw - 1) * s.dw - s.pad_left,
        };
        grow(kflip, kernel.len());
        let (ci, co) = (s.in_c, s.out_c);
        for a in 0..s.kh {
            for b in 0..s.kw {
                let src = ((s.kh - 1 - a) * s.kw + (s.kw - 1 - b)) * ci * co;
                let dst = (a * s.kw + b) * co * ci;
                for o in 0..co {
                    for c in 0..ci {
                        kflip[dst + o * ci + c] = kernel[src + c * co + o];
                    }
                }
            }
        }
        grow(zeros, ci);
        zeros[..ci].fill(0.0);
        let inner = inner.get_or_insert_with(Box::default);
        direct_forward(
            &t,
            Activation::Linear,
            batch,
            dz,
            &kflip[..kernel.len()],
            &zeros[..ci],
            dx,
            inner,
        );
        return;
    }
    dx.fill(0.0);
    if m == 0 || kk == 0 {
        return;
    }
    let parts = pool::parts_for(flops, batch);
    // Blocks of about 256 KiB of dcol: they stay in L2 between GEMM and scatter.
    let rb = ((64 * 1024 / kk).max(MR) / MR * MR).min(m.div_ceil(MR) * MR);
    grow(dcol, parts * rb * kk);
    let kt = Strided::transposed(kernel, n);
    let dxp = SendPtr(dx.as_mut_ptr());
    let dcolp = SendPtr(dcol.as_mut_ptr());
    let sample = s.in_h * s.in_w * s.in_c;
    pool::run(parts, &|t| {
        let sr = pool::split(batch, parts, t);
        if sr.is_empty() {
            return;
        }
        // SAFETY: part t owns samples sr of dx and region t of dcol.
        let dxs = unsafe { dxp.slice(sr.start * sample, sr.len() * sample) };
        let dcol = unsafe { dcolp.slice(t * rb * kk, rb * kk) };
        let dzm = Strided::row_major(dz, n);
        let (p0, p1) = (sr.start * ohw, sr.end * ohw);
        let mut r = p0;
        while r < p1 {
            let rows = (p1 - r).min(rb);
            gemm::gemm(rows, kk, n, &dzm, r, &kt, dcol, kk, false);
            col2im_add(s, r, rows, &dcol[..rows * kk], dxs, sr.start);
            r += rows;
        }
    });
}

/// Adds the column gradient of pixel rows `r0..r0+rows` into `dx`, which starts
/// at sample `n0`.
fn col2im_add(s: &Conv2dSpec, r0: usize, rows: usize, dcol: &[f32], dx: &mut [f32], n0: usize) {
    let ohw = s.out_h * s.out_w;
    let kk = s.kh * s.kw * s.in_c;
    let c = s.in_c;
    for i in 0..rows {
        let mm = r0 + i;
        let n = mm / ohw - n0;
        let r = mm % ohw;
        let (oh, ow) = (r / s.out_w, r % s.out_w);
        let drow = &dcol[i * kk..(i + 1) * kk];
        for a in 0..s.kh {
            let ih = (oh * s.sh + a * s.dh) as isize - s.pad_top as isize;
            if ih < 0 || ih as usize >= s.in_h {
                continue;
            }
            for b in 0..s.kw {
                let iw = (ow * s.sw + b * s.dw) as isize - s.pad_left as isize;
                if iw < 0 || iw as usize >= s.in_w {
                    continue;
                }
                let base = ((n * s.in_h + ih as usize) * s.in_w + iw as usize) * c;
                let src = &drow[(a * s.kw + b) * c..(a * s.kw + b + 1) * c];
                for (d, v) in dx[base..base + c].iter_mut().zip(src) {
                    *d += v;
                }
            }
        }
    }
}

/// An im2col matrix with its pixel index shifted by `off` (the pixel index is
/// the column index of the transposed matrix, the row index of the plain one),
/// so a part can treat its pixel range as `0..`.
struct Shifted<'a, 'b> {
    inner: &'a Im2col<'b>,
    off: usize,
}

impl Source for Shifted<'_, '_> {
    fn pack_rows(&self, r0: usize, nr: usize, c0: usize, kc: usize, w: usize, dst: &mut [f32]) {
        if self.inner.transposed {
            self.inner.pack_rows(r0, nr, c0 + self.off, kc, w, dst)
        } else {
            self.inner.pack_rows(r0 + self.off, nr, c0, kc, w, dst)
        }
    }
    fn pack_cols(&self, p0: usize, kc: usize, j0: usize, nc: usize, w: usize, dst: &mut [f32]) {
        if self.inner.transposed {
            self.inner.pack_cols(p0, kc, j0 + self.off, nc, w, dst)
        } else {
            self.inner.pack_cols(p0 + self.off, kc, j0, nc, w, dst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 7919 + seed * 104729) % 2003) as f32 / 1001.5) - 1.0)
            .collect()
    }

    /// The direct (AVX-512) paths and the portable im2col/col2im paths agree.
    #[test]
    fn direct_and_portable_paths_agree() {
        let specs = [
            // (h, w, c, f, kh, kw, sh, dh, pt, pl, oh, ow)
            (9, 9, 3, 5, 3, 3, 1, 1, 1, 1, 9, 9),
            (8, 7, 6, 70, 3, 2, 1, 2, 2, 0, 8, 6),
            (12, 12, 16, 33, 5, 5, 1, 1, 0, 0, 8, 8),
            (11, 10, 4, 20, 3, 3, 2, 1, 1, 1, 6, 5),
            (28, 28, 1, 6, 5, 5, 1, 1, 2, 2, 28, 28),
        ];
        for &(h, w, c, f, kh, kw, st, d, pt, pl, oh, ow) in &specs {
            let s = Conv2dSpec {
                in_h: h,
                in_w: w,
                in_c: c,
                out_h: oh,
                out_w: ow,
                out_c: f,
                kh,
                kw,
                sh: st,
                sw: st,
                dh: d,
                dw: d,
                pad_top: pt,
                pad_left: pl,
            };
            let batch = 3;
            let x = data(batch * h * w * c, 1);
            let k = data(kh * kw * c * f, 2);
            let b = data(f, 3);
            let dz = data(batch * oh * ow * f, 4);
            let run = || {
                let mut scratch = Conv2dScratch::default();
                let mut y = vec![f32::NAN; dz.len()];
                conv2d_forward(
                    &s,
                    Activation::Relu,
                    batch,
                    &x,
                    &k,
                    &b,
                    &mut y,
                    &mut scratch,
                );
                let mut dx = vec![f32::NAN; x.len()];
                let mut dk = vec![f32::NAN; k.len()];
                let mut db = vec![f32::NAN; f];
                conv2d_backward(
                    &s,
                    batch,
                    &x,
                    &k,
                    &dz,
                    Some(&mut dx),
                    &mut dk,
                    &mut db,
                    &mut scratch,
                );
                (y, dx, dk, db)
            };
            let fast = run();
            let slow = crate::cpu::portable(run);
            for (name, a, b) in [
                ("y", &fast.0, &slow.0),
                ("dx", &fast.1, &slow.1),
                ("dk", &fast.2, &slow.2),
                ("db", &fast.3, &slow.3),
            ] {
                let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
                for (u, v) in a.iter().zip(b.iter()) {
                    assert!((u - v).abs() <= 1e-5 * scale, "{s:?} {name}: {u} vs {v}");
                }
            }
        }
    }
}
