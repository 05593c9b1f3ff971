//! Shared helpers of the generated-code tests (`parity_*`, `alloc_generated`):
//! the Keras oracle checks, over the runtime's `Model` trait that generated
//! models and the interpreter both implement.
#![allow(dead_code)]

use cnn::ndarray::ArrayD;
use cnn::runtime::{Model, Optimizer};
use std::path::{Path, PathBuf};

pub mod oracle2;

/// A tiny fixed RNG (xorshift64*), so that what the tests draw never depends
/// on a crate's RNG algorithm.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[-1, 1)`, from the top 24 bits.
    pub fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Every parameter of `m` random in `[-1, 1)`, moving variances in
/// `[0.25, 2.25)`: so that folding a batchnorm has something to fold.
pub fn randomize(m: &mut dyn Model, seed: u64) {
    let mut rng = XorShift(seed | 1);
    for p in m.params_mut() {
        let variance = p.name.ends_with("moving_variance");
        for v in p.data.iter_mut() {
            let r = rng.unit();
            *v = if variance { 1.25 + r } else { r };
        }
    }
}

/// An optimizer that changes nothing and keeps a copy of each gradient it is
/// handed: it exposes exactly what `train_step` computed.
#[derive(Default)]
pub struct Capture {
    pub grads: Vec<Vec<f32>>,
    pub steps: usize,
}

impl Optimizer for Capture {
    fn begin_step(&mut self) {
        self.steps += 1;
    }
    fn update(&mut self, slot: usize, _param: &mut [f32], grad: &[f32]) {
        if self.grads.len() <= slot {
            self.grads.resize(slot + 1, Vec::new());
        }
        self.grads[slot] = grad.to_vec();
    }
    fn learning_rate(&self) -> f32 {
        0.0
    }
    // Only records gradients (it never moves a parameter), so there is no rate to set.
    fn set_learning_rate(&mut self, _lr: f32) {}
}

/// The values of an array (or any `&f32`s), in order: outputs compare flat.
pub fn flat<'a>(values: impl IntoIterator<Item = &'a f32>) -> Vec<f32> {
    values.into_iter().copied().collect()
}

/// Layer `i`'s output of the last forward pass, copied out.
fn layer_out<N: Model>(m: &N, i: usize) -> Vec<f32> {
    flat(m.layer_output(i).expect("layer_output"))
}

/// `../shared/oracle/goldens` relative to the repository root.
pub fn goldens() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/oracle/goldens")
}

pub fn read_f32(npz: &mut ndarray_npy::NpzReader<std::fs::File>, key: &str) -> ArrayD<f32> {
    npz.by_name(key).unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// One cross-entropy training step on the case's `x` and `labels`, with an
/// optimizer that only records: the loss, the oracle's `ce_loss`, and the
/// gradients the step handed to the optimizer.
pub fn ce_step<N: Model>(
    m: &mut N,
    io: &mut ndarray_npy::NpzReader<std::fs::File>,
    x: &cnn::ndarray::Array4<f32>,
) -> (f32, f32, Capture) {
    let labels: cnn::ndarray::ArrayD<i64> = io.by_name("labels").expect("labels");
    let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
    let ce: cnn::ndarray::ArrayD<f32> = io.by_name("ce_loss").expect("ce_loss");
    let mut cap = Capture::default();
    let loss = m
        .train_batch(x.view(), &labels, &mut cap)
        .expect("train_step");
    (loss, ce.iter().copied().next().expect("scalar"), cap)
}

/// Forward tolerance: `|a - b| <= 1e-5 * max(1, |b|)`.
pub fn assert_forward(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * b.abs().max(1.0);
        assert!(
            (a - b).abs() <= tol,
            "{what}[{i}]: got {a}, want {b} (tol {tol})"
        );
    }
}

/// Gradient tolerance: `|a - b| <= 1e-4 * max|want|` (exact zeros stay zero).
pub fn assert_grad(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let tol = 1e-4 * scale;
        assert!(
            (a - b).abs() <= tol,
            "{what}[{i}]: got {a}, want {b} (tol {tol})"
        );
    }
}

/// Runs one oracle case (not seed_150) on a generated model.
/// Runs the case's input `x` through `m` and checks the output against `y`;
/// returns the open `io.npz`, `x` and `y` for the checks that follow.
fn check_output<N: Model>(
    m: &mut N,
    dir: &std::path::Path,
    case: &str,
) -> (
    ndarray_npy::NpzReader<std::fs::File>,
    cnn::ndarray::Array4<f32>,
    ArrayD<f32>,
) {
    let mut io =
        ndarray_npy::NpzReader::new(std::fs::File::open(dir.join("io.npz")).expect("io.npz"))
            .expect("npz");
    let x = read_f32(&mut io, "x")
        .into_dimensionality::<cnn::ndarray::Ix4>()
        .expect("x is 4-D");
    let y = read_f32(&mut io, "y");
    let out = flat(m.forward_batch(x.view()).expect("forward"));
    assert_forward(
        &format!("{case}: y"),
        &out,
        y.as_slice().expect("contiguous"),
    );
    (io, x, y)
}

