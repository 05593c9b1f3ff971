//! An interpreter for a list of [`LayerSpec`]s: the runtime twin of generated code.
//!
//! It owns the parameters, their gradients, every layer's output and the scratch
//! buffers. Buffers are sized for the batch on first use and reused; they only
//! grow when a larger batch arrives, so a training step in steady state performs
//! no allocation (checked by `tests/alloc_interp.rs`).

use ndarray::{ArrayView2, ArrayView4};

use crate::init::{glorot_uniform, model_rng};
use crate::loss::SoftmaxCrossEntropy;
use crate::model::{Model, Param, ParamMut};
use crate::ops::{self, Conv2dScratch};
use crate::optim::Optimizer;
use crate::{Activation, Error, LayerSpec, PoolKind, Result};

struct Layer {
    spec: LayerSpec,
    /// Values per sample in and out.
    in_len: usize,
    out_len: usize,
    /// Per-sample output dims (`[N]` or `[H, W, C]`).
    out_shape: Vec<usize>,
    kernel: Vec<f32>,
    bias: Vec<f32>,
    dkernel: Vec<f32>,
    dbias: Vec<f32>,
    kernel_shape: Vec<usize>,
    kernel_name: String,
    bias_name: String,
    /// Output (post-activation), `cap * out_len`.
    out: Vec<f32>,
    argmax: Vec<u32>,
    scratch: Conv2dScratch,
}

impl Layer {
    fn has_params(&self) -> bool {
        matches!(
            self.spec,
            LayerSpec::Conv2d { .. } | LayerSpec::Dense { .. }
        )
    }
    fn act(&self) -> Activation {
        match self.spec {
            LayerSpec::Conv2d { act, .. }
            | LayerSpec::Dense { act, .. }
            | LayerSpec::Activation { act, .. } => act,
            _ => Activation::Linear,
        }
    }
    /// Length of the last axis (what softmax normalises over).
    fn channels(&self) -> usize {
        match self.spec {
            LayerSpec::Conv2d { spec, .. } => spec.out_c,
            LayerSpec::Dense { spec, .. } => spec.units,
            LayerSpec::Activation { channels, .. } => channels,
            LayerSpec::Pool2d(p) => p.c,
            LayerSpec::Flatten { len } => len,
        }
    }
}

/// A sequential model run by interpretation of its layer specs.
pub struct Sequential {
    input: [usize; 3],
    layers: Vec<Layer>,
    /// Batch of the last forward pass (0 = none yet).
    batch: usize,
    /// Batch the buffers are sized for.
    cap: usize,
    x: Vec<f32>,
    dx: Vec<f32>,
    /// Pre-softmax values of the last layer when it ends in softmax.
    logits: Vec<f32>,
    /// Gradient buffers (ping-pong for dL/d(output), and dL/d(pre-activation)).
    g: Vec<f32>,
    g2: Vec<f32>,
    z: Vec<f32>,
    max_len: usize,
    /// Whether `dx` holds the input gradient of the last backward pass.
    have_dx: bool,
    /// Whether the layer outputs belong to the loaded batch (a backward needs them).
    have_fwd: bool,
}

fn checked_len(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n <= (1usize << 40))
        .ok_or_else(|| Error::Invalid(format!("layer size {dims:?} is too large")))
}

fn shape_err(what: String) -> Error {
    Error::Invalid(format!("inconsistent layer specs: {what}"))
}

