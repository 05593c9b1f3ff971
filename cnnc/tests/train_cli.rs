//! `cnnc train`, `cnnc eval` and `cnnc predict` as a user runs them: the SGD
//! gradient contract against the Keras oracle, a short MNIST run, and the errors
//! bad input must give.

mod common;

use cnn_runtime::io::{npy::write_npy, Npz};
use common::{cnnc, cnnc_ok, golden, one_sgd_step, oracle_npy, repo as root};
use std::path::{Path, PathBuf};

fn mnist() -> PathBuf {
    root().join("../shared/data/mnist")
}

fn fashion() -> PathBuf {
    root().join("../shared/data/fashion-mnist")
}

/// Runs a command that must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    String::from_utf8(cnnc_ok(args).stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr.
fn fails(args: &[&str]) -> String {
    let out = cnnc(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "cnnc {args:?} should exit 1; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes the oracle's `x` and `labels` of `case` as .npy files in `dir`.
fn oracle_arrays(case: &str, dir: &Path) -> (PathBuf, PathBuf, usize) {
    let (xp, lp, b) = oracle_npy(&golden(case).join("io.npz"), case, dir);
    (xp, lp.expect("labels"), b)
}

/// `--steps 1 --batch B --no-shuffle --optimizer sgd`: `(init - saved) / lr` is the
/// gradient of the batch's mean cross-entropy, which Keras computed.
#[test]
fn one_sgd_step_reproduces_the_oracle_cross_entropy_gradients() {
    let dir = tempfile::tempdir().unwrap();
    for case in ["lenet5", "cls_small"] {
        let (xp, lp, b) = oracle_arrays(case, dir.path());
        let init = golden(case).join("weights.npz");
        let saved = dir.path().join(format!("{case}_saved.npz"));
        let lr = 1.0f32;
        let model = golden(case).join("model.cnn");
        one_sgd_step(&model, &init, &xp, &lp, b, &saved);
        let before = Npz::open(&init).unwrap();
        let after = Npz::open(&saved).unwrap();
        let io = Npz::open(&golden(case).join("io.npz")).unwrap();
        let mut checked = 0;
        for name in before.names() {
            let p = Path::new(name);
            let w0 = before.read(name).unwrap().into_f32(p, name).unwrap();
            let w1 = after.read(name).unwrap().into_f32(p, name).unwrap();
            let g = io
                .read(&format!("{name}.ce_grad"))
                .unwrap()
                .into_f32(p, name)
                .unwrap();
            assert_eq!(w0.shape(), g.shape());
            let scale = g.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert!(scale > 0.0, "{case} {name}: zero gradient in the oracle");
            let mut worst = 0f32;
            for ((a, b1), gv) in w0.iter().zip(w1.iter()).zip(g.iter()) {
                worst = worst.max(((a - b1) / lr - gv).abs());
            }
            eprintln!("{case} {name}: worst |(init - saved)/lr - ce_grad| = {:.2e} of the largest gradient", worst / scale);
            assert!(
                worst <= 1e-4 * scale,
                "{case} {name}: worst error {worst} vs largest gradient {scale}"
            );
            checked += 1;
        }
        assert!(checked >= 2, "{case}: no parameters checked");
    }
}

#[test]
fn short_mnist_run_trains_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("lenet5.safetensors");
    let curve = dir.path().join("curve.svg");
    let model = root().join("examples/models/lenet5.cnn");
    let data = format!("mnist:{}", s(&mnist()));
    let out = ok(&[
        "train",
        s(&model),
        "--data",
        &data,
        "--limit",
        "6000",
        "--epochs",
        "2",
        "--batch",
        "16",
        "--lr",
        "0.002",
        "--save",
        s(&w),
        "--plot",
        s(&curve),
    ]);
    assert!(out.contains("test accuracy: "), "{out}");
    assert!(std::fs::read_to_string(&curve).unwrap().contains("<svg"));
    let eval = ["eval", s(&model), "--weights", s(&w), "--data", &data];
    let out = ok(&eval);
    let lines: Vec<&str> = out.lines().collect();
    let n = lines.len();
    assert!(
        n >= 2 && lines[n - 2].starts_with("loss: ") && lines[n - 1].starts_with("accuracy: "),
        "{out}"
    );
    let acc: f32 = lines[n - 1]["accuracy: ".len()..]
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(
        acc >= 90.0,
        "test accuracy {acc}% after two epochs on 6000 images"
    );
    let loss: f32 = lines[n - 2]["loss: ".len()..].parse().unwrap();
    assert!(loss > 0.0 && loss < 0.5, "{loss}");
    // The same weights evaluated on the first 500 test images only.
    let out = ok(&[&eval[..], &["--limit", "500"]].concat());
    assert!(out.contains("accuracy: "));
}

#[test]
fn predict_writes_the_oracle_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (xp, _, _) = oracle_arrays("lenet5", dir.path());
    let yp = dir.path().join("y.npy");
    ok(&[
        "predict",
        s(&golden("lenet5").join("model.cnn")),
        "--weights",
        s(&golden("lenet5").join("weights.npz")),
        "--input",
        s(&xp),
        "--output",
        s(&yp),
    ]);
    let got = cnn_runtime::io::read_npy(&yp).unwrap();
    assert_eq!(got.shape, vec![2, 10]);
    let got = got.into_f32(&yp, "y").unwrap();
    let io = golden("lenet5").join("io.npz");
    let want = Npz::open(&io)
        .unwrap()
        .read("y")
        .unwrap()
        .into_f32(&io, "y")
        .unwrap();
    for (g, w) in got.iter().zip(want.iter()) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
}

