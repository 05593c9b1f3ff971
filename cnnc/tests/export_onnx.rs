//! `cnnc export --to onnx` as a user runs it: an oracle case with a
//! residual block and batchnorms exported with its weights, the file run by
//! tract-onnx on the case's input (NHWC, and NCHW with `--nchw`), matching
//! `cnnc predict`; every oracle case's file loaded and run by ONNX Runtime
//! (when a Python with it is at hand); and the mistakes a user can make,
//! each a clear error. (`cnn-onnx/tests/oracle.rs` runs every oracle case
//! through the library in tract.)

mod common;

use common::{cnnc, cnnc_ok};
use ndarray::{Array4, ArrayD};
use ndarray_npy::{read_npy, write_npy, NpzReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use tract_onnx::prelude::*;

fn case() -> PathBuf {
    common::repo().join("../shared/oracle/goldens2/resnet8_ce")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run_onnx(path: &Path, x: &Array4<f32>) -> Vec<f32> {
    let shape = x.shape().to_vec();
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .with_input_fact(0, f32::fact(&shape).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let data: Vec<f32> = x.iter().copied().collect();
    let input = Tensor::from_shape(&shape, &data).unwrap();
    let out = model.run(tvec!(input.into())).unwrap();
    out[0]
        .to_plain_array_view::<f32>()
        .unwrap()
        .iter()
        .copied()
        .collect()
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} against {w}");
    }
}

#[test]
fn an_exported_model_runs_in_tract_as_cnnc_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let (model, weights) = (case().join("model.cnn"), case().join("weights.npz"));
    let mut io = NpzReader::new(std::fs::File::open(case().join("io.npz")).unwrap()).unwrap();
    let x: ArrayD<f32> = io.by_name("x").unwrap();
    let x: Array4<f32> = x.into_dimensionality().unwrap();
    let xp = dir.path().join("x.npy");
    write_npy(&xp, &x).unwrap();
    let yp = dir.path().join("y.npy");
    cnnc_ok(&[
        "predict",
        s(&model),
        "--weights",
        s(&weights),
        "--input",
        s(&xp),
        "--output",
        s(&yp),
    ]);
    let want: ArrayD<f32> = read_npy(&yp).unwrap();
    let want: Vec<f32> = want.iter().copied().collect();

    let onnx = dir.path().join("resnet8.onnx");
    cnnc_ok(&[
        "export",
        s(&model),
        "--weights",
        s(&weights),
        "-o",
        s(&onnx),
    ]);
    close(&run_onnx(&onnx, &x), &want);

    let nchw = dir.path().join("resnet8_nchw.onnx");
    cnnc_ok(&[
        "export",
        s(&model),
        "--to",
        "onnx",
        "--nchw",
        "--weights",
        s(&weights),
        "-o",
        s(&nchw),
    ]);
    let x_nchw = x
        .clone()
        .permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .to_owned();
    close(&run_onnx(&nchw, &x_nchw), &want);
}

#[test]
fn mistakes_are_clear_errors_that_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = case().join("model.cnn");
    let onnx = dir.path().join("m.onnx");
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["export", s(&model), "-o", s(&onnx)],
            "give them with --weights",
        ),
        (
            vec!["export", s(&model), "-o", "m.txt"],
            "--to onnx or --to keras",
        ),
        (
            vec!["export", s(&model), "--to", "keras", "--nchw", "-o", "m.py"],
            "--nchw is for --to onnx",
        ),
        (
            vec![
                "export",
                s(&model),
                "--weights",
                "nowhere.npz",
                "-o",
                s(&onnx),
            ],
            "no such weights file",
        ),
    ];
    for (args, want) in cases {
        let out = cnnc(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!onnx.exists());
}

#[test]
fn every_oracle_case_loads_and_runs_in_onnx_runtime() {
    let Some(python) = common::python_with("CNN_ORT_PYTHON", "ort-venv", "onnxruntime") else {
        eprintln!(
            "skipped: no Python with ONNX Runtime (run cnnc/tests/onnxruntime/setup.sh, or set CNN_ORT_PYTHON)"
        );
        return;
    };
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle");
    let mut cases = Vec::new();
    for set in ["goldens", "goldens2"] {
        for e in std::fs::read_dir(oracle.join(set)).unwrap() {
            let p = e.unwrap().path();
            if p.join("weights.npz").is_file() {
                cases.push(p);
            }
        }
    }
    cases.sort();
    assert!(cases.len() > 80, "only {} oracle cases", cases.len());
    let dir = tempfile::tempdir().unwrap();
    let mut driver = Command::new(&python);
    driver.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/onnxruntime/run.py"));
    let mut files = Vec::new();
    for case in &cases {
        let onnx = dir
            .path()
            .join(case.file_name().unwrap())
            .with_extension("onnx");
        let (model, weights) = (case.join("model.cnn"), case.join("weights.npz"));
        cnnc_ok(&[
            "export",
            s(&model),
            "--weights",
            s(&weights),
            "-o",
            s(&onnx),
        ]);
        driver.arg(case).arg(&onnx);
        files.push(onnx);
    }
    let out = driver.output().unwrap();
    assert!(
        out.status.success(),
        "ONNX Runtime: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut worst = 0f32;
    for (case, onnx) in cases.iter().zip(&files) {
        let mut io = NpzReader::new(std::fs::File::open(case.join("io.npz")).unwrap()).unwrap();
        let want: ArrayD<f32> = io.by_name("y").unwrap();
        let got: ArrayD<f32> = read_npy(onnx.with_extension("ort.npy")).unwrap();
        assert_eq!(got.shape(), want.shape(), "{}", case.display());
        for (g, w) in got.iter().zip(&want) {
            let d = (g - w).abs() / w.abs().max(1.0);
            assert!(d <= 1e-5, "{}: ONNX Runtime {g}, Keras {w}", case.display());
            worst = worst.max(d);
        }
    }
    eprintln!(
        "{} oracle cases: ONNX Runtime gave Keras's outputs (worst difference {worst:e})",
        cases.len()
    );
}
