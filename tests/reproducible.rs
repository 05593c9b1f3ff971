//! Same seed, same weights, anywhere: two epochs of LeNet-5 on 6,000 MNIST
//! digits end with bit-identical weights whatever `CNN_THREADS` is (1, 2, 3)
//! and whether the model runs interpreted or as generated code. So does a
//! batchnorm net (whose plan runs the batch as one part, its channel sums
//! split over the cores in blocks of rows fixed by the batch alone).
//!
//! The pool's size is read once per process, so the test runs this binary
//! again as a child for each configuration (`CNN_REPRO_CHILD=interp|generated`
//! and `CNN_THREADS`); each child trains and prints the SHA-256 of its weights
//! (every tensor's bytes, in order). Skips, saying so, without the MNIST files
//! at `../shared/data/mnist`.

use cnn::runtime::data::{Dataset, Mnist, Split};
use cnn::runtime::{fit, Adam, FitOptions, Model, Progress};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;

cnn::cnn!(include "examples/models/lenet5.cnn");

const CHILD: &str = "CNN_REPRO_CHILD";

/// Batchnorm in training (its moments and backward sums) at sizes that the
/// pool splits.
const BATCHNORM_NET: &str = "input 28x28x1; conv 16 3x3 same nobias; batchnorm; relu; \
    maxpool 2; residual { conv 16 3x3 same nobias; batchnorm; relu }; \
    globalavgpool; dense 10 softmax";
const SEED: u64 = 7;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist")
}

/// The first 6,000 training digits.
fn digits() -> Dataset {
    let all = Mnist::load(data_dir(), Split::Train).expect("MNIST training files");
    let n = 6_000;
    Dataset {
        images: all
            .images
            .slice(cnn::ndarray::s![..n, .., .., ..])
            .to_owned(),
        labels: all.labels[..n].to_vec(),
        classes: all.classes,
    }
}

/// Trains two epochs (shuffled, Adam) and returns the weights' SHA-256.
fn train(net: &mut dyn Model) -> String {
    let data = digits();
    let opts = FitOptions {
        epochs: 2,
        batch_size: 64,
        seed: SEED,
        progress: Progress::Silent,
        ..FitOptions::default()
    };
    fit(net, &data, &opts, &mut Adam::new(1e-3)).expect("training");
    let mut h = Sha256::new();
    for p in net.params() {
        for v in p.data.iter() {
            h.update(v.to_le_bytes());
        }
    }
    format!("{:x}", h.finalize())
}

/// The child's half: train as `CNN_REPRO_CHILD` says, print the digest.
#[test]
#[ignore = "run by `same_weights_on_any_core_count_interpreted_or_generated` as a child process"]
fn child() {
    let Ok(how) = std::env::var(CHILD) else {
        return;
    };
    let digest = match how.as_str() {
        "generated" => train(&mut Lenet5::new(SEED)),
        "interp" => {
            let src = std::fs::read_to_string(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/models/lenet5.cnn"),
            )
            .unwrap();
            let ir = cnn_compiler::compile(&src, "Lenet5").models.remove(0);
            train(&mut cnn::lower::interpreter(&ir, SEED).unwrap())
        }
        "batchnorm" => {
            let ir = cnn_compiler::compile(BATCHNORM_NET, "Bn").models.remove(0);
            train(&mut cnn::lower::interpreter(&ir, SEED).unwrap())
        }
        other => panic!("{CHILD}={other}"),
    };
    println!("sha256 {digest}");
}

#[test]
fn same_weights_on_any_core_count_interpreted_or_generated() {
    if !data_dir().join("train-labels-idx1-ubyte.gz").exists()
        && !data_dir().join("train-labels-idx1-ubyte").exists()
    {
        eprintln!(
            "skipped: no MNIST files in {} (see the README's data section)",
            data_dir().display()
        );
        return;
    }
    let me = std::env::current_exe().unwrap();
    let mut seen = Vec::new();
    for how in ["interp", "generated", "batchnorm"] {
        for threads in [1, 2, 3] {
            let out = Command::new(&me)
                .args(["child", "--exact", "--ignored", "--nocapture"])
                .env(CHILD, how)
                .env("CNN_THREADS", threads.to_string())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{how} with CNN_THREADS={threads} failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let digest = stdout
                .lines()
                .find_map(|l| l.strip_prefix("sha256 "))
                .unwrap_or_else(|| panic!("no digest from {how}/{threads}:\n{stdout}"))
                .to_string();
            eprintln!("{how:>9}, CNN_THREADS={threads}: {digest}");
            seen.push((how, threads, digest));
        }
    }
    for (how, threads, digest) in &seen {
        let (first_how, _, first) = &seen[if *how == "batchnorm" { 6 } else { 0 }];
        assert_eq!(
            digest, first,
            "{how} with CNN_THREADS={threads} differs from {first_how} with CNN_THREADS=1"
        );
    }
}
