//! The executor: runs a [`Plan`] on a model's [`State`] (parameters, gradients
//! and buffers). The interpreter and generated code are both a plan plus a
//! state; they differ only in how a batch part runs its steps ([`Passes`]): the
//! interpreter walks the plan, generated code calls the steps in a straight line.
//!
//! Buffers are sized for the batch on first use and only grow, so a training
//! step in steady state allocates nothing. A plan that splits batches
//! ([`Plan::split`]) cuts each batch into parts of consecutive samples that run
//! every step on their own core (two synchronisations per training step); the
//! parts' parameter gradients are summed in part order, and a backward pass has
//! as many parts whatever the number of cores, so a training run gives
//! bit-identical weights on any machine with the same kernels.

mod part;
mod prepared;
mod step;

pub use part::{Bwd, Fwd, Mode, Part, Scratch};
pub use step::{backward_step, forward_step};

use cnn_plan::{Activation, Init, LayerSpec, Plan};
use ndarray::{ArrayView2, ArrayView4};

use crate::aligned::AlignedVec;
use crate::error::{Culprit, Divergence};
use crate::init::{glorot_uniform, model_rng};
use crate::loss::SoftmaxCrossEntropy;
use crate::model::{Param, ParamMut, StepOptions};
use crate::optim::Optimizer;
use crate::pool as parallel;
use crate::{Error, Result};
use part::Arenas;
use prepared::Prepared;

/// Most batch parts (one scratch each).
pub const MAX_PARTS: usize = 16;
/// Most values in all buffers of one batch (beyond, a batch is refused).
const MAX_BATCH_VALUES: usize = 1 << 36;

/// Most values of the private gradients of batch parts 1.. (1 GiB): a model
/// with more parameters sums fewer parts (a function of the plan alone).
const MAX_GPART_VALUES: usize = 1 << 28;

/// Most parts a pass of `plan` is cut into.
fn grad_parts(plan: &Plan) -> usize {
    parallel::FIXED_PARTS
        .min(MAX_PARTS)
        .min(1 + MAX_GPART_VALUES / plan.param_total.max(1))
}

/// Keras's `clipnorm`: scales every trainable tensor's gradient whose L2 norm
/// exceeds `c` down to norm `c`.
fn clip(plan: &Plan, grads: &mut [f32], c: f32) {
    for t in plan.tensors.iter().filter(|t| t.trainable) {
        let g = &mut grads[t.offset..t.offset + t.len];
        let norm = g.iter().map(|&v| v as f64 * v as f64).sum::<f64>().sqrt();
        if norm > c as f64 {
            let k = (c as f64 / norm) as f32;
            g.iter_mut().for_each(|v| *v *= k);
        }
    }
}

/// The first trainable tensor of `values` (parameters or their gradients)
/// holding a NaN or an infinity: its name, its layer's [`Step::id`], the value.
fn non_finite(plan: &Plan, values: &[f32]) -> Option<(String, usize, f32)> {
    plan.tensors.iter().enumerate().find_map(|(i, t)| {
        let v = values[t.offset..t.offset + t.len]
            .iter()
            .find(|v| !v.is_finite());
        let (&value, true) = (v?, t.trainable) else {
            return None;
        };
        let statement = plan
            .steps
            .iter()
            .find(|s| (s.tensors.0..s.tensors.1).contains(&i))
            .map_or(0, |s| s.id);
        Some((t.name.to_string(), statement, value))
    })
}

