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
//!
//! This file holds the dispatch and these portable paths; the variants live
//! beside it (x86-64 only): `direct`, the forward pass as an indirect GEMM
//! over a register tile of `avx512` or `avx2` (whichever [`crate::cpu`]
//! allows), and in `avx512` the stride-1 input gradient and the
//! single-channel kernel gradient.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod direct;
#[cfg(test)]
mod gradcheck;
pub mod grouped;

use super::activation::bias_activation;
use super::Cells;
use crate::aligned::AlignedVec;
use crate::gemm::{self, Source, Strided, MR};
use crate::pool::{self, SendPtr};
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
    kpack: AlignedVec,
    /// The flipped, transposed kernel of the input-gradient convolution.
    kflip: Vec<f32>,
    /// A zero bias for it.
    zeros: Vec<f32>,
    /// A zero bias for the forward microkernel of a layer without one.
    bias_zeros: Vec<f32>,
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

/// Whether the AVX-512 direct paths of the backward pass may be used (else
/// im2col GEMM + col2im).
fn fast_paths() -> bool {
    crate::cpu::avx512()
}

/// The instruction set of the direct forward pass ([`direct`]), where the
/// CPU has one (else the im2col GEMM).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum DirectIsa {
    Avx512(avx512::Avx512),
    Avx2(avx2::Avx2),
}

#[cfg(target_arch = "x86_64")]
impl DirectIsa {
    fn detect() -> Option<Self> {
        avx512::Avx512::detect()
            .map(DirectIsa::Avx512)
            .or_else(|| avx2::Avx2::detect().map(DirectIsa::Avx2))
    }

    /// Whether the direct kernel gradient applies to `s`.
    fn kernel_grad_fits(self, s: &Conv2dSpec) -> bool {
        match self {
            DirectIsa::Avx512(_) => direct::kernel_grad_fits::<avx512::Avx512>(s),
            DirectIsa::Avx2(_) => direct::kernel_grad_fits::<avx2::Avx2>(s),
        }
    }

    /// Floats per vector: what a packed kernel's layout depends on.
    fn lanes(self) -> usize {
        use direct::Tiles;
        match self {
            DirectIsa::Avx512(_) => avx512::Avx512::LANES,
            DirectIsa::Avx2(_) => avx2::Avx2::LANES,
        }
    }
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
pub fn conv2d_forward<'y>(
    spec: &Conv2dSpec,
    act: Activation,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    y: impl Into<Cells<'y>>,
    scratch: &mut Conv2dScratch,
) {
    let s = spec;
    let y = y.into();
    let m = batch * s.out_h * s.out_w;
    check_sizes(s, batch, x.len(), kernel.len(), m * s.out_c);
    y.check("conv2d", m, s.out_c);
    if let Some(bias) = bias {
        assert_eq!(bias.len(), s.out_c, "conv2d: bias has the wrong length");
    }
    let kk = s.kh * s.kw * s.in_c;
    let n = s.out_c;
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = DirectIsa::detect() {
        // The bias is added in the microkernel's registers (zeros without
        // one): no pass of its own either way.
        let mut zeros = std::mem::take(&mut scratch.bias_zeros);
        if zeros.len() < n {
            zeros.resize(n, 0.0);
        }
        let f = direct::Forward {
            act,
            batch,
            x,
            kernel,
            bias: bias.unwrap_or(&zeros[..n]),
            y,
        };
        match isa {
            DirectIsa::Avx512(t) => direct::direct_forward(t, s, f, scratch),
            DirectIsa::Avx2(t) => direct::direct_forward(t, s, f, scratch),
        }
        scratch.bias_zeros = zeros;
        return;
    }
    let col = prepare(s, batch, x, &mut scratch.xpad, &mut scratch.toff, false);
    let kmat = Strided::row_major(kernel, n);
    let parts = pool::parts_for(2 * m * n * kk, m.div_ceil(MR));
    let ldy = y.step(n);
    let yp = SendPtr(y.y.as_mut_ptr());
    gemm::for_row_tiles(m, parts, &|rows| {
        if rows.is_empty() {
            return;
        }
        // SAFETY: these rows of y (each `n` values, `ldy` apart) belong to
        // this part only.
        let ys = unsafe { yp.slice(rows.start * ldy, (rows.len() - 1) * ldy + n) };
        gemm::gemm(rows.len(), n, kk, &col, rows.start, &kmat, ys, ldy, false);
        if ldy == n {
            bias_activation(ys, bias, n, act);
        } else {
            for row in ys.chunks_mut(ldy) {
                bias_activation(&mut row[..n], bias, n, act);
            }
        }
    });
}

