//! Hostile Keras files: the fixtures of `tests/keras/` truncated and with
//! bits flipped, at least 10,000 mutations of the `.h5` files and 10,000 of
//! the `.keras` files (the zip itself, the HDF5 weights inside it, and the
//! config's values replaced by hostile ones), each imported. None may panic
//! (errors are the expected outcome); a mutation that still imports must
//! give text the compiler accepts with the tensors the import gives; and no
//! single allocation may exceed 32 times the file's size plus 32 MiB.

mod support;

use std::io::{Cursor, Read, Write};
use std::path::Path;

use serde_json::Value;
use support::Rng;

/// The constant part of the allocation bound: hdf5-reader reserves room
/// for a version-1 object header's message count (a 16-bit field) before
/// parsing them, up to 65,535 messages of about 360 bytes (24 MB, whatever
/// the file's size).
const BOUND_EXTRA: usize = 32 << 20;

const FIXTURES: [&str; 3] = ["lenet5", "resnet_bn", "mixed"];

fn fixture(name: &str, file: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/keras")
            .join(name)
            .join(file),
    )
    .unwrap()
}

/// Tallies of a run of mutations.
#[derive(Default)]
struct Tally {
    tried: usize,
    imported: usize,
}

impl Tally {
    /// Imports `bytes`: no panic, a fitting model if it imports, and no
    /// allocation beyond the bound for a file of this size.
    fn try_import(&mut self, bytes: &[u8]) {
        let (result, largest) = support::largest_allocation(|| cnn_onnx::import_keras(bytes, None));
        let bound = 32 * bytes.len() + BOUND_EXTRA;
        if largest > bound {
            if let Some(p) = std::env::var_os("CNN_DUMP_MUTATION") {
                std::fs::write(p, bytes).unwrap();
            }
        }
        assert!(
            largest <= bound,
            "an allocation of {largest} bytes for a file of {} ({:?})",
            bytes.len(),
            result.as_ref().err()
        );
        self.tried += 1;
        if let Ok(m) = result {
            support::assert_fits(&m);
            self.imported += 1;
        }
    }

    /// Truncations at `cuts` points and single and burst bit flips of `b`,
    /// half of them in its first 4 KiB (where HDF5 keeps its superblock and
    /// root group), each passed through `wrap` before importing.
    fn mutate(
        &mut self,
        rng: &mut Rng,
        b: &[u8],
        cuts: usize,
        flips: usize,
        wrap: &dyn Fn(&[u8]) -> Vec<u8>,
    ) {
        let n = b.len();
        for k in 0..cuts {
            self.try_import(&wrap(&b[..k * n / cuts]));
        }
        for round in 0..flips {
            let mut m = b.to_vec();
            let count = if round % 3 == 0 { 2 + rng.below(7) } else { 1 };
            for _ in 0..count {
                let at = if rng.below(2) == 0 {
                    rng.below(n.min(4096))
                } else {
                    rng.below(n)
                };
                m[at] ^= 1 << rng.below(8);
            }
            self.try_import(&wrap(&m));
        }
    }
}

/// A `.keras` zip (stored) of `config` and `weights`.
fn zip_of(config: &[u8], weights: &[u8]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in [("config.json", config), ("model.weights.h5", weights)] {
        out.start_file(name, options).unwrap();
        out.write_all(data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// Member `name` of a `.keras` file.
fn member(keras: &[u8], name: &str) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(Cursor::new(keras)).unwrap();
    let mut out = Vec::new();
    zip.by_name(name).unwrap().read_to_end(&mut out).unwrap();
    out
}

#[test]
fn mutated_h5_files_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut t = Tally::default();
    let start = std::time::Instant::now();
    for name in FIXTURES {
        let b = fixture(name, "model.h5");
        assert!(cnn_onnx::import_keras(&b, None).is_ok(), "{name}/model.h5");
        t.mutate(&mut rng, &b, 500, 2900, &|m| m.to_vec());
    }
    println!(
        "{} mutations of .h5 files: {} still import ({:.1} s)",
        t.tried,
        t.imported,
        start.elapsed().as_secs_f64()
    );
    assert!(t.tried >= 10_000, "{}", t.tried);
}

#[test]
fn mutated_keras_files_never_panic() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut t = Tally::default();
    let start = std::time::Instant::now();
    for name in FIXTURES {
        let b = fixture(name, "model.keras");
        assert!(
            cnn_onnx::import_keras(&b, None).is_ok(),
            "{name}/model.keras"
        );
        let (config, weights) = (member(&b, "config.json"), member(&b, "model.weights.h5"));
        // The zip's own bytes (its CRCs refuse most flips of the members).
        t.mutate(&mut rng, &b, 300, 700, &|m| m.to_vec());
        // The weights inside a well-formed zip.
        t.mutate(&mut rng, &weights, 300, 1200, &|m| zip_of(&config, m));
        // The config's values replaced by hostile ones.
        let json: Value = serde_json::from_slice(&config).unwrap();
        let mut leaves = Vec::new();
        paths(&json, &mut Vec::new(), &mut leaves);
        for _ in 0..1000 {
            let mut j = json.clone();
            for _ in 0..1 + rng.below(2) {
                let path = &leaves[rng.below(leaves.len())];
                *at(&mut j, path) = hostile(&mut rng);
            }
            t.try_import(&zip_of(&serde_json::to_vec(&j).unwrap(), &weights));
        }
    }
    println!(
        "{} mutations of .keras files: {} still import ({:.1} s)",
        t.tried,
        t.imported,
        start.elapsed().as_secs_f64()
    );
    assert!(t.tried >= 10_000, "{}", t.tried);
}

/// A value a config should never hold.
fn hostile(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => Value::from(0),
        2 => Value::from(-1),
        3 => Value::from(1u64 << 40),
        4 => Value::from(u64::MAX),
        5 => Value::from(1e300),
        6 => Value::from(""),
        7 => Value::from("same"),
        8 => Value::Array(vec![]),
        9 => serde_json::json!([3, 0]),
        10 => serde_json::json!({"a": [1, 2]}),
        _ => Value::from(rng.below(70_000)),
    }
}

/// Every leaf's path (object keys and list indices).
fn paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                here.push(Step::Key(k.clone()));
                paths(x, here, out);
                here.pop();
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                here.push(Step::Index(i));
                paths(x, here, out);
                here.pop();
            }
        }
        _ => out.push(here.clone()),
    }
}

#[derive(Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn at<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path.iter().fold(v, |v, s| match s {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}
