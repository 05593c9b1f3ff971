//! The plan: a model's layers with the buffers they read and write and their
//! parameter tensors, every size resolved.
//!
//! One plan serves both ways of running a model: the interpreter walks it, and
//! generated code writes it out as a `static` and calls the same step functions
//! in a straight line. Neither decides a buffer, a name or a kernel itself, so
//! both compute every value by the same operations in the same order: a seed
//! gives bit-identical weights whichever runs the model.

use std::borrow::Cow;

use crate::build::{Node, NodeKind};
use crate::spec::{Activation, Conv2dSpec, LayerSpec};

/// How a tensor's initial values are drawn (Keras's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Init {
    /// `U(-l, l)`, `l = sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform { fan_in: usize, fan_out: usize },
    /// All zeros (biases, batchnorm's beta and moving mean).
    Zeros,
    /// All ones (batchnorm's gamma and moving variance).
    Ones,
}

/// One parameter tensor: its name in weight files, Keras layout, and where its
/// values live in the model's flat parameter vector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tensor {
    /// `layer{i}.kernel`, `layer{i}.bias`, `layer{i}.gamma`, ...
    pub name: Cow<'static, str>,
    /// `[KH, KW, CIN, COUT]`, `[IN, OUT]` or `[N]`.
    pub shape: Cow<'static, [usize]>,
    /// Offset of the first value in the flat parameter (and gradient) vector.
    pub offset: usize,
    /// Number of values.
    pub len: usize,
    pub init: Init,
    /// Whether an optimizer updates it (state such as moving statistics is not).
    pub trainable: bool,
}

/// A per-sample buffer of activations (and, with the same layout, of their
/// gradients). Buffer 0 holds the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Buffer {
    /// Values per sample.
    pub len: usize,
    /// Offset of this buffer in a sample-major arena, in values per sample: with
    /// room for `cap` samples the buffer starts at `cap * offset`.
    pub offset: usize,
    /// Where the buffer's values live instead, when the one step that writes
    /// it writes them straight into a concat's output (see [`Place`]); its
    /// own region then holds nothing, and its gradient stays its own.
    pub place: Option<Place>,
}

/// A concat input written in place: its values are channels
/// `at..at + width` of each cell of buffer `buffer`, whose cells have
/// `stride` channels. So a branch's last layer writes its channels of the
/// concat's output itself, and the concat copies nothing forward (its
/// backward pass still hands each branch its own gradient buffer).
///
/// The plan places an input when the one layer writing it can write with a
/// cell stride (a conv, a transposed conv, or an activation other than
/// softmax) in training and in a folded inference pass alike, nothing but
/// the concat reads it, and its cells are the concat's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    pub buffer: usize,
    pub at: usize,
    pub stride: usize,
}

/// One input of a join step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operand {
    pub buffer: usize,
    /// As [`Step::accumulate`], for this input.
    pub accumulate: bool,
}

