//! Language 2's single-path layers against the Keras oracle
//! (`../shared/oracle/goldens2`, FORMAT2.md): every case without graph
//! statements gives exactly Keras's output shape, parameter counts (trainable
//! and not), tensor shapes and resolved options for every top-level
//! statement, and the model's totals; every non-graph model of
//! `shape_cases2.json` is rejected where the spec rejects it (with an error on
//! the statement the oracle names), and gets its shapes and counts otherwise.
//!
//! Graph cases (`residual`, `add`, `concat`, `repeat`, `block`) are checked
//! statement by statement, nested ones included, in pre-order by path.

mod common;
use common::only_model;

use cnn_compiler::ir::{self, Activation, GraphKind, Op};
use cnn_compiler::{compile, render::line_col, Severity};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn goldens2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/goldens2")
}

/// Whether a model text uses a graph statement.
fn has_graph(src: &str) -> bool {
    src.split(|c: char| c.is_whitespace() || ";{}".contains(c))
        .any(|w| ["residual", "shortcut", "add", "concat", "repeat", "block"].contains(&w))
}

/// A JSON array of sizes.
fn dims(v: &Value) -> Vec<usize> {
    serde_json::from_value(v.clone()).expect("an array of non-negative integers")
}

fn u(v: &Value) -> u64 {
    v.as_u64().expect("a non-negative integer")
}

fn trainable(l: &ir::Layer) -> u64 {
    l.param_count - l.non_trainable
}

/// An `f32` option against the oracle's number.
fn same_real(r: ir::Real, v: &Value, what: &str) {
    let want = v.as_f64().expect("a number") as f32;
    assert_eq!(r.get(), want, "{what}");
}

/// The activation of a layer against the oracle's `activation` (and `slope`).
fn check_activation(a: Activation, k: &Value, what: &str) {
    assert_eq!(Some(a.keyword()), k["activation"].as_str(), "{what}");
    if let Activation::LeakyRelu(r) = a {
        same_real(r, &k["slope"], what);
    }
}

