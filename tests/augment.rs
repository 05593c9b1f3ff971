//! The augmentation layers through whole models: `randomflip horizontal`
//! flips about half the images in training and none in inference; draws
//! follow the model's seed and the training pass (and not the batch's split
//! into parts: `ops::augment`'s unit tests); the
//! interpreter and generated code draw the same transforms; and gradients
//! flow back through an augmentation placed after a layer with weights.

mod codegen_support;

use cnn::ndarray::Array4;
use cnn::runtime::interp::Sequential;
use cnn::runtime::Model;
use codegen_support::{flat, XorShift};

fn interp(src: &str, seed: u64) -> Sequential {
    let c = cnn_compiler::compile(src, "Augment");
    assert!(!c.has_errors(), "{src}: {:?}", c.diagnostics);
    cnn::lower::interpreter(&c.models[0], seed).expect("plan")
}

/// `n` images `h x w x 1` whose every value differs from every other.
fn distinct(n: usize, h: usize, w: usize) -> Array4<f32> {
    Array4::from_shape_fn((n, h, w, 1), |(i, r, q, _)| (i * h * w + r * w + q) as f32)
}

/// Each image of `y` is `x`'s or its mirror image (columns reversed): the
/// number mirrored.
fn count_flipped(x: &Array4<f32>, y: &[f32]) -> usize {
    let (n, h, w, _) = x.dim();
    let mut flipped = 0;
    for i in 0..n {
        let got = &y[i * h * w..(i + 1) * h * w];
        let same = (0..h * w).all(|p| got[p] == x[[i, p / w, p % w, 0]]);
        let mirror = (0..h * w).all(|p| got[p] == x[[i, p / w, w - 1 - p % w, 0]]);
        assert!(
            same != mirror,
            "image {i} is neither itself nor its mirror image"
        );
        flipped += usize::from(mirror);
    }
    flipped
}

#[test]
fn randomflip_flips_about_half_in_training_and_none_in_inference() {
    let src = "input 5x6x1; randomflip horizontal";
    let x = distinct(10_000, 5, 6);
    let mut m = interp(src, 7);
    let y = flat(m.forward_train_batch(x.view()).unwrap());
    let flipped = count_flipped(&x, &y);
    println!("randomflip horizontal: {flipped} of 10000 images flipped");
    // 2% of 10^4 is 200, over 4 standard deviations (50) of a fair coin.
    assert!(
        (flipped as i64 - 5_000).abs() <= 200,
        "{flipped} of 10000 flipped"
    );
    // The next training pass draws afresh; inference never flips.
    let again = flat(m.forward_train_batch(x.view()).unwrap());
    assert_ne!(again, y, "a second pass drew the same flips");
    assert_eq!(
        count_flipped(&x, &flat(m.forward_batch(x.view()).unwrap())),
        0
    );
    assert_eq!(
        count_flipped(&x, &flat(m.predict_batch(x.view()).unwrap())),
        0
    );
}

#[test]
fn draws_follow_the_seed() {
    let src = "input 9x8x2; randomflip; randomtranslate 0.2 0.1; randomrotate 0.1; randomzoom 0.2";
    let mut rng = XorShift(3);
    let x = Array4::from_shape_fn((12, 9, 8, 2), |_| rng.unit());
    let whole = flat(interp(src, 5).forward_train_batch(x.view()).unwrap());
    assert_eq!(
        whole,
        flat(interp(src, 5).forward_train_batch(x.view()).unwrap()),
        "the same seed drew differently"
    );
    assert_ne!(
        whole,
        flat(interp(src, 6).forward_train_batch(x.view()).unwrap())
    );
    // Inference is the identity, whatever the layers.
    assert_eq!(
        flat(interp(src, 5).forward_batch(x.view()).unwrap()),
        flat(x.iter())
    );
}

cnn::cnn! { model AugNet {
    input 8x8x1;
    randomflip; randomtranslate 0.1; randomrotate 0.05; randomzoom 0.1;
    conv 4 3x3 same relu; randomflip vertical; flatten; dense 3 softmax
} }

/// Generated code draws the same transforms as the interpreter, and a
/// training step through an augmentation after a conv gives the same
/// gradients both ways (so the backward pass runs through it).
#[test]
fn generated_code_augments_as_the_interpreter_does() {
    let src = "input 8x8x1; randomflip; randomtranslate 0.1; randomrotate 0.05; \
               randomzoom 0.1; conv 4 3x3 same relu; randomflip vertical; flatten; \
               dense 3 softmax";
    let mut i = interp(src, 11);
    let mut g = AugNet::new(11);
    let mut rng = XorShift(9);
    let x = Array4::from_shape_fn((6, 8, 8, 1), |_| rng.unit());
    let yi = flat(i.forward_train_batch(x.view()).unwrap());
    let yg = flat(Model::forward_train_batch(&mut g, x.view()).unwrap());
    assert_eq!(yi, yg, "training outputs");
    let dy = cnn::ndarray::ArrayD::from_shape_fn(vec![6, 3], |_| rng.unit());
    Model::backward(&mut i, dy.view()).unwrap();
    Model::backward(&mut g, dy.view()).unwrap();
    let gi: Vec<Vec<f32>> = Model::grads(&i)
        .iter()
        .map(|p| flat(p.data.iter()))
        .collect();
    let gg: Vec<Vec<f32>> = Model::grads(&g)
        .iter()
        .map(|p| flat(p.data.iter()))
        .collect();
    assert_eq!(gi, gg, "gradients");
    assert!(
        gi[0].iter().any(|v| *v != 0.0),
        "no gradient reached the conv"
    );
}
