//! A crate that depends on `cnn` and is built as `cargo run` builds it
//! (opt-level 0, nothing in its Cargo.toml about profiles) is told, once, that
//! its runtime is unoptimised and how to fix it: the README's macro section
//! shows the same lines.

use std::path::Path;
use std::process::Command;

#[test]
fn an_unoptimised_runtime_says_so_once() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path();
    std::fs::create_dir(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"debug-warn-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n\
             [dependencies]\ncnn = {{ path = {:?} }}\n\n[workspace]\n",
            repo.display().to_string()
        ),
    )
    .unwrap();
    // The workspace's versions of every dependency, so that nothing is fetched.
    std::fs::copy(repo.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    std::fs::write(
        krate.join("src/main.rs"),
        "fn main() {\n    let _a = cnn::cnn!(input 4x4x1; flatten; dense 2 softmax);\n    \
         let _b = cnn::cnn!(input 4x4x1; flatten; dense 3 softmax);\n    println!(\"made two models\");\n}\n",
    )
    .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["run", "--offline", "--quiet"])
        .current_dir(krate)
        // Kept between runs (and apart from the workspace's own target dir,
        // which the running `cargo test` holds).
        .env("CARGO_TARGET_DIR", repo.join("target/debug-warn-probe"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_PROFILE_DEV_OPT_LEVEL")
        // What is checked is the opt-level; debug info would only fill the
        // disk (a full debug build of every dependency).
        .env("CARGO_PROFILE_DEV_DEBUG", "false")
        .output()
        .expect("run cargo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("made two models"), "{stdout}");
    let warning = cnn::runtime::profile::UNOPTIMIZED_WARNING;
    assert_eq!(stderr.matches(warning).count(), 1, "once, whole:\n{stderr}");
    assert!(warning.contains("[profile.dev.package.\"*\"]") && warning.contains("opt-level = 3"));
}
