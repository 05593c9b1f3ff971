//! Robustness: at least 100,000 generated inputs go through parse and check
//! without a panic, each either accepted (with models whose IR is consistent) or
//! given a diagnostic with a valid span. Inputs: random bytes, random token
//! sequences from the language's vocabulary, and mutations of the conformance
//! corpus (deleted, duplicated, swapped and replaced tokens, huge numbers).

use cnn_compiler::{check, compile, ir, Severity};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::PathBuf;

const VOCAB: &[&str] = &[
    "input",
    "conv",
    "maxpool",
    "avgpool",
    "minpool",
    "flatten",
    "dense",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "linear",
    "same",
    "valid",
    "stride",
    "dilation",
    "model",
    "pub",
    "Net",
    "dropout",
    "maxpooling",
    "{",
    "}",
    ";",
    ";",
    ";",
    "0",
    "1",
    "2",
    "3",
    "5",
    "32",
    "3x3",
    "5x5",
    "2x1",
    "28x28x1",
    "150x150x3",
    "1x1x1",
    "0x3",
    "3x3x3",
    "99999999999",
    "99999999999x99999999999",
    "18446744073709551616",
    "1048577",
    "65536x65536x3",
    "0.5",
    "-1",
    "5x",
    ",",
    "//",
    "/*",
    "*/",
    "\n",
    "é",
    "\u{0}",
    "x",
    "_",
];

fn corpus() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../grammar");
    let mut out = Vec::new();
    for dir in ["valid", "invalid"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            out.push(std::fs::read_to_string(e.unwrap().path()).unwrap());
        }
    }
    out.sort();
    out
}

/// Checks one input: no panic, and the result is coherent. Returns whether it
/// was accepted.
fn exercise(src: &str, render: bool) -> bool {
    let c = compile(src, "Fuzz");
    for d in &c.diagnostics {
        assert!(
            d.span.start <= d.span.end && d.span.end <= src.len(),
            "{src:?}: {d:?}"
        );
        assert!(src.is_char_boundary(d.span.start) && src.is_char_boundary(d.span.end));
        assert!(!d.message.is_empty());
        // Messages are in the user's words, never the grammar's rule names
        // (the user's own text is quoted in backticks: leave it out).
        let own: String = d.message.split('`').step_by(2).collect();
        for rule in [
            "EOI",
            "lbrace",
            "rbrace",
            "layer_name",
            "model_kw",
            "pub_kw",
            "stmt",
        ] {
            assert!(!own.contains(rule), "{src:?}: {}", d.message);
        }
        assert!(d.help.is_some(), "{src:?}: {} has no help", d.message);
    }
    if !c.has_errors() {
        assert!(!c.models.is_empty(), "accepted without a model: {src:?}");
    }
    for m in &c.models {
        assert_ir_consistent(m);
    }
    if render {
        let text = cnn_compiler::render("fuzz.cnn", src, &c.diagnostics, false);
        assert_eq!(
            text.matches("error[").count() + text.matches("warning[").count(),
            c.diagnostics.len()
        );
    }
    !c.has_errors()
}

fn assert_ir_consistent(m: &ir::Model) {
    let mut shape = m.input;
    let mut total = 0u64;
    for (i, l) in m.layers.iter().enumerate() {
        assert_eq!(l.index, i);
        assert_eq!(l.input, shape);
        assert!(l.output.len() as u64 <= check::MAX_ELEMENTS && !l.output.is_empty());
        let counted = l.params.as_ref().map_or(0, |p| {
            (p.kernel.iter().product::<usize>() + p.bias.iter().product::<usize>()) as u64
        });
        assert_eq!(counted, l.param_count);
        total += l.param_count;
        shape = l.output;
    }
    assert_eq!(total, m.total_params);
    assert!(m.total_params <= check::MAX_PARAMS);
}

