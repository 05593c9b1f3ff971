//! The interpreter: a [`Plan`] and its [`State`], walked step by step. It runs
//! a checked model without generated code (the CLI's way), through the same
//! executor as generated code, so the two agree bit for bit wherever the plan
//! picks the same kernels.
//!
//! Buffers are sized for the batch on first use and reused; a training step in
//! steady state performs no allocation (checked by `tests/alloc_interp.rs`).

use ndarray::{ArrayView2, ArrayView4, ArrayViewD};

use crate::exec::{Passes, State};
use crate::model::{Model, Param, ParamMut};
use crate::optim::Optimizer;
use crate::{Error, LayerSpec, Plan, Result};

/// A model run by interpretation of its plan.
pub struct Sequential {
    plan: Plan,
    state: State,
}

impl Sequential {
    /// Builds the plan of a chain of layers (named `layer{i}` by position) and
    /// initialises its parameters (Glorot-uniform kernels, zero biases) from
    /// `seed`, in layer order.
    ///
    /// Errors when the specs do not chain (a layer's input size differs from the
    /// previous output), or a size is zero or absurdly large.
    pub fn new(input: [usize; 3], layers: Vec<LayerSpec>, seed: u64) -> Result<Sequential> {
        let plan = Plan::sequential(input, &layers).map_err(Error::Invalid)?;
        Ok(Self::from_plan(plan, seed))
    }

    /// An interpreter of `plan`, its parameters initialised from `seed`.
    pub fn from_plan(plan: Plan, seed: u64) -> Sequential {
        let state = State::new(&plan, seed);
        Sequential { plan, state }
    }

    /// The plan this interpreter runs.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Forward pass on a batch; the output, one row per sample, is a view of the
    /// model's own buffer. Same as [`Model::forward_batch`].
    pub fn forward(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        self.state.forward(&self.plan, Passes::WALK, x)
    }

    /// Inference for predictions, each batchnorm folded into the layer before
    /// it; only the output is kept. Same as [`Model::predict_batch`]; see
    /// [`crate::exec::State::predict`].
    pub fn predict(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        self.state.predict(&self.plan, Passes::WALK, x)
    }

    /// Backward pass from `dy = dL/d(output)` (post-activation), after a forward
    /// pass on the same batch; the gradients stay inside ([`Model::grads`],
    /// [`Model::input_grad`]).
    pub fn backward(&mut self, dy: ArrayView2<'_, f32>) -> Result<()> {
        Model::backward(self, dy.into_dyn())
    }

    /// The pre-softmax values of the last layer from the last forward pass, when
    /// the model ends in softmax.
    pub fn logits(&self) -> Option<ArrayView2<'_, f32>> {
        self.state.logits(&self.plan)
    }

    /// Number of layers (statements after `input`).
    pub fn num_layers(&self) -> usize {
        self.plan.steps.last().map_or(0, |s| s.index + 1)
    }

    /// Forward, mean softmax cross-entropy and backward, without an update.
    /// Returns the loss; the gradients are then in [`Model::grads`] and
    /// [`Model::input_grad`].
    pub fn loss_and_grads(&mut self, x: ArrayView4<'_, f32>, labels: &[usize]) -> Result<f32> {
        self.state
            .loss_and_grads(&self.plan, Passes::WALK, x, labels)
    }
}

impl Model for Sequential {
    fn input_shape(&self) -> [usize; 3] {
        self.plan.input
    }

    fn output_shape(&self) -> Vec<usize> {
        self.plan.output_shape.to_vec()
    }

    fn ends_in_softmax(&self) -> bool {
        self.plan.ends_in_softmax
    }

    fn forward_batch(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        self.forward(x)
    }

    fn predict_batch(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        self.predict(x)
    }

    fn forward_train_batch(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        self.state.forward_train(&self.plan, Passes::WALK, x)
    }

