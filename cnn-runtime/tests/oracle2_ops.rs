//! The language-2 kernels against the Keras oracle (`../shared/oracle/goldens2`),
//! op by op: every case whose model is one statement of a kind the runtime has a
//! kernel for (batchnorm, global pools, zeropad, upsample) is run straight on
//! the kernel with the case's weights, and compared with Keras's outputs in both
//! modes, the moving statistics after one training step, and the gradients of
//! `sum(y_train * g)`.
//!
//! Tolerances are the issue's: `max|ours - keras| <= tol * max(1, max|keras|)`
//! per tensor, with `tol = 1e-5` for inference outputs and `1e-4` for
//! training-mode outputs, statistics and gradients.

use std::fs::File;
use std::path::{Path, PathBuf};

use cnn_runtime::ndarray::ArrayD;
use cnn_runtime::ops::batchnorm::{self, BatchNormGrads};
use cnn_runtime::ops::global_pool::{global_pool_backward, global_pool_forward};
use cnn_runtime::ops::upsample::{upsample_backward, upsample_forward, Interpolation};
use cnn_runtime::ops::zeropad::{zeropad_backward, zeropad_forward, Pad4};
use cnn_runtime::PoolKind;
use ndarray_npy::NpzReader;
use serde_json::Value;

fn goldens2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/goldens2")
}

struct Case {
    name: String,
    layer: Value,
    batch: usize,
    input: [usize; 3],
    io: NpzReader<File>,
    weights: NpzReader<File>,
}

impl Case {
    fn io(&mut self, key: &str) -> Vec<f32> {
        let a: ArrayD<f32> = self
            .io
            .by_name(&format!("{key}.npy"))
            .unwrap_or_else(|e| panic!("{}: {key}: {e}", self.name));
        a.iter().copied().collect()
    }
    fn weight(&mut self, key: &str) -> Option<Vec<f32>> {
        let a: ArrayD<f32> = self.weights.by_name(&format!("layer0.{key}.npy")).ok()?;
        Some(a.iter().copied().collect())
    }
    fn opt(&self, key: &str) -> &Value {
        &self.layer[key]
    }
    fn pair(&self, key: &str) -> (usize, usize) {
        let v = self.opt(key).as_array().expect("pair");
        (
            v[0].as_u64().unwrap() as usize,
            v[1].as_u64().unwrap() as usize,
        )
    }
}

fn close(case: &str, what: &str, ours: &[f32], keras: &[f32], tol: f32) {
    assert_eq!(ours.len(), keras.len(), "{case} {what}: length");
    let scale = keras.iter().fold(1f32, |a, b| a.max(b.abs()));
    let worst = ours
        .iter()
        .zip(keras)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= tol * scale,
        "{case} {what}: worst difference {worst} > {tol} * {scale}"
    );
}

/// The single-statement cases of the kinds listed, with their files open.
fn cases(kinds: &[&str]) -> Vec<Case> {
    let dir = goldens2();
    let index: Value = serde_json::from_reader(
        File::open(dir.join("index.json")).expect("goldens2/index.json (../shared/oracle)"),
    )
    .expect("index.json");
    let mut out = Vec::new();
    for c in index["cases"].as_array().expect("cases") {
        let name = c["name"].as_str().expect("name").to_string();
        let summary: Value =
            serde_json::from_reader(File::open(dir.join(&name).join("summary.json")).unwrap())
                .unwrap();
        let layers = summary["layers"].as_array().unwrap();
        if layers.len() != 1 || !kinds.contains(&layers[0]["kind"].as_str().unwrap()) {
            continue;
        }
        let s: Vec<usize> = summary["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        out.push(Case {
            layer: layers[0].clone(),
            batch: summary["batch"].as_u64().unwrap() as usize,
            input: [s[0], s[1], s[2]],
            io: NpzReader::new(File::open(dir.join(&name).join("io.npz")).unwrap()).unwrap(),
            weights: NpzReader::new(File::open(dir.join(&name).join("weights.npz")).unwrap())
                .unwrap(),
            name,
        });
    }
    out
}