/// The resolved options of one layer against the oracle's.
fn check_options(l: &ir::Layer, k: &Value, what: &str) {
    let pads = |p: ir::Pad2| vec![p.top, p.bottom, p.left, p.right];
    let opt = |key: &str| k.get(key).filter(|v| !v.is_null());
    match &l.op {
        Op::Conv(c) => {
            assert_eq!(c.filters as u64, u(&k["filters"]), "{what}");
            assert_eq!(c.kernel.to_vec(), dims(&k["kernel"]), "{what}");
            assert_eq!(c.stride.to_vec(), dims(&k["stride"]), "{what}");
            assert_eq!(c.dilation.to_vec(), dims(&k["dilation"]), "{what}");
            assert_eq!(c.groups as u64, u(&k["groups"]), "{what}");
            assert_eq!(Some(c.bias), k["use_bias"].as_bool(), "{what}");
            assert_eq!(
                pads(c.pad),
                dims(&k["pads_top_bottom_left_right"]),
                "{what}"
            );
            let explicit = opt("pad").map_or(vec![0, 0], dims);
            assert_eq!(c.explicit_pad.to_vec(), explicit, "{what}");
            check_activation(c.activation, k, what);
        }
        Op::DwConv(c) => {
            assert_eq!(c.kernel.to_vec(), dims(&k["kernel"]), "{what}");
            assert_eq!(c.stride.to_vec(), dims(&k["stride"]), "{what}");
            assert_eq!(c.dilation.to_vec(), dims(&k["dilation"]), "{what}");
            assert_eq!(c.multiplier as u64, u(&k["multiplier"]), "{what}");
            assert_eq!(Some(c.bias), k["use_bias"].as_bool(), "{what}");
            assert_eq!(
                pads(c.pad),
                dims(&k["pads_top_bottom_left_right"]),
                "{what}"
            );
            let explicit = opt("pad").map_or(vec![0, 0], dims);
            assert_eq!(c.explicit_pad.to_vec(), explicit, "{what}");
            check_activation(c.activation, k, what);
        }
        Op::SepConv(c) => {
            assert_eq!(c.filters as u64, u(&k["filters"]), "{what}");
            assert_eq!(c.kernel.to_vec(), dims(&k["kernel"]), "{what}");
            assert_eq!(c.stride.to_vec(), dims(&k["stride"]), "{what}");
            assert_eq!(c.dilation.to_vec(), dims(&k["dilation"]), "{what}");
            assert_eq!(c.multiplier as u64, u(&k["multiplier"]), "{what}");
            assert_eq!(Some(c.bias), k["use_bias"].as_bool(), "{what}");
            assert_eq!(
                pads(c.pad),
                dims(&k["pads_top_bottom_left_right"]),
                "{what}"
            );
            check_activation(c.activation, k, what);
        }
        Op::Deconv(c) => {
            assert_eq!(c.filters as u64, u(&k["filters"]), "{what}");
            assert_eq!(c.kernel.to_vec(), dims(&k["kernel"]), "{what}");
            assert_eq!(c.stride.to_vec(), dims(&k["stride"]), "{what}");
            assert_eq!(Some(c.bias), k["use_bias"].as_bool(), "{what}");
            assert_eq!(c.crop.to_vec(), dims(&k["deconv_crop_top_left"]), "{what}");
            check_activation(c.activation, k, what);
        }
        Op::Pool(p) => {
            assert_eq!(
                pads(p.pad),
                dims(&k["pads_top_bottom_left_right"]),
                "{what}"
            );
        }
        Op::Dense(d) => {
            assert_eq!(d.units as u64, u(&k["units"]), "{what}");
            assert_eq!(Some(d.bias), k["use_bias"].as_bool(), "{what}");
            check_activation(d.activation, k, what);
        }
        Op::Activation(a) => check_activation(*a, k, what),
        Op::BatchNorm(b) => {
            same_real(b.momentum, &k["momentum"], what);
            same_real(b.epsilon, &k["epsilon"], what);
            assert_eq!(Some(b.scale), k["scale"].as_bool(), "{what}");
            assert_eq!(Some(b.center), k["center"].as_bool(), "{what}");
        }
        Op::Dropout(r) => same_real(*r, &k["rate"], what),
        Op::ZeroPad(p) => assert_eq!(pads(*p), dims(&k["zeropad"]), "{what}"),
        Op::Upsample {
            size,
            interpolation,
        } => {
            assert_eq!(size.to_vec(), dims(&k["size"]), "{what}");
            let want = k["interpolation"].as_str().unwrap();
            assert_eq!(serde_json::to_value(interpolation).unwrap(), want, "{what}");
        }
        Op::Graph(g) => {
            // Written branches: a residual's identity shortcut is not one.
            let written = match g.kind {
                GraphKind::Residual { shortcut } => 1 + usize::from(shortcut),
                _ => g.branches.len(),
            };
            match &g.kind {
                GraphKind::Repeat(n) => assert_eq!(*n as u64, u(&k["count"]), "{what}"),
                GraphKind::Use { block, values } => {
                    assert_eq!(Some(block.as_str()), k["block"].as_str(), "{what}");
                    let want: Vec<u64> = serde_json::from_value(k["args"].clone()).unwrap();
                    assert_eq!(values, &want, "{what}");
                }
                GraphKind::Residual { shortcut } => {
                    assert_eq!(Some(*shortcut), k["shortcut"].as_bool(), "{what}");
                    assert_eq!(written as u64, u(&k["branches"]), "{what}");
                }
                GraphKind::Add | GraphKind::Concat => {
                    assert_eq!(written as u64, u(&k["branches"]), "{what}")
                }
            }
        }
        Op::Flatten | Op::GlobalPool(_) => {}
        // No oracle case has one (Keras's random layers cannot be matched
        // draw for draw); `tests/augment_keras.rs` checks their transforms.
        Op::Augment(a) => panic!("{what}: an oracle case with {}", a.keyword()),
    }
}

