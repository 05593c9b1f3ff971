//! The conformance corpus: every file of `grammar/valid/` compiles without errors
//! (and gives exactly the warnings its first line declares); every file of
//! `grammar/invalid/` gives exactly the errors (code and line) its first line
//! declares, e.g. `// error E003 line 7, E001 line 8`.

use cnn_compiler::{compile, lines::lines, model_name_from_stem, render::line_col, Severity};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn corpus(dir: &str) -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../grammar")
        .join(dir);
    let mut files: Vec<(String, String)> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cnn"))
        .map(|p| {
            let stem = Path::new(&p)
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .to_string();
            (stem, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Parses `// error E003 line 7, E001 line 8` (or `// warning W001 line 4`).
fn expectations(first_line: &str, word: &str) -> BTreeSet<(String, usize)> {
    let Some(rest) = first_line.strip_prefix(&format!("// {word} ")) else {
        return BTreeSet::new();
    };
    rest.split(',')
        .map(|item| {
            let parts: Vec<&str> = item.split_whitespace().collect();
            assert!(
                parts.len() == 3 && parts[1] == "line",
                "bad expectation `{item}` in `{first_line}`"
            );
            (parts[0].to_string(), parts[2].parse().expect("line number"))
        })
        .collect()
}

fn found(src: &str, stem: &str, severity: Severity) -> BTreeSet<(String, usize)> {
    compile(src, &model_name_from_stem(stem))
        .diagnostics
        .iter()
        .filter(|d| d.severity == severity)
        .map(|d| (d.code.as_str().to_string(), line_col(src, d.span.start).0))
        .collect()
}

#[test]
fn valid_corpus_compiles() {
    let files = corpus("valid");
    assert!(files.len() >= 25, "only {} valid files", files.len());
    for (stem, src) in &files {
        let c = compile(src, &model_name_from_stem(stem));
        assert!(
            !c.has_errors(),
            "{stem}.cnn should compile:\n{}",
            cnn_compiler::render(stem, src, &c.diagnostics, false)
        );
        assert!(!c.models.is_empty(), "{stem}");
        let first = lines(src).next().unwrap_or("");
        let want = expectations(first, "warning");
        assert_eq!(
            found(src, stem, Severity::Warning),
            want,
            "{stem}.cnn warnings"
        );
    }
}

#[test]
fn invalid_corpus_gives_the_declared_errors() {
    let files = corpus("invalid");
    assert!(files.len() >= 40, "only {} invalid files", files.len());
    let mut codes = BTreeSet::new();
    for (stem, src) in &files {
        let first = lines(src).next().unwrap_or("");
        let want = expectations(first, "error");
        assert!(
            !want.is_empty(),
            "{stem}.cnn: first line must declare `// error CODE line N`"
        );
        let c = compile(src, &model_name_from_stem(stem));
        assert!(c.models.is_empty() || c.has_errors(), "{stem}");
        let got = found(src, stem, Severity::Error);
        assert_eq!(
            got,
            want,
            "{stem}.cnn:\n{}",
            cnn_compiler::render(stem, src, &c.diagnostics, false)
        );
        for d in &c.diagnostics {
            assert!(d.help.is_some(), "{stem}: {} has no help line", d.message);
        }
        codes.extend(want.into_iter().map(|(c, _)| c));
    }
    // Every error code is exercised by the corpus.
    for code in cnn_compiler::Code::ALL {
        if code.severity() == Severity::Error {
            assert!(
                codes.contains(code.as_str()),
                "no invalid file for {}",
                code.as_str()
            );
        }
    }
}

/// Line, column and the source line shown of every diagnostic.
fn positions(src: &str, stem: &str) -> (String, Vec<[usize; 4]>) {
    let c = compile(src, &model_name_from_stem(stem));
    let json = cnn_compiler::to_json(stem, src, &c.diagnostics);
    let at = json
        .iter()
        .map(|d| [d.line, d.column, d.end_line, d.end_column])
        .collect();
    (cnn_compiler::render(stem, src, &c.diagnostics, false), at)
}

/// Line endings and a byte-order mark move no diagnostic: every corpus file,
/// rewritten with CR, with CRLF, and with a byte-order mark in front, gives
/// the same lines and columns and prints the same source lines as with LF.
#[test]
fn line_endings_and_a_bom_move_no_diagnostic() {
    for dir in ["valid", "invalid"] {
        for (stem, src) in corpus(dir) {
            let lf = src
                .trim_start_matches('\u{feff}')
                .replace("\r\n", "\n")
                .replace('\r', "\n");
            let want = positions(&lf, &stem);
            let variants = [
                lf.replace('\n', "\r"),
                lf.replace('\n', "\r\n"),
                format!("\u{feff}{lf}"),
                format!("\u{feff}{}", lf.replace('\n', "\r")),
            ];
            for v in variants {
                assert_eq!(positions(&v, &stem), want, "{dir}/{stem}.cnn as {v:?}");
            }
        }
    }
}