impl Sequential {
    /// Builds the model and initialises its parameters (Glorot-uniform kernels,
    /// zero biases) from `seed`, in layer order.
    ///
    /// Errors when the specs do not chain (a layer's input size differs from the
    /// previous output), or a size is zero or absurdly large.
    pub fn new(input: [usize; 3], layers: Vec<LayerSpec>, seed: u64) -> Result<Sequential> {
        let mut rng = model_rng(seed);
        let mut prev_len = checked_len(&input)?;
        let mut prev_shape = input.to_vec();
        if prev_len == 0 {
            return Err(shape_err(format!("input {input:?} is empty")));
        }
        if layers.is_empty() {
            return Err(shape_err("a model needs at least one layer".into()));
        }
        let mut out = Vec::with_capacity(layers.len());
        for (i, spec) in layers.into_iter().enumerate() {
            let (in_len, out_shape, kshape, bias_len) = match spec {
                LayerSpec::Conv2d { spec: s, .. } => {
                    if s.sh == 0 || s.sw == 0 || s.dh == 0 || s.dw == 0 || s.kh == 0 || s.kw == 0 {
                        return Err(shape_err(format!(
                            "layer {i}: zero kernel, stride or dilation"
                        )));
                    }
                    if prev_shape.len() != 3 || prev_shape != [s.in_h, s.in_w, s.in_c] {
                        return Err(shape_err(format!(
                            "layer {i}: conv expects {}x{}x{}, gets {prev_shape:?}",
                            s.in_h, s.in_w, s.in_c
                        )));
                    }
                    (
                        checked_len(&[s.in_h, s.in_w, s.in_c])?,
                        vec![s.out_h, s.out_w, s.out_c],
                        vec![s.kh, s.kw, s.in_c, s.out_c],
                        s.out_c,
                    )
                }
                LayerSpec::Pool2d(p) => {
                    if p.sh == 0 || p.sw == 0 || p.ph == 0 || p.pw == 0 {
                        return Err(shape_err(format!("layer {i}: zero pool window or stride")));
                    }
                    if prev_shape.len() != 3 || prev_shape != [p.in_h, p.in_w, p.c] {
                        return Err(shape_err(format!(
                            "layer {i}: pool expects {}x{}x{}, gets {prev_shape:?}",
                            p.in_h, p.in_w, p.c
                        )));
                    }
                    if checked_len(&[p.in_h, p.in_w, p.c])? > u32::MAX as usize {
                        return Err(shape_err(format!("layer {i}: pool input too large")));
                    }
                    (prev_len, vec![p.out_h, p.out_w, p.c], vec![], 0)
                }
                LayerSpec::Flatten { len } => {
                    if len != prev_len {
                        return Err(shape_err(format!(
                            "layer {i}: flatten of {len} values, gets {prev_len}"
                        )));
                    }
                    (prev_len, vec![len], vec![], 0)
                }
                LayerSpec::Dense { spec: d, .. } => {
                    if d.inputs != prev_len || prev_shape.len() != 1 {
                        return Err(shape_err(format!(
                            "layer {i}: dense expects a vector of {}, gets {prev_shape:?}",
                            d.inputs
                        )));
                    }
                    (prev_len, vec![d.units], vec![d.inputs, d.units], d.units)
                }
                LayerSpec::Activation { len, channels, .. } => {
                    if len != prev_len || channels == 0 || len % channels != 0 {
                        return Err(shape_err(format!("layer {i}: activation over {len} values ({channels} channels), gets {prev_len}")));
                    }
                    (prev_len, prev_shape.clone(), vec![], 0)
                }
            };
            let out_len = checked_len(&out_shape)?;
            if out_len == 0 {
                return Err(shape_err(format!("layer {i}: empty output {out_shape:?}")));
            }
            let klen = if kshape.is_empty() {
                0
            } else {
                checked_len(&kshape)?
            };
            let mut kernel = vec![0f32; klen];
            if let LayerSpec::Conv2d { spec: s, .. } = spec {
                glorot_uniform(
                    &mut rng,
                    s.kh * s.kw * s.in_c,
                    s.kh * s.kw * s.out_c,
                    &mut kernel,
                );
            } else if let LayerSpec::Dense { spec: d, .. } = spec {
                glorot_uniform(&mut rng, d.inputs, d.units, &mut kernel);
            }
            out.push(Layer {
                spec,
                in_len,
                out_len,
                out_shape: out_shape.clone(),
                dkernel: vec![0f32; klen],
                kernel,
                bias: vec![0f32; bias_len],
                dbias: vec![0f32; bias_len],
                kernel_shape: kshape,
                kernel_name: format!("layer{i}.kernel"),
                bias_name: format!("layer{i}.bias"),
                out: Vec::new(),
                argmax: Vec::new(),
                scratch: Conv2dScratch::default(),
            });
            prev_len = out_len;
            prev_shape = out_shape;
        }
        let max_len = out
            .iter()
            .map(|l| l.out_len.max(l.in_len))
            .max()
            .unwrap_or(0);
        Ok(Sequential {
            input,
            layers: out,
            batch: 0,
            cap: 0,
            x: Vec::new(),
            dx: Vec::new(),
            logits: Vec::new(),
            g: Vec::new(),
            g2: Vec::new(),
            z: Vec::new(),
            max_len,
            have_dx: false,
            have_fwd: false,
        })
    }

