//! What cnnc's integration tests share: the `cnnc` built for them, and where the
//! repository and the shared oracle files are.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the workspace, above `cnnc/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The Keras oracle's cases, beside the repository.
pub fn goldens() -> PathBuf {
    repo().join("../shared/oracle/goldens")
}

/// The oracle files of one case.
pub fn golden(case: &str) -> PathBuf {
    goldens().join(case)
}

/// The `cnnc` built for these tests, not started yet.
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cnnc"))
}

/// Runs `cnnc` with `args`.
pub fn cnnc(args: &[&str]) -> Output {
    command().args(args).output().expect("run cnnc")
}

/// Runs `cnnc` and asserts that it succeeded, showing its output if not.
pub fn cnnc_ok(args: &[&str]) -> Output {
    let out = cnnc(args);
    assert!(
        out.status.success(),
        "cnnc {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `cnnc train MODEL --init INIT --x X --labels LABELS --steps 1 --batch B
/// --no-shuffle --optimizer sgd --lr 1 --save SAVE`: one plain SGD step on the
/// whole batch, so that `init - saved` is the batch's mean cross-entropy
/// gradient (lr = 1: exact enough in f32 to keep it to ~1e-7 of the parameter).
pub fn one_sgd_step(model: &Path, init: &Path, x: &Path, labels: &Path, batch: usize, save: &Path) {
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let b = batch.to_string();
    let args = [
        "train".to_string(),
        s(model),
        "--init".into(),
        s(init),
        "--x".into(),
        s(x),
        "--labels".into(),
        s(labels),
        "--steps".into(),
        "1".into(),
        "--batch".into(),
        b,
        "--no-shuffle".into(),
        "--optimizer".into(),
        "sgd".into(),
        "--lr".into(),
        "1".into(),
        "--save".into(),
        s(save),
    ];
    let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
    cnnc_ok(&args);
}

/// Writes the `x` (and `labels`, when there are any) of an oracle `io.npz` as
/// .npy files `{stem}_x.npy` / `{stem}_labels.npy` in `dir`; returns their
/// paths and the batch.
pub fn oracle_npy(io: &Path, stem: &str, dir: &Path) -> (PathBuf, Option<PathBuf>, usize) {
    use cnn_runtime::io::{npy::write_npy, Npz};
    let npz = Npz::open(io).expect("io.npz");
    let x = npz.read("x").expect("x");
    let shape = x.shape.clone();
    let xs = x.into_f32(io, "x").expect("f32 x");
    let xp = dir.join(format!("{stem}_x.npy"));
    write_npy(&xp, &shape, xs.as_slice().expect("contiguous")).expect("write x");
    let labels = npz.names().contains(&"labels").then(|| {
        let l = npz.read("labels").expect("labels");
        let l = l.into_labels(io, None).expect("labels");
        let l64: Vec<i64> = l.iter().map(|&v| v as i64).collect();
        let lp = dir.join(format!("{stem}_labels.npy"));
        write_npy(&lp, &[l64.len()], &l64).expect("write labels");
        lp
    });
    (xp, labels, shape[0])
}

/// A Python for the tests that need one (Keras, ONNX Runtime, torch): the
/// one `env` names, else the venv `target/VENV` that the test's setup script
/// makes, if it can `import modules`. `None` when there is none: the test
/// then says it skipped.
pub fn python_with(env: &str, venv: &str, modules: &str) -> Option<PathBuf> {
    let python = std::env::var_os(env).map_or_else(
        || repo().join("target").join(venv).join("bin/python"),
        PathBuf::from,
    );
    let ok = Command::new(&python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}
