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
    let p: Vec<(&str, Vec<usize>, bool)> = m.layers[1]
        .params
        .iter()
        .map(|t| (t.name, t.shape.clone(), t.trainable))
        .collect();
    assert_eq!(
        p,
        [("kernel", vec![5, 3, 4, 2], true), ("bias", vec![2], true)]
    );
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
    assert!(m.layers[0].params.is_empty());
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

/// `(name, shape, trainable)` of a layer's tensors.
fn tensors(l: &cnn_compiler::ir::Layer) -> Vec<(&'static str, Vec<usize>, bool)> {
    l.params
        .iter()
        .map(|t| (t.name, t.shape.clone(), t.trainable))
        .collect()
}

#[test]
fn language_2_defaults_are_resolved() {
    use cnn_compiler::ir::{Interpolation, Real};
    let m = model(
        "input 8x8x4; conv 4 3x3; dwconv 3x3 same; sepconv 4 3x3; deconv 2 2x2; \
         batchnorm; leaky_relu; upsample 2; dropout 0.5; flatten; dense 3",
    );
    let c = conv_at(&m, 0);
    assert_eq!((c.groups, c.bias, c.explicit_pad), (1, true, [0, 0]));
    let Op::DwConv(d) = &m.layers[1].op else {
        panic!()
    };
    assert_eq!((d.multiplier, d.bias, d.explicit_pad), (1, true, [0, 0]));
    assert_eq!((d.pad.top, d.pad.bottom), (1, 1));
    let Op::SepConv(s) = &m.layers[2].op else {
        panic!()
    };
    assert_eq!(
        (s.multiplier, s.stride, s.padding),
        (1, [1, 1], Padding::Valid)
    );
    let Op::Deconv(d) = &m.layers[3].op else {
        panic!()
    };
    assert_eq!(
        (d.stride, d.padding, d.crop, d.bias),
        ([1, 1], Padding::Valid, [0, 0], true)
    );
    let Op::BatchNorm(b) = &m.layers[4].op else {
        panic!()
    };
    assert_eq!((b.momentum, b.epsilon), (Real::new(0.99), Real::new(0.001)));
    assert!(b.scale && b.center);
    assert_eq!(
        m.layers[5].op,
        Op::Activation(Activation::LeakyRelu(Real::new(0.3)))
    );
    assert_eq!(
        m.layers[6].op,
        Op::Upsample {
            size: [2, 2],
            interpolation: Interpolation::Nearest
        }
    );
    assert_eq!(m.layers[7].op, Op::Dropout(Real::new(0.5)));
}

#[test]
fn language_2_options_in_any_order() {
    use cnn_compiler::ir::Real;
    let a = model("input 8x8x4; conv 8 3x3 leaky_relu 0.1 pad 1 nobias stride 2 groups 2");
    let b = model("input 8x8x4; conv 8 3x3 groups 2 stride 2 nobias pad 1 leaky_relu 0.1");
    assert_eq!(a.layers, b.layers);
    let c = conv_at(&a, 0);
    assert_eq!(c.activation, Activation::LeakyRelu(Real::new(0.1)));
    assert_eq!(
        (c.groups, c.bias, c.explicit_pad, c.stride),
        (2, false, [1, 1], [2, 2])
    );
    // swish and hard_swish are silu and hard_silu
    let m = model("input 4x4x1; swish; hard_swish; conv 1 1x1 swish");
    assert_eq!(m.layers[0].op, Op::Activation(Activation::Silu));
    assert_eq!(m.layers[1].op, Op::Activation(Activation::HardSilu));
    assert_eq!(conv_at(&m, 2).activation, Activation::Silu);
    // decimals in every written form
    let m = model(
        "input 4x4x1; batchnorm epsilon 1.001e-5 momentum 1; batchnorm epsilon 2E+1 momentum 0",
    );
    let Op::BatchNorm(b) = &m.layers[0].op else {
        panic!()
    };
    assert_eq!(
        (b.epsilon, b.momentum),
        (Real::new(1.001e-5), Real::new(1.0))
    );
}

#[test]
fn language_2_tensors_in_keras_layout() {
    let m = model(
        "input 6x6x4; conv 6 3x3 groups 2 nobias; dwconv 3x3 multiplier 2; \
         sepconv 5 3x3 multiplier 3 same; deconv 3 2x2 stride 2; batchnorm noscale; \
         flatten; dense 4 nobias",
    );
    assert_eq!(tensors(&m.layers[0]), [("kernel", vec![3, 3, 2, 6], true)]);
    assert_eq!(
        tensors(&m.layers[1]),
        [
            ("depthwise_kernel", vec![3, 3, 6, 2], true),
            ("bias", vec![12], true)
        ]
    );
    assert_eq!(
        tensors(&m.layers[2]),
        [
            ("depthwise_kernel", vec![3, 3, 12, 3], true),
            ("pointwise_kernel", vec![1, 1, 36, 5], true),
            ("bias", vec![5], true)
        ]
    );
    assert_eq!(
        tensors(&m.layers[3]),
        [("kernel", vec![2, 2, 3, 5], true), ("bias", vec![3], true)]
    );
    assert_eq!(
        tensors(&m.layers[4]),
        [
            ("beta", vec![3], true),
            ("moving_mean", vec![3], false),
            ("moving_variance", vec![3], false)
        ]
    );
    assert_eq!((m.layers[4].param_count, m.layers[4].non_trainable), (9, 6));
    assert_eq!(tensors(&m.layers[6]), [("kernel", vec![48, 4], true)]);
    assert_eq!(m.non_trainable_params, 6);
    assert_eq!(
        m.total_params,
        m.layers.iter().map(|l| l.param_count).sum::<u64>()
    );
}

