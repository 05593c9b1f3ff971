//! Workloads on generated code (`*_generated`): the same models, batches, inputs
//! and optimizer as the interpreter's `lenet_*` / `seed150_*` workloads, with the
//! model written with `cnn!` instead of interpreted, so the two rows compare
//! directly.

use super::{forward_flops, lenet, noise, seed150, PlainSgd, Workloads};
use cnn::cnn;
use cnn::ndarray::Array4;
use cnn::runtime::Model;
use std::hint::black_box;

cnn! {
    // The benchmark LeNet-5 (examples/models/lenet5.cnn).
    model LeNet5 {
        input 28x28x1;
        conv 6 5x5 same tanh;
        avgpool 2;
        conv 16 5x5 tanh;
        avgpool 2;
        flatten;
        dense 120 tanh;
        dense 84 tanh;
        dense 10 softmax;
    }
    // The 150x150x3 course model (examples/models/seed.cnn).
    model Seed150 {
        input 150x150x3;
        conv 32 3x3 same relu;
        maxpool 2;
        conv 32 4x4 valid;
        maxpool 2;
        flatten;
        dense 256 relu;
        dense 5 softmax;
    }
}

/// One generated-model workload: training steps (softmax CE, plain SGD) or
/// inference through `forward_view` (no output copy, as `Model::forward_batch`).
fn workload<M: Model + 'static>(
    w: &mut Workloads,
    name: &str,
    mut net: M,
    flops: f64,
    batch: usize,
    train: bool,
) {
    let [h, wd, c] = net.input_shape();
    let classes = net.output_shape().iter().product::<usize>();
    let x = Array4::from_shape_vec((batch, h, wd, c), noise(batch * h * wd * c, 7)).expect("x");
    let labels: Vec<usize> = (0..batch).map(|i| i % classes).collect();
    let mut opt = PlainSgd(0.01);
    let flops = flops * batch as f64 * if train { 3.0 } else { 1.0 };
    w.add(name, batch as f64, flops, move || {
        if train {
            black_box(
                net.train_batch(x.view(), &labels, &mut opt)
                    .expect("train step"),
            );
        } else {
            black_box(net.forward_batch(x.view()).expect("forward")[[0, 0]]);
        }
    });
}

/// Adds the generated-code workloads.
pub fn register(w: &mut Workloads) {
    let lenet_flops = forward_flops(&lenet().1);
    let seed_flops = forward_flops(&seed150().1);
    workload(
        w,
        "lenet_train_b64_generated",
        LeNet5::new(1),
        lenet_flops,
        64,
        true,
    );
    workload(
        w,
        "lenet_infer_b256_generated",
        LeNet5::new(1),
        lenet_flops,
        256,
        false,
    );
    workload(
        w,
        "seed150_infer_b8_generated",
        Seed150::new(1),
        seed_flops,
        8,
        false,
    );
    workload(
        w,
        "seed150_train_b8_generated",
        Seed150::new(1),
        seed_flops,
        8,
        true,
    );
}
