//! Plain descriptions of layers, with every size resolved, as the kernels take them.
//!
//! The compiler lowers a checked model to these (one [`LayerSpec`] per layer) and
//! [`crate::Plan::sequential`] arranges them into a plan. The runtime never
//! computes a shape itself: it trusts these, and only checks buffer sizes.

/// An `f32` option of a layer (a rate, a momentum, an epsilon, a slope), kept
/// as its bits so that specs stay `Eq` and `Hash` (two specs are the same when
/// their numbers are bit for bit the same).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Real(u32);

impl Real {
    /// The value `v`.
    pub fn new(v: f32) -> Real {
        Real(v.to_bits())
    }
    /// The value with these bits (what generated code writes).
    pub const fn from_bits(bits: u32) -> Real {
        Real(bits)
    }
    /// The bits of the value.
    pub const fn to_bits(self) -> u32 {
        self.0
    }
    /// The value.
    pub fn get(self) -> f32 {
        f32::from_bits(self.0)
    }
}

impl std::fmt::Debug for Real {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.get())
    }
}

/// Elementwise or per-pixel activation. `Softmax` is over the last axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
    /// `min(max(z, 0), 6)`.
    Relu6,
    /// `z >= 0 ? z : slope * z`.
    LeakyRelu(Real),
    Elu,
    Selu,
    /// The exact (erf) form.
    Gelu,
    /// `z * sigmoid(z)` (swish).
    Silu,
    Softplus,
    /// `relu6(z + 3) / 6`.
    HardSigmoid,
    /// `z * hard_sigmoid(z)` (hard swish).
    HardSilu,
}

impl Activation {
    /// Whether the derivative can be taken from the activation's output alone
    /// (linear, relu, sigmoid, tanh, softmax), so that a conv or dense layer can
    /// apply it in place. The others need the pre-activation: the plan runs
    /// them as a step of their own after the layer.
    pub fn from_output(self) -> bool {
        matches!(
            self,
            Activation::Linear
                | Activation::Relu
                | Activation::Sigmoid
                | Activation::Tanh
                | Activation::Softmax
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    Max,
    Avg,
    Min,
}

/// A 2-D convolution (cross-correlation), NHWC input, Keras kernel layout
/// `(KH, KW, CIN, COUT)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dSpec {
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub dh: usize,
    pub dw: usize,
    /// Zero cells before the first row / column (the after-padding is implied by
    /// the output size).
    pub pad_top: usize,
    pub pad_left: usize,
}

/// A 2-D pooling window. Padding cells are never read: ignored by max/min, left
/// out of the divisor by avg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dSpec {
    pub kind: PoolKind,
    pub in_h: usize,
    pub in_w: usize,
    pub c: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub ph: usize,
    pub pw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

/// How a window's padding is chosen along one axis, by Keras's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// No padding: only windows that fit inside the input.
    Valid,
    /// Output size `ceil(n / stride)`, padded with zeros split evenly (the odd
    /// cell after).
    Same,
}

impl Padding {
    /// `(output size, leading padding)` of an axis of `n` cells under a window of
    /// `k` cells with stride `s` and dilation `d`.
    ///
    /// # Panics
    /// `Valid`: when the dilated window is longer than `n`; both: when `s` is 0.
    pub fn axis(self, n: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
        let span = (k - 1) * d + 1;
        match self {
            Padding::Valid => ((n - span) / s + 1, 0),
            Padding::Same => {
                let out = n.div_ceil(s);
                let total = ((out - 1) * s + span).saturating_sub(n);
                (out, total / 2)
            }
        }
    }
}

/// A window sliding over both spatial axes (a conv kernel's or a pool's): its
/// `[rows, cols]` size, stride and dilation, and the padding rule, from which
/// [`Conv2dSpec::new`] and [`Pool2dSpec::new`] derive the output sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub size: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub padding: Padding,
}

impl Window {
    /// A `size` window with unit stride and dilation.
    pub fn new(size: [usize; 2], padding: Padding) -> Self {
        Window {
            size,
            stride: [1, 1],
            dilation: [1, 1],
            padding,
        }
    }

    /// The same window with `stride`.
    pub fn stride(self, stride: [usize; 2]) -> Self {
        Window { stride, ..self }
    }

    /// The same window with `dilation`.
    pub fn dilation(self, dilation: [usize; 2]) -> Self {
        Window { dilation, ..self }
    }

