//! One batch part's view of a model's buffers: the slices a step reads and
//! writes for the part's samples.
//!
//! A batch is cut into parts of consecutive samples; each part runs every step
//! on its own samples (on its own core when the plan splits batches). All
//! buffers of a model live in one sample-major arena per kind (activations,
//! their gradients, pre-activation scratch, pool choices), so a part's rows of
//! a buffer are one contiguous range, disjoint from every other part's.

use std::marker::PhantomData;

use cnn_plan::{Plan, Step};

use super::prepared::{Prepared, Weights};
use crate::ops::conv2d::grouped::GroupedScratch;
use crate::ops::conv2d::{Conv2dScratch, PackedConv};

/// Whether a pass runs in training mode (batchnorm's batch statistics,
/// dropout's masks) and the seed of this pass's dropout masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    pub train: bool,
    pub seed: u64,
    /// An inference pass that folds each batchnorm into the layer before it
    /// ([`cnn_plan::Step::fold`]): that layer's own output is not written.
    pub fold: bool,
}

/// Reusable buffers of one batch part's kernels; grow on demand, never shrink.
#[derive(Default)]
pub struct Scratch {
    pub conv: Conv2dScratch,
    pub grouped: GroupedScratch,
    /// Batchnorm's f64 channel sums (batch moments, backward sums).
    pub bn_sums: Vec<f64>,
    /// Batchnorm's per-channel scale and shift in inference.
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    /// dL/d(input) of a step whose input is also read by a later step: the
    /// step writes it here, then it is added to the input's gradient.
    pub dx_sum: Vec<f32>,
}

/// Raw pointers to a model's arenas for the duration of one run of parts.
///
/// Built by [`super::State`] from its vectors while it is mutably borrowed, so
/// nothing else touches them until the run ends.
pub(super) struct Arenas {
    pub acts: *mut f32,
    pub acts_len: usize,
    pub cap: usize,
    pub dacts: *mut f32,
    pub dacts_len: usize,
    pub grad_cap: usize,
    pub dz: *mut f32,
    pub dz_len: usize,
    pub argmax: *mut u32,
    pub argmax_len: usize,
    pub params: *const f32,
    pub params_len: usize,
    /// Gradients written by part 0 (the model's own).
    pub grads: *mut f32,
    /// Private gradients of parts 1.. (`param_total` values each).
    pub gpart: *mut f32,
    pub gpart_len: usize,
    pub scratch: *mut Scratch,
    pub scratch_len: usize,
    /// The weights prepared for a folded inference pass (`None` otherwise).
    pub prepared: Option<*const Prepared>,
    /// Batchnorm batch statistics (one copy: batchnorm plans never split).
    pub stats: *mut f32,
    pub stats_len: usize,
    /// Whether the gradient arenas are in use (a backward run).
    pub grad: bool,
    pub mode: Mode,
}

// SAFETY: the pointers are only dereferenced through `Part`, and the executor
// gives every concurrently running part a disjoint range of samples (disjoint
// rows of every arena), its own scratch and its own gradient vector; the
// parameters and prepared weights are only read while parts run; the batch
// statistics exist only
// in plans that run one part.
unsafe impl Sync for Arenas {}

/// The samples `start..start + batch` of one run, with access to the slices
/// every step needs. Only the executor creates parts, one per sample range, so
/// two live parts never overlap; each accessor borrows the part mutably, so
/// one part hands out one step's slices at a time.
pub struct Part<'a> {
    plan: &'a Plan,
    arenas: &'a Arenas,
    start: usize,
    batch: usize,
    index: usize,
    _state: PhantomData<&'a mut ()>,
}

/// The slices of a forward step.
pub struct Fwd<'p> {
    /// Samples in this part.
    pub b: usize,
    /// Index of the part's first sample in the batch (dropout masks).
    pub first: usize,
    pub x: &'p [f32],
    pub y: &'p mut [f32],
    /// With a stride, `y` is the step's channels of a concat's output,
    /// written in place: cells `stride` apart (see [`cnn_plan::Place`]).
    pub y_stride: Option<usize>,
    /// The step's tensors in plan order (kernel, bias; gamma, beta, moving
    /// mean, moving variance; ...), empty past the last.
    pub tensors: [&'p [f32]; 4],
    /// Max/min-pool choices of this step (empty for other layers).
    pub argmax: &'p mut [u32],
    /// A batchnorm's batch statistics (empty for other layers).
    pub stats: &'p mut [f32],
    pub scratch: &'p mut Scratch,
    pub mode: Mode,
    /// A conv's kernel and bias packed for this pass (a folded inference
    /// pass's prepared weights), to use instead of `tensors`.
    pub packed: Option<&'p PackedConv>,
}

