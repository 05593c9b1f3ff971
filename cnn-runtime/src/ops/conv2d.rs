//! 2-D convolution (cross-correlation), NHWC, kernel `(KH, KW, CIN, COUT)`.
//!
//! All three products are GEMMs over the implicit im2col matrix `col`
//! (`rows = batch * OH * OW` output pixels, `cols = KH * KW * CIN`), which is
//! never materialised: [`Im2col`] packs blocks of it straight from the image.
//! * forward: `y = col * K` (+ bias, activation, applied per thread part while hot);
//! * kernel gradient: `dK = col^T * dz` (the pixel axis is the reduction; parts
//!   reduce disjoint pixel ranges into private buffers, summed at the end);
//! * input gradient: `dcol = dz * K^T` per block of rows, scattered back (col2im)
//!   into `dx`; parts own whole samples so their scatters never overlap.

use super::activation::activation_forward_inplace;
use super::parallel::{self, SendPtr};
use crate::gemm::{self, Source, Strided, MR};
use crate::{Activation, Conv2dSpec};

/// Reusable buffers of the convolution kernels; grows on demand, never shrinks.
#[derive(Default)]
pub struct Conv2dScratch {
    /// Column-gradient blocks, one region per thread part.
    dcol: Vec<f32>,
    /// Partial kernel gradients of parts 1.. (part 0 writes the output directly).
    dk_part: Vec<f32>,
    /// Partial bias gradients of parts 1...
    db_part: Vec<f32>,
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// The implicit im2col matrix of a batch (or its transpose).
///
/// `col[m, kk]` with `m = (n * OH + oh) * OW + ow` and `kk = (a * KW + b) * CIN + c`
/// is `x[n, oh*SH + a*DH - PT, ow*SW + b*DW - PL, c]`, or 0 in the padding.
struct Im2col<'a> {
    s: &'a Conv2dSpec,
    x: &'a [f32],
    transposed: bool,
}