    /// `([out_h, out_w], [pad_top, pad_left])` over an `[h, w]` input
    /// ([`Padding::axis`] per axis).
    ///
    /// # Panics
    /// As [`Padding::axis`].
    pub fn apply(&self, [h, w]: [usize; 2]) -> ([usize; 2], [usize; 2]) {
        let (oh, pt) = self
            .padding
            .axis(h, self.size[0], self.stride[0], self.dilation[0]);
        let (ow, pl) = self
            .padding
            .axis(w, self.size[1], self.stride[1], self.dilation[1]);
        ([oh, ow], [pt, pl])
    }
}

impl Conv2dSpec {
    /// The convolution of an `[h, w, c]` input with `filters` output channels
    /// and the kernel `window`.
    ///
    /// ```
    /// use cnn_plan::{Conv2dSpec, Padding, Window};
    /// let s = Conv2dSpec::new([28, 28, 1], 6, Window::new([5, 5], Padding::Same));
    /// assert_eq!((s.out_h, s.out_w, s.pad_top), (28, 28, 2));
    /// ```
    ///
    /// # Panics
    /// As [`Window::apply`].
    pub fn new([in_h, in_w, in_c]: [usize; 3], filters: usize, window: Window) -> Self {
        let ([out_h, out_w], [pad_top, pad_left]) = window.apply([in_h, in_w]);
        let Window {
            size: [kh, kw],
            stride: [sh, sw],
            dilation: [dh, dw],
            ..
        } = window;
        Conv2dSpec {
            in_h,
            in_w,
            in_c,
            out_h,
            out_w,
            out_c: filters,
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            pad_top,
            pad_left,
        }
    }
}

impl Conv2dSpec {
    /// The spec of a transposed convolution (`deconv`) of an `[h, w, c]`
    /// input with `filters` filters, a `kernel` and `stride`, by Keras's
    /// rules: the *convolution it is the transpose of*, whose input is the
    /// deconv's output (`n * s` per axis for `same`, `(n - 1) * s + max(k, s)`
    /// for `valid`) and whose output is the deconv's input, with the cells
    /// Keras crops before (`floor((k - s) / 2)` for `same`, else 0) as its
    /// padding.
    ///
    /// ```
    /// use cnn_plan::Conv2dSpec;
    /// let t = Conv2dSpec::transposed([4, 4, 2], 3, [3, 3], [2, 2], false);
    /// assert_eq!((t.in_h, t.in_c, t.out_h, t.out_c), (9, 3, 4, 2));
    /// ```
    pub fn transposed(
        [h, w, c]: [usize; 3],
        filters: usize,
        [kh, kw]: [usize; 2],
        [sh, sw]: [usize; 2],
        same: bool,
    ) -> Self {
        let axis = |n: usize, k: usize, s: usize| {
            if same {
                (n * s, k.saturating_sub(s) / 2)
            } else {
                (n.saturating_sub(1) * s + k.max(s), 0)
            }
        };
        let ((oh, pad_top), (ow, pad_left)) = (axis(h, kh, sh), axis(w, kw, sw));
        Conv2dSpec {
            in_h: oh,
            in_w: ow,
            in_c: filters,
            out_h: h,
            out_w: w,
            out_c: c,
            kh,
            kw,
            sh,
            sw,
            dh: 1,
            dw: 1,
            pad_top,
            pad_left,
        }
    }
}

impl Pool2dSpec {
    /// `kind` pooling of an `[h, w, c]` input over `window`.
    ///
    /// ```
    /// use cnn_plan::{Padding, Pool2dSpec, PoolKind, Window};
    /// let w = Window::new([2, 2], Padding::Valid).stride([2, 2]);
    /// let p = Pool2dSpec::new(PoolKind::Max, [24, 24, 6], w);
    /// assert_eq!((p.out_h, p.out_w, p.c), (12, 12, 6));
    /// ```
    ///
    /// # Panics
    /// When the window is dilated (pools have no dilation), and as
    /// [`Window::apply`].
    pub fn new(kind: PoolKind, [in_h, in_w, c]: [usize; 3], window: Window) -> Self {
        assert_eq!(window.dilation, [1, 1], "pool: a dilated window");
        let (out, pad) = window.apply([in_h, in_w]);
        Pool2dSpec {
            kind,
            in_h,
            in_w,
            c,
            out_h: out[0],
            out_w: out[1],
            ph: window.size[0],
            pw: window.size[1],
            sh: window.stride[0],
            sw: window.stride[1],
            pad_top: pad[0],
            pad_left: pad[1],
        }
    }
}

