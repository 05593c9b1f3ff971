//! The language-2 kernels against the Keras oracle (`../shared/oracle/goldens2`),
//! op by op: every case whose model is one statement of a kind the runtime has a
//! kernel for is run straight on the kernel with the case's weights, and
//! compared with Keras's outputs (both modes for batchnorm), the moving
//! statistics after one training step, and the gradients of `sum(y_train * g)`.
//!
//! Tolerances are the issue's: `max|ours - keras| <= tol * max(1, max|keras|)`
//! per tensor, with `tol = 1e-5` for inference outputs and `1e-4` for
//! training-mode outputs, statistics and gradients.

use std::fs::File;
use std::path::{Path, PathBuf};

use cnn_runtime::ndarray::ArrayD;
use cnn_runtime::ops::activation::pointwise::Pointwise;
use cnn_runtime::ops::batchnorm::{self, BatchNormGrads};
use cnn_runtime::ops::conv2d::grouped::{conv2d_grouped_backward, conv2d_grouped_forward};
use cnn_runtime::ops::deconv::{deconv_backward, deconv_forward};
use cnn_runtime::ops::dwconv::{dwconv_backward, dwconv_forward};
use cnn_runtime::ops::global_pool::{global_pool_backward, global_pool_forward};
use cnn_runtime::ops::upsample::{upsample_backward, upsample_forward};
use cnn_runtime::ops::zeropad::{zeropad_backward, zeropad_forward};
use cnn_runtime::ops::{activation_backward, Grads, Operands};
use cnn_runtime::{
    Activation, Conv2dSpec, GlobalPoolSpec, Interpolation, Padding, PoolKind, UpsampleSpec, Window,
    ZeroPadSpec,
};
use ndarray_npy::NpzReader;
use serde_json::Value;

fn goldens2() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/oracle/goldens2")
}

