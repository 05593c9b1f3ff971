//! `cnnc import`: an exported ResNet-8 imported back to a `.cnn` file and
//! weights that `cnnc check` and `cnnc predict` take, predicting what the
//! original predicts; PyTorch's LeNet-5 (cnn-onnx's fixture) predicting as
//! PyTorch did; the text on standard output without `-o`; an
//! unsupported operator refused naming the node and the op, with nothing
//! written; an existing `.cnn` kept unless `--force`.

mod common;

use common::{cnnc, cnnc_ok};
use ndarray::{Array4, ArrayD};
use ndarray_npy::{read_npy, write_npy, NpzReader};
use prost::Message;
use std::path::{Path, PathBuf};

fn case() -> PathBuf {
    common::repo().join("../shared/oracle/goldens2/resnet8_ce")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `cnnc predict MODEL --weights W --input X --output Y`, read back.
fn predict(model: &Path, weights: &Path, x: &Path, y: &Path) -> Vec<f32> {
    cnnc_ok(&[
        "predict",
        s(model),
        "--weights",
        s(weights),
        "--input",
        s(x),
        "--output",
        s(y),
    ]);
    let y: ArrayD<f32> = read_npy(y).unwrap();
    y.iter().copied().collect()
}

#[test]
fn an_exported_model_imports_back_and_predicts_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (model, weights) = (case().join("model.cnn"), case().join("weights.npz"));
    let mut io = NpzReader::new(std::fs::File::open(case().join("io.npz")).unwrap()).unwrap();
    let x: ArrayD<f32> = io.by_name("x").unwrap();
    let x: Array4<f32> = x.into_dimensionality().unwrap();
    let xp = dir.path().join("x.npy");
    write_npy(&xp, &x).unwrap();
    let want = predict(&model, &weights, &xp, &dir.path().join("want.npy"));

    let onnx = dir.path().join("resnet8.onnx");
    cnnc_ok(&[
        "export",
        s(&model),
        "--weights",
        s(&weights),
        "-o",
        s(&onnx),
        "--nchw",
    ]);
    let cnn = dir.path().join("imported.cnn");
    let out = cnnc_ok(&["import", s(&onnx), "-o", s(&cnn)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("imported.safetensors"), "{stderr}");
    let text = std::fs::read_to_string(&cnn).unwrap();
    assert!(text.contains("model ResNet8 {"), "{text}");
    assert!(text.contains("} shortcut {"), "{text}");
    cnnc_ok(&["check", s(&cnn)]);
    let got = predict(
        &cnn,
        &dir.path().join("imported.safetensors"),
        &xp,
        &dir.path().join("got.npy"),
    );
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{g} against {w}");
    }

    // Without -o: the text on standard output, no weights written.
    let out = cnnc_ok(&["import", s(&onnx)]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), text);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not written"));

    // --weights-out as .npz, and an existing .cnn kept unless --force.
    let npz = dir.path().join("w.npz");
    let out = cnnc(&["import", s(&onnx), "-o", s(&cnn), "--weights-out", s(&npz)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(!npz.exists());
    cnnc_ok(&[
        "import",
        s(&onnx),
        "-o",
        s(&cnn),
        "--weights-out",
        s(&npz),
        "--force",
        "--name",
        "resnet_again",
    ]);
    assert!(std::fs::read_to_string(&cnn)
        .unwrap()
        .contains("model ResnetAgain {"));
    let again = predict(&cnn, &npz, &xp, &dir.path().join("again.npy"));
    assert_eq!(again, got);
}

#[test]
fn a_pytorch_lenet_imports_and_predicts_as_pytorch() {
    // TorchScript's export, and dynamo's (the default since torch 2.9: the
    // weights in `model.onnx.data`, read from the model's folder).
    for fixture in ["lenet5", "dynamo/lenet5"] {
        let fixture = common::repo().join("cnn-onnx/tests/torch").join(fixture);
        let dir = tempfile::tempdir().unwrap();
        let mut io = NpzReader::new(std::fs::File::open(fixture.join("io.npz")).unwrap()).unwrap();
        let x: ArrayD<f32> = io.by_name("x").unwrap();
        let want: ArrayD<f32> = io.by_name("y").unwrap();
        // PyTorch's NCHW input as the runtime's NHWC.
        let x: Array4<f32> = x.into_dimensionality().unwrap();
        let x = x
            .permuted_axes([0, 2, 3, 1])
            .as_standard_layout()
            .to_owned();
        let xp = dir.path().join("x.npy");
        write_npy(&xp, &x).unwrap();
        let cnn = dir.path().join("lenet.cnn");
        cnnc_ok(&[
            "import",
            s(&fixture.join("model.onnx")),
            "-o",
            s(&cnn),
            "--name",
            "LeNet5",
        ]);
        cnnc_ok(&["check", s(&cnn)]);
        let got = predict(
            &cnn,
            &dir.path().join("lenet.safetensors"),
            &xp,
            &dir.path().join("y.npy"),
        );
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(
                (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                "{g} against PyTorch's {w}"
            );
        }
    }
    // The dynamo export without its data file: refused, naming the file.
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("model.onnx");
    std::fs::copy(
        common::repo().join("cnn-onnx/tests/torch/dynamo/lenet5/model.onnx"),
        &alone,
    )
    .unwrap();
    let out = cnnc(&["import", s(&alone), "-o", s(&dir.path().join("m.cnn"))]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model.onnx.data"), "{stderr}");
    assert!(!dir.path().join("m.cnn").exists());
}

#[test]
fn an_unsupported_operator_is_named_and_nothing_is_written() {
    use cnn_onnx::proto::{
        tensor_proto::DataType, tensor_shape_proto, type_proto, GraphProto, ModelProto, NodeProto,
        OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };
    let value = |name: &str| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto {
                    dim: [1, 3, 4, 4]
                        .iter()
                        .map(|&d| tensor_shape_proto::Dimension {
                            value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                            ..Default::default()
                        })
                        .collect(),
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = |op: &str, name: &str, i: &str, o: &str| NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: vec![i.into()],
        output: vec![o.into()],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("lrn".into()),
            node: vec![
                node("Relu", "relu1", "x", "r"),
                node("LRN", "norm1", "r", "y"),
            ],
            input: vec![value("x")],
            output: vec![value("y")],
            ..Default::default()
        }),
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("lrn.onnx");
    std::fs::write(&onnx, model.encode_to_vec()).unwrap();
    let cnn = dir.path().join("lrn.cnn");
    let out = cnnc(&["import", s(&onnx), "-o", s(&cnn)]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("node 'norm1' (LRN)"), "{stderr}");
    assert!(!cnn.exists() && !dir.path().join("lrn.safetensors").exists());

    // Not ONNX at all.
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"\xff\xff\xff\xff not a model").unwrap();
    let out = cnnc(&["import", s(&junk)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("junk.onnx"));
}

#[test]
fn keras_files_import_and_predict_as_keras_did() {
    let fixture = common::repo().join("cnn-onnx/tests/keras/resnet_bn");
    let dir = tempfile::tempdir().unwrap();
    let mut io = NpzReader::new(std::fs::File::open(fixture.join("io.npz")).unwrap()).unwrap();
    let x: ArrayD<f32> = io.by_name("x").unwrap();
    let want: ArrayD<f32> = io.by_name("y").unwrap();
    let x: Array4<f32> = x.into_dimensionality().unwrap();
    let xp = dir.path().join("x.npy");
    write_npy(&xp, &x).unwrap();
    for file in ["model.keras", "model.h5"] {
        let cnn = dir.path().join(format!("{file}.cnn"));
        let weights = dir.path().join(format!("{file}.npz"));
        cnnc_ok(&[
            "import",
            s(&fixture.join(file)),
            "-o",
            s(&cnn),
            "--weights-out",
            s(&weights),
            "--name",
            "Small",
        ]);
        let text = std::fs::read_to_string(&cnn).unwrap();
        assert!(text.contains("model Small {"), "{text}");
        assert!(text.contains("batchnorm nocenter;"), "{text}");
        cnnc_ok(&["check", s(&cnn)]);
        let got = predict(&cnn, &weights, &xp, &dir.path().join("got.npy"));
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want.iter()) {
            assert!(
                (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{file}: {g} against Keras's {w}"
            );
        }
    }
    // A Keras layer the language has no statement for: named, nothing written.
    let mut config: serde_json::Value = serde_json::from_slice(&zip_member(
        &std::fs::read(fixture.join("model.keras")).unwrap(),
        "config.json",
    ))
    .unwrap();
    let layers = config["config"]["layers"].as_array_mut().unwrap();
    let dense = layers
        .iter_mut()
        .find(|l| l["class_name"] == "Dense")
        .unwrap();
    dense["class_name"] = "EinsumDense".into();
    let name = dense["name"].as_str().unwrap().to_string();
    let bad = dir.path().join("bad.keras");
    std::fs::write(
        &bad,
        keras_zip(
            &config,
            &std::fs::read(fixture.join("model.keras")).unwrap(),
        ),
    )
    .unwrap();
    let out = cnnc(&["import", s(&bad), "-o", s(&dir.path().join("bad.cnn"))]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "layer '{name}' (EinsumDense): not a layer the language has"
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("bad.cnn").exists());
}

fn zip_member(zip: &[u8], name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut z.by_name(name).unwrap(), &mut out).unwrap();
    out
}

/// A `.keras` file of `config` with the weights of the `.keras` file `from`.
fn keras_zip(config: &serde_json::Value, from: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    out.start_file("config.json", options).unwrap();
    out.write_all(&serde_json::to_vec(config).unwrap()).unwrap();
    out.start_file("model.weights.h5", options).unwrap();
    out.write_all(&zip_member(from, "model.weights.h5"))
        .unwrap();
    out.finish().unwrap().into_inner()
}
