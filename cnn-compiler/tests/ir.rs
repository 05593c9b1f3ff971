//! What the checker puts in the IR: resolved options and defaults, padding
//! splits, parameter shapes, FLOPs, spans; and the model-level rules.

use cnn_compiler::ir::{Activation, Op, Padding, PoolKind, Shape, Span};
use cnn_compiler::{compile, model_name_from_stem, Code};

/// `src` compiled, which must give no error.
fn without_errors(src: &str, default_name: &str) -> cnn_compiler::Compiled {
    let c = compile(src, default_name);
    assert!(!c.has_errors(), "{:#?}", c.diagnostics);
    c
}

fn model(src: &str) -> cnn_compiler::ir::Model {
    without_errors(src, "M").models.into_iter().next().unwrap()
}

/// Layer `i` of `m`, which must be a conv.
fn conv_at(m: &cnn_compiler::ir::Model, i: usize) -> &cnn_compiler::ir::Conv {
    match &m.layers[i].op {
        Op::Conv(c) => c,
        op => panic!("layer {i} is not a conv: {op:?}"),
    }
}

#[test]
fn conv_defaults_and_options() {
    let m = model("input 7x7x2; conv 4 3x3; conv 2 5x3 stride 2x1 same dilation 1 relu");
    // (kernel, stride, dilation, padding, activation) of both convs.
    let c = conv_at(&m, 0);
    let resolved = (c.kernel, c.stride, c.dilation, c.padding, c.activation);
    let want = ([3, 3], [1, 1], [1, 1], Padding::Valid, Activation::Linear);
    assert_eq!(resolved, want);
    assert_eq!(m.layers[0].output, Shape::Image { h: 5, w: 5, c: 4 });
    let c = conv_at(&m, 1);
    let resolved = (c.kernel, c.stride, c.dilation, c.padding, c.activation);
    assert_eq!(
        resolved,
        ([5, 3], [2, 1], [1, 1], Padding::Same, Activation::Relu)
    );
    // same: out = ceil(5/2) = 3, pad = (3-1)*2+5-5 = 4 -> 2/2; W: out 5, pad 2 -> 1/1
    assert_eq!(m.layers[1].output, Shape::Image { h: 3, w: 5, c: 2 });
    assert_eq!(
        (c.pad.top, c.pad.bottom, c.pad.left, c.pad.right),
        (2, 2, 1, 1)
    );
    let p = m.layers[1].params.as_ref().unwrap();
    assert_eq!(p.kernel, vec![5, 3, 4, 2]);
    assert_eq!(p.bias, vec![2]);
    assert_eq!(m.layers[1].param_count, 5 * 3 * 4 * 2 + 2);
}

#[test]
fn same_padding_puts_the_odd_cell_after() {
    // n = 8, k = 3, s = 2: out 4, pad 1 -> 0 before, 1 after (TensorFlow rule)
    let m = model("input 8x8x2; conv 4 3x3 stride 2 same");
    let c = conv_at(&m, 0);
    assert_eq!(
        (c.pad.top, c.pad.bottom, c.pad.left, c.pad.right),
        (0, 1, 0, 1)
    );
    // k = 4, s = 1, n = 5: pad 3 -> 1 / 2
    let m = model("input 5x5x2; conv 2 4x4 same");
    let c = conv_at(&m, 0);
    assert_eq!((c.pad.top, c.pad.bottom), (1, 2));
}

#[test]
fn dilation_widens_the_window() {
    // effective window (3-1)*2+1 = 5: 9 -> 5 (valid); same keeps 9 with pad 4 -> 2/2
    let m = model("input 9x9x1; conv 2 3x3 dilation 2; conv 1 3x3 dilation 2 same");
    assert_eq!(m.layers[0].output, Shape::Image { h: 5, w: 5, c: 2 });
    let c = conv_at(&m, 1);
    assert_eq!(c.dilation, [2, 2]);
    assert_eq!((c.pad.top, c.pad.bottom), (2, 2));
}

#[test]
fn pool_stride_defaults_to_window() {
    let m = model("input 7x5x3; minpool 2; avgpool 1 stride 1 same; maxpool 3x1 stride 1");
    let Op::Pool(p) = &m.layers[0].op else {
        panic!()
    };
    assert_eq!(p.kind, PoolKind::Min);
    assert_eq!(p.stride, [2, 2]);
    assert_eq!(m.layers[0].output, Shape::Image { h: 3, w: 2, c: 3 });
    assert_eq!(m.layers[2].output, Shape::Image { h: 1, w: 2, c: 3 });
    assert_eq!(m.layers[0].param_count, 0);
    assert!(m.layers[0].params.is_none());
}

#[test]
fn flops_are_multiply_adds_times_two() {
    let m = model("input 6x6x2; conv 3 3x3; maxpool 2; flatten; dense 5; relu");
    // conv: 4*4*3 outputs x 3*3*2 MACs x 2
    assert_eq!(m.layers[0].flops, 2 * 4 * 4 * 3 * 3 * 3 * 2);
    // pool: 2*2*3 outputs x 4 window cells
    assert_eq!(m.layers[1].flops, 2 * 2 * 3 * 4);
    assert_eq!(m.layers[2].flops, 0);
    assert_eq!(m.layers[3].flops, 2 * 12 * 5);
    assert_eq!(m.layers[4].flops, 5);
    assert_eq!(m.total_flops, m.layers.iter().map(|l| l.flops).sum::<u64>());
}

