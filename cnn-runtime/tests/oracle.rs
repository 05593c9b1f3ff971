//! The interpreter and kernels against the Keras oracle (`../shared/oracle/goldens`):
//! every layer output, the gradients of the linear loss `sum(y * g)` and, for the
//! classifier cases, of the mean cross-entropy.
//!
//! Specs are built from each case's `summary.json` (the runtime does not depend on
//! the compiler). Tolerances are the oracle README's: `|a - b| <= 1e-5 + 1e-4 *
//! max|b|` per tensor, for outputs and for gradients (relative to the largest
//! gradient in that tensor).

use std::fs::File;
use std::path::{Path, PathBuf};

use cnn_runtime::interp::Sequential;
use cnn_runtime::loss::SoftmaxCrossEntropy;
use cnn_runtime::ndarray::{ArrayD, ArrayView2, Ix2, Ix4};
use cnn_runtime::{Activation, Conv2dSpec, DenseSpec, LayerSpec, Model, Pool2dSpec, PoolKind};
use ndarray_npy::NpzReader;
use serde_json::Value;

fn goldens() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/goldens")
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("int") as usize)
        .collect()
}

fn activation(v: &Value) -> Activation {
    match v.as_str().expect("activation") {
        "linear" => Activation::Linear,
        "relu" => Activation::Relu,
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "softmax" => Activation::Softmax,
        other => panic!("unknown activation {other}"),
    }
}

/// LayerSpecs from summary.json.
fn specs(summary: &Value) -> ([usize; 3], Vec<LayerSpec>) {
    let inp = usizes(&summary["input_shape"]);
    let input = [inp[0], inp[1], inp[2]];
    let mut shape = inp.clone();
    let mut out = Vec::new();
    for l in summary["layers"].as_array().expect("layers") {
        let os = usizes(&l["output_shape"]);
        let kind = l["kind"].as_str().expect("kind");
        let spec = match kind {
            "conv" => {
                let k = usizes(&l["kernel"]);
                let s = usizes(&l["stride"]);
                let p = usizes(&l["pads_top_bottom_left_right"]);
                LayerSpec::Conv2d {
                    spec: Conv2dSpec {
                        in_h: shape[0],
                        in_w: shape[1],
                        in_c: shape[2],
                        out_h: os[0],
                        out_w: os[1],
                        out_c: os[2],
                        kh: k[0],
                        kw: k[1],
                        sh: s[0],
                        sw: s[1],
                        dh: 1,
                        dw: 1,
                        pad_top: p[0],
                        pad_left: p[2],
                    },
                    act: activation(&l["activation"]),
                    bias: true,
                    groups: 1,
                }
            }
            "maxpool" | "avgpool" | "minpool" => {
                let k = usizes(&l["pool"]);
                let s = usizes(&l["stride"]);
                let p = usizes(&l["pads_top_bottom_left_right"]);
                LayerSpec::Pool2d(Pool2dSpec {
                    kind: match kind {
                        "maxpool" => PoolKind::Max,
                        "avgpool" => PoolKind::Avg,
                        _ => PoolKind::Min,
                    },
                    in_h: shape[0],
                    in_w: shape[1],
                    c: shape[2],
                    out_h: os[0],
                    out_w: os[1],
                    ph: k[0],
                    pw: k[1],
                    sh: s[0],
                    sw: s[1],
                    pad_top: p[0],
                    pad_left: p[2],
                })
            }
            "flatten" => LayerSpec::Flatten {
                len: shape.iter().product(),
            },
            "dense" => LayerSpec::Dense {
                spec: DenseSpec {
                    inputs: shape[0],
                    units: os[0],
                },
                act: activation(&l["activation"]),
                bias: true,
            },
            other => panic!("unknown layer kind {other}"),
        };
        out.push(spec);
        shape = os;
    }
    (input, out)
}

fn lowbias32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846ca68b);
    h ^= h >> 16;
    h
}

fn formula_value(k: u32, seed: u32, exp: i32) -> f32 {
    let h = lowbias32(k.wrapping_add(seed.wrapping_mul(0x9e3779b9)));
    ((h >> 16) as f32 - 32768.0) * 2f32.powi(-(15 + exp))
}

