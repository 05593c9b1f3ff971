//! The networks of `examples/models/` that have a `keras.applications` twin,
//! written with blocks: their parameter counts are Keras's (built with
//! `weights=None`, 224x224x3, 1,000 classes; the totals `model.summary()`
//! prints), every top-level statement gives the shape Keras's stage
//! gives, and every layer, nested ones included, has its Keras twin with the
//! same output shape and parameter counts (`keras/applications.json`, written
//! by real Keras with `keras/regenerate.sh`). Also the ResNet-20s and the U-Net.

use cnn_compiler::ir::{Model, Shape};
use std::path::Path;

fn example(file: &str) -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/models")
        .join(file);
    let src = std::fs::read_to_string(&path).unwrap();
    let c = cnn_compiler::compile(&src, "Example");
    assert!(!c.has_errors(), "{file}: {:?}", c.diagnostics);
    assert_eq!(c.models.len(), 1);
    c.models.into_iter().next().unwrap()
}

/// `(total, trainable)` parameters.
fn counts(m: &Model) -> (u64, u64) {
    (m.total_params, m.total_params - m.non_trainable_params)
}

fn img(h: usize, c: usize) -> Shape {
    Shape::Image { h, w: h, c }
}

/// The output of each top-level statement, in order.
fn outputs(m: &Model) -> Vec<Shape> {
    m.layers.iter().map(|l| l.output).collect()
}

#[test]
fn resnet50_is_keras_resnet50() {
    let m = example("resnet50.cnn");
    assert_eq!(counts(&m), (25_636_712, 25_583_592));
    let v = Shape::Vector { n: 2048 };
    let mut want = vec![img(230, 3), img(112, 64), img(112, 64), img(112, 64)];
    want.extend([img(114, 64), img(56, 64)]);
    // project + repeat per stage: conv2_block1..3 ... conv5_block1..3.
    for (h, c) in [(56, 256), (28, 512), (14, 1024), (7, 2048)] {
        want.extend([img(h, c), img(h, c)]);
    }
    want.extend([v, Shape::Vector { n: 1000 }]);
    assert_eq!(outputs(&m), want);
    // 16 bottleneck blocks: 3 + 4 + 6 + 3, 53 convs with the stem.
    let convs = m
        .walk()
        .iter()
        .filter(|(_, l)| l.op.keyword() == "conv")
        .count();
    assert_eq!(convs, 53);
}

#[test]
fn mobilenet_v2_is_keras_mobilenet_v2() {
    let m = example("mobilenet_v2.cnn");
    assert_eq!(counts(&m), (3_538_984, 3_504_872));
    let shapes = outputs(&m);
    // Stem, the first block's depthwise and projection, then blocks 1..16.
    assert_eq!(shapes[2], img(112, 32));
    assert_eq!(shapes[5], img(112, 32));
    assert_eq!(shapes[7], img(112, 16));
    let blocks: Vec<Shape> = shapes[8..18].to_vec();
    let want = [
        img(56, 24),
        img(56, 24),
        img(28, 32),
        img(28, 32),
        img(14, 64),
        img(14, 64),
        img(14, 96),
        img(14, 96),
        img(7, 160),
        img(7, 160),
    ];
    assert_eq!(blocks, want);
    assert_eq!(shapes[18], img(7, 320));
    assert_eq!(shapes[21], img(7, 1280));
    assert_eq!(
        &shapes[22..],
        [Shape::Vector { n: 1280 }, Shape::Vector { n: 1000 }]
    );
    // 10 inverted residual blocks add their input (Keras's 10 `Add` layers).
    let adds = m
        .walk()
        .iter()
        .filter(|(_, l)| l.op.keyword() == "residual")
        .count();
    assert_eq!(adds, 10);
}

#[test]
fn vgg16_is_keras_vgg16() {
    let m = example("vgg16.cnn");
    assert_eq!(counts(&m), (138_357_544, 138_357_544));
    let mut want: Vec<Shape> = [(112, 64), (56, 128), (28, 256), (14, 512), (7, 512)]
        .into_iter()
        .map(|(h, c)| img(h, c))
        .collect();
    want.extend([25_088, 4096, 4096, 1000].map(|n| Shape::Vector { n }));
    assert_eq!(outputs(&m), want);
}

