//! ONNX export of a model with its current weights: the model's plan (what
//! the interpreter and generated code run) lowered to standard ONNX ops by
//! [`cnn_onnx`], for ONNX Runtime, TensorRT or Triton. Generated models have
//! it as `export_onnx(path)`; `cnnc export FILE --weights W -o model.onnx`
//! does the same from the command line.
//!
//! ```no_run
//! cnn::cnn! { model Tiny { input 8x8x1; conv 4 3x3 same relu; flatten; dense 2 softmax } }
//!
//! fn main() -> Result<(), cnn::Error> {
//!     let net = Tiny::new(0);
//!     net.export_onnx("tiny.onnx")?;
//!     // or, with options (an NCHW input and output):
//!     let opts = cnn::onnx::Options { layout: cnn::onnx::Layout::Nchw, ..Default::default() };
//!     let bytes = cnn::onnx::to_onnx(&net, Tiny::plan(), &opts)?;
//!     # let _ = bytes;
//!     Ok(())
//! }
//! ```

use crate::runtime::{Error, Model, Plan, Result};
use std::collections::HashMap;
use std::path::Path;

pub use cnn_onnx::{ExportError, Layout, Options, OPSET};

/// The ONNX file of `model` (run by `plan`) with its current weights.
pub fn to_onnx(model: &dyn Model, plan: &Plan, options: &Options) -> Result<Vec<u8>> {
    let params: HashMap<String, &[f32]> = model
        .params()
        .into_iter()
        .map(|p| (p.name, p.data))
        .collect();
    cnn_onnx::export(plan, |name| params.get(name).map(|d| d.to_vec()), options)
        .map_err(|e| Error::Invalid(format!("ONNX export: {e}")))
}

/// Writes [`to_onnx`] of `model` to `path` (atomically), named after the
/// file's stem, NHWC at both ends as the model is.
pub fn save_onnx(model: &dyn Model, plan: &Plan, path: &Path) -> Result<()> {
    let name = path
        .file_stem()
        .map_or("cnn".to_string(), |s| s.to_string_lossy().into_owned());
    let bytes = to_onnx(
        model,
        plan,
        &Options {
            name,
            ..Options::default()
        },
    )?;
    crate::runtime::io::write_atomic(path, &bytes)
}
