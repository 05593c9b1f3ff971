//! Export then import, on every oracle case with a weights file
//! (`../shared/oracle/goldens/` and `goldens2/`): the case's model compiled
//! and run in the interpreter with its weights, exported to ONNX (NHWC and
//! NCHW edges), imported back to `.cnn` text and weights, that text compiled
//! and run with those weights on the case's input. The outputs must agree
//! within 1e-6 (relative to max(1, |y|)), the parameter counts must be
//! equal, and the layers must give the same output sizes (dropout, which
//! ONNX's inference graph leaves out, aside). All cases run; failures are
//! listed together.

mod support;

use std::collections::HashMap;
use std::path::Path;

use cnn_plan::{LayerSpec, Plan};
use cnn_runtime::interp::Sequential;
use cnn_runtime::Model;
use ndarray::{ArrayD, Ix4};
use support::{cases, check_every, npz, oracle};

/// The plan of `src`, or the compiler's diagnostics.
fn compile(src: &str) -> Result<Plan, String> {
    let c = cnn_compiler::compile(src, "Case");
    if c.has_errors() {
        return Err(format!("{:?}", c.diagnostics));
    }
    cnn_compiler::lower::plan(&c.models[0])
}

/// An interpreter of `plan` holding exactly the tensors `weights` names.
fn model(
    plan: Plan,
    weights: &HashMap<String, (Vec<usize>, Vec<f32>)>,
) -> Result<Sequential, String> {
    let mut net = Sequential::from_plan(plan, 0);
    let mut used = 0;
    for p in net.params_mut() {
        let (shape, data) = weights
            .get(&p.name)
            .ok_or_else(|| format!("no weight {}", p.name))?;
        if *shape != p.shape {
            return Err(format!(
                "{}: shape {shape:?}, the model's {:?}",
                p.name, p.shape
            ));
        }
        p.data.copy_from_slice(data);
        used += 1;
    }
    if used != weights.len() {
        return Err(format!("{} weights for {used} tensors", weights.len()));
    }
    Ok(net)
}

/// The output sizes of the plan's layers, dropout and augmentation aside.
fn sizes(plan: &Plan) -> Vec<usize> {
    plan.steps
        .iter()
        .filter(|s| !matches!(s.layer, LayerSpec::Dropout { .. } | LayerSpec::Augment(_)))
        .map(|s| plan.buffers[s.output].len)
        .collect()
}