    fn in_len(&self) -> usize {
        self.input[0] * self.input[1] * self.input[2]
    }

    fn out_len(&self) -> usize {
        self.layers.last().map_or(0, |l| l.out_len)
    }

    fn ensure_capacity(&mut self, batch: usize) -> Result<()> {
        if batch <= self.cap {
            return Ok(());
        }
        let too_big = || Error::Invalid(format!("batch {batch} is too large for this model"));
        let total = batch.checked_mul(self.max_len).ok_or_else(too_big)?;
        if total > (1usize << 36) {
            return Err(too_big());
        }
        let in_len = self.in_len();
        self.x.resize(batch * in_len, 0.0);
        self.dx.resize(batch * in_len, 0.0);
        self.g.resize(total, 0.0);
        self.g2.resize(total, 0.0);
        self.z.resize(total, 0.0);
        self.logits.resize(batch * self.out_len(), 0.0);
        for l in &mut self.layers {
            l.out.resize(batch * l.out_len, 0.0);
            if let LayerSpec::Pool2d(p) = l.spec {
                if p.kind != PoolKind::Avg {
                    l.argmax.resize(batch * l.out_len, 0);
                }
            }
        }
        self.cap = batch;
        Ok(())
    }

    fn load_input(&mut self, x: &ArrayView4<'_, f32>) -> Result<usize> {
        let sh = x.shape();
        if sh[1..] != self.input[..] {
            return Err(Error::Shape {
                expected: format!("Bx{}x{}x{}", self.input[0], self.input[1], self.input[2]),
                got: format!("{}x{}x{}x{}", sh[0], sh[1], sh[2], sh[3]),
            });
        }
        let batch = sh[0];
        if batch == 0 {
            return Err(Error::Invalid("empty batch".into()));
        }
        self.ensure_capacity(batch)?;
        let n = batch * self.in_len();
        match x.as_slice() {
            Some(s) => self.x[..n].copy_from_slice(s),
            None => {
                for (d, v) in self.x[..n].iter_mut().zip(x.iter()) {
                    *d = *v;
                }
            }
        }
        self.batch = batch;
        self.have_dx = false;
        self.have_fwd = false;
        Ok(batch)
    }

