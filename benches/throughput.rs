//! Throughput benchmark of the runtime kernels and the interpreter.
//!
//! `cargo bench --bench throughput` prints a table; with `CNN_BENCH_JSON=FILE` it
//! also appends one JSON line per figure:
//! `{"workload": NAME, "items_per_s": X, "gflops": Y, "peak_fraction": Z}`.
//! `cargo bench --bench throughput -- dwconv,infer_b1` runs only the workloads
//! whose name contains `dwconv` or `infer_b1`.
//! The peak is measured in the same run (`fma_peak`: a register-only FMA loop on
//! every core), so the fractions stay meaningful on a busy or different machine.
//!
//! More workloads (e.g. generated-code twins, `*_generated`) are added in
//! `benches/generated.rs` through [`Workloads::add`].

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use cnn::ndarray::Array4;
use cnn::runtime::aligned::AlignedVec;
use cnn::runtime::data::shapes::shapes;
use cnn::runtime::interp::Sequential;
use cnn::runtime::ops::dwconv::{dwconv_backward, dwconv_forward};
use cnn::runtime::ops::{
    conv2d_backward, conv2d_forward, dense_forward, Conv2dScratch, Grads, Operands,
};
use cnn::runtime::{
    gemm, Activation, Conv2dSpec, DenseSpec, LayerSpec, Model, Padding, Sgd, Window,
};
use cnn_compiler::ir;

mod generated;

/// One benchmark: `run` does one iteration of `items` items and `flops` flops.
pub struct Workload {
    pub name: String,
    pub items: f64,
    pub flops: f64,
    pub run: Box<dyn FnMut()>,
}

/// The list of workloads to run, in order.
#[derive(Default)]
pub struct Workloads(Vec<Workload>);

impl Workloads {
    /// Registers a workload.
    pub fn add(&mut self, name: &str, items: f64, flops: f64, run: impl FnMut() + 'static) {
        self.0.push(Workload {
            name: name.to_string(),
            items,
            flops,
            run: Box::new(run),
        });
    }
}

// ---------------------------------------------------------------- layer helpers

/// Output size and pad-before for one axis (TensorFlow "same" split).
pub fn axis(n: usize, k: usize, s: usize, same: bool) -> (usize, usize) {
    if same {
        let out = n.div_ceil(s);
        let total = ((out - 1) * s + k).saturating_sub(n);
        (out, total / 2)
    } else {
        ((n - k) / s + 1, 0)
    }
}

/// A conv layer spec on an `h x w x c` input; returns the spec and its output shape.
pub fn conv(
    shape: [usize; 3],
    f: usize,
    k: usize,
    s: usize,
    same: bool,
    act: Activation,
) -> (LayerSpec, [usize; 3]) {
    let (oh, pt) = axis(shape[0], k, s, same);
    let (ow, pl) = axis(shape[1], k, s, same);
    let spec = Conv2dSpec {
        in_h: shape[0],
        in_w: shape[1],
        in_c: shape[2],
        out_h: oh,
        out_w: ow,
        out_c: f,
        kh: k,
        kw: k,
        sh: s,
        sw: s,
        dh: 1,
        dw: 1,
        pad_top: pt,
        pad_left: pl,
    };
    (
        LayerSpec::Conv2d {
            spec,
            act,
            bias: true,
            groups: 1,
        },
        [oh, ow, f],
    )
}

/// Forward flops (2 per multiply-add) of one sample.
pub fn forward_flops(layers: &[LayerSpec]) -> f64 {
    layers
        .iter()
        .map(|l| match l {
            // The layers with a kernel: 2 flops per multiply-add.
            LayerSpec::Conv2d { .. }
            | LayerSpec::DwConv2d { .. }
            | LayerSpec::SepConv2d { .. }
            | LayerSpec::Deconv2d { .. }
            | LayerSpec::Dense { .. } => l.flops() as f64,
            _ => 0.0,
        })
        .sum()
}

/// A model of the examples' `.cnn` files, as the interpreter runs it: the
/// compiler's lowering, so the interpreted rows run the very layers of their
/// generated twins (`benches/generated.rs` includes the same files).
fn example_model(source: &str) -> ([usize; 3], Vec<LayerSpec>) {
    let compiled = cnn_compiler::compile(source, "Bench");
    assert!(!compiled.has_errors(), "{:?}", compiled.diagnostics);
    let m = &compiled.models[0];
    let ir::Shape::Image { h, w, c } = m.input else {
        unreachable!("a model's input is an image")
    };
    (
        [h, w, c],
        cnn_compiler::lower::lower(m).expect("a chain of layers"),
    )
}

