//! Hostile input: an exported model's bytes truncated at every length and
//! with bits flipped (single and in bursts), 12,000 deterministic mutations,
//! and 3,000 more of two PyTorch files (`tests/torch/`), each imported. None
//! may panic (errors are the expected outcome); a mutation that still
//! imports must give text the compiler accepts with the tensors the import
//! gives; and no single allocation may exceed 32 times the file's size plus
//! 1 MiB.

mod support;

use std::collections::HashMap;

/// A small model touching most of the importer: convs with padding, a
/// residual with batchnorm, a concat, pools, gelu, a flatten and a dense.
const SRC: &str = "input 6x6x3;
conv 4 3x3 same relu;
residual { conv 4 3x3 same nobias; batchnorm } shortcut { conv 4 1x1 }
concat { } { maxpool 3 stride 1 same; conv 2 1x1 gelu }
minpool 2;
flatten;
dense 3 softmax;
";

use support::Rng;

/// Imports `bytes`: `true` when it imports; panics (failing the test) when
/// an imported model does not compile or its tensors do not match, or when
/// one allocation exceeds 32 times the file's size plus 1 MiB.
fn try_import(bytes: &[u8]) -> bool {
    let (result, largest) = support::largest_allocation(|| cnn_onnx::import(bytes, None));
    let bound = 32 * bytes.len() + (1 << 20);
    assert!(
        largest <= bound,
        "an allocation of {largest} bytes for a file of {} ({:?})",
        bytes.len(),
        result.as_ref().err()
    );
    let Ok(m) = result else {
        return false;
    };
    support::assert_fits(&m);
    true
}

#[test]
fn truncated_and_bit_flipped_files_never_panic() {
    let plan = support::plan_of(SRC);
    let weights: HashMap<String, Vec<f32>> = plan
        .tensors
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let n: usize = t.shape.iter().product();
            (
                t.name.to_string(),
                (0..n)
                    .map(|i| ((i * 7 + k) % 13) as f32 / 13.0 + 0.1)
                    .collect(),
            )
        })
        .collect();
    let mut bytes = Vec::new();
    for layout in [cnn_onnx::Layout::Nhwc, cnn_onnx::Layout::Nchw] {
        let options = cnn_onnx::Options {
            layout,
            ..Default::default()
        };
        let b = cnn_onnx::export(&plan, |n| weights.get(n).cloned(), &options).unwrap();
        assert!(try_import(&b), "the unmutated file imports");
        bytes.push(b);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut tried, mut imported) = (0, 0);
    let start = std::time::Instant::now();
    for b in &bytes {
        // Every truncation length up to 2,000, then spread over the rest.
        let n = b.len();
        let cuts: Vec<usize> = (0..n.min(2000))
            .chain((0..1000).map(|k| 2000 + k * n.saturating_sub(2000) / 1000))
            .filter(|&c| c < n)
            .collect();
        for c in cuts {
            tried += 1;
            imported += usize::from(try_import(&b[..c]));
        }
        // Single bit flips, then bursts of 2 to 8 flips.
        for round in 0..3000 {
            let mut m = b.clone();
            let flips = if round < 2000 { 1 } else { 2 + rng.below(7) };
            for _ in 0..flips {
                let at = rng.below(n);
                m[at] ^= 1 << rng.below(8);
            }
            tried += 1;
            imported += usize::from(try_import(&m));
        }
    }
    println!(
        "{tried} mutations of {} and {} bytes: {imported} still import, {} are refused ({:.1} s)",
        bytes[0].len(),
        bytes[1].len(),
        tried - imported,
        start.elapsed().as_secs_f64()
    );
    assert!(tried >= 10_000, "{tried} mutations");
}

#[test]
fn mutated_pytorch_files_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torch");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut tried, mut imported) = (0, 0);
    for name in ["tiny_resnet", "mixed"] {
        let b = std::fs::read(dir.join(name).join("model.onnx")).unwrap();
        assert!(try_import(&b), "{name} imports");
        let n = b.len();
        for k in 0..500 {
            tried += 1;
            imported += usize::from(try_import(&b[..k * n / 500]));
        }
        for _ in 0..1000 {
            let mut m = b.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(n);
                m[at] ^= 1 << rng.below(8);
            }
            tried += 1;
            imported += usize::from(try_import(&m));
        }
    }
    println!("{tried} mutations of PyTorch files: {imported} still import");
    assert_eq!(tried, 3000);
}
