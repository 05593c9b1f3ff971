//! The [`Model`] trait: what `fit`, `evaluate`, `predict` and the weight files
//! need from a model, implemented alike by generated models and the interpreter.

use crate::optim::Optimizer;
use crate::Result;
use ndarray::{ArrayView2, ArrayView4};

/// One parameter tensor of a model, in Keras layout.
pub struct Param<'a> {
    /// `layer{i}.kernel` or `layer{i}.bias`.
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
    /// The parameters, in layer order, kernel before bias.
    fn params(&self) -> Vec<Param<'_>>;
    /// The parameters, writable.
    fn params_mut(&mut self) -> Vec<ParamMut<'_>>;
}
