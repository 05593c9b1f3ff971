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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    Softmax,
}

impl Activation {
    pub fn keyword(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
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
    pub pad: Pad2,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dense {
    pub units: usize,
    pub activation: Activation,
}

/// A layer's operation with every option resolved (defaults applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Op {
    Conv(Conv),
    Pool(Pool),
    Flatten,
    Dense(Dense),
    /// An activation written as its own statement.
    Activation(Activation),
}

impl Op {
    /// The statement's keyword (`conv`, `maxpool`, `avgpool`, `minpool`, `flatten`,
    /// `dense`, or the activation's name), as in `summary --format json`.
    pub fn keyword(&self) -> &'static str {
        match self {
            Op::Conv(_) => "conv",
            Op::Pool(p) => p.kind.keyword(),
            Op::Flatten => "flatten",
            Op::Dense(_) => "dense",
            Op::Activation(a) => a.keyword(),
        }
    }
    /// The activation applied at the end of this layer, if any.
    pub fn activation(&self) -> Option<Activation> {
        match self {
            Op::Conv(c) => Some(c.activation),
            Op::Dense(d) => Some(d.activation),
            Op::Activation(a) => Some(*a),
            _ => None,
        }
    }
}

/// Shapes of a layer's parameters in Keras layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamShapes {
    /// conv: `[KH, KW, Cin, F]`; dense: `[in, N]`
    pub kernel: Vec<usize>,
    /// `[F]` or `[N]`
    pub bias: Vec<usize>,
}

/// One checked layer (a statement after `input`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layer {
    /// 0-based index of the statement after `input`: the `i` of `layer{i}.kernel`.
    pub index: usize,
    pub op: Op,
    pub input: Shape,
    pub output: Shape,
    /// `None` for layers without parameters.
    pub params: Option<ParamShapes>,
    /// Number of parameters (kernel + bias), 0 for layers without any.
    pub param_count: u64,
    /// Forward FLOPs per sample. conv: `2*OH*OW*F*KH*KW*Cin` and dense: `2*in*N`
    /// (multiply-adds x 2; the bias add and a fused activation are not counted);
    /// pools: one op per window cell per output value (`OH*OW*C*PH*PW`); an
    /// activation statement: one op per value; flatten: 0.
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
    pub total_flops: u64,
    /// The `model NAME` header (or the first statement for a bare body).
    pub span: Span,
}

impl Model {
    /// The output shape of the whole model (the input shape when there are no layers).
    pub fn output(&self) -> Shape {
        self.layers.last().map_or(self.input, |l| l.output)
    }
}
