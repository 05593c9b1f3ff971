//! The full rendered text of at least one diagnostic per code (errors and
//! warnings), fixed with insta snapshots (`tests/snapshots/`).

use cnn_compiler::{compile, render, to_json, Code};

fn rendered(src: &str) -> String {
    let c = compile(src, "Model");
    render("model.cnn", src, &c.diagnostics, false)
}

/// Renders `src` and checks that it has a diagnostic with `code`.
fn case(code: Code, src: &str) -> String {
    let c = compile(src, "Model");
    assert!(
        c.diagnostics.iter().any(|d| d.code == code),
        "{src}: expected {}, got {:#?}",
        code.as_str(),
        c.diagnostics
    );
    rendered(src)
}

/// One snapshot test per line: `name: Code, source;` checks that `source` has
/// a diagnostic with that code and snapshots its rendering (`case`) under `name`.
macro_rules! snapshot_cases {
    ($($name:ident: $code:ident, $src:expr;)*) => {
        $(
            #[test]
            fn $name() {
                insta::assert_snapshot!(case(Code::$code, $src));
            }
        )*
    };
}

snapshot_cases! {
    e001_unknown_layer: Syntax, "input 28x28x1;\nmaxpooling 2;\n";
    e001_unknown_activation: Syntax, "input 28x28x1;\nconv 6 5x5 same rellu;\n";
    e001_parse_error_unclosed_block: Syntax, "model LeNet {\n    input 28x28x1;\n    flatten;\n";
    e001_missing_semicolon: Syntax, "input 28x28x1\nconv 6 5x5;\n";
    e002_missing_input: MissingInput, "conv 6 5x5 tanh;\nflatten;\n";
    e002_input_twice: MissingInput, "input 28x28x1;\nflatten;\ninput 28x28x1;\n";
    e003_window_too_big: WindowTooBig, "input 28x28x1;\nconv 6 5x5 tanh;\navgpool 2;\nconv 16 5x5 tanh;\navgpool 2;\nconv 120 5x5 tanh;\nflatten;\ndense 84 tanh;\ndense 10 softmax;\n";
    e003_dilated_window: WindowTooBig, "input 4x4x1;\nconv 1 3x3 dilation 2;\n";
    e004_zero: ZeroOrEmpty, "input 28x28x1;\nconv 0 3x3;\nmaxpool 2 stride 0;\n";
    e005_needs_image: NeedsImage, "input 20x20x1;\nflatten;\nconv 8 3x3;\n";
    e006_needs_vector: NeedsVector, "input 28x28x1;\nconv 8 3x3 relu;\ndense 10 softmax;\n";
    e007_option_twice: OptionTwice, "input 28x28x1;\nconv 8 3x3 same valid;\nflatten;\ndense 10 relu softmax;\n";
    e008_too_large: TooLarge, "input 99999999999x99999999999x3;\n";
    e008_too_many_parameters: TooLarge, "input 1024x1024x3;\nflatten;\ndense 1048576;\n";
    e009_duplicate_model: DuplicateModel, "model Net {\n    input 28x28x1;\n}\nmodel Net {\n    input 32x32x3;\n}\n";
    w001_softmax_not_last: SoftmaxNotLast, "input 8x8x1;\nflatten;\ndense 16 softmax;\ndense 2 softmax;\n";
    w002_double_activation: DoubleActivation, "input 8x8x1;\nflatten;\ndense 16 relu;\nsigmoid;\ndense 2 softmax;\n";
    w003_stride_skips_input: StrideSkipsInput, "input 8x8x2;\nmaxpool 2 stride 3;\n";
}

#[test]
fn all_errors_in_one_pass() {
    insta::assert_snapshot!(rendered(
        "input 28x28x1;\nconv 6 5x5 tanh;\navgpool 2;\nconv 16 5x5 tanh;\navgpool 2;\nconv 120 5x5 tanh;\nmaxpooling 2;\nflatten;\nconv 8 3x3;\n"
    ));
}

#[test]
fn json_form() {
    let src = "input 3x3x1;\nmaxpool 4;\n";
    let c = compile(src, "Model");
    let json = serde_json::to_string_pretty(&to_json("model.cnn", src, &c.diagnostics)).unwrap();
    insta::assert_snapshot!(json);
}
