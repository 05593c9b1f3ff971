//! Nothing is lost: an output that cannot be written, or that would replace
//! a model source or an input, is refused before any work (in well under a
//! second, where the work would take minutes), and the source stays byte for
//! byte as it was.

mod common;

use common::{cnnc, repo};
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs `cnnc args` (with `{M}` standing for the model file and `{D}` for the
/// test's folder) and asserts it fails quickly, says `says`, trains nothing and
/// leaves the model file as it was.
fn refused(dir: &Path, model: &Path, args: &[&str], says: &str) {
    let before = std::fs::read(model).unwrap();
    let m = model.to_str().unwrap();
    let d = dir.to_str().unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{M}", m).replace("{D}", d))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = Instant::now();
    let out = cnnc(&args);
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded:\n{err}");
    assert!(err.contains(says), "{args:?}: {err}");
    assert!(
        !err.contains("training ") && !err.contains("epoch 1/"),
        "{args:?} trained before failing:\n{err}"
    );
    assert!(took < Duration::from_secs(1), "{args:?} took {took:?}");
    assert_eq!(
        std::fs::read(model).unwrap(),
        before,
        "{args:?} changed the model file"
    );
}

#[test]
fn outputs_that_would_lose_work_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("lenet5.cnn");
    std::fs::copy(repo().join("examples/models/lenet5.cnn"), &model).unwrap();
    let data = format!("mnist:{}", repo().join("../shared/data/mnist").display());
    let train = |save: &str| {
        vec![
            "train".to_string(),
            "{M}".into(),
            "--data".into(),
            data.clone(),
            "--epochs".into(),
            "10".into(),
            "--save".into(),
            save.into(),
        ]
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (train("{D}/missing/w.safetensors"), "does not exist"),
        (train("{D}/w.txt"), "cannot write .txt here"),
        (train("{M}"), "refusing to write over a .cnn file"),
        (
            ["build", "{M}", "-o", "{M}"].map(String::from).to_vec(),
            "refusing to write over a .cnn file",
        ),
        (
            ["diagram", "{M}", "-o", "{M}"].map(String::from).to_vec(),
            "refusing to write over a .cnn file",
        ),
        (
            ["diagram", "{M}", "--output", "{D}/d.png"]
                .map(String::from)
                .to_vec(),
            "cannot write .png here",
        ),
    ];
    for (args, says) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(dir.path(), &model, &args, says);
    }
}

#[test]
fn predict_does_not_write_over_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.cnn");
    std::fs::write(&model, "input 2x2x1; flatten; dense 2 softmax;").unwrap();
    let x = dir.path().join("x.npy");
    cnn::runtime::io::write_npy(&x, &[1, 2, 2, 1], &[0.0, 1.0, 2.0, 3.0]).unwrap();
    // The check comes before the weights are read: they need not exist.
    let before = std::fs::read(&x).unwrap();
    let args = [
        "predict",
        "{M}",
        "--weights",
        "{D}/w.safetensors",
        "--input",
        "{D}/x.npy",
        "--output",
        "{D}/x.npy",
    ];
    refused(dir.path(), &model, &args, "is also an input");
    assert_eq!(std::fs::read(&x).unwrap(), before);
}

#[test]
fn an_existing_output_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let model = repo().join("examples/models/lenet5.cnn");
    let out = dir.path().join("lenet5.rs");
    std::fs::write(&out, "old").unwrap();
    let run = cnnc(&[
        "build",
        model.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let code = std::fs::read_to_string(&out).unwrap();
    assert!(code.contains("pub struct Lenet5"), "{code}");
    // Only the output is in the folder: no temporary file is left.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["lenet5.rs"]);
}

/// Data sanity: weights trained on one set of class names, evaluated on data
/// with another, get a warning naming both; an image resized far from its own
/// size or proportions gets one too.
#[test]
fn eval_and_predict_say_when_the_data_does_not_fit_the_weights() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.cnn");
    std::fs::write(&model, "input 28x28x1; flatten; dense 10 softmax;").unwrap();
    let w = dir.path().join("w.safetensors");
    let shared = repo().join("../shared/data");
    let fashion = format!("fashion-mnist:{}", shared.join("fashion-mnist").display());
    let mnist = format!("mnist:{}", shared.join("mnist").display());
    let m = model.to_str().unwrap();
    let ws = w.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = cnnc(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {err}");
        err
    };
    run(&[
        "train", m, "--data", &fashion, "--limit", "64", "--steps", "1", "--save", ws,
    ]);
    let err = run(&[
        "eval",
        m,
        "--weights",
        ws,
        "--data",
        &mnist,
        "--limit",
        "64",
    ]);
    assert!(
        err.contains("trained on the classes T-shirt/top, Trouser") && err.contains("0, 1, 2, 3"),
        "{err}"
    );
    let err = run(&[
        "eval",
        m,
        "--weights",
        ws,
        "--data",
        &fashion,
        "--limit",
        "64",
    ]);
    assert!(!err.contains("warning"), "{err}");
    // A 300x200 photo for a 28x28 model.
    let photo = dir.path().join("photo.png");
    image_file(&photo, 200, 300);
    let err = run(&[
        "predict",
        m,
        "--weights",
        ws,
        "--input",
        photo.to_str().unwrap(),
    ]);
    assert!(err.contains("300x200 image is resized to 28x28"), "{err}");
}