/// LeNet-5 on 28x28x1 (first conv `same`), `examples/models/lenet5.cnn`.
pub fn lenet() -> ([usize; 3], Vec<LayerSpec>) {
    example_model(include_str!("../examples/models/lenet5.cnn"))
}

/// The Fashion-MNIST VGG-style net with batchnorm and dropout,
/// `examples/models/vgg_bn_fashion.cnn`.
pub fn vgg_bn_fashion() -> ([usize; 3], Vec<LayerSpec>) {
    example_model(include_str!("../examples/models/vgg_bn_fashion.cnn"))
}

/// The 150x150x3 course model, `examples/models/seed.cnn`.
pub fn seed150() -> ([usize; 3], Vec<LayerSpec>) {
    example_model(include_str!("../examples/models/seed.cnn"))
}

/// Deterministic pseudo-random values in [-1, 1).
/// `len` pseudo-random values in [-1, 1), 64-byte aligned as the runtime's
/// buffers are (an unaligned buffer makes every vector access straddle two
/// cache lines, which the runtime never sees).
pub fn noise(len: usize, seed: u64) -> AlignedVec {
    let mut v = AlignedVec::from_elem(0.0, len);
    for (d, s) in v.iter_mut().zip(noise_values(len, seed)) {
        *d = s;
    }
    v
}

/// The values of [`noise`].
fn noise_values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// One model workload: training steps (softmax CE, plain SGD: `Sgd::new`) or inference
/// through `Model::predict_batch` (what `predict` and `evaluate` run: batchnorms
/// folded; for generated models `predict_view`, no output copy). `flops` is the
/// forward flops of one sample.
pub fn workload<M: Model + 'static>(
    w: &mut Workloads,
    name: &str,
    mut net: M,
    flops: f64,
    batch: usize,
    train: bool,
) {
    let [h, wd, c] = net.input_shape();
    let classes = net.output_shape().iter().product::<usize>();
    let x =
        Array4::from_shape_vec((batch, h, wd, c), noise_values(batch * h * wd * c, 7)).expect("x");
    let labels: Vec<usize> = (0..batch).map(|i| i % classes).collect();
    let mut opt = Sgd::new(0.01);
    let flops = flops * batch as f64 * if train { 3.0 } else { 1.0 };
    w.add(name, batch as f64, flops, move || {
        if train {
            black_box(
                net.train_batch(x.view(), &labels, &mut opt)
                    .expect("train step"),
            );
        } else {
            black_box(net.predict_batch(x.view()).expect("predict")[[0, 0]]);
        }
    });
}

/// An interpreted model workload (see [`workload`]).
pub fn model_workload(
    w: &mut Workloads,
    name: &str,
    model: ([usize; 3], Vec<LayerSpec>),
    batch: usize,
    train: bool,
) {
    let (input, layers) = model;
    let flops = forward_flops(&layers);
    let net = Sequential::new(input, layers, 1).expect("model");
    workload(w, name, net, flops, batch, train);
}

/// A model of the examples' `.cnn` files with graph statements, interpreted
/// from its plan (the compiler's one lowering); its flops are those of the
/// plan's layers with a kernel.
pub fn graph_workload(w: &mut Workloads, name: &str, source: &str, batch: usize, train: bool) {
    let compiled = cnn_compiler::compile(source, "Bench");
    assert!(!compiled.has_errors(), "{:?}", compiled.diagnostics);
    let plan = cnn_compiler::lower::plan(&compiled.models[0]).expect("plan");
    let layers: Vec<LayerSpec> = plan.steps.iter().map(|s| s.layer).collect();
    let flops = forward_flops(&layers);
    workload(w, name, Sequential::from_plan(plan, 1), flops, batch, train);
}

/// The buffers of a conv workload (NHWC input, HWIO kernel), filled with noise.
struct ConvBench {
    spec: Conv2dSpec,
    batch: usize,
    x: AlignedVec,
    k: AlignedVec,
    bias: AlignedVec,
    y: AlignedVec,
    scratch: Conv2dScratch,
    /// When the workload runs the backward pass too.
    grads: Option<ConvGrads>,
}