    /// The last layer's output from the latest forward pass (also the one inside
    /// `train_batch`), so that `fit` scores accuracy without a second pass.
    fn last_output(&self) -> Option<ArrayView2<'_, f32>> {
        self.state.last_output(&self.plan)
    }

    fn train_batch(
        &mut self,
        x: ArrayView4<'_, f32>,
        labels: &[usize],
        opt: &mut dyn Optimizer,
    ) -> Result<f32> {
        self.state
            .train_step(&self.plan, Passes::WALK, x, labels, opt)
    }

    fn params(&self) -> Vec<Param<'_>> {
        self.state.params(&self.plan)
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_>> {
        self.state.params_mut(&self.plan)
    }

    fn backward(&mut self, dy: ArrayViewD<'_, f32>) -> Result<()> {
        self.state
            .backward(&self.plan, Passes::WALK, dy.shape(), dy.iter().copied())
    }

    fn grads(&self) -> Vec<Param<'_>> {
        self.state.grads(&self.plan)
    }

    fn input_grad(&self) -> Result<ArrayView2<'_, f32>> {
        self.state.input_grad(&self.plan)
    }

    fn layer_output(&self, i: usize) -> Result<ArrayView2<'_, f32>> {
        self.state.layer_output(&self.plan, i)
    }

    fn set_step_options(&mut self, options: crate::model::StepOptions) -> Result<()> {
        self.state.set_step_options(options)
    }

    fn training_passes(&self) -> u64 {
        self.state.training_passes()
    }

    fn set_training_passes(&mut self, passes: u64) {
        self.state.set_training_passes(passes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::tiny_model;
    use crate::{Activation, DenseSpec};
    use ndarray::{Array2, Array4};

    struct Sgd;
    impl Optimizer for Sgd {
        fn begin_step(&mut self) {}
        fn update(&mut self, _: usize, p: &mut [f32], g: &[f32]) {
            for (p, g) in p.iter_mut().zip(g) {
                *p -= 0.1 * g;
            }
        }
        fn learning_rate(&self) -> f32 {
            0.1
        }
        // A fixed rate: these tests never run a schedule.
        fn set_learning_rate(&mut self, _: f32) {}
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let mut m = tiny_model();
        let x = Array4::<f32>::zeros((2, 2, 2, 1));
        assert!(
            m.backward(Array2::<f32>::zeros((2, 3)).view()).is_err(),
            "backward before forward"
        );
        assert!(matches!(
            m.forward(Array4::<f32>::zeros((2, 3, 2, 1)).view()),
            Err(Error::Shape { .. })
        ));
        assert!(matches!(
            m.train_batch(x.view(), &[0], &mut Sgd),
            Err(Error::Labels(_))
        ));
        assert!(matches!(
            m.train_batch(x.view(), &[0, 3], &mut Sgd),
            Err(Error::Labels(_))
        ));
        m.forward(x.view()).unwrap();
        assert!(matches!(
            m.backward(Array2::<f32>::zeros((2, 4)).view()),
            Err(Error::Shape { .. })
        ));
        // A NaN input: the first layer's output is the first non-finite one.
        let nan = Array4::from_elem((2, 2, 2, 1), f32::NAN);
        let e = m.train_batch(nan.view(), &[0, 1], &mut Sgd).unwrap_err();
        let Error::Diverged(d) = e else { panic!("{e}") };
        assert_eq!(
            d.culprit,
            crate::Culprit::Output {
                index: 0,
                statement: 0,
                join: false
            }
        );
        assert!(d.value.is_nan() && d.loss.is_nan());
        // Inconsistent specs are refused at construction.
        let bad = vec![LayerSpec::Dense {
            spec: DenseSpec {
                inputs: 5,
                units: 3,
            },
            act: Activation::Relu,
            bias: true,
        }];
        assert!(Sequential::new([2, 2, 1], bad, 0).is_err());
    }

    /// `dense 3; softmax` (a separate activation layer) gives the same loss and
    /// gradients as `dense 3 softmax`, and a model without softmax treats its
    /// output as logits.
    #[test]
    fn separate_softmax_layer_is_fused_like_a_dense_softmax() {
        let x =
            Array4::from_shape_vec((2, 2, 2, 1), vec![0.3, -1.0, 0.5, 2.0, 1.5, 0.1, -0.7, 0.2])
                .unwrap();
        let labels = [2, 0];
        let dense = |act| LayerSpec::Dense {
            spec: DenseSpec {
                inputs: 4,
                units: 3,
            },
            act,
            bias: true,
        };
        let mut a = Sequential::new(
            [2, 2, 1],
            vec![LayerSpec::Flatten { len: 4 }, dense(Activation::Softmax)],
            9,
        )
        .unwrap();
        let mut b = Sequential::new(
            [2, 2, 1],
            vec![
                LayerSpec::Flatten { len: 4 },
                dense(Activation::Linear),
                LayerSpec::Activation {
                    act: Activation::Softmax,
                    len: 3,
                    channels: 3,
                },
            ],
            9,
        )
        .unwrap();
        let mut c = Sequential::new(
            [2, 2, 1],
            vec![LayerSpec::Flatten { len: 4 }, dense(Activation::Linear)],
            9,
        )
        .unwrap();
        let la = a.loss_and_grads(x.view(), &labels).unwrap();
        let lb = b.loss_and_grads(x.view(), &labels).unwrap();
        let lc = c.loss_and_grads(x.view(), &labels).unwrap();
        assert!(
            (la - lb).abs() < 1e-6 && (la - lc).abs() < 1e-6,
            "{la} {lb} {lc}"
        );
        for m in [&b, &c] {
            for (p, q) in a.grads().iter().zip(m.grads().iter()) {
                assert_eq!(p.name, q.name);
                for (u, v) in p.data.iter().zip(q.data) {
                    assert!((u - v).abs() < 1e-6);
                }
            }
            for (u, v) in a
                .input_grad()
                .unwrap()
                .iter()
                .zip(m.input_grad().unwrap().iter())
            {
                assert!((u - v).abs() < 1e-6);
            }
        }
        assert!(b.ends_in_softmax() && !c.ends_in_softmax());
    }

    #[test]
    fn training_reduces_the_loss_and_params_are_named() {
        let mut m = tiny_model();
        let names: Vec<String> = m.params().iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, ["layer1.kernel", "layer1.bias"]);
        let x = Array4::from_shape_vec((2, 2, 2, 1), vec![1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
            .unwrap();
        let first = m.train_batch(x.view(), &[0, 2], &mut Sgd).unwrap();
        let mut last = first;
        for _ in 0..50 {
            last = m.train_batch(x.view(), &[0, 2], &mut Sgd).unwrap();
        }
        assert!(last < 0.5 * first, "{first} -> {last}");
        assert_eq!(m.output_shape(), vec![3]);
        assert!(m.ends_in_softmax());
    }
}