/// Zero padding of the spatial axes (`zeropad`): `top` and `bottom` rows,
/// `left` and `right` columns of zeros around each `in_h x in_w x c` sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ZeroPadSpec {
    pub in_h: usize,
    pub in_w: usize,
    pub c: usize,
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

impl ZeroPadSpec {
    /// The padded `[h, w]`.
    pub fn out(&self) -> [usize; 2] {
        [
            self.in_h + self.top + self.bottom,
            self.in_w + self.left + self.right,
        ]
    }
}

/// How `upsample` fills the new cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interpolation {
    /// Repeat rows and columns.
    Nearest,
    /// Half-pixel bilinear (Keras's).
    Bilinear,
}

/// Upsampling (`upsample`) of `in_h x in_w x c` samples by `sh` rows and `sw`
/// columns per cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpsampleSpec {
    pub in_h: usize,
    pub in_w: usize,
    pub c: usize,
    pub sh: usize,
    pub sw: usize,
    pub interpolation: Interpolation,
}

/// A random image transform of an augmentation layer, drawn per sample in
/// training (inference passes the image through unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Augment {
    /// `randomflip`: each marked axis flipped with probability 1/2, the two
    /// independently (Keras's `RandomFlip`).
    Flip { horizontal: bool, vertical: bool },
    /// `randomtranslate F [G]`: shifted by up to `F` of the height and,
    /// apart, `G` of the width either way (Keras's `RandomTranslation(F, G)`).
    Translate(Real, Real),
    /// `randomrotate F`: turned by up to `F` of a full turn either way about
    /// the centre (Keras's `RandomRotation(F)`).
    Rotate(Real),
    /// `randomzoom F`: scaled about the centre by `1 + z`, `z` uniform in
    /// `[-F, F]`, the same on both axes; `z > 0` zooms out (Keras's
    /// `RandomZoom(F)`).
    Zoom(Real),
}

impl Augment {
    /// Whether the factor is in its range (what the checker enforces):
    /// `[0, 1]` for a shift or a turn, `[0, 1)` for a zoom (at 1 the image
    /// could shrink to a point); a flip flips at least one axis.
    pub fn valid(self) -> bool {
        match self {
            Augment::Flip {
                horizontal,
                vertical,
            } => horizontal || vertical,
            Augment::Translate(f, g) => [f, g].iter().all(|f| (0.0..=1.0).contains(&f.get())),
            Augment::Rotate(f) => (0.0..=1.0).contains(&f.get()),
            Augment::Zoom(f) => (0.0..1.0).contains(&f.get()),
        }
    }
}

/// An augmentation layer over `h x w x c` samples (the output has the
/// input's shape). Pixels a transform brings in from outside the image
/// are the image reflected about its edge; values between pixels are
/// bilinear (Keras's defaults, `fill_mode="reflect"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AugmentSpec {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub kind: Augment,
}

/// A global pool (`globalavgpool`, `globalmaxpool`): `hw` positions of `c`
/// channels to `c` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GlobalPoolSpec {
    pub kind: PoolKind,
    pub hw: usize,
    pub c: usize,
}

/// A fully connected layer, kernel `(inputs, units)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DenseSpec {
    pub inputs: usize,
    pub units: usize,
}

/// Batch normalization over the last axis of `len` values per sample with
/// `c` channels. Tensors, in order: `gamma` (with `scale`), `beta` (with
/// `center`), `moving_mean`, `moving_variance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchNormSpec {
    pub len: usize,
    pub c: usize,
    pub momentum: Real,
    pub epsilon: Real,
    pub scale: bool,
    pub center: bool,
}