/// The output gradient a conv backward pass reads and the gradients it writes.
struct ConvGrads {
    dz: AlignedVec,
    dx: AlignedVec,
    dk: AlignedVec,
    db: AlignedVec,
}

impl ConvBench {
    fn new(spec: Conv2dSpec, batch: usize, backward: bool) -> Self {
        let x = noise(batch * spec.in_h * spec.in_w * spec.in_c, 3);
        let k = noise(spec.kh * spec.kw * spec.in_c * spec.out_c, 4);
        let y_len = batch * spec.out_h * spec.out_w * spec.out_c;
        let grads = backward.then(|| ConvGrads {
            dz: noise(y_len, 6),
            dx: AlignedVec::from_elem(0.0, x.len()),
            dk: AlignedVec::from_elem(0.0, k.len()),
            db: AlignedVec::from_elem(0.0, spec.out_c),
        });
        ConvBench {
            bias: noise(spec.out_c, 5),
            y: AlignedVec::from_elem(0.0, y_len),
            scratch: Conv2dScratch::default(),
            spec,
            batch,
            x,
            k,
            grads,
        }
    }

    /// One forward pass, then the backward pass when the bench has gradients.
    fn run(&mut self, act: Activation) {
        let b = self;
        conv2d_forward(
            &b.spec,
            act,
            b.batch,
            &b.x,
            &b.k,
            Some(&b.bias),
            &mut b.y[..],
            &mut b.scratch,
        );
        let Some(g) = b.grads.as_mut() else {
            black_box(b.y[0]);
            return;
        };
        conv2d_backward(
            &b.spec,
            b.batch,
            &b.x,
            &b.k,
            &g.dz,
            Some(&mut g.dx),
            &mut g.dk,
            Some(&mut g.db),
            &mut b.scratch,
        );
        black_box((b.y[0], g.dx[0], g.dk[0]));
    }
}

