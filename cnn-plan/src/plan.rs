//! The plan: a model's layers with the buffers they read and write, their
//! parameter tensors and the kernel chosen for each, every size resolved.
//!
//! One plan serves both ways of running a model: the interpreter walks it, and
//! generated code writes it out as a `static` and calls the same step functions
//! in a straight line. Neither decides a buffer, a name or a kernel itself.

use std::borrow::Cow;

use crate::spec::{Activation, LayerSpec, PoolKind};

/// How a tensor's initial values are drawn (Keras's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Init {
    /// `U(-l, l)`, `l = sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform { fan_in: usize, fan_out: usize },
    /// All zeros (biases).
    Zeros,
}

/// One parameter tensor: its name in weight files, Keras layout, and where its
/// values live in the model's flat parameter vector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tensor {
    /// `layer{i}.kernel`, `layer{i}.bias`.
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
}

/// The kernel a step runs. Generated code can call fixed-size kernels (sizes as
/// const generics); the interpreter runs the dynamic kernel for every choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// The dynamic kernel of the layer kind.
    Dynamic,
    /// `ops::pool2d::fixed::avgpool_{forward,backward}` (stride = window, no padding).
    FixedAvgPool,
    /// `ops::conv2d::fixed::conv_valid_backward` for the backward pass.
    FixedConvValidBackward,
}

/// One layer of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Step {
    pub layer: LayerSpec,
    /// Index of the layer's statement (the `i` of `layer{i}`, of `layer_output(i)`).
    pub index: usize,
    /// Buffer read.
    pub input: usize,
    /// Buffer written (the input buffer itself for `flatten`, a no-op on NHWC data).
    pub output: usize,
    /// Range of this step's tensors in [`Plan::tensors`]: kernel, then bias.
    pub tensors: (usize, usize),
    /// Offset of this step's max/min-pool choices (`u32` per output value) in
    /// the per-sample argmax arena; unused for other layers.
    pub argmax: usize,
    pub kernel: Kernel,
    /// Last step of a model ending in softmax: training leaves the softmax out
    /// and fuses it with the cross-entropy.
    pub fused_softmax: bool,
    /// Whether the backward pass must produce this step's input gradient even
    /// when the caller does not ask for dL/dx (a parameterised layer lies before).
    pub needs_dx: bool,
    /// Whether the backward pass runs this step when dL/dx is not asked for
    /// (false for the steps before the first layer with parameters).
    pub needs_backward: bool,
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
    /// Values per sample of all buffers together.
    pub buffer_total: usize,
    /// `u32`s per sample of all max/min-pool choices together.
    pub argmax_total: usize,
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
/// Fixed-size kernels replace the dynamic ones in split models only, since they
/// run on the calling thread (each batch part on its core): average pools with
/// stride = window, no padding, at most 16 cells a window and 64 channels; and
/// the backward pass of stride-1, undilated, `valid` convolutions with at most
/// this many kernel values (`KH*KW*CIN*COUT`, whose transposed copy and tap
/// column live on the stack) and 64 output channels.
pub const FIXED_MAX_TAPS: usize = 16 * 1024;
/// ... and at least this many multiply-adds a sample (`OH*OW*KH*KW*CIN*COUT`;
/// LeNet's second conv has 240,000). Below it the dynamic kernel is as fast,
/// and keeping it keeps tiny layers on the dynamic kernel's summation order.
pub const FIXED_MIN_CONV_MACS: usize = 32 * 1024;
/// Largest number of values of one buffer or one tensor.
const MAX_LEN: usize = 1 << 40;

fn checked_len(dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= MAX_LEN)
        .ok_or_else(|| format!("layer size {dims:?} is too large"))
}

fn bad(what: String) -> String {
    format!("inconsistent layer specs: {what}")
}

/// A layer's parameter tensors: Keras shape and initialiser, kernel first.
type ParamShapes = Vec<(Vec<usize>, Init)>;

