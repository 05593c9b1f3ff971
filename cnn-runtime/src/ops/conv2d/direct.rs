//! The forward pass as an indirect GEMM, written once over the instruction
//! set's register tile ([`Tiles`]: AVX-512 in `avx512`, AVX2 with FMA in
//! `avx2`). The microkernel broadcasts its A values straight from the padded
//! image through per-pixel base offsets and the column offset table, so A is
//! never packed (packing cost as much as the FMAs for small layers); only the
//! kernel (B) is packed, in column panels of whole vectors.

use super::{grow, prepare, Conv2dScratch, Im2col};
use crate::aligned::AlignedVec;
use crate::ops::activation::activation_forward_inplace;
use crate::ops::simd::Isa;
use crate::ops::Cells;
use crate::pool::{self, SendPtr};
use crate::{Activation, Conv2dSpec};
use std::ops::Range;

/// The operands of one `mr x nc` tile (`mr <= DMR`, `nc` at most the
/// tile's width): `c[i, j] = act(bias[j] + sum_p xp[pb[i] + toff[p]] *
/// bp[p * width + j])`, relu applied when asked.
///
/// A tile function's contract (see [`TileFn`]): `toff` holds `kk` offsets,
/// every `pb[i] + toff[p]` lies inside `xp`'s image, `bp` holds `kk * width`
/// values and `bias` `width`, and rows `..mr` x columns `..nc` of `c` (row
/// stride `ldc`) are the caller's to write.
pub(super) struct Tile<'a, const DMR: usize> {
    pub kk: usize,
    pub toff: *const usize,
    pub xp: *const f32,
    pub pb: &'a [usize; DMR],
    pub bp: *const f32,
    pub bias: *const f32,
    pub relu: bool,
    pub c: *mut f32,
    pub ldc: usize,
    pub mr: usize,
    pub nc: usize,
}

/// A tile of the forward pass, compiled for one instruction set.
///
/// # Safety
/// The instruction set must be available, and the operands must keep
/// [`Tile`]'s contract.
pub(super) type TileFn<const DMR: usize> = unsafe fn(&Tile<'_, DMR>);

/// The operands of one `mr x (NV vectors)` tile of the kernel gradient over
/// `count` pixels: `c[i, j] (+)= sum_p xp[pb[p] + offs[i]] * dz[p * ldz + j]`
/// (added to `c` when `add`, else written).
///
/// A tile function's contract (see [`DkTileFn`]): `pb` holds `count` pixel
/// bases with every `pb[p] + offs[i]` inside `xp`'s image, `dz` holds
/// `count` rows of `ldz` values of which the tile reads its width, and rows
/// `..mr` of `c` (row stride `ldc`, the tile's width) are the caller's to
/// write.
pub(super) struct DkTile<'a, const DMR: usize> {
    pub count: usize,
    pub pb: *const usize,
    pub xp: *const f32,
    pub offs: &'a [usize; DMR],
    pub dz: *const f32,
    pub ldz: usize,
    pub c: *mut f32,
    pub ldc: usize,
    pub mr: usize,
    pub add: bool,
}