/// One layer of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Step {
    pub layer: LayerSpec,
    /// Index of the top-level statement the step belongs to (the `i` of
    /// `layer_output(i)`; the first number of its path).
    pub index: usize,
    /// Number of the step's statement among all statements of the model,
    /// nested ones included, in source order (equal to `index` in a model
    /// without graphs): what tells two dropout layers' masks apart.
    pub id: usize,
    /// Buffer read (a join's first operand).
    pub input: usize,
    /// Whether the backward pass adds dL/d(input) to the input's gradient
    /// buffer rather than writing it: the input is read by a later step too
    /// (a branch point), whose backward pass ran first.
    pub accumulate: bool,
    /// A join's inputs: the range of its [`Operand`]s in [`Plan::operands`]
    /// (empty for other steps).
    pub operands: (usize, usize),
    /// Buffer written (the input buffer itself for `flatten`, a no-op on NHWC data).
    pub output: usize,
    /// Range of this step's tensors in [`Plan::tensors`]: kernel, then bias.
    pub tensors: (usize, usize),
    /// Offset of this step's max/min-pool choices (`u32` per output value) in
    /// the per-sample argmax arena; unused for other layers.
    pub argmax: usize,
    /// Offset of a batchnorm's batch statistics (mean, then variance: `2 * c`
    /// values, for the whole batch) in the statistics arena; unused for other
    /// layers.
    pub stats: usize,
    /// Last step of a model ending in softmax: training leaves the softmax out
    /// and fuses it with the cross-entropy.
    pub fused_softmax: bool,
    /// Whether the backward pass must produce this step's input gradient even
    /// when the caller does not ask for dL/dx (a parameterised layer lies before).
    pub needs_dx: bool,
    /// Whether the backward pass runs this step when dL/dx is not asked for
    /// (false for the steps before the first layer with parameters).
    pub needs_backward: bool,
    /// Position in [`Plan::steps`] of the batchnorm right after this conv,
    /// depthwise, transposed conv or dense layer (without an activation of its
    /// own) that a folded inference pass absorbs into this layer's kernel and
    /// bias: one pass over the activations fewer.
    pub fold: Option<usize>,
    /// Position in [`Plan::steps`] of an activation layer right after this
    /// layer (a conv, depthwise, transposed conv, dense layer or join; or
    /// after the batchnorm it folds, see [`Step::fold`]) that a folded
    /// inference pass applies in this layer's kernel, writing the
    /// activation's output: Keras's `conv; batchnorm; relu` as one pass.
    pub fold_act: Option<usize>,
    /// A batchnorm or activation that a folded inference pass computes in a
    /// step before (see [`Step::fold`] and [`Step::fold_act`]), so it does
    /// not run itself.
    pub folded: bool,
}

/// A model ready to run: steps in order, buffers, tensors, and the size rules
/// that choose how a batch is split across the cores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Plan {
    /// Per-sample input shape `[H, W, C]`.
    pub input: [usize; 3],
    /// Per-sample output shape (`[N]` or `[H, W, C]`).
    pub output_shape: Cow<'static, [usize]>,
    pub steps: Cow<'static, [Step]>,
    pub buffers: Cow<'static, [Buffer]>,
    pub tensors: Cow<'static, [Tensor]>,
    /// The inputs of the join steps (see [`Step::operands`]).
    pub operands: Cow<'static, [Operand]>,
    /// Values per sample of all buffers together.
    pub buffer_total: usize,
    /// `u32`s per sample of all max/min-pool choices together.
    pub argmax_total: usize,
    /// Values of all batchnorm batch statistics together (per batch, not per sample).
    pub stats_total: usize,
    /// Per-sample length of the pre-activation gradient scratch.
    pub dz_len: usize,
    /// Number of parameter values (all tensors).
    pub param_total: usize,
    /// Forward FLOPs per sample (the work estimate of the batch split).
    pub flops: usize,
    /// Buffer holding the logits the training loss reads, and whose gradient
    /// buffer receives dL/dlogits.
    pub logits: usize,
    /// Whether the model ends in softmax.
    pub ends_in_softmax: bool,
    /// Whether each batch is split across the cores once per pass (every part
    /// runs all steps on its own samples) rather than inside every kernel.
    /// Never with batchnorm, whose training statistics span the whole batch.
    pub split: bool,
}

/// Batch split rule: a model whose largest per-sample buffer holds at most this
/// many values (128 KiB, so one sample's layers stay in a core's L2 cache) ...
pub const SPLIT_MAX_SAMPLE_LEN: usize = 32 * 1024;
/// ... and whose parameters number at most this many (each extra part keeps a
/// private gradient copy) splits every batch across the cores once per pass:
/// each core runs all layers on its own samples, instead of every kernel
/// splitting its own work (one synchronisation per layer, cold caches). Larger
/// models keep the per-kernel parallelism, which also serves small batches.
pub const SPLIT_MAX_PARAMS: usize = 1 << 20;
/// Largest number of values of one buffer or one tensor.
pub(crate) const MAX_LEN: usize = 1 << 40;

pub(crate) fn checked_len(dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_LEN)
        .ok_or_else(|| format!("layer size {dims:?} is too large"))
}