/// Checks that a layer takes the shape that reaches it and returns its
/// per-sample output shape and its parameter shapes with their initialisers.
fn layer_shapes(
    i: usize,
    spec: &LayerSpec,
    prev: &[usize],
) -> Result<(Vec<usize>, ParamShapes), String> {
    let prev_len = checked_len(prev)?;
    Ok(match *spec {
        LayerSpec::Conv2d { spec: s, .. } => {
            if s.sh == 0 || s.sw == 0 || s.dh == 0 || s.dw == 0 || s.kh == 0 || s.kw == 0 {
                return Err(bad(format!("layer {i}: zero kernel, stride or dilation")));
            }
            if prev != [s.in_h, s.in_w, s.in_c] {
                return Err(bad(format!(
                    "layer {i}: conv expects {}x{}x{}, gets {prev:?}",
                    s.in_h, s.in_w, s.in_c
                )));
            }
            let rf = s.kh * s.kw;
            let glorot = Init::GlorotUniform {
                fan_in: rf * s.in_c,
                fan_out: rf * s.out_c,
            };
            (
                vec![s.out_h, s.out_w, s.out_c],
                vec![
                    (vec![s.kh, s.kw, s.in_c, s.out_c], glorot),
                    (vec![s.out_c], Init::Zeros),
                ],
            )
        }
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
            (vec![p.out_h, p.out_w, p.c], vec![])
        }
        LayerSpec::Flatten { len } => {
            if len != prev_len {
                return Err(bad(format!(
                    "layer {i}: flatten of {len} values, gets {prev_len}"
                )));
            }
            (vec![len], vec![])
        }
        LayerSpec::Dense { spec: d, .. } => {
            if d.inputs != prev_len || prev.len() != 1 {
                return Err(bad(format!(
                    "layer {i}: dense expects a vector of {}, gets {prev:?}",
                    d.inputs
                )));
            }
            let glorot = Init::GlorotUniform {
                fan_in: d.inputs,
                fan_out: d.units,
            };
            (
                vec![d.units],
                vec![
                    (vec![d.inputs, d.units], glorot),
                    (vec![d.units], Init::Zeros),
                ],
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
    })
}

/// The fixed-size kernel a step of a split model may use (see [`FIXED_MAX_TAPS`]).
fn kernel_choice(spec: &LayerSpec) -> Kernel {
    match *spec {
        LayerSpec::Pool2d(p) => {
            let plain = p.kind == PoolKind::Avg
                && (p.sh, p.sw) == (p.ph, p.pw)
                && p.pad_top == 0
                && p.pad_left == 0
                && p.out_h == p.in_h / p.ph
                && p.out_w == p.in_w / p.pw;
            if plain && p.ph * p.pw <= 16 && p.c <= 64 {
                Kernel::FixedAvgPool
            } else {
                Kernel::Dynamic
            }
        }
        LayerSpec::Conv2d { spec: s, .. } => {
            let kk = s.kh * s.kw * s.in_c;
            let valid = (s.sh, s.sw, s.dh, s.dw) == (1, 1, 1, 1)
                && s.pad_top == 0
                && s.pad_left == 0
                && s.kh <= s.in_h
                && s.kw <= s.in_w
                && s.out_h == s.in_h - s.kh + 1
                && s.out_w == s.in_w - s.kw + 1;
            let macs = s.out_h * s.out_w * kk * s.out_c;
            if valid
                && kk * s.out_c <= FIXED_MAX_TAPS
                && s.out_c <= 64
                && macs >= FIXED_MIN_CONV_MACS
            {
                Kernel::FixedConvValidBackward
            } else {
                Kernel::Dynamic
            }
        }
        _ => Kernel::Dynamic,
    }
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
        let in_len = checked_len(&input)?;
        if in_len == 0 {
            return Err(bad(format!("input {input:?} is empty")));
        }
        let mut buffers = vec![Buffer {
            len: in_len,
            offset: 0,
        }];
        let mut buffer_total = in_len;
        let mut tensors: Vec<Tensor> = Vec::new();
        let mut param_total = 0usize;
        let mut argmax_total = 0usize;
        let mut steps = Vec::with_capacity(layers.len());
        let mut prev = input.to_vec();
        let mut cur = 0usize;
        let mut flops = 0usize;
        // A final conv/dense softmax runs as the layer without it and a softmax
        // step, so that its logits have a buffer of their own (the training loss
        // reads them, and `logits()` shows them).
        let mut chain: Vec<(usize, LayerSpec)> = layers.iter().copied().enumerate().collect();
        if let Some(&(i, last)) = chain.last() {
            let split_softmax = |act: Activation| act == Activation::Softmax;
            let linear = match last {
                LayerSpec::Conv2d { spec, act } if split_softmax(act) => Some((
                    LayerSpec::Conv2d {
                        spec,
                        act: Activation::Linear,
                    },
                    spec.out_h * spec.out_w * spec.out_c,
                    spec.out_c,
                )),
                LayerSpec::Dense { spec, act } if split_softmax(act) => Some((
                    LayerSpec::Dense {
                        spec,
                        act: Activation::Linear,
                    },
                    spec.units,
                    spec.units,
                )),
                _ => None,
            };
            if let Some((layer, len, channels)) = linear {
                chain.pop();
                chain.push((i, layer));
                let act = Activation::Softmax;
                chain.push((i, LayerSpec::Activation { act, len, channels }));
            }
        }
        for &(i, ref spec) in &chain {
            let (out_shape, params) = layer_shapes(i, spec, &prev)?;
            let out_len = checked_len(&out_shape)?;
            if out_len == 0 {
                return Err(bad(format!("layer {i}: empty output {out_shape:?}")));
            }
            let output = if matches!(spec, LayerSpec::Flatten { .. }) {
                cur
            } else {
                buffers.push(Buffer {
                    len: out_len,
                    offset: buffer_total,
                });
                buffer_total = buffer_total
                    .checked_add(out_len)
                    .filter(|&n| n <= MAX_LEN)
                    .ok_or_else(|| bad("buffers too large".into()))?;
                buffers.len() - 1
            };
            let first = tensors.len();
            for (k, (shape, init)) in params.into_iter().enumerate() {
                let len = checked_len(&shape)?;
                let what = if k == 0 { "kernel" } else { "bias" };
                tensors.push(Tensor {
                    name: Cow::Owned(format!("layer{i}.{what}")),
                    shape: Cow::Owned(shape),
                    offset: param_total,
                    len,
                    init,
                    trainable: true,
                });
                param_total = param_total
                    .checked_add(len)
                    .filter(|&n| n <= MAX_LEN)
                    .ok_or_else(|| bad("too many parameters".into()))?;
            }
            let argmax = argmax_total;
            if let LayerSpec::Pool2d(p) = spec {
                if p.kind != PoolKind::Avg {
                    argmax_total += out_len;
                }
            }
            let softmax_of_last = steps.last().is_some_and(|s: &Step| s.index == i);
            if !softmax_of_last {
                flops = flops.saturating_add(spec.flops());
            }
            steps.push(Step {
                layer: *spec,
                index: i,
                input: cur,
                output,
                tensors: (first, tensors.len()),
                argmax,
                kernel: Kernel::Dynamic,
                fused_softmax: false,
                needs_dx: false,
                needs_backward: false,
            });
            prev = out_shape;
            cur = output;
        }
        let ends_in_softmax = matches!(
            steps.last().map(|s| s.layer),
            Some(LayerSpec::Activation {
                act: Activation::Softmax,
                ..
            })
        );
        let first_param = steps
            .iter()
            .position(|s| s.layer.has_params())
            .unwrap_or(steps.len());
        // The pre-activation gradient of a parameterised layer needs scratch when
        // it goes through an activation.
        let nsteps = steps.len();
        let mut dz_len = 0;
        for (pos, s) in steps.iter_mut().enumerate() {
            s.needs_dx = pos > first_param;
            s.needs_backward = pos >= first_param;
            s.fused_softmax = pos + 1 == nsteps && ends_in_softmax;
            if s.layer.has_params() && s.layer.activation() != Activation::Linear {
                dz_len = dz_len.max(buffers[s.output].len);
            }
        }
        // The final softmax's input holds the logits (training leaves the softmax
        // out); a model without one is trained on its output as logits.
        let logits = match steps.last() {
            Some(last) if ends_in_softmax => last.input,
            Some(last) => last.output,
            None => 0,
        };
        let max_sample = buffers.iter().map(|b| b.len).chain([dz_len]).max();
        let split =
            max_sample.unwrap_or(1) <= SPLIT_MAX_SAMPLE_LEN && param_total <= SPLIT_MAX_PARAMS;
        if split {
            for s in &mut steps {
                s.kernel = kernel_choice(&s.layer);
            }
        }
        Ok(Plan {
            input,
            output_shape: Cow::Owned(prev),
            steps: Cow::Owned(steps),
            buffers: Cow::Owned(buffers),
            tensors: Cow::Owned(tensors),
            buffer_total,
            argmax_total,
            dz_len,
            param_total,
            flops: flops.max(1),
            logits,
            ends_in_softmax,
            split,
        })
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
    use crate::spec::{Conv2dSpec, DenseSpec, Padding, Pool2dSpec, Window};

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
            },
            LayerSpec::Pool2d(pool),
            LayerSpec::Flatten { len: 864 },
            LayerSpec::Dense {
                spec: DenseSpec {
                    inputs: 864,
                    units: 10,
                },
                act: Activation::Softmax,
            },
        ]
    }

    #[test]
    fn buffers_tensors_and_kernels_follow_the_layers() {
        let p = Plan::sequential([28, 28, 1], &lenet_like()).unwrap();
        let lens: Vec<usize> = p.buffers.iter().map(|b| b.len).collect();
        assert_eq!(lens, [784, 3456, 864, 10, 10]);
        assert_eq!(p.buffers[3].offset, 784 + 3456 + 864);
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
        assert_eq!(p.steps[1].kernel, Kernel::FixedAvgPool);
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
}
