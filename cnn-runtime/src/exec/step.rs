//! What one step of a plan does, forward and backward, on one batch part: the
//! only place that maps a layer kind to its kernels. The interpreter calls these
//! in a loop; generated code calls them in a straight line with each step a
//! constant (so the match folds away). Both run the same kernels.

use cnn_plan::{Activation, BatchNormSpec, JoinKind, JoinSpec, LayerSpec, Step};

use super::part::{Bwd, Fwd, Part, Scratch};
use crate::ops::{self, batchnorm, Grads, Operands};

/// The forward pass of `step` on `part`. With `logits`, a final softmax is left
/// out (training fuses it with the cross-entropy).
#[inline]
pub fn forward_step(step: &Step, part: &mut Part<'_>, logits: bool) {
    forward_with(step, part, logits, dynamic_forward);
}

/// The forward pass of `step` with `kernel`, handed the step (its layer's
/// activation replaced by a fused one's) and its slices. Does nothing for
/// `flatten`, in training for the final softmax (fused with the loss), and in
/// a folded inference pass for a batchnorm or activation a step before
/// computed.
#[inline]
fn forward_with(
    step: &Step,
    part: &mut Part<'_>,
    logits: bool,
    kernel: impl FnOnce(&Step, Fwd<'_>),
) {
    if step.input == step.output {
        return;
    }
    if let LayerSpec::Join(j) = step.layer {
        return join_forward(step, &j, part);
    }
    if logits && step.fused_softmax {
        return;
    }
    let fold = part.mode().fold;
    if fold && step.folded {
        return;
    }
    if fold && (step.fold.is_some() || step.fold_act.is_some()) {
        return fused_forward(step, part, kernel);
    }
    kernel(step, part.fwd(step))
}
/// A join's output from its inputs, one input at a time (a concat's
/// channel offset runs over the inputs' channels); in a folded inference
/// pass, then the activation after it ([`Step::fold_act`]), in place in that
/// activation's output.
fn join_forward(step: &Step, j: &JoinSpec, part: &mut Part<'_>) {
    let plan = part.plan();
    let fused = step
        .fold_act
        .filter(|_| part.mode().fold)
        .map(|a| &plan.steps[a]);
    let out = fused.map_or(step.output, |a| a.output);
    let mut at = 0;
    for k in 0..j.inputs {
        let input = plan.buffers[plan.operands[step.operands.0 + k].buffer];
        if let Some(p) = input.place {
            // Its layer wrote its channels here already.
            assert!(
                p.buffer == out && p.at == at && p.stride == j.c,
                "a concat input placed elsewhere"
            );
            at += input.len / (plan.buffers[out].len / j.c);
            continue;
        }
        if j.kind == JoinKind::Add && k < 2 && j.inputs >= 2 {
            // The first two inputs in one pass (`y = x0 + x1`, the bits of
            // a copy then an add).
            if k == 1 {
                let (x0, x1, y) = part.join_fwd_pair(step, out);
                ops::join::add_pair(x0, x1, y);
            }
            continue;
        }
        let (x, y) = part.join_fwd(step, k, out);
        match j.kind {
            JoinKind::Add if k == 0 => ops::join::add_first(x, y),
            JoinKind::Add => ops::join::add_more(x, y),
            JoinKind::Concat => {
                let ck = x.len() / (y.len() / j.c);
                ops::join::concat_forward(j.c, at, ck, x, y);
                at += ck;
            }
        }
    }
    if let Some(&Step {
        layer: LayerSpec::Activation { act, channels, .. },
        ..
    }) = fused
    {
        let (_, y) = part.join_fwd(step, 0, out);
        ops::activation_forward_inplace(act, channels, y);
    }
}

/// The backward pass of a join: each input's share of dL/d(output).
fn join_backward(step: &Step, j: &JoinSpec, part: &mut Part<'_>) {
    let mut at = 0;
    for k in 0..j.inputs {
        let (dy, dx, acc) = part.join_bwd(step, k);
        match j.kind {
            JoinKind::Add => ops::join::add_backward(dy, dx, acc),
            JoinKind::Concat => {
                let ck = dx.len() / (dy.len() / j.c);
                ops::join::concat_backward(j.c, at, ck, dy, dx, acc);
                at += ck;
            }
        }
    }
}

/// The forward pass of `step` and of the batchnorm and activation after it
/// that a folded inference pass absorbs ([`Step::fold`], [`Step::fold_act`])
/// as one kernel call: the batchnorm's inference scale and shift folded into
/// the step's kernel and bias (prepared once, see `prepared.rs`), the
/// activation applied by the kernel, writing the last absorbed layer's output.
fn fused_forward(step: &Step, part: &mut Part<'_>, kernel: impl FnOnce(&Step, Fwd<'_>)) {
    let plan = part.plan();
    let last = step
        .fold_act
        .or(step.fold)
        .expect("a step that absorbs a layer");
    let fused = match step.fold_act {
        Some(a) => Step {
            layer: step.layer.with_activation(plan.steps[a].layer.activation()),
            ..*step
        },
        None => *step,
    };
    let w = part.prepared(step);
    let f = part.fwd_to(step, plan.steps[last].output);
    match w {
        Some(w) if w.folded => kernel(
            &fused,
            Fwd {
                tensors: [&w.kernel, &w.bias, &[], &[]],
                ..f
            },
        ),
        _ => {
            assert!(
                step.fold.is_none() || f.packed.is_some(),
                "a folded inference pass without its prepared weights"
            );
            kernel(&fused, f)
        }
    }
}