pub(crate) fn bad(what: String) -> String {
    format!("inconsistent layer specs: {what}")
}

/// A layer's tensors: Keras shape, initialiser and whether it is trainable,
/// in Keras's order (the names are [`tensor_names`]).
pub(crate) type ParamShapes = Vec<(Vec<usize>, Init, bool)>;

/// Glorot-uniform over a kernel of Keras shape `shape`: fans as Keras computes
/// them (the receptive field times the last two axes).
fn glorot(shape: &[usize]) -> Init {
    let rf: usize = shape[..shape.len() - 2].iter().product();
    Init::GlorotUniform {
        fan_in: rf * shape[shape.len() - 2],
        fan_out: rf * shape[shape.len() - 1],
    }
}

/// A kernel of `shape`, then a bias of `n` unless there is none.
fn kernel_and_bias(shape: Vec<usize>, bias: bool, n: usize) -> ParamShapes {
    let mut v = vec![(shape.clone(), glorot(&shape), true)];
    if bias {
        v.push((vec![n], Init::Zeros, true));
    }
    v
}

/// The names of a step's tensors, in [`ParamShapes`] order (`pointwise`: the
/// 1x1 conv of a `sepconv`).
pub(crate) fn tensor_names(spec: &LayerSpec, pointwise: bool) -> Vec<&'static str> {
    match *spec {
        LayerSpec::Conv2d { .. } if pointwise => vec!["pointwise_kernel", "bias"],
        LayerSpec::Conv2d { .. } | LayerSpec::Deconv2d { .. } | LayerSpec::Dense { .. } => {
            vec!["kernel", "bias"]
        }
        LayerSpec::DwConv2d { .. } => vec!["depthwise_kernel", "bias"],
        LayerSpec::BatchNorm(b) => {
            let mut v = Vec::new();
            if b.scale {
                v.push("gamma");
            }
            if b.center {
                v.push("beta");
            }
            v.extend(["moving_mean", "moving_variance"]);
            v
        }
        _ => Vec::new(),
    }
}

/// Checks a conv-like spec: non-zero window, stride and dilation, and the
/// input it reads.
fn check_conv(
    i: usize,
    what: &str,
    s: &Conv2dSpec,
    input: [usize; 3],
    prev: &[usize],
) -> Result<(), String> {
    if s.sh == 0 || s.sw == 0 || s.dh == 0 || s.dw == 0 || s.kh == 0 || s.kw == 0 {
        return Err(bad(format!("layer {i}: zero kernel, stride or dilation")));
    }
    if prev != input {
        return Err(bad(format!(
            "layer {i}: {what} expects {input:?}, gets {prev:?}"
        )));
    }
    Ok(())
}

