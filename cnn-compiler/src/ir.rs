//! The typed model IR: the output of the checker and the single source of truth
//! for every shape downstream (code generator, interpreter lowering, summaries).
//!
//! Nothing after the checker recomputes a shape, a padding split or a parameter
//! size: it reads them from here.

use serde::Serialize;

/// A byte range in the source text (`start..end`), used to point diagnostics and
/// generated-code errors back at the user's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// Shape of one sample (the batch axis is never part of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Shape {
    /// `H x W x C`, channels last.
    Image { h: usize, w: usize, c: usize },
    /// A flat vector of `n` features.
    Vector { n: usize },
}

impl Shape {
    /// Number of f32 values in one sample.
    pub fn len(&self) -> usize {
        match *self {
            Shape::Image { h, w, c } => h * w * c,
            Shape::Vector { n } => n,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The dimensions as a list, `[H, W, C]` or `[N]` (Keras's output shape without batch).
    pub fn dims(&self) -> Vec<usize> {
        match *self {
            Shape::Image { h, w, c } => vec![h, w, c],
            Shape::Vector { n } => vec![n],
        }
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Shape::Image { h, w, c } => write!(f, "{h}x{w}x{c}"),
            Shape::Vector { n } => write!(f, "a vector of {n}"),
        }
    }
}

pub use cnn_plan::Real;

/// Serializes a [`Real`] as the number it holds.
fn real<S: serde::Serializer>(r: &Real, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f32(r.get())
}

/// An activation, as a layer option or a statement of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
    Relu6,
    /// With its slope for negative inputs (default 0.3, Keras's `LeakyReLU`).
    LeakyRelu(#[serde(serialize_with = "real")] Real),
    Elu,
    Selu,
    Gelu,
    /// Also written `swish`.
    Silu,
    Softplus,
    HardSigmoid,
    /// Also written `hard_swish`.
    HardSilu,
}

impl Activation {
    pub fn keyword(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::Relu6 => "relu6",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Elu => "elu",
            Activation::Selu => "selu",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Softplus => "softplus",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::HardSilu => "hard_silu",
        }
    }
}

/// How `upsample` fills the new cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    Nearest,
    Bilinear,
}

/// An augmentation layer's random transform, drawn per image in training
/// (the layer passes values through in inference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Augment {
    /// `randomflip [horizontal] [vertical]` (neither word: both axes).
    Flip { horizontal: bool, vertical: bool },
    /// `randomtranslate F [G]`: up to `F` of the height and `G` (default
    /// `F`) of the width.
    Translate {
        #[serde(serialize_with = "real")]
        height: Real,
        #[serde(serialize_with = "real")]
        width: Real,
    },
    /// `randomrotate F`: up to `F` of a full turn either way.
    Rotate(#[serde(serialize_with = "real")] Real),
    /// `randomzoom F`: scaled by `1 + z`, `z` in `[-F, F]`.
    Zoom(#[serde(serialize_with = "real")] Real),
}

impl Augment {
    /// The statement's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            Augment::Flip { .. } => "randomflip",
            Augment::Translate { .. } => "randomtranslate",
            Augment::Rotate(_) => "randomrotate",
            Augment::Zoom(_) => "randomzoom",
        }
    }

    /// The runtime's description (whose `valid` is the factors' ranges).
    pub fn plan(self) -> cnn_plan::Augment {
        match self {
            Augment::Flip {
                horizontal,
                vertical,
            } => cnn_plan::Augment::Flip {
                horizontal,
                vertical,
            },
            Augment::Translate { height, width } => cnn_plan::Augment::Translate(height, width),
            Augment::Rotate(f) => cnn_plan::Augment::Rotate(f),
            Augment::Zoom(f) => cnn_plan::Augment::Zoom(f),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    Same,
    Valid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    Max,
    Avg,
    Min,
}

impl PoolKind {
    pub fn keyword(self) -> &'static str {
        match self {
            PoolKind::Max => "maxpool",
            PoolKind::Avg => "avgpool",
            PoolKind::Min => "minpool",
        }
    }
}

/// Implicit padding of a 2-D window op, resolved: cells added before/after on each
/// axis (TensorFlow rule: the odd cell goes after, i.e. bottom/right). All zero for `valid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Pad2 {
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
}

/// `conv`: a 2-D convolution (grouped when `groups > 1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conv {
    pub filters: usize,
    /// `[KH, KW]`
    pub kernel: [usize; 2],
    /// `[SH, SW]`
    pub stride: [usize; 2],
    /// `[DH, DW]`
    pub dilation: [usize; 2],
    pub padding: Padding,
    /// The implicit (`same`) padding; zero for `valid`.
    pub pad: Pad2,
    /// `pad P`: `[PH, PW]` zero cells on both sides before a `valid` conv.
    pub explicit_pad: [usize; 2],
    /// 1 for an ordinary conv.
    pub groups: usize,
    /// `false` with `nobias`.
    pub bias: bool,
    pub activation: Activation,
}