#[test]
fn spans_are_byte_offsets_of_the_tokens() {
    let src = "input 28x28x1 ; conv 6 5x5 same tanh ; maxpool 2 ;";
    let m = model(src);
    let l = &m.layers[0];
    assert_eq!(&src[l.keyword_span.start..l.keyword_span.end], "conv");
    assert_eq!(&src[l.span.start..l.span.end], "conv 6 5x5 same tanh");
    let l = &m.layers[1];
    assert_eq!(l.index, 1);
    assert_eq!(&src[l.keyword_span.start..l.keyword_span.end], "maxpool");
    // and diagnostics point at the offending token
    let src = "input 4x4x1 ; conv 2 5x5 ; dense 0";
    let c = compile(src, "M");
    let d = c
        .diagnostics
        .iter()
        .find(|d| d.code == Code::WindowTooBig)
        .unwrap();
    assert_eq!(d.span, Span::new(21, 24));
    assert_eq!(&src[d.span.start..d.span.end], "5x5");
    let d = c
        .diagnostics
        .iter()
        .find(|d| d.code == Code::ZeroOrEmpty)
        .unwrap();
    assert_eq!(&src[d.span.start..d.span.end], "0");
    let c = compile("input 4x4x1; maxpoool 2", "M");
    let d = &c.diagnostics[0];
    assert_eq!(d.span, Span::new(13, 21));
    assert_eq!(d.help.as_deref(), Some("did you mean `maxpool`?"));
}

#[test]
fn model_blocks_names_and_visibility() {
    let c = without_errors(
        "pub model A { input 2x2x1 } model B { input 3x3x1; flatten }",
        "Ignored",
    );
    let names: Vec<_> = c
        .models
        .iter()
        .map(|m| (m.name.as_str(), m.public))
        .collect();
    assert_eq!(names, [("A", true), ("B", false)]);
    let m = model("input 2x2x1");
    assert_eq!(m.name, "M");
    assert_eq!(m.output(), Shape::Image { h: 2, w: 2, c: 1 });
    assert_eq!(model_name_from_stem("lenet5"), "Lenet5");
    assert_eq!(model_name_from_stem("shapes_small"), "ShapesSmall");
    assert_eq!(model_name_from_stem("seed-150"), "Seed150");
    assert_eq!(model_name_from_stem("2layers"), "Model2layers");
}

#[test]
fn a_model_with_an_error_is_left_out_but_others_stay() {
    let c = compile(
        "model Good { input 8x8x1; flatten } model Bad { input 2x2x1; conv 1 3x3 }",
        "M",
    );
    assert!(c.has_errors());
    let names: Vec<_> = c.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["Good"]);
}

#[test]
fn warnings_do_not_drop_the_model() {
    let c = without_errors(
        "input 8x8x1; maxpool 2 stride 3; flatten; dense 4 softmax; relu",
        "M",
    );
    let codes: Vec<_> = c.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        [
            Code::StrideSkipsInput,
            Code::SoftmaxNotLast,
            Code::DoubleActivation
        ]
    );
    assert_eq!(c.models.len(), 1);
}

#[test]
fn explain_covers_every_code() {
    for code in Code::ALL {
        let text = cnn_compiler::explain::explain(code);
        assert!(text.starts_with(code.as_str()), "{text}");
        assert!(text.contains("Example"), "{}", code.as_str());
        assert!(text.contains("Fix"), "{}", code.as_str());
    }
}

/// Output sizes and padding splits against a brute-force count of window
/// positions, over a grid of input sizes, windows, strides and dilations.
#[test]
fn window_arithmetic_matches_brute_force() {
    for n in 1..=14usize {
        for k in 1..=6usize {
            for s in 1..=4usize {
                for d in 1..=3usize {
                    let e = (k - 1) * d + 1;
                    // valid: positions p = 0, s, 2s, ... with p + e <= n
                    let valid = (0..n).step_by(s).filter(|p| p + e <= n).count();
                    let src = format!("input {n}x3x1; conv 1 {k}x1 stride {s}x1 dilation {d}x1");
                    let c = compile(&src, "M");
                    if valid == 0 {
                        assert!(
                            c.diagnostics.iter().any(|x| x.code == Code::WindowTooBig),
                            "{src}"
                        );
                    } else {
                        let m = &c.models[0];
                        assert_eq!(m.layers[0].output.dims()[0], valid, "{src}");
                    }
                    // same: one output per stride step; the padded windows cover the
                    // input exactly, the odd padding cell after.
                    let src = format!("{src} same");
                    let c = compile(&src, "M");
                    let m = &c.models[0];
                    let out = m.layers[0].output.dims()[0];
                    assert_eq!(out, (0..n).step_by(s).count(), "{src}");
                    let conv = conv_at(m, 0);
                    let (before, after) = (conv.pad.top, conv.pad.bottom);
                    assert!(after == before || after == before + 1, "{src}");
                    // the last window ends exactly at the padded end (or inside it
                    // when no padding is needed)
                    let last_end = (out - 1) * s + e;
                    if before + after > 0 {
                        assert_eq!(last_end, n + before + after, "{src}");
                    } else {
                        assert!(last_end <= n, "{src}");
                    }
                }
            }
        }
    }
}