/// Checks that a layer takes the shape that reaches it and returns its
/// per-sample output shape and its tensors.
pub(crate) fn layer_shapes(
    i: usize,
    spec: &LayerSpec,
    prev: &[usize],
) -> Result<(Vec<usize>, ParamShapes), String> {
    let prev_len = checked_len(prev)?;
    let image = |h, w, c| vec![h, w, c];
    Ok(match *spec {
        LayerSpec::Conv2d {
            spec: s,
            bias,
            groups,
            ..
        } => {
            check_conv(i, "conv", &s, [s.in_h, s.in_w, s.in_c], prev)?;
            if groups == 0 || s.in_c % groups != 0 || s.out_c % groups != 0 {
                return Err(bad(format!(
                    "layer {i}: {groups} groups do not divide the channels"
                )));
            }
            let k = vec![s.kh, s.kw, s.in_c / groups, s.out_c];
            (
                image(s.out_h, s.out_w, s.out_c),
                kernel_and_bias(k, bias, s.out_c),
            )
        }
        LayerSpec::DwConv2d { spec: s, bias, .. } => {
            check_conv(i, "dwconv", &s, [s.in_h, s.in_w, s.in_c], prev)?;
            if s.in_c == 0 || s.out_c % s.in_c != 0 {
                return Err(bad(format!(
                    "layer {i}: dwconv of {} to {} channels",
                    s.in_c, s.out_c
                )));
            }
            let k = vec![s.kh, s.kw, s.in_c, s.out_c / s.in_c];
            (
                image(s.out_h, s.out_w, s.out_c),
                kernel_and_bias(k, bias, s.out_c),
            )
        }
        LayerSpec::Deconv2d { spec: t, bias, .. } => {
            // The transposed conv reads what `t` writes and writes what it reads.
            check_conv(i, "deconv", &t, [t.out_h, t.out_w, t.out_c], prev)?;
            let k = vec![t.kh, t.kw, t.in_c, t.out_c];
            (
                image(t.in_h, t.in_w, t.in_c),
                kernel_and_bias(k, bias, t.in_c),
            )
        }
        LayerSpec::SepConv2d { .. } => {
            return Err(bad(format!(
                "layer {i}: a sepconv step (the plan splits it)"
            )))
        }
        LayerSpec::Join(_) => return Err(bad(format!("layer {i}: a join outside a graph node"))),
        LayerSpec::Pool2d(p) => {
            if p.sh == 0 || p.sw == 0 || p.ph == 0 || p.pw == 0 {
                return Err(bad(format!("layer {i}: zero pool window or stride")));
            }
            if prev != [p.in_h, p.in_w, p.c] {
                return Err(bad(format!(
                    "layer {i}: pool expects {}x{}x{}, gets {prev:?}",
                    p.in_h, p.in_w, p.c
                )));
            }
            if prev_len > u32::MAX as usize {
                return Err(bad(format!("layer {i}: pool input too large")));
            }
            (image(p.out_h, p.out_w, p.c), vec![])
        }
        LayerSpec::Flatten { len } => {
            if len != prev_len {
                return Err(bad(format!(
                    "layer {i}: flatten of {len} values, gets {prev_len}"
                )));
            }
            (vec![len], vec![])
        }
        LayerSpec::Dense { spec: d, bias, .. } => {
            if d.inputs != prev_len || prev.len() != 1 {
                return Err(bad(format!(
                    "layer {i}: dense expects a vector of {}, gets {prev:?}",
                    d.inputs
                )));
            }
            (
                vec![d.units],
                kernel_and_bias(vec![d.inputs, d.units], bias, d.units),
            )
        }
        LayerSpec::Activation { len, channels, .. } => {
            if len != prev_len || channels == 0 || len % channels != 0 {
                return Err(bad(format!(
                    "layer {i}: activation over {len} values ({channels} channels), gets {prev_len}"
                )));
            }
            (prev.to_vec(), vec![])
        }
        LayerSpec::BatchNorm(b) => {
            if b.len != prev_len || prev.last() != Some(&b.c) || b.c == 0 {
                return Err(bad(format!(
                    "layer {i}: batchnorm over {} values ({} channels), gets {prev:?}",
                    b.len, b.c
                )));
            }
            let c = vec![b.c];
            let mut v = Vec::new();
            if b.scale {
                v.push((c.clone(), Init::Ones, true));
            }
            if b.center {
                v.push((c.clone(), Init::Zeros, true));
            }
            v.push((c.clone(), Init::Zeros, false));
            v.push((c, Init::Ones, false));
            (prev.to_vec(), v)
        }
        LayerSpec::Dropout { rate, len } => {
            if len != prev_len || !(0.0..1.0).contains(&rate.get()) {
                return Err(bad(format!(
                    "layer {i}: dropout of {len} values at rate {:?}, gets {prev_len}",
                    rate
                )));
            }
            (prev.to_vec(), vec![])
        }
        LayerSpec::GlobalPool(g) => {
            if prev.len() != 3 || prev[0] * prev[1] != g.hw || prev[2] != g.c {
                return Err(bad(format!(
                    "layer {i}: global pool of {}x{}, gets {prev:?}",
                    g.hw, g.c
                )));
            }
            (vec![g.c], vec![])
        }
        LayerSpec::ZeroPad(z) => {
            if prev != [z.in_h, z.in_w, z.c] {
                return Err(bad(format!(
                    "layer {i}: zeropad expects {}x{}x{}, gets {prev:?}",
                    z.in_h, z.in_w, z.c
                )));
            }
            let [h, w] = z.out();
            (image(h, w, z.c), vec![])
        }
        LayerSpec::Augment(a) => {
            if prev != [a.h, a.w, a.c] || !a.kind.valid() {
                return Err(bad(format!(
                    "layer {i}: {:?} of {}x{}x{}, gets {prev:?}",
                    a.kind, a.h, a.w, a.c
                )));
            }
            (prev.to_vec(), vec![])
        }
        LayerSpec::Upsample(u) => {
            if prev != [u.in_h, u.in_w, u.c] || u.sh == 0 || u.sw == 0 {
                return Err(bad(format!(
                    "layer {i}: upsample expects {}x{}x{}, gets {prev:?}",
                    u.in_h, u.in_w, u.c
                )));
            }
            let (h, w) = (
                u.in_h
                    .checked_mul(u.sh)
                    .ok_or_else(|| bad("upsample too large".into()))?,
                u.in_w
                    .checked_mul(u.sw)
                    .ok_or_else(|| bad("upsample too large".into()))?,
            );
            (image(h, w, u.c), vec![])
        }
    })
}