/// One layer of an interpreted model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerSpec {
    /// A convolution; with `groups > 1`, the input channels and the filters are
    /// cut into that many groups, each convolved on its own (kernel
    /// `(KH, KW, CIN / groups, COUT)`). Without `bias` there is no bias tensor.
    Conv2d {
        spec: Conv2dSpec,
        act: Activation,
        bias: bool,
        groups: usize,
    },
    /// A depthwise convolution: `out_c / in_c` filters per input channel,
    /// output channel `c * M + m` (tensor `depthwise_kernel` `(KH, KW, C, M)`).
    DwConv2d {
        spec: Conv2dSpec,
        act: Activation,
        bias: bool,
    },
    /// A depthwise-separable convolution: the plan runs it as a depthwise step
    /// (no bias, linear) and a 1x1 `pointwise` convolution, with tensors
    /// `depthwise_kernel`, `pointwise_kernel` and `bias`. Never a step itself.
    SepConv2d {
        depthwise: Conv2dSpec,
        pointwise: Conv2dSpec,
        act: Activation,
        bias: bool,
    },
    /// A transposed convolution, described by the convolution it transposes
    /// ([`Conv2dSpec::transposed`]): its input is this layer's output. Kernel
    /// `(KH, KW, F, C)`.
    Deconv2d {
        spec: Conv2dSpec,
        act: Activation,
        bias: bool,
    },
    Pool2d(Pool2dSpec),
    /// `len` = H*W*C; a no-op on NHWC row-major data.
    Flatten {
        len: usize,
    },
    Dense {
        spec: DenseSpec,
        act: Activation,
        bias: bool,
    },
    /// An activation as its own layer over `len` values per sample, whose last axis
    /// has `channels` entries (softmax normalises over it).
    Activation {
        act: Activation,
        len: usize,
        channels: usize,
    },
    BatchNorm(BatchNormSpec),
    /// Inverted dropout of `len` values per sample, in training only.
    Dropout {
        rate: Real,
        len: usize,
    },
    GlobalPool(GlobalPoolSpec),
    ZeroPad(ZeroPadSpec),
    Upsample(UpsampleSpec),
    /// A random transform of each image in training, the identity in inference.
    Augment(AugmentSpec),
    /// The join of a graph's branches (`residual`, `add`, `concat`): a step
    /// that reads several buffers (the plan's operands of the step).
    Join(JoinSpec),
}

/// How a join combines its branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JoinKind {
    /// Element-wise sum; every branch has the join's shape.
    Add,
    /// The branches side by side on the channel axis, in order.
    Concat,
}

/// A join of `inputs` branches into `hw` cells of `c` channels per sample
/// (a vector of `n` is `hw = 1`, `c = n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JoinSpec {
    pub kind: JoinKind,
    pub inputs: usize,
    pub hw: usize,
    pub c: usize,
}

impl LayerSpec {
    /// The activation applied at the end of the layer (`Linear` for none).
    pub fn activation(&self) -> Activation {
        match *self {
            LayerSpec::Conv2d { act, .. }
            | LayerSpec::DwConv2d { act, .. }
            | LayerSpec::SepConv2d { act, .. }
            | LayerSpec::Deconv2d { act, .. }
            | LayerSpec::Dense { act, .. }
            | LayerSpec::Activation { act, .. } => act,
            _ => Activation::Linear,
        }
    }

    /// The same layer with activation `a` in place of its own, for a layer
    /// that applies one (see [`LayerSpec::has_kernel`]); others unchanged.
    pub fn with_activation(mut self, a: Activation) -> LayerSpec {
        match &mut self {
            LayerSpec::Conv2d { act, .. }
            | LayerSpec::DwConv2d { act, .. }
            | LayerSpec::SepConv2d { act, .. }
            | LayerSpec::Deconv2d { act, .. }
            | LayerSpec::Dense { act, .. } => *act = a,
            _ => {}
        }
        self
    }

    /// Whether the layer has trainable parameters (a kernel, or batchnorm's
    /// gamma or beta): the backward pass runs from the first such layer on.
    pub fn has_params(&self) -> bool {
        match *self {
            LayerSpec::BatchNorm(b) => b.scale || b.center,
            LayerSpec::Conv2d { .. }
            | LayerSpec::DwConv2d { .. }
            | LayerSpec::SepConv2d { .. }
            | LayerSpec::Deconv2d { .. }
            | LayerSpec::Dense { .. } => true,
            _ => false,
        }
    }

    /// Whether the layer computes its output with a kernel and a bias (conv,
    /// depthwise, transposed conv, dense): the layers that apply their
    /// activation themselves and take their gradient through it.
    pub fn has_kernel(&self) -> bool {
        matches!(
            self,
            LayerSpec::Conv2d { .. }
                | LayerSpec::DwConv2d { .. }
                | LayerSpec::SepConv2d { .. }
                | LayerSpec::Deconv2d { .. }
                | LayerSpec::Dense { .. }
        )
    }

