//! The [`Model`] trait: the model API (forward, backward, gradients, layer
//! outputs, parameters) and what `fit`, `evaluate`, `predict` and the weight
//! files need, implemented alike by generated models and the interpreter (both
//! by delegating to the executor, [`crate::exec::State`]).

use crate::optim::Optimizer;
use crate::{Error, Result};
use ndarray::{ArrayView2, ArrayView4, ArrayViewD};

/// One parameter tensor of a model, in Keras layout.
pub struct Param<'a> {
    /// `layer{i}.kernel`, `layer{i}.bias`, `layer{i}.gamma`, ...
    pub name: String,
    pub shape: Vec<usize>,
    pub data: &'a [f32],
}

/// One parameter tensor, writable (for loading weights).
pub struct ParamMut<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: &'a mut [f32],
}

/// How a training step treats its loss and gradients, beyond the optimizer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepOptions {
    /// Keras's `label_smoothing`, in [0, 1): the targets are
    /// `1 - s + s / K` for the label and `s / K` for the other classes.
    pub label_smoothing: f32,
    /// Keras's `clipnorm`: each gradient tensor is scaled down to this L2
    /// norm when its norm is larger.
    pub clip_norm: Option<f32>,
}

/// A trainable sequential network with a fixed per-sample input shape.
///
/// Buffers live inside the model, so the forward output is a view into it and a
/// training step in steady state allocates nothing.
pub trait Model {
    /// `[H, W, C]` of one input sample.
    fn input_shape(&self) -> [usize; 3];
    /// Dimensions of one output sample: `[N]` or `[H, W, C]`.
    fn output_shape(&self) -> Vec<usize>;
    /// Whether the last layer applies softmax (its output is then probabilities,
    /// and the cross-entropy is fused with it).
    fn ends_in_softmax(&self) -> bool;
    /// Forward pass on a batch; the output, one row per sample (flattened), is a
    /// view of the model's own buffer.
    fn forward_batch(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>>;
    /// Inference for predictions only (`predict`, `evaluate`): as
    /// [`Model::forward_batch`], but a model may fold each batchnorm into the
    /// layer before it and keep only the output (no layer outputs, no
    /// backward after it). The default runs `forward_batch`.
    fn predict_batch(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        self.forward_batch(x)
    }
    /// Forward pass in training mode (Keras's `model(x, training=True)`):
    /// batchnorm uses the batch's statistics and updates its moving ones,
    /// dropout drops. A following [`Model::backward`] differentiates this pass.
    fn forward_train_batch(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        let _ = x;
        Err(unsupported("forward_train_batch"))
    }
    /// One step: forward, mean softmax cross-entropy against `labels`, backward,
    /// and one optimizer update. Returns the mean loss of the batch.
    fn train_batch(
        &mut self,
        x: ArrayView4<'_, f32>,
        labels: &[usize],
        opt: &mut dyn Optimizer,
    ) -> Result<f32>;
    /// The output of the most recent forward pass (the one inside
    /// [`Model::train_batch`] included), one row per sample, when the model keeps
    /// it. `fit` scores training accuracy from it; without it (the default) `fit`
    /// needs a second forward pass per step.
    fn last_output(&self) -> Option<ArrayView2<'_, f32>> {
        None
    }
    /// The parameters and the non-trainable state (batchnorm's moving
    /// statistics), in layer order and Keras's order within a layer.
    fn params(&self) -> Vec<Param<'_>>;
    /// The parameters, writable.
    fn params_mut(&mut self) -> Vec<ParamMut<'_>>;
    /// Backward pass from `dy` = dL/d(output) (post-activation, batch first,
    /// shaped like the output or flattened per sample), after a forward pass on
    /// the same batch. Parameter gradients are overwritten (see
    /// [`Model::grads`]); the input gradient is kept ([`Model::input_grad`]).
    fn backward(&mut self, dy: ArrayViewD<'_, f32>) -> Result<()> {
        let _ = dy;
        Err(unsupported("backward"))
    }
    /// Parameter gradients of the last backward pass or training step, named
    /// and ordered as [`Model::params`] (empty for a model that keeps none).
    fn grads(&self) -> Vec<Param<'_>> {
        Vec::new()
    }
    /// dL/dx of the last [`Model::backward`], one flattened row per sample.
    fn input_grad(&self) -> Result<ArrayView2<'_, f32>> {
        Err(unsupported("input_grad"))
    }
    /// Training-mode passes run so far: with the model's seed, what numbers
    /// dropout's masks. A checkpoint saves it so that a resumed run draws the
    /// masks the uninterrupted run would. The default (a model without
    /// random layers): 0.
    fn training_passes(&self) -> u64 {
        0
    }
    /// Sets how [`Model::train_batch`] treats the loss and the gradients. The
    /// default takes only the plain step.
    fn set_step_options(&mut self, options: StepOptions) -> Result<()> {
        match options == StepOptions::default() {
            true => Ok(()),
            false => Err(unsupported("label smoothing and gradient clipping")),
        }
    }
    /// Sets the count of [`Model::training_passes`] (a resumed run).
    fn set_training_passes(&mut self, passes: u64) {
        let _ = passes;
    }
    /// Post-activation output of layer `i` (0-based statement after `input`)
    /// from the last forward pass, one flattened row per sample.
    fn layer_output(&self, i: usize) -> Result<ArrayView2<'_, f32>> {
        let _ = i;
        Err(unsupported("layer_output"))
    }
}

fn unsupported(what: &str) -> Error {
    Error::Invalid(format!("this model does not provide {what}"))
}
