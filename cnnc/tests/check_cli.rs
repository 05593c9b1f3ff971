//! `cnnc check`, `cnnc summary` and `cnnc explain`, run as the built binary.

mod common;

use common::{goldens, repo};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// Runs `cnnc` in `dir`, without colours.
fn cnnc(dir: &Path, args: &[&str]) -> Output {
    common::command()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("run cnnc")
}

/// [`cnnc`], asserting the exit code (and showing stderr when it differs).
fn cnnc_exits(code: i32, dir: &Path, args: &[&str]) -> Output {
    let o = cnnc(dir, args);
    assert_eq!(o.status.code(), Some(code), "cnnc {args:?}: {}", stderr(&o));
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A temp dir holding `files`, so that paths in the output are short and stable.
fn tmp_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const LENET_28: &str = "// LeNet-5 without `same` on 28x28: fails\ninput 28x28x1;\nconv 6 5x5 tanh;\navgpool 2;\nconv 16 5x5 tanh;\navgpool 2;\nconv 120 5x5 tanh;\nmaxpooling 2;\nflatten;\ndense 84 tanh softmax;\ndense 10 softmax;\n";

#[test]
fn check_prints_every_error_rustc_style_and_exits_1() {
    let dir = tmp_with(&[("lenet28.cnn", LENET_28)]);
    let o = cnnc_exits(1, dir.path(), &["check", "--color", "never", "lenet28.cnn"]);
    assert!(stdout(&o).is_empty());
    insta::assert_snapshot!(stderr(&o));
}

#[test]
fn check_accepts_the_example_models() {
    let models = repo().join("examples/models");
    let mut args = vec!["check".to_string()];
    for e in std::fs::read_dir(&models).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "cnn") {
            args.push(p.display().to_string());
        }
    }
    assert!(args.len() >= 5);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = cnnc_exits(0, &repo(), &args);
    assert!(stderr(&o).contains("Lenet5"));
}

/// A file with old Mac line endings (a lone CR) reports each error on its own
/// line and column and prints that line, not the whole file as line 1; the
/// JSON form says the same lines.
#[test]
fn check_a_cr_only_file() {
    let file = "grammar/invalid/cr_line_endings_errors.cnn";
    let text = std::fs::read(repo().join(file)).unwrap();
    assert!(
        text.contains(&b'\r') && !text.contains(&b'\n'),
        "{file} is CR-only"
    );
    let o = cnnc_exits(1, &repo(), &["check", file]);
    insta::assert_snapshot!(stderr(&o));
    let o = cnnc_exits(1, &repo(), &["check", "--format", "json", file]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let at: Vec<(u64, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["column"].as_u64().unwrap()))
        .collect();
    assert_eq!(at, [(5, 8), (6, 1), (8, 1)]);
}

#[test]
fn check_with_warnings_only_exits_0() {
    let dir = tmp_with(&[("w.cnn", "input 8x8x2;\nmaxpool 2 stride 3;\n")]);
    let o = cnnc_exits(0, dir.path(), &["check", "w.cnn"]);
    insta::assert_snapshot!(stderr(&o));
}

#[test]
fn check_several_files_and_a_missing_one() {
    let dir = tmp_with(&[
        ("ok.cnn", "input 4x4x1; flatten"),
        ("bad.cnn", "input 4x4x1; dense 2"),
    ]);
    let o = cnnc_exits(
        1,
        dir.path(),
        &["check", "ok.cnn", "bad.cnn", "missing.cnn"],
    );
    let e = stderr(&o);
    assert!(e.contains("ok: `ok.cnn`: Ok"), "{e}");
    assert!(e.contains("error[E006]"), "{e}");
    assert!(e.contains("error: cannot read missing.cnn"), "{e}");
    cnnc_exits(0, dir.path(), &["check", "ok.cnn"]);
}

#[test]
fn check_json_lists_diagnostics_on_stdout() {
    let dir = tmp_with(&[("lenet28.cnn", LENET_28)]);
    let o = cnnc_exits(1, dir.path(), &["check", "--format", "json", "lenet28.cnn"]);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("json on stdout");
    let got: Vec<(String, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("E003".to_string(), 7),
            ("E001".to_string(), 8),
            ("E007".to_string(), 10)
        ]
    );
    assert_eq!(v[0]["file"], "lenet28.cnn");
    assert_eq!(v[0]["column"], 10);
    assert!(v[0]["help"]
        .as_str()
        .unwrap()
        .contains("after avgpool 2 on line 6"));
}

