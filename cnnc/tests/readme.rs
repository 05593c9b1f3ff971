//! Runs every command of the README, as a user would, and checks that the
//! outputs the README shows are what `cnnc` really prints.
//!
//! - In ```` ```sh ```` blocks every line is a command that must succeed.
//! - In ```` ```console ```` blocks, `$ ` lines are commands and the lines after
//!   them are their exact output (stdout, then stderr); the exit code is not checked
//!   there, since those blocks show errors too.
//!
//! Commands run in a scratch folder laid out like the repository (its `examples/`
//! and `grammar/` linked, `docs/` fresh, `../shared` linked), so the README's
//! relative paths work and nothing in the checkout is overwritten.
//! `cargo run [--release] -p cnnc --` and `cnnc` run the `cnnc` built for this test;
//! `cargo run --release --example NAME` runs the example binary cargo built beside
//! it; `cargo test --workspace` is the command running this very test, so it is
//! skipped. Anything else fails the test, so a new kind of command cannot slip in
//! untested.
//! - ```` ```bash ```` blocks hold commands of other tools (Python with Keras),
//!   which CI does not have; they are not run here. What they do is tested
//!   where that tool can be found (`export_keras.rs` runs the exported program
//!   in Keras, and skips, saying so, without it).

mod common;

use common::repo as repo_root;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One command of the README and, for console blocks, the output it must print.
struct Step {
    line: usize,
    command: String,
    expected: Option<String>,
}

fn parse_readme(text: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut block: Option<String> = None;
    let mut current: Option<Step> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        if let Some(lang) = raw.strip_prefix("```") {
            if block.is_none() {
                block = Some(lang.trim().to_string());
            } else {
                if let Some(s) = current.take() {
                    steps.push(s);
                }
                block = None;
            }
            continue;
        }
        match block.as_deref() {
            Some("sh") => {
                let cmd = raw.trim();
                if !cmd.is_empty() && !cmd.starts_with('#') {
                    steps.push(Step {
                        line: line_no,
                        command: cmd.to_string(),
                        expected: None,
                    });
                }
            }
            Some("console") => {
                if let Some(cmd) = raw.strip_prefix("$ ") {
                    if let Some(s) = current.take() {
                        steps.push(s);
                    }
                    current = Some(Step {
                        line: line_no,
                        command: cmd.trim().to_string(),
                        expected: Some(String::new()),
                    });
                } else if let Some(s) = current.as_mut() {
                    let out = s.expected.as_mut().unwrap();
                    out.push_str(raw);
                    out.push('\n');
                }
            }
            _ => {}
        }
    }
    steps
}

/// Where cargo put this test's binaries: `target/<profile>/`.
fn profile_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_cnnc"))
        .parent()
        .unwrap()
        .to_path_buf()
}

enum Program {
    Run(PathBuf, Vec<String>),
    Skip(&'static str),
}

fn translate(command: &str) -> Result<Program, String> {
    let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    let cnnc = PathBuf::from(env!("CARGO_BIN_EXE_cnnc"));
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    if w.first() == Some(&"cnnc") {
        return Ok(Program::Run(cnnc, words[1..].to_vec()));
    }
    if w.starts_with(&["cargo", "test", "--workspace"]) {
        return Ok(Program::Skip("this is the command running this test"));
    }
    if w.starts_with(&["cargo", "install", "--path", "cnnc"]) {
        return Ok(Program::Skip("installs the binary this test already runs"));
    }
    if w.first() == Some(&"cargo") && w.get(1) == Some(&"run") {
        let sep = w.iter().position(|&x| x == "--").unwrap_or(w.len());
        let flags = &w[2..sep];
        let args = words
            .get(sep + 1..)
            .map(<[String]>::to_vec)
            .unwrap_or_default();
        if flags.windows(2).any(|p| p == ["-p", "cnnc"]) {
            return Ok(Program::Run(cnnc, args));
        }
        if let Some(i) = flags.iter().position(|&x| x == "--example") {
            let name = flags.get(i + 1).ok_or("--example without a name")?;
            let exe = profile_dir().join("examples").join(name);
            if !exe.exists() {
                return Err(format!(
                    "example binary {} not built (cargo test builds examples)",
                    exe.display()
                ));
            }
            return Ok(Program::Run(exe, args));
        }
    }
    Err(format!(
        "the README test does not know how to run `{command}`"
    ))
}

fn link(from: &Path, to: &Path) {
    #[cfg(unix)]
    std::os::unix::fs::symlink(from, to).unwrap();
    #[cfg(not(unix))]
    panic!(
        "the README test needs symlinks ({} -> {})",
        to.display(),
        from.display()
    );
}

#[test]
fn every_readme_command_runs_and_shows_real_output() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("README.md")).unwrap();
    let steps = parse_readme(&text);
    assert!(
        steps.len() >= 10,
        "found only {} README commands",
        steps.len()
    );

    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path().join("repo");
    std::fs::create_dir_all(work.join("docs")).unwrap();
    for name in ["examples", "grammar", "cnn-onnx"] {
        link(&root.join(name), &work.join(name));
    }
    link(&root.join("../shared"), &scratch.path().join("shared"));

    let mut failures = Vec::new();
    for step in &steps {
        let program = match translate(&step.command) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("README.md:{}: {e}", step.line));
                continue;
            }
        };
        let (exe, args) = match program {
            Program::Skip(why) => {
                eprintln!(
                    "README.md:{}: skipped `{}` ({why})",
                    step.line, step.command
                );
                continue;
            }
            Program::Run(exe, args) => (exe, args),
        };
        let start = Instant::now();
        let out = Command::new(&exe)
            .args(&args)
            .current_dir(&work)
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        let secs = start.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("README.md:{}: {:.1} s  `{}`", step.line, secs, step.command);
        // The last line says how it went (e.g. `test accuracy: P%`): shown with
        // `--nocapture`, for the record.
        if let Some(last) = stdout.lines().rev().find(|l| !l.trim().is_empty()) {
            eprintln!("    -> {last}");
        }
        match &step.expected {
            None if !out.status.success() => failures.push(format!(
                "README.md:{}: `{}` failed ({}):\n{stdout}\n{stderr}",
                step.line, step.command, out.status
            )),
            None => {}
            Some(expected) => {
                let got = format!("{stdout}{stderr}");
                if got.trim_end() != expected.trim_end() {
                    failures.push(format!(
                        "README.md:{}: `{}` printed something else than the README shows.\n\
                         --- README\n{expected}\n--- real\n{got}",
                        step.line, step.command
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_parser_sees_commands_and_outputs() {
    let steps = parse_readme(
        "x\n```sh\ncnnc a\n\n# c\ncnnc b\n```\n```console\n$ cnnc c\nout 1\nout 2\n$ cnnc d\n```\n",
    );
    let cmds: Vec<_> = steps.iter().map(|s| s.command.as_str()).collect();
    assert_eq!(cmds, ["cnnc a", "cnnc b", "cnnc c", "cnnc d"]);
    assert_eq!(steps[2].expected.as_deref(), Some("out 1\nout 2\n"));
    assert_eq!(steps[3].expected.as_deref(), Some(""));
    assert!(matches!(
        translate("cargo test --workspace"),
        Ok(Program::Skip(_))
    ));
    assert!(translate("rm -rf /").is_err());
}
