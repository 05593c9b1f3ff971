//! Every case of the Keras oracle (`../shared/oracle/goldens/` and
//! `goldens2/`), exported to ONNX and run in tract: the case's `model.cnn`
//! compiled and lowered to its plan, its `weights.npz` (seed_150: the
//! weights formula of FORMAT.md), its input `x` from `io.npz`, and the
//! oracle's inference output `y` within 1e-5 relative to max(1, |y|), as
//! the project's parity tests. All cases run; the failures are listed
//! together.

mod support;

use std::collections::HashMap;
use std::path::Path;

use ndarray::ArrayD;
use support::{cases, check_every, compare, npz, oracle, plan_of, run};

fn read(io: &mut ndarray_npy::NpzReader<std::fs::File>, key: &str) -> Result<ArrayD<f32>, String> {
    io.by_name(key).map_err(|e| format!("{key}: {e}"))
}

/// seed_150's weights: FORMAT.md's integer-hash formula.
fn formula_weights(dir: &Path) -> Result<HashMap<String, Vec<f32>>, String> {
    fn lowbias32(mut h: u32) -> u32 {
        h ^= h >> 16;
        h = h.wrapping_mul(0x7feb_352d);
        h ^= h >> 15;
        h = h.wrapping_mul(0x846c_a68b);
        h ^= h >> 16;
        h
    }
    let text =
        std::fs::read_to_string(dir.join("weights_formula.json")).map_err(|e| e.to_string())?;
    let f: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for (name, t) in f["tensors"].as_object().ok_or("no tensors")? {
        let seed = t["seed"].as_u64().ok_or("seed")? as u32;
        let exp = t["exp"].as_i64().ok_or("exp")? as i32;
        let n: u64 = t["shape"]
            .as_array()
            .ok_or("shape")?
            .iter()
            .map(|d| d.as_u64().unwrap_or(0))
            .product();
        let v: Vec<f32> = (0..n as u32)
            .map(|k| {
                let h = lowbias32(k.wrapping_add(seed.wrapping_mul(0x9e37_79b9)));
                ((h >> 16) as f32 - 32768.0) * 2f32.powi(-(15 + exp))
            })
            .collect();
        let first8 = t["first8"].as_array().ok_or("first8")?;
        for (a, b) in v.iter().zip(first8) {
            if f64::from(*a) != b.as_f64().unwrap_or(f64::NAN) {
                return Err(format!("{name}: the formula disagrees with first8"));
            }
        }
        out.insert(name.clone(), v);
    }
    Ok(out)
}

/// One case: `Ok(worst relative error)` or what went wrong.
fn check(dir: &Path, case: &str) -> Result<f32, String> {
    let dir = dir.join(case);
    let src = std::fs::read_to_string(dir.join("model.cnn")).map_err(|e| e.to_string())?;
    let plan = plan_of(&src);
    let weights = if dir.join("weights.npz").exists() {
        let mut w = npz(&dir.join("weights.npz"))?;
        let mut map = HashMap::new();
        for t in plan.tensors.iter() {
            let a = read(&mut w, &t.name)?;
            if a.shape() != &*t.shape {
                return Err(format!("{}: shape {:?} in the file", t.name, a.shape()));
            }
            map.insert(t.name.to_string(), a.iter().copied().collect::<Vec<f32>>());
        }
        map
    } else {
        formula_weights(&dir)?
    };
    let options = cnn_onnx::Options {
        name: case.to_string(),
        ..Default::default()
    };
    let bytes = cnn_onnx::export(&plan, |n| weights.get(n).cloned(), &options)
        .map_err(|e| format!("export: {e}"))?;
    let mut io = npz(&dir.join("io.npz"))?;
    let x = read(&mut io, "x")?;
    let y = read(&mut io, "y")?;
    let (shape, got) = run(&bytes, x.shape(), &x.iter().copied().collect::<Vec<_>>())
        .map_err(|e| format!("tract: {e:?}"))?;
    if shape != y.shape() {
        return Err(format!("output shape {shape:?}, want {:?}", y.shape()));
    }
    compare(&got, &y.iter().copied().collect::<Vec<_>>())
}

/// Runs every case of `set`, prints one line per case, and fails listing
/// every case that does not match.
fn every_case(set: &str, at_least: usize) {
    let dir = oracle(set);
    check_every(set, &cases(&dir), at_least, |case| check(&dir, case));
}

#[test]
fn every_language_one_case_runs_in_tract_as_in_keras() {
    every_case("goldens", 40);
}

#[test]
fn every_language_two_case_runs_in_tract_as_in_keras() {
    every_case("goldens2", 45);
}