    /// For a layer that can absorb a per-output-channel scale and shift into
    /// its kernel and bias (a folded batchnorm): kernel value `i` feeds output
    /// channel `(i / stride) % channels()`. Keras keeps output channels last
    /// in every kernel but the transposed conv's, `[kh, kw, out, in]`.
    pub fn fold_stride(&self) -> Option<usize> {
        match *self {
            LayerSpec::Conv2d { .. } | LayerSpec::DwConv2d { .. } | LayerSpec::Dense { .. } => {
                Some(1)
            }
            LayerSpec::Deconv2d { spec, .. } => Some(spec.out_c),
            _ => None,
        }
    }

    /// Whether the layer's kernel can write its output with a cell stride,
    /// straight into its channels of a concat's output ([`crate::Place`]):
    /// a conv (not grouped), a transposed conv, or an activation other than
    /// softmax.
    pub fn writes_cells(&self) -> bool {
        match *self {
            LayerSpec::Conv2d { groups, .. } => groups == 1,
            LayerSpec::Deconv2d { .. } => true,
            LayerSpec::Activation { act, .. } => act != Activation::Softmax,
            _ => false,
        }
    }

    /// Length of the output's last axis: what softmax normalises over.
    pub fn channels(&self) -> usize {
        match *self {
            LayerSpec::Conv2d { spec, .. } | LayerSpec::DwConv2d { spec, .. } => spec.out_c,
            LayerSpec::SepConv2d { pointwise, .. } => pointwise.out_c,
            // The transposed conv's output is the input of the conv it transposes.
            LayerSpec::Deconv2d { spec, .. } => spec.in_c,
            LayerSpec::Dense { spec, .. } => spec.units,
            LayerSpec::Activation { channels, .. } => channels,
            LayerSpec::Pool2d(p) => p.c,
            LayerSpec::Flatten { len } | LayerSpec::Dropout { len, .. } => len,
            LayerSpec::BatchNorm(b) => b.c,
            LayerSpec::GlobalPool(g) => g.c,
            LayerSpec::ZeroPad(z) => z.c,
            LayerSpec::Upsample(u) => u.c,
            LayerSpec::Augment(a) => a.c,
            LayerSpec::Join(j) => j.c,
        }
    }

    /// Forward floating-point operations per sample, as the summary counts them
    /// (multiply-adds x 2 for the layers with a kernel, one per window cell for
    /// pools, one per value for an activation, batchnorm, dropout, augmentation
    /// or a global pool): the work estimate the thread pool splits by.
    pub fn flops(&self) -> usize {
        let conv = |s: Conv2dSpec, cin: usize| 2 * s.out_h * s.out_w * s.out_c * s.kh * s.kw * cin;
        match *self {
            LayerSpec::Conv2d {
                spec: s, groups, ..
            } => conv(s, s.in_c / groups.max(1)),
            LayerSpec::DwConv2d { spec: s, .. } => conv(s, 1),
            LayerSpec::SepConv2d {
                depthwise,
                pointwise,
                ..
            } => conv(depthwise, 1) + conv(pointwise, pointwise.in_c),
            // Each input value of the transposed conv meets every kernel tap.
            LayerSpec::Deconv2d { spec: s, .. } => {
                2 * s.out_h * s.out_w * s.out_c * s.kh * s.kw * s.in_c
            }
            LayerSpec::Dense { spec, .. } => 2 * spec.inputs * spec.units,
            LayerSpec::Pool2d(p) => p.out_h * p.out_w * p.c * p.ph * p.pw,
            LayerSpec::Activation { len, .. }
            | LayerSpec::Dropout { len, .. }
            | LayerSpec::BatchNorm(BatchNormSpec { len, .. }) => len,
            LayerSpec::GlobalPool(g) => g.hw * g.c,
            LayerSpec::Upsample(u) => u.in_h * u.sh * u.in_w * u.sw * u.c,
            LayerSpec::Augment(a) => a.h * a.w * a.c,
            // A sum adds each extra branch once per value; a concat only copies.
            LayerSpec::Join(j) => match j.kind {
                JoinKind::Add => j.inputs.saturating_sub(1) * j.hw * j.c,
                JoinKind::Concat => 0,
            },
            LayerSpec::Flatten { .. } | LayerSpec::ZeroPad(_) => 0,
        }
    }
}