/// A conv's kernel and bias laid out once for the forward pass, so that
/// inference with unchanged weights skips the per-call packing (on ResNet-50
/// at batch 1 it was about a sixth of the time: a pass over every weight per
/// image). Made by [`conv2d_pack`], used by [`conv2d_forward_packed`]; the
/// AVX-512 and AVX2 paths have a packed form (the portable GEMM packs per
/// block).
#[derive(Default)]
pub struct PackedConv {
    buf: AlignedVec,
    /// The spec's `(kh * kw * in_c, out_c)` it was packed for, and the
    /// instruction set's floats per vector.
    dims: (usize, usize, usize),
}

/// Packs `kernel` and `bias` for the forward pass of `spec` into `into`
/// (reusing its buffer); returns false, packing nothing, where the forward
/// pass takes a path without a packed form.
///
/// # Panics
/// When a length does not match the spec.
pub fn conv2d_pack(
    spec: &Conv2dSpec,
    kernel: &[f32],
    bias: Option<&[f32]>,
    into: &mut PackedConv,
) -> bool {
    let kk = spec.kh * spec.kw * spec.in_c;
    let n = spec.out_c;
    assert_eq!(kernel.len(), kk * n, "conv2d: kernel has the wrong length");
    if kk == 0 || n == 0 {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = DirectIsa::detect() {
        let mut zeros = Vec::new();
        let bias = match bias {
            Some(b) => {
                assert_eq!(b.len(), n, "conv2d: bias has the wrong length");
                b
            }
            None => {
                zeros.resize(n, 0.0);
                &zeros
            }
        };
        let buf = &mut into.buf;
        match isa {
            DirectIsa::Avx512(_) => direct::pack::<avx512::Avx512>(kk, n, kernel, bias, buf),
            DirectIsa::Avx2(_) => direct::pack::<avx2::Avx2>(kk, n, kernel, bias, buf),
        };
        into.dims = (kk, n, isa.lanes());
        return true;
    }
    let _ = (bias, into);
    false
}

/// [`conv2d_forward`] with the kernel and bias packed by [`conv2d_pack`] for
/// the same spec: the same values, without packing them again.
///
/// # Panics
/// When a slice length does not match the spec and batch, or `packed` was
/// made for another shape of kernel.
pub fn conv2d_forward_packed<'y>(
    spec: &Conv2dSpec,
    act: Activation,
    batch: usize,
    x: &[f32],
    packed: &PackedConv,
    y: impl Into<Cells<'y>>,
    scratch: &mut Conv2dScratch,
) {
    let y = y.into();
    let s = spec;
    let kk = s.kh * s.kw * s.in_c;
    #[cfg(target_arch = "x86_64")]
    let isa = DirectIsa::detect().filter(|i| packed.dims == (kk, s.out_c, i.lanes()));
    #[cfg(not(target_arch = "x86_64"))]
    let isa: Option<()> = None;
    let Some(isa) = isa else {
        panic!("conv2d: packed for another kernel or instruction set");
    };
    let m = batch * s.out_h * s.out_w;
    check_sizes(s, batch, x.len(), kk * s.out_c, m * s.out_c);
    y.check("conv2d", m, s.out_c);
    if m == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let run = direct::Run {
            act,
            batch,
            x,
            kpack: &packed.buf,
            y,
        };
        match isa {
            DirectIsa::Avx512(t) => direct::Tiles::run(t, s, run, scratch),
            DirectIsa::Avx2(t) => direct::Tiles::run(t, s, run, scratch),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, act, x, y, scratch);
        unreachable!("conv2d_pack packs nothing off x86-64");
    }
}