/// The steps that run a layer: a `sepconv` becomes its depthwise and its
/// pointwise half (`true`: the step's tensors are named as the pointwise
/// half's); a layer with a kernel whose activation needs the pre-activation
/// for its derivative (or, with `last`, a softmax, so that training can fuse
/// it with the loss and the logits have a buffer) runs the layer linear,
/// then the activation as a step of its own.
pub(crate) fn expand(spec: LayerSpec, last: bool) -> Vec<(LayerSpec, bool)> {
    let mut out = Vec::new();
    let (core, pointwise) = match spec {
        LayerSpec::SepConv2d {
            depthwise,
            pointwise,
            act,
            bias,
        } => {
            out.push((
                LayerSpec::DwConv2d {
                    spec: depthwise,
                    act: Activation::Linear,
                    bias: false,
                },
                false,
            ));
            let pw = LayerSpec::Conv2d {
                spec: pointwise,
                act,
                bias,
                groups: 1,
            };
            (pw, true)
        }
        other => (other, false),
    };
    let act = core.activation();
    let split = core.has_kernel() && (!act.from_output() || (last && act == Activation::Softmax));
    if !split {
        out.push((core, pointwise));
        return out;
    }
    let linear = match core {
        LayerSpec::Conv2d {
            spec, bias, groups, ..
        } => LayerSpec::Conv2d {
            spec,
            act: Activation::Linear,
            bias,
            groups,
        },
        LayerSpec::DwConv2d { spec, bias, .. } => LayerSpec::DwConv2d {
            spec,
            act: Activation::Linear,
            bias,
        },
        LayerSpec::Deconv2d { spec, bias, .. } => LayerSpec::Deconv2d {
            spec,
            act: Activation::Linear,
            bias,
        },
        LayerSpec::Dense { spec, bias, .. } => LayerSpec::Dense {
            spec,
            act: Activation::Linear,
            bias,
        },
        other => other,
    };
    let channels = core.channels();
    let len = match core {
        LayerSpec::Conv2d { spec, .. } | LayerSpec::DwConv2d { spec, .. } => {
            spec.out_h * spec.out_w * spec.out_c
        }
        LayerSpec::Deconv2d { spec, .. } => spec.in_h * spec.in_w * spec.in_c,
        LayerSpec::Dense { spec, .. } => spec.units,
        _ => 0,
    };
    out.push((linear, pointwise));
    out.push((LayerSpec::Activation { act, len, channels }, false));
    out
}

impl Plan {
    /// The plan of a chain of layers on a `[H, W, C]` input, named `layer{i}`
    /// by position. Every layer gets an output buffer of its own except
    /// `flatten`, which shares its input's.
    ///
    /// Errors when the specs do not chain (a layer's input differs from the
    /// previous output), or a size is zero or absurdly large. A model without
    /// layers is the identity (its output is its input buffer).
    pub fn sequential(input: [usize; 3], layers: &[LayerSpec]) -> Result<Plan, String> {
        let nodes: Vec<Node> = layers
            .iter()
            .enumerate()
            .map(|(i, l)| Node {
                index: i,
                path: i.to_string(),
                kind: NodeKind::Layer(*l),
            })
            .collect();
        Plan::graph(input, &nodes)
    }