    /// Runs every layer on the loaded input. The last layer, when it applies
    /// softmax, writes its pre-activation values to `logits` first.
    fn run_forward(&mut self) {
        self.have_fwd = true;
        let b = self.batch;
        let nl = self.layers.len();
        let (x, logits) = (&self.x, &mut self.logits);
        for i in 0..nl {
            let (before, rest) = self.layers.split_at_mut(i);
            let l = &mut rest[0];
            let input: &[f32] = if i == 0 {
                &x[..b * l.in_len]
            } else {
                &before[i - 1].out[..b * l.in_len]
            };
            let last_softmax = i + 1 == nl && l.act() == Activation::Softmax;
            let out = &mut l.out[..b * l.out_len];
            match l.spec {
                LayerSpec::Conv2d { spec, act } => {
                    if last_softmax {
                        let lg = &mut logits[..b * l.out_len];
                        ops::conv2d_forward(
                            &spec,
                            Activation::Linear,
                            b,
                            input,
                            &l.kernel,
                            &l.bias,
                            lg,
                            &mut l.scratch,
                        );
                        ops::activation_forward(act, spec.out_c, lg, out);
                    } else {
                        ops::conv2d_forward(
                            &spec,
                            act,
                            b,
                            input,
                            &l.kernel,
                            &l.bias,
                            out,
                            &mut l.scratch,
                        );
                    }
                }
                LayerSpec::Dense { spec, act } => {
                    if last_softmax {
                        let lg = &mut logits[..b * l.out_len];
                        ops::dense_forward(
                            &spec,
                            Activation::Linear,
                            b,
                            input,
                            &l.kernel,
                            &l.bias,
                            lg,
                        );
                        ops::activation_forward(act, spec.units, lg, out);
                    } else {
                        ops::dense_forward(&spec, act, b, input, &l.kernel, &l.bias, out);
                    }
                }
                LayerSpec::Pool2d(p) => {
                    let am: &mut [u32] = if l.argmax.is_empty() {
                        &mut []
                    } else {
                        &mut l.argmax[..b * l.out_len]
                    };
                    ops::pool2d_forward(&p, b, input, out, am);
                }
                LayerSpec::Flatten { .. } => out.copy_from_slice(input),
                LayerSpec::Activation { act, channels, .. } => {
                    if last_softmax {
                        logits[..b * l.out_len].copy_from_slice(input);
                    }
                    ops::activation_forward(act, channels, input, out);
                }
            }
        }
    }

    /// Backward through every layer. On entry either `g` holds dL/d(output of the
    /// last layer) (`fused = false`), or `z` holds dL/d(its pre-activation)
    /// (`fused = true`, the fused softmax cross-entropy).
    fn run_backward(&mut self, fused: bool, want_dx: bool) {
        let b = self.batch;
        let Sequential {
            layers,
            x,
            dx,
            g,
            g2,
            z,
            ..
        } = self;
        let mut have_dz = fused;
        for i in (0..layers.len()).rev() {
            let (before, rest) = layers.split_at_mut(i);
            let l = &mut rest[0];
            let (il, ol) = (l.in_len, l.out_len);
            let input: &[f32] = if i == 0 {
                &x[..b * il]
            } else {
                &before[i - 1].out[..b * il]
            };
            let y = &l.out[..b * ol];
            let need_dx = i > 0 || want_dx;
            let dxb: &mut [f32] = if i == 0 {
                &mut dx[..b * il]
            } else {
                &mut g2[..b * il]
            };
            let act = l.act();
            let ch = l.channels();
            // dL/d(pre-activation) of a parameterised layer.
            let dz: &[f32] = if have_dz {
                &z[..b * ol]
            } else if act == Activation::Linear || !l.has_params() {
                &g[..b * ol]
            } else {
                ops::activation_backward(act, ch, y, &g[..b * ol], &mut z[..b * ol]);
                &z[..b * ol]
            };
            match l.spec {
                LayerSpec::Conv2d { spec, .. } => {
                    ops::conv2d_backward(
                        &spec,
                        b,
                        input,
                        &l.kernel,
                        dz,
                        need_dx.then_some(dxb),
                        &mut l.dkernel,
                        &mut l.dbias,
                        &mut l.scratch,
                    );
                }
                LayerSpec::Dense { spec, .. } => {
                    ops::dense_backward(
                        &spec,
                        b,
                        input,
                        &l.kernel,
                        dz,
                        need_dx.then_some(dxb),
                        &mut l.dkernel,
                        &mut l.dbias,
                    );
                }
                LayerSpec::Pool2d(p) => {
                    if need_dx {
                        let am: &[u32] = if l.argmax.is_empty() {
                            &[]
                        } else {
                            &l.argmax[..b * ol]
                        };
                        ops::pool2d_backward(&p, b, dz, am, dxb);
                    }
                }
                LayerSpec::Flatten { .. } => dxb.copy_from_slice(dz),
                LayerSpec::Activation { act, channels, .. } => {
                    if have_dz {
                        dxb.copy_from_slice(dz);
                    } else {
                        ops::activation_backward(act, channels, y, &g[..b * ol], dxb);
                    }
                }
            }
            std::mem::swap(g, g2);
            have_dz = false;
        }
    }