fn load_weights(dir: &Path, summary: &Value, model: &mut Sequential) {
    if summary["weights_source"] == "formula" {
        let f: Value =
            serde_json::from_reader(File::open(dir.join("weights_formula.json")).unwrap()).unwrap();
        for p in model.params_mut() {
            let t = &f["tensors"][&p.name];
            assert_eq!(usizes(&t["shape"]), p.shape, "{}", p.name);
            let (seed, exp) = (
                t["seed"].as_u64().unwrap() as u32,
                t["exp"].as_i64().unwrap() as i32,
            );
            let mut sum = 0f64;
            for (k, v) in p.data.iter_mut().enumerate() {
                *v = formula_value(k as u32, seed, exp);
                sum += *v as f64;
            }
            let first8: Vec<f32> = t["first8"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            assert_eq!(&p.data[..first8.len()], &first8[..], "{} first8", p.name);
            assert_eq!(sum, t["sum"].as_f64().unwrap(), "{} sum", p.name);
        }
        return;
    }
    let mut npz = NpzReader::new(File::open(dir.join("weights.npz")).unwrap()).unwrap();
    for p in model.params_mut() {
        let a: ArrayD<f32> = npz
            .by_name(&p.name)
            .unwrap_or_else(|e| panic!("{}: {e}", p.name));
        assert_eq!(a.shape(), &p.shape[..], "{}", p.name);
        p.data
            .copy_from_slice(a.as_slice().expect("standard layout"));
    }
}

/// Max error, and whether it is within `1e-5 + 1e-4 * max|want|`.
fn close(got: &[f32], want: &[f32]) -> (f32, bool) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |a, b| a.max(b.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0f32, |a, (g, w)| a.max((g - w).abs()));
    // NaN never passes.
    (err, err <= 1e-5 + 1e-4 * scale)
}

static CHECKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn check(failures: &mut Vec<String>, case: &str, what: &str, got: &[f32], want: &[f32]) {
    CHECKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (err, ok) = close(got, want);
    if !ok {
        failures.push(format!("{case}: {what}: max abs err {err:e}"));
    }
}

/// After a backward pass: the input gradient against `dx_key`, and each
/// parameter's gradient against `{name}.{suffix}` (e.g. `layer0.kernel.grad`).
fn check_grads(
    failures: &mut Vec<String>,
    case: &str,
    model: &Sequential,
    io: &mut NpzReader<File>,
    dx_key: &str,
    suffix: &str,
) {
    let mut get =
        |k: &str| -> ArrayD<f32> { io.by_name(k).unwrap_or_else(|e| panic!("{case}: {k}: {e}")) };
    let dx = get(dx_key);
    check(
        failures,
        case,
        dx_key,
        model.input_grad().unwrap().as_slice().unwrap(),
        dx.as_slice().unwrap(),
    );
    for p in model.grads() {
        let key = format!("{}.{suffix}", p.name);
        let want = get(&key);
        check(failures, case, &key, p.data, want.as_slice().unwrap());
    }
}

