//! `cnnc export --to keras`: a Python program that builds a checked model
//! with Keras 3's functional API, for training on Keras's engines (JAX,
//! TensorFlow, PyTorch; one machine or many).
//!
//! Every Keras layer is named by the statement's path (`layer5.0.1`), so
//! that the weights file's tensors (`layer5.0.1.kernel`) load by name, and
//! a `.keras` file saved by the program keeps the names. What Keras has no
//! layer for (a min pool, a pool with `pad`) is a `Lambda` of Keras ops.

use crate::ir::{
    Activation, Augment, Graph, GraphKind, Interpolation, Layer, Model, Op, Padding, PoolKind,
    Shape,
};
use std::fmt::Write as _;

/// The program for model `m` (compiled from `from`, named in its docstring);
/// with `weights`, the file it loads when run without `--weights`.
///
/// ```
/// let c = cnn_compiler::compile("input 8x8x1; conv 4 3x3 same relu; flatten; dense 2 softmax", "Tiny");
/// let py = cnn_compiler::keras_program::keras_program(&c.models[0], "tiny.cnn", None);
/// assert!(py.contains(r#"layers.Conv2D(4, (3, 3), strides=(1, 1), padding="same""#));
/// assert!(py.contains(r#""layer0": ["kernel", "bias"]"#));
/// ```
pub fn keras_program(m: &Model, from: &str, weights: Option<&str>) -> String {
    let mut p = Program::default();
    let out = p.chain(&m.layers, "inputs".to_string());
    let Shape::Image { h, w, c } = m.input else {
        unreachable!("a model's input is an image")
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#""""{name} as a Keras 3 model: written by `cnnc export --to keras` from {from}.

Builds the model with Keras's functional API (each layer named by its path in
the .cnn file: layer `layer5.0.1` holds the tensors `layer5.0.1.kernel`, ...),
loads the weights when given (.npz or .safetensors, as cnnc writes them) and
prints the summary.

    python {{this file}} [--weights W] [--predict X.npy --output Y.npy] [--save M.keras]

A min pool or a pool with `pad` is a Lambda layer: load a saved .keras file
of such a model with `keras.saving.load_model(path, safe_mode=False)`.
"""

import argparse

import keras
import numpy as np
from keras import layers, ops

# Each layer's tensors, in Keras's order of `layer.weights`.
WEIGHTS = {{
"#,
        name = m.name,
        from = python_text(from),
    );
    for (layer, names) in &p.weights {
        let names: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        let _ = writeln!(s, "    \"{layer}\": [{}],", names.join(", "));
    }
    let _ = write!(
        s,
        r#"}}


def build():
    """The model, with freshly initialised weights."""
    inputs = keras.Input(shape=({h}, {w}, {c}), name="input")
{body}    return keras.Model(inputs, {out}, name="{name}")


def load_weights(model, path):
    """Sets every layer's weights from a .npz or .safetensors file of cnnc's."""
    if path.endswith(".safetensors"):
        from safetensors.numpy import load_file

        arrays = load_file(path)
    else:
        arrays = dict(np.load(path))
    for name, tensors in WEIGHTS.items():
        model.get_layer(name).set_weights([arrays[f"{{name}}.{{t}}"] for t in tensors])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default={weights}, help="a .npz or .safetensors file written by cnnc")
    parser.add_argument("--predict", help="inputs as a .npy array (N, H, W, C)")
    parser.add_argument("--output", help="where --predict writes the outputs (.npy)")
    parser.add_argument("--save", help="save the model as a .keras file")
    args = parser.parse_args()
    model = build()
    if args.weights:
        load_weights(model, args.weights)
    model.summary()
    if args.predict:
        y = model.predict(np.load(args.predict).astype("float32"), verbose=0)
        np.save(args.output or "predictions.npy", y)
    if args.save:
        model.save(args.save)


if __name__ == "__main__":
    main()
"#,
        name = m.name,
        body = p.body,
        out = out,
        weights = weights.map_or("None".to_string(), |w| format!("{:?}", python_text(w))),
    );
    s
}

/// The program being written: the body of `build()` and the weights table.
#[derive(Default)]
struct Program {
    body: String,
    weights: Vec<(String, Vec<&'static str>)>,
    /// Variables named so far (`x1`, `x2`, ...).
    vars: usize,
}

impl Program {
    /// Emits `xN = expr` and returns `xN`.
    fn assign(&mut self, expr: String) -> String {
        self.vars += 1;
        let v = format!("x{}", self.vars);
        let _ = writeln!(self.body, "    {v} = {expr}");
        v
    }

    /// The layers of a chain one after the other from `x`: the last output.
    fn chain(&mut self, chain: &[Layer], mut x: String) -> String {
        for l in chain {
            x = self.layer(l, &x);
        }
        x
    }

    /// One statement applied to `x`: its output.
    fn layer(&mut self, l: &Layer, x: &str) -> String {
        let name = format!("layer{}", l.path);
        if !l.params.is_empty() {
            self.weights
                .push((name.clone(), l.params.iter().map(|t| t.name).collect()));
        }
        let call = |this: &mut Program, layer: String, x: &str| {
            this.assign(format!("layers.{layer}({x})"))
        };
        match &l.op {
            Op::Graph(g) => self.graph(g, &name, x),
            Op::Conv(c) => {
                let x = self.explicit_pad(c.explicit_pad, &name, x);
                let (act, after) = split_activation(c.activation);
                let mut args = format!(
                    "{}, {}, strides={}, padding={}, dilation_rate={}",
                    c.filters,
                    tuple(c.kernel),
                    tuple(c.stride),
                    padding(c.padding),
                    tuple(c.dilation)
                );
                if c.groups > 1 {
                    let _ = write!(args, ", groups={}", c.groups);
                }
                let y = call(self, conv_like("Conv2D", args, c.bias, act, &name), &x);
                self.after(after, &name, y)
            }
            Op::DwConv(d) => {
                let x = self.explicit_pad(d.explicit_pad, &name, x);
                let (act, after) = split_activation(d.activation);
                let args = format!(
                    "{}, strides={}, padding={}, depth_multiplier={}, dilation_rate={}",
                    tuple(d.kernel),
                    tuple(d.stride),
                    padding(d.padding),
                    d.multiplier,
                    tuple(d.dilation)
                );
                let y = call(self, conv_like("DepthwiseConv2D", args, d.bias, act, &name), &x);
                self.after(after, &name, y)
            }
            Op::SepConv(d) => {
                let (act, after) = split_activation(d.activation);
                let args = format!(
                    "{}, {}, strides={}, padding={}, depth_multiplier={}, dilation_rate={}",
                    d.filters,
                    tuple(d.kernel),
                    tuple(d.stride),
                    padding(d.padding),
                    d.multiplier,
                    tuple(d.dilation)
                );
                let y = call(self, conv_like("SeparableConv2D", args, d.bias, act, &name), x);
                self.after(after, &name, y)
            }
            Op::Deconv(d) => {
                let (act, after) = split_activation(d.activation);
                let args = format!(
                    "{}, {}, strides={}, padding={}",
                    d.filters,
                    tuple(d.kernel),
                    tuple(d.stride),
                    padding(d.padding)
                );
                let y = call(self, conv_like("Conv2DTranspose", args, d.bias, act, &name), x);
                self.after(after, &name, y)
            }
            Op::Dense(d) => {
                let (act, after) = split_activation(d.activation);
                let args = d.units.to_string();
                let y = call(self, conv_like("Dense", args, d.bias, act, &name), x);
                self.after(after, &name, y)
            }
            Op::Pool(p) => {
                let (window, stride, pad) = (tuple(p.window), tuple(p.stride), p.explicit_pad);
                let how = padding(p.padding);
                let expr = match (p.kind, pad) {
                    (PoolKind::Max, [0, 0]) => format!(
                        "layers.MaxPooling2D({window}, strides={stride}, padding={how}, name=\"{name}\")"
                    ),
                    (PoolKind::Avg, [0, 0]) => format!(
                        "layers.AveragePooling2D({window}, strides={stride}, padding={how}, name=\"{name}\")"
                    ),
                    // The minimum is the negated maximum of the negated values
                    // (a `same` window leaves its padding out of both).
                    (PoolKind::Min, [0, 0]) => lambda(
                        &format!("-ops.max_pool(-t, {window}, {stride}, {how})"),
                        &name,
                    ),
                    // `pad P` cells are never chosen (max, min) nor counted (avg).
                    (kind, [ph, pw]) => {
                        let pads = format!("[[0, 0], [{ph}, {ph}], [{pw}, {pw}], [0, 0]]");
                        let pool = |t: &str, fill: &str| {
                            format!(
                                "ops.max_pool(ops.pad({t}, {pads}, constant_values={fill}), {window}, {stride}, \"valid\")"
                            )
                        };
                        let expr = match kind {
                            PoolKind::Max => pool("t", "-np.inf"),
                            PoolKind::Min => format!("-{}", pool("-t", "-np.inf")),
                            PoolKind::Avg => {
                                let avg = |t: &str| {
                                    format!("ops.average_pool(ops.pad({t}, {pads}), {window}, {stride}, \"valid\")")
                                };
                                format!("{} / {}", avg("t"), avg("ops.ones_like(t)"))
                            }
                        };
                        lambda(&expr, &name)
                    }
                };
                self.assign(format!("{expr}({x})"))
            }
            Op::Flatten => call(self, format!("Flatten(name=\"{name}\")"), x),
            Op::Activation(a) => call(self, activation_layer(*a, &name), x),
            Op::BatchNorm(b) => call(
                self,
                format!(
                    "BatchNormalization(momentum={}, epsilon={}, center={}, scale={}, name=\"{name}\")",
                    b.momentum.get(),
                    b.epsilon.get(),
                    py_bool(b.center),
                    py_bool(b.scale)
                ),
                x,
            ),
            Op::Dropout(r) => call(self, format!("Dropout({}, name=\"{name}\")", r.get()), x),
            Op::GlobalPool(k) => {
                let class = if *k == PoolKind::Max {
                    "GlobalMaxPooling2D"
                } else {
                    "GlobalAveragePooling2D"
                };
                call(self, format!("{class}(name=\"{name}\")"), x)
            }
            Op::ZeroPad(p) => call(
                self,
                format!(
                    "ZeroPadding2D((({}, {}), ({}, {})), name=\"{name}\")",
                    p.top, p.bottom, p.left, p.right
                ),
                x,
            ),
            Op::Upsample {
                size,
                interpolation,
            } => {
                let how = match interpolation {
                    Interpolation::Nearest => "nearest",
                    Interpolation::Bilinear => "bilinear",
                };
                call(
                    self,
                    format!(
                        "UpSampling2D(size={}, interpolation=\"{how}\", name=\"{name}\")",
                        tuple(*size)
                    ),
                    x,
                )
            }
            Op::Augment(a) => {
                let layer = match *a {
                    Augment::Flip {
                        horizontal,
                        vertical,
                    } => {
                        let mode = match (horizontal, vertical) {
                            (true, true) => "horizontal_and_vertical",
                            (true, false) => "horizontal",
                            _ => "vertical",
                        };
                        format!("RandomFlip(\"{mode}\", name=\"{name}\")")
                    }
                    Augment::Translate { height, width } => format!(
                        "RandomTranslation({}, {}, name=\"{name}\")",
                        height.get(),
                        width.get()
                    ),
                    Augment::Rotate(f) => format!("RandomRotation({}, name=\"{name}\")", f.get()),
                    Augment::Zoom(f) => format!("RandomZoom({}, name=\"{name}\")", f.get()),
                };
                call(self, layer, x)
            }
        }
    }

    /// A graph statement: joined branches, or chains one after the other.
    fn graph(&mut self, g: &Graph, name: &str, x: &str) -> String {
        if !g.joins() {
            // `repeat` and block uses are no Keras layer: their layers are.
            let mut x = x.to_string();
            for b in &g.branches {
                x = self.chain(b, x);
            }
            return x;
        }
        let outs: Vec<String> = g
            .branches
            .iter()
            .map(|b| self.chain(b, x.to_string()))
            .collect();
        let class = match g.kind {
            GraphKind::Concat => "Concatenate(axis=-1, ",
            _ => "Add(",
        };
        self.assign(format!(
            "layers.{class}name=\"{name}\")([{}])",
            outs.join(", ")
        ))
    }

    /// `ZeroPadding2D` before a conv with `pad P` (the oracle's Keras twin).
    fn explicit_pad(&mut self, pad: [usize; 2], name: &str, x: &str) -> String {
        if pad == [0, 0] {
            return x.to_string();
        }
        let [ph, pw] = pad;
        self.assign(format!(
            "layers.ZeroPadding2D((({ph}, {ph}), ({pw}, {pw})), name=\"{name}_pad\")({x})"
        ))
    }

    /// The activation a layer could not take as its `activation=` argument,
    /// as a layer of its own after it.
    fn after(&mut self, act: Option<Activation>, name: &str, y: String) -> String {
        match act {
            Some(a) => {
                let layer = activation_layer(a, &format!("{name}_act"));
                self.assign(format!("layers.{layer}({y})"))
            }
            None => y,
        }
    }
}

/// A layer with `use_bias` and `activation` arguments.
fn conv_like(class: &str, args: String, bias: bool, act: Activation, name: &str) -> String {
    format!(
        "{class}({args}, use_bias={}, activation=\"{}\", name=\"{name}\")",
        py_bool(bias),
        act.keyword()
    )
}

/// The activation to pass as a layer's `activation=` (Keras's string for
/// it) and the one to apply after it: Keras's `"leaky_relu"` string has
/// another slope than the language's, so a leaky relu is a layer of its own.
fn split_activation(a: Activation) -> (Activation, Option<Activation>) {
    match a {
        Activation::LeakyRelu(_) => (Activation::Linear, Some(a)),
        _ => (a, None),
    }
}

/// An activation written as a statement of its own, as a Keras layer.
fn activation_layer(a: Activation, name: &str) -> String {
    match a {
        Activation::Relu6 => format!("ReLU(max_value=6.0, name=\"{name}\")"),
        Activation::LeakyRelu(s) => {
            format!("LeakyReLU(negative_slope={}, name=\"{name}\")", s.get())
        }
        Activation::Elu => format!("ELU(name=\"{name}\")"),
        _ => format!("Activation(\"{}\", name=\"{name}\")", a.keyword()),
    }
}

/// A `Lambda` layer computing `expr` of its input `t`.
fn lambda(expr: &str, name: &str) -> String {
    format!("layers.Lambda(lambda t: {expr}, name=\"{name}\")")
}

fn tuple([a, b]: [usize; 2]) -> String {
    format!("({a}, {b})")
}

fn padding(p: Padding) -> &'static str {
    match p {
        Padding::Same => "\"same\"",
        Padding::Valid => "\"valid\"",
    }
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `text` made safe inside a Python docstring.
fn python_text(text: &str) -> String {
    text.replace('\\', "/").replace("\"\"\"", "'''")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(src: &str) -> String {
        let c = crate::compile(src, "Net");
        assert!(!c.has_errors(), "{:?}", c.diagnostics);
        keras_program(&c.models[0], "net.cnn", Some("net.safetensors"))
    }

    #[test]
    fn layers_are_named_by_path_and_weights_listed_in_keras_order() {
        let py = program(
            "input 8x8x3; conv 4 3x3 same nobias; batchnorm noscale; leaky_relu 0.1; \
             residual { sepconv 4 3x3 same relu6 } ; flatten; dense 2 softmax",
        );
        for want in [
            r#"layers.Conv2D(4, (3, 3), strides=(1, 1), padding="same", dilation_rate=(1, 1), use_bias=False, activation="linear", name="layer0")(inputs)"#,
            r#"layers.BatchNormalization(momentum=0.99, epsilon=0.001, center=True, scale=False, name="layer1")(x1)"#,
            r#"layers.LeakyReLU(negative_slope=0.1, name="layer2")(x2)"#,
            r#"activation="relu6", name="layer3.0.0")(x3)"#,
            r#"layers.Add(name="layer3")([x4, x3])"#,
            r#""layer1": ["beta", "moving_mean", "moving_variance"],"#,
            r#""layer3.0.0": ["depthwise_kernel", "pointwise_kernel", "bias"],"#,
            r#"return keras.Model(inputs, x7, name="Net")"#,
            r#"parser.add_argument("--weights", default="net.safetensors","#,
        ] {
            assert!(py.contains(want), "missing {want} in\n{py}");
        }
    }

    #[test]
    fn pools_keras_lacks_are_lambdas_of_ops() {
        let py = program(
            "input 8x8x3; minpool 2 stride 1 same; avgpool 3 pad 1; maxpool 3 stride 2 pad 1",
        );
        assert!(py.contains(r#"layers.Lambda(lambda t: -ops.max_pool(-t, (2, 2), (1, 1), "same"), name="layer0")"#), "{py}");
        assert!(py.contains("ops.average_pool(ops.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]]), (3, 3), (3, 3), \"valid\") / ops.average_pool(ops.pad(ops.ones_like(t)"), "{py}");
        assert!(
            py.contains("constant_values=-np.inf), (3, 3), (2, 2), \"valid\")"),
            "{py}"
        );
    }

    #[test]
    fn a_leaky_relu_option_becomes_a_layer_of_its_own() {
        let py = program("input 4x4x1; conv 2 3x3 leaky_relu 0.2; flatten");
        assert!(
            py.contains(r#"activation="linear", name="layer0")(inputs)"#),
            "{py}"
        );
        assert!(
            py.contains(r#"layers.LeakyReLU(negative_slope=0.2, name="layer0_act")(x1)"#),
            "{py}"
        );
    }
}
