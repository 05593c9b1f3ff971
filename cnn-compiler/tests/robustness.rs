//! Robustness: at least 100,000 generated inputs go through parse and check
//! without a panic, each either accepted (with models whose IR is consistent) or
//! given a diagnostic with a valid span. Inputs: random bytes, random token
//! sequences from the language's vocabulary, statements of every layer with
//! random options and values (tiny, huge, zero, decimals with exponents), and
//! mutations of the conformance corpus (deleted, duplicated, swapped and
//! replaced tokens, huge numbers).

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
    "1e-3",
    "1.001e-5",
    "1e40",
    "2E+2",
    "1e",
    "-0.5",
    "0.5.5",
    "dwconv",
    "sepconv",
    "deconv",
    "batchnorm",
    "globalavgpool",
    "globalmaxpool",
    "zeropad",
    "upsample",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "softplus",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "groups",
    "multiplier",
    "pad",
    "nobias",
    "momentum",
    "epsilon",
    "noscale",
    "nocenter",
    "nearest",
    "bilinear",
    "residual",
    "add",
    "concat",
    "repeat",
    "block",
    "shortcut",
    "0x1x0x1",
    "1x2x3",
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
    let (out, total, non_trainable) = assert_chain(&m.layers, m.input, None, "");
    assert_eq!(out, m.output());
    assert_eq!(total, m.total_params);
    assert_eq!(non_trainable, m.non_trainable_params);
    assert!(m.total_params <= check::MAX_PARAMS);
}

/// A chain of layers from `shape` (inside top-level statement `top`, with
/// paths under `prefix`): shapes chain, counts add up, and a graph
/// statement's counts are its branches'. Returns the output and the counts.
fn assert_chain(
    layers: &[ir::Layer],
    mut shape: ir::Shape,
    top: Option<usize>,
    prefix: &str,
) -> (ir::Shape, u64, u64) {
    let mut total = 0u64;
    let mut non_trainable = 0u64;
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(l.index, top.unwrap_or(i));
        assert_eq!(l.path, format!("{prefix}{i}"));
        assert_eq!(l.input, shape);
        assert!(l.output.len() as u64 <= check::MAX_ELEMENTS && !l.output.is_empty());
        let (counted, frozen) = match &l.op {
            ir::Op::Graph(g) => {
                let mut c = (0, 0);
                let mut at = l.input;
                for (k, b) in g.branches.iter().enumerate() {
                    let sub = format!("{}.{k}.", l.path);
                    let from = if g.joins() { l.input } else { at };
                    let (o, t, n) = assert_chain(b, from, Some(l.index), &sub);
                    at = o;
                    c = (c.0 + t, c.1 + n);
                    if matches!(g.kind, ir::GraphKind::Residual { .. } | ir::GraphKind::Add) {
                        assert_eq!(o, l.output, "{l:?}");
                    }
                }
                if !g.joins() {
                    assert_eq!(at, l.output);
                }
                c
            }
            _ => {
                let size = |t: &ir::ParamTensor| t.shape.iter().product::<usize>() as u64;
                let counted: u64 = l.params.iter().map(size).sum();
                let frozen: u64 = l.params.iter().filter(|t| !t.trainable).map(size).sum();
                assert_op_consistent(l);
                (counted, frozen)
            }
        };
        assert_eq!(counted, l.param_count);
        assert_eq!(frozen, l.non_trainable);
        total += l.param_count;
        non_trainable += l.non_trainable;
        shape = l.output;
    }
    (shape, total, non_trainable)
}