/// Backward pass from `dz = dL/d(pre-activation)`: overwrites `dkernel` and,
/// when given, `dbias` (`None` for a layer without a bias: no reduction is
/// spent on it) and `dx`.
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
    dbias: Option<&mut [f32]>,
    scratch: &mut Conv2dScratch,
) {
    let s = spec;
    check_sizes(s, batch, x.len(), kernel.len(), dz.len());
    assert_eq!(
        dkernel.len(),
        kernel.len(),
        "conv2d: dkernel has the wrong length"
    );
    if let Some(d) = &dbias {
        assert_eq!(d.len(), s.out_c, "conv2d: dbias has the wrong length");
    }
    // Bias values per gradient part: 0 without a bias.
    let nb = if dbias.is_some() { s.out_c } else { 0 };
    let dbias: &mut [f32] = dbias.unwrap_or(&mut []);
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
    #[cfg(target_arch = "x86_64")]
    let cin1 = fast_paths() && avx512::dk_cin1_fits(s);
    #[cfg(not(target_arch = "x86_64"))]
    let cin1 = false;
    // Whole vectors of output channels: the direct kernel gradient.
    #[cfg(target_arch = "x86_64")]
    let direct_dk = DirectIsa::detect().filter(|i| !cin1 && i.kernel_grad_fits(s));
    #[cfg(not(target_arch = "x86_64"))]
    let direct_dk: Option<()> = None;
    let flip = !cin1 && direct_dk.is_none() && fill(n, kk) > fill(kk, n) + 0.05;
    // The parts' gradients are summed: as many parts on any core count.
    let parts = pool::fixed_parts(flops, batch);
    let own = usize::from(flip);
    grow(dk_part, (parts - 1 + own) * kk * n);
    grow(db_part, parts.saturating_sub(1) * nb);
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
                    dbp.slice(0, nb)
                } else {
                    dbpartp.slice((t - 1) * nb, nb)
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
                    avx512::dk_cin1(s, sr.clone(), &col, dz, dk)
                };
            } else if let Some(isa) = direct_dk {
                #[cfg(target_arch = "x86_64")]
                match isa {
                    DirectIsa::Avx512(t) => direct::Tiles::kernel_grad(t, &col, p0..p1, dz, dk),
                    DirectIsa::Avx2(t) => direct::Tiles::kernel_grad(t, &col, p0..p1, dz, dk),
                }
                #[cfg(not(target_arch = "x86_64"))]
                let () = isa;
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
            if nb > 0 {
                for row in dz[p0 * n..p1 * n].chunks_exact(n) {
                    for (d, v) in db.iter_mut().zip(row) {
                        *d += v;
                    }
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
            for (d, v) in dbias.iter_mut().zip(&db_part[(t - 1) * nb..t * nb]) {
                *d += v;
            }
        }
    }

    // Input gradient: dcol = dz * K^T by blocks of rows, then col2im.
    let Some(dx) = dx else { return };
    assert_eq!(dx.len(), x.len(), "conv2d: dx has the wrong length");
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = DirectIsa::detect().filter(|_| direct::input_grad_fits(s)) {
        match isa {
            DirectIsa::Avx512(t) => {
                direct::input_grad(t, s, batch, kernel, dz, dx, kflip, zeros, inner)
            }
            DirectIsa::Avx2(t) => {
                direct::input_grad(t, s, batch, kernel, dz, dx, kflip, zeros, inner)
            }
        }
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
        // SAFETY: part t owns samples sr of dx,
        let dxs = unsafe { dxp.slice(sr.start * sample, sr.len() * sample) };
        // SAFETY: and region t of dcol (sized for `parts` regions above).
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
