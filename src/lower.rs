//! Building an interpreter from a checked model ([`cnn_compiler::ir::Model`]):
//! the compiler's one lowering ([`cnn_compiler::lower::plan`]) run by the
//! runtime's executor. This lives in the facade crate because the runtime must
//! not depend on the compiler.

use cnn_compiler::ir;
use cnn_runtime::interp::Sequential;
use cnn_runtime::{Error, Result};

/// An interpreted model of `m`, its parameters initialised from `seed`
/// (Glorot-uniform kernels, zero biases, as Keras and generated code do).
pub fn interpreter(m: &ir::Model, seed: u64) -> Result<Sequential> {
    let plan = cnn_compiler::lower::plan(m).map_err(Error::Invalid)?;
    Ok(Sequential::from_plan(plan, seed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnn_runtime::Model;
    use std::path::{Path, PathBuf};

    /// An oracle case: its checked model and the folder of its goldens.
    fn oracle_case(case: &str) -> (ir::Model, PathBuf) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/oracle/goldens")
            .join(case);
        let src = std::fs::read_to_string(dir.join("model.cnn")).unwrap();
        let mut c = cnn_compiler::compile(&src, "Case");
        assert!(!c.has_errors(), "{case}: {:?}", c.diagnostics);
        (c.models.swap_remove(0), dir)
    }

    #[test]
    fn interpreted_oracle_model_reproduces_keras_output() {
        for case in [
            "cls_small",
            "lenet5",
            "same_avgpool3_s2_in7",
            "conv_softmax_channels",
        ] {
            let (m, dir) = oracle_case(case);
            let mut net = interpreter(&m, 0).unwrap();
            cnn_runtime::io::load_weights(&mut net, &dir.join("weights.npz")).unwrap();
            let npz = cnn_runtime::io::Npz::open(&dir.join("io.npz")).unwrap();
            let p = Path::new("io.npz");
            let x = npz.read("x").unwrap().into_f32(p, "x").unwrap();
            let x = x.into_dimensionality::<ndarray::Ix4>().unwrap();
            let y = npz.read("y").unwrap().into_f32(p, "y").unwrap();
            let got = net.forward_batch(x.view()).unwrap();
            let want: Vec<f32> = y.iter().copied().collect();
            let scale = want.iter().fold(0f32, |a, v| a.max(v.abs())).max(1e-6);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * scale + 1e-6, "{case}: {g} vs {w}");
            }
            assert_eq!(got.len(), want.len());
        }
    }
}
