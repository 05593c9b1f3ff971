//! Short texts naming a layer and a shape, as a user writes them in a `.cnn`
//! file: one implementation for every place that labels a model (generated
//! summaries, `cnnc diagram`, `cnnc viz`, error messages).

use crate::ir::{Activation, Op, Padding, Shape};
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
    let act = |a: Activation| {
        if a == Activation::Linear {
            String::new()
        } else {
            format!(" {}", a.keyword())
        }
    };
    match op {
        Op::Conv(c) => {
            let mut s = format!("conv {} {}x{}", c.filters, c.kernel[0], c.kernel[1]);
            if c.stride != [1, 1] {
                let _ = write!(s, " stride {}", pair(c.stride));
            }
            if c.padding == Padding::Same {
                s.push_str(" same");
            }
            if c.dilation != [1, 1] {
                let _ = write!(s, " dilation {}", pair(c.dilation));
            }
            s + &act(c.activation)
        }
        Op::Pool(p) => {
            let mut s = format!("{} {}", p.kind.keyword(), pair(p.window));
            if p.stride != p.window {
                let _ = write!(s, " stride {}", pair(p.stride));
            }
            if p.padding == Padding::Same {
                s.push_str(" same");
            }
            s
        }
        Op::Flatten => "flatten".into(),
        Op::Dense(d) => format!("dense {}", d.units) + &act(d.activation),
        Op::Activation(a) => a.keyword().into(),
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

    #[test]
    fn shapes_are_short() {
        assert_eq!(shape_text(&Shape::Image { h: 28, w: 14, c: 6 }), "28x14x6");
        assert_eq!(shape_text(&Shape::Vector { n: 120 }), "120");
        assert_eq!(dims_text(&[12, 12, 3]), "12x12x3");
        assert_eq!(dims_text(&[]), "");
    }
}