/// Runs every step forward on one part (`logits`: leave a final softmax out).
pub type ForwardFn = fn(&Plan, &mut Part<'_>, bool);
/// Runs every step backward on one part (`ce`: the fused loss wrote
/// dL/dlogits; `input_grad`: compute dL/dx of the model too).
pub type BackwardFn = fn(&Plan, &mut Part<'_>, bool, bool);

/// How a model runs the steps of one batch part.
#[derive(Clone, Copy)]
pub struct Passes {
    pub forward: ForwardFn,
    pub backward: BackwardFn,
}

impl Passes {
    /// Walks the plan's steps (the interpreter).
    pub const WALK: Passes = Passes {
        forward: forward_all,
        backward: backward_all,
    };
}

/// Every step forward, in order.
pub fn forward_all(plan: &Plan, part: &mut Part<'_>, logits: bool) {
    for s in plan.steps.iter() {
        forward_step(s, part, logits);
    }
}

/// Every step backward, last first.
pub fn backward_all(plan: &Plan, part: &mut Part<'_>, ce: bool, input_grad: bool) {
    for s in plan.steps.iter().rev() {
        backward_step(s, part, ce, input_grad);
    }
}

/// A model's parameters, gradients and buffers, laid out by its plan.
pub struct State {
    params: Vec<f32>,
    grads: Vec<f32>,
    /// Private parameter gradients of batch parts 1.., summed into `grads`.
    gpart: AlignedVec,
    acts: AlignedVec,
    dacts: AlignedVec,
    dz: AlignedVec,
    argmax: Vec<u32>,
    /// Batchnorm batch statistics of the last training forward pass.
    stats: Vec<f32>,
    scratch: Vec<Scratch>,
    /// Inference's folded and packed weights (current until the parameters change).
    prepared: Prepared,
    /// The seed the parameters were drawn with; dropout masks derive from it.
    seed: u64,
    /// Training forward passes run so far (each draws fresh dropout masks).
    passes: u64,
    /// Label smoothing and gradient clipping of a training step.
    step_options: StepOptions,
    /// The mode of the last forward pass (its backward pass reuses it).
    fwd_mode: Mode,
    /// Batch the forward buffers are sized for.
    cap: usize,
    /// Batch the gradient buffers are sized for.
    grad_cap: usize,
    /// Batch of the last forward pass (0: none, or consumed).
    fwd_batch: usize,
    /// Batch of the input gradient (0: none; training skips it).
    dx_batch: usize,
}

fn rows<T>(v: &[T], cap: usize, offset: usize, len: usize, b: usize) -> &[T] {
    &v[cap * offset..cap * offset + b * len]
}

fn rows_mut<T>(v: &mut [T], cap: usize, offset: usize, len: usize, b: usize) -> &mut [T] {
    &mut v[cap * offset..cap * offset + b * len]
}

fn copy_in(dst: &mut [f32], src: impl Iterator<Item = f32>) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s;
    }
}

impl State {
    /// A state for `plan` with Keras's default initialisation, drawn from one RNG
    /// seeded with `seed`, tensor by tensor in plan order.
    pub fn new(plan: &Plan, seed: u64) -> State {
        crate::profile::warn_once();
        let mut s = State {
            params: vec![0.0; plan.param_total],
            grads: vec![0.0; plan.param_total],
            gpart: AlignedVec::new(),
            acts: AlignedVec::new(),
            dacts: AlignedVec::new(),
            dz: AlignedVec::new(),
            argmax: Vec::new(),
            stats: vec![0.0; plan.stats_total],
            scratch: (0..MAX_PARTS).map(|_| Scratch::default()).collect(),
            prepared: Prepared::default(),
            seed,
            passes: 0,
            step_options: StepOptions::default(),
            fwd_mode: Mode::default(),
            cap: 0,
            grad_cap: 0,
            fwd_batch: 0,
            dx_batch: 0,
        };
        s.reinit(plan, seed);
        s
    }

    /// Draws fresh parameters for `seed`, exactly as [`State::new`] does.
    pub fn reinit(&mut self, plan: &Plan, seed: u64) {
        let mut rng = model_rng(seed);
        for t in plan.tensors.iter() {
            let v = &mut self.params[t.offset..t.offset + t.len];
            match t.init {
                Init::GlorotUniform { fan_in, fan_out } => {
                    glorot_uniform(&mut rng, fan_in, fan_out, v)
                }
                Init::Zeros => v.fill(0.0),
                Init::Ones => v.fill(1.0),
            }
        }
        self.seed = seed;
        self.passes = 0;
        self.invalidate();
        self.prepared.invalidate();
    }

