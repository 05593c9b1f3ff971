//! Short texts naming a layer and a shape, as a user writes them in a `.cnn`
//! file: one implementation for every place that labels a model (generated
//! summaries, `cnnc diagram`, `cnnc viz`, error messages).

use crate::ir::{Activation, Augment, GraphKind, Interpolation, Op, Padding, Shape};
use std::fmt::Write as _;

/// The statement of a layer, with defaults left out (`conv 6 5x5 tanh`,
/// `maxpool 3 stride 2 same`, `dense 10 softmax`, `flatten`, `relu`).
pub fn layer_text(op: &Op) -> String {
    // A square pair is written once, as the language allows (`stride 2`).
    fn pair(p: [usize; 2]) -> String {
        if p[0] == p[1] {
            p[0].to_string()
        } else {
            format!("{}x{}", p[0], p[1])
        }
    }
    let act = |a: Activation| match a {
        Activation::Linear => String::new(),
        // The default slope is left out, as the language allows.
        Activation::LeakyRelu(r) if r.get() != 0.3 => format!(" leaky_relu {}", r.get()),
        a => format!(" {}", a.keyword()),
    };
    // The options the convolutions share, defaults left out.
    let window = |s: &mut String, stride: [usize; 2], same: bool, dilation: [usize; 2]| {
        if stride != [1, 1] {
            let _ = write!(s, " stride {}", pair(stride));
        }
        if same {
            s.push_str(" same");
        }
        if dilation != [1, 1] {
            let _ = write!(s, " dilation {}", pair(dilation));
        }
    };
    let extras = |s: &mut String, groups: usize, multiplier: usize, bias: bool, pad: [usize; 2]| {
        if groups > 1 {
            let _ = write!(s, " groups {groups}");
        }
        if multiplier > 1 {
            let _ = write!(s, " multiplier {multiplier}");
        }
        if !bias {
            s.push_str(" nobias");
        }
        if pad != [0, 0] {
            let _ = write!(s, " pad {}", pair(pad));
        }
    };
    match op {
        Op::Conv(c) => {
            let mut s = format!("conv {} {}x{}", c.filters, c.kernel[0], c.kernel[1]);
            window(&mut s, c.stride, c.padding == Padding::Same, c.dilation);
            extras(&mut s, c.groups, 1, c.bias, c.explicit_pad);
            s + &act(c.activation)
        }
        Op::DwConv(c) => {
            let mut s = format!("dwconv {}x{}", c.kernel[0], c.kernel[1]);
            window(&mut s, c.stride, c.padding == Padding::Same, c.dilation);
            extras(&mut s, 1, c.multiplier, c.bias, c.explicit_pad);
            s + &act(c.activation)
        }
        Op::SepConv(c) => {
            let mut s = format!("sepconv {} {}x{}", c.filters, c.kernel[0], c.kernel[1]);
            window(&mut s, c.stride, c.padding == Padding::Same, c.dilation);
            extras(&mut s, 1, c.multiplier, c.bias, [0, 0]);
            s + &act(c.activation)
        }
        Op::Deconv(c) => {
            let mut s = format!("deconv {} {}x{}", c.filters, c.kernel[0], c.kernel[1]);
            window(&mut s, c.stride, c.padding == Padding::Same, [1, 1]);
            extras(&mut s, 1, 1, c.bias, [0, 0]);
            s + &act(c.activation)
        }
        Op::BatchNorm(b) => {
            let mut s = String::from("batchnorm");
            if b.momentum.get() != 0.99 {
                let _ = write!(s, " momentum {}", b.momentum.get());
            }
            if b.epsilon.get() != 0.001 {
                let _ = write!(s, " epsilon {}", b.epsilon.get());
            }
            if !b.scale {
                s.push_str(" noscale");
            }
            if !b.center {
                s.push_str(" nocenter");
            }
            s
        }
        Op::Dropout(r) => format!("dropout {}", r.get()),
        Op::GlobalPool(_) => op.keyword().into(),
        Op::ZeroPad(p) => {
            if p.top == p.bottom && p.left == p.right {
                format!("zeropad {}", pair([p.top, p.left]))
            } else {
                format!("zeropad {}x{}x{}x{}", p.top, p.bottom, p.left, p.right)
            }
        }
        Op::Upsample {
            size,
            interpolation,
        } => {
            let mut s = format!("upsample {}", pair(*size));
            if *interpolation == Interpolation::Bilinear {
                s.push_str(" bilinear");
            }
            s
        }
        Op::Augment(a) => match a {
            Augment::Flip {
                horizontal: true,
                vertical: true,
            } => "randomflip".into(),
            Augment::Flip { horizontal, .. } => {
                let axis = if *horizontal {
                    "horizontal"
                } else {
                    "vertical"
                };
                format!("randomflip {axis}")
            }
            Augment::Translate { height, width } if height != width => {
                format!("randomtranslate {} {}", height.get(), width.get())
            }
            Augment::Translate { height: f, .. } | Augment::Rotate(f) | Augment::Zoom(f) => {
                format!("{} {}", a.keyword(), f.get())
            }
        },
        Op::Pool(p) => {
            let mut s = format!("{} {}", p.kind.keyword(), pair(p.window));
            if p.stride != p.window {
                let _ = write!(s, " stride {}", pair(p.stride));
            }
            if p.padding == Padding::Same {
                s.push_str(" same");
            }
            extras(&mut s, 1, 1, true, p.explicit_pad);
            s
        }
        Op::Flatten => "flatten".into(),
        Op::Dense(d) => {
            let mut s = format!("dense {}", d.units);
            extras(&mut s, 1, 1, d.bias, [0, 0]);
            s + &act(d.activation)
        }
        // As a statement, `linear` is written out, and a slope is kept.
        Op::Activation(Activation::Linear) => "linear".into(),
        Op::Activation(a) => act(*a).trim_start().to_string(),
        // A graph statement by its head (its layers have labels of their own).
        Op::Graph(g) => match &g.kind {
            GraphKind::Residual { shortcut: true } => "residual + shortcut".into(),
            GraphKind::Residual { .. } => "residual".into(),
            GraphKind::Add => format!("add of {}", g.branches.len()),
            GraphKind::Concat => format!("concat of {}", g.branches.len()),
            GraphKind::Repeat(n) => format!("repeat {n}"),
            GraphKind::Use { block, values } => {
                let mut s = block.clone();
                for v in values {
                    let _ = write!(s, " {v}");
                }
                s
            }
        },
    }
}