fn builtin(w: &mut Workloads) {
    // GEMM 1024^3.
    let n = 1024;
    let a = noise(n * n, 1);
    let b = noise(n * n, 2);
    let mut c = AlignedVec::from_elem(0.0, n * n);
    w.add("sgemm_1024", 1.0, 2.0 * (n * n * n) as f64, move || {
        gemm::sgemm(n, n, n, &a, &b, &mut c);
        black_box(c[0]);
    });

    // conv 3x3 same, 64 -> 64, 56x56, batch 8.
    let batch = 8;
    let (spec, _) = conv([56, 56, 64], 64, 3, 1, true, Activation::Linear);
    let LayerSpec::Conv2d { spec, .. } = spec else {
        unreachable!()
    };
    let fwd = 2.0 * (batch * 56 * 56 * 64 * 64 * 9) as f64;
    let mut c = ConvBench::new(spec, batch, false);
    w.add("conv64_fwd_b8", batch as f64, fwd, move || {
        c.run(Activation::Relu)
    });
    let mut c = ConvBench::new(spec, batch, true);
    w.add("conv64_fwdbwd_b8", batch as f64, 3.0 * fwd, move || {
        c.run(Activation::Linear)
    });

    // A 3x3 depthwise conv (MobileNet's first block at 224x224 input), batch 8.
    let spec = Conv2dSpec::new([112, 112, 32], 32, Window::new([3, 3], Padding::Same));
    let fwd = 2.0 * (batch * 112 * 112 * 32 * 9) as f64;
    let x = noise(batch * 112 * 112 * 32, 8);
    let k = noise(9 * 32, 9);
    let bias = noise(32, 10);
    let mut y = AlignedVec::from_elem(0.0, x.len());
    w.add("dwconv3x3_112x112x32_b8", batch as f64, fwd, move || {
        let op = Operands {
            batch,
            x: &x,
            kernel: &k,
            bias: Some(&bias),
        };
        dwconv_forward(&spec, Activation::Relu, op, &mut y);
        black_box(y[0]);
    });
    // Its backward pass (input and kernel gradients: twice the forward flops).
    let x = noise(batch * 112 * 112 * 32, 8);
    let k = noise(9 * 32, 9);
    let dz = noise(x.len(), 11);
    let (mut dx, mut dk) = (
        AlignedVec::from_elem(0.0, x.len()),
        AlignedVec::from_elem(0.0, k.len()),
    );
    w.add(
        "dwconv3x3_112x112x32_bwd_b8",
        batch as f64,
        2.0 * fwd,
        move || {
            let op = Operands {
                batch,
                x: &x,
                kernel: &k,
                bias: None,
            };
            let grads = Grads {
                dx: Some(&mut dx),
                dkernel: &mut dk,
                dbias: None,
            };
            dwconv_backward(&spec, op, &dz, grads);
            black_box((dx[0], dk[0]));
        },
    );

    // The course model's 41472 -> 256 dense layer at batch 8: bound by
    // reading its 42 MB of weights once per call.
    let (batch, spec) = (
        8,
        DenseSpec {
            inputs: 41472,
            units: 256,
        },
    );
    let x = noise(batch * spec.inputs, 12);
    let k = noise(spec.inputs * spec.units, 13);
    let bias = noise(spec.units, 14);
    let mut y = AlignedVec::from_elem(0.0, batch * spec.units);
    let flops = 2.0 * (batch * spec.inputs * spec.units) as f64;
    w.add("dense41472x256_b8", batch as f64, flops, move || {
        dense_forward(&spec, Activation::Relu, batch, &x, &k, Some(&bias), &mut y);
        black_box(y[0]);
    });

    model_workload(w, "lenet_train_b64", lenet(), 64, true);
    model_workload(w, "lenet_infer_b256", lenet(), 256, false);
    model_workload(w, "seed150_infer_b8", seed150(), 8, false);
    model_workload(w, "seed150_train_b8", seed150(), 8, true);
    model_workload(w, "vggbn_fashion_train_b64", vgg_bn_fashion(), 64, true);
    model_workload(w, "vggbn_fashion_infer_b64", vgg_bn_fashion(), 64, false);

    // Graphs: ResNet-20 on 32x32x3, and the 224x224x3 ImageNet networks one
    // image at a time (latency: seconds per item).
    let resnet20 = include_str!("../examples/models/resnet20.cnn");
    graph_workload(w, "resnet20_train_b64", resnet20, 64, true);
    graph_workload(w, "resnet20_infer_b256", resnet20, 256, false);
    let mobilenet = include_str!("../examples/models/mobilenet_v2.cnn");
    graph_workload(w, "mobilenetv2_infer_b1", mobilenet, 1, false);
    let resnet50 = include_str!("../examples/models/resnet50.cnn");
    graph_workload(w, "resnet50_infer_b1", resnet50, 1, false);
    // The same networks at batch 8 (throughput: the batch is split over cores).
    graph_workload(w, "mobilenetv2_infer_b8", mobilenet, 8, false);
    graph_workload(w, "resnet50_infer_b8", resnet50, 8, false);
    // A small U-Net on 64x64x1: concats whose transposed-conv branches write
    // their channels in place.
    let unet = include_str!("../examples/models/unet_small.cnn");
    graph_workload(w, "unet_infer_b8", unet, 8, false);

    // The README's first command renders 2,000 training and 400 test images of
    // 150x150x3 (`data::shapes`): items are images, no flops are counted.
    w.add("shapes_2000_150x150", 2400.0, 0.0, || {
        black_box(shapes(2000, [150, 150, 3], 0));
    });
}

// ---------------------------------------------------------------- FMA peak

/// The FMA loop of [`fma_peak`] on one vector type: 12 independent chains cover
/// FMA latency x throughput. Always inlined, so that it (and the closures) run
/// with the target features of the caller.
#[inline(always)]
fn fma_chains<V: Copy>(
    iters: u64,
    splat: impl Fn(f32) -> V,
    fma: impl Fn(V, V, V) -> V,
    add: impl Fn(V, V) -> V,
) -> V {
    let mut acc = [splat(1.0); 12];
    let (m, a) = (splat(0.999_999), splat(1e-7));
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = fma(*v, m, a);
        }
    }
    acc.into_iter().fold(splat(0.0), add)
}

/// [`fma_chains`] on 512-bit vectors.
///
/// # Safety
///
/// The CPU must have AVX-512 F (as [`cnn::runtime::cpu::avx512`] reports).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop_512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    _mm512_reduce_add_ps(fma_chains(
        iters,
        |x| _mm512_set1_ps(x),
        |v, m, a| _mm512_fmadd_ps(v, m, a),
        |s, v| _mm512_add_ps(s, v),
    ))
}