fn random_bytes(rng: &mut StdRng) -> String {
    let n = rng.gen_range(0..120);
    let bytes: Vec<u8> = (0..n)
        .map(|_| {
            if rng.gen_bool(0.7) {
                // mostly printable ASCII, so that some of it looks like tokens
                rng.gen_range(b' '..=b'~')
            } else {
                rng.gen()
            }
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn random_tokens(rng: &mut StdRng) -> String {
    let n = rng.gen_range(0..40);
    let mut s = String::new();
    if rng.gen_bool(0.5) {
        s.push_str("input 28x28x1 ;");
    }
    for _ in 0..n {
        s.push_str(VOCAB[rng.gen_range(0..VOCAB.len())]);
        s.push(if rng.gen_bool(0.9) { ' ' } else { '\n' });
    }
    s
}

fn mutate(rng: &mut StdRng, src: &str) -> String {
    // Line comments would swallow the rest once tokens are re-joined on one line.
    let code: String = src
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut toks: Vec<String> = code.split_whitespace().map(String::from).collect();
    for _ in 0..rng.gen_range(0..4) {
        if toks.is_empty() {
            break;
        }
        let i = rng.gen_range(0..toks.len());
        match rng.gen_range(0..6) {
            0 => {
                toks.remove(i);
            }
            1 => {
                let t = toks[i].clone();
                toks.insert(i, t);
            }
            2 => {
                let j = rng.gen_range(0..toks.len());
                toks.swap(i, j);
            }
            3 => toks[i] = VOCAB[rng.gen_range(0..VOCAB.len())].to_string(),
            4 => toks[i] = "99999999999x99999999999".to_string(),
            _ => {
                // cut a token in half (e.g. `3x3;` -> `3x`)
                let t = &toks[i];
                let cut = (0..=t.len())
                    .filter(|k| t.is_char_boundary(*k))
                    .nth(t.len() / 2);
                toks[i] = t[..cut.unwrap_or(0)].to_string();
            }
        }
    }
    let sep = if rng.gen_bool(0.5) { " " } else { "\n" };
    toks.join(sep)
}

#[test]
fn hundred_thousand_generated_inputs_never_panic() {
    let corpus = corpus();
    assert!(corpus.len() > 60);
    // `CNN_ROBUSTNESS_N` runs more (or fewer) inputs, e.g. for a long local soak.
    let n: usize = std::env::var("CNN_ROBUSTNESS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120_000);
    let seed: u64 = std::env::var("CNN_ROBUSTNESS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_c0de);
    let mut rng = StdRng::seed_from_u64(seed);
    let start = std::time::Instant::now();
    let mut accepted = 0;
    for i in 0..n {
        let src = match i % 3 {
            0 => random_bytes(&mut rng),
            1 => random_tokens(&mut rng),
            _ => {
                let k = rng.gen_range(0..corpus.len());
                mutate(&mut rng, &corpus[k])
            }
        };
        accepted += usize::from(exercise(&src, i % 16 == 0));
    }
    let secs = start.elapsed().as_secs_f64();
    // Not vacuous: a fair share of the mutated models still check, so the IR
    // invariants above were exercised too.
    assert!(accepted > n / 50, "only {accepted} of {n} accepted");
    eprintln!("{n} inputs, {accepted} accepted, {secs:.1}s");
    // Stays fast: no backtracking blow-up on any of them.
    assert!(
        secs < 50.0 * (n as f64 / 120_000.0).max(1.0),
        "{n} inputs took {secs:.1}s"
    );
}

#[test]
fn pathological_inputs_stay_fast() {
    let cases = [
        "{".repeat(100_000),
        "}".repeat(100_000),
        "model A { ".repeat(20_000),
        "/*".repeat(50_000),
        "conv ".repeat(50_000),
        format!("input 28x28x1; {}", "relu; ".repeat(20_000)),
        format!("input {}x1x1", "9".repeat(100_000)),
        format!("input 8x8x1; conv 1 {}", "1x".repeat(50_000) + "1"),
        ";".repeat(200_000),
        "x".repeat(200_000),
        "é".repeat(100_000),
    ];
    for src in &cases {
        let start = std::time::Instant::now();
        let _ = exercise(src, false);
        assert!(
            start.elapsed().as_secs_f64() < 5.0,
            "slow on {:?}...",
            &src[..20.min(src.len())]
        );
    }
}

#[test]
fn long_valid_model_is_checked() {
    let mut src = String::from("input 64x64x3;");
    for _ in 0..5_000 {
        src.push_str(" conv 4 1x1 relu;");
    }
    let c = compile(&src, "Long");
    assert!(!c.has_errors());
    assert_eq!(c.models[0].layers.len(), 5_000);
    assert!(c
        .diagnostics
        .iter()
        .all(|d| d.severity == Severity::Warning));
}
