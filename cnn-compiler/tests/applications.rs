//! The networks of `examples/models/` that have a `keras.applications` twin,
//! written with blocks: their parameter counts are Keras's (built with
//! `weights=None`, 224x224x3, 1,000 classes; the totals `model.summary()`
//! prints), and every top-level statement gives the shape Keras's stage
//! gives. Also the ResNet-20s and the U-Net.

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