#[test]
fn every_single_path_golden_case_matches_keras() {
    let dir = goldens2();
    let mut cases = 0;
    let mut graph_cases = 0;
    let mut layers_checked = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("goldens2 dir (../shared/oracle/goldens2)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(path.join("model.cnn")).unwrap();
        graph_cases += usize::from(has_graph(&src));
        let summary: Value =
            serde_json::from_str(&std::fs::read_to_string(path.join("summary.json")).unwrap())
                .unwrap();
        let m = only_model(&src, &name);
        assert_eq!(m.input.dims(), dims(&summary["input_shape"]), "{name}");
        // Every statement, nested ones too, in pre-order.
        let all: Vec<&Value> = summary["layers"].as_array().unwrap().iter().collect();
        let walk = m.walk();
        assert_eq!(walk.len(), all.len(), "{name}");
        for ((depth, l), k) in walk.into_iter().zip(all) {
            let what = format!("{name} layer {} `{}`", l.path, k["dsl"]);
            assert_eq!(l.path, k["path"].as_str().unwrap(), "{what}");
            assert_eq!(depth as u64, u(&k["depth"]), "{what}");
            assert_eq!(
                l.index.to_string(),
                l.path.split('.').next().unwrap(),
                "{what}"
            );
            let kind = match l.op {
                Op::Activation(_) => "activation",
                _ => l.op.keyword(),
            };
            assert_eq!(kind, k["kind"].as_str().unwrap(), "{what}");
            assert_eq!(l.output.dims(), dims(&k["output_shape"]), "{what}");
            assert_eq!(l.input.dims(), dims(&k["input_shape"]), "{what}");
            assert_eq!(l.param_count, u(&k["params"]), "{what}");
            assert_eq!(trainable(l), u(&k["trainable_params"]), "{what}");
            assert_eq!(l.non_trainable, u(&k["non_trainable_params"]), "{what}");
            // Every tensor, in Keras's order (that of `weights_keys`: the JSON
            // map of `weight_shapes` does not keep it), with its shape.
            let prefix = format!("layer{}.", l.path);
            let shapes = &k["weight_shapes"];
            let want: Vec<(String, Vec<usize>)> = summary["weights_keys"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|key| key.as_str()?.strip_prefix(&prefix))
                // The layer's own tensors, not those of the statements inside it.
                .filter(|n| !n.contains('.'))
                .map(|n| (n.to_string(), dims(&shapes[n])))
                .collect();
            let got: Vec<(String, Vec<usize>)> = l
                .params
                .iter()
                .map(|t| (t.name.to_string(), t.shape.clone()))
                .collect();
            assert_eq!(got, want, "{what}: tensors");
            let listed = shapes.as_object().map_or(0, |o| o.len());
            assert_eq!(got.len(), listed, "{what}: tensors");
            for t in &l.params {
                let moving = t.name.starts_with("moving_");
                assert_eq!(t.trainable, !moving, "{what}: {}", t.name);
            }
            check_options(l, k, &what);
            layers_checked += 1;
        }
        assert_eq!(m.total_params, u(&summary["total_params"]), "{name}");
        assert_eq!(
            m.total_params - m.non_trainable_params,
            u(&summary["trainable_params"]),
            "{name}"
        );
        assert_eq!(
            m.non_trainable_params,
            u(&summary["non_trainable_params"]),
            "{name}"
        );
        cases += 1;
    }
    // 47 case folders, of which 5 use graph statements (as of this oracle).
    assert!(cases >= 45, "only {cases} cases");
    assert!(graph_cases >= 5, "only {graph_cases} graph cases");
    assert!(layers_checked >= 70, "only {layers_checked} layers");
}

#[test]
fn shape_cases_follow_the_spec() {
    let text = std::fs::read_to_string(goldens2().join("shape_cases2.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut rejected = 0;
    let mut accepted = 0;
    let mut graphs = 0;
    for case in v["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let lines: Vec<String> = serde_json::from_value(case["dsl"].clone()).unwrap();
        let src = lines.join("\n");
        graphs += usize::from(has_graph(&src));
        let what = format!("{name}: {src}");
        if !case["spec_ok"].as_bool().unwrap() {
            let c = compile(&src, "Case");
            assert!(c.has_errors(), "the spec rejects {what}");
            assert!(c.models.is_empty(), "{what}");
            // The error is on the statement the oracle names (one per line,
            // `input` on line 1; a nested path is on its top-level line).
            let path: usize = case["spec_error_path"]
                .as_str()
                .unwrap()
                .split('.')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let on_line = c
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .any(|d| line_col(&src, d.span.start).0 == path + 2);
            assert!(
                on_line,
                "{what}: no error on statement {path}: {:#?}",
                c.diagnostics
            );
            rejected += 1;
            continue;
        }
        let m = only_model(&src, &what);
        accepted += 1;
        // A model only Keras rejects has no Keras numbers to compare with.
        let Some(layers) = case.get("layers").and_then(Value::as_array) else {
            continue;
        };
        let walk = m.walk();
        assert_eq!(walk.len(), layers.len(), "{what}");
        for ((_, l), k) in walk.into_iter().zip(layers) {
            assert_eq!(l.path, k["path"].as_str().unwrap(), "{what}");
            assert_eq!(l.output.dims(), dims(&k["output_shape"]), "{what}");
            assert_eq!(l.param_count, u(&k["params"]), "{what}");
            assert_eq!(trainable(l), u(&k["trainable_params"]), "{what}");
            assert_eq!(l.non_trainable, u(&k["non_trainable_params"]), "{what}");
        }
        assert_eq!(m.total_params, u(&case["total_params"]), "{what}");
        assert_eq!(
            m.non_trainable_params,
            u(&case["non_trainable_params"]),
            "{what}"
        );
    }
    assert!(rejected >= 10, "only {rejected} rejected cases");
    assert!(graphs >= 20, "only {graphs} graph cases");
    assert!(accepted >= 15, "only {accepted} accepted cases");
}