#[test]
fn language_2_shapes() {
    let m = model(
        "input 8x8x3; conv 4 3x3 stride 2 pad 1; zeropad 0x1x0x1; maxpool 2 pad 1; \
         deconv 2 3x3 stride 2 same; upsample 2x3; globalmaxpool",
    );
    let dims: Vec<Vec<usize>> = m.layers.iter().map(|l| l.output.dims()).collect();
    // (8 + 2 - 3) / 2 + 1 = 4; 4 + 1 = 5; (5 + 2 - 2) / 2 + 1 = 3; 3 * 2 = 6; 12x18
    assert_eq!(
        dims,
        [
            vec![4, 4, 4],
            vec![5, 5, 4],
            vec![3, 3, 4],
            vec![6, 6, 2],
            vec![12, 18, 2],
            vec![2]
        ]
    );
    let Op::Pool(p) = &m.layers[2].op else {
        panic!()
    };
    assert_eq!((p.explicit_pad, p.padding), ([1, 1], Padding::Valid));
    // deconv same crop: floor((k - s) / 2) before; k < s crops nothing
    let m = model("input 3x3x2; deconv 2 4x4 stride 2 same; deconv 2 1x1 stride 3 same; deconv 1 2x2 stride 3");
    let crop = |i: usize| match &m.layers[i].op {
        Op::Deconv(d) => d.crop,
        _ => panic!(),
    };
    assert_eq!((crop(0), crop(1), crop(2)), ([1, 1], [0, 0], [0, 0]));
    assert_eq!(m.layers[2].output.dims(), [54, 54, 1]); // (18 - 1) * 3 + max(2, 3)
}

#[test]
fn language_2_flops_follow_the_ir_doc() {
    let m = model(
        "input 6x6x4; conv 6 3x3 groups 2; dwconv 3x3 multiplier 2; sepconv 5 1x1 multiplier 3; \
         deconv 2 2x2 stride 2; batchnorm; dropout 0.5; upsample 2; zeropad 1; globalavgpool",
    );
    let f: Vec<u64> = m.layers.iter().map(|l| l.flops).collect();
    // conv: 2*OH*OW*F*KH*KW*(C/G) = 2*4*4*6*9*2
    assert_eq!(f[0], 2 * 4 * 4 * 6 * 9 * 2);
    // dwconv: 2*OH*OW*C*M*KH*KW = 2*2*2*6*2*9
    assert_eq!(f[1], 2 * 2 * 2 * 6 * 2 * 9);
    // sepconv: dw 2*OH*OW*C*M*KH*KW + pw 2*OH*OW*C*M*F (C = 12, M = 3)
    assert_eq!(f[2], 2 * 2 * 2 * 36 + 2 * 2 * 2 * 36 * 5);
    // deconv: 2*H*W*C*KH*KW*F
    assert_eq!(f[3], 2 * 2 * 2 * 5 * 4 * 2);
    // batchnorm, dropout, upsample: one per output value; zeropad none;
    // globalavgpool one per input value
    assert_eq!((f[4], f[5], f[6], f[7]), (32, 32, 128, 0));
    assert_eq!(f[8], 10 * 10 * 2);
}

#[test]
fn language_2_errors_point_at_the_token() {
    let at = |src: &str, code: Code| -> String {
        let c = compile(src, "M");
        let d = c
            .diagnostics
            .iter()
            .find(|d| d.code == code)
            .unwrap_or_else(|| panic!("{src}: {:#?}", c.diagnostics));
        src[d.span.start..d.span.end].to_string()
    };
    assert_eq!(
        at("input 6x6x8; conv 6 3x3 groups 4", Code::GroupsNotDividing),
        "4"
    );
    assert_eq!(
        at("input 6x6x8; conv 6 3x3 same pad 1", Code::PadWithSame),
        "pad 1"
    );
    assert_eq!(at("input 6x6x8; dropout 1.0", Code::OutOfRange), "1.0");
    assert_eq!(
        at("input 6x6x8; batchnorm momentum 2", Code::OutOfRange),
        "2"
    );
    assert_eq!(
        at("input 6x6x8; maxpool 2 pad 2", Code::OutOfRange),
        "pad 2"
    );
    assert_eq!(
        at("input 6x6x8; dwconv 3x3 multiplier 0", Code::ZeroOrEmpty),
        "0"
    );
    assert_eq!(
        at("input 6x6x8; flatten; dwconv 3x3", Code::NeedsImage),
        "dwconv"
    );
    assert_eq!(
        at("input 6x6x8; flatten; dense 2; dropout 0.2", Code::NoEffect),
        "dropout"
    );
    assert_eq!(at("input 6x6x8; dropout 0", Code::NoEffect), "0");
    // the error on a conv's groups keeps its output shape for the layers after
    let c = compile("input 6x6x8; conv 6 3x3 groups 4; flatten; conv 2 1x1", "M");
    let codes: Vec<Code> = c.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::GroupsNotDividing, Code::NeedsImage]);
}