    /// Values per input sample.
    pub fn input_len(&self) -> usize {
        self.buffers[0].len
    }

    /// Values per output sample.
    pub fn output_len(&self) -> usize {
        self.buffers[self.output_buffer()].len
    }

    /// The buffer holding the model's output.
    pub fn output_buffer(&self) -> usize {
        self.steps.last().map_or(0, |s| s.output)
    }

    /// The buffer a folded inference pass (`predict`) writes with the step at
    /// `pos`: the output of the last layer it absorbs, or `None` for a step
    /// absorbed into an earlier one.
    pub fn predict_output(&self, pos: usize) -> Option<usize> {
        let s = &self.steps[pos];
        if s.folded {
            return None;
        }
        let last = s.fold_act.or(s.fold).unwrap_or(pos);
        Some(self.steps[last].output)
    }

    /// Whether a folded inference pass (`predict`) leaves `buffer` holding
    /// its values: the input, or a buffer some step writes there.
    pub fn predict_keeps(&self, buffer: usize) -> bool {
        buffer == 0 || (0..self.steps.len()).any(|p| self.predict_output(p) == Some(buffer))
    }

    /// The step of the layer with statement index `index`.
    /// (the last one, when a final softmax runs as a step of its own).
    pub fn step_of(&self, index: usize) -> Option<&Step> {
        self.steps.iter().rev().find(|s| s.index == index)
    }

