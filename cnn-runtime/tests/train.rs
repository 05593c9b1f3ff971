//! `fit`, `evaluate`, `predict` and `History` on the interpreter.

use cnn_runtime::data::Dataset;
use cnn_runtime::interp::Sequential;
use cnn_runtime::loss::SoftmaxCrossEntropy;
use cnn_runtime::{
    evaluate, fit, predict, Activation, Adam, Culprit, DenseSpec, Error, FitOptions, LayerSpec,
    Model, Progress, Sgd, StepOptions,
};
use ndarray::{Array4, ArrayView2, ArrayView4};
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts allocations made by the current thread (the one running `fit`).
struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> usize {
    ALLOCS.with(|c| c.get())
}

/// Input 1x1x`f`, flatten, dense `hidden` relu, dense `classes` softmax.
fn mlp(f: usize, hidden: usize, classes: usize, seed: u64) -> Sequential {
    Sequential::new(
        [1, 1, f],
        vec![
            LayerSpec::Flatten { len: f },
            LayerSpec::Dense {
                spec: DenseSpec {
                    inputs: f,
                    units: hidden,
                },
                act: Activation::Relu,
                bias: true,
            },
            LayerSpec::Dense {
                spec: DenseSpec {
                    inputs: hidden,
                    units: classes,
                },
                act: Activation::Softmax,
                bias: true,
            },
        ],
        seed,
    )
    .unwrap()
}

/// Three Gaussian blobs in 4 dimensions, well separated.
fn blobs(n: usize, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let centres = [
        [2.0, 0.0, -1.0, 0.5],
        [-2.0, 1.0, 1.0, -0.5],
        [0.0, -2.0, 0.0, 2.0],
    ];
    let mut images = Array4::zeros((n, 1, 1, 4));
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % 3;
        for j in 0..4 {
            images[[i, 0, 0, j]] = centres[c][j] + rng.gen_range(-0.5..0.5);
        }
        labels.push(c);
    }
    Dataset {
        images,
        labels,
        classes: vec!["a".into(), "b".into(), "c".into()],
    }
}

fn quiet(epochs: usize, batch: usize) -> FitOptions<'static> {
    FitOptions {
        epochs,
        batch_size: batch,
        progress: Progress::Silent,
        ..FitOptions::default()
    }
}

#[test]
fn fit_learns_separable_blobs_and_history_records_it() {
    let train = blobs(300, 1);
    let test = blobs(90, 2);
    let mut m = mlp(4, 16, 3, 7);
    let opts = FitOptions {
        validation: Some(&test),
        ..quiet(15, 16)
    };
    let h = fit(&mut m, &train, &opts, &mut Adam::new(0.01)).unwrap();
    assert_eq!(h.epochs.len(), 15);
    let (first, last) = (&h.epochs[0], &h.epochs[14]);
    assert!(
        last.loss < first.loss * 0.5,
        "{} -> {}",
        first.loss,
        last.loss
    );
    assert!(last.accuracy > 0.95, "train accuracy {}", last.accuracy);
    assert!(last.val_accuracy.unwrap() > 0.95, "{:?}", last.val_accuracy);
    assert_eq!(first.steps, 300usize.div_ceil(16));
    let e = evaluate(&mut m, &test, 7).unwrap();
    assert_eq!(
        Some(e.accuracy),
        last.val_accuracy,
        "same evaluation, any batch size"
    );
    assert!((Some(e.loss) == last.val_loss) || (e.loss - last.val_loss.unwrap()).abs() < 1e-5);
}

#[test]
fn one_plain_sgd_step_on_the_first_batch_moves_by_lr_times_the_gradient() {
    let data = blobs(40, 3);
    let b = 8;
    let mut reference = mlp(4, 5, 3, 11);
    let x0: ArrayView4<'_, f32> = data.images.slice(ndarray::s![..b, .., .., ..]);
    reference.loss_and_grads(x0, &data.labels[..b]).unwrap();
    let grads: Vec<Vec<f32>> = reference.grads().iter().map(|g| g.data.to_vec()).collect();

    let mut m = mlp(4, 5, 3, 11);
    let init: Vec<Vec<f32>> = m.params().iter().map(|p| p.data.to_vec()).collect();
    let lr = 0.5;
    let opts = FitOptions {
        steps: Some(1),
        shuffle: false,
        ..quiet(99, b)
    };
    let h = fit(&mut m, &data, &opts, &mut Sgd::new(lr)).unwrap();
    assert_eq!(h.epochs.len(), 1);
    assert_eq!(h.epochs[0].steps, 1);
    for ((p, before), g) in m.params().iter().zip(&init).zip(&grads) {
        for ((&after, &b0), &gv) in p.data.iter().zip(before).zip(g) {
            let got = (b0 - after) / lr;
            assert!(
                (got - gv).abs() <= 1e-5 * (1.0 + gv.abs()),
                "{}: {got} vs {gv}",
                p.name
            );
        }
    }
}