/// The resolved options of a layer obey the language's rules.
fn assert_op_consistent(l: &ir::Layer) {
    use ir::{Activation, Op, Padding, Shape};
    let channels = |s: &Shape| match *s {
        Shape::Image { c, .. } => c,
        Shape::Vector { n } => n,
    };
    let (cin, cout) = (channels(&l.input), channels(&l.output));
    if let Some(Activation::LeakyRelu(r)) = l.op.activation() {
        assert!(r.get().is_finite() && r.get() >= 0.0, "{l:?}");
    }
    match &l.op {
        Op::Conv(c) => {
            assert_eq!(c.filters, cout);
            assert!(cin % c.groups == 0 && c.filters % c.groups == 0, "{l:?}");
            assert!(c.explicit_pad == [0, 0] || c.padding == Padding::Valid);
        }
        Op::DwConv(c) => {
            assert_eq!(cin * c.multiplier, cout);
            assert!(c.explicit_pad == [0, 0] || c.padding == Padding::Valid);
        }
        Op::SepConv(c) => assert_eq!(c.filters, cout),
        Op::Deconv(c) => {
            assert_eq!(c.filters, cout);
            let (Shape::Image { h, .. }, Shape::Image { h: oh, .. }) = (l.input, l.output) else {
                panic!("{l:?}");
            };
            let want = match c.padding {
                Padding::Same => h * c.stride[0],
                Padding::Valid => (h - 1) * c.stride[0] + c.kernel[0].max(c.stride[0]),
            };
            assert_eq!(oh, want, "{l:?}");
        }
        Op::Pool(p) => {
            assert!(p.explicit_pad == [0, 0] || p.padding == Padding::Valid);
            assert!(p.explicit_pad[0] <= p.window[0] / 2 && p.explicit_pad[1] <= p.window[1] / 2);
        }
        Op::BatchNorm(b) => {
            assert!((0.0..=1.0).contains(&b.momentum.get()), "{l:?}");
            assert!(
                b.epsilon.get() > 0.0 && b.epsilon.get().is_finite(),
                "{l:?}"
            );
            assert_eq!(l.output, l.input);
        }
        Op::Dropout(r) => assert!((0.0..1.0).contains(&r.get()), "{l:?}"),
        Op::GlobalPool(_) => assert_eq!(l.output, Shape::Vector { n: cin }),
        _ => {}
    }
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

/// A value for an option or argument: mostly small, sometimes zero, huge,
/// oddly shaped or of the wrong kind.
fn value(rng: &mut StdRng) -> String {
    const ODD: &[&str] = &[
        "0",
        "1048576",
        "1048577",
        "99999999999",
        "1x2x3",
        "0x1x0x1",
        "3x3x3x3x3",
        "same",
        "0.5",
        "1e-3",
        "1e40",
        "1e-50",
    ];
    if rng.gen_bool(0.15) {
        return ODD[rng.gen_range(0..ODD.len())].to_string();
    }
    let n = rng.gen_range(1..6u32);
    if rng.gen_bool(0.3) {
        format!("{n}x{}", rng.gen_range(1..6u32))
    } else {
        n.to_string()
    }
}

/// A decimal for a rate, momentum, epsilon or slope: in and out of range.
fn decimal(rng: &mut StdRng) -> &'static str {
    const D: &[&str] = &[
        "0",
        "0.0",
        "0.1",
        "0.5",
        "0.9",
        "0.99",
        "1",
        "1.0",
        "1.5",
        "1e-3",
        "1.001e-5",
        "1E-5",
        "1e-50",
        "1e40",
        "2e+1",
        "0.999999999",
    ];
    D[rng.gen_range(0..D.len())]
}