fn run_case(name: &str, failures: &mut Vec<String>) {
    let dir = goldens().join(name);
    let summary: Value =
        serde_json::from_reader(File::open(dir.join("summary.json")).unwrap()).unwrap();
    let (input, layers) = specs(&summary);
    let nl = layers.len();
    let mut model = Sequential::new(input, layers, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
    load_weights(&dir, &summary, &mut model);
    let mut io = NpzReader::new(File::open(dir.join("io.npz")).unwrap()).unwrap();
    let get = |io: &mut NpzReader<File>, k: &str| -> ArrayD<f32> {
        io.by_name(k).unwrap_or_else(|e| panic!("{name}: {k}: {e}"))
    };
    let x = get(&mut io, "x").into_dimensionality::<Ix4>().unwrap();
    let y = get(&mut io, "y");
    let out = model.forward(x.view()).unwrap().to_owned();
    check(
        failures,
        name,
        "y",
        out.as_slice().unwrap(),
        y.as_slice().unwrap(),
    );

    if summary["has_layer_outputs"] == true {
        for i in 0..nl {
            let want = get(&mut io, &format!("layer{i}.out"));
            check(
                failures,
                name,
                &format!("layer{i}.out"),
                model.layer_output(i).unwrap().as_slice().unwrap(),
                want.as_slice().unwrap(),
            );
        }
    } else {
        // seed_150: per-layer sums as a cheap check.
        for i in 0..nl {
            let o = model.layer_output(i).unwrap();
            let (s, sa) = o.iter().fold((0f64, 0f64), |(s, sa), &v| {
                (s + v as f64, sa + v.abs() as f64)
            });
            let ws = get(&mut io, &format!("layer{i}.out_sum"))
                .into_iter()
                .next()
                .unwrap() as f64;
            let wa = get(&mut io, &format!("layer{i}.out_abs_sum"))
                .into_iter()
                .next()
                .unwrap() as f64;
            if (s - ws).abs() > 1e-4 * wa.max(1.0) || (sa - wa).abs() > 1e-4 * wa.max(1.0) {
                failures.push(format!("{name}: layer{i} sums {s} / {sa} vs {ws} / {wa}"));
            }
        }
    }

    if summary["has_grads"] == true {
        let g = get(&mut io, "g");
        let b = x.shape()[0];
        let g2 = g
            .into_shape_with_order((b, out.shape()[1]))
            .unwrap()
            .into_dimensionality::<Ix2>()
            .unwrap();
        model.backward(g2.view()).unwrap();
        check_grads(failures, name, &model, &mut io, "dx", "grad");
    }

    if summary["has_ce"] == true {
        let labels: ArrayD<i64> = io.by_name("labels").unwrap();
        let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
        let loss = model.loss_and_grads(x.view(), &labels).unwrap();
        let want_loss = get(&mut io, "ce_loss").into_iter().next().unwrap();
        check(failures, name, "ce_loss", &[loss], &[want_loss]);
        check_grads(failures, name, &model, &mut io, "ce_dx", "ce_grad");
        let logits: ArrayView2<f32> = model.logits().expect("ends in softmax");
        let classes = logits.shape()[1];
        let mut dlogits = vec![0f32; logits.len()];
        SoftmaxCrossEntropy::forward_backward(
            logits.as_slice().unwrap(),
            classes,
            &labels,
            &mut dlogits,
        )
        .unwrap();
        let want = get(&mut io, "ce_dlogits");
        check(
            failures,
            name,
            "ce_dlogits",
            &dlogits,
            want.as_slice().unwrap(),
        );
    }
}

fn case_names() -> Vec<String> {
    let idx: Value =
        serde_json::from_reader(File::open(goldens().join("index.json")).unwrap()).unwrap();
    idx["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_golden_case_matches_keras() {
    let names = case_names();
    assert!(
        names.len() >= 42,
        "expected the 42 oracle cases, found {}",
        names.len()
    );
    let mut failures = Vec::new();
    for name in &names {
        run_case(name, &mut failures);
    }
    let checked = CHECKED.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("compared {checked} tensors over {} cases", names.len());
    // 42 outputs `y`, ~70 layer outputs, ~40 dx, ~60 parameter gradients, CE extras.
    assert!(checked >= 200, "only {checked} tensors compared");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The hand-worked examples are exact in float32: compare bit for bit.
#[test]
fn exact_worked_examples() {
    for name in [
        "classic_conv_5x5",
        "pool_example_max",
        "pool_example_avg",
        "pool_example_min",
        "keras_doc_maxpool2_s1_same",
        "keras_doc_minpool2_s1_same",
        "keras_doc_avgpool2_s1_same",
    ] {
        let dir = goldens().join(name);
        let summary: Value =
            serde_json::from_reader(File::open(dir.join("summary.json")).unwrap()).unwrap();
        let (input, layers) = specs(&summary);
        let mut model = Sequential::new(input, layers, 0).unwrap();
        load_weights(&dir, &summary, &mut model);
        let mut io = NpzReader::new(File::open(dir.join("io.npz")).unwrap()).unwrap();
        let x: ArrayD<f32> = io.by_name("x").unwrap();
        let y: ArrayD<f32> = io.by_name("y").unwrap();
        let out = model
            .forward(x.into_dimensionality::<Ix4>().unwrap().view())
            .unwrap();
        assert_eq!(out.as_slice().unwrap(), y.as_slice().unwrap(), "{name}");
    }
}