/// `dwconv`: a depthwise convolution, `multiplier` filters per input channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DwConv {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub padding: Padding,
    pub pad: Pad2,
    pub explicit_pad: [usize; 2],
    pub multiplier: usize,
    pub bias: bool,
    pub activation: Activation,
}

/// `sepconv`: a depthwise convolution (no bias), then a 1x1 convolution to
/// `filters` channels with the bias and the activation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SepConv {
    pub filters: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub padding: Padding,
    pub pad: Pad2,
    pub multiplier: usize,
    pub bias: bool,
    pub activation: Activation,
}

/// `deconv`: a transposed convolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deconv {
    pub filters: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: Padding,
    /// Cells of the full output `(n - 1) * s + k` cropped before, `[top, left]`
    /// (`floor((k - s) / 2)` for `same`, 0 for `valid`).
    pub crop: [usize; 2],
    pub bias: bool,
    pub activation: Activation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pool {
    pub kind: PoolKind,
    /// `[PH, PW]`
    pub window: [usize; 2],
    /// `[SH, SW]` (defaults to the window)
    pub stride: [usize; 2],
    pub padding: Padding,
    pub pad: Pad2,
    /// `pad P`: cells on both sides that are never chosen / counted.
    pub explicit_pad: [usize; 2],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dense {
    pub units: usize,
    /// `false` with `nobias`.
    pub bias: bool,
    pub activation: Activation,
}

/// `batchnorm`, options resolved (momentum 0.99, epsilon 0.001 by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchNorm {
    #[serde(serialize_with = "real")]
    pub momentum: Real,
    #[serde(serialize_with = "real")]
    pub epsilon: Real,
    /// `false` with `noscale` (no gamma).
    pub scale: bool,
    /// `false` with `nocenter` (no beta).
    pub center: bool,
}

/// A layer's operation with every option resolved (defaults applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Op {
    Conv(Conv),
    DwConv(DwConv),
    SepConv(SepConv),
    Deconv(Deconv),
    Pool(Pool),
    Flatten,
    Dense(Dense),
    /// An activation written as its own statement.
    Activation(Activation),
    BatchNorm(BatchNorm),
    /// `dropout R`.
    Dropout(#[serde(serialize_with = "real")] Real),
    /// `globalavgpool` (`Avg`) or `globalmaxpool` (`Max`).
    GlobalPool(PoolKind),
    /// `zeropad`: rows and columns of zeros around the image.
    ZeroPad(Pad2),
    /// `upsample`: `[SH, SW]` copies (or interpolations) per cell.
    Upsample {
        size: [usize; 2],
        interpolation: Interpolation,
    },
    /// `randomflip`, `randomtranslate`, `randomrotate`, `randomzoom`.
    Augment(Augment),
    /// A graph statement and the layers of its branches.
    Graph(Graph),
}

/// A graph statement, checked: its branches' layers, each branch a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Graph {
    pub kind: GraphKind,
    /// `residual`: the body, then the shortcut (empty: the identity);
    /// `add`, `concat`: the branches as written (`{ }` is empty: the
    /// identity); `repeat N`: the N copies, run one after the other; a block
    /// use: its statements, the values substituted.
    pub branches: Vec<Vec<Layer>>,
}

/// Which graph statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphKind {
    /// `residual { A } [shortcut { B }]`: `A(x) + B(x)`, or `A(x) + x`.
    Residual { shortcut: bool },
    /// `add { A } { B } ...`: the sum of the branches.
    Add,
    /// `concat { A } { B } ...`: the branches on the channel axis, in order.
    Concat,
    /// `repeat N { A }`.
    Repeat(usize),
    /// `NAME V1 V2 ...`: a use of block `NAME`.
    Use { block: String, values: Vec<u64> },
}

impl Graph {
    /// Whether the branches run side by side on the same input and are
    /// joined (`residual`, `add`, `concat`), rather than one after the other.
    pub fn joins(&self) -> bool {
        matches!(
            self.kind,
            GraphKind::Residual { .. } | GraphKind::Add | GraphKind::Concat
        )
    }
}