pub fn check_case<N: Model>(m: &mut N, case: &str) {
    let dir = goldens().join(case);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    cnn::runtime::io::weights::load_weights(m, &dir.join("weights.npz")).expect("load weights.npz");
    let (mut io, x, y) = check_output(m, &dir, case);
    let layers = summary["layers"].as_array().expect("layers").len();
    for i in 0..layers {
        let want = read_f32(&mut io, &format!("layer{i}.out"));
        assert_forward(
            &format!("{case}: layer{i}.out"),
            &layer_out(m, i),
            want.as_slice().expect("contiguous"),
        );
    }
    // Linear loss sum(y * g): dL/dy = g.
    let g = read_f32(&mut io, "g");
    m.backward(g.view()).expect("backward");
    for p in m.grads() {
        let want = read_f32(&mut io, &format!("{}.grad", p.name));
        assert_grad(
            &format!("{case}: {}.grad", p.name),
            p.data,
            want.as_slice().expect("contiguous"),
        );
    }
    let dx = read_f32(&mut io, "dx");
    assert_grad(
        &format!("{case}: dx"),
        m.input_grad()
            .expect("input_grad")
            .as_slice()
            .expect("contiguous"),
        dx.as_slice().expect("contiguous"),
    );
    if summary["has_ce"].as_bool() == Some(true) {
        let (loss, want, cap) = ce_step(m, &mut io, &x);
        assert_forward(&format!("{case}: ce_loss"), &[loss], &[want]);
        let names: Vec<String> = m.params().into_iter().map(|p| p.name).collect();
        assert_eq!(
            cap.grads.len(),
            names.len(),
            "one update per parameter tensor"
        );
        for (name, got) in names.iter().zip(&cap.grads) {
            let want = read_f32(&mut io, &format!("{name}.ce_grad"));
            assert_grad(
                &format!("{case}: {name}.ce_grad"),
                got,
                want.as_slice().expect("contiguous"),
            );
        }
        // The output after a training step is the step's forward output (probabilities).
        let last = flat(m.last_output().expect("last_output"));
        assert_forward(
            &format!("{case}: last_output after train_step"),
            &last,
            y.as_slice().expect("contiguous"),
        );
    }
}

fn lowbias32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846ca68b);
    h ^= h >> 16;
    h
}

/// Element `k` of a seed_150 tensor (FORMAT.md's formula; exact in f32).
fn formula_value(k: u32, seed: u32, exp: i32) -> f32 {
    let h = lowbias32(k.wrapping_add(seed.wrapping_mul(0x9e3779b9)));
    ((h >> 16) as f32 - 32768.0) * 2f32.powi(-(15 + exp))
}

/// seed_150: weights from the formula, forward output against Keras's `y`, and
/// each layer's output sum against the stored one.
pub fn check_seed150<N: Model>(m: &mut N, case: &str) {
    let dir = goldens().join(case);
    let formula: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("weights_formula.json")).expect("formula"),
    )
    .expect("json");
    for p in m.params_mut() {
        let t = &formula["tensors"][&p.name];
        let seed = t["seed"].as_u64().expect("seed") as u32;
        let exp = t["exp"].as_i64().expect("exp") as i32;
        let shape: Vec<usize> = t["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(shape, p.shape, "{}", p.name);
        for (k, v) in p.data.iter_mut().enumerate() {
            *v = formula_value(k as u32, seed, exp);
        }
        let first8: Vec<f32> = t["first8"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(&p.data[..first8.len()], &first8[..], "{} first8", p.name);
    }
    let (mut io, _, _) = check_output(m, &dir, case);
    for i in 0..7 {
        let want = read_f32(&mut io, &format!("layer{i}.out_sum"));
        let want_abs = read_f32(&mut io, &format!("layer{i}.out_abs_sum"));
        let got: f64 = layer_out(m, i).iter().map(|&v| v as f64).sum();
        let scale = want_abs.iter().copied().next().unwrap() as f64;
        let want = want.iter().copied().next().unwrap() as f64;
        assert!(
            (got - want).abs() <= 1e-5 * scale.max(1.0),
            "{case}: layer{i} sum {got} vs {want}"
        );
    }
}
