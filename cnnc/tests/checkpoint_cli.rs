//! Checkpoints that survive a crash: `cnnc train --checkpoint DIR` killed
//! with SIGKILL at 20 moments (drawn from a fixed seed), then resumed with
//! `--resume DIR`, ends with the weights of the uninterrupted run, byte for
//! byte; and at every kill, every checkpoint on disk is complete and loads.
//!
//! The model has batchnorm (moving statistics) and dropout (masks numbered by
//! the training passes), so a resume must restore more than the weights and
//! the optimizer's moments to be exact.

mod common;

use cnn::runtime::checkpoint::{checkpoints, verify};
use common::{cnnc, cnnc_ok, command};
use std::path::Path;
use std::time::{Duration, Instant};

const MODEL: &str = "input 32x32x3;
conv 8 3x3 same;
batchnorm;
relu;
maxpool 2;
dropout 0.25;
flatten;
dense 16 relu;
dropout 0.5;
dense 5 softmax;
";

/// The run's flags after `train MODEL` (3 epochs of 25 steps).
const RUN: [&str; 8] = [
    "--data",
    "shapes:400",
    "--epochs",
    "3",
    "--batch",
    "16",
    "--seed",
    "5",
];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every `step-*` folder in `dir` is complete and loads; anything else there
/// is a hidden leftover (`.tmp-*` being written, `.old-*` being deleted).
fn assert_only_whole_checkpoints(dir: &Path, model_src: &str, moment: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return; // killed before the first checkpoint: nothing on disk
    };
    let ir = cnn_compiler::compile(model_src, "Drop").models.remove(0);
    let mut net = cnn::lower::interpreter(&ir, 0).unwrap();
    let listed = checkpoints(dir).unwrap();
    for e in entries {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        assert!(listed.contains(&e.path()), "kill {moment}: stray {name}");
        if let Err(err) = verify(&e.path(), &mut net) {
            panic!("kill {moment}: {name} is not a whole checkpoint: {err}");
        }
    }
}

#[test]
fn a_run_killed_at_20_moments_resumes_to_the_same_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("drop.cnn");
    std::fs::write(&model, MODEL).unwrap();
    let full = tmp.path().join("full.safetensors");
    let started = Instant::now();
    let mut args = vec!["train", s(&model)];
    args.extend(RUN);
    let mut with_save = args.clone();
    with_save.extend(["--save", s(&full)]);
    cnnc_ok(&with_save);
    let whole = started.elapsed();
    let want = std::fs::read(&full).unwrap();

    // Moments from a fixed seed, spread over the run's length and a little
    // past it (a run that finished is resumed too: from its last checkpoint).
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for k in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let frac = (seed % 1000) as f64 / 1000.0 * 1.1;
        let dir = tmp.path().join(format!("ck{k}"));
        let mut child = command()
            .args(&args)
            .args(["--checkpoint", s(&dir), "--checkpoint-every", "3"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(whole.mul_f64(frac).max(Duration::from_millis(1)));
        // SIGKILL on Unix: no chance to clean up.
        let _ = child.kill();
        child.wait().unwrap();
        assert_only_whole_checkpoints(&dir, MODEL, k);

        let out = tmp.path().join(format!("resumed{k}.safetensors"));
        let mut resume = args.clone();
        resume.extend([
            "--resume",
            s(&dir),
            "--checkpoint-every",
            "3",
            "--save",
            s(&out),
        ]);
        cnnc_ok(&resume);
        assert!(
            std::fs::read(&out).unwrap() == want,
            "kill {k} at {:.0}% of the run: the resumed run's weights differ",
            frac * 100.0
        );
        assert_only_whole_checkpoints(&dir, MODEL, k);
    }
}

#[test]
fn a_resume_must_be_the_same_run() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("drop.cnn");
    std::fs::write(&model, MODEL).unwrap();
    let dir = tmp.path().join("ck");
    let mut args = vec!["train", s(&model)];
    args.extend(RUN);
    let mut first = args.clone();
    first.extend(["--checkpoint", s(&dir)]);
    cnnc_ok(&first);
    assert_eq!(
        checkpoints(&dir).unwrap().len(),
        2,
        "the two newest are kept"
    );
    // A fresh run into the same folder would mix two runs' checkpoints.
    let out = cnnc(&first);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already holds checkpoints"),
        "{err}"
    );
    // Other settings: refused, naming both.
    let mut other = args.clone();
    other[7] = "32"; // --batch 32
    other.extend(["--resume", s(&dir)]);
    let out = cnnc(&other);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("other settings"),
        "{err}"
    );
    assert!(
        err.contains("batch 16") && err.contains("batch 32"),
        "{err}"
    );
    // A file where the folder should be, and a missing parent: before any work.
    let file = tmp.path().join("f");
    std::fs::write(&file, "x").unwrap();
    for (bad, says) in [
        (file.clone(), "is a file"),
        (tmp.path().join("no/ck"), "does not exist"),
    ] {
        let mut a = args.clone();
        a.extend(["--checkpoint", s(&bad)]);
        let t = Instant::now();
        let out = cnnc(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{err}");
        assert!(t.elapsed() < Duration::from_secs(1), "refused late");
    }
    let mut a = args.clone();
    a.extend(["--checkpoint-every", "3"]);
    let err = String::from_utf8_lossy(&cnnc(&a).stderr).to_string();
    assert!(
        err.contains("--checkpoint-every needs --checkpoint"),
        "{err}"
    );
}