#[test]
fn predict_on_an_image_prints_class_names() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("examples/models/shapes_small.cnn");
    let w = dir.path().join("w.npz");
    let out = ok(&[
        "train",
        s(&model),
        "--data",
        "shapes:100",
        "--epochs",
        "1",
        "--save",
        s(&w),
        "--seed",
        "3",
    ]);
    assert!(out.contains("test accuracy: "), "{out}");
    let png = dir.path().join("x.png");
    let img = image::RgbImage::from_fn(40, 40, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 6) as u8, 128])
    });
    img.save(&png).unwrap();
    let out = ok(&["predict", s(&model), "--weights", s(&w), "--input", s(&png)]);
    // Five classes, each printed with a probability.
    assert_eq!(
        out.lines().filter(|l| l.trim_end().ends_with('%')).count(),
        5,
        "{out}"
    );
    assert!(
        !out.contains("class 0"),
        "class names come from the weights file: {out}"
    );
    let out = ok(&[
        "eval",
        s(&model),
        "--weights",
        s(&w),
        "--data",
        "shapes:100",
        "--seed",
        "3",
    ]);
    assert!(out.contains("accuracy: "), "{out}");
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let lenet = golden("lenet5").join("model.cnn");
    let lw = golden("lenet5").join("weights.npz");
    let (xp, lp, _) = oracle_arrays("cls_small", dir.path());
    let (lx, ll, _) = oracle_arrays("lenet5", dir.path());
    // `cnnc eval` of lenet5, which must fail.
    let eval = |weights: &str, x: &Path, labels: &Path| {
        let (model, x, labels) = (s(&lenet), s(x), s(labels));
        fails(&[
            "eval",
            model,
            "--weights",
            weights,
            "--x",
            x,
            "--labels",
            labels,
        ])
    };
    // cls_small's 12x12x3 samples given to lenet5 (32x32x1).
    let e = eval(s(&lw), &xp, &lp);
    assert!(e.contains("12x12x3") && e.contains("32x32x1"), "{e}");
    // Labels out of range.
    let bad = dir.path().join("bad_labels.npy");
    write_npy(&bad, &[2], &[3i64, 10]).unwrap();
    let e = eval(s(&lw), &lx, &bad);
    assert!(e.contains("label 10") && e.contains("0..10"), "{e}");
    // NaN in the data.
    let nan = dir.path().join("nan.npy");
    let mut v = vec![0.5f32; 2 * 32 * 32];
    v[1500] = f32::NAN;
    write_npy(&nan, &[2, 32, 32, 1], &v).unwrap();
    let e = fails(&[
        "train",
        s(&lenet),
        "--x",
        s(&nan),
        "--labels",
        s(&ll),
        "--steps",
        "1",
    ]);
    assert!(e.contains("non-finite") && e.contains("sample 1"), "{e}");
    // Missing files.
    let e = eval("/nonexistent/w.npz", &lx, &ll);
    assert!(e.contains("/nonexistent/w.npz"), "{e}");
    let e = fails(&[
        "train",
        s(&lenet),
        "--data",
        "mnist:/nonexistent/dir",
        "--steps",
        "1",
    ]);
    assert!(
        e.contains("/nonexistent/dir") && e.contains("train-images-idx3-ubyte"),
        "{e}"
    );
    let e = fails(&["train", "/nonexistent/m.cnn", "--data", "shapes:10"]);
    assert!(e.contains("/nonexistent/m.cnn"), "{e}");
    let e = fails(&["train", s(&lenet), "--data", "imagenet:/x"]);
    assert!(e.contains("mnist:DIR"), "{e}");
    // Weights of another architecture.
    let e = eval(s(&golden("cls_small").join("weights.npz")), &lx, &ll);
    assert!(e.contains("layer0.kernel"), "{e}");
    // A model file with a shape error: rendered diagnostics, exit 1.
    let broken = dir.path().join("broken.cnn");
    std::fs::write(
        &broken,
        "input 4x4x1;\nconv 2 5x5;\nflatten;\ndense 3 softmax;\n",
    )
    .unwrap();
    let e = fails(&["train", s(&broken), "--data", "shapes:10"]);
    assert!(e.contains("error[E") && e.contains("broken.cnn:2"), "{e}");
}

