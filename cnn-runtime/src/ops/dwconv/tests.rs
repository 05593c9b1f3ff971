//! The vector paths against the portable one (forced with
//! [`crate::cpu::portable`]); under `CNN_PORTABLE=1` both sides are portable,
//! under `CNN_PORTABLE=avx2` the AVX2 kernels are compared.

use super::gradcheck::spec;
use super::{dwconv_backward, dwconv_forward};
use crate::ops::{Grads, Operands};
use crate::testing::{assert_close, noise};
use crate::{Activation, Conv2dSpec};

/// Forward output, then input, kernel and bias gradients, of one spec.
fn run(s: &Conv2dSpec, batch: usize, bias: bool, act: Activation) -> [Vec<f32>; 4] {
    let x = noise(batch * s.in_h * s.in_w * s.in_c, 1);
    let k = noise(s.kh * s.kw * s.out_c, 2);
    let b = noise(s.out_c, 3);
    let op = Operands {
        batch,
        x: &x,
        kernel: &k,
        bias: bias.then_some(&b[..]),
    };
    let y_len = batch * s.out_h * s.out_w * s.out_c;
    // NaN first: every value must be written.
    let mut y = vec![f32::NAN; y_len];
    dwconv_forward(s, act, op, &mut y);
    let dz = noise(y_len, 4);
    let (mut dx, mut dk, mut db) = (
        vec![f32::NAN; x.len()],
        vec![0.0; k.len()],
        vec![0.0; s.out_c],
    );
    let grads = Grads {
        dx: Some(&mut dx),
        dkernel: &mut dk,
        dbias: bias.then_some(&mut db[..]),
    };
    dwconv_backward(s, op, &dz, grads);
    [y, dx, dk, db]
}

#[test]
fn vector_and_portable_paths_agree() {
    // (h, w, c, multiplier, k, stride, dilation, same)
    let shapes = [
        (12, 21, 32, 1, 3, 1, 1, true),
        (13, 20, 17, 1, 3, 2, 1, true),
        (11, 30, 33, 1, 3, 1, 2, true),
        (9, 26, 19, 1, 5, 1, 1, false),
        (10, 23, 3, 1, 3, 2, 2, false),
        (8, 19, 16, 2, 3, 1, 1, true),
        (7, 18, 5, 2, 3, 2, 1, false),
        (6, 40, 48, 1, 2, 1, 1, true),
        (5, 3, 8, 1, 3, 1, 1, true),
        (4, 9, 24, 1, 1, 1, 1, false),
    ];
    let acts = [Activation::Linear, Activation::Relu6, Activation::Relu];
    for (i, &(h, w, c, m, k, st, d, same)) in shapes.iter().enumerate() {
        let s = spec(h, w, c, m, k, st, d, same);
        for bias in [true, false] {
            let act = acts[i % acts.len()];
            let batch = 1 + i % 3;
            let fast = run(&s, batch, bias, act);
            let slow = crate::cpu::portable(|| run(&s, batch, bias, act));
            for (j, name) in ["y", "dx", "dk", "db"].into_iter().enumerate() {
                assert!(fast[j].iter().all(|v| v.is_finite()), "{s:?} {name}");
                let what = format!("{s:?} bias {bias} {act:?} {name}");
                assert_close(&what, &fast[j], &slow[j], 1e-5);
            }
        }
    }
}

/// Layers large enough for the pool to split the forward pass's rows: it
/// agrees within rounding (the wide kernels fuse multiply and add); the
/// backward pass gives the same bits on the wide and portable builds (element
/// by element in both).
#[test]
fn split_layers_agree_and_backward_bits_are_the_same() {
    for (h, w, c, m, st) in [(24, 26, 48, 1, 1), (20, 21, 20, 2, 2), (30, 17, 35, 1, 2)] {
        let s = spec(h, w, c, m, 3, st, 1, true);
        let fast = run(&s, 2, true, Activation::Relu6);
        let slow = crate::cpu::portable(|| run(&s, 2, true, Activation::Relu6));
        assert_close(&format!("{s:?} y"), &fast[0], &slow[0], 1e-5);
        for (j, name) in [(1, "dx"), (2, "dk"), (3, "db")] {
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert!(bits(&fast[j]) == bits(&slow[j]), "{s:?} {name}");
        }
    }
}