    /// The parameter tensors of a step.
    pub fn step_tensors(&self, step: &Step) -> &[Tensor] {
        &self.tensors[step.tensors.0..step.tensors.1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Conv2dSpec, DenseSpec, Padding, Pool2dSpec, PoolKind, Window};

    fn lenet_like() -> Vec<LayerSpec> {
        let conv = Conv2dSpec::new([28, 28, 1], 6, Window::new([5, 5], Padding::Valid));
        let pool = Pool2dSpec::new(
            PoolKind::Avg,
            [24, 24, 6],
            Window::new([2, 2], Padding::Valid).stride([2, 2]),
        );
        vec![
            LayerSpec::Conv2d {
                spec: conv,
                act: Activation::Tanh,
                bias: true,
                groups: 1,
            },
            LayerSpec::Pool2d(pool),
            LayerSpec::Flatten { len: 864 },
            LayerSpec::Dense {
                spec: DenseSpec {
                    inputs: 864,
                    units: 10,
                },
                act: Activation::Softmax,
                bias: true,
            },
        ]
    }

    #[test]
    fn buffers_tensors_and_kernels_follow_the_layers() {
        let p = Plan::sequential([28, 28, 1], &lenet_like()).unwrap();
        let lens: Vec<usize> = p.buffers.iter().map(|b| b.len).collect();
        assert_eq!(lens, [784, 3456, 864, 10, 10]);
        assert_eq!(p.buffers[3].offset, 784 + 3456 + 864);
        // Each buffer takes whole 16-value (64-byte) runs of the arena, so
        // the 10 logits still leave the next buffer aligned.
        assert_eq!(p.buffers[4].offset, 784 + 3456 + 864 + 16);
        assert!(p.buffers.iter().all(|b| b.offset.is_multiple_of(16)));
        // The final dense softmax is the dense layer, then a softmax step.
        assert_eq!(p.steps.len(), 5);
        assert_eq!(p.steps[4].index, 3);
        assert_eq!(p.step_of(3).unwrap().output, 4);
        // flatten shares its input's buffer.
        assert_eq!((p.steps[2].input, p.steps[2].output), (2, 2));
        assert_eq!((p.steps[3].input, p.steps[3].output), (2, 3));
        let names: Vec<&str> = p.tensors.iter().map(|t| &*t.name).collect();
        assert_eq!(
            names,
            [
                "layer0.kernel",
                "layer0.bias",
                "layer3.kernel",
                "layer3.bias"
            ]
        );
        assert_eq!(p.tensors[2].offset, 150 + 6);
        assert_eq!(p.param_total, 156 + 8650);
        assert!(p.split && p.ends_in_softmax && p.steps[4].fused_softmax);
        assert!(!p.steps[3].fused_softmax);
        assert_eq!(p.logits, 3);
        // conv1 is the first parameterised layer: no input gradient below it.
        assert!(!p.steps[0].needs_dx && p.steps[1].needs_dx && p.steps[0].needs_backward);
        assert_eq!(p.dz_len, 3456);
        assert_eq!(&*p.output_shape, [10]);
    }

    #[test]
    fn specs_that_do_not_chain_are_refused() {
        let mut layers = lenet_like();
        layers.remove(1);
        assert!(Plan::sequential([28, 28, 1], &layers).is_err());
        let identity = Plan::sequential([28, 28, 1], &[]).unwrap();
        assert_eq!((identity.output_buffer(), identity.output_len()), (0, 784));
        assert!(Plan::sequential([0, 28, 1], &lenet_like()).is_err());
        let huge = [LayerSpec::Flatten { len: 1 << 41 }];
        assert!(Plan::sequential([1 << 20, 1 << 20, 2], &huge).is_err());
    }

    #[test]
    fn language_two_layers_expand_into_steps_with_keras_tensors() {
        use crate::spec::{BatchNormSpec, Real};
        let dw = Conv2dSpec::new([8, 8, 4], 8, Window::new([3, 3], Padding::Same));
        let pw = Conv2dSpec::new([8, 8, 8], 6, Window::new([1, 1], Padding::Valid));
        let layers = [
            LayerSpec::SepConv2d {
                depthwise: dw,
                pointwise: pw,
                act: Activation::Gelu,
                bias: true,
            },
            LayerSpec::BatchNorm(BatchNormSpec {
                len: 8 * 8 * 6,
                c: 6,
                momentum: Real::new(0.99),
                epsilon: Real::new(1e-3),
                scale: false,
                center: true,
            }),
            LayerSpec::Dropout {
                rate: Real::new(0.5),
                len: 8 * 8 * 6,
            },
        ];
        let p = Plan::sequential([8, 8, 4], &layers).unwrap();
        // sepconv: depthwise (no bias), pointwise (linear), then gelu on its own.
        let kinds: Vec<(usize, &str)> = p
            .steps
            .iter()
            .map(|s| {
                let k = match s.layer {
                    LayerSpec::DwConv2d { .. } => "dw",
                    LayerSpec::Conv2d {
                        act: Activation::Linear,
                        ..
                    } => "pw",
                    LayerSpec::Activation { .. } => "act",
                    LayerSpec::BatchNorm(_) => "bn",
                    LayerSpec::Dropout { .. } => "drop",
                    _ => "?",
                };
                (s.index, k)
            })
            .collect();
        assert_eq!(
            kinds,
            [(0, "dw"), (0, "pw"), (0, "act"), (1, "bn"), (2, "drop")]
        );
        let names: Vec<(&str, bool)> = p.tensors.iter().map(|t| (&*t.name, t.trainable)).collect();
        assert_eq!(
            names,
            [
                ("layer0.depthwise_kernel", true),
                ("layer0.pointwise_kernel", true),
                ("layer0.bias", true),
                ("layer1.beta", true),
                ("layer1.moving_mean", false),
                ("layer1.moving_variance", false),
            ]
        );
        assert_eq!(&*p.tensors[0].shape, [3, 3, 4, 2]);
        assert_eq!(p.tensors[5].init, Init::Ones);
        assert_eq!((p.stats_total, p.steps[3].stats), (12, 0));
        // Batch statistics span the batch: never split across cores.
        assert!(!p.split);
        // `layer_output(0)` is the activation's output.
        assert_eq!(p.step_of(0).unwrap().output, 3);
        assert_eq!(p.dz_len, 0);
    }
}