impl Op {
    /// The statement's keyword (`conv`, `maxpool`, ..., or the activation's
    /// name), as in `summary --format json`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Op::Conv(_) => "conv",
            Op::DwConv(_) => "dwconv",
            Op::SepConv(_) => "sepconv",
            Op::Deconv(_) => "deconv",
            Op::Pool(p) => p.kind.keyword(),
            Op::Flatten => "flatten",
            Op::Dense(_) => "dense",
            Op::Activation(a) => a.keyword(),
            Op::BatchNorm(_) => "batchnorm",
            Op::Dropout(_) => "dropout",
            Op::GlobalPool(PoolKind::Max) => "globalmaxpool",
            Op::GlobalPool(_) => "globalavgpool",
            Op::ZeroPad(_) => "zeropad",
            Op::Upsample { .. } => "upsample",
            Op::Augment(a) => a.keyword(),
            Op::Graph(g) => match g.kind {
                GraphKind::Residual { .. } => "residual",
                GraphKind::Add => "add",
                GraphKind::Concat => "concat",
                GraphKind::Repeat(_) => "repeat",
                GraphKind::Use { .. } => "use",
            },
        }
    }
    /// The activation applied at the end of this layer, if any.
    pub fn activation(&self) -> Option<Activation> {
        match self {
            Op::Conv(c) => Some(c.activation),
            Op::DwConv(c) => Some(c.activation),
            Op::SepConv(c) => Some(c.activation),
            Op::Deconv(c) => Some(c.activation),
            Op::Dense(d) => Some(d.activation),
            Op::Activation(a) => Some(*a),
            _ => None,
        }
    }
}

/// One parameter (or state) tensor of a layer, in Keras layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamTensor {
    /// `kernel`, `bias`, `depthwise_kernel`, `pointwise_kernel`, `gamma`,
    /// `beta`, `moving_mean`, `moving_variance`: the weight name is
    /// `layer{path}.{name}`.
    pub name: &'static str,
    pub shape: Vec<usize>,
    /// `false` for batchnorm's moving statistics (Keras's non-trainable weights).
    pub trainable: bool,
}

/// One checked layer (a statement after `input`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    /// 0-based index of the top-level statement (after `input`) the layer is
    /// or is inside: the `i` of `layer_output(i)`.
    pub index: usize,
    /// The statement's path: its index for a top-level statement, then the
    /// branch and the index in it for each block around it (`5.1.0`); its
    /// tensors are `layer{path}.{name}`.
    pub path: String,
    pub op: Op,
    pub input: Shape,
    pub output: Shape,
    /// The layer's tensors in Keras's order (empty for layers without any).
    pub params: Vec<ParamTensor>,
    /// Number of parameter values, trainable or not (0 for layers without any).
    pub param_count: u64,
    /// Of which not trainable (batchnorm's moving statistics).
    pub non_trainable: u64,
    /// Forward FLOPs per sample. conv: `2*OH*OW*F*KH*KW*Cin` and dense: `2*in*N`
    /// (multiply-adds x 2; the bias add and a fused activation are not counted);
    /// pools: one op per window cell per output value (`OH*OW*C*PH*PW`); an
    /// activation statement: one op per value; flatten: 0. Language 2: dwconv
    /// `2*OH*OW*C*M*KH*KW`; sepconv that plus `2*OH*OW*C*M*F`; deconv
    /// `2*H*W*C*KH*KW*F` (every input cell meets every tap); batchnorm,
    /// dropout, upsample and the augmentation layers one op per output value; a global pool one per
    /// input value; zeropad 0 (what `cnn_plan::LayerSpec::flops` counts).
    pub flops: u64,
    /// The whole statement in the source.
    pub span: Span,
    /// The statement's keyword token (where most diagnostics point).
    pub keyword_span: Span,
}

/// A checked model: the input and every layer with its resolved shapes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Model {
    pub name: String,
    /// `pub model` (item form) or not.
    pub public: bool,
    pub input: Shape,
    pub layers: Vec<Layer>,
    pub total_params: u64,
    /// Of which not trainable.
    pub non_trainable_params: u64,
    pub total_flops: u64,
    /// The `model NAME` header (or the first statement for a bare body).
    pub span: Span,
}

impl Model {
    /// The output shape of the whole model (the input shape when there are no layers).
    pub fn output(&self) -> Shape {
        self.layers.last().map_or(self.input, |l| l.output)
    }

    /// Every layer, nested ones included, in pre-order (a graph statement
    /// before its branches' layers), with its depth (0: top level).
    pub fn walk(&self) -> Vec<(usize, &Layer)> {
        let mut out = Vec::new();
        // An explicit stack: nesting is bounded, but a walk need not recurse.
        let mut stack: Vec<(usize, &Layer)> = self.layers.iter().rev().map(|l| (0, l)).collect();
        while let Some((d, l)) = stack.pop() {
            out.push((d, l));
            if let Op::Graph(g) = &l.op {
                for b in g.branches.iter().rev() {
                    stack.extend(b.iter().rev().map(|x| (d + 1, x)));
                }
            }
        }
        out
    }
}
