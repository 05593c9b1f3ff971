//! What one step of a plan does, forward and backward, on one batch part: the
//! only place that maps a layer kind to its kernels. The interpreter calls these
//! in a loop; generated code calls them in a straight line with each step a
//! constant (so the match folds away), and passes fixed-size kernels through
//! the `*_with` forms where the plan chose one.

use cnn_plan::{Activation, LayerSpec, Step};

use super::part::{Bwd, Fwd, Part};
use crate::ops;

/// The forward pass of `step` on `part`. With `logits`, a final softmax is left
/// out (training fuses it with the cross-entropy).
#[inline]
pub fn forward_step(step: &Step, part: &mut Part<'_>, logits: bool) {
    forward_with(step, part, logits, |f| dynamic_forward(step, f));
}

/// The forward pass of `step` with a kernel of the caller's (a fixed-size one),
/// handed the step's slices. Does nothing for `flatten`, and in training for
/// the final softmax (fused with the loss).
#[inline]
pub fn forward_with(step: &Step, part: &mut Part<'_>, logits: bool, kernel: impl FnOnce(Fwd<'_>)) {
    if step.input == step.output {
        return;
    }
    if logits && step.fused_softmax {
        return;
    }
    kernel(part.fwd(step));
}

#[inline]
fn dynamic_forward(step: &Step, f: Fwd<'_>) {
    match step.layer {
        LayerSpec::Conv2d { spec, act } => {
            ops::conv2d::conv2d_forward(&spec, act, f.b, f.x, f.kernel, f.bias, f.y, f.scratch)
        }
        LayerSpec::Dense { spec, act } => {
            ops::dense::dense_forward(&spec, act, f.b, f.x, f.kernel, f.bias, f.y)
        }
        LayerSpec::Pool2d(spec) => ops::pool2d::pool2d_forward(&spec, f.b, f.x, f.y, f.argmax),
        LayerSpec::Activation { act, channels, .. } => {
            ops::activation::activation_forward(act, channels, f.x, f.y)
        }
        LayerSpec::Flatten { .. } => {}
    }
}

/// The gradients a parameterised layer's kernel computes, from dL/dz.
pub struct ParamGrad<'p> {
    pub b: usize,
    pub x: &'p [f32],
    pub kernel: &'p [f32],
    /// dL/d(pre-activation).
    pub dz: &'p [f32],
    /// dL/dx, when needed.
    pub dx: Option<&'p mut [f32]>,
    pub dkernel: &'p mut [f32],
    pub dbias: &'p mut [f32],
    pub scratch: &'p mut ops::conv2d::Conv2dScratch,
}

/// The backward pass of `step` on `part`: from dL/d(output) in the output's
/// gradient buffer to the parameter gradients and dL/d(input). With `ce`, the
/// fused loss already wrote dL/dlogits (for a final softmax); with
/// `input_grad`, dL/dx of the model is wanted too.
#[inline]
pub fn backward_step(step: &Step, part: &mut Part<'_>, ce: bool, input_grad: bool) {
    backward_with(step, part, ce, input_grad, |g| dynamic_param_grad(step, g));
}

/// The backward pass of `step`, with the caller's kernel for the parameter
/// gradients of a conv or dense layer (a fixed-size one).
#[inline]
pub fn backward_with(
    step: &Step,
    part: &mut Part<'_>,
    ce: bool,
    input_grad: bool,
    param_grad: impl FnOnce(ParamGrad<'_>),
) {
    let Some(need_dx) = backward_runs(step, input_grad) else {
        return;
    };
    let Bwd {
        b,
        x,
        y,
        dy,
        dx,
        dz,
        kernel,
        dkernel,
        dbias,
        argmax,
        scratch,
    } = part.bwd(step);
    match step.layer {
        LayerSpec::Conv2d { .. } | LayerSpec::Dense { .. } => {
            let act = step.layer.activation();
            let dz: &[f32] = if act == Activation::Linear {
                // dL/dz = dL/dy: no activation to go through.
                dy
            } else {
                let ch = step.layer.channels();
                ops::activation::activation_backward(act, ch, y, dy, dz);
                dz
            };
            param_grad(ParamGrad {
                b,
                x,
                kernel,
                dz,
                dx: need_dx.then_some(dx),
                dkernel,
                dbias,
                scratch,
            });
        }
        LayerSpec::Pool2d(spec) => {
            if need_dx {
                ops::pool2d::pool2d_backward(&spec, b, dy, argmax, dx);
            }
        }
        LayerSpec::Activation { act, channels, .. } => {
            // A fused final softmax: the loss wrote dL/dlogits into dx already.
            if !(ce && step.fused_softmax) {
                ops::activation::activation_backward(act, channels, y, dy, dx);
            }
        }
        LayerSpec::Flatten { .. } => {}
    }
}

/// Whether the backward pass of `step` runs (`None`: nothing flows back through
/// it, or it works in place) and, if so, whether it computes dL/d(input).
fn backward_runs(step: &Step, input_grad: bool) -> Option<bool> {
    if step.input == step.output || !(step.needs_backward || input_grad) {
        return None;
    }
    Some(step.needs_dx || input_grad)
}

/// The backward pass of a pool step with the caller's kernel `(b, dy, dx)`.
#[inline]
pub fn pool_backward_with(
    step: &Step,
    part: &mut Part<'_>,
    input_grad: bool,
    kernel: impl FnOnce(usize, &[f32], &mut [f32]),
) {
    // A pool's backward only computes dx.
    if backward_runs(step, input_grad) != Some(true) {
        return;
    }
    let g = part.bwd(step);
    kernel(g.b, g.dy, g.dx);
}

#[inline]
fn dynamic_param_grad(step: &Step, g: ParamGrad<'_>) {
    match step.layer {
        LayerSpec::Conv2d { spec, .. } => ops::conv2d::conv2d_backward(
            &spec, g.b, g.x, g.kernel, g.dz, g.dx, g.dkernel, g.dbias, g.scratch,
        ),
        LayerSpec::Dense { spec, .. } => {
            ops::dense::dense_backward(&spec, g.b, g.x, g.kernel, g.dz, g.dx, g.dkernel, g.dbias)
        }
        _ => unreachable!("parameter gradients of a layer without parameters"),
    }
}
