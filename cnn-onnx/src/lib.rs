//! ONNX export of `cnn` models: a model's runtime [`Plan`] and its weights
//! to the bytes of an ONNX model file (opset [`OPSET`]); and import, ONNX
//! models to `.cnn` text and weights ([`import`]).
//!
//! The export works from the plan, which the interpreter and the code the
//! `cnn!` macro generates both run, so every model exports the same way. The
//! file's input and output keep the project's NHWC layout by default
//! ([`Layout`]); inside, images are NCHW, ONNX's layout, with one transpose at
//! each edge. The batch axis is symbolic (`N`), so one file serves any batch.
//! Weights are named as in the plan (`layer0.kernel`, `layer3.0.1.gamma`, as
//! in weight files) and converted from Keras's kernel layouts to ONNX's.
//!
//! What inference computes is exported: dropout and the augmentation layers
//! are the identity, batchnorm uses its moving statistics.
//!
//! ```
//! use cnn_plan::{Activation, DenseSpec, LayerSpec, Plan};
//! use std::collections::HashMap;
//!
//! let dense = LayerSpec::Dense { spec: DenseSpec { inputs: 4, units: 3 }, act: Activation::Softmax, bias: true };
//! let plan = Plan::sequential([2, 2, 1], &[LayerSpec::Flatten { len: 4 }, dense]).unwrap();
//! let weights: HashMap<&str, Vec<f32>> =
//!     HashMap::from([("layer1.kernel", vec![0.5; 12]), ("layer1.bias", vec![0.0; 3])]);
//! let bytes = cnn_onnx::export(&plan, |name| weights.get(name).cloned(), &cnn_onnx::Options::default()).unwrap();
//! assert!(!bytes.is_empty());
//! ```
//!
//! # Import
//!
//! [`import`] goes the other way: an ONNX model (this crate's files, or
//! PyTorch's `torch.onnx.export` of a CNN) to `.cnn` text with one `model`
//! block, and its weights named by the statements' paths in the runtime's
//! Keras layouts (what `cnnc import` writes to a weights file). Each node
//! maps to a statement, or to nothing when it only moves the layout:
//!
//! | ONNX | `.cnn` |
//! |---|---|
//! | `Conv` (`group`, `pads`, `strides`, `dilations`, `auto_pad`) | `conv` (`groups G`), `dwconv` when each group is one input channel; pads as `same`, `pad P`, or a `zeropad` before when one-sided |
//! | `ConvTranspose` | `deconv` whose `same` or `valid` crop gives the same output |
//! | `MaxPool`, `AveragePool` | `maxpool`, `avgpool` (`same`, `pad P`); `count_include_pad = 1` as a `zeropad` before a `valid` pool |
//! | `Neg`, `MaxPool`, `Neg` | `minpool` |
//! | `GlobalAveragePool`, `GlobalMaxPool`; `ReduceMean`, `ReduceMax` over H and W | `globalavgpool`, `globalmaxpool` |
//! | `BatchNormalization` | `batchnorm epsilon E` (`noscale`/`nocenter` when the scale is all ones / the shift all zeros) |
//! | `Gemm`, `MatMul` (+ `Add` of a bias) | `dense` (`transB`, `alpha`, `beta` folded into the weights) |
//! | `Flatten`, `Reshape` to `[N, n]` (its shape constant, or PyTorch's `Shape`, `Gather`, `Unsqueeze`, `Concat` chain for `x.view(x.size(0), -1)`) | `flatten`; a dense layer after PyTorch's C,H,W flatten gets its kernel rows in the language's H,W,C order |
//! | `Relu`, `Sigmoid`, `Tanh`, `Softmax` (channels), `Clip` 0..6 / 0.., `LeakyRelu`, `Elu`, `Selu`, `Gelu` and its `Erf` spelling, `x * Sigmoid(x)` and `x / (1 + Exp(-x))`, `Softplus`, `HardSigmoid` (1/6, 1/2), `HardSwish` and `x * HardSigmoid(x)` | the activation, as the option of the conv, dwconv, deconv or dense layer right before |
//! | `Add`, `Sum`, `Concat` (channels) of values computed from one fork | `residual { } shortcut { }`, `add { } { }`, `concat { } { }` |
//! | `Pad` (constant 0, spatial) | `zeropad TxBxLxR` |
//! | `Resize`/`Upsample` by whole factors, nearest or half-pixel linear | `upsample S [bilinear]` |
//! | `Dropout` | `dropout R` |
//! | `Identity`, `Transpose` NCHW <-> NHWC | nothing |
//!
//! Tensors in external data files (PyTorch's dynamo exporter writes the
//! weights to `model.onnx.data`) are read through
//! [`import_with_external`], whose caller reads the files; their locations
//! must stay inside the model's folder.
//!
//! The input is `[N, C, H, W]`, or `[N, H, W, C]` when every reader
//! transposes it to NCHW (this crate's default files), or `[N, n]`
//! (`input 1x1xn; flatten`). Anything else is
//! refused with an [`ImportError`] naming the node, its op and the attribute
//! or input at fault, never a different model: other operators, other
//! attribute values (`ceil_mode` adding a window, a one-sided pool padding,
//! `Softmax` over another axis...), a graph whose joins do not close the fork
//! they start from (the language's blocks nest), an output in C,H,W flatten
//! order. Decoding checks every size against the data the file holds. An
//! image output is the language's NHWC whatever the file's layout.
//!
//! # Keras import
//!
//! [`import_keras`] reads a model Keras saved, as a `.keras` file (Keras 3: a
//! zip of `config.json` and `model.weights.h5`) or an `.h5` file (the legacy
//! HDF5 format with a `model_config` attribute), Sequential or functional:
//!
//! | Keras | `.cnn` |
//! |---|---|
//! | `Conv2D` (`strides`, `padding`, `dilation_rate`, `groups`, `use_bias`, `activation`) | `conv` |
//! | `DepthwiseConv2D`, `SeparableConv2D` (`depth_multiplier`) | `dwconv`, `sepconv` (`multiplier M`) |
//! | `Conv2DTranspose` (no `output_padding`, no dilation) | `deconv` |
//! | `Dense` on a vector | `dense` |
//! | `MaxPooling2D`, `AveragePooling2D`, `GlobalAveragePooling2D`, `GlobalMaxPooling2D` | `maxpool`, `avgpool`, `globalavgpool`, `globalmaxpool` |
//! | `BatchNormalization` (last axis) | `batchnorm` (`momentum`, `epsilon`, `noscale`, `nocenter`) |
//! | `Dropout`, `Flatten`, `ZeroPadding2D`, `UpSampling2D` | `dropout`, `flatten`, `zeropad`, `upsample` (`bilinear`) |
//! | `Activation`, `ReLU` (max 6, or a negative slope), `LeakyReLU`, `ELU` (alpha 1), `Softmax` (last axis) | the activation, as the option of the layer right before when it takes one |
//! | `Add`, `Concatenate` (last axis) | `residual { } shortcut { }`, `add { } { }`, `concat { } { }` |
//! | `RandomFlip`, `RandomTranslation`, `RandomRotation`, `RandomZoom` (reflect fill, bilinear) | `randomflip`, `randomtranslate`, `randomrotate`, `randomzoom` |
//!
//! Other layers (a `Lambda`, a nested model), other settings (`channels_first`,
//! a layer called twice) and arrays that do not fit their layer are refused
//! with an [`ImportError`] naming the layer and its class.
#![forbid(unsafe_code)]