/// [`fma_chains`] on 256-bit vectors.
///
/// # Safety
///
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_256(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let s = fma_chains(
        iters,
        |x| _mm256_set1_ps(x),
        |v, m, a| _mm256_fmadd_ps(v, m, a),
        |s, v| _mm256_add_ps(s, v),
    );
    let mut o = [0f32; 8];
    // SAFETY: `o` holds the 8 floats the unaligned store writes.
    unsafe { _mm256_storeu_ps(o.as_mut_ptr(), s) };
    o.iter().sum()
}

/// GFLOP/s of the FMA loop on every core (best of 5 runs of ~0.1 s), and the
/// vector width used: AVX-512 when the runtime's kernels use it, else AVX2.
fn fma_peak() -> (f64, &'static str) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    #[cfg(target_arch = "x86_64")]
    {
        let wide = cnn::runtime::cpu::avx512();
        let fma = std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("avx2");
        if wide || fma {
            let lanes = if wide { 16.0 } else { 8.0 };
            let iters: u64 = 60_000_000;
            let mut best = 0f64;
            for _ in 0..5 {
                let t = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(move || {
                            black_box(if wide {
                                // SAFETY: `cpu::avx512` found AVX-512 F (among others).
                                unsafe { fma_loop_512(iters) }
                            } else {
                                // SAFETY: AVX2 and FMA were detected just above.
                                unsafe { fma_loop_256(iters) }
                            })
                        });
                    }
                });
                let g = threads as f64 * iters as f64 * 12.0 * lanes * 2.0
                    / t.elapsed().as_secs_f64()
                    / 1e9;
                best = best.max(g);
            }
            return (best, if wide { "avx512" } else { "avx2" });
        }
    }
    (f64::NAN, "none")
}

// ---------------------------------------------------------------- driver

/// Seconds per iteration: best of 5 repetitions of ~0.25 s each (after warm-up).
fn time(run: &mut dyn FnMut()) -> f64 {
    run();
    let t = Instant::now();
    run();
    let one = t.elapsed().as_secs_f64().max(1e-7);
    let per_rep = ((0.25 / one).ceil() as usize).clamp(1, 100_000);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..per_rep {
            run();
        }
        best = best.min(t.elapsed().as_secs_f64() / per_rep as f64);
        if t.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    best
}

fn main() {
    // `cargo bench` passes `--bench`; an optional positional filter selects the
    // workloads whose name contains one of its comma-separated parts.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut json = std::env::var_os("CNN_BENCH_JSON").map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.to_string_lossy()))
    });
    // The peak is measured before and after the workloads and the higher value
    // kept: on a shared machine a single measurement can land in a busy moment.
    let (peak_before, isa) = fma_peak();
    let mut w = Workloads::default();
    builtin(&mut w);
    generated::register(&mut w);
    let mut results = Vec::new();
    for mut wl in w.0 {
        if filter
            .as_ref()
            .is_some_and(|f| !f.split(',').any(|p| wl.name.contains(p)))
        {
            continue;
        }
        let secs = time(&mut *wl.run);
        results.push((wl.name, wl.items / secs, wl.flops / secs / 1e9, secs));
    }
    let (peak_after, _) = fma_peak();
    let peak = peak_before.max(peak_after);
    println!(
        "threads: {}   FMA peak ({isa}, all cores): {peak:.1} GFLOP/s (before {peak_before:.1}, after {peak_after:.1})",
        cnn::runtime::pool::num_threads()
    );
    println!(
        "{:<24} {:>14} {:>10} {:>8} {:>12}",
        "workload", "items/s", "GFLOP/s", "% peak", "ms/iter"
    );
    if let Some(f) = json.as_mut() {
        writeln!(f, "{{\"workload\": \"fma_peak\", \"items_per_s\": 0, \"gflops\": {peak:.3}, \"peak_fraction\": 1.0}}").expect("write json");
    }
    for (name, ips, gf, secs) in results {
        let frac = gf / peak;
        println!(
            "{:<24} {:>14.1} {:>10.1} {:>7.1}% {:>12.3}",
            name,
            ips,
            gf,
            100.0 * frac,
            secs * 1e3
        );
        if let Some(f) = json.as_mut() {
            writeln!(f, "{{\"workload\": \"{name}\", \"items_per_s\": {ips:.3}, \"gflops\": {gf:.3}, \"peak_fraction\": {frac:.5}}}")
                .expect("write json");
        }
    }
}
