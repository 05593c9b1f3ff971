//! Weights prepared once for inference (`predict`): each batchnorm folded into
//! the layer before it ([`cnn_plan::Step::fold`]) and each conv's kernel
//! packed for its forward pass, kept until the parameters change. Done on
//! every call, these were two passes over all weights per image: about a third
//! of ResNet-50's batch-1 latency in a profile.

use cnn_plan::{LayerSpec, Plan, Step};

use super::step::batchnorm_tensors;
use crate::ops::batchnorm;
use crate::ops::conv2d::{conv2d_pack, PackedConv};

/// One layer's prepared weights.
#[derive(Default)]
pub(super) struct Weights {
    /// The kernel and bias with the batchnorm after the layer folded in
    /// (when [`Weights::folded`]).
    pub kernel: Vec<f32>,
    pub bias: Vec<f32>,
    /// Whether `kernel` and `bias` hold folded values to use instead of the
    /// layer's own (not for a packed conv: its packed form has them).
    pub folded: bool,
    /// A conv's kernel and bias, folded when it folds a batchnorm, packed for
    /// the forward pass (when [`Weights::packed`]).
    pub conv: PackedConv,
    pub packed: bool,
}

/// The prepared weights of a model, by the index of each layer's first tensor
/// in the plan. Buffers are reused when the weights change, so a training loop
/// that predicts between steps allocates nothing in steady state.
#[derive(Default)]
pub(super) struct Prepared {
    layers: Vec<Weights>,
    valid: bool,
    scale: Vec<f32>,
    shift: Vec<f32>,
    kernel: Vec<f32>,
    bias: Vec<f32>,
}

/// The values of tensor `k` of `step` (empty past its last).
fn tensor<'p>(plan: &Plan, params: &'p [f32], step: &Step, k: usize) -> &'p [f32] {
    let t = step.tensors.0 + k;
    if t >= step.tensors.1 {
        return &[];
    }
    let t = &plan.tensors[t];
    &params[t.offset..t.offset + t.len]
}

impl Prepared {
    /// Forgets the prepared weights: the parameters changed.
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Prepares every layer's weights from `params`, unless they are current.
    pub fn ensure(&mut self, plan: &Plan, params: &[f32]) {
        if self.valid {
            return;
        }
        self.layers
            .resize_with(plan.tensors.len().max(self.layers.len()), Weights::default);
        for step in plan.steps.iter() {
            if step.tensors.0 == step.tensors.1 {
                continue;
            }
            let w = &mut self.layers[step.tensors.0];
            (w.folded, w.packed) = (false, false);
            let mut k = tensor(plan, params, step, 0);
            let mut b = tensor(plan, params, step, 1);
            if let Some(pos) = step.fold {
                let bn = &plan.steps[pos];
                let LayerSpec::BatchNorm(n) = bn.layer else {
                    unreachable!("a fold into a step that is not a batchnorm")
                };
                let t = [0, 1, 2, 3].map(|i| tensor(plan, params, bn, i));
                let (gamma, beta, mean, var) = batchnorm_tensors(&n, t);
                self.scale.resize(n.c, 0.0);
                self.shift.resize(n.c, 0.0);
                let (scale, shift) = (&mut self.scale, &mut self.shift);
                batchnorm::fold(n.epsilon.get(), gamma, beta, mean, var, scale, shift);
                let stride = step.layer.fold_stride().expect("a layer that folds");
                let into = (&mut self.kernel, &mut self.bias);
                batchnorm::fold_into(&self.scale, &self.shift, stride, (k, b), into);
                (k, b) = (&self.kernel, &self.bias);
            }
            if let LayerSpec::Conv2d {
                spec, groups: 1, ..
            } = step.layer
            {
                let bias = (!b.is_empty()).then_some(b);
                w.packed = conv2d_pack(&spec, k, bias, &mut w.conv);
            }
            if step.fold.is_some() && !w.packed {
                w.kernel.clear();
                w.kernel.extend_from_slice(k);
                w.bias.clear();
                w.bias.extend_from_slice(b);
                w.folded = true;
            }
        }
        self.valid = true;
    }

    /// The prepared weights of `step`, when they are current and it has any.
    pub fn get(&self, step: &Step) -> Option<&Weights> {
        let has = self.valid && step.tensors.0 < step.tensors.1;
        has.then(|| &self.layers[step.tensors.0])
    }
}