#[inline]
fn dynamic_forward(step: &Step, f: Fwd<'_>) {
    let Fwd {
        b,
        first,
        x,
        y,
        y_stride,
        tensors: [t0, t1, t2, t3],
        argmax,
        stats,
        scratch,
        mode,
        packed,
    } = f;
    let op = Operands {
        batch: b,
        x,
        kernel: t0,
        bias: (!t1.is_empty()).then_some(t1),
    };
    assert!(
        y_stride.is_none() || step.layer.writes_cells(),
        "a concat input placed for a layer that cannot write it"
    );
    let cells = |y| ops::Cells {
        y,
        stride: y_stride,
    };
    match step.layer {
        LayerSpec::Conv2d {
            spec, act, groups, ..
        } if groups > 1 => ops::conv2d::grouped::conv2d_grouped_forward(
            (&spec, groups),
            act,
            op,
            y,
            &mut scratch.grouped,
        ),
        LayerSpec::Conv2d { spec, act, .. } => {
            let (y, s) = (cells(y), &mut scratch.conv);
            match packed {
                Some(p) => ops::conv2d::conv2d_forward_packed(&spec, act, b, x, p, y, s),
                None => ops::conv2d::conv2d_forward(&spec, act, b, x, t0, op.bias, y, s),
            }
        }
        LayerSpec::Dense { spec, act, .. } => {
            ops::dense::dense_forward(&spec, act, b, x, t0, op.bias, y)
        }
        LayerSpec::DwConv2d { spec, act, .. } => ops::dwconv::dwconv_forward(&spec, act, op, y),
        LayerSpec::Deconv2d { spec, act, .. } => {
            ops::deconv::deconv_forward(&spec, act, op, cells(y))
        }
        LayerSpec::Pool2d(spec) => ops::pool2d::pool2d_forward(&spec, b, x, y, argmax),
        LayerSpec::Activation { act, channels, .. } => {
            ops::activation::activation_forward_cells(act, channels, x, cells(y))
        }
        LayerSpec::BatchNorm(n) => {
            let (gamma, beta, mean, var) = batchnorm_tensors(&n, [t0, t1, t2, t3]);
            let eps = n.epsilon.get();
            // Training normalises with the batch's statistics (kept for the
            // backward pass and the moving update), inference with the moving
            // ones; both as one scale and shift per channel, in scratch.
            let (mean, var) = if mode.train {
                let (bm, bv) = stats.split_at_mut(n.c);
                batchnorm::batch_moments(n.c, x, bm, bv, &mut scratch.bn_sums);
                (&*bm, &*bv)
            } else {
                (mean, var)
            };
            let Scratch { scale, shift, .. } = scratch;
            scale.resize(n.c, 0.0);
            shift.resize(n.c, 0.0);
            batchnorm::fold(eps, gamma, beta, mean, var, scale, shift);
            batchnorm::scale_shift(scale, shift, x, y);
        }
        LayerSpec::Dropout { rate, len } => {
            if mode.train && rate.get() > 0.0 {
                let seed = layer_seed(mode.seed, step.id);
                ops::dropout::dropout_apply(rate.get(), seed, (first * len) as u64, x, y);
            } else {
                y.copy_from_slice(x);
            }
        }
        LayerSpec::Augment(spec) => {
            if mode.train {
                let seed = layer_seed(mode.seed, step.id);
                ops::augment::augment_forward(&spec, seed, first, x, y);
            } else {
                y.copy_from_slice(x);
            }
        }
        LayerSpec::GlobalPool(spec) => ops::global_pool::global_pool_forward(&spec, b, x, y),
        LayerSpec::ZeroPad(spec) => ops::zeropad::zeropad_forward(&spec, b, x, y),
        LayerSpec::Upsample(spec) => ops::upsample::upsample_forward(&spec, b, x, y),
        // The plan runs a sepconv as its two halves; flatten has no work; a
        // join reads several inputs (`join_forward`).
        LayerSpec::SepConv2d { .. } | LayerSpec::Flatten { .. } | LayerSpec::Join(_) => {}
    }
}