#[test]
fn resnet20s_and_the_unet() {
    // He et al.'s ResNet-20 for CIFAR-10: 0.27M parameters.
    let m = example("resnet20.cnn");
    assert_eq!(m.total_params, 274_042);
    assert_eq!(m.output(), Shape::Vector { n: 10 });
    let convs = m
        .walk()
        .iter()
        .filter(|(_, l)| l.op.keyword() == "conv")
        .count();
    assert_eq!(convs, 19 + 2, "19 3x3 convs and two 1x1 projections");
    let f = example("resnet20_fashion.cnn");
    assert_eq!(f.input, img(28, 1));
    assert_eq!(f.layers[f.layers.len() - 3].output, img(7, 64));
    let u = example("unet_small.cnn");
    assert_eq!(u.output(), img(64, 2));
    assert_eq!(u.layers[2].output, img(64, 16 + 16));
}

/// A layer as both sides can name it: the statement's keyword, the activation
/// it ends in (for layers with weights), its output and its parameters
/// (trainable, not).
type Twin = (String, String, Vec<usize>, u64, u64);

fn dims(s: &Shape) -> Vec<usize> {
    match *s {
        Shape::Image { h, w, c } => vec![h, w, c],
        Shape::Vector { n } => vec![n],
    }
}

/// Our layers, nested ones included: a `residual` or `add` is Keras's `Add`;
/// a `repeat` or a block use is no layer of its own.
fn our_layers(m: &Model) -> Vec<Twin> {
    let mut out = Vec::new();
    for (_, l) in m.walk() {
        let (op, act) = match (&l.op, l.op.activation()) {
            (cnn_compiler::ir::Op::Graph(g), _) if !g.joins() => continue,
            (_, _) if l.op.keyword() == "residual" => ("add".to_string(), String::new()),
            (cnn_compiler::ir::Op::Activation(_), _) | (_, None) => {
                (l.op.keyword().to_string(), String::new())
            }
            (_, Some(a)) => (l.op.keyword().to_string(), a.keyword().to_string()),
        };
        // A join's own row carries the totals of its branches; the join
        // itself (Keras's `Add`) has no weights.
        let (all, frozen) = match l.op {
            cnn_compiler::ir::Op::Graph(_) => (0, 0),
            _ => (l.param_count, l.non_trainable),
        };
        out.push((op, act, dims(&l.output), all - frozen, frozen));
    }
    out
}

/// Keras's layers from `keras/applications.json` (made by
/// `keras/applications_shapes.py` with Keras 3.15.1), named as ours are.
fn keras_layers(file: &str) -> Vec<Twin> {
    let text = include_str!("keras/applications.json");
    let all: serde_json::Value = serde_json::from_str(text).unwrap();
    let layers = all["models"][file]["layers"].as_array().unwrap();
    layers
        .iter()
        .map(|l| {
            let class = l["class"].as_str().unwrap();
            let act = l["activation"].as_str().unwrap_or("").to_string();
            let (op, act) = match class {
                "Conv2D" => ("conv", act),
                "DepthwiseConv2D" => ("dwconv", act),
                "Dense" => ("dense", act),
                "BatchNormalization" => ("batchnorm", String::new()),
                "ZeroPadding2D" => ("zeropad", String::new()),
                "MaxPooling2D" => ("maxpool", String::new()),
                "GlobalAveragePooling2D" => ("globalavgpool", String::new()),
                "Flatten" => ("flatten", String::new()),
                "Add" => ("add", String::new()),
                "ReLU" if l["max_value"].as_f64() == Some(6.0) => ("relu6", String::new()),
                "Activation" => {
                    let op = match act.as_str() {
                        "relu" => "relu",
                        other => panic!("{file}: Keras activation {other} has no twin here"),
                    };
                    (op, String::new())
                }
                other => panic!("{file}: Keras layer {other} has no twin here"),
            };
            let out = l["output"].as_array().unwrap();
            (
                op.to_string(),
                act,
                out.iter().map(|d| d.as_u64().unwrap() as usize).collect(),
                l["trainable"].as_u64().unwrap(),
                l["non_trainable"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Every layer of the `.cnn` twin is a layer of Keras's model with the same
/// kind, activation, output shape and parameter counts, and the other way
/// round. Compared as multisets: Keras lists a projection shortcut's layers
/// between the body's, we list the body first.
#[test]
fn every_layer_is_a_keras_layer() {
    for file in ["resnet50.cnn", "mobilenet_v2.cnn", "vgg16.cnn"] {
        let mut ours = our_layers(&example(file));
        let mut keras = keras_layers(file);
        assert_eq!(ours.len(), keras.len(), "{file}: number of layers");
        ours.sort();
        keras.sort();
        for (o, k) in ours.iter().zip(&keras) {
            assert_eq!(o, k, "{file}: first layer that differs (sorted)");
        }
    }
}