mod builder;
mod graph;
mod import;
mod ops;
pub mod proto;

use cnn_plan::Plan;
use prost::Message;

pub use crate::import::{
    import, import_keras, import_with_external, ImportError, Imported, ReadExternal, Weight,
};

use crate::graph::Lowering;
use crate::proto::{GraphProto, ModelProto, OperatorSetIdProto};

/// The ONNX operator set the files use (`ai.onnx` 17). Its IR version is 8.
///
/// ```
/// assert_eq!(cnn_onnx::OPSET, 17);
/// ```
pub const OPSET: i64 = 17;

/// The ONNX IR version that goes with [`OPSET`].
const IR_VERSION: i64 = 8;

/// The layout of the exported model's input and (image) output.
///
/// ```
/// use cnn_onnx::{Layout, Options};
/// let nchw = Options { layout: Layout::Nchw, ..Options::default() };
/// assert_eq!(Options::default().layout, Layout::Nhwc);
/// assert_ne!(nchw.layout, Layout::Nhwc);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// `[N, H, W, C]`, as this project's models take and give images.
    #[default]
    Nhwc,
    /// `[N, C, H, W]`, as most ONNX consumers expect: the file then starts
    /// and ends without a transpose.
    Nchw,
}

/// How to export.
///
/// ```
/// let o = cnn_onnx::Options { name: "lenet5".into(), ..Default::default() };
/// assert_eq!(o.name, "lenet5");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The name of the ONNX graph (shown by viewers and runtimes).
    pub name: String,
    /// The layout of the input and of an image output. A vector output is
    /// `[N, n]` either way.
    pub layout: Layout,
}

