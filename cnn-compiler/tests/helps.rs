//! Every statement a help line offers as text to write is valid text: a
//! suggestion such as "write `x =; conv ...`" (what an assignment once got)
//! would send the user from one error to the next. Forms with placeholders
//! (`conv F K [stride S]`, `add { A } { B } ...`) are not text to copy and
//! are left out.

use cnn_compiler::check::{ACTIVATIONS, GRAPH, LAYERS};
use cnn_compiler::{compile, Code, Diagnostic};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// The codes a statement gives on its own, whatever shape reaches it.
const STATEMENT_CODES: [Code; 10] = [
    Code::Syntax,
    Code::MissingInput,
    Code::ZeroOrEmpty,
    Code::OptionTwice,
    Code::TooLarge,
    Code::PadWithSame,
    Code::OutOfRange,
    Code::UnknownBlock,
    Code::BlockValues,
    Code::RecursiveBlock,
];

/// The `...`-quoted pieces of a help line that are statements to write.
fn suggestions(help: &str) -> Vec<String> {
    let starts: Vec<&str> = LAYERS
        .iter()
        .chain(&ACTIVATIONS)
        .chain(GRAPH.iter().filter(|w| **w != "shortcut"))
        .copied()
        .collect();
    // A placeholder: `F`, `HxWxC`, `NAME`, `A`.
    let placeholder = |w: &str| {
        w.chars().any(|c| c.is_ascii_uppercase())
            && w.chars().all(|c| c.is_ascii_uppercase() || c == 'x')
    };
    help.split('`')
        .skip(1)
        .step_by(2)
        .filter(|frag| {
            let words: Vec<&str> = frag.split_whitespace().collect();
            words.len() > 1
                && starts.contains(&words[0])
                && !frag.contains("...")
                && !frag.contains('[')
                && !words.iter().any(|w| placeholder(w))
        })
        .map(str::to_string)
        .collect()
}

/// The statement-level errors of `frag` written in a model.
fn errors_of(frag: &str) -> Vec<Diagnostic> {
    let src = if frag.starts_with("block ") {
        format!("{frag}\ninput 16x16x4;")
    } else if frag.starts_with("input ") {
        frag.to_string()
    } else {
        format!("input 16x16x4;\n{frag}")
    };
    compile(&src, "Model")
        .diagnostics
        .into_iter()
        .filter(|d| STATEMENT_CODES.contains(&d.code))
        .collect()
}

/// Checks every suggestion of every help `src` gets; returns how many.
fn check_helps(src: &str, checked: &mut BTreeSet<String>) {
    for d in compile(src, "Model").diagnostics {
        let Some(help) = &d.help else { continue };
        for frag in suggestions(help) {
            if !checked.insert(frag.clone()) {
                continue;
            }
            let errors = errors_of(&frag);
            assert!(
                errors.is_empty(),
                "the help `{help}` (for {src:?}) suggests `{frag}`, which gives {:?}",
                errors
                    .iter()
                    .map(|e| format!("{}: {}", e.code.as_str(), e.message))
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Heads and arguments that reach every help of the checker with a
/// suggestion in it, Keras habits included.
const HEADS: [&str; 16] = [
    "conv",
    "dwconv",
    "sepconv",
    "deconv",
    "maxpool",
    "dense",
    "input",
    "relu",
    "leaky_relu",
    "dropout",
    "batchnorm",
    "upsample",
    "zeropad",
    "Conv2D",
    "Dense",
    "x =",
];
const ARGS: [&str; 22] = [
    "32",
    "3x3",
    "28x28",
    "0x0x0",
    "(3, 3)",
    "(3,3)",
    "padding=same",
    "padding='valid'",
    "activation=relu",
    "strides=(2,2)",
    "use_bias=False",
    "name='a'",
    "kernel_initializer='he_normal'",
    "'same'",
    "same",
    "relu",
    "stride",
    "dilation 2",
    "pad 1",
    "maxpool",
    "foo",
    "-1",
];

#[test]
fn every_suggested_statement_is_valid_text() {
    let mut checked = BTreeSet::new();
    // The corpus's mistakes.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../grammar/invalid");
    for e in std::fs::read_dir(&dir).unwrap() {
        let src = std::fs::read_to_string(e.unwrap().path()).unwrap();
        check_helps(&src, &mut checked);
    }
    // Statements of up to three arguments from the lists above.
    for head in HEADS {
        check_helps(&format!("input 16x16x4;\n{head};\n"), &mut checked);
        for a in ARGS {
            check_helps(&format!("input 16x16x4;\n{head} {a};\n"), &mut checked);
            for b in ARGS {
                check_helps(&format!("input 16x16x4;\n{head} {a} {b};\n"), &mut checked);
                for c in ["relu", "same", "padding=same", "(2, 2)"] {
                    let src = format!("input 16x16x4;\n{head} {a} {b} {c};\n");
                    check_helps(&src, &mut checked);
                }
            }
        }
    }
    // The first statement and block uses.
    for src in [
        "28x28x1;\nflatten;\n",
        "0x0x0;\nflatten;\n",
        "1048576x1048576x3;\n",
        "input 28x28;\n",
        "input 0x28;\n",
        "input 1048576x1048576;\n",
        "block b f s { conv f 3x3 stride s }\ninput 8x8x3;\nb { relu }\n",
        "block b { relu }\ninput 8x8x3;\nb { relu }\n",
        "input 8x8x3;\nmaxpool 2 relu dilation 2;\n",
        "input 8x8x3;\nmaxpool 2 relu;\n",
    ] {
        check_helps(src, &mut checked);
    }
    assert!(
        checked.len() > 100,
        "only {} suggestions checked",
        checked.len()
    );
}

/// The suggestions found are the ones meant: statements, not forms.
#[test]
fn suggestions_are_statements_not_forms() {
    assert_eq!(
        suggestions("write `same`: `conv 32 3x3 same`; or `conv F K [stride S]`, `add { A } { B } ...`, `input HxWxC`"),
        ["conv 32 3x3 same"]
    );
}