impl Im2col<'_> {
    /// `out[t * stride] = col[m, kk0 + t]` for `t < len`.
    #[inline]
    fn run(&self, m: usize, kk0: usize, len: usize, out: &mut [f32], stride: usize) {
        let s = self.s;
        let ohw = s.out_h * s.out_w;
        let n = m / ohw;
        let r = m % ohw;
        let (oh, ow) = (r / s.out_w, r % s.out_w);
        let img = &self.x[n * s.in_h * s.in_w * s.in_c..(n + 1) * s.in_h * s.in_w * s.in_c];
        let ab = kk0 / s.in_c;
        let mut ci = kk0 % s.in_c;
        let (mut a, mut b) = (ab / s.kw, ab % s.kw);
        let mut t = 0;
        while t < len {
            let seg = (s.in_c - ci).min(len - t);
            let ih = (oh * s.sh + a * s.dh) as isize - s.pad_top as isize;
            let iw = (ow * s.sw + b * s.dw) as isize - s.pad_left as isize;
            if ih >= 0 && iw >= 0 && (ih as usize) < s.in_h && (iw as usize) < s.in_w {
                let base = ((ih as usize) * s.in_w + iw as usize) * s.in_c + ci;
                let src = &img[base..base + seg];
                if stride == 1 {
                    out[t..t + seg].copy_from_slice(src);
                } else {
                    for (q, &v) in src.iter().enumerate() {
                        out[(t + q) * stride] = v;
                    }
                }
            } else if stride == 1 {
                out[t..t + seg].fill(0.0);
            } else {
                for q in 0..seg {
                    out[(t + q) * stride] = 0.0;
                }
            }
            t += seg;
            ci = 0;
            b += 1;
            if b == s.kw {
                b = 0;
                a += 1;
            }
        }
    }

    /// Packs rows `r0..r0+nr` (output pixels) x columns `c0..c0+kc` into
    /// `dst[p * w + i]`: per kernel tap, one offset per pixel, then contiguous
    /// writes across the pixels of the panel.
    fn pack_pixels(&self, r0: usize, nr: usize, c0: usize, kc: usize, w: usize, dst: &mut [f32]) {
        const MAXW: usize = 64;
        debug_assert!(w <= MAXW);
        let s = self.s;
        let ohw = s.out_h * s.out_w;
        let sample = s.in_h * s.in_w * s.in_c;
        let mut ih0 = [0isize; MAXW];
        let mut iw0 = [0isize; MAXW];
        let mut base = [0usize; MAXW];
        for i in 0..nr {
            let m = r0 + i;
            let r = m % ohw;
            ih0[i] = ((r / s.out_w) * s.sh) as isize - s.pad_top as isize;
            iw0[i] = ((r % s.out_w) * s.sw) as isize - s.pad_left as isize;
            base[i] = (m / ohw) * sample;
        }
        let mut off = [usize::MAX; MAXW];
        let ab0 = c0 / s.in_c;
        let mut ci = c0 % s.in_c;
        let (mut a, mut b) = (ab0 / s.kw, ab0 % s.kw);
        let mut p = 0;
        let x = self.x;
        while p < kc {
            let seg = (s.in_c - ci).min(kc - p);
            for i in 0..nr {
                let ih = ih0[i] + (a * s.dh) as isize;
                let iw = iw0[i] + (b * s.dw) as isize;
                off[i] = if ih >= 0 && iw >= 0 && (ih as usize) < s.in_h && (iw as usize) < s.in_w {
                    base[i] + ((ih as usize) * s.in_w + iw as usize) * s.in_c + ci
                } else {
                    usize::MAX
                };
            }
            for q in 0..seg {
                let d = &mut dst[(p + q) * w..(p + q) * w + nr];
                for (dv, &o) in d.iter_mut().zip(&off[..nr]) {
                    *dv = if o == usize::MAX { 0.0 } else { x[o + q] };
                }
            }
            p += seg;
            ci = 0;
            b += 1;
            if b == s.kw {
                b = 0;
                a += 1;
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
            for p in 0..kc {
                self.run(c0 + p, r0, nr, &mut dst[p * w..p * w + nr], 1);
            }
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
            for j in 0..nc {
                self.run(j0 + j, p0, kc, &mut dst[j..], w);
            }
        } else {
            for p in 0..kc {
                self.run(p0 + p, j0, nc, &mut dst[p * w..p * w + nc], 1);
            }
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
    let _ = scratch;
    let s = spec;
    check_sizes(s, batch, x.len(), kernel.len(), y.len());
    assert_eq!(bias.len(), s.out_c, "conv2d: bias has the wrong length");
    let m = batch * s.out_h * s.out_w;
    let kk = s.kh * s.kw * s.in_c;
    let n = s.out_c;
    if m == 0 || n == 0 {
        return;
    }
    let col = Im2col {
        s,
        x,
        transposed: false,
    };
    let kmat = Strided::row_major(kernel, n);
    let tiles = m.div_ceil(MR);
    let parts = parallel::parts_for(2 * m * n * kk, tiles);
    let yp = SendPtr(y.as_mut_ptr());
    parallel::run(parts, &|t| {
        let tr = parallel::split(tiles, parts, t);
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

    // Parameter gradients: split the pixel (reduction) axis by whole samples.
    let parts = parallel::parts_for(flops, batch);
    grow(&mut scratch.dk_part, parts.saturating_sub(1) * kk * n);
    grow(&mut scratch.db_part, parts.saturating_sub(1) * n);
    {
        let colt = Im2col {
            s,
            x,
            transposed: true,
        };
        let dkp = SendPtr(dkernel.as_mut_ptr());
        let dbp = SendPtr(dbias.as_mut_ptr());
        let partp = SendPtr(scratch.dk_part.as_mut_ptr());
        let dbpartp = SendPtr(scratch.db_part.as_mut_ptr());
        parallel::run(parts, &|t| {
            let sr = parallel::split(batch, parts, t);
            let (p0, p1) = (sr.start * ohw, sr.end * ohw);
            // SAFETY: part 0 owns dkernel/dbias, part t owns region t-1 of the partials.
            let (dk, db) = unsafe {
                if t == 0 {
                    (dkp.slice(0, kk * n), dbp.slice(0, n))
                } else {
                    (
                        partp.slice((t - 1) * kk * n, kk * n),
                        dbpartp.slice((t - 1) * n, n),
                    )
                }
            };
            // dK[kk, o] = sum_p col[p, kk] dz[p, o] over this part's pixels.
            let dz_part = Strided {
                data: &dz[p0 * n..],
                rs: n,
                cs: 1,
            };
            let a = Im2colRange {
                inner: &colt,
                c_off: p0,
            };
            gemm::gemm(kk, n, p1 - p0, &a, 0, &dz_part, dk, n, false);
            db.fill(0.0);
            for row in dz[p0 * n..p1 * n].chunks_exact(n) {
                for (d, v) in db.iter_mut().zip(row) {
                    *d += v;
                }
            }
        });
        for t in 1..parts {
            for (d, v) in dkernel
                .iter_mut()
                .zip(&scratch.dk_part[(t - 1) * kk * n..t * kk * n])
            {
                *d += v;
            }
            for (d, v) in dbias.iter_mut().zip(&scratch.db_part[(t - 1) * n..t * n]) {
                *d += v;
            }
        }
    }

    // Input gradient: dcol = dz * K^T by blocks of rows, then col2im.
    let Some(dx) = dx else { return };
    assert_eq!(dx.len(), x.len(), "conv2d: dx has the wrong length");
    dx.fill(0.0);
    if m == 0 || kk == 0 {
        return;
    }
    let parts = parallel::parts_for(flops, batch);
    // Blocks of about 256 KiB of dcol: they stay in L2 between GEMM and scatter.
    let rb = ((64 * 1024 / kk).max(MR) / MR * MR).min(m.div_ceil(MR) * MR);
    grow(&mut scratch.dcol, parts * rb * kk);
    let kt = Strided::transposed(kernel, n);
    let dxp = SendPtr(dx.as_mut_ptr());
    let dcolp = SendPtr(scratch.dcol.as_mut_ptr());
    let sample = s.in_h * s.in_w * s.in_c;
    parallel::run(parts, &|t| {
        let sr = parallel::split(batch, parts, t);
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

/// The transposed im2col matrix with its column (pixel) index shifted by `c_off`,
/// so a part can treat its pixel range as columns `0..`.
struct Im2colRange<'a, 'b> {
    inner: &'a Im2col<'b>,
    c_off: usize,
}

impl Source for Im2colRange<'_, '_> {
    fn pack_rows(&self, r0: usize, nr: usize, c0: usize, kc: usize, w: usize, dst: &mut [f32]) {
        self.inner.pack_rows(r0, nr, c0 + self.c_off, kc, w, dst)
    }
    fn pack_cols(&self, p0: usize, kc: usize, j0: usize, nc: usize, w: usize, dst: &mut [f32]) {
        self.inner.pack_cols(p0, kc, j0 + self.c_off, nc, w, dst)
    }
}