/// A batchnorm's tensors: gamma and beta (absent with `noscale` and
/// `nocenter`), the moving mean and the moving variance.
type BatchNormTensors<'a> = (Option<&'a [f32]>, Option<&'a [f32]>, &'a [f32], &'a [f32]);

/// A batchnorm's [`BatchNormTensors`] among its tensors.
pub(super) fn batchnorm_tensors<'a>(n: &BatchNormSpec, t: [&'a [f32]; 4]) -> BatchNormTensors<'a> {
    let mut k = 0;
    let mut next = |present: bool| {
        present.then(|| {
            k += 1;
            t[k - 1]
        })
    };
    let gamma = next(n.scale);
    let beta = next(n.center);
    let (mean, var) = (t[k], t[k + 1]);
    (gamma, beta, mean, var)
}

/// The seed of one dropout or augmentation layer's draws in one pass: the
/// pass's seed mixed with the statement's number, so that two such layers
/// draw differently.
fn layer_seed(seed: u64, id: usize) -> u64 {
    seed ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
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
    /// Empty for a layer without a bias.
    pub dbias: &'p mut [f32],
    pub scratch: &'p mut Scratch,
}

/// The backward pass of `step` on `part`: from dL/d(output) in the output's
/// gradient buffer to the parameter gradients and dL/d(input). With `ce`, the
/// fused loss already wrote dL/dlogits (for a final softmax); with
/// `input_grad`, dL/dx of the model is wanted too.
#[inline]
pub fn backward_step(step: &Step, part: &mut Part<'_>, ce: bool, input_grad: bool) {
    backward_with(step, part, ce, input_grad, |g| dynamic_param_grad(step, g));
}

