//! What cnnc's integration tests share: the `cnnc` built for them, and where the
//! repository and the shared oracle files are.

// Each test binary uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the workspace, above `cnnc/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The Keras oracle's cases, beside the repository.
pub fn goldens() -> PathBuf {
    repo().join("../shared/oracle/goldens")
}

/// The oracle files of one case.
pub fn golden(case: &str) -> PathBuf {
    goldens().join(case)
}

/// The `cnnc` built for these tests, not started yet.
pub fn command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cnnc"))
}

/// Runs `cnnc` with `args`.
pub fn cnnc(args: &[&str]) -> Output {
    command().args(args).output().expect("run cnnc")
}

/// Runs `cnnc` and asserts that it succeeded, showing its output if not.
pub fn cnnc_ok(args: &[&str]) -> Output {
    let out = cnnc(args);
    assert!(
        out.status.success(),
        "cnnc {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