#[test]
fn steps_continue_into_a_new_pass_and_are_exact() {
    let data = blobs(10, 4);
    let mut m = mlp(4, 3, 3, 1);
    let opts = FitOptions {
        steps: Some(7),
        ..quiet(1, 4)
    };
    let h = fit(&mut m, &data, &opts, &mut Sgd::default()).unwrap();
    // 3 steps per pass (4 + 4 + 2): passes of 3, 3, then 1.
    assert_eq!(
        h.epochs.iter().map(|e| e.steps).collect::<Vec<_>>(),
        vec![3, 3, 1]
    );
}

#[test]
fn seeded_shuffling_is_deterministic() {
    let data = blobs(60, 5);
    let run = |seed| {
        let mut m = mlp(4, 6, 3, 2);
        let opts = FitOptions {
            seed,
            ..quiet(2, 8)
        };
        fit(&mut m, &data, &opts, &mut Sgd::new(0.1)).unwrap();
        m.params()[0].data.to_vec()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn evaluate_matches_the_logit_cross_entropy() {
    let data = blobs(30, 6);
    let mut m = mlp(4, 8, 3, 3);
    let e = evaluate(&mut m, &data, 30).unwrap();
    m.forward(data.images.view()).unwrap();
    let logits = m.logits().unwrap().to_owned();
    let want = SoftmaxCrossEntropy::loss(logits.as_slice().unwrap(), 3, &data.labels).unwrap();
    assert!(
        (e.loss - want).abs() < 1e-5 * want.max(1.0),
        "{} vs {want}",
        e.loss
    );
    let p = predict(&mut m, data.images.view(), 4).unwrap();
    let right = p
        .outer_iter()
        .zip(&data.labels)
        .filter(|(r, &l)| r.iter().enumerate().all(|(i, &v)| v <= r[l] || i == l))
        .count();
    assert_eq!(e.accuracy, right as f32 / 30.0);
}

#[test]
fn predict_equals_one_big_forward() {
    let data = blobs(23, 7);
    let mut m = mlp(4, 8, 3, 4);
    let p = predict(&mut m, data.images.view(), 5).unwrap();
    let full = m.forward(data.images.view()).unwrap().to_owned();
    assert_eq!(p.shape(), full.shape());
    // The kernels may block the work differently for another batch size, so the
    // sums can round differently: equal to float precision, not bit for bit.
    for (a, b) in p.iter().zip(full.iter()) {
        assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
    }
}

#[test]
fn bad_data_gives_clear_errors() {
    let mut m = mlp(4, 3, 3, 1);
    let mut opt = Sgd::default();
    let mut d = blobs(9, 8);
    d.labels[4] = 3;
    let e = fit(&mut m, &d, &quiet(1, 4), &mut opt).unwrap_err();
    assert!(
        matches!(e, Error::Labels(_)) && e.to_string().contains("label 3"),
        "{e}"
    );
    let mut d = blobs(9, 8);
    d.images[[5, 0, 0, 2]] = f32::NAN;
    let e = evaluate(&mut m, &d, 4).unwrap_err();
    assert!(
        matches!(e, Error::NonFinite(_)) && e.to_string().contains("sample 5"),
        "{e}"
    );
    let d = Dataset {
        images: Array4::zeros((2, 2, 2, 1)),
        labels: vec![0, 1],
        classes: vec![],
    };
    let e = fit(&mut m, &d, &quiet(1, 4), &mut opt).unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("1x1x4"),
        "{e}"
    );
    assert!(predict(&mut m, d.images.view(), 2).is_err());
    let d = blobs(9, 8);
    assert!(fit(&mut m, &d, &quiet(1, 0), &mut opt).is_err());
    assert!(fit(&mut m, &d, &quiet(0, 4), &mut opt).is_err());
    assert!(evaluate(&mut m, &d, 0).is_err());
    let empty = Dataset {
        images: Array4::zeros((0, 1, 1, 4)),
        labels: vec![],
        classes: vec![],
    };
    assert!(fit(&mut m, &empty, &quiet(1, 4), &mut opt).is_err());
    // Divergence is caught, not trained through.
    let mut wild = mlp(4, 3, 3, 1);
    let mut huge = blobs(9, 8);
    huge.images.mapv_inplace(|v| v * 1e30);
    let r = fit(&mut wild, &huge, &quiet(3, 3), &mut Sgd::new(1e10));
    let Err(Error::Diverged(d)) = r else {
        panic!("{r:?}")
    };
    // Named: the step of the run, and where the first NaN or infinity was.
    assert!(d.epoch.is_some() && d.step.is_some(), "{d:?}");
    assert!(!d.value.is_finite() || !d.loss.is_finite(), "{d:?}");
    let text = Error::Diverged(d.clone()).to_string();
    assert!(text.starts_with("training diverged at epoch "), "{text}");
    assert!(text.contains("a lower learning rate may help"), "{text}");
}

/// A step whose forward pass overflows is refused before its update, naming
/// the first layer whose output is not finite; the weights stay as they were.
#[test]
fn a_diverging_step_names_the_layer_and_leaves_the_weights() {
    let mut m = mlp(4, 3, 3, 1);
    for p in m.params_mut() {
        p.data.fill(1.0);
    }
    let mut d = blobs(9, 8);
    // Finite inputs whose sum (4 x 3e38, all weights 1) overflows.
    d.images.fill(3e38);
    let before: Vec<Vec<f32>> = m.params().iter().map(|p| p.data.to_vec()).collect();
    let r = fit(&mut m, &d, &quiet(1, 9), &mut Sgd::new(0.1));
    let Err(Error::Diverged(div)) = r else {
        panic!("{r:?}")
    };
    assert_eq!((div.epoch, div.step), (Some(1), Some(1)), "{div:?}");
    // Layer 0 is the flatten; layer 1, the first dense layer, overflows.
    assert_eq!(
        div.culprit,
        Culprit::Output {
            index: 1,
            statement: 1,
            join: false
        }
    );
    assert_eq!(div.value, f32::INFINITY);
    let text = Error::Diverged(div).to_string();
    assert!(
        text.contains("the first layer whose output is not finite is layer 1 (inf)"),
        "{text}"
    );
    let after: Vec<Vec<f32>> = m.params().iter().map(|p| p.data.to_vec()).collect();
    assert_eq!(before, after, "the diverged step changed the weights");
}

/// A model that hides `last_output`: fit must still score accuracy.
struct Opaque(Sequential);

impl Model for Opaque {
    fn input_shape(&self) -> [usize; 3] {
        self.0.input_shape()
    }
    fn output_shape(&self) -> Vec<usize> {
        self.0.output_shape()
    }
    fn ends_in_softmax(&self) -> bool {
        self.0.ends_in_softmax()
    }
    fn forward_batch(
        &mut self,
        x: ArrayView4<'_, f32>,
    ) -> cnn_runtime::Result<ArrayView2<'_, f32>> {
        self.0.forward_batch(x)
    }
    fn train_batch(
        &mut self,
        x: ArrayView4<'_, f32>,
        labels: &[usize],
        opt: &mut dyn cnn_runtime::Optimizer,
    ) -> cnn_runtime::Result<f32> {
        self.0.train_batch(x, labels, opt)
    }
    fn params(&self) -> Vec<cnn_runtime::Param<'_>> {
        self.0.params()
    }
    fn params_mut(&mut self) -> Vec<cnn_runtime::ParamMut<'_>> {
        self.0.params_mut()
    }
}

