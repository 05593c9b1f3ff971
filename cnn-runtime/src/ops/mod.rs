//! Layer kernels, forward and backward side by side, on NHWC row-major `f32`
//! slices with the batch leading. Every kernel sizes nothing itself: callers pass
//! buffers sized from the same spec (a mismatch is a caller bug and panics).

pub mod activation;
pub mod augment;
pub mod batchnorm;
pub mod conv2d;
pub mod deconv;
pub mod dense;
pub mod dropout;
pub mod dwconv;
pub mod global_pool;
pub mod join;
pub mod pool2d;
pub(crate) mod simd;
pub mod upsample;
pub mod zeropad;

pub use activation::{activation_backward, activation_forward, activation_forward_inplace};
pub use conv2d::{conv2d_backward, conv2d_forward, Conv2dScratch};
pub use dense::{dense_backward, dense_forward};
pub use pool2d::{pool2d_backward, pool2d_forward};

/// Where a kernel writes its output: `y`, one cell (pixel) of the layer's
/// channels after another, or, with a `stride`, one cell every `stride`
/// values: the layer's channels of a concat's output, written in place
/// (`y` then starts at the layer's first channel; see [`cnn_plan::Place`]).
/// A plain slice converts to the former.
pub struct Cells<'a> {
    pub y: &'a mut [f32],
    pub stride: Option<usize>,
}

impl<'a> From<&'a mut [f32]> for Cells<'a> {
    fn from(y: &'a mut [f32]) -> Self {
        Cells { y, stride: None }
    }
}

impl<'a> From<&'a mut Vec<f32>> for Cells<'a> {
    fn from(y: &'a mut Vec<f32>) -> Self {
        Cells { y, stride: None }
    }
}

impl Cells<'_> {
    /// Values from one cell's start to the next's, for cells of `width`.
    pub fn step(&self, width: usize) -> usize {
        self.stride.unwrap_or(width)
    }

    /// Checks that `cells` cells of `width` values fit.
    ///
    /// # Panics
    /// When they do not: a plain slice must hold exactly that many values,
    /// a strided one must reach the last cell's end.
    pub(crate) fn check(&self, op: &str, cells: usize, width: usize) {
        match self.stride {
            None => check_lens(op, [("y", self.y.len(), cells * width)]),
            Some(stride) => assert!(
                stride >= width && (cells == 0 || self.y.len() >= (cells - 1) * stride + width),
                "{op}: {cells} cells of {width} every {stride} do not fit {} values",
                self.y.len()
            ),
        }
    }

    /// The first `cells` cells' `width` values each, in order.
    pub(crate) fn each(&mut self, cells: usize, width: usize) -> impl Iterator<Item = &mut [f32]> {
        let step = self.step(width).max(1);
        self.y
            .chunks_mut(step)
            .take(cells)
            .map(move |c| &mut c[..width])
    }
}

/// What a language-2 layer with a kernel reads: `batch` samples of input, its
/// kernel, and its bias (`None` for `nobias`; the backward passes ignore it).
#[derive(Clone, Copy)]
pub struct Operands<'a> {
    pub batch: usize,
    pub x: &'a [f32],
    pub kernel: &'a [f32],
    pub bias: Option<&'a [f32]>,
}

/// The gradients the backward pass of a layer with a kernel writes, each
/// overwritten: `dx` when the input needs one, `dbias` when the layer has a
/// bias. (Language-1 kernels keep their flat argument lists, which generated
/// code calls.)
pub struct Grads<'a> {
    /// dL/d(input).
    pub dx: Option<&'a mut [f32]>,
    /// dL/d(kernel), in the kernel's layout.
    pub dkernel: &'a mut [f32],
    /// dL/d(bias): the sums of dL/d(pre-activation) over every position.
    pub dbias: Option<&'a mut [f32]>,
}

impl Grads<'_> {
    /// Checks the lengths, zeroes `dx` and `dkernel` (the kernels accumulate
    /// into them) and writes `dbias` from `dz`, whose runs of `channels`
    /// values are the positions.
    ///
    /// # Panics
    /// When `dx` is not `x_len` long, `dkernel` not `k_len`, `dbias` not `channels`.
    pub(crate) fn start(&mut self, x_len: usize, k_len: usize, dz: &[f32], channels: usize) {
        assert_eq!(self.dkernel.len(), k_len, "dkernel has the wrong length");
        self.dkernel.fill(0.0);
        if let Some(dx) = self.dx.as_deref_mut() {
            assert_eq!(dx.len(), x_len, "dx has the wrong length");
            dx.fill(0.0);
        }
        if let Some(db) = self.dbias.as_deref_mut() {
            assert_eq!(db.len(), channels, "dbias has the wrong length");
            db.fill(0.0);
            for p in dz.chunks_exact(channels) {
                for (d, g) in db.iter_mut().zip(p) {
                    *d += g;
                }
            }
        }
    }
}

/// Checks that `src` and `dst` hold `batch` samples of `src_len` and
/// `dst_len` values, and pairs each sample of one with the same sample of
/// the other (for kernels that map sample to sample).
///
/// # Panics
/// When a length does not match (`what` names the op and its slices).
pub(crate) fn per_sample<'a>(
    what: [&str; 3],
    batch: usize,
    (src, src_len): (&'a [f32], usize),
    (dst, dst_len): (&'a mut [f32], usize),
) -> impl Iterator<Item = (&'a [f32], &'a mut [f32])> {
    let [op, s, d] = what;
    check_lens(
        op,
        [
            (s, src.len(), batch * src_len),
            (d, dst.len(), batch * dst_len),
        ],
    );
    src.chunks_exact(src_len.max(1))
        .zip(dst.chunks_exact_mut(dst_len.max(1)))
}

/// Asserts each `(name, length, expected)` of a kernel's slices.
///
/// # Panics
/// On the first mismatch, naming the op and the slice.
pub(crate) fn check_lens<const N: usize>(op: &str, lens: [(&str, usize, usize); N]) {
    for (name, got, want) in lens {
        assert_eq!(got, want, "{op}: {name} has the wrong length");
    }
}

impl Grads<'_> {
    /// [`Grads::start`], then `f(x, dz, dkernel, dx)` for each sample: its
    /// `x_len` input values, `dz_len` output gradients and (when asked for)
    /// `x_len` input gradients. The kernel gradient is shared (accumulated).
    pub(crate) fn each_sample(
        mut self,
        op: Operands<'_>,
        dz: &[f32],
        (x_len, dz_len, channels): (usize, usize, usize),
        mut f: impl FnMut(&[f32], &[f32], &mut [f32], Option<&mut [f32]>),
    ) {
        self.start(op.x.len(), op.kernel.len(), dz, channels);
        let Grads {
            mut dx, dkernel, ..
        } = self;
        for n in 0..op.batch {
            let dxs = dx
                .as_deref_mut()
                .map(|d| &mut d[n * x_len..(n + 1) * x_len]);
            let (xs, zs) = (
                &op.x[n * x_len..(n + 1) * x_len],
                &dz[n * dz_len..(n + 1) * dz_len],
            );
            f(xs, zs, dkernel, dxs);
        }
    }
}
