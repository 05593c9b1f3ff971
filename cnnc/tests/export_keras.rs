//! `cnnc export --to keras` against Keras itself: every oracle case (the
//! language-1 and language-2 goldens) exported, the program run by real
//! Keras 3 with the case's weights, and its outputs compared with `cnnc
//! predict`'s within 1e-5 of max(1, |y|). Then the way back: the model Keras
//! built, saved as `.keras` and as `.h5`, imported by `cnnc import` and run
//! by `cnnc predict`, within 1e-5 of Keras's outputs (all but the models
//! with a Lambda layer: a min pool or a pool with `pad`, which Keras has no
//! layer for).
//!
//! Needs a Python with Keras: `CNN_KERAS_PYTHON`, or the venv that
//! `cnnc/tests/keras/setup.sh` makes under `target/keras-venv`. Without one
//! the test says so and passes without checking anything.

use ndarray_npy::read_npy;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Python to run Keras with, if one can import it.
fn keras_python() -> Option<PathBuf> {
    let python = std::env::var_os("CNN_KERAS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/keras-venv/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import keras"])
        .env("KERAS_BACKEND", "jax")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

/// The oracle's case folders that hold weights (all but `seed_150`, whose
/// weights are a formula).
fn cases() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for set in ["goldens", "goldens2"] {
        let dir = repo().join("../shared/oracle").join(set);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let p = e.unwrap().path();
            if p.join("weights.npz").is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn cnnc(args: &[&std::ffi::OsStr]) {
    let o = Command::new(env!("CARGO_BIN_EXE_cnnc"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cnnc {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn exported_programs_reproduce_cnnc_predict_in_keras() {
    let Some(python) = keras_python() else {
        eprintln!(
            "skipped: no Python with Keras (run cnnc/tests/keras/setup.sh, or set CNN_KERAS_PYTHON)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cases = cases();
    assert!(cases.len() > 80, "only {} oracle cases", cases.len());
    let mut driver = Command::new(&python);
    driver
        .arg(repo().join("cnnc/tests/keras/run_exported.py"))
        .env("KERAS_BACKEND", "jax");
    for case in &cases {
        let out = tmp.path().join(case.file_name().unwrap());
        std::fs::create_dir(&out).unwrap();
        let program = out.join("model.py");
        cnnc(&[
            "export".as_ref(),
            case.join("model.cnn").as_os_str(),
            "--to".as_ref(),
            "keras".as_ref(),
            "-o".as_ref(),
            program.as_os_str(),
        ]);
        driver.arg(case).arg(&out);
    }
    let o = driver.output().unwrap();
    assert!(
        o.status.success(),
        "the exported programs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy();
        let out = tmp.path().join(&*name);
        let ours = out.join("cnnc_y.npy");
        cnnc(&[
            "predict".as_ref(),
            case.join("model.cnn").as_os_str(),
            "--weights".as_ref(),
            case.join("weights.npz").as_os_str(),
            "--input".as_ref(),
            out.join("x.npy").as_os_str(),
            "--output".as_ref(),
            ours.as_os_str(),
        ]);
        let keras: ndarray::ArrayD<f32> = read_npy(out.join("keras_y.npy")).unwrap();
        let ours: ndarray::ArrayD<f32> = read_npy(&ours).unwrap();
        assert_eq!(
            keras.len(),
            ours.len(),
            "{name}: {:?} against {:?}",
            keras.shape(),
            ours.shape()
        );
        for (i, (k, o)) in keras.iter().zip(&ours).enumerate() {
            assert!(
                (k - o).abs() <= 1e-5 * k.abs().max(1.0),
                "{name}: value {i}: Keras {k}, cnnc predict {o}"
            );
        }
    }
    eprintln!(
        "{} oracle cases: Keras ran each export as cnnc predicts",
        cases.len()
    );

    // The way back: Keras's saved files imported.
    let (mut back, mut lambdas) = (0, Vec::new());
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy();
        let out = tmp.path().join(&*name);
        if out.join("lambda.txt").exists() {
            lambdas.push(name.to_string());
            continue;
        }
        let keras: ndarray::ArrayD<f32> = read_npy(out.join("keras_y.npy")).unwrap();
        for file in ["model.keras", "model.h5"] {
            let cnn = out.join(format!("{file}.cnn"));
            let weights = out.join(format!("{file}.npz"));
            let y = out.join(format!("{file}_y.npy"));
            cnnc(&[
                "import".as_ref(),
                out.join(file).as_os_str(),
                "-o".as_ref(),
                cnn.as_os_str(),
                "--weights-out".as_ref(),
                weights.as_os_str(),
            ]);
            cnnc(&[
                "predict".as_ref(),
                cnn.as_os_str(),
                "--weights".as_ref(),
                weights.as_os_str(),
                "--input".as_ref(),
                out.join("x.npy").as_os_str(),
                "--output".as_ref(),
                y.as_os_str(),
            ]);
            let got: ndarray::ArrayD<f32> = read_npy(&y).unwrap();
            assert_eq!(got.shape(), keras.shape(), "{name}/{file}");
            for (i, (k, o)) in keras.iter().zip(&got).enumerate() {
                assert!(
                    (k - o).abs() <= 1e-5 * k.abs().max(1.0),
                    "{name}/{file}: value {i}: Keras {k}, imported {o}"
                );
            }
        }
        back += 1;
    }
    eprintln!(
        "{back} oracle cases came back from Keras's .keras and .h5 files as Keras predicts; {} have a Lambda layer: {}",
        lambdas.len(),
        lambdas.join(", ")
    );
    assert!(back >= 70, "only {back} cases came back");
}