#[test]
fn models_without_last_output_still_get_accuracy() {
    let data = blobs(90, 9);
    let mut m = Opaque(mlp(4, 8, 3, 5));
    let h = fit(&mut m, &data, &quiet(10, 10), &mut Adam::new(0.02)).unwrap();
    assert!(h.epochs[9].accuracy > 0.9, "{:?}", h.epochs[9]);
}

#[test]
fn history_plots_an_svg() {
    let data = blobs(30, 10);
    let mut m = mlp(4, 4, 3, 6);
    let opts = FitOptions {
        validation: Some(&data),
        ..quiet(3, 10)
    };
    let h = fit(&mut m, &data, &opts, &mut Adam::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("curve.svg");
    h.plot_svg(&p).unwrap();
    let svg = std::fs::read_to_string(&p).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.contains("<svg"),
        "{}",
        &svg[..100.min(svg.len())]
    );
    for word in ["loss", "accuracy", "validation", "epoch"] {
        assert!(svg.contains(word), "missing {word}");
    }
    // Four curves (train/validation x loss/accuracy).
    assert!(
        svg.matches("<polyline").count() >= 4,
        "{}",
        svg.matches("<polyline").count()
    );
    assert!(cnn_runtime::History::default().svg().is_err());
}

#[test]
fn sequential_keeps_the_predictions_its_step_trained_on() {
    let data = blobs(12, 11);
    let mut m = mlp(4, 5, 3, 2);
    assert!(
        m.last_output().is_none(),
        "no output before any forward pass"
    );
    let before = m.forward(data.images.view()).unwrap().to_owned();
    m.train_batch(data.images.view(), &data.labels, &mut Sgd::new(0.5))
        .unwrap();
    // The step's own forward pass, before its update: what fit scores accuracy on.
    assert_eq!(m.last_output().unwrap(), before.view());
    let after = m.forward(data.images.view()).unwrap().to_owned();
    assert_ne!(after, before, "the update changed the model");
}

