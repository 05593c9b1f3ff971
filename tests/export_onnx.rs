//! `export_onnx` on a model of the `cnn!` macro writes the same ONNX file as
//! the library's exporter does for the interpreted twin with the same
//! weights (the file itself is checked by running it: `cnn-onnx/tests/` in
//! tract, `cnnc/tests/export_onnx.rs` in ONNX Runtime); a path it cannot
//! write to is an error that leaves nothing behind.

use cnn::onnx::{to_onnx, Options};

cnn::cnn! { model Exported {
    input 12x12x3;
    conv 8 3x3 same; batchnorm; relu;
    residual { conv 8 3x3 same relu; conv 8 3x3 same };
    maxpool 2; flatten; dense 4 softmax
} }

#[test]
fn a_macro_model_exports_what_its_interpreted_twin_does() {
    let src = "input 12x12x3; conv 8 3x3 same; batchnorm; relu; \
               residual { conv 8 3x3 same relu; conv 8 3x3 same }; \
               maxpool 2; flatten; dense 4 softmax";
    let c = cnn_compiler::compile(src, "Exported");
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    let twin = cnn::lower::interpreter(&c.models[0], 3).expect("plan");
    let net = Exported::new(3);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exported.onnx");
    net.export_onnx(&path).unwrap();
    let written = std::fs::read(&path).unwrap();
    let opts = Options {
        name: "exported".into(),
        ..Options::default()
    };
    let want = to_onnx(&twin, twin.plan(), &opts).unwrap();
    assert!(written.len() > 4 * 8 * 8 * 9, "{} bytes", written.len());
    assert_eq!(written, want);

    // Other weights, another file: the weights are the model's own.
    let other = to_onnx(&Exported::new(4), Exported::plan(), &opts).unwrap();
    assert_ne!(other, written);
}

#[test]
fn a_path_that_cannot_be_written_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/folder/m.onnx");
    assert!(Exported::new(0).export_onnx(&path).is_err());
    assert!(!dir.path().join("no").exists());
}
