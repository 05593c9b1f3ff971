//! Models Keras 3 saved (`tests/keras/make_fixtures.py`: a Sequential
//! LeNet-5; a functional net with batchnorm, an identity residual block and
//! a projection block; a net of padding, depthwise, separable and
//! transposed convs, a concat of three branches, pools, upsampling and
//! Keras's activation layers), each as `model.keras` and as the legacy
//! `model.h5`, imported and run in the interpreter on the fixture's input:
//! within 1e-5 of Keras's output (relative to max(1, |y|)); both files give
//! the same model.

mod support;

use std::path::Path;

use cnn_onnx::Imported;
use cnn_runtime::Model;
use ndarray::{ArrayD, Ix4};

fn fixture(name: &str, file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keras")
        .join(name)
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the imported model on the fixture's input: the worst difference
/// from Keras's output.
fn run(name: &str, m: &Imported) -> f32 {
    let mut net = support::interpreter(m);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keras")
        .join(name);
    let mut io = support::npz(&dir.join("io.npz")).unwrap();
    let x: ArrayD<f32> = io.by_name("x").unwrap();
    let y: ArrayD<f32> = io.by_name("y").unwrap();
    let x = x.into_dimensionality::<Ix4>().unwrap();
    let got = net.forward_batch(x.view()).unwrap();
    assert_eq!(got.shape(), y.shape(), "{name}");
    let mut worst = 0f32;
    for (a, b) in got.iter().zip(y.iter()) {
        let err = (a - b).abs() / b.abs().max(1.0);
        assert!(err <= 1e-5, "{name}: {a} vs Keras's {b}\n{}", m.source);
        worst = worst.max(err);
    }
    worst
}

/// Imports both files of fixture `name`, checks they agree and match
/// Keras: the text.
fn check(name: &str) -> String {
    let keras = cnn_onnx::import_keras(&fixture(name, "model.keras"), None)
        .unwrap_or_else(|e| panic!("{name}/model.keras: {e}"));
    let h5 = cnn_onnx::import_keras(&fixture(name, "model.h5"), None)
        .unwrap_or_else(|e| panic!("{name}/model.h5: {e}"));
    assert_eq!(keras, h5, "{name}: the .keras and .h5 files differ");
    let worst = run(name, &keras);
    println!("{name}: worst difference {worst:.1e}\n{}", keras.source);
    keras.source
}

#[test]
fn a_sequential_lenet5_from_keras() {
    let text = check("lenet5");
    assert!(
        text.contains(
            "model Lenet5 {\n    input 28x28x1;\n    conv 6 5x5 same tanh;\n    avgpool 2;"
        ),
        "{text}"
    );
    assert!(text.contains("flatten;\n    dense 120 tanh;"), "{text}");
}

#[test]
fn a_functional_resnet_with_batchnorm_from_keras() {
    let text = check("resnet_bn");
    for want in [
        "batchnorm momentum 0.9 epsilon 0.00001;",
        "} shortcut {\n        conv 16 1x1 stride 2 nobias;\n        batchnorm nocenter;",
        "globalavgpool;\n    dropout 0.3;\n    dense 10 softmax;",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}

#[test]
fn a_net_of_many_layers_from_keras() {
    let text = check("mixed");
    for want in [
        "zeropad 1x2x0x1;",
        "dwconv 3x3 multiplier 2 relu6;",
        "sepconv 8 3x3 same silu;",
        "concat {",
        "conv 3 3x1 same dilation 2x1 leaky_relu 0.1;",
        "deconv 6 3x3 stride 2 same elu;",
        "maxpool 2x3 stride 2 same;",
        "upsample 2;",
        "conv 5 3x3 stride 2x1 hard_sigmoid;",
        "dense 7 selu;\n    softmax;",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}

#[test]
fn keras_2s_hard_sigmoid_is_refused() {
    // The mixed net's file stamped `keras_version = 2.15.0`: its conv's
    // `hard_sigmoid` meant `0.2 x + 0.5` there.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/keras/keras2/hard_sigmoid.h5");
    let e = cnn_onnx::import_keras(&std::fs::read(path).unwrap(), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(Conv2D): activation 'hard_sigmoid' of Keras 2"),
        "{e}"
    );
    // The same file as Keras 3 saved it imports (a_net_of_many_layers_from_keras).
}

#[test]
fn other_files_are_refused_with_a_reason() {
    let onnx = b"\x08\x08\x12\x04test";
    let e = cnn_onnx::import_keras(onnx, None).unwrap_err().to_string();
    assert!(e.starts_with("not a Keras model: neither"), "{e}");
    // A .keras file's weights alone (no config).
    let bytes = fixture("lenet5", "model.keras");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes[..])).unwrap();
    let mut weights = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("model.weights.h5").unwrap(), &mut weights)
        .unwrap();
    let e = cnn_onnx::import_keras(&weights, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("model_config"), "{e}");
}
