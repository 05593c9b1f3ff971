//! Shared by the tests: plans from `.cnn` text, exported files run in
//! tract, and the oracle's cases walked one by one.
#![allow(dead_code)]

use cnn_plan::Plan;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

/// The folder of one of the oracle's sets (`goldens`, `goldens2`).
pub fn oracle(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/oracle")
        .join(set)
}

/// The case names of a set's `index.json`.
pub fn cases(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("index.json")).expect("index.json");
    let index: serde_json::Value = serde_json::from_str(&text).expect("json");
    index["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_string())
        .collect()
}

/// An `.npz` file's reader, its errors naming the file.
pub fn npz(path: &Path) -> Result<ndarray_npy::NpzReader<std::fs::File>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    ndarray_npy::NpzReader::new(f).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs `check` (`Ok(worst difference)` or what went wrong) on every case
/// of `set` named in `cases` (at least `at_least` of them), prints one line
/// per case, and fails listing every case that does not pass.
pub fn check_every(
    set: &str,
    cases: &[String],
    at_least: usize,
    check: impl Fn(&str) -> Result<f32, String>,
) {
    assert!(
        cases.len() >= at_least,
        "only {} cases in {set}",
        cases.len()
    );
    let mut failed = Vec::new();
    let mut worst = 0f32;
    for case in cases {
        match check(case) {
            Ok(w) => {
                worst = worst.max(w);
                println!("{set}/{case}: ok (worst difference {w:.1e})");
            }
            Err(e) => {
                println!("{set}/{case}: FAILED: {e}");
                failed.push(format!("{case}: {e}"));
            }
        }
    }
    println!(
        "{set}: {} of {} cases pass (worst difference {worst:.1e})",
        cases.len() - failed.len(),
        cases.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} cases of {set} fail:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

/// The plan of the (only) model of `src`, as the compiler lowers it.
pub fn plan_of(src: &str) -> Plan {
    let compiled = cnn_compiler::compile(src, "Case");
    assert!(!compiled.has_errors(), "{:?}", compiled.diagnostics);
    cnn_compiler::lower::plan(&compiled.models[0]).expect("plan")
}

/// The interpreter of an imported model holding its weights (every tensor
/// of the plan named by the import, and no other).
pub fn interpreter(m: &cnn_onnx::Imported) -> cnn_runtime::interp::Sequential {
    use cnn_runtime::Model;
    let plan = plan_of(&m.source);
    let weights: std::collections::HashMap<&str, &[f32]> = m
        .weights
        .iter()
        .map(|w| (w.name.as_str(), &w.data[..]))
        .collect();
    let mut net = cnn_runtime::interp::Sequential::from_plan(plan, 0);
    assert_eq!(net.params_mut().len(), m.weights.len(), "{}", m.source);
    for p in net.params_mut() {
        p.data.copy_from_slice(weights[p.name.as_str()]);
    }
    net
}

/// Runs the ONNX file `bytes` in tract on one input of `shape` (batch first)
/// and returns the output's shape and values (row-major).
pub fn run(bytes: &[u8], shape: &[usize], x: &[f32]) -> TractResult<(Vec<usize>, Vec<f32>)> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_optimized()?
        .into_runnable()?;
    let input = Tensor::from_shape(shape, x)?;
    let out = model.run(tvec!(input.into()))?;
    let y = out[0].to_plain_array_view::<f32>()?;
    Ok((y.shape().to_vec(), y.iter().copied().collect()))
}

/// The oracle's forward tolerance (as the project's parity tests):
/// `|got - want| <= 1e-5 * max(1, |want|)` for every value. Returns the worst
/// `|got - want| / max(1, |want|)`, or where it first fails.
pub fn compare(got: &[f32], want: &[f32]) -> Result<f32, String> {
    if got.len() != want.len() {
        return Err(format!("{} values, want {}", got.len(), want.len()));
    }
    let mut worst = 0f32;
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let err = (a - b).abs() / b.abs().max(1.0);
        // A NaN or an infinity fails too.
        if err.is_nan() || err > 1e-5 {
            return Err(format!("[{i}]: got {a}, want {b} (error {err:e})"));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

/// xorshift64*: the same mutations on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (> 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Checks an import's result: text the compiler accepts, with exactly the
/// tensors (names and shapes) of its plan. Panics otherwise.
pub fn assert_fits(m: &cnn_onnx::Imported) {
    let c = cnn_compiler::compile(&m.source, "Case");
    assert!(
        !c.has_errors(),
        "an import that does not compile:\n{}\n{:?}",
        m.source,
        c.diagnostics
    );
    let plan = cnn_compiler::lower::plan(&c.models[0]).expect("plan");
    let shapes: std::collections::HashMap<&str, &[usize]> = m
        .weights
        .iter()
        .map(|w| (w.name.as_str(), &w.shape[..]))
        .collect();
    assert_eq!(shapes.len(), plan.tensors.len(), "{}", m.source);
    for t in plan.tensors.iter() {
        assert_eq!(
            shapes.get(&*t.name).copied(),
            Some(&t.shape[..]),
            "{}: {}",
            t.name,
            m.source
        );
    }
}

/// The system allocator, recording the largest single request, so that the
/// hostile-file tests can bound what a mutated file makes the import
/// allocate. Every test binary with this module has it (one atomic maximum
/// per allocation); only [`largest_allocation`]'s callers read it.
struct Largest;

static LARGEST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Held while measuring: the record is the binary's, so measurements take
/// turns (tests that do not measure may still allocate beside them; the
/// binaries that measure run nothing else).
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

// SAFETY: every call is forwarded unchanged to the system allocator; only
// the requested size is recorded.
unsafe impl std::alloc::GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded from the caller, who upholds `realloc`'s contract.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Largest = Largest;

/// `f`'s result and the largest single allocation made while it ran.
pub fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let _turn = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    LARGEST.store(0, std::sync::atomic::Ordering::Relaxed);
    let out = f();
    (out, LARGEST.load(std::sync::atomic::Ordering::Relaxed))
}