/// A shape in the short form of `input` statements: `28x28x6`, or `120` for a
/// vector (`Shape`'s `Display` spells the vector out for sentences instead).
pub fn shape_text(shape: &Shape) -> String {
    dims_text(&shape.dims())
}

/// Dimensions joined by `x` (`[12, 12, 3]` -> `12x12x3`): the same form as
/// [`shape_text`], for shapes that come as a list (e.g. from the runtime).
pub fn dims_text(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    parts.join("x")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ops of a model that checks, in order.
    fn ops(src: &str) -> Vec<Op> {
        let c = crate::compile(src, "Net");
        assert!(!c.has_errors(), "{:?}", c.diagnostics);
        c.models[0].layers.iter().map(|l| l.op.clone()).collect()
    }

    #[test]
    fn layer_text_leaves_out_defaults() {
        let texts: Vec<String> = ops(
            "input 32x32x3; conv 8 3x3; conv 8 3x3 stride 1 valid linear; avgpool 2 stride 2; \
             flatten; dense 10",
        )
        .iter()
        .map(layer_text)
        .collect();
        assert_eq!(
            texts,
            [
                "conv 8 3x3",
                "conv 8 3x3",
                "avgpool 2",
                "flatten",
                "dense 10"
            ]
        );
    }

    #[test]
    fn layer_text_writes_every_other_option() {
        let texts: Vec<String> = ops(
            "input 40x40x3; conv 8 3x5 stride 2x1 same dilation 2 relu; \
             maxpool 3 stride 2 same; minpool 2x3; sigmoid; flatten; dense 4 softmax",
        )
        .iter()
        .map(layer_text)
        .collect();
        assert_eq!(
            texts,
            [
                "conv 8 3x5 stride 2x1 same dilation 2 relu",
                "maxpool 3 stride 2 same",
                "minpool 2x3",
                "sigmoid",
                "flatten",
                "dense 4 softmax"
            ]
        );
    }

    #[test]
    fn layer_text_reads_back_as_the_same_layer() {
        let src = "input 20x20x3; conv 8 3x3 stride 2 same dilation 2 tanh; \
                   maxpool 3 stride 2 same; relu; flatten; dense 5 sigmoid";
        let first = ops(src);
        let again: Vec<String> = first.iter().map(layer_text).collect();
        let round = ops(&format!("input 20x20x3; {}", again.join("; ")));
        assert_eq!(first, round);
    }

    /// Every language-2 statement, with options away from their defaults,
    /// comes back from the IR as written, and reads back as the same layer.
    #[test]
    fn language_2_texts_round_trip() {
        let lines = [
            "conv 8 3x3 stride 2 groups 2 nobias pad 1 leaky_relu 0.1",
            "dwconv 3x3 same multiplier 2 relu6",
            "sepconv 8 3x3 same dilation 2 nobias silu",
            "deconv 4 3x3 stride 2 same hard_silu",
            "maxpool 3 stride 2 pad 1",
            "avgpool 2 pad 1x0",
            "batchnorm momentum 0.9 epsilon 0.00001 noscale",
            "zeropad 1x2",
            "zeropad 0x1x0x1",
            "upsample 2x1 bilinear",
            "dropout 0.25",
            "minpool 2 pad 1",
            "dwconv 2x2 stride 2 dilation 2 nobias pad 2x1 elu",
            "globalmaxpool",
            "batchnorm nocenter",
            "dense 10 nobias gelu",
            "leaky_relu 0.2",
            "dense 6 selu",
            "softplus",
            "hard_sigmoid",
            "leaky_relu",
            "linear",
        ];
        let src = format!("input 16x16x4; {}", lines.join("; "));
        let first = ops(&src);
        let texts: Vec<String> = first.iter().map(layer_text).collect();
        assert_eq!(texts, lines);
        let round = ops(&format!("input 16x16x4; {}", texts.join("; ")));
        assert_eq!(first, round);
        // Defaults and aliases come back in their one written form.
        let texts: Vec<String> = ops(
            "input 8x8x3; conv 4 1x1 swish groups 1 pad 0; dwconv 3x3 multiplier 1 hard_swish; \
             upsample 2 nearest; batchnorm momentum 0.99 epsilon 1e-3; globalavgpool; \
             leaky_relu 0.3; dropout 0.5",
        )
        .iter()
        .map(layer_text)
        .collect();
        assert_eq!(
            texts,
            [
                "conv 4 1x1 silu",
                "dwconv 3x3 hard_silu",
                "upsample 2",
                "batchnorm",
                "globalavgpool",
                "leaky_relu",
                "dropout 0.5"
            ]
        );
    }

    #[test]
    fn shapes_are_short() {
        assert_eq!(shape_text(&Shape::Image { h: 28, w: 14, c: 6 }), "28x14x6");
        assert_eq!(shape_text(&Shape::Vector { n: 120 }), "120");
        assert_eq!(dims_text(&[12, 12, 3]), "12x12x3");
        assert_eq!(dims_text(&[]), "");
    }
}