/// One case: the worst difference of the two layouts' round trips.
fn check(dir: &Path, case: &str) -> Result<f32, String> {
    let dir = dir.join(case);
    let src = std::fs::read_to_string(dir.join("model.cnn")).map_err(|e| e.to_string())?;
    let plan = compile(&src)?;
    let mut w = npz(&dir.join("weights.npz"))?;
    let mut weights = HashMap::new();
    for t in plan.tensors.iter() {
        let a: ArrayD<f32> = w.by_name(&t.name).map_err(|e| format!("{}: {e}", t.name))?;
        weights.insert(
            t.name.to_string(),
            (a.shape().to_vec(), a.iter().copied().collect::<Vec<f32>>()),
        );
    }
    let mut io = npz(&dir.join("io.npz"))?;
    let x: ArrayD<f32> = io.by_name("x").map_err(|e| e.to_string())?;
    let x = x.into_dimensionality::<Ix4>().map_err(|e| e.to_string())?;
    let mut original = model(plan.clone(), &weights)?;
    let want = original
        .forward_batch(x.view())
        .map_err(|e| e.to_string())?
        .to_owned();
    let params: usize = plan
        .tensors
        .iter()
        .map(|t| t.shape.iter().product::<usize>())
        .sum();
    let mut worst = 0f32;
    for layout in [cnn_onnx::Layout::Nhwc, cnn_onnx::Layout::Nchw] {
        let options = cnn_onnx::Options {
            name: case.to_string(),
            layout,
        };
        let bytes = cnn_onnx::export(&plan, |n| weights.get(n).map(|w| w.1.clone()), &options)
            .map_err(|e| format!("export: {e}"))?;
        let imported =
            cnn_onnx::import(&bytes, None).map_err(|e| format!("import ({layout:?}): {e}"))?;
        let plan2 = compile(&imported.source).map_err(|e| {
            format!(
                "({layout:?}) the imported model does not compile: {e}\n{}",
                imported.source
            )
        })?;
        let got_params: usize = plan2
            .tensors
            .iter()
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
        if got_params != params {
            return Err(format!(
                "({layout:?}) {got_params} parameters, the original {params}\n{}",
                imported.source
            ));
        }
        if sizes(&plan2) != sizes(&plan) {
            return Err(format!(
                "({layout:?}) layer sizes {:?}, the original {:?}\n{}",
                sizes(&plan2),
                sizes(&plan),
                imported.source
            ));
        }
        let map = imported
            .weights
            .iter()
            .map(|w| (w.name.clone(), (w.shape.clone(), w.data.clone())))
            .collect();
        let mut back =
            model(plan2, &map).map_err(|e| format!("({layout:?}) {e}\n{}", imported.source))?;
        let got = back.forward_batch(x.view()).map_err(|e| e.to_string())?;
        if got.shape() != want.shape() {
            return Err(format!(
                "({layout:?}) output {:?}, want {:?}",
                got.shape(),
                want.shape()
            ));
        }
        for (a, b) in got.iter().zip(want.iter()) {
            let err = (a - b).abs() / b.abs().max(1.0);
            if err.is_nan() || err > 1e-6 {
                return Err(format!(
                    "({layout:?}) got {a}, want {b}\n{}",
                    imported.source
                ));
            }
            worst = worst.max(err);
        }
    }
    Ok(worst)
}

fn every_case(set: &str, at_least: usize) {
    let dir = oracle(set);
    let cases: Vec<String> = cases(&dir)
        .into_iter()
        .filter(|c| dir.join(c).join("weights.npz").exists())
        .collect();
    check_every(set, &cases, at_least, |case| check(&dir, case));
}

#[test]
fn every_language_one_case_round_trips_through_onnx() {
    every_case("goldens", 40);
}

#[test]
fn every_language_two_case_round_trips_through_onnx() {
    every_case("goldens2", 45);
}

#[test]
fn the_imported_text_reads_as_written() {
    // A small graph's text, whole: names, options, activations folded.
    let src = "input 8x8x3;\nconv 4 3x3 stride 2 same relu;\nresidual { conv 4 3x3 same nobias; batchnorm } shortcut { conv 4 1x1 }\nmaxpool 2;\nflatten;\ndense 3 softmax;\n";
    let plan = support::plan_of(src);
    let weights: HashMap<String, Vec<f32>> = plan
        .tensors
        .iter()
        .map(|t| {
            let n: usize = t.shape.iter().product();
            (
                t.name.to_string(),
                (0..n).map(|i| 0.5 + i as f32 / 64.0).collect(),
            )
        })
        .collect();
    let bytes = cnn_onnx::export(
        &plan,
        |n| weights.get(n).cloned(),
        &cnn_onnx::Options::default(),
    )
    .unwrap();
    let imported = cnn_onnx::import(&bytes, Some("small net")).unwrap();
    let body: Vec<&str> = imported.source.lines().skip(1).map(str::trim).collect();
    assert_eq!(
        body,
        [
            "model SmallNet {",
            "input 8x8x3;",
            "conv 4 3x3 stride 2 same relu;",
            "residual {",
            "conv 4 3x3 same nobias;",
            "batchnorm;",
            "} shortcut {",
            "conv 4 1x1;",
            "}",
            "maxpool 2;",
            "flatten;",
            "dense 3 softmax;",
            "}",
        ]
    );
    let names: Vec<&str> = imported.weights.iter().map(|w| w.name.as_str()).collect();
    let want: Vec<&str> = plan.tensors.iter().map(|t| &*t.name).collect();
    assert_eq!(names, want);
}