    /// Sets label smoothing and gradient clipping (see [`StepOptions`]).
    pub fn set_step_options(&mut self, o: StepOptions) -> Result<()> {
        if !(0.0..1.0).contains(&o.label_smoothing) {
            return Err(Error::Invalid(format!(
                "label smoothing must be in [0, 1), got {}",
                o.label_smoothing
            )));
        }
        if let Some(c) = o.clip_norm.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(Error::Invalid(format!(
                "the gradient clipping norm must be a positive number, got {c}"
            )));
        }
        self.step_options = o;
        Ok(())
    }

    /// Training-mode passes run so far (see [`crate::Model::training_passes`]).
    pub fn training_passes(&self) -> u64 {
        self.passes
    }

    /// Sets the count of training-mode passes (a resumed run).
    pub fn set_training_passes(&mut self, passes: u64) {
        self.passes = passes;
    }

    /// Forgets the last forward pass and input gradient (the parameters changed).
    pub fn invalidate(&mut self) {
        self.fwd_batch = 0;
        self.dx_batch = 0;
    }

    /// Checks a batch of `b`, and says whether buffers sized for `cap` samples
    /// must grow for it.
    fn grows(plan: &Plan, b: usize, cap: usize) -> Result<bool> {
        if b == 0 {
            return Err(Error::Invalid("empty batch".into()));
        }
        match b.checked_mul(plan.buffer_total.max(plan.dz_len)) {
            Some(n) if n <= MAX_BATCH_VALUES => Ok(b > cap),
            _ => Err(Error::Invalid(format!("batch of {b} is too large"))),
        }
    }

    /// Sizes the forward buffers for a batch of `b` (grows only).
    fn reserve(&mut self, plan: &Plan, b: usize) -> Result<()> {
        if Self::grows(plan, b, self.cap)? {
            self.acts.resize(b * plan.buffer_total, 0.0);
            self.argmax.resize(b * plan.argmax_total, 0);
            self.cap = b;
            // The layout of every buffer moved.
            self.invalidate();
        }
        Ok(())
    }

    /// Sizes the gradient buffers for a batch of `b` (grows only).
    fn reserve_grad(&mut self, plan: &Plan, b: usize) -> Result<()> {
        if Self::grows(plan, b, self.grad_cap)? {
            self.dacts.resize(b * plan.buffer_total, 0.0);
            self.dz.resize(b * plan.dz_len, 0.0);
            self.grad_cap = b;
            self.dx_batch = 0;
        }
        if plan.split {
            let need = (grad_parts(plan) - 1) * plan.param_total;
            if self.gpart.len() < need {
                self.gpart.resize(need, 0.0);
            }
        }
        Ok(())
    }

    /// Checks the input's shape and copies it into buffer 0; returns the batch.
    fn load_input(&mut self, plan: &Plan, x: &ArrayView4<'_, f32>) -> Result<usize> {
        let s = x.shape();
        let [h, w, c] = plan.input;
        if s[1..] != plan.input[..] {
            return Err(Error::Shape {
                expected: format!("(batch, {h}, {w}, {c})"),
                got: format!("({}, {}, {}, {})", s[0], s[1], s[2], s[3]),
            });
        }
        let b = s[0];
        self.reserve(plan, b)?;
        self.fwd_batch = 0;
        self.dx_batch = 0;
        let dst = &mut self.acts[..b * plan.input_len()];
        match x.as_slice() {
            Some(src) => dst.copy_from_slice(src),
            None => copy_in(dst, x.iter().copied()),
        }
        Ok(b)
    }

    /// Cuts the batch into parts and runs `f` on each, in parallel when the plan
    /// splits batches; then sums the parts' private parameter gradients.
    fn run(
        &mut self,
        plan: &Plan,
        b: usize,
        (grad, mode): (bool, Mode),
        work: usize,
        f: &(dyn Fn(&mut Part<'_>) + Sync),
    ) {
        let flops = b.saturating_mul(work);
        // As many parts on any core count: the parts' gradients are summed,
        // and a kernel's method may depend on its part's size.
        let mut parts = if plan.split {
            parallel::fixed_parts(flops, b).min(grad_parts(plan))
        } else {
            1
        };
        if grad && (parts - 1) * plan.param_total > self.gpart.len() {
            parts = 1;
        }
        let arenas = Arenas {
            acts: self.acts.as_mut_ptr(),
            acts_len: self.acts.len(),
            cap: self.cap,
            dacts: self.dacts.as_mut_ptr(),
            dacts_len: self.dacts.len(),
            grad_cap: self.grad_cap,
            dz: self.dz.as_mut_ptr(),
            dz_len: self.dz.len(),
            argmax: self.argmax.as_mut_ptr(),
            argmax_len: self.argmax.len(),
            params: self.params.as_ptr(),
            params_len: self.params.len(),
            grads: self.grads.as_mut_ptr(),
            gpart: self.gpart.as_mut_ptr(),
            gpart_len: self.gpart.len(),
            scratch: self.scratch.as_mut_ptr(),
            scratch_len: self.scratch.len(),
            // Only a folded inference pass reads prepared weights.
            prepared: mode.fold.then_some(&self.prepared as *const Prepared),
            stats: self.stats.as_mut_ptr(),
            stats_len: self.stats.len(),
            grad,
            mode,
        };
        parallel::run(parts, &|t| {
            let mut p = Part::new(plan, &arenas, t, parallel::split(b, parts, t));
            f(&mut p);
        });
        if grad {
            let n = plan.param_total;
            for t in 1..parts {
                let own = &self.gpart[(t - 1) * n..t * n];
                for (d, v) in self.grads.iter_mut().zip(own) {
                    *d += v;
                }
            }
        }
    }

    /// The mode of a pass: training passes number their dropout masks by the
    /// training passes before them.
    /// (`fold`: an inference pass folding batchnorms, see [`Mode::fold`]).
    fn mode(&self, train: bool, fold: bool) -> Mode {
        Mode {
            train,
            seed: self.seed ^ self.passes.wrapping_mul(0xd1b5_4a32_d192_ed03),
            fold: fold && !train,
        }
    }

    /// The forward pass; in training mode, then the moving-average update of
    /// every batchnorm from the batch statistics it took.
    fn run_forward(&mut self, plan: &Plan, passes: Passes, b: usize, logits: bool, mode: Mode) {
        let f = passes.forward;
        self.run(plan, b, (false, mode), plan.flops, &|p| f(plan, p, logits));
        self.fwd_mode = mode;
        if mode.train {
            self.passes += 1;
            self.update_moving_statistics(plan);
        }
    }

    fn update_moving_statistics(&mut self, plan: &Plan) {
        self.prepared.invalidate();
        for s in plan.steps.iter() {
            let LayerSpec::BatchNorm(n) = s.layer else {
                continue;
            };
            let batch = &self.stats[s.stats..s.stats + 2 * n.c];
            // A diverging step (its loss is then not finite) spoils no moving
            // statistics: they keep the last finite batches' values.
            if batch.iter().any(|v| !v.is_finite()) {
                continue;
            }
            // The moving mean and variance are the step's last two tensors.
            let t = &plan.tensors[s.tensors.1 - 2..s.tensors.1];
            for (k, t) in t.iter().enumerate() {
                let stat = &batch[k * n.c..(k + 1) * n.c];
                let moving = &mut self.params[t.offset..t.offset + t.len];
                crate::ops::batchnorm::moving_update(n.momentum.get(), stat, moving);
            }
        }
    }

    fn run_backward(&mut self, plan: &Plan, passes: Passes, b: usize, ce: bool, dx: bool) {
        let f = passes.backward;
        let work = plan.flops.saturating_mul(2);
        // The backward pass differentiates the forward pass it follows: its
        // mode, dropout masks included.
        let mode = self.fwd_mode;
        self.run(plan, b, (true, mode), work, &|p| f(plan, p, ce, dx));
    }

    /// The rows of buffer `buf` for the last forward batch.
    fn buffer(&self, plan: &Plan, buf: usize, b: usize) -> ArrayView2<'_, f32> {
        let d = plan.buffers[buf];
        let v = rows(&self.acts, self.cap, d.offset, d.len, b);
        ArrayView2::from_shape((b, d.len), v).expect("buffer view")
    }

    /// Forward pass (inference); the output, one flattened row per sample, is a
    /// view of the state's own buffer.
    pub fn forward(
        &mut self,
        plan: &Plan,
        passes: Passes,
        x: ArrayView4<'_, f32>,
    ) -> Result<ArrayView2<'_, f32>> {
        self.forward_mode(plan, passes, x, self.mode(false, false))
    }

    /// Inference as [`State::forward`], with every batchnorm that follows a
    /// conv, depthwise, transposed conv or dense layer folded into that
    /// layer's kernel and bias, and an activation layer after them applied by
    /// that layer's kernel (a pass over the activations fewer each). Only the
    /// output is kept: the outputs of the layers absorbed into a later one
    /// ([`Plan::predict_keeps`]) are not written, and [`State::backward`]
    /// needs a `forward`.
    pub fn predict(
        &mut self,
        plan: &Plan,
        passes: Passes,
        x: ArrayView4<'_, f32>,
    ) -> Result<ArrayView2<'_, f32>> {
        self.prepared.ensure(plan, &self.params);
        self.forward_mode(plan, passes, x, self.mode(false, true))
    }

    /// Forward pass in training mode (Keras's `model(x, training=True)`):
    /// batchnorm normalises with the batch's statistics and updates its
    /// moving ones, dropout draws its masks. A following [`State::backward`]
    /// differentiates this pass.
    pub fn forward_train(
        &mut self,
        plan: &Plan,
        passes: Passes,
        x: ArrayView4<'_, f32>,
    ) -> Result<ArrayView2<'_, f32>> {
        self.forward_mode(plan, passes, x, self.mode(true, false))
    }

    fn forward_mode(
        &mut self,
        plan: &Plan,
        passes: Passes,
        x: ArrayView4<'_, f32>,
        mode: Mode,
    ) -> Result<ArrayView2<'_, f32>> {
        let b = self.load_input(plan, &x)?;
        self.run_forward(plan, passes, b, false, mode);
        self.fwd_batch = b;
        Ok(self.buffer(plan, plan.output_buffer(), b))
    }

    /// Backward pass from `dy` = dL/d(output) (post-activation, `batch` rows of
    /// the output's values), after a forward pass on the same batch. Parameter
    /// gradients are overwritten, and the input gradient is kept.
    pub fn backward(
        &mut self,
        plan: &Plan,
        passes: Passes,
        dy_shape: &[usize],
        dy: impl Iterator<Item = f32>,
    ) -> Result<()> {
        let b = self.fwd_batch;
        if b == 0 {
            return Err(Error::Invalid(
                "backward needs a forward pass on the same batch first".into(),
            ));
        }
        if self.fwd_mode.fold {
            return Err(Error::Invalid(
                "backward needs a forward pass, not predict (which folds batchnorms and keeps only the output)".into(),
            ));
        }
        let n = plan.output_len();
        let len: usize = dy_shape.iter().product();
        if dy_shape.is_empty() || dy_shape[0] != b || len != b * n {
            return Err(Error::Shape {
                expected: format!("({b}, {:?})", &plan.output_shape[..]),
                got: format!("{dy_shape:?}"),
            });
        }
        self.reserve_grad(plan, b)?;
        let d = plan.buffers[plan.output_buffer()];
        copy_in(
            rows_mut(&mut self.dacts, self.grad_cap, d.offset, d.len, b),
            dy,
        );
        self.run_backward(plan, passes, b, false, true);
        self.dx_batch = b;
        Ok(())
    }

    /// Forward in training mode, the mean softmax cross-entropy against
    /// `labels` (from the logits; fused with a final softmax) and backward.
    fn ce(
        &mut self,
        plan: &Plan,
        passes: Passes,
        x: ArrayView4<'_, f32>,
        labels: &[usize],
        input_grad: bool,
    ) -> Result<f32> {
        if plan.output_shape.len() != 1 {
            let s: Vec<String> = plan.output_shape.iter().map(|d| d.to_string()).collect();
            return Err(Error::Invalid(format!(
                "training needs a model with a vector output (classes); this one ends on an image {}",
                s.join("x")
            )));
        }
        let b = self.load_input(plan, &x)?;
        if labels.len() != b {
            return Err(Error::Labels(format!(
                "{} labels for a batch of {b}",
                labels.len()
            )));
        }
        self.reserve_grad(plan, b)?;
        self.run_forward(plan, passes, b, true, self.mode(true, false));
        let d = plan.buffers[plan.logits];
        let logits = rows(&self.acts, self.cap, d.offset, d.len, b);
        let dlogits = rows_mut(&mut self.dacts, self.grad_cap, d.offset, d.len, b);
        let smoothing = self.step_options.label_smoothing;
        let loss =
            SoftmaxCrossEntropy::forward_backward_any(logits, d.len, labels, dlogits, smoothing)?;
        if !loss.is_finite() {
            self.fwd_batch = 0;
            return Err(self.divergence(plan, b, loss));
        }
        self.run_backward(plan, passes, b, true, input_grad);
        self.finish_softmax(plan, b);
        self.fwd_batch = b;
        self.dx_batch = if input_grad { b } else { 0 };
        Ok(loss)
    }

    /// Why the loss of the training batch of `b` just run is `loss` (not
    /// finite): the first step, in forward order, whose output holds a NaN or
    /// an infinity, else the loss itself.
    fn divergence(&self, plan: &Plan, b: usize, loss: f32) -> Error {
        let found = plan.steps.iter().find_map(|s| {
            // A fused softmax's output is written after the loss: its logits.
            let d = plan.buffers[if s.fused_softmax {
                plan.logits
            } else {
                s.output
            }];
            let bad = |v: &[f32]| v.iter().find(|v| !v.is_finite()).copied();
            let found = match d.place {
                // A concat input written in place: its channels of each cell.
                Some(p) => {
                    let c = plan.buffers[p.buffer];
                    let width = d.len / (c.len / p.stride);
                    rows(&self.acts, self.cap, c.offset, c.len, b)
                        .chunks_exact(p.stride)
                        .find_map(|cell| bad(&cell[p.at..p.at + width]))
                }
                None => bad(rows(&self.acts, self.cap, d.offset, d.len, b)),
            };
            found.map(|v| (s, v))
        });
        let (culprit, value) = match found {
            Some((s, v)) => (
                Culprit::Output {
                    index: s.index,
                    statement: s.id,
                    join: matches!(s.layer, LayerSpec::Join(_)),
                },
                v,
            ),
            None => (Culprit::Loss, loss),
        };
        Error::Diverged(Divergence::new(culprit, value, loss))
    }

    /// Applies the softmax that the training forward pass left out, so that the
    /// output buffer holds this step's probabilities ([`State::last_output`]).
    fn finish_softmax(&mut self, plan: &Plan, b: usize) {
        let Some(last) = plan.steps.last() else {
            return;
        };
        if !last.fused_softmax {
            return;
        }
        let ch = last.layer.channels();
        let (inp, out) = (plan.buffers[last.input], plan.buffers[last.output]);
        // The plan lays buffers out in step order: the input comes first.
        assert!(inp.offset < out.offset, "softmax input after its output");
        let (lo, hi) = self.acts.split_at_mut(self.cap * out.offset);
        let x = &lo[self.cap * inp.offset..][..b * inp.len];
        crate::ops::activation::activation_forward(
            Activation::Softmax,
            ch,
            x,
            &mut hi[..b * out.len],
        );
    }

    /// One training step: forward, loss, backward and one optimizer update of
    /// every trainable tensor (slot = its position in the plan). Returns the
    /// batch's mean loss.
    pub fn train_step<O: Optimizer + ?Sized>(
        &mut self,
        plan: &Plan,
        passes: Passes,
        x: ArrayView4<'_, f32>,
        labels: &[usize],
        opt: &mut O,
    ) -> Result<f32> {
        let loss = self.ce(plan, passes, x, labels, false)?;
        // A NaN or an infinity in a gradient would spoil every weight it
        // reaches: stop before the update (a scan costs far less than the step).
        if let Some((tensor, statement, value)) = non_finite(plan, &self.grads) {
            return Err(Error::Diverged(Divergence::new(
                Culprit::Gradient { tensor, statement },
                value,
                loss,
            )));
        }
        if let Some(c) = self.step_options.clip_norm {
            clip(plan, &mut self.grads, c);
        }
        opt.begin_step();
        self.prepared.invalidate();
        for (slot, t) in plan.tensors.iter().enumerate() {
            if t.trainable {
                let r = t.offset..t.offset + t.len;
                opt.update(slot, &mut self.params[r.clone()], &self.grads[r]);
            }
        }
        // Finite gradients times too large a rate can still overflow: say so
        // now, before a checkpoint would keep such weights.
        if let Some((tensor, statement, value)) = non_finite(plan, &self.params) {
            return Err(Error::Diverged(Divergence::new(
                Culprit::Update { tensor, statement },
                value,
                loss,
            )));
        }
        Ok(loss)
    }

    /// Forward, loss and backward without an update, the input gradient
    /// included; returns the loss.
    pub fn loss_and_grads(
        &mut self,
        plan: &Plan,
        passes: Passes,
        x: ArrayView4<'_, f32>,
        labels: &[usize],
    ) -> Result<f32> {
        self.ce(plan, passes, x, labels, true)
    }

    fn tensors<'s>(&'s self, plan: &'s Plan, values: &'s [f32]) -> Vec<Param<'s>> {
        plan.tensors
            .iter()
            .map(|t| Param {
                name: t.name.to_string(),
                shape: t.shape.to_vec(),
                data: &values[t.offset..t.offset + t.len],
            })
            .collect()
    }

    /// The parameters, in plan order.
    pub fn params<'s>(&'s self, plan: &'s Plan) -> Vec<Param<'s>> {
        self.tensors(plan, &self.params)
    }

    /// The parameter gradients of the last backward pass, named and ordered as
    /// [`State::params`].
    pub fn grads<'s>(&'s self, plan: &'s Plan) -> Vec<Param<'s>> {
        self.tensors(plan, &self.grads)
    }

    /// The parameters, writable (loading weights); forgets the last forward pass.
    pub fn params_mut<'s>(&'s mut self, plan: &'s Plan) -> Vec<ParamMut<'s>> {
        self.invalidate();
        self.prepared.invalidate();
        let mut rest: &mut [f32] = &mut self.params;
        let mut at = 0;
        let mut v = Vec::with_capacity(plan.tensors.len());
        for t in plan.tensors.iter() {
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(t.offset - at);
            let (data, tail) = tail.split_at_mut(t.len);
            rest = tail;
            at = t.offset + t.len;
            v.push(ParamMut {
                name: t.name.to_string(),
                shape: t.shape.to_vec(),
                data,
            });
        }
        v
    }

    /// dL/dx of the last [`State::backward`], one flattened row per sample.
    pub fn input_grad(&self, plan: &Plan) -> Result<ArrayView2<'_, f32>> {
        let b = self.dx_batch;
        if b == 0 {
            return Err(Error::Invalid(
                "no input gradient: call backward after a forward pass".into(),
            ));
        }
        let n = plan.input_len();
        ArrayView2::from_shape((b, n), &self.dacts[..b * n])
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Post-activation output of the layer with statement index `i` from the
    /// last forward pass, one flattened row per sample.
    pub fn layer_output(&self, plan: &Plan, i: usize) -> Result<ArrayView2<'_, f32>> {
        let s = plan
            .step_of(i)
            .ok_or_else(|| Error::Invalid(format!("no layer {i}")))?;
        if self.fwd_mode.fold && !plan.predict_keeps(s.output) {
            return Err(Error::Invalid(format!(
                "layer {i}: predict folded the batchnorm or activation after it into it and kept no output of its own; run forward for every layer's output"
            )));
        }
        Ok(self.buffer(plan, s.output, self.fwd_batch))
    }

    /// The output of the latest forward pass (training's included).
    pub fn last_output(&self, plan: &Plan) -> Option<ArrayView2<'_, f32>> {
        (self.fwd_batch > 0).then(|| self.buffer(plan, plan.output_buffer(), self.fwd_batch))
    }

    /// The logits of the last forward pass (the final softmax's input), when
    /// the model ends in softmax.
    pub fn logits(&self, plan: &Plan) -> Option<ArrayView2<'_, f32>> {
        (plan.ends_in_softmax && self.fwd_batch > 0)
            .then(|| self.buffer(plan, plan.logits, self.fwd_batch))
    }
}
