//! Models PyTorch exported (`tests/torch/make_fixtures.py`: LeNet-5, a
//! small ResNet with batchnorm, and a net of depthwise and grouped convs,
//! padded pools, a concat, a transposed conv, upsampling and PyTorch's
//! spellings of relu6, hard swish, silu and gelu), imported and run in the
//! interpreter on the fixture's input: within 1e-4 of PyTorch's output
//! (relative to max(1, |y|)). The same three nets exported by the dynamo
//! exporter (`tests/torch/dynamo/`: torch.onnx.export's default since torch
//! 2.9, weights in an external file, batchnorm folded, static shapes) too.

mod support;

use std::path::Path;

use cnn_runtime::Model;
use ndarray::{ArrayD, Ix4};

/// Imports fixture `name`, runs it, and returns the text and the worst
/// difference from PyTorch's output.
fn check(name: &str) -> (String, f32) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/torch")
        .join(name);
    let bytes = std::fs::read(dir.join("model.onnx")).unwrap();
    // The dynamo exporter's weights are in a file beside the model.
    let m = cnn_onnx::import_with_external(&bytes, None, &|location, offset, len| {
        let data = std::fs::read(dir.join(location)).map_err(|e| e.to_string())?;
        let at = usize::try_from(offset).map_err(|e| e.to_string())?;
        data.get(at..at + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "past the end".to_string())
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut net = support::interpreter(&m);
    let mut io =
        ndarray_npy::NpzReader::new(std::fs::File::open(dir.join("io.npz")).unwrap()).unwrap();
    let x: ArrayD<f32> = io.by_name("x").unwrap();
    let y: ArrayD<f32> = io.by_name("y").unwrap();
    // PyTorch's NCHW input in the runtime's NHWC.
    let x = x
        .into_dimensionality::<Ix4>()
        .unwrap()
        .permuted_axes([0, 2, 3, 1]);
    let x = x.as_standard_layout().to_owned();
    let got = net.forward_batch(x.view()).unwrap();
    assert_eq!(got.shape(), y.shape(), "{name}");
    let mut worst = 0f32;
    for (a, b) in got.iter().zip(y.iter()) {
        let err = (a - b).abs() / b.abs().max(1.0);
        assert!(err <= 1e-4, "{name}: {a} vs PyTorch's {b}\n{}", m.source);
        worst = worst.max(err);
    }
    println!("{name}: worst difference {worst:.1e}");
    (m.source, worst)
}

#[test]
fn lenet5_from_pytorch() {
    let (text, _) = check("lenet5");
    assert!(
        text.contains("conv 6 5x5 same relu;\n    maxpool 2;"),
        "{text}"
    );
    assert!(text.contains("flatten;\n    dense 120 relu;"), "{text}");
}

#[test]
fn a_small_resnet_from_pytorch() {
    let (text, _) = check("tiny_resnet");
    assert!(
        text.contains("} shortcut {\n        conv 16 1x1 stride 2;"),
        "{text}"
    );
    assert!(text.contains("globalavgpool;\n    dense 5;"), "{text}");
}

#[test]
fn a_net_of_many_layers_from_pytorch() {
    let (text, _) = check("mixed");
    for want in [
        "dwconv 3x3 same multiplier 2 relu6;",
        "hard_silu;",
        "zeropad 1x1x1x1;",
        "gelu;",
        "silu;",
        "deconv 6 4x4 stride 2 same sigmoid;",
        "upsample 2;",
        "batchnorm epsilon 0.00001 momentum 0.9;",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}

#[test]
fn dynamo_exports_with_external_weights_from_pytorch() {
    for name in ["lenet5", "tiny_resnet", "mixed"] {
        let (text, worst) = check(&format!("dynamo/{name}"));
        assert!(worst <= 1e-4, "{name}");
        assert!(
            text.contains("// Imported from ONNX (graph 'main_graph', opset"),
            "{text}"
        );
    }
    // Without a reader of external files: refused, naming the file.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torch/dynamo/lenet5");
    let e = cnn_onnx::import(&std::fs::read(dir.join("model.onnx")).unwrap(), None).unwrap_err();
    assert!(
        e.to_string().contains("external file 'model.onnx.data'"),
        "{e}"
    );
}
