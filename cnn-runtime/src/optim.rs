//! Optimizers with Keras's defaults.

/// Updates parameters in place from their gradients.
///
/// Each parameter tensor has a stable `slot` number (its position in
/// [`crate::Model::params`]), so optimizers can keep per-tensor state; that state
/// is allocated on the first step and reused after.
pub trait Optimizer {
    /// Called once per training step, before the step's `update` calls.
    fn begin_step(&mut self);
    /// `param -= f(grad)` for one tensor.
    fn update(&mut self, slot: usize, param: &mut [f32], grad: &[f32]);
    /// The learning rate in use.
    fn learning_rate(&self) -> f32;
}
