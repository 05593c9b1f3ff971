//! Workloads on generated code (`*_generated`): the same models, batches, inputs
//! and optimizer as the interpreter's `lenet_*` / `seed150_*` workloads, with the
//! model written with `cnn!` instead of interpreted, so the two rows compare
//! directly.

use super::{forward_flops, lenet, seed150, workload, Workloads};
use cnn::cnn;

// The benchmark LeNet-5 and the 150x150x3 course model, from their files:
// `Lenet5` (examples/models/lenet5.cnn) and `Seed` (examples/models/seed.cnn).
cnn!(include "examples/models/lenet5.cnn");
cnn!(include "examples/models/seed.cnn");

/// Adds the generated-code workloads.
pub fn register(w: &mut Workloads) {
    let lenet_flops = forward_flops(&lenet().1);
    let seed_flops = forward_flops(&seed150().1);
    workload(
        w,
        "lenet_train_b64_generated",
        Lenet5::new(1),
        lenet_flops,
        64,
        true,
    );
    workload(
        w,
        "lenet_infer_b256_generated",
        Lenet5::new(1),
        lenet_flops,
        256,
        false,
    );
    workload(
        w,
        "seed150_infer_b8_generated",
        Seed::new(1),
        seed_flops,
        8,
        false,
    );
    workload(
        w,
        "seed150_train_b8_generated",
        Seed::new(1),
        seed_flops,
        8,
        true,
    );
}
