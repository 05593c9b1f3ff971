//! Shared by the tests: plans from `.cnn` text and exported files run in tract.
#![allow(dead_code)]

use cnn_plan::Plan;
use tract_onnx::prelude::*;

/// The plan of the (only) model of `src`, as the compiler lowers it.
pub fn plan_of(src: &str) -> Plan {
    let compiled = cnn_compiler::compile(src, "Case");
    assert!(!compiled.has_errors(), "{:?}", compiled.diagnostics);
    cnn_compiler::lower::plan(&compiled.models[0]).expect("plan")
}

/// Runs the ONNX file `bytes` in tract on one input of `shape` (batch first)
/// and returns the output's shape and values (row-major).
pub fn run(bytes: &[u8], shape: &[usize], x: &[f32]) -> TractResult<(Vec<usize>, Vec<f32>)> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_optimized()?
        .into_runnable()?;
    let input = Tensor::from_shape(shape, x)?;
    let out = model.run(tvec!(input.into()))?;
    let y = out[0].to_plain_array_view::<f32>()?;
    Ok((y.shape().to_vec(), y.iter().copied().collect()))
}

/// The oracle's forward tolerance (as the project's parity tests):
/// `|got - want| <= 1e-5 * max(1, |want|)` for every value. Returns the worst
/// `|got - want| / max(1, |want|)`, or where it first fails.
pub fn compare(got: &[f32], want: &[f32]) -> Result<f32, String> {
    if got.len() != want.len() {
        return Err(format!("{} values, want {}", got.len(), want.len()));
    }
    let mut worst = 0f32;
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let err = (a - b).abs() / b.abs().max(1.0);
        // A NaN or an infinity fails too.
        if err.is_nan() || err > 1e-5 {
            return Err(format!("[{i}]: got {a}, want {b} (error {err:e})"));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}
