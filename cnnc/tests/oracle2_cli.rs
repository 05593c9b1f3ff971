//! `cnnc` against the language-2 Keras oracle (`../shared/oracle/goldens2/`):
//! `cnnc predict` reproduces every case's inference output, and one
//! `cnnc train --steps 1` SGD step on a cross-entropy case moves every trainable
//! tensor by Keras's gradient and the moving statistics by Keras's update.

mod common;

use cnn_runtime::io::Npz;
use common::{cnnc_ok, one_sgd_step, oracle_npy, repo};
use std::path::{Path, PathBuf};

fn goldens2() -> PathBuf {
    repo().join("../shared/oracle/goldens2")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read(npz: &Npz, path: &Path, key: &str) -> Vec<f32> {
    let a = npz.read(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    a.into_f32(path, key).unwrap().iter().copied().collect()
}

/// Writes the case's `x` (and `labels`, when it has them) as .npy files.
fn arrays(case: &str, dir: &Path) -> (PathBuf, Option<PathBuf>, usize) {
    oracle_npy(&goldens2().join(case).join("io.npz"), case, dir)
}

/// Every numeric case, graphs included.
fn all_cases() -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(goldens2().join("index.json")).unwrap())
            .unwrap();
    index["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn predict_reproduces_every_case() {
    let dir = tempfile::tempdir().unwrap();
    let cases = all_cases();
    assert!(cases.len() >= 30);
    for case in &cases {
        let cd = goldens2().join(case);
        let (xp, _, _) = arrays(case, dir.path());
        let yp = dir.path().join(format!("{case}_y.npy"));
        cnnc_ok(&[
            "predict",
            s(&cd.join("model.cnn")),
            "--weights",
            s(&cd.join("weights.npz")),
            "--input",
            s(&xp),
            "--output",
            s(&yp),
        ]);
        let got = cnn_runtime::io::read_npy(&yp)
            .unwrap()
            .into_f32(&yp, "y")
            .unwrap();
        let io = cd.join("io.npz");
        let want = read(&Npz::open(&io).unwrap(), &io, "y");
        assert_eq!(got.len(), want.len(), "{case}: output length");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{case}: {g} vs {w}"
            );
        }
    }
}

/// `--steps 1 --no-shuffle --optimizer sgd --lr 1`: `init - saved` is Keras's
/// cross-entropy gradient for every trainable tensor, and the saved moving
/// statistics are Keras's after one training pass.
#[test]
fn one_sgd_step_moves_weights_and_moving_statistics_as_keras() {
    let dir = tempfile::tempdir().unwrap();
    let case = "bn_after_dense_ce";
    let cd = goldens2().join(case);
    let (xp, lp, b) = arrays(case, dir.path());
    let init = cd.join("weights.npz");
    let saved = dir.path().join("saved.npz");
    one_sgd_step(
        &cd.join("model.cnn"),
        &init,
        &xp,
        lp.as_deref().unwrap(),
        b,
        &saved,
    );
    let (before, after) = (Npz::open(&init).unwrap(), Npz::open(&saved).unwrap());
    let io_path = cd.join("io.npz");
    let io = Npz::open(&io_path).unwrap();
    // A gradient is compared within 1e-4 of its tensor's largest value, or
    // within f32 round-off (1e-7) of the model's largest gradient: the dense
    // bias before the batchnorm has an analytically zero gradient (the batch
    // mean cancels it), where Keras's f32 sums leave ~1e-8.
    let model_max = before
        .names()
        .iter()
        .filter(|n| !n.contains("moving_"))
        .flat_map(|n| read(&io, &io_path, &format!("{n}.ce_grad")))
        .fold(0f32, |a, v| a.max(v.abs()));
    let (mut grads, mut moving) = (0, 0);
    for name in before.names() {
        let w0 = read(&before, &init, name);
        let w1 = read(&after, &saved, name);
        let (want, delta): (Vec<f32>, Vec<f32>) = if name.contains("moving_") {
            moving += 1;
            (read(&io, &io_path, &format!("{name}.after")), w1.clone())
        } else {
            grads += 1;
            let d = w0.iter().zip(&w1).map(|(a, b)| a - b).collect();
            (read(&io, &io_path, &format!("{name}.ce_grad")), d)
        };
        let own = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        let tol = (1e-4 * own).max(1e-7 * model_max);
        for (g, w) in delta.iter().zip(&want) {
            assert!(
                (g - w).abs() <= tol,
                "{case} {name}: {g} vs {w} (tol {tol})"
            );
        }
    }
    assert_eq!((grads, moving), (6, 2));
}
