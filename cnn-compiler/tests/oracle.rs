//! Shapes and parameter counts against the Keras oracle (`../shared/oracle/goldens`).
//!
//! Every golden case's `model.cnn` (a bare body) must give exactly Keras's output
//! shape and parameter count for every layer, and the total; every model of
//! `shape_cases.json` that Keras rejects must be rejected, the others must get
//! Keras's shapes.

mod common;
use common::only_model;

use cnn_compiler::{compile, ir};
use serde_json::Value;
use std::path::PathBuf;

fn goldens() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/goldens")
}

/// A JSON array of sizes.
fn dims(v: &Value) -> Vec<usize> {
    serde_json::from_value(v.clone()).expect("an array of non-negative integers")
}

#[test]
fn every_golden_case_matches_keras_shapes_and_params() {
    let dir = goldens();
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).expect("goldens dir (../shared/oracle/goldens)") {
        let path = entry.unwrap().path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(path.join("model.cnn")).unwrap();
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(path.join("summary.json")).unwrap())
                .unwrap();
        let m = only_model(&src, &name);
        assert_eq!(m.input.dims(), dims(&summary["input_shape"]), "{name}");
        let layers = summary["layers"].as_array().unwrap();
        assert_eq!(m.layers.len(), layers.len(), "{name}");
        for (l, k) in m.layers.iter().zip(layers) {
            assert_eq!(l.index as u64, k["index"].as_u64().unwrap(), "{name}");
            assert_eq!(l.op.keyword(), k["kind"].as_str().unwrap(), "{name}");
            assert_eq!(
                l.output.dims(),
                dims(&k["output_shape"]),
                "{name} layer {}",
                l.index
            );
            assert_eq!(
                l.param_count,
                k["params"].as_u64().unwrap(),
                "{name} layer {}",
                l.index
            );
            if let Some(p) = k.get("pads_top_bottom_left_right") {
                let pad = match &l.op {
                    ir::Op::Conv(c) => c.pad,
                    ir::Op::Pool(p) => p.pad,
                    _ => panic!("{name}: pads on a layer without padding"),
                };
                assert_eq!(
                    vec![pad.top, pad.bottom, pad.left, pad.right],
                    dims(p),
                    "{name} layer {} padding split",
                    l.index
                );
            }
            if let Some(w) = k.get("weight_shapes") {
                let names: Vec<&str> = l.params.iter().map(|t| t.name).collect();
                assert_eq!(names, ["kernel", "bias"], "{name}");
                assert_eq!(l.params[0].shape, dims(&w["kernel"]), "{name}");
                assert_eq!(l.params[1].shape, dims(&w["bias"]), "{name}");
            }
            if let Some(s) = k.get("stride") {
                let st = match &l.op {
                    ir::Op::Conv(c) => c.stride,
                    ir::Op::Pool(p) => p.stride,
                    _ => panic!("{name}: stride on a layer without one"),
                };
                assert_eq!(st.to_vec(), dims(s), "{name}");
            }
        }
        assert_eq!(
            m.total_params,
            summary["total_params"].as_u64().unwrap(),
            "{name}"
        );
        cases += 1;
    }
    assert_eq!(cases, 42, "the oracle has 42 cases");
}

#[test]
fn shape_cases_accept_and_reject_like_keras() {
    let text = std::fs::read_to_string(goldens().join("shape_cases.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let src: Vec<&str> = case["dsl"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        let src = src.join("\n");
        let c = compile(&src, "Case");
        if case["keras_ok"].as_bool().unwrap() {
            let m = only_model(&src, &src);
            let shapes: Vec<Vec<usize>> = case["output_shapes"]
                .as_array()
                .unwrap()
                .iter()
                .map(dims)
                .collect();
            let got: Vec<Vec<usize>> = m.layers.iter().map(|l| l.output.dims()).collect();
            assert_eq!(got, shapes, "{src}");
            let params: Vec<u64> = case["params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap())
                .collect();
            let got: Vec<u64> = m.layers.iter().map(|l| l.param_count).collect();
            assert_eq!(got, params, "{src}");
            assert_eq!(m.total_params, case["total_params"].as_u64().unwrap());
        } else {
            assert!(
                c.has_errors(),
                "Keras rejects this model, so must we:\n{src}"
            );
            assert!(c.models.is_empty());
            assert!(
                c.diagnostics
                    .iter()
                    .any(|d| d.code == cnn_compiler::Code::WindowTooBig),
                "{src}: {:#?}",
                c.diagnostics
            );
        }
    }
}

#[test]
fn course_examples() {
    let m = only_model(
        "input 32x32x3; conv 32 3x3 same; conv 32 3x3 valid",
        "course32",
    );
    let shapes: Vec<String> = m.layers.iter().map(|l| l.output.to_string()).collect();
    assert_eq!(shapes, ["32x32x32", "30x30x32"]);

    let m = only_model(
        "input 150x150x3; conv 32 3x3 same relu; maxpool 2; conv 32 4x4 valid; maxpool 2; flatten; dense 256 relu; dense 5 softmax",
        "seed",
    );
    let shapes: Vec<Vec<usize>> = m.layers.iter().map(|l| l.output.dims()).collect();
    assert_eq!(
        shapes,
        vec![
            vec![150, 150, 32],
            vec![75, 75, 32],
            vec![72, 72, 32],
            vec![36, 36, 32],
            vec![41472],
            vec![256],
            vec![5]
        ]
    );
    assert_eq!(m.total_params, 10_635_685);
}