    /// Forward pass on a batch; the output, one row per sample, is a view of the
    /// model's own buffer. Same as [`Model::forward_batch`].
    pub fn forward(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        self.load_input(&x)?;
        self.run_forward();
        Ok(self.output_view())
    }

    fn output_view(&self) -> ArrayView2<'_, f32> {
        self.layer_output(self.layers.len() - 1)
    }

    /// Backward pass from `dy = dL/d(output)` (post-activation), after a forward
    /// pass on the same batch; the gradients stay inside ([`Self::grads`],
    /// [`Self::input_grad`]).
    pub fn backward(&mut self, dy: ArrayView2<'_, f32>) -> Result<()> {
        let (b, ol) = (self.batch, self.out_len());
        if b == 0 || !self.have_fwd {
            return Err(Error::Invalid("backward before forward".into()));
        }
        if dy.shape() != [b, ol] {
            return Err(Error::Shape {
                expected: format!("{b}x{ol}"),
                got: format!("{:?}", dy.shape()),
            });
        }
        match dy.as_slice() {
            Some(s) => self.g[..b * ol].copy_from_slice(s),
            None => {
                for (d, v) in self.g[..b * ol].iter_mut().zip(dy.iter()) {
                    *d = *v;
                }
            }
        }
        self.run_backward(false, true);
        self.have_dx = true;
        Ok(())
    }

    /// Gradients of the parameters from the last backward pass, with the same
    /// names, shapes and order as [`Model::params`].
    pub fn grads(&self) -> Vec<Param<'_>> {
        self.param_list(true)
    }

    /// dL/dx from the last [`Self::backward`], `(B, H*W*C)` (zeros-length rows
    /// before any backward).
    pub fn input_grad(&self) -> ArrayView2<'_, f32> {
        let b = if self.have_dx { self.batch } else { 0 };
        let n = self.in_len();
        ArrayView2::from_shape((b, n), &self.dx[..b * n]).expect("input_grad view")
    }

    /// Output of layer `i` (post-activation) from the last forward pass,
    /// `(B, values per sample)`.
    ///
    /// # Panics
    /// When `i` is not a layer index.
    pub fn layer_output(&self, i: usize) -> ArrayView2<'_, f32> {
        let l = &self.layers[i];
        let b = self.batch;
        ArrayView2::from_shape((b, l.out_len), &l.out[..b * l.out_len]).expect("layer output view")
    }

    /// The pre-softmax values of the last layer from the last forward pass, when
    /// the model ends in softmax.
    pub fn logits(&self) -> Option<ArrayView2<'_, f32>> {
        if !self.ends_in_softmax() {
            return None;
        }
        let (b, n) = (self.batch, self.out_len());
        ArrayView2::from_shape((b, n), &self.logits[..b * n]).ok()
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn param_list(&self, grads: bool) -> Vec<Param<'_>> {
        let mut v = Vec::new();
        for l in self.layers.iter().filter(|l| l.has_params()) {
            let (k, bb) = if grads {
                (&l.dkernel, &l.dbias)
            } else {
                (&l.kernel, &l.bias)
            };
            v.push(Param {
                name: l.kernel_name.clone(),
                shape: l.kernel_shape.clone(),
                data: k,
            });
            v.push(Param {
                name: l.bias_name.clone(),
                shape: vec![l.bias.len()],
                data: bb,
            });
        }
        v
    }

    /// Forward, mean softmax cross-entropy and backward, without an update.
    /// Returns the loss; the gradients are then in [`Self::grads`] and
    /// [`Self::input_grad`].
    pub fn loss_and_grads(&mut self, x: ArrayView4<'_, f32>, labels: &[usize]) -> Result<f32> {
        let loss = self.ce_step(x, labels, true)?;
        self.have_dx = true;
        Ok(loss)
    }

    fn ce_step(&mut self, x: ArrayView4<'_, f32>, labels: &[usize], want_dx: bool) -> Result<f32> {
        let b = self.load_input(&x)?;
        if labels.len() != b {
            return Err(Error::Labels(format!(
                "{} labels for a batch of {b}",
                labels.len()
            )));
        }
        self.run_forward();
        let ol = self.out_len();
        let fused = self.ends_in_softmax();
        let loss = if fused {
            SoftmaxCrossEntropy::forward_backward(
                &self.logits[..b * ol],
                ol,
                labels,
                &mut self.z[..b * ol],
            )?
        } else {
            // No softmax layer: the output itself is treated as logits.
            let last = &self.layers[self.layers.len() - 1];
            SoftmaxCrossEntropy::forward_backward(
                &last.out[..b * ol],
                ol,
                labels,
                &mut self.g[..b * ol],
            )?
        };
        self.run_backward(fused, want_dx);
        Ok(loss)
    }
}

