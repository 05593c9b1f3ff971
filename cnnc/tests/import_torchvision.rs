//! `cnnc import` on the networks a PyTorch user brings: torchvision's
//! ResNet-18 and MobileNetV2 (random weights, random batchnorm statistics),
//! exported by `torch.onnx.export` with their batchnorms kept, imported,
//! summarised (PyTorch's parameter counts as the trainable ones) and run
//! (PyTorch's outputs within 1e-4 of max(1, |y|)).
//!
//! The models are made when the test runs (14-47 MB each), by
//! `cnn-onnx/tests/torch/torchvision_models.py` in a Python with torch and
//! torchvision: `CNN_TORCH_PYTHON`, or the venv that
//! `cnn-onnx/tests/torch/setup.sh` makes under `target/torch-venv`. Without
//! one the test says so and passes without checking anything.

mod common;

use common::cnnc_ok;
use ndarray::ArrayD;
use ndarray_npy::read_npy;
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn torchvision_resnet18_and_mobilenet_v2_import_and_predict_as_pytorch() {
    let Some(python) =
        common::python_with("CNN_TORCH_PYTHON", "torch-venv", "torch, torchvision, onnx")
    else {
        eprintln!(
            "skipped: no Python with torch and torchvision (run cnn-onnx/tests/torch/setup.sh, or set CNN_TORCH_PYTHON)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let made = Command::new(&python)
        .arg(common::repo().join("cnn-onnx/tests/torch/torchvision_models.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    // PyTorch's own counts (sum of `numel` of `parameters()`): the
    // summary's trainable figure; batchnorm statistics are the rest.
    for (name, trainable) in [("resnet18", "11,689,512"), ("mobilenet_v2", "3,504,872")] {
        let d = dir.path().join(name);
        let (model, weights) = (d.join("m.cnn"), d.join("m.safetensors"));
        cnnc_ok(&["import", s(&d.join("model.onnx")), "-o", s(&model)]);
        let summary = cnnc_ok(&["summary", s(&model)]);
        let summary = String::from_utf8_lossy(&summary.stdout);
        assert!(
            summary.contains(&format!("Trainable params: {trainable} ")),
            "{name}:\n{summary}"
        );
        let ours = d.join("ours.npy");
        cnnc_ok(&[
            "predict",
            s(&model),
            "--weights",
            s(&weights),
            "--input",
            s(&d.join("x.npy")),
            "--output",
            s(&ours),
        ]);
        let want: ArrayD<f32> = read_npy(d.join("y.npy")).unwrap();
        let got: ArrayD<f32> = read_npy(&ours).unwrap();
        assert_eq!(got.shape(), want.shape(), "{name}");
        let mut worst = 0f32;
        for (g, w) in got.iter().zip(&want) {
            let e = (g - w).abs() / w.abs().max(1.0);
            assert!(e <= 1e-4, "{name}: cnnc {g}, PyTorch {w}");
            worst = worst.max(e);
        }
        eprintln!(
            "{name}: {trainable} trainable parameters, outputs within {worst:e} of PyTorch's"
        );
    }
}