/// The slices of a backward step.
pub struct Bwd<'p> {
    pub b: usize,
    /// As [`Fwd::first`].
    pub first: usize,
    pub x: &'p [f32],
    pub y: &'p [f32],
    /// As [`Fwd::y_stride`] (dL/d(output) is always the step's own).
    pub y_stride: Option<usize>,
    /// dL/d(output) of the step.
    pub dy: &'p [f32],
    /// dL/d(input) of the step, written by it.
    pub dx: &'p mut [f32],
    /// Scratch for dL/d(pre-activation), as long as the output.
    pub dz: &'p mut [f32],
    /// As [`Fwd::tensors`].
    pub tensors: [&'p [f32]; 4],
    /// Gradients of the step's first two tensors (the trainable ones come
    /// first: kernel and bias, or gamma and beta).
    pub dkernel: &'p mut [f32],
    pub dbias: &'p mut [f32],
    pub argmax: &'p [u32],
    /// As [`Fwd::stats`].
    pub stats: &'p [f32],
    pub scratch: &'p mut Scratch,
    pub mode: Mode,
}

/// `len` values from `base + offset`, checked against the arena's length.
///
/// # Safety
/// `base` must point to an allocation of `total` values, and no other live
/// reference may overlap the range.
#[allow(clippy::mut_from_ref)]
unsafe fn rows<'r, T>(base: *mut T, total: usize, offset: usize, len: usize) -> &'r mut [T] {
    assert!(
        offset.checked_add(len).is_some_and(|end| end <= total),
        "part slice out of bounds"
    );
    if len == 0 {
        return &mut [];
    }
    // SAFETY: in bounds (checked above); exclusivity is the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(base.add(offset), len) }
}

impl<'a> Part<'a> {
    pub(super) fn new(
        plan: &'a Plan,
        arenas: &'a Arenas,
        index: usize,
        samples: std::ops::Range<usize>,
    ) -> Self {
        Part {
            plan,
            arenas,
            start: samples.start,
            batch: samples.len(),
            index,
            _state: PhantomData,
        }
    }