/// The backward pass of `step`, with `param_grad` for the parameter gradients
/// of a conv or dense layer.
#[inline]
fn backward_with(
    step: &Step,
    part: &mut Part<'_>,
    ce: bool,
    input_grad: bool,
    param_grad: impl FnOnce(ParamGrad<'_>),
) {
    let Some(need_dx) = backward_runs(step, input_grad) else {
        return;
    };
    if let LayerSpec::Join(j) = step.layer {
        if need_dx {
            join_backward(step, &j, part);
        }
        return;
    }
    let Bwd {
        b,
        first,
        x,
        y,
        y_stride,
        dy,
        dx: dx_buffer,
        dz,
        tensors,
        dkernel,
        dbias,
        argmax,
        stats,
        scratch,
        mode,
    } = part.bwd(step);
    // An input another step reads too: its gradient is summed (see
    // `Step::accumulate`), so this step's share goes through scratch.
    let sum = step.accumulate && need_dx;
    let mut share = if sum {
        std::mem::take(&mut scratch.dx_sum)
    } else {
        Vec::new()
    };
    let dx: &mut [f32] = if sum {
        if share.len() < dx_buffer.len() {
            share.resize(dx_buffer.len(), 0.0);
        }
        &mut share[..dx_buffer.len()]
    } else {
        &mut *dx_buffer
    };
    match step.layer {
        LayerSpec::Conv2d { .. }
        | LayerSpec::Dense { .. }
        | LayerSpec::DwConv2d { .. }
        | LayerSpec::Deconv2d { .. } => {
            let act = step.layer.activation();
            let dz: &[f32] = if act == Activation::Linear {
                // dL/dz = dL/dy: no activation to go through.
                dy
            } else {
                let ch = step.layer.channels();
                let y = (y, y_stride.unwrap_or(ch));
                ops::activation::activation_backward_cells(act, ch, None, y, dy, dz);
                dz
            };
            param_grad(ParamGrad {
                b,
                x,
                kernel: tensors[0],
                dz,
                dx: need_dx.then_some(dx),
                dkernel,
                dbias: if tensors[1].is_empty() {
                    &mut []
                } else {
                    dbias
                },
                scratch: &mut *scratch,
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
                let y = (y, y_stride.unwrap_or(channels));
                ops::activation::activation_backward_cells(act, channels, Some(x), y, dy, dx);
            }
        }
        LayerSpec::BatchNorm(n) => {
            let (gamma, _, moving_mean, moving_var) = batchnorm_tensors(&n, tensors);
            let (mean, var) = if mode.train {
                stats.split_at(n.c)
            } else {
                (moving_mean, moving_var)
            };
            let (dgamma, dbeta) = match (n.scale, n.center) {
                (true, true) => (Some(dkernel), Some(dbias)),
                (true, false) => (Some(dkernel), None),
                (false, true) => (None, Some(dkernel)),
                (false, false) => (None, None),
            };
            let norm = batchnorm::Norm {
                c: n.c,
                eps: n.epsilon.get(),
                gamma,
                mean,
                var,
            };
            let grads = batchnorm::BatchNormGrads {
                dx: need_dx.then_some(dx),
                dgamma,
                dbeta,
            };
            batchnorm::batchnorm_backward(mode.train, norm, x, dy, grads, &mut scratch.bn_sums);
        }
        LayerSpec::Dropout { rate, len } if need_dx => {
            if mode.train && rate.get() > 0.0 {
                let seed = layer_seed(mode.seed, step.id);
                ops::dropout::dropout_apply(rate.get(), seed, (first * len) as u64, dy, dx);
            } else {
                dx.copy_from_slice(dy);
            }
        }
        LayerSpec::GlobalPool(spec) => {
            if need_dx {
                ops::global_pool::global_pool_backward(&spec, b, (x, y), dy, dx);
            }
        }
        LayerSpec::ZeroPad(spec) => {
            if need_dx {
                ops::zeropad::zeropad_backward(&spec, b, dy, dx);
            }
        }
        LayerSpec::Upsample(spec) => {
            if need_dx {
                ops::upsample::upsample_backward(&spec, b, dy, dx);
            }
        }
        LayerSpec::Augment(spec) if need_dx => {
            if mode.train {
                let seed = layer_seed(mode.seed, step.id);
                ops::augment::augment_backward(&spec, seed, first, dy, dx);
            } else {
                dx.copy_from_slice(dy);
            }
        }
        LayerSpec::Dropout { .. }
        | LayerSpec::Augment(_)
        | LayerSpec::SepConv2d { .. }
        | LayerSpec::Flatten { .. }
        | LayerSpec::Join(_) => {}
    }
    if sum {
        ops::join::add_more(&share[..dx_buffer.len()], dx_buffer);
        scratch.dx_sum = share;
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

#[inline]
fn dynamic_param_grad(step: &Step, g: ParamGrad<'_>) {
    let ParamGrad {
        b,
        x,
        kernel,
        dz,
        dx,
        dkernel,
        dbias,
        scratch,
    } = g;
    let op = Operands {
        batch: b,
        x,
        kernel,
        bias: None,
    };
    let has_bias = !dbias.is_empty();
    let grads = Grads {
        dx,
        dkernel,
        dbias: has_bias.then_some(dbias),
    };
    match step.layer {
        LayerSpec::Conv2d { spec, groups, .. } if groups > 1 => {
            ops::conv2d::grouped::conv2d_grouped_backward(
                (&spec, groups),
                op,
                dz,
                grads,
                &mut scratch.grouped,
            )
        }
        LayerSpec::Conv2d { spec, .. } => ops::conv2d::conv2d_backward(
            &spec,
            b,
            x,
            kernel,
            dz,
            grads.dx,
            grads.dkernel,
            grads.dbias,
            &mut scratch.conv,
        ),
        LayerSpec::Dense { spec, .. } => ops::dense::dense_backward(
            &spec,
            b,
            x,
            kernel,
            dz,
            grads.dx,
            grads.dkernel,
            grads.dbias,
        ),
        LayerSpec::DwConv2d { spec, .. } => ops::dwconv::dwconv_backward(&spec, op, dz, grads),
        LayerSpec::Deconv2d { spec, .. } => ops::deconv::deconv_backward(&spec, op, dz, grads),
        _ => unreachable!("parameter gradients of a layer without a kernel"),
    }
}