#[test]
fn batchnorm_matches_keras_in_both_modes() {
    let found = cases(&["batchnorm"]);
    assert!(
        found.len() >= 3,
        "expected the bn_* cases, found {}",
        found.len()
    );
    for mut k in found {
        let name = k.name.clone();
        let c = k.input[2];
        let eps = k.opt("epsilon").as_f64().unwrap() as f32;
        let momentum = k.opt("momentum").as_f64().unwrap() as f32;
        let gamma = k.weight("gamma");
        let beta = k.weight("beta");
        assert_eq!(gamma.is_some(), k.opt("scale").as_bool().unwrap());
        assert_eq!(beta.is_some(), k.opt("center").as_bool().unwrap());
        let mean = k.weight("moving_mean").unwrap();
        let var = k.weight("moving_variance").unwrap();
        let x = k.io("x");

        let (mut a, mut b) = (vec![0f32; c], vec![0f32; c]);
        batchnorm::fold(
            eps,
            gamma.as_deref(),
            beta.as_deref(),
            &mean,
            &var,
            &mut a,
            &mut b,
        );
        let mut y = vec![0f32; x.len()];
        batchnorm::scale_shift(&a, &b, &x, &mut y);
        close(&name, "y", &y, &k.io("y"), 1e-5);

        let (mut bm, mut bv) = (vec![0f32; c], vec![0f32; c]);
        batchnorm::train_forward(
            c,
            eps,
            gamma.as_deref(),
            beta.as_deref(),
            &x,
            &mut y,
            &mut bm,
            &mut bv,
        );
        close(&name, "y_train", &y, &k.io("y_train"), 1e-4);
        let (mut mm, mut mv) = (mean.clone(), var.clone());
        batchnorm::moving_update(momentum, &bm, &mut mm);
        batchnorm::moving_update(momentum, &bv, &mut mv);
        close(
            &name,
            "moving_mean.after",
            &mm,
            &k.io("layer0.moving_mean.after"),
            1e-4,
        );
        close(
            &name,
            "moving_variance.after",
            &mv,
            &k.io("layer0.moving_variance.after"),
            1e-4,
        );

        let g = k.io("g");
        let mut dx = vec![f32::NAN; x.len()];
        let (mut dg, mut db) = (vec![f32::NAN; c], vec![f32::NAN; c]);
        let grads = BatchNormGrads {
            dx: Some(&mut dx),
            dgamma: gamma.is_some().then_some(&mut dg[..]),
            dbeta: beta.is_some().then_some(&mut db[..]),
        };
        batchnorm::train_backward(c, eps, gamma.as_deref(), &bm, &bv, &x, &g, grads);
        close(&name, "dx", &dx, &k.io("dx"), 1e-4);
        if gamma.is_some() {
            close(&name, "gamma.grad", &dg, &k.io("layer0.gamma.grad"), 1e-4);
        }
        if beta.is_some() {
            close(&name, "beta.grad", &db, &k.io("layer0.beta.grad"), 1e-4);
        }
    }
}

#[test]
fn global_pools_zeropad_and_upsample_match_keras() {
    let found = cases(&["globalavgpool", "globalmaxpool", "zeropad", "upsample"]);
    assert!(
        found.len() >= 5,
        "expected the single-statement cases, found {}",
        found.len()
    );
    for mut k in found {
        let name = k.name.clone();
        let [h, w, c] = k.input;
        let n = k.batch;
        let x = k.io("x");
        let g = k.io("g");
        let keras_y = k.io("y");
        let mut y = vec![f32::NAN; keras_y.len()];
        let mut dx = vec![f32::NAN; x.len()];
        match k.layer["kind"].as_str().unwrap() {
            kind @ ("globalavgpool" | "globalmaxpool") => {
                let pk = if kind == "globalavgpool" {
                    PoolKind::Avg
                } else {
                    PoolKind::Max
                };
                global_pool_forward(pk, n, h * w, c, &x, &mut y);
                global_pool_backward(pk, n, h * w, c, &x, &y, &g, &mut dx);
            }
            "zeropad" => {
                let p: Vec<usize> = k
                    .opt("zeropad")
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as usize)
                    .collect();
                let p = Pad4 {
                    top: p[0],
                    bottom: p[1],
                    left: p[2],
                    right: p[3],
                };
                zeropad_forward(p, n, h, w, c, &x, &mut y);
                zeropad_backward(p, n, h, w, c, &g, &mut dx);
            }
            _ => {
                let how = match k.opt("interpolation").as_str().unwrap() {
                    "nearest" => Interpolation::Nearest,
                    "bilinear" => Interpolation::Bilinear,
                    other => panic!("{}: interpolation {other}", k.name),
                };
                let f = k.pair("size");
                upsample_forward(how, f, n, h, w, c, &x, &mut y);
                upsample_backward(how, f, n, h, w, c, &g, &mut dx);
            }
        }
        close(&name, "y", &y, &keras_y, 1e-5);
        close(&name, "dx", &dx, &k.io("dx"), 1e-4);
    }
}