/// A tile of the kernel gradient, compiled for one instruction set.
///
/// # Safety
/// The instruction set must be available, and the operands must keep
/// [`DkTile`]'s contract.
pub(super) type DkTileFn<const DMR: usize> = unsafe fn(&DkTile<'_, DMR>);

/// An instruction set's register tiles: a value proves the CPU has it.
pub(super) trait Tiles: Isa + Sync {
    /// Floats per vector.
    const LANES: usize = Self::W;
    /// Width of the kernel's column panels for `n` output channels (whole
    /// vectors; the tile's width).
    fn panel_width(n: usize) -> usize;
    /// The forward pass on a kernel packed for this instruction set: picks
    /// the tile rows for the panel width, then [`run_tiles`].
    fn run(self, s: &Conv2dSpec, r: Run<'_>, scratch: &mut Conv2dScratch);
    /// The tile of `DMR` rows and `nv` vectors (`nv` at most the widest).
    fn tile<const DMR: usize>(nv: usize) -> TileFn<DMR>;
    /// The kernel gradient's tile of `DMR` rows and `nv` vectors.
    fn dk_tile<const DMR: usize>(nv: usize) -> DkTileFn<DMR>;
    /// The kernel gradient over `pixels` ([`kernel_grad_fits`]): picks the
    /// tile rows for the panel width, then [`kernel_grad_tiles`].
    fn kernel_grad(self, col: &Im2col<'_>, pixels: Range<usize>, dz: &[f32], dk: &mut [f32]);
}

/// The operands of a forward pass, `y = act(conv(x, kernel) + bias)` over
/// `batch` samples.
pub(super) struct Forward<'a> {
    pub act: Activation,
    pub batch: usize,
    pub x: &'a [f32],
    pub kernel: &'a [f32],
    pub bias: &'a [f32],
    pub y: Cells<'a>,
}

/// Width of the last column panel: its channels rounded up to whole vectors
/// (MobileNetV2's 144 channels are two panels of 64 and one of 16, not 64:
/// the last tile of a layer computed up to 48 columns it then dropped).
fn last_width(n: usize, nrw: usize, lanes: usize) -> usize {
    (n - (n.div_ceil(nrw) - 1) * nrw).div_ceil(lanes) * lanes
}

/// Where the bias panels start in a packed kernel: after `panels - 1`
/// panels of `nrw` columns and the last, narrower one.
fn bias_at(kk: usize, n: usize, nrw: usize, lanes: usize) -> usize {
    (n.div_ceil(nrw) - 1) * kk * nrw + kk * last_width(n, nrw, lanes)
}

/// Packs `kernel` (`kk x n`, row-major) into column panels of
/// [`Tiles::panel_width`] (the last one [`last_width`]), then the bias panels
/// (both zero-padded), into `buf`, which it sizes: an [`AlignedVec`] starts on
/// a 64-byte boundary, so the microkernel's B loads are whole cache lines
/// (measured: split loads cost conv64_fwd_b8 about 10%).
pub(super) fn pack<T: Tiles>(
    kk: usize,
    n: usize,
    kernel: &[f32],
    bias: &[f32],
    buf: &mut AlignedVec,
) {
    let nrw = T::panel_width(n);
    let panels = n.div_ceil(nrw);
    let boff = bias_at(kk, n, nrw, T::LANES);
    let need = boff + panels * nrw;
    buf.resize(need, 0.0);
    let kpack = &mut buf[..];
    for jp in 0..panels {
        let j0 = jp * nrw;
        let nc = (n - j0).min(nrw);
        let w = if jp + 1 == panels {
            last_width(n, nrw, T::LANES)
        } else {
            nrw
        };
        let panel = &mut kpack[jp * kk * nrw..jp * kk * nrw + kk * w];
        for (p, d) in panel.chunks_exact_mut(w).enumerate() {
            d[..nc].copy_from_slice(&kernel[p * n + j0..p * n + j0 + nc]);
            d[nc..].fill(0.0);
        }
    }
    for jp in 0..panels {
        let j0 = jp * nrw;
        let nc = (n - j0).min(nrw);
        let d = &mut kpack[boff + j0..boff + j0 + nrw];
        d[..nc].copy_from_slice(&bias[j0..j0 + nc]);
        d[nc..].fill(0.0);
    }
}

/// The operands of a forward pass with the kernel and bias packed by [`pack`].
pub(super) struct Run<'a> {
    pub act: Activation,
    pub batch: usize,
    pub x: &'a [f32],
    pub kpack: &'a [f32],
    pub y: Cells<'a>,
}

/// Vectors of panel `jp` of `panels`: `nv`, but the last one is narrower
/// when the channels do not fill it (`last` columns, whole vectors): a tile
/// of its own width.
fn panel_vectors<T: Tiles>(jp: usize, panels: usize, last: usize, nv: usize) -> usize {
    if jp + 1 == panels && last < nv * T::LANES {
        last / T::LANES
    } else {
        nv
    }
}

/// Forward pass with the kernel packed on this call (into scratch).
pub(super) fn direct_forward<T: Tiles>(
    isa: T,
    s: &Conv2dSpec,
    f: Forward<'_>,
    scratch: &mut Conv2dScratch,
) {
    let kk = s.kh * s.kw * s.in_c;
    let mut kpack = std::mem::take(&mut scratch.kpack);
    pack::<T>(kk, s.out_c, f.kernel, f.bias, &mut kpack);
    let run = Run {
        act: f.act,
        batch: f.batch,
        x: f.x,
        kpack: &kpack,
        y: f.y,
    };
    isa.run(s, run, scratch);
    scratch.kpack = kpack;
}

/// The forward pass in tiles of `DMR` rows and `NV` vectors (the full
/// panels' width: [`Tiles::panel_width`]).
pub(super) fn run_tiles<T: Tiles, const DMR: usize, const NV: usize>(
    s: &Conv2dSpec,
    r: Run<'_>,
    scratch: &mut Conv2dScratch,
) {
    let Run {
        act,
        batch,
        x,
        kpack,
        y,
    } = r;
    let nrw = NV * T::LANES;
    assert_eq!(
        nrw,
        T::panel_width(s.out_c),
        "conv2d: tile and panels differ"
    );
    let m = batch * s.out_h * s.out_w;
    let kk = s.kh * s.kw * s.in_c;
    let n = s.out_c;
    let panels = n.div_ceil(nrw);
    let boff = bias_at(kk, n, nrw, T::LANES);
    let last = last_width(n, nrw, T::LANES);
    assert_eq!(
        kpack.len(),
        boff + panels * nrw,
        "conv2d: packed kernel length"
    );
    let Conv2dScratch { xpad, toff, .. } = scratch;
    // Bias and relu are applied in the microkernel; other activations after.
    let relu = act == Activation::Relu;
    let rest = if relu || act == Activation::Linear {
        Activation::Linear
    } else {
        act
    };
    y.check("conv2d", m, n);
    let ldy = y.step(n);
    let col = prepare(s, batch, x, xpad, toff, false);
    let tiles = m.div_ceil(DMR);
    let parts = pool::parts_for(2 * m * n * kk, tiles);
    let yp = SendPtr(y.y.as_mut_ptr());
    pool::run(parts, &|t| {
        let tr = pool::split(tiles, parts, t);
        // A few tiles at a time: each kernel panel is used for all of them
        // while it is in L2 (a panel per tile streamed the whole kernel once
        // per 6 pixels: ResNet-50's 7x7 layers at batch 1 read their 9 MB
        // kernels 9 times), and the epilogue runs while their rows are in cache.
        const CHUNK: usize = 8;
        let mut tile = tr.start;
        while tile < tr.end {
            let tend = (tile + CHUNK).min(tr.end);
            let r0 = tile * DMR;
            let r1 = (tend * DMR).min(m);
            let mut pbs = [[0usize; DMR]; CHUNK];
            for (tt, pb) in (tile..tend).zip(pbs.iter_mut()) {
                let rs = tt * DMR;
                let mr = (m - rs).min(DMR);
                col.for_each_pixel(rs, mr, |i, b| pb[i] = b);
                // Rows past the end reuse the last pixel; they are not stored.
                for i in mr..DMR {
                    pb[i] = pb[mr - 1];
                }
            }
            for jp in 0..panels {
                let j0 = jp * nrw;
                let nc = (n - j0).min(nrw);
                for (tt, pb) in (tile..tend).zip(pbs.iter()) {
                    let rs = tt * DMR;
                    let mr = (m - rs).min(DMR);
                    let tile = T::tile::<DMR>(panel_vectors::<T>(jp, panels, last, NV));
                    // SAFETY: the ISA was detected (a `T` exists); offsets stay inside the padded
                    // image (windows fit by construction of `padded_dims`), the
                    // panel holds kk times the tile's width values, and rows
                    // rs..rs+mr, columns j0..j0+nc of y belong to this part.
                    unsafe {
                        tile(&Tile {
                            kk,
                            toff: col.toff.as_ptr(),
                            xp: col.xp.as_ptr(),
                            pb,
                            bp: kpack[jp * kk * nrw..].as_ptr(),
                            bias: kpack[boff + j0..].as_ptr(),
                            relu,
                            c: yp.0.add(rs * ldy + j0),
                            ldc: ldy,
                            mr,
                            nc,
                        });
                    }
                }
            }
            if rest != Activation::Linear && ldy == n {
                // SAFETY: rows r0..r1 belong to this part.
                let ys = unsafe { yp.slice(r0 * n, (r1 - r0) * n) };
                activation_forward_inplace(rest, n, ys);
            } else if rest != Activation::Linear {
                for r in r0..r1 {
                    // SAFETY: as above, row r's cell of n values.
                    let ys = unsafe { yp.slice(r * ldy, n) };
                    activation_forward_inplace(rest, n, ys);
                }
            }
            tile = tend;
        }
    });
}

/// Input channels from which the stride-1 input gradient runs as a direct
/// convolution rather than GEMM + col2im.
const DX_DIRECT_MIN_CHANNELS: usize = 12;

/// Whether [`input_grad`] applies: stride 1, enough input channels (few would
/// fill few lanes of the direct tiles, the input gradient's channels being its
/// output channels: the GEMM + col2im path wins), and padding no wider than the
/// dilated kernel.
pub(super) fn input_grad_fits(s: &Conv2dSpec) -> bool {
    s.sh == 1
        && s.sw == 1
        && s.in_c >= DX_DIRECT_MIN_CHANNELS
        && (s.kh - 1) * s.dh >= s.pad_top
        && (s.kw - 1) * s.dw >= s.pad_left
}

/// Input gradient of a stride-1 convolution ([`input_grad_fits`]) as the
/// convolution of `dz` with the flipped, transposed kernel, on the direct
/// forward path: overwrites `dx`, no col2im.
#[allow(clippy::too_many_arguments)]
pub(super) fn input_grad<T: Tiles>(
    isa: T,
    s: &Conv2dSpec,
    batch: usize,
    kernel: &[f32],
    dz: &[f32],
    dx: &mut [f32],
    kflip: &mut Vec<f32>,
    zeros: &mut Vec<f32>,
    inner: &mut Option<Box<Conv2dScratch>>,
) {
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
    let f = Forward {
        act: Activation::Linear,
        batch,
        x: dz,
        kernel: &kflip[..kernel.len()],
        bias: &zeros[..ci],
        y: dx.into(),
    };
    direct_forward(isa, &t, f, inner);
}

/// Whether [`Tiles::kernel_grad`] applies: output channels in whole vectors
/// of the instruction set (its tiles then never read past a row of dz).
pub(super) fn kernel_grad_fits<T: Tiles>(s: &Conv2dSpec) -> bool {
    s.out_c > 0 && s.out_c.is_multiple_of(T::LANES)
}

/// The kernel gradient `dK[kk, o] = sum_p col[p, kk] dz[p, o]` over `pixels`,
/// written into `dk`, with the image read in place as the forward pass reads
/// it (the GEMM packed `col^T` from the image, which cost it as much as its
/// FMAs): per chunk of pixels, every tile of `DMR` rows of dK by `NV` vectors
/// of output channels sums the chunk in registers, dz's rows in place.
pub(super) fn kernel_grad_tiles<T: Tiles, const DMR: usize, const NV: usize>(
    col: &Im2col<'_>,
    pixels: Range<usize>,
    dz: &[f32],
    dk: &mut [f32],
) {
    let s = col.s;
    let n = s.out_c;
    let kk = s.kh * s.kw * s.in_c;
    let nrw = NV * T::LANES;
    assert!(
        kernel_grad_fits::<T>(s),
        "conv2d: a kernel gradient without whole vectors"
    );
    assert_eq!(nrw, T::panel_width(n), "conv2d: tile and panels differ");
    assert_eq!(dk.len(), kk * n, "conv2d: dkernel has the wrong length");
    assert!(
        pixels.end * n <= dz.len(),
        "conv2d: dz has the wrong length"
    );
    let panels = n.div_ceil(nrw);
    let last = n - (panels - 1) * nrw;
    // Pixels per chunk: their dz rows (64 KiB at 64 channels) stay in L2
    // while every tile sums them.
    const PCH: usize = 256;
    let mut pb = [0usize; PCH];
    let mut first = true;
    let mut p0 = pixels.start;
    while p0 < pixels.end {
        let count = (pixels.end - p0).min(PCH);
        col.for_each_pixel(p0, count, |i, b| pb[i] = b);
        for k0 in (0..kk).step_by(DMR) {
            let mr = (kk - k0).min(DMR);
            // Rows past the end repeat the last row's offset; they are not stored.
            let offs: [usize; DMR] = std::array::from_fn(|i| col.toff[k0 + i.min(mr - 1)]);
            for jp in 0..panels {
                let j0 = jp * nrw;
                let tile = T::dk_tile::<DMR>(panel_vectors::<T>(jp, panels, last, NV));
                // SAFETY: the ISA was detected (a `T` exists); every window
                // of these pixels lies inside the padded image (`prepare`),
                // dz holds rows p0..p0 + count (checked above) of n values
                // whose columns j0.. the tile's width covers (whole vectors:
                // `kernel_grad_fits`), and rows k0..k0 + mr of dk, columns
                // j0.., are inside dk (its length checked above).
                unsafe {
                    tile(&DkTile {
                        count,
                        pb: pb.as_ptr(),
                        xp: col.xp.as_ptr(),
                        offs: &offs,
                        dz: dz.as_ptr().add(p0 * n + j0),
                        ldz: n,
                        c: dk.as_mut_ptr().add(k0 * n + j0),
                        ldc: n,
                        mr,
                        add: !first,
                    });
                }
            }
        }
        first = false;
        p0 += count;
    }
    if first {
        // No pixels: nothing flows back.
        dk.fill(0.0);
    }
}

/// The body of [`TileFn`] on instruction set `I`, compiled into each one's
/// entry point by [`tile_entry_points`].
///
/// # Safety
/// As [`TileFn`].
#[inline(always)]
pub(super) unsafe fn tile<I: Isa, const DMR: usize, const NV: usize>(isa: I, t: &Tile<'_, DMR>) {
    let Tile {
        kk,
        toff,
        xp,
        pb,
        bp,
        bias,
        relu,
        c,
        ldc,
        mr,
        nc,
    } = *t;
    let w = I::W;
    let mut acc = [[isa.zero(); NV]; DMR];
    for row in acc.iter_mut() {
        for (v, a) in row.iter_mut().enumerate() {
            // SAFETY: v < NV: inside the NV * W bias values.
            *a = unsafe { isa.load_at(bias.add(v * w)) };
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
        let mut bv = [isa.zero(); NV];
        for (v, b) in bv.iter_mut().enumerate() {
            // SAFETY: p < kk and v < NV: inside the kk * NV * W panel values.
            *b = unsafe { isa.load_at(bp.add((p * NV + v) * w)) };
        }
        for i in 0..DMR {
            // SAFETY: the window cell at offset t is readable (contract).
            let a = isa.splat(unsafe { *ptrs[i].add(t) });
            for v in 0..NV {
                acc[i][v] = isa.fma(a, bv[v], acc[i][v]);
            }
        }
    }
    for v in 0..NV {
        let left = nc.saturating_sub(v * w);
        if left == 0 {
            break;
        }
        for (i, row) in acc.iter().enumerate().take(mr) {
            let val = if relu { isa.relu(row[v]) } else { row[v] };
            // SAFETY: i < mr and the lanes below `left` are columns below nc:
            // this tile's cells of C (contract).
            unsafe { isa.store_first(c.add(i * ldc + v * w), val, left) };
        }
    }
}

/// The body of [`DkTileFn`] on instruction set `I`, compiled into each one's
/// entry point by [`tile_entry_points`].
///
/// # Safety
/// As [`DkTileFn`].
#[inline(always)]
pub(super) unsafe fn dk_tile<I: Isa, const DMR: usize, const NV: usize>(
    isa: I,
    t: &DkTile<'_, DMR>,
) {
    let DkTile {
        count,
        pb,
        xp,
        offs,
        dz,
        ldz,
        c,
        ldc,
        mr,
        add,
    } = *t;
    let w = I::W;
    let mut acc = [[isa.zero(); NV]; DMR];
    for p in 0..count {
        // SAFETY: p < count: inside the pixel bases and dz's rows (contract).
        let (base, row) = unsafe { (xp.add(*pb.add(p)), dz.add(p * ldz)) };
        let mut bv = [isa.zero(); NV];
        for (v, b) in bv.iter_mut().enumerate() {
            // SAFETY: v < NV: inside the row's columns the tile covers.
            *b = unsafe { isa.load_at(row.add(v * w)) };
        }
        for i in 0..DMR {
            // SAFETY: the window cell at offs[i] is inside the image (contract).
            let a = isa.splat(unsafe { *base.add(offs[i]) });
            for v in 0..NV {
                acc[i][v] = isa.fma(a, bv[v], acc[i][v]);
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (v, &val) in row.iter().enumerate() {
            // SAFETY: i < mr, v < NV: this tile's cells of C (contract).
            unsafe {
                let at = c.add(i * ldc + v * w);
                let val = if add {
                    isa.add(isa.load_at(at), val)
                } else {
                    val
                };
                isa.store_at(at, val);
            }
        }
    }
}

/// The `#[target_feature]` entry points `direct_tile` and `dk_tile` of an
/// instruction set (its [`Isa`] type and features): [`tile`] and
/// [`dk_tile`] compiled for it, as [`TileFn`] and [`DkTileFn`].
macro_rules! tile_entry_points {
    ($isa:ty, $features:literal) => {
        /// [`direct::tile`] compiled for this instruction set.
        ///
        /// # Safety
        /// As [`TileFn`].
        #[target_feature(enable = $features)]
        unsafe fn direct_tile<const DMR: usize, const NV: usize>(t: &direct::Tile<'_, DMR>) {
            // SAFETY: the caller's contract, the instruction set included.
            unsafe { direct::tile::<_, DMR, NV>(<$isa as crate::ops::simd::Isa>::assume(), t) }
        }

        /// [`direct::dk_tile`] compiled for this instruction set.
        ///
        /// # Safety
        /// As [`DkTileFn`].
        #[target_feature(enable = $features)]
        unsafe fn dk_tile<const DMR: usize, const NV: usize>(t: &direct::DkTile<'_, DMR>) {
            // SAFETY: the caller's contract, the instruction set included.
            unsafe { direct::dk_tile::<_, DMR, NV>(<$isa as crate::ops::simd::Isa>::assume(), t) }
        }
    };
}
pub(super) use tile_entry_points;