#[test]
fn summary_text_of_seed() {
    let o = cnnc_exits(0, &repo(), &["summary", "examples/models/seed.cnn"]);
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn summary_json_matches_keras_for_every_golden_case() {
    let mut n = 0;
    for e in std::fs::read_dir(goldens()).expect("../shared/oracle/goldens") {
        let dir = e.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let keras: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        let o = cnnc(&dir, &["summary", "--format", "json", "model.cnn"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            dir.display(),
            stderr(&o)
        );
        let ours: Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(ours["model"], "Model");
        assert_eq!(ours["input"], keras["input_shape"]);
        let (a, b) = (
            ours["layers"].as_array().unwrap(),
            keras["layers"].as_array().unwrap(),
        );
        assert_eq!(a.len(), b.len(), "{}", dir.display());
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x["index"], y["index"]);
            assert_eq!(x["op"], y["kind"]);
            assert_eq!(x["output"], y["output_shape"], "{}", dir.display());
            assert_eq!(x["params"], y["params"], "{}", dir.display());
            assert!(x["flops"].is_u64());
        }
        assert_eq!(ours["total_params"], keras["total_params"]);
        n += 1;
    }
    assert_eq!(n, 42);
}

#[test]
fn summary_json_has_the_documented_key_order() {
    let dir = tmp_with(&[(
        "c.cnn",
        "input 32x32x3; conv 32 3x3 same; conv 32 3x3 valid",
    )]);
    let o = cnnc(dir.path(), &["summary", "--format", "json", "c.cnn"]);
    assert_eq!(
        stdout(&o).trim(),
        r#"{"model":"C","input":[32,32,3],"layers":[{"index":0,"path":"0","depth":0,"op":"conv","output":[32,32,32],"params":896,"trainable_params":896,"non_trainable_params":0,"flops":1769472},{"index":1,"path":"1","depth":0,"op":"conv","output":[30,30,32],"params":9248,"trainable_params":9248,"non_trainable_params":0,"flops":16588800}],"total_params":10144,"trainable_params":10144,"non_trainable_params":0}"#
    );
}

#[test]
fn check_rejects_exactly_the_shape_cases_keras_rejects() {
    let text = std::fs::read_to_string(goldens().join("shape_cases.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, case) in v["cases"].as_array().unwrap().iter().enumerate() {
        let lines: Vec<String> = serde_json::from_value(case["dsl"].clone()).unwrap();
        let name = format!("case{i}.cnn");
        std::fs::write(dir.path().join(&name), lines.join("\n")).unwrap();
        let o = cnnc(dir.path(), &["check", &name]);
        if case["keras_ok"].as_bool().unwrap() {
            assert_eq!(o.status.code(), Some(0), "{lines:?}: {}", stderr(&o));
            let o = cnnc(dir.path(), &["summary", "--format", "json", &name]);
            let ours: Value = serde_json::from_str(&stdout(&o)).unwrap();
            let outs: Vec<&Value> = ours["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| &l["output"])
                .collect();
            let want: Vec<&Value> = case["output_shapes"].as_array().unwrap().iter().collect();
            assert_eq!(outs, want, "{lines:?}");
            assert_eq!(ours["total_params"], case["total_params"]);
        } else {
            assert_eq!(o.status.code(), Some(1), "Keras rejects {lines:?}");
            assert!(stderr(&o).contains("error[E003]"), "{}", stderr(&o));
        }
    }
}

#[test]
fn summary_picks_a_model() {
    let src = "model A { input 4x4x1; flatten }\nmodel B { input 2x2x1; flatten; dense 3 }\n";
    let dir = tmp_with(&[("two.cnn", src)]);
    let o = cnnc_exits(
        0,
        dir.path(),
        &["summary", "--format", "json", "--model", "B", "two.cnn"],
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["model"], "B");
    assert_eq!(v["total_params"], 15);
    let o = cnnc_exits(1, dir.path(), &["summary", "--format", "json", "two.cnn"]);
    assert!(stderr(&o).contains("--model"), "{}", stderr(&o));
    let o = cnnc_exits(1, dir.path(), &["summary", "--model", "C", "two.cnn"]);
    assert!(stderr(&o).contains("A, B"));
    // text form prints every model
    let o = cnnc(dir.path(), &["summary", "two.cnn"]);
    assert!(stdout(&o).contains("Model: \"A\"") && stdout(&o).contains("Model: \"B\""));
}

#[test]
fn summary_of_a_broken_file_shows_the_errors() {
    let dir = tmp_with(&[("lenet28.cnn", LENET_28)]);
    let o = cnnc_exits(1, dir.path(), &["summary", "lenet28.cnn"]);
    assert!(stdout(&o).is_empty());
    assert!(stderr(&o).contains("error[E003]"));
}

#[test]
fn explain_a_code() {
    let o = cnnc_exits(0, &repo(), &["explain", "E003"]);
    insta::assert_snapshot!(stdout(&o));
    let o = cnnc(&repo(), &["explain", "w002"]);
    assert!(stdout(&o).starts_with("W002"));
    let o = cnnc(&repo(), &["explain", "window too big"]);
    assert!(stdout(&o).starts_with("E003"));
}

#[test]
fn explain_an_unknown_code_lists_the_codes() {
    let o = cnnc_exits(1, &repo(), &["explain", "E999"]);
    insta::assert_snapshot!(stderr(&o));
}