#[test]
fn dwconv_matches_keras() {
    use cnn_runtime::ops::activation_backward;
    use cnn_runtime::ops::dwconv::{dwconv_backward, dwconv_forward};
    use cnn_runtime::{Activation, Conv2dSpec};
    let found = cases(&["dwconv"]);
    assert!(
        found.len() >= 4,
        "expected the dwconv cases, found {}",
        found.len()
    );
    for mut k in found {
        let name = k.name.clone();
        let [h, w, c] = k.input;
        let out: Vec<usize> = k
            .opt("output_shape")
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let implicit: Vec<usize> = k
            .opt("pads_top_bottom_left_right")
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let explicit = k
            .opt("explicit_pad_top_bottom_left_right")
            .as_array()
            .map_or(vec![0; 4], |a| {
                a.iter().map(|v| v.as_u64().unwrap() as usize).collect()
            });
        let (kh, kw) = k.pair("kernel");
        let (sh, sw) = k.pair("stride");
        let (dh, dw) = k.pair("dilation");
        let s = Conv2dSpec {
            in_h: h,
            in_w: w,
            in_c: c,
            out_h: out[0],
            out_w: out[1],
            out_c: out[2],
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            pad_top: implicit[0] + explicit[0],
            pad_left: implicit[2] + explicit[2],
        };
        let act = match k.opt("activation").as_str().unwrap() {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            other => panic!("{name}: activation {other}"),
        };
        let kernel = k.weight("depthwise_kernel").unwrap();
        let bias = k.weight("bias");
        assert_eq!(bias.is_some(), k.opt("use_bias").as_bool().unwrap());
        let x = k.io("x");
        let mut y = vec![f32::NAN; k.batch * out.iter().product::<usize>()];
        dwconv_forward(&s, act, k.batch, &x, &kernel, bias.as_deref(), &mut y);
        close(&name, "y", &y, &k.io("y"), 1e-5);
        let mut dz = vec![0f32; y.len()];
        activation_backward(act, s.out_c, &y, &k.io("g"), &mut dz);
        let mut dx = vec![f32::NAN; x.len()];
        let mut dk = vec![f32::NAN; kernel.len()];
        let mut db = vec![f32::NAN; s.out_c];
        dwconv_backward(
            &s,
            k.batch,
            &x,
            &kernel,
            &dz,
            Some(&mut dx),
            &mut dk,
            bias.is_some().then_some(&mut db[..]),
        );
        close(&name, "dx", &dx, &k.io("dx"), 1e-4);
        close(
            &name,
            "depthwise_kernel.grad",
            &dk,
            &k.io("layer0.depthwise_kernel.grad"),
            1e-4,
        );
        if bias.is_some() {
            close(&name, "bias.grad", &db, &k.io("layer0.bias.grad"), 1e-4);
        }
    }
}

#[test]
fn language2_activations_match_keras() {
    use cnn_runtime::ops::activation::pointwise::Pointwise;
    let found = cases(&["activation"]);
    assert!(
        found.len() >= 8,
        "expected the act_* cases, found {}",
        found.len()
    );
    for mut k in found {
        let name = k.name.clone();
        let act = match k.opt("activation").as_str().unwrap() {
            "relu6" => Pointwise::Relu6,
            "leaky_relu" => Pointwise::LeakyRelu(k.opt("slope").as_f64().unwrap() as f32),
            "elu" => Pointwise::Elu,
            "selu" => Pointwise::Selu,
            "gelu" => Pointwise::Gelu,
            "silu" => Pointwise::Silu,
            "softplus" => Pointwise::Softplus,
            "hard_sigmoid" => Pointwise::HardSigmoid,
            "hard_silu" => Pointwise::HardSilu,
            other => panic!("{name}: activation {other}"),
        };
        let x = k.io("x");
        let mut y = x.clone();
        act.forward_inplace(&mut y);
        close(&name, "y", &y, &k.io("y"), 1e-5);
        let mut dx = vec![f32::NAN; x.len()];
        act.backward(&x, &k.io("g"), &mut dx);
        close(&name, "dx", &dx, &k.io("dx"), 1e-4);
    }
}