/// A model of language-2 statements with random options in random order:
/// many check, so the shape rules and the IR invariants are exercised too.
fn random_layers(rng: &mut StdRng) -> String {
    const ACTS: &[&str] = &[
        "relu",
        "relu6",
        "leaky_relu",
        "leaky_relu 0.1",
        "elu",
        "selu",
        "gelu",
        "swish",
        "softplus",
        "hard_sigmoid",
        "hard_swish",
        "softmax",
        "linear",
        "tanh",
    ];
    let dims = [1, 2, 3, 5, 8, 16, 33];
    let s = format!(
        "input {}x{}x{};",
        dims[rng.gen_range(0..dims.len())],
        dims[rng.gen_range(0..dims.len())],
        rng.gen_range(1..9)
    );
    let mut stmts: Vec<String> = Vec::new();
    for _ in 0..rng.gen_range(1..9) {
        let mut s = String::new();
        let (head, options): (String, &[&str]) = match rng.gen_range(0..14) {
            0 => (
                format!("conv {} {}", value(rng), value(rng)),
                &[
                    "stride", "same", "valid", "dilation", "groups", "nobias", "pad", "act",
                ],
            ),
            1 => (
                format!("dwconv {}", value(rng)),
                &[
                    "stride",
                    "same",
                    "valid",
                    "dilation",
                    "multiplier",
                    "nobias",
                    "pad",
                    "act",
                ],
            ),
            2 => (
                format!("sepconv {} {}", value(rng), value(rng)),
                &[
                    "stride",
                    "same",
                    "valid",
                    "dilation",
                    "multiplier",
                    "nobias",
                    "act",
                ],
            ),
            3 => (
                format!("deconv {} {}", value(rng), value(rng)),
                &["stride", "same", "valid", "nobias", "act"],
            ),
            4 => (
                format!("maxpool {}", value(rng)),
                &["stride", "same", "valid", "pad"],
            ),
            5 => (
                format!("avgpool {}", value(rng)),
                &["stride", "same", "pad", "groups"],
            ),
            6 => (format!("dense {}", value(rng)), &["nobias", "act"]),
            7 => (
                "batchnorm".to_string(),
                &["momentum", "epsilon", "noscale", "nocenter"],
            ),
            8 => (format!("dropout {}", decimal(rng)), &[]),
            9 => (format!("zeropad {}", value(rng)), &[]),
            10 => (format!("upsample {}", value(rng)), &["nearest", "bilinear"]),
            11 => ("globalavgpool".to_string(), &[]),
            12 => ("flatten".to_string(), &[]),
            _ => (ACTS[rng.gen_range(0..ACTS.len())].to_string(), &[]),
        };
        s.push(' ');
        s.push_str(&head);
        for _ in 0..rng.gen_range(0..4) {
            if options.is_empty() {
                break;
            }
            let o = options[rng.gen_range(0..options.len())];
            s.push(' ');
            match o {
                "stride" | "dilation" | "groups" | "multiplier" | "pad" => {
                    s.push_str(o);
                    s.push(' ');
                    s.push_str(&value(rng));
                }
                "momentum" | "epsilon" => {
                    s.push_str(o);
                    s.push(' ');
                    s.push_str(decimal(rng));
                }
                "act" => s.push_str(ACTS[rng.gen_range(0..ACTS.len())]),
                _ => s.push_str(o),
            }
        }
        stmts.push(s);
    }
    // Graph statements around some runs of them (nested, as runs are wrapped
    // again), and sometimes a block defined and used.
    for _ in 0..rng.gen_range(0..4) {
        let i = rng.gen_range(0..stmts.len());
        let j = rng.gen_range(i..stmts.len()) + 1;
        let run: Vec<String> = stmts.drain(i..j).collect();
        let k = rng.gen_range(0..run.len() + 1);
        let (a, b) = (run[..k].join(";"), run[k..].join(";"));
        let g = match rng.gen_range(0..6) {
            0 => format!(" residual {{{a}}}"),
            1 => format!(" residual {{{a}}} shortcut {{{b}}}"),
            2 => format!(" add {{{a}}} {{{b}}}"),
            3 => format!(" concat {{}} {{{a}}} {{{b}}}"),
            4 => format!(" repeat {} {{{a};{b}}}", value(rng)),
            _ => format!(" add {{ }} {{{a}}} {{ }}"),
        };
        stmts.insert(i, g);
    }
    let mut defs = String::new();
    if rng.gen_bool(0.2) {
        let k = rng.gen_range(0..stmts.len());
        let body = stmts[k].replace(" 3 ", " f ").replace(" 2 ", " f ");
        defs = format!("block b f {{{body}}}\nmodel M {{");
        stmts[k] = format!(" b {}", value(rng));
    }
    let mut out = defs.clone();
    out.push_str(&s);
    for st in &stmts {
        out.push_str(st);
        out.push(';');
    }
    if !defs.is_empty() {
        out.push('}');
    }
    out
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
        let src = match i % 4 {
            0 => random_bytes(&mut rng),
            1 => random_tokens(&mut rng),
            2 => random_layers(&mut rng),
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
        format!("input 8x8x1; dropout 0.{}", "9".repeat(100_000)),
        format!("input 8x8x1; batchnorm epsilon 1e-{}", "9".repeat(100_000)),
        format!("input 8x8x1; leaky_relu {}e1", "1".repeat(100_000)),
        format!("input 8x8x1; zeropad {}", "1x".repeat(50_000) + "1"),
        format!("input 2x2x1; {}", "zeropad 1; ".repeat(10_000)),
        format!("input 2x2x1; {}", "upsample 2; ".repeat(40)),
        ";".repeat(200_000),
        "x".repeat(200_000),
        "é".repeat(100_000),
        // Keras habits: brackets that never close, keyword arguments,
        // calls, assignments and quoted words by the thousand.
        format!("input 8x8x1; conv {}", "( ".repeat(100_000)),
        format!("input 8x8x1; conv {}", "(".repeat(100_000)),
        format!("input 8x8x1; conv 1 1 {}", "a=(1, ".repeat(30_000)),
        format!("input 8x8x1; Conv2D{}", "(1, ".repeat(30_000)),
        format!("input 8x8x1; {}", "Conv2D(1, (3, 3)) ".repeat(20_000)),
        format!("input 8x8x1; {}", "x = ".repeat(50_000)),
        format!("input 8x8x1; {}", "x = conv 1 1; ".repeat(20_000)),
        format!("input 8x8x1; maxpool 2 {}", "relu ".repeat(20_000)),
        format!("input 8x8x1; conv 1 1 {}", "'same' ".repeat(30_000)),
        format!("input 8x8x1; {}", "residual { ".repeat(10_000)),
        format!(
            "input 8x8x1; {}relu{}",
            "add { } { ".repeat(10_000),
            " }".repeat(10_000)
        ),
        format!(
            "input 8x8x1; {}",
            "repeat 1000000 { ".repeat(60) + &"}".repeat(60)
        ),
        // Each block uses the one before twice: 2^40 layers if unfolded.
        (1..40).fold("block a0 { relu }\n".to_string(), |s, i| {
            format!("{s}block a{i} {{ a{}; a{} }}\n", i - 1, i - 1)
        }) + "model M { input 4x4x1; a39 }",
        // Found by the fuzzer: an error inside nested repeats was reported
        // once per copy (49,900 times, 33 s under the fuzzer).
        "input 4x4x1;\nrepeat 1000 { repeat 249 { relu { } } }\n".to_string(),
        // The same with an empty block: no layers at all, 2^40 uses.
        (1..40).fold("block a0 { }\n".to_string(), |s, i| {
            format!("{s}block a{i} {{ a{}; a{} }}\n", i - 1, i - 1)
        }) + "model M { input 4x4x1; a39 }",
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

/// The graph limits (`cnnc check` answers in under a second): 10,000 nested
/// blocks get E017 from the linear depth scan; a block used 10,000 times
/// checks, every use in the IR; 64 levels (the limit) check.
#[test]
fn deep_nesting_and_many_uses_answer_in_under_a_second() {
    let deep = format!(
        "input 8x8x3; {}relu{}",
        "residual { ".repeat(10_000),
        " }".repeat(10_000)
    );
    let start = std::time::Instant::now();
    let c = compile(&deep, "Deep");
    assert!(start.elapsed().as_secs_f64() < 1.0);
    assert!(c
        .diagnostics
        .iter()
        .any(|d| d.code == cnn_compiler::Code::TooDeep));
    // Shown around the 65th `{` of the 110 KB line, not the whole line.
    let shown = cnn_compiler::render("deep.cnn", &deep, &c.diagnostics, false);
    assert!(shown.len() < 2_000, "{} bytes", shown.len());
    let col = 14 + 64 * "residual { ".len() + "residual ".len();
    assert!(shown.contains(&format!("deep.cnn:1:{col}\n")), "{shown}");
    assert!(
        shown.contains("line 1 is 130017 characters long"),
        "{shown}"
    );
    let uses = format!(
        "block b f {{ conv f 3x3 same relu; batchnorm }}\nmodel M {{ input 8x8x3; {} }}",
        "b 4; ".repeat(10_000)
    );
    let start = std::time::Instant::now();
    let c = compile(&uses, "Uses");
    assert!(start.elapsed().as_secs_f64() < 1.0, "{:?}", start.elapsed());
    assert!(!c.has_errors(), "{:?}", &c.diagnostics[..1]);
    assert_eq!(c.models[0].layers.len(), 10_000);
    assert_eq!(c.models[0].walk().len(), 30_000);
    // The deepest nesting allowed: the model block and 63 blocks inside.
    let limit = format!(
        "model M {{ input 4x4x1; {}relu{} }}",
        "repeat 1 { ".repeat(63),
        " }".repeat(63)
    );
    let c = compile(&limit, "Limit");
    assert!(!c.has_errors(), "{:?}", c.diagnostics);
    // An error inside repeats and block uses is reported once, not once per
    // copy or use (the fuzzer found 49,900 copies of one).
    let start = std::time::Instant::now();
    let c = compile(
        "input 4x4x1;\nrepeat 1000 { repeat 249 { relu { } } }\n",
        "Dup",
    );
    assert!(start.elapsed().as_secs_f64() < 1.0, "{:?}", start.elapsed());
    assert_eq!(c.diagnostics.len(), 1, "{:?}", c.diagnostics);
    let uses = "block b { relu { } }\nmodel M { input 4x4x1; b; b; repeat 9 { b } }";
    assert_eq!(compile(uses, "Uses").diagnostics.len(), 1);
    let over = format!(
        "model M {{ input 4x4x1; {}relu{} }}",
        "repeat 1 { ".repeat(64),
        " }".repeat(64)
    );
    assert!(compile(&over, "Over")
        .diagnostics
        .iter()
        .any(|d| d.code == cnn_compiler::Code::TooDeep));
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