/// One single-statement case: its statement's summary entry and its files.
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
    fn flag(&self, key: &str) -> bool {
        self.opt(key).as_bool().expect(key)
    }
    fn f32(&self, key: &str) -> f32 {
        self.opt(key).as_f64().expect(key) as f32
    }
    /// A list of sizes; zeros when the option is absent.
    fn sizes(&self, key: &str) -> Vec<usize> {
        self.opt(key).as_array().map_or(vec![0; 4], |a| {
            a.iter().map(|v| v.as_u64().unwrap() as usize).collect()
        })
    }
    fn pair(&self, key: &str) -> (usize, usize) {
        let v = self.sizes(key);
        (v[0], v[1])
    }
    /// The activation of a conv-like statement (linear or relu in these cases).
    fn act(&self) -> Activation {
        match self.opt("activation").as_str().unwrap() {
            "linear" => Activation::Linear,
            "relu" => Activation::Relu,
            other => panic!("{}: activation {other}", self.name),
        }
    }
    /// The spec of a conv or dwconv: its output shape, kernel, stride,
    /// dilation, and its implicit (`same`) and explicit (`pad`) padding.
    fn conv_spec(&self) -> Conv2dSpec {
        let out = self.sizes("output_shape");
        let (implicit, explicit) = (
            self.sizes("pads_top_bottom_left_right"),
            self.sizes("explicit_pad_top_bottom_left_right"),
        );
        let ((kh, kw), (sh, sw), (dh, dw)) = (
            self.pair("kernel"),
            self.pair("stride"),
            self.pair("dilation"),
        );
        let window = Window::new([kh, kw], Padding::Same)
            .stride([sh, sw])
            .dilation([dh, dw]);
        Conv2dSpec {
            out_h: out[0],
            out_w: out[1],
            pad_top: implicit[0] + explicit[0],
            pad_left: implicit[2] + explicit[2],
            ..Conv2dSpec::new(self.input, out[2], window)
        }
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

/// The single-statement cases of the kinds listed (at least `min` of them),
/// with their files open.
fn cases(kinds: &[&str], min: usize) -> Vec<Case> {
    let dir = goldens2();
    let read = |p: PathBuf| -> Value {
        serde_json::from_reader(File::open(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"))).unwrap()
    };
    let index = read(dir.join("index.json"));
    let mut out = Vec::new();
    for c in index["cases"].as_array().expect("cases") {
        let name = c["name"].as_str().expect("name").to_string();
        let summary = read(dir.join(&name).join("summary.json"));
        let layers = summary["layers"].as_array().unwrap();
        if layers.len() != 1 || !kinds.contains(&layers[0]["kind"].as_str().unwrap()) {
            continue;
        }
        let s = &summary["input_shape"];
        let dim = |i: usize| s[i].as_u64().unwrap() as usize;
        let npz = |f: &str| NpzReader::new(File::open(dir.join(&name).join(f)).unwrap()).unwrap();
        out.push(Case {
            layer: layers[0].clone(),
            batch: summary["batch"].as_u64().unwrap() as usize,
            input: [dim(0), dim(1), dim(2)],
            io: npz("io.npz"),
            weights: npz("weights.npz"),
            name,
        });
    }
    assert!(
        out.len() >= min,
        "{kinds:?}: {} cases, expected {min}",
        out.len()
    );
    out
}

/// A layer with a kernel (named `kernel_name`) and an optional bias: runs
/// `forward` and, from `dz = g` through the activation, `backward`, and
/// compares y, dx and the parameter gradients with Keras's.
fn check_kernel_layer(
    mut k: Case,
    kernel_name: &str,
    channels: usize,
    forward: impl FnOnce(Operands<'_>, &mut [f32]),
    backward: impl FnOnce(Operands<'_>, &[f32], Grads<'_>),
) {
    let name = k.name.clone();
    let kernel = k.weight(kernel_name).unwrap();
    let bias = k.weight("bias");
    assert_eq!(bias.is_some(), k.flag("use_bias"), "{name}");
    let (x, g, keras_y) = (k.io("x"), k.io("g"), k.io("y"));
    let mut op = Operands {
        batch: k.batch,
        x: &x,
        kernel: &kernel,
        bias: bias.as_deref(),
    };
    let mut y = vec![f32::NAN; keras_y.len()];
    forward(op, &mut y);
    close(&name, "y", &y, &keras_y, 1e-5);
    let mut dz = vec![0f32; y.len()];
    activation_backward(k.act(), channels, &y, &g, &mut dz);
    let (mut dx, mut dk, mut db) = (
        vec![f32::NAN; x.len()],
        vec![f32::NAN; kernel.len()],
        vec![f32::NAN; channels],
    );
    let dbias = bias.is_some().then_some(&mut db[..]);
    op.bias = None;
    backward(
        op,
        &dz,
        Grads {
            dx: Some(&mut dx),
            dkernel: &mut dk,
            dbias,
        },
    );
    close(&name, "dx", &dx, &k.io("dx"), 1e-4);
    let key = format!("layer0.{kernel_name}.grad");
    close(&name, &key, &dk, &k.io(&key), 1e-4);
    if bias.is_some() {
        close(&name, "bias.grad", &db, &k.io("layer0.bias.grad"), 1e-4);
    }
}

/// `conv` with the language-2 options: groups, nobias, pad, dilation.
#[test]
fn conv_options_match_keras() {
    for k in cases(&["conv"], 4) {
        let groups = k.opt("groups").as_u64().unwrap() as usize;
        let (s, act) = (k.conv_spec(), k.act());
        let (mut fwd, mut bwd) = Default::default();
        check_kernel_layer(
            k,
            "kernel",
            s.out_c,
            |op, y| conv2d_grouped_forward((&s, groups), act, op, y, &mut fwd),
            |op, dz, g| conv2d_grouped_backward((&s, groups), op, dz, g, &mut bwd),
        );
    }
}

/// `dwconv` and `deconv` (whose spec, built by Keras's rules, must give the
/// case's output shape and crop).
#[test]
fn dwconv_and_deconv_match_keras() {
    type Fwd = fn(&Conv2dSpec, Activation, Operands<'_>, &mut [f32]);
    type Bwd = fn(&Conv2dSpec, Operands<'_>, &[f32], Grads<'_>);
    for k in cases(&["dwconv", "deconv"], 10) {
        let (s, kernel, fwd, bwd): (_, _, Fwd, Bwd) = if k.opt("kind") == "dwconv" {
            (
                k.conv_spec(),
                "depthwise_kernel",
                dwconv_forward,
                dwconv_backward,
            )
        } else {
            let (kh, kw) = k.pair("kernel");
            let (sh, sw) = k.pair("stride");
            let same = k.opt("padding") == "same";
            let t = Conv2dSpec::transposed(
                k.input,
                k.sizes("output_shape")[2],
                [kh, kw],
                [sh, sw],
                same,
            );
            assert_eq!(
                [t.in_h, t.in_w, t.in_c].to_vec(),
                k.sizes("output_shape"),
                "{}",
                k.name
            );
            assert_eq!(
                (t.pad_top, t.pad_left),
                k.pair("deconv_crop_top_left"),
                "{}",
                k.name
            );
            (
                t,
                "kernel",
                |t, a, op, y| deconv_forward(t, a, op, y),
                deconv_backward,
            )
        };
        let (act, channels) = (k.act(), k.sizes("output_shape")[2]);
        check_kernel_layer(
            k,
            kernel,
            channels,
            |op, y| fwd(&s, act, op, y),
            |op, dz, g| bwd(&s, op, dz, g),
        );
    }
}

#[test]
fn batchnorm_matches_keras_in_both_modes() {
    for mut k in cases(&["batchnorm"], 3) {
        let name = k.name.clone();
        let (c, eps, momentum) = (k.input[2], k.f32("epsilon"), k.f32("momentum"));
        let (gamma, beta) = (k.weight("gamma"), k.weight("beta"));
        assert_eq!(gamma.is_some(), k.flag("scale"), "{name}");
        assert_eq!(beta.is_some(), k.flag("center"), "{name}");
        let (gamma, beta) = (gamma.as_deref(), beta.as_deref());
        let mean = k.weight("moving_mean").unwrap();
        let var = k.weight("moving_variance").unwrap();
        let x = k.io("x");

        let (mut a, mut b) = (vec![0f32; c], vec![0f32; c]);
        batchnorm::fold(eps, gamma, beta, &mean, &var, &mut a, &mut b);
        let mut y = vec![0f32; x.len()];
        batchnorm::scale_shift(&a, &b, &x, &mut y);
        close(&name, "y", &y, &k.io("y"), 1e-5);

        let (mut bm, mut bv) = (vec![0f32; c], vec![0f32; c]);
        batchnorm::train_forward(c, eps, gamma, beta, &x, &mut y, &mut bm, &mut bv);
        close(&name, "y_train", &y, &k.io("y_train"), 1e-4);
        for (stat, batch, mut moving) in [("mean", &bm, mean), ("variance", &bv, var)] {
            batchnorm::moving_update(momentum, batch, &mut moving);
            let key = format!("layer0.moving_{stat}.after");
            close(&name, &key, &moving, &k.io(&key), 1e-4);
        }

        let g = k.io("g");
        let mut dx = vec![f32::NAN; x.len()];
        let (mut dg, mut db) = (vec![f32::NAN; c], vec![f32::NAN; c]);
        let grads = BatchNormGrads {
            dx: Some(&mut dx),
            dgamma: gamma.is_some().then_some(&mut dg[..]),
            dbeta: beta.is_some().then_some(&mut db[..]),
        };
        let n = batchnorm::Norm {
            c,
            eps,
            gamma,
            mean: &bm,
            var: &bv,
        };
        batchnorm::batchnorm_backward(true, n, &x, &g, grads, &mut Vec::new());
        close(&name, "dx", &dx, &k.io("dx"), 1e-4);
        for (t, grad, present) in [
            ("gamma", &dg, gamma.is_some()),
            ("beta", &db, beta.is_some()),
        ] {
            if present {
                let key = format!("layer0.{t}.grad");
                close(&name, &key, grad, &k.io(&key), 1e-4);
            }
        }
    }
}

/// The layers without parameters: global pools, zeropad, upsample and the
/// activations as statements.
#[test]
fn parameterless_layers_match_keras() {
    let kinds = [
        "globalavgpool",
        "globalmaxpool",
        "zeropad",
        "upsample",
        "activation",
    ];
    for mut k in cases(&kinds, 13) {
        let name = k.name.clone();
        let ([h, w, c], n) = (k.input, k.batch);
        let (x, g, keras_y) = (k.io("x"), k.io("g"), k.io("y"));
        let mut y = vec![f32::NAN; keras_y.len()];
        let mut dx = vec![f32::NAN; x.len()];
        match k.opt("kind").as_str().unwrap() {
            kind @ ("globalavgpool" | "globalmaxpool") => {
                let kind = [PoolKind::Max, PoolKind::Avg][usize::from(kind == "globalavgpool")];
                let s = GlobalPoolSpec { kind, hw: h * w, c };
                global_pool_forward(&s, n, &x, &mut y);
                global_pool_backward(&s, n, (&x, &y), &g, &mut dx);
            }
            "zeropad" => {
                let p = k.sizes("zeropad");
                let (top, bottom, left, right) = (p[0], p[1], p[2], p[3]);
                let s = ZeroPadSpec {
                    in_h: h,
                    in_w: w,
                    c,
                    top,
                    bottom,
                    left,
                    right,
                };
                zeropad_forward(&s, n, &x, &mut y);
                zeropad_backward(&s, n, &g, &mut dx);
            }
            "upsample" => {
                let how = match k.opt("interpolation").as_str().unwrap() {
                    "nearest" => Interpolation::Nearest,
                    "bilinear" => Interpolation::Bilinear,
                    other => panic!("{name}: interpolation {other}"),
                };
                let (sh, sw) = k.pair("size");
                let s = UpsampleSpec {
                    in_h: h,
                    in_w: w,
                    c,
                    sh,
                    sw,
                    interpolation: how,
                };
                upsample_forward(&s, n, &x, &mut y);
                upsample_backward(&s, n, &g, &mut dx);
            }
            _ => {
                let act = match k.opt("activation").as_str().unwrap() {
                    "relu6" => Pointwise::Relu6,
                    "leaky_relu" => Pointwise::LeakyRelu(k.f32("slope")),
                    "elu" => Pointwise::Elu,
                    "selu" => Pointwise::Selu,
                    "gelu" => Pointwise::Gelu,
                    "silu" => Pointwise::Silu,
                    "softplus" => Pointwise::Softplus,
                    "hard_sigmoid" => Pointwise::HardSigmoid,
                    "hard_silu" => Pointwise::HardSilu,
                    other => panic!("{name}: activation {other}"),
                };
                y.copy_from_slice(&x);
                act.forward_inplace(&mut y);
                act.backward(&x, &g, &mut dx);
            }
        }
        close(&name, "y", &y, &keras_y, 1e-5);
        close(&name, "dx", &dx, &k.io("dx"), 1e-4);
    }
}