impl Default for Options {
    /// A graph named `cnn`, NHWC.
    ///
    /// ```
    /// let o = cnn_onnx::Options::default();
    /// assert_eq!((o.name.as_str(), o.layout), ("cnn", cnn_onnx::Layout::Nhwc));
    /// ```
    fn default() -> Self {
        Options {
            name: "cnn".to_string(),
            layout: Layout::Nhwc,
        }
    }
}

/// Why a plan could not be exported.
///
/// ```
/// use cnn_plan::{Activation, DenseSpec, LayerSpec, Plan};
/// let dense = LayerSpec::Dense { spec: DenseSpec { inputs: 4, units: 3 }, act: Activation::Linear, bias: false };
/// let plan = Plan::sequential([2, 2, 1], &[LayerSpec::Flatten { len: 4 }, dense]).unwrap();
/// let err = cnn_onnx::export(&plan, |_| None, &Default::default()).unwrap_err();
/// assert_eq!(err.to_string(), "weight tensor 'layer1.kernel' is missing");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The weights gave nothing for a tensor of the plan.
    #[error("weight tensor '{name}' is missing")]
    MissingWeight { name: String },
    /// The weights gave a tensor with a number of values other than its
    /// shape in the plan holds.
    #[error("weight tensor '{name}' has {got} values, its shape {shape:?} has {expected}")]
    WeightSize {
        name: String,
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },
    /// A step that ONNX's operators (at [`OPSET`]) cannot express.
    #[error("step {step} (statement {layer}, {kind}): cannot be exported: {reason}")]
    Unsupported {
        /// Position of the step in the plan.
        step: usize,
        /// The statement it belongs to (the `i` of `layer{i}`).
        layer: usize,
        /// The kind of layer (`conv`, `deconv`, ...).
        kind: &'static str,
        reason: String,
    },
    /// A plan whose steps do not fit together (not one made by the plan
    /// builder).
    #[error("step {step} (statement {layer}, {kind}): inconsistent plan: {reason}")]
    Inconsistent {
        step: usize,
        layer: usize,
        kind: &'static str,
        reason: String,
    },
}

/// The ONNX model (serialized `ModelProto`) computing `plan`'s inference
/// output with the weights `weights` gives by the plan's tensor names (each
/// in the plan's Keras shape, row-major, as weight files hold them).
///
/// The graph has one input, `input`, and one output, `output`, both with a
/// symbolic batch axis first; their other axes are the plan's input and
/// output shapes, in `options.layout` for images.
///
/// # Errors
/// [`ExportError`]: a missing or mis-sized weight, or a step that cannot be
/// written in ONNX (named by its position and statement).
///
/// ```
/// use cnn_plan::{Conv2dSpec, LayerSpec, Activation, Padding, Plan, Window};
/// let conv = Conv2dSpec::new([5, 5, 1], 2, Window::new([3, 3], Padding::Same));
/// let layer = LayerSpec::Conv2d { spec: conv, act: Activation::Relu, bias: true, groups: 1 };
/// let plan = Plan::sequential([5, 5, 1], &[layer]).unwrap();
/// let weights = |name: &str| match name {
///     "layer0.kernel" => Some(vec![0.1; 18]),
///     "layer0.bias" => Some(vec![0.0; 2]),
///     _ => None,
/// };
/// let bytes = cnn_onnx::export(&plan, weights, &cnn_onnx::Options::default())?;
/// assert!(bytes.len() > 18 * 4);
/// # Ok::<(), cnn_onnx::ExportError>(())
/// ```
pub fn export<W>(plan: &Plan, weights: W, options: &Options) -> Result<Vec<u8>, ExportError>
where
    W: FnMut(&str) -> Option<Vec<f32>>,
{
    Ok(model(plan, weights, options)?.encode_to_vec())
}

/// The `ModelProto` of [`export`], before encoding.
fn model<W>(plan: &Plan, weights: W, options: &Options) -> Result<ModelProto, ExportError>
where
    W: FnMut(&str) -> Option<Vec<f32>>,
{
    let mut l = Lowering::new(plan, weights);
    let input = l.input(options.layout);
    for (pos, step) in plan.steps.iter().enumerate() {
        ops::lower(&mut l, pos, step)?;
    }
    let output = l.output(options.layout)?;
    let graph = GraphProto {
        name: Some(options.name.clone()),
        node: std::mem::take(&mut l.b.nodes),
        initializer: std::mem::take(&mut l.b.inits),
        input: vec![input],
        output: vec![output],
        ..Default::default()
    };
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some("cnn-onnx".to_string()),
        producer_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        graph: Some(graph),
        ..Default::default()
    })
}