#[test]
fn deconv_matches_keras() {
    use cnn_runtime::ops::activation_backward;
    use cnn_runtime::ops::deconv::{deconv_backward, deconv_forward};
    use cnn_runtime::{Activation, Conv2dSpec};
    let found = cases(&["deconv"]);
    assert!(
        found.len() >= 6,
        "expected the deconv cases, found {}",
        found.len()
    );
    for mut k in found {
        let name = k.name.clone();
        let [h, w, c] = k.input;
        let out: Vec<usize> = k
            .opt("output_shape")
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let (kh, kw) = k.pair("kernel");
        let (sh, sw) = k.pair("stride");
        let (ct, cl) = k.pair("deconv_crop_top_left");
        // The convolution this deconv is the transpose of.
        let t = Conv2dSpec {
            in_h: out[0],
            in_w: out[1],
            in_c: out[2],
            out_h: h,
            out_w: w,
            out_c: c,
            kh,
            kw,
            sh,
            sw,
            dh: 1,
            dw: 1,
            pad_top: ct,
            pad_left: cl,
        };
        let act = match k.opt("activation").as_str().unwrap() {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            other => panic!("{name}: activation {other}"),
        };
        let kernel = k.weight("kernel").unwrap();
        let bias = k.weight("bias");
        assert_eq!(bias.is_some(), k.opt("use_bias").as_bool().unwrap());
        let x = k.io("x");
        let mut y = vec![f32::NAN; k.batch * out.iter().product::<usize>()];
        deconv_forward(&t, act, k.batch, &x, &kernel, bias.as_deref(), &mut y);
        close(&name, "y", &y, &k.io("y"), 1e-5);
        let mut dz = vec![0f32; y.len()];
        activation_backward(act, t.in_c, &y, &k.io("g"), &mut dz);
        let mut dx = vec![f32::NAN; x.len()];
        let mut dk = vec![f32::NAN; kernel.len()];
        let mut db = vec![f32::NAN; t.in_c];
        deconv_backward(
            &t,
            k.batch,
            &x,
            &kernel,
            &dz,
            Some(&mut dx),
            &mut dk,
            bias.is_some().then_some(&mut db[..]),
        );
        close(&name, "dx", &dx, &k.io("dx"), 1e-4);
        close(&name, "kernel.grad", &dk, &k.io("layer0.kernel.grad"), 1e-4);
        if bias.is_some() {
            close(&name, "bias.grad", &db, &k.io("layer0.bias.grad"), 1e-4);
        }
    }
}

/// `conv` with the language-2 options: groups, nobias (a zero bias here; the
/// kernel has no gradient to give it), pad, dilation.
#[test]
fn conv_options_match_keras() {
    use cnn_runtime::ops::conv2d::grouped::{
        conv2d_grouped_backward, conv2d_grouped_forward, GroupedScratch,
    };
    use cnn_runtime::{Activation, Conv2dSpec};
    let found = cases(&["conv"]);
    assert!(
        found.len() >= 4,
        "expected the conv_* cases, found {}",
        found.len()
    );
    for mut k in found {
        let name = k.name.clone();
        let [h, w, c] = k.input;
        let usz = |v: &Value| -> Vec<usize> {
            v.as_array().map_or(vec![0; 4], |a| {
                a.iter().map(|v| v.as_u64().unwrap() as usize).collect()
            })
        };
        let out = usz(k.opt("output_shape"));
        let implicit = usz(k.opt("pads_top_bottom_left_right"));
        let explicit = usz(k.opt("explicit_pad_top_bottom_left_right"));
        let (kh, kw) = k.pair("kernel");
        let (sh, sw) = k.pair("stride");
        let (dh, dw) = k.pair("dilation");
        let groups = k.opt("groups").as_u64().unwrap() as usize;
        let s = Conv2dSpec {
            in_h: h,
            in_w: w,
            in_c: c,
            out_h: out[0],
            out_w: out[1],
            out_c: out[2],
            kh,
            kw,
            sh,
            sw,
            dh,
            dw,
            pad_top: implicit[0] + explicit[0],
            pad_left: implicit[2] + explicit[2],
        };
        assert_eq!(k.opt("activation").as_str(), Some("linear"), "{name}");
        let kernel = k.weight("kernel").unwrap();
        let bias = k.weight("bias");
        assert_eq!(bias.is_some(), k.opt("use_bias").as_bool().unwrap());
        let b = bias.clone().unwrap_or_else(|| vec![0.0; s.out_c]);
        let x = k.io("x");
        let mut y = vec![f32::NAN; k.batch * out.iter().product::<usize>()];
        let mut scratch = GroupedScratch::default();
        conv2d_grouped_forward(
            &s,
            groups,
            Activation::Linear,
            k.batch,
            &x,
            &kernel,
            &b,
            &mut y,
            &mut scratch,
        );
        close(&name, "y", &y, &k.io("y"), 1e-5);
        let mut dx = vec![f32::NAN; x.len()];
        let mut dk = vec![f32::NAN; kernel.len()];
        let mut db = vec![f32::NAN; s.out_c];
        conv2d_grouped_backward(
            &s,
            groups,
            k.batch,
            &x,
            &kernel,
            &k.io("g"),
            Some(&mut dx),
            &mut dk,
            &mut db,
            &mut scratch,
        );
        close(&name, "dx", &dx, &k.io("dx"), 1e-4);
        close(&name, "kernel.grad", &dk, &k.io("layer0.kernel.grad"), 1e-4);
        if bias.is_some() {
            close(&name, "bias.grad", &db, &k.io("layer0.bias.grad"), 1e-4);
        }
    }
}