impl Model for Sequential {
    fn input_shape(&self) -> [usize; 3] {
        self.input
    }

    fn output_shape(&self) -> Vec<usize> {
        self.layers
            .last()
            .map(|l| l.out_shape.clone())
            .unwrap_or_default()
    }

    fn ends_in_softmax(&self) -> bool {
        self.layers
            .last()
            .is_some_and(|l| l.act() == Activation::Softmax)
    }

    fn forward_batch(&mut self, x: ArrayView4<'_, f32>) -> Result<ArrayView2<'_, f32>> {
        self.forward(x)
    }

    /// The last layer's output from the latest forward pass (also the one inside
    /// `train_batch`), so that `fit` scores accuracy without a second pass.
    fn last_output(&self) -> Option<ArrayView2<'_, f32>> {
        self.have_fwd.then(|| self.output_view())
    }

    fn train_batch(
        &mut self,
        x: ArrayView4<'_, f32>,
        labels: &[usize],
        opt: &mut dyn Optimizer,
    ) -> Result<f32> {
        let loss = self.ce_step(x, labels, false)?;
        opt.begin_step();
        let mut slot = 0;
        for l in self.layers.iter_mut().filter(|l| l.has_params()) {
            opt.update(slot, &mut l.kernel, &l.dkernel);
            opt.update(slot + 1, &mut l.bias, &l.dbias);
            slot += 2;
        }
        Ok(loss)
    }

    fn params(&self) -> Vec<Param<'_>> {
        self.param_list(false)
    }

    fn params_mut(&mut self) -> Vec<ParamMut<'_>> {
        let mut v = Vec::new();
        for l in self.layers.iter_mut().filter(|l| l.has_params()) {
            v.push(ParamMut {
                name: l.kernel_name.clone(),
                shape: l.kernel_shape.clone(),
                data: &mut l.kernel,
            });
            v.push(ParamMut {
                name: l.bias_name.clone(),
                shape: vec![l.bias.len()],
                data: &mut l.bias,
            });
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DenseSpec;
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

    fn tiny() -> Sequential {
        let layers = vec![
            LayerSpec::Flatten { len: 4 },
            LayerSpec::Dense {
                spec: DenseSpec {
                    inputs: 4,
                    units: 3,
                },
                act: Activation::Softmax,
            },
        ];
        Sequential::new([2, 2, 1], layers, 5).unwrap()
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let mut m = tiny();
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
        let nan = Array4::from_elem((2, 2, 2, 1), f32::NAN);
        assert!(matches!(
            m.train_batch(nan.view(), &[0, 1], &mut Sgd),
            Err(Error::NonFinite(_))
        ));
        // Inconsistent specs are refused at construction.
        let bad = vec![LayerSpec::Dense {
            spec: DenseSpec {
                inputs: 5,
                units: 3,
            },
            act: Activation::Relu,
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
            for (u, v) in a.input_grad().iter().zip(m.input_grad().iter()) {
                assert!((u - v).abs() < 1e-6);
            }
        }
        assert!(b.ends_in_softmax() && !c.ends_in_softmax());
    }

    #[test]
    fn training_reduces_the_loss_and_params_are_named() {
        let mut m = tiny();
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