#[test]
fn the_training_loop_allocates_nothing_per_step() {
    // One epoch of 10 steps and one of 40: the allocations (setup, first-use
    // buffers, one history entry) must not depend on the number of steps.
    let run = |n: usize| {
        let data = blobs(n, 12);
        let mut m = mlp(4, 6, 3, 1);
        let mut opt = Adam::default();
        let before = allocs();
        fit(&mut m, &data, &quiet(1, 10), &mut opt).unwrap();
        allocs() - before
    };
    run(100); // first use in this thread: one-time setup (thread pool, caches)
    let (short, long) = (run(100), run(400));
    assert_eq!(short, long, "allocations grew with the number of steps");
}

/// `clip_norm` (Keras's `clipnorm`): one plain SGD step of rate 1 moves
/// every tensor by its gradient scaled down to norm `c`, in its direction.
#[test]
fn clip_norm_caps_each_tensors_gradient() {
    let d = blobs(12, 3);
    let x = d.images.view();
    let (mut free, mut capped) = (mlp(4, 5, 3, 9), mlp(4, 5, 3, 9));
    free.loss_and_grads(x, &d.labels).unwrap();
    let grads: Vec<Vec<f32>> = free.grads().iter().map(|g| g.data.to_vec()).collect();
    let before: Vec<Vec<f32>> = capped.params().iter().map(|p| p.data.to_vec()).collect();
    let c = 0.05f32;
    capped
        .set_step_options(StepOptions {
            clip_norm: Some(c),
            ..StepOptions::default()
        })
        .unwrap();
    capped
        .train_batch(x, &d.labels, &mut Sgd::new(1.0))
        .unwrap();
    for ((p, b), g) in capped.params().iter().zip(&before).zip(&grads) {
        let step: Vec<f32> = b.iter().zip(p.data).map(|(b, a)| b - a).collect();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let (ns, ng) = (norm(&step), norm(g));
        assert!(ns <= c * 1.0001, "{}: step norm {ns}", p.name);
        let k = if ng > c { c / ng } else { 1.0 };
        for (s, g) in step.iter().zip(g) {
            assert!((s - k * g).abs() <= 1e-6, "{}: {s} vs {}", p.name, k * g);
        }
    }
    // Out of range: refused.
    for bad in [Some(0.0), Some(f32::NAN), Some(-1.0)] {
        let o = StepOptions {
            clip_norm: bad,
            ..StepOptions::default()
        };
        assert!(capped.set_step_options(o).is_err());
    }
    let o = StepOptions {
        label_smoothing: 1.0,
        ..StepOptions::default()
    };
    assert!(capped.set_step_options(o).is_err());
}
