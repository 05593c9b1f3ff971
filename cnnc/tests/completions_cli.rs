//! `cnnc completions SHELL` prints a script the shell accepts, completing
//! every subcommand.

mod common;

use common::cnnc_ok;
use std::process::Command;

#[test]
fn bash_completions_load_and_know_the_subcommands() {
    let out = cnnc_ok(&["completions", "bash"]);
    let script = String::from_utf8(out.stdout).unwrap();
    for sub in [
        "check", "summary", "build", "train", "eval", "predict", "viz", "diagram",
    ] {
        assert!(script.contains(sub), "{sub} missing");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cnnc.bash");
    std::fs::write(&file, &script).unwrap();
    // Loaded by bash, the script registers its completion function for cnnc.
    let Ok(run) = Command::new("bash")
        .arg("-c")
        .arg(format!("source {:?} && complete -p cnnc", file))
        .output()
    else {
        eprintln!("skipped the loading check: no bash here");
        return;
    };
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(said.contains("_cnnc") && said.contains("cnnc"), "{said}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(!cnnc_ok(&["completions", shell]).stdout.is_empty());
    }
}