/// Writes a grey `w x h` PNG.
fn image_file(path: &Path, w: u32, h: u32) {
    let img = image::GrayImage::from_pixel(w, h, image::Luma([128]));
    img.save(path).unwrap();
}

/// A run that cannot work is refused before any work, in words that name
/// the flag.
#[test]
fn settings_that_cannot_work_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("lenet5.cnn");
    std::fs::copy(repo().join("examples/models/lenet5.cnn"), &model).unwrap();
    let data = format!("mnist:{}", repo().join("../shared/data/mnist").display());
    for (flag, value, says) in [
        ("--batch", "0", "--batch must be at least 1"),
        ("--epochs", "0", "--epochs must be at least 1"),
        ("--steps", "0", "--steps must be at least 1"),
        ("--lr", "-1", "--lr must be a positive number, got -1"),
        ("--lr", "0", "--lr must be a positive number"),
        ("--lr", "nan", "--lr must be a positive number"),
        (
            "--label-smoothing",
            "1",
            "--label-smoothing must be in [0, 1), got 1",
        ),
        (
            "--label-smoothing",
            "-0.1",
            "--label-smoothing must be in [0, 1)",
        ),
        ("--clip-norm", "0", "--clip-norm must be a positive number"),
        (
            "--weight-decay",
            "-1",
            "--weight-decay must be a number >= 0",
        ),
        ("--early-stop", "0", "--early-stop must be at least 1"),
        (
            "--checkpoint-every",
            "0",
            "--checkpoint-every must be at least 1",
        ),
    ] {
        refused(
            dir.path(),
            &model,
            &["train", "{M}", "--data", &data, flag, value],
            says,
        );
    }
}

/// `cnnc images` writes a class-per-folder set that `--data folder:` reads
/// back (same count, same classes), and never writes into a folder that holds
/// something.
#[test]
fn images_writes_a_folder_data_set_and_refuses_a_full_folder() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    let p = photos.to_str().unwrap();
    let out = common::cnnc_ok(&["images", "shapes:50", "--size", "20x24x3", "-o", p]);
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("wrote 50 images of 20x24x3 in 5 class folders"));
    // Numbered within each class, as the README's `photos/circle/0.png` needs.
    for class in ["circle", "cross", "line", "square", "triangle"] {
        assert!(photos.join(class).join("0.png").is_file(), "{class}/0.png");
    }
    let back = cnn::runtime::data::folder::load_folder(&photos, [20, 24, 3], 0.0, 0).unwrap();
    assert_eq!(back.train.len(), 50);
    assert_eq!(
        back.train.classes,
        ["circle", "cross", "line", "square", "triangle"]
    );
    // The same images as the built-in set, to 8-bit rounding.
    let (want, _) = cnn::runtime::data::shapes::shapes(50, [20, 24, 3], 0);
    let total: f32 = want.images.iter().map(|v| v.abs()).sum();
    let got: f32 = back.train.images.iter().map(|v| v.abs()).sum();
    assert!((total - got).abs() / total < 1e-3, "{total} vs {got}");
    let again = cnnc(&["images", "shapes:50", "-o", p]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not an empty folder"));
    let bad = cnnc(&[
        "images",
        "shapes:5",
        "--size",
        "8x8x2",
        "-o",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("1 (grey), 3 (RGB) or 4 (RGBA)"));
}