#[test]
fn folder_data_trains_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let root_dir = dir.path().join("pics");
    for (class, colour) in [("dark", 30u8), ("light", 220u8)] {
        let d = root_dir.join(class);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..6u8 {
            let img = image::RgbImage::from_pixel(
                20 + i as u32,
                24,
                image::Rgb([colour, colour + i, colour]),
            );
            img.save(d.join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::write(root_dir.join("light/broken.png"), b"not a png").unwrap();
    let model = root().join("examples/models/shapes_small.cnn");
    let w = dir.path().join("w.safetensors");
    let data = format!("folder:{}", s(&root_dir));
    let out = cnnc(&[
        "train",
        s(&model),
        "--data",
        &data,
        "--epochs",
        "2",
        "--save",
        s(&w),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("broken.png"),
        "the skipped file is reported: {err}"
    );
    assert!(
        err.contains("2 classes") && err.contains("5 outputs"),
        "{err}"
    );
    let out = ok(&["eval", s(&model), "--weights", s(&w), "--data", &data]);
    assert!(
        out.lines().last().unwrap().starts_with("accuracy: "),
        "{out}"
    );
}

/// Fashion-MNIST, given either way, is trained with its own class names, which
/// the saved weights carry to `predict`.
#[test]
fn fashion_mnist_weights_carry_the_clothing_class_names() {
    // Fashion-MNIST's classes, index = label, as its authors' README names them.
    let fashion_classes =
        "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot";
    let fashion_classes: Vec<&str> = fashion_classes.split(',').collect();
    assert_eq!(fashion_classes.len(), 10);
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("examples/models/lenet5.cnn");
    let x = dir.path().join("x.npy");
    write_npy(&x, &[1, 28, 28, 1], &vec![0.5f32; 28 * 28]).unwrap();
    for (k, data) in [
        format!("fashion-mnist:{}", s(&fashion())),
        format!("mnist:{}", s(&fashion())),
    ]
    .iter()
    .enumerate()
    {
        let w = dir.path().join(format!("w{k}.safetensors"));
        ok(&[
            "train",
            s(&model),
            "--data",
            data,
            "--limit",
            "64",
            "--steps",
            "2",
            "--save",
            s(&w),
        ]);
        let out = ok(&["predict", s(&model), "--weights", s(&w), "--input", s(&x)]);
        let named: Vec<&str> = out
            .lines()
            .filter_map(|l| {
                fashion_classes
                    .iter()
                    .find(|c| l.trim_start().starts_with(**c))
                    .copied()
            })
            .collect();
        assert_eq!(named.len(), 5, "{data}: top 5 named as clothes:\n{out}");
    }
    // Digits stay digits.
    let w = dir.path().join("digits.safetensors");
    let data = format!("mnist:{}", s(&mnist()));
    ok(&[
        "train",
        s(&model),
        "--data",
        &data,
        "--limit",
        "64",
        "--steps",
        "1",
        "--save",
        s(&w),
    ]);
    let out = ok(&["predict", s(&model), "--weights", s(&w), "--input", s(&x)]);
    let digits = out
        .lines()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or("");
            name.len() == 1 && name.chars().all(|c| c.is_ascii_digit())
        })
        .count();
    assert_eq!(digits, 5, "{out}");
    assert!(!fashion_classes.iter().any(|c| out.contains(c)), "{out}");
}

#[test]
fn lr_schedule_is_applied_per_epoch_and_bad_ones_are_refused() {
    let model = root().join("examples/models/lenet5.cnn");
    let data = format!("mnist:{}", s(&mnist()));
    let args = [
        "train",
        s(&model),
        "--data",
        &data,
        "--limit",
        "256",
        "--epochs",
        "3",
        "--batch",
        "64",
        "--lr-schedule",
        "step:1:0.5",
    ];
    let out = cnnc(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("lr 0.001 (step:1:0.5)"), "{err}");
    // The rate of each epoch's last step: halved after every epoch.
    for (epoch, lr) in [(1, "1.000e-3"), (2, "5.000e-4"), (3, "2.500e-4")] {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("epoch {epoch}/3:")))
            .unwrap_or_else(|| panic!("no line for epoch {epoch}:\n{err}"));
        assert!(line.contains(&format!("lr {lr}")), "{line}");
    }
    // A bad value is a usage error (clap's exit code 2) naming the accepted forms.
    for (bad, says) in [("linear", "step:EVERY[:FACTOR]"), ("cosine:3", "[0, 1]")] {
        let out = cnnc(&[
            "train",
            s(&model),
            "--data",
            "shapes:10",
            "--lr-schedule",
            bad,
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(err.contains("--lr-schedule") && err.contains(says), "{err}");
    }
}

/// The reduced form of the Fashion-MNIST VGG-style example's full run (15
/// epochs on 60,000 images with the defaults reach 93.57% test accuracy, by
/// hand): 3 epochs on the first 6,000 images with the defaults, batchnorm's
/// moving statistics included, must already classify the test images well
/// (86.12% when measured; a broken batchnorm or dropout stays far below).
#[test]
fn fashion_vgg_bn_example_learns_with_the_defaults() {
    let acc = fashion_accuracy("vgg_bn_fashion.cnn", 6000, 3);
    assert!(acc >= 80.0, "test accuracy {acc}%");
}

/// The ResNet-20 of `examples/models/resnet20_fashion.cnn` (a graph: residual
/// blocks, projection shortcuts, block uses and repeats), reduced as above: 3
/// epochs on the first 6,000 images with the defaults (76.25% when measured;
/// the moving statistics lag after so few steps, so this is below the VGG's).
/// The full run is in the closing note of the graphs issue.
#[test]
fn fashion_resnet20_example_learns_with_the_defaults() {
    let acc = fashion_accuracy("resnet20_fashion.cnn", 6000, 3);
    assert!(acc >= 70.0, "test accuracy {acc}%");
}

/// `cnnc train` of an example model on the first `limit` Fashion-MNIST
/// training images for `epochs`, with the defaults: the test accuracy it prints.
fn fashion_accuracy(example: &str, limit: usize, epochs: usize) -> f32 {
    let model = root().join("examples/models").join(example);
    let data = format!("fashion-mnist:{}", s(&fashion()));
    let (limit, epochs) = (limit.to_string(), epochs.to_string());
    let out = ok(&[
        "train",
        s(&model),
        "--data",
        &data,
        "--limit",
        &limit,
        "--epochs",
        &epochs,
    ]);
    out.lines()
        .find_map(|l| l.strip_prefix("test accuracy: "))
        .unwrap_or_else(|| panic!("no test accuracy line:\n{out}"))
        .trim_end_matches('%')
        .parse()
        .unwrap()
}

/// A learning rate of 1e6 makes the loss diverge: the run stops at the step
/// where it did, naming the layer whose output first held a NaN or an
/// infinity with its line in the file, writes no weights, and its last
/// checkpoint (the step before) loads.
#[test]
fn a_diverging_run_stops_naming_the_layer_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("w.safetensors");
    let ck = dir.path().join("ck");
    let model = root().join("examples/models/shapes_small.cnn");
    let err = fails(&[
        "train",
        s(&model),
        "--data",
        "shapes:400",
        "--epochs",
        "2",
        "--lr",
        "1e6",
        "--save",
        s(&save),
        "--checkpoint",
        s(&ck),
        "--checkpoint-every",
        "1",
    ]);
    assert!(
        err.contains("error: training diverged at epoch 1, step "),
        "{err}"
    );
    let step: usize = err
        .split("epoch 1, step ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    // The newest checkpoint is the step before, and loads (finite weights).
    let newest = cnn::runtime::checkpoint::checkpoints(&ck)
        .unwrap()
        .pop()
        .unwrap_or_else(|| panic!("no checkpoint before step {step}"));
    let src = std::fs::read_to_string(&model).unwrap();
    let ir = cnn_compiler::compile(&src, "ShapesSmall").models.remove(0);
    let mut net = cnn::lower::interpreter(&ir, 0).unwrap();
    let done = cnn::runtime::checkpoint::verify(&newest, &mut net).unwrap();
    assert_eq!(done, step - 1, "{}", newest.display());
    assert!(err.contains("a lower learning rate may help"), "{err}");
    // The layer, by its place in the file: `shapes_small.cnn:LINE: `conv ...``.
    let at = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .unwrap_or_else(|| panic!("no location:\n{err}"));
    assert!(at.contains("shapes_small.cnn:"), "{at}");
    let line: usize = at.split(':').nth(1).unwrap().parse().unwrap();
    let stmt = src.lines().nth(line - 1).unwrap().trim_end_matches(';');
    assert!(
        at.contains(&format!("`{stmt}`")),
        "{at} vs line {line}: {stmt}"
    );
    assert!(err.contains("nothing was saved"), "{err}");
    assert!(!save.exists(), "weights of a diverged run were written");
}

/// `--validation-split F` holds out the last F of the training data: the
/// epochs report it, and the test data is scored once at the end.
#[test]
fn a_validation_split_is_reported_apart_from_the_test_data() {
    let model = root().join("examples/models/shapes_small.cnn");
    let out = cnnc_ok(&[
        "train",
        s(&model),
        "--data",
        "shapes:500",
        "--epochs",
        "2",
        "--validation-split",
        "0.2",
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("on 400 examples"), "{stderr}");
    assert!(stderr.contains("loss on the validation split"), "{stderr}");
    assert!(stdout.contains("validation accuracy: "), "{stdout}");
    assert!(stdout.contains("test accuracy: "), "{stdout}");
    for bad in ["0", "1", "1.5"] {
        let err = fails(&[
            "train",
            s(&model),
            "--data",
            "shapes:500",
            "--validation-split",
            bad,
        ]);
        assert!(err.contains("validation split"), "{bad}: {err}");
    }
}

/// `--early-stop 1` ends the run once the validation loss rises and keeps
/// the best epoch's weights: the test accuracy printed at the end is that
/// epoch's (the test data is the validation data here); `--log` has one
/// Keras CSVLogger row per epoch run.
#[test]
fn early_stopping_keeps_the_best_epoch_and_the_log_has_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("metrics.csv");
    let (last, best_file) = (
        dir.path().join("w.safetensors"),
        dir.path().join("best.npz"),
    );
    let model = root().join("examples/models/shapes_small.cnn");
    let out = cnnc_ok(&[
        "train",
        s(&model),
        "--data",
        "shapes:300",
        "--epochs",
        "30",
        "--early-stop",
        "1",
        "--log",
        s(&log),
        "--save",
        s(&last),
        "--save-best",
        s(&best_file),
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let csv = std::fs::read_to_string(&log).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("epoch,accuracy,learning_rate,loss,val_accuracy,val_loss")
    );
    let rows: Vec<Vec<f64>> = rows
        .map(|r| r.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert!(rows.len() < 30, "never stopped early:\n{csv}");
    // The run stopped one epoch after its best, which it kept.
    let (best, _) = rows
        .iter()
        .enumerate()
        .min_by(|a, b| a.1[5].total_cmp(&b.1[5]))
        .unwrap();
    assert_eq!(best, rows.len() - 2, "{csv}");
    assert!(
        stderr.contains(&format!("kept the weights of epoch {}", best + 1)),
        "{stderr}"
    );
    let want = format!("test accuracy: {:.2}%", 100.0 * rows[best][4] as f32);
    assert!(stdout.contains(&want), "{want}\n{stdout}");
    // --save-best kept that epoch's weights too: the weights --save wrote
    // after early stopping put them back.
    let read = |p: &Path| {
        let src = std::fs::read_to_string(&model).unwrap();
        let ir = cnn_compiler::compile(&src, "ShapesSmall").models.remove(0);
        let mut net = cnn::lower::interpreter(&ir, 0).unwrap();
        cnn::runtime::io::load_weights(&mut net, p).unwrap();
        let v: Vec<Vec<f32>> = cnn::runtime::Model::params(&net)
            .iter()
            .map(|t| t.data.to_vec())
            .collect();
        v
    };
    assert_eq!(read(&best_file), read(&last));
    assert!(
        stderr.contains(&format!("holds the weights of epoch {}", best + 1)),
        "{stderr}"
    );
    // With checkpoints, early stopping is refused (its state is not saved).
    let out = cnnc(&[
        "train",
        s(&model),
        "--data",
        "shapes:300",
        "--early-stop",
        "1",
        "--checkpoint",
        s(&dir.path().join("ck")),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot be used with"),
        "{err}"
    );
}

/// `eval --report`: per-class scores, top-k and the confusion matrix, which
/// agree with the accuracy; `--confusion` draws it as an SVG heat map.
#[test]
fn eval_report_agrees_with_the_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().join("w.safetensors");
    let svg = dir.path().join("confusion.svg");
    let model = root().join("examples/models/shapes_small.cnn");
    let m = s(&model);
    ok(&[
        "train",
        m,
        "--data",
        "shapes:400",
        "--epochs",
        "2",
        "--save",
        s(&w),
    ]);
    let eval = [m, "--data", "shapes:400", "--weights", s(&w), "--report"];
    let mut json_args = vec!["eval"];
    json_args.extend(eval);
    json_args.extend(["--top-k", "2", "--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(ok(&json_args).trim()).unwrap();
    let confusion: Vec<Vec<u64>> = serde_json::from_value(j["confusion"].clone()).unwrap();
    let n = j["examples"].as_u64().unwrap();
    assert_eq!(confusion.iter().flatten().sum::<u64>(), n);
    let right: u64 = (0..confusion.len()).map(|c| confusion[c][c]).sum();
    let acc = j["accuracy"].as_f64().unwrap();
    assert!((right as f64 / n as f64 - acc).abs() < 1e-6, "{j}");
    let top = j["top_k"].as_array().unwrap();
    assert_eq!(top[0][0], 1);
    assert!((top[0][1].as_f64().unwrap() - acc).abs() < 1e-6);
    assert_eq!(top[1][0], 2);
    assert!(top[1][1].as_f64().unwrap() >= acc);
    let classes = j["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 5);
    assert_eq!(classes[0]["class"], "circle");
    let mut text_args = vec!["eval"];
    text_args.extend(eval);
    text_args.extend(["--confusion", s(&svg)]);
    let text = ok(&text_args);
    for part in [
        "precision",
        "macro avg",
        "top-5 accuracy",
        "confusion matrix",
    ] {
        assert!(text.contains(part), "{part}:\n{text}");
    }
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg") && drawn.contains(">circle</text>"));
    // The same picture as a PNG: the SVG's size, blue cells, and (where the
    // system has a font) dark text left of the grid.
    let png = dir.path().join("confusion.png");
    let mut png_args = vec!["eval"];
    png_args.extend(eval);
    png_args.extend(["--confusion", s(&png)]);
    let out = cnnc_ok(&png_args);
    let img = image::open(&png).unwrap().to_rgb8();
    let size = |attr: &str| -> u32 {
        let at = drawn.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
        drawn[at..].split('"').next().unwrap().parse().unwrap()
    };
    assert_eq!(img.dimensions(), (size("width"), size("height")));
    assert!(
        img.pixels().any(|p| i32::from(p[2]) - i32::from(p[0]) > 40),
        "no blue cell"
    );
    let fonts = !String::from_utf8_lossy(&out.stderr).contains("no fonts");
    let dark_left = (0..img.height())
        .flat_map(|y| (0..60).map(move |x| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|c| *c < 100))
        .count();
    assert!(
        !fonts || dark_left > 20,
        "no class names drawn ({dark_left} dark pixels)"
    );
}