    /// Number of samples in this part.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The plan the part runs.
    pub fn plan(&self) -> &'a Plan {
        self.plan
    }

    /// The mode of the pass.
    pub fn mode(&self) -> Mode {
        self.arenas.mode
    }

    /// This part's rows of activation buffer `buf`.
    ///
    /// # Safety
    /// No other live slice of this part may cover the same buffer mutably.
    unsafe fn act(&self, buf: usize) -> &'a mut [f32] {
        let b = self.plan.buffers[buf];
        let a = self.arenas;
        let at = a.cap * b.offset + self.start * b.len;
        // SAFETY: parts cover disjoint samples; the caller keeps buffers apart.
        unsafe { rows(a.acts, a.acts_len, at, self.batch * b.len) }
    }

    /// Where this part's values of buffer `buf` are: its own rows, or, for a
    /// concat input written in place, the concat's rows from the input's
    /// first channel, with the concat's cell stride.
    ///
    /// # Safety
    /// As [`Self::act`], for the concat's buffer too.
    unsafe fn out(&self, buf: usize) -> (&'a mut [f32], Option<usize>) {
        match self.plan.buffers[buf].place {
            // SAFETY: the caller's contract.
            Some(p) => (unsafe { &mut self.act(p.buffer)[p.at..] }, Some(p.stride)),
            // SAFETY: the caller's contract.
            None => (unsafe { self.act(buf) }, None),
        }
    }

    /// This part's rows of gradient buffer `buf`.
    ///
    /// # Safety
    /// As [`Self::act`].
    unsafe fn dact(&self, buf: usize) -> &'a mut [f32] {
        let b = self.plan.buffers[buf];
        let a = self.arenas;
        assert!(a.grad, "gradient buffers outside a backward run");
        let at = a.grad_cap * b.offset + self.start * b.len;
        // SAFETY: as in `act`.
        unsafe { rows(a.dacts, a.dacts_len, at, self.batch * b.len) }
    }

    fn tensor(&self, step: &Step, k: usize) -> (usize, usize) {
        let (first, end) = step.tensors;
        if first + k < end {
            let t = &self.plan.tensors[first + k];
            (t.offset, t.len)
        } else {
            (0, 0)
        }
    }

    /// A parameter tensor of the step (read-only: nothing writes parameters
    /// while parts run).
    fn param(&self, step: &Step, k: usize) -> &'a [f32] {
        let (off, len) = self.tensor(step, k);
        let a = self.arenas;
        // SAFETY: parameters are only read while parts run.
        unsafe { rows(a.params as *mut f32, a.params_len, off, len) }
    }

    /// # Safety
    /// No other live slice of this part may cover the same gradient tensor.
    unsafe fn grad(&self, step: &Step, k: usize) -> &'a mut [f32] {
        let (off, len) = self.tensor(step, k);
        let a = self.arenas;
        let total = self.plan.param_total;
        if self.index == 0 {
            // SAFETY: part 0 alone writes the model's gradients.
            unsafe { rows(a.grads, total, off, len) }
        } else {
            // SAFETY: part t writes only its own private copy.
            unsafe { rows(a.gpart, a.gpart_len, (self.index - 1) * total + off, len) }
        }
    }

    /// # Safety
    /// No other live slice of this part may cover this step's choices.
    unsafe fn argmax(&self, step: &Step) -> &'a mut [u32] {
        if !matches!(step.layer, cnn_plan::LayerSpec::Pool2d(p) if p.kind != cnn_plan::PoolKind::Avg)
        {
            return &mut [];
        }
        let n = self.plan.buffers[step.output].len;
        let a = self.arenas;
        let at = a.cap * step.argmax + self.start * n;
        // SAFETY: each step has its own argmax region, parts own their rows,
        // and the caller keeps one slice of them alive.
        unsafe { rows(a.argmax, a.argmax_len, at, self.batch * n) }
    }

    /// A batchnorm step's batch statistics.
    ///
    /// # Safety
    /// No other live slice of this step's statistics may exist.
    unsafe fn stats(&self, step: &Step) -> &'a mut [f32] {
        let cnn_plan::LayerSpec::BatchNorm(b) = step.layer else {
            return &mut [];
        };
        assert!(!self.plan.split, "batch statistics in a split plan");
        let a = self.arenas;
        // SAFETY: one part runs (the plan does not split); each step has its
        // own region, and the caller keeps one slice of it alive.
        unsafe { rows(a.stats, a.stats_len, step.stats, 2 * b.c) }
    }

    /// The parameter tensors of `step`, as [`Fwd::tensors`] (read-only).
    pub(super) fn params(&self, step: &Step) -> [&'a [f32]; 4] {
        [0, 1, 2, 3].map(|k| self.param(step, k))
    }

    /// # Safety
    /// No other live reference to this part's scratch may exist.
    unsafe fn scratch(&self) -> &'a mut Scratch {
        let a = self.arenas;
        // SAFETY: one scratch per part index (bounds checked in `rows`), and the
        // caller keeps one reference to it alive.
        unsafe { &mut rows(a.scratch, a.scratch_len, self.index, 1)[0] }
    }

    /// The slices of `step`'s forward pass.
    ///
    /// # Panics
    /// When the step reads and writes one buffer (`flatten`, which has no work).
    pub fn fwd(&mut self, step: &Step) -> Fwd<'_> {
        self.fwd_to(step, step.output)
    }

    /// The slices of `step`'s forward pass writing buffer `output` instead of
    /// its own (a folded batchnorm's output).
    ///
    /// # Panics
    /// When `output` is the step's input.
    pub fn fwd_to(&mut self, step: &Step, output: usize) -> Fwd<'_> {
        assert_ne!(step.input, output, "a step writing its own input");
        // SAFETY: input and output are distinct buffers (a placed output is
        // in a concat's, which comes after the input), and `&mut self` keeps
        // this part's slices to one step at a time.
        unsafe {
            let (y, y_stride) = self.out(output);
            Fwd {
                b: self.batch,
                first: self.start,
                x: self.act(step.input),
                y,
                y_stride,
                tensors: self.params(step),
                argmax: self.argmax(step),
                stats: self.stats(step),
                scratch: self.scratch(),
                mode: self.arenas.mode,
                packed: self.prepared(step).filter(|w| w.packed).map(|w| &w.conv),
            }
        }
    }

    /// The weights a folded inference pass prepared for `step` (`None` in
    /// other passes and for steps without weights).
    pub(super) fn prepared(&self, step: &Step) -> Option<&'a Weights> {
        // SAFETY: the state's prepared weights outlive the run and are not
        // written while parts run (see `Arenas`).
        let p: &'a Prepared = unsafe { &*self.arenas.prepared? };
        p.get(step)
    }

    /// Forward slices of input `k` of a join step: that input's rows and the
    /// rows of buffer `output` (the join's own, or a fused activation's).
    ///
    /// # Panics
    /// When the step has no input `k`, or `output` is that input.
    pub fn join_fwd(&mut self, step: &Step, k: usize, output: usize) -> (&[f32], &mut [f32]) {
        let (first, end) = step.operands;
        assert!(first + k < end, "a join without input {k}");
        let o = self.plan.operands[first + k];
        assert_ne!(o.buffer, output, "a join writing its own input");
        // SAFETY: the input and the output are distinct buffers, and `&mut
        // self` keeps this part's slices to one step at a time.
        unsafe { (self.act(o.buffer), self.act(output)) }
    }

    /// Forward slices of the first two inputs of a join step and of buffer
    /// `output` (as [`Self::join_fwd`]): a sum's first pass adds them.
    ///
    /// # Panics
    /// When the step has fewer than two inputs, or `output` is one of them.
    pub fn join_fwd_pair(&mut self, step: &Step, output: usize) -> (&[f32], &[f32], &mut [f32]) {
        let (first, end) = step.operands;
        assert!(first + 2 <= end, "a join without two inputs");
        let [a, b] = [0, 1].map(|k| self.plan.operands[first + k].buffer);
        assert!(a != output && b != output, "a join writing its own input");
        // SAFETY: the output is neither input (the inputs are only read, and
        // may be one buffer), and `&mut self` keeps this part's slices to one
        // step at a time.
        unsafe { (self.act(a), self.act(b), self.act(output)) }
    }

    /// Backward slices of input `k` of a join step: dL/d(output), and the
    /// gradient buffer of that input with whether to add to it (see
    /// [`cnn_plan::Operand::accumulate`]).
    ///
    /// # Panics
    /// As [`Self::join_fwd`], and outside a backward run.
    pub fn join_bwd(&mut self, step: &Step, k: usize) -> (&[f32], &mut [f32], bool) {
        let (first, end) = step.operands;
        assert!(first + k < end, "a join without input {k}");
        let o = self.plan.operands[first + k];
        assert_ne!(o.buffer, step.output, "a join writing its own input");
        // SAFETY: as in `join_fwd`, on the gradient buffers.
        unsafe { (self.dact(step.output), self.dact(o.buffer), o.accumulate) }
    }

    /// The slices of `step`'s backward pass.
    ///
    /// # Panics
    /// As [`Self::fwd`], and outside a backward run.
    pub fn bwd(&mut self, step: &Step) -> Bwd<'_> {
        assert_ne!(step.input, step.output, "a step writing its own input");
        let n = self.plan.buffers[step.output].len;
        let a = self.arenas;
        let dz_at = self.start * self.plan.dz_len;
        let dz_len = if self.plan.dz_len >= n {
            self.batch * n
        } else {
            0
        };
        // SAFETY: as in `fwd`; the gradient buffers of input and output are
        // distinct too, and this part's dz rows are its own.
        unsafe {
            let (y, y_stride) = self.out(step.output);
            Bwd {
                b: self.batch,
                first: self.start,
                x: self.act(step.input),
                y,
                y_stride,
                dy: self.dact(step.output),
                dx: self.dact(step.input),
                dz: rows(a.dz, a.dz_len, dz_at, dz_len),
                tensors: self.params(step),
                dkernel: self.grad(step, 0),
                dbias: self.grad(step, 1),
                argmax: self.argmax(step),
                stats: self.stats(step),
                scratch: self.scratch(),
                mode: a.mode,
            }
        }
    }
}
