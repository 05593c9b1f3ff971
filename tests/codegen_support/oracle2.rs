//! The language-2 Keras oracle (`../shared/oracle/goldens2/`, FORMAT2.md) on
//! any [`Model`]: generated (`parity_oracle2`) or interpreted
//! (`oracle2_interp`) alike.

use super::{assert_forward, assert_grad, ce_step, flat, read_f32};
use cnn::runtime::Model;
use std::path::{Path, PathBuf};

/// `../shared/oracle/goldens2` relative to the repository root.
pub fn goldens2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/oracle/goldens2")
}

/// Every numeric case, from `index.json`, graph cases included.
pub fn all_cases() -> Vec<String> {
    let index: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(goldens2().join("index.json")).expect("index.json"),
    )
    .expect("json");
    index["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

/// A parameter gradient: within 1e-4 of the tensor's largest value, or within
/// f32 round-off (1e-7) of the model's largest parameter gradient `model_max`,
/// whichever is larger. The second bound matters only for a gradient that is
/// analytically zero, such as the bias of a layer a training-mode batchnorm
/// follows (the batch mean cancels it): Keras's f32 sums leave ~1e-8 there.
fn assert_param_grad(what: &str, got: &[f32], want: &[f32], model_max: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let own = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let tol = (1e-4 * own).max(1e-7 * model_max).max(1e-16);
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= tol,
            "{what}[{i}]: got {a}, want {b} (tol {tol})"
        );
    }
}

/// The largest absolute value over the io arrays `{name}{suffix}` of `names`.
fn largest(io: &mut ndarray_npy::NpzReader<std::fs::File>, names: &[String], suffix: &str) -> f32 {
    let mut m = 0f32;
    for n in names {
        let key = format!("{n}{suffix}");
        if has(io, &key) {
            m = read_f32(io, &key).iter().fold(m, |a, v| a.max(v.abs()));
        }
    }
    m
}

fn npz(dir: &Path, file: &str) -> ndarray_npy::NpzReader<std::fs::File> {
    ndarray_npy::NpzReader::new(std::fs::File::open(dir.join(file)).expect(file)).expect("npz")
}

fn has(io: &mut ndarray_npy::NpzReader<std::fs::File>, key: &str) -> bool {
    io.names()
        .expect("names")
        .iter()
        .any(|n| n == key || n == &format!("{key}.npy"))
}

/// Every check of FORMAT2.md a single-path case supports: inference outputs
/// (final and per statement, 1e-5), training-mode outputs and the moving
/// statistics after one training pass (1e-4), the gradients of
/// `sum(y_train * g)` (1e-4 of each tensor's largest), and the mean
/// cross-entropy with its gradients through `train_batch` (1e-4).
pub fn check_case2<N: Model>(m: &mut N, case: &str) {
    let dir = goldens2().join(case);
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    let flag = |k: &str| summary[k].as_bool() == Some(true);
    let weights = dir.join("weights.npz");
    cnn::runtime::io::weights::load_weights(m, &weights).expect("load weights.npz");
    let mut io = npz(&dir, "io.npz");
    let x = read_f32(&mut io, "x")
        .into_dimensionality::<cnn::ndarray::Ix4>()
        .expect("x is 4-D");
    let top = summary["top_level_statements"].as_u64().expect("count") as usize;
    let want = read_f32(&mut io, "y");
    // Predictions fold each batchnorm into the layer before it.
    let out = flat(m.predict_batch(x.view()).expect("predict"));
    assert_forward(
        &format!("{case}: y (predict)"),
        &out,
        want.as_slice().unwrap(),
    );
    let out = flat(m.forward_batch(x.view()).expect("forward"));
    assert_forward(&format!("{case}: y"), &out, want.as_slice().unwrap());
    for i in 0..top {
        let want = read_f32(&mut io, &format!("layer{i}.out"));
        let got = flat(m.layer_output(i).expect("layer_output"));
        assert_forward(
            &format!("{case}: layer{i}.out"),
            &got,
            want.as_slice().unwrap(),
        );
    }
    if flag("has_train") {
        let want = read_f32(&mut io, "y_train");
        let out = flat(m.forward_train_batch(x.view()).expect("forward_train"));
        assert_grad(&format!("{case}: y_train"), &out, want.as_slice().unwrap());
        for i in 0..top {
            let key = format!("layer{i}.out_train");
            if has(&mut io, &key) {
                let want = read_f32(&mut io, &key);
                let got = flat(m.layer_output(i).expect("layer_output"));
                assert_grad(&format!("{case}: {key}"), &got, want.as_slice().unwrap());
            }
        }
        let mut moving = 0;
        for p in m.params() {
            let key = format!("{}.after", p.name);
            if has(&mut io, &key) {
                let want = read_f32(&mut io, &key);
                assert_grad(&format!("{case}: {key}"), p.data, want.as_slice().unwrap());
                moving += 1;
            }
        }
        if flag("has_batchnorm") {
            assert!(moving > 0, "{case}: no moving statistic checked");
        }
    }
    if flag("has_grads") {
        // The gradients of the pass just run: training mode when the case
        // has one (it ran above), else the inference pass (the same pass).
        if !flag("has_train") {
            m.forward_batch(x.view()).expect("forward");
        }
        let g = read_f32(&mut io, "g");
        m.backward(g.view()).expect("backward");
        let names: Vec<String> = m.grads().into_iter().map(|p| p.name).collect();
        let model_max = largest(&mut io, &names, ".grad");
        let mut checked = 0;
        for p in m.grads() {
            let key = format!("{}.grad", p.name);
            if has(&mut io, &key) {
                let want = read_f32(&mut io, &key);
                let what = format!("{case}: {key}");
                assert_param_grad(&what, p.data, want.as_slice().unwrap(), model_max);
                checked += 1;
            }
        }
        let trainable = summary["trainable_params"].as_u64().unwrap_or(0);
        assert!(trainable == 0 || checked > 0, "{case}: no gradient checked");
        let dx = read_f32(&mut io, "dx");
        let got = flat(m.input_grad().expect("input_grad"));
        assert_grad(&format!("{case}: dx"), &got, dx.as_slice().unwrap());
    }
    if flag("has_ce") {
        cnn::runtime::io::weights::load_weights(m, &weights).expect("reload weights.npz");
        let (loss, want, cap) = ce_step(m, &mut io, &x);
        assert_grad(&format!("{case}: ce_loss"), &[loss], &[want]);
        let names: Vec<String> = m.params().into_iter().map(|p| p.name).collect();
        let model_max = largest(&mut io, &names, ".ce_grad");
        let mut checked = 0;
        for (slot, name) in names.iter().enumerate() {
            let key = format!("{name}.ce_grad");
            let got = cap.grads.get(slot).filter(|g| !g.is_empty());
            if has(&mut io, &key) {
                let want = read_f32(&mut io, &key);
                let got = got.unwrap_or_else(|| panic!("{case}: {name} was not updated"));
                let what = format!("{case}: {key}");
                assert_param_grad(&what, got, want.as_slice().unwrap(), model_max);
                checked += 1;
            } else {
                assert!(got.is_none(), "{case}: the optimizer updated {name}");
            }
        }
        assert!(checked > 0, "{case}: no cross-entropy gradient checked");
    }
}
