//! A concat's branches write their channels of its output in place
//! (`cnn_plan::Place`): which inputs the plan places, and that a placed concat
//! computes bit for bit what the same model computes with every branch
//! copied (each branch ended by a `dropout 0.0`, which writes a buffer of
//! its own): forward, predict, and training steps, in the interpreter and in
//! generated code.

mod codegen_support;

use cnn::ndarray::Array4;
use cnn::runtime::interp::Sequential;
use cnn::runtime::plan::{LayerSpec, Place, Plan};
use cnn::runtime::{Model, Sgd};
use codegen_support::{flat, randomize, XorShift};

fn interp(src: &str) -> Sequential {
    let c = cnn_compiler::compile(src, "Concat");
    assert!(!c.has_errors(), "{src}: {:?}", c.diagnostics);
    cnn::lower::interpreter(&c.models[0], 1).expect("plan")
}

/// Each placed buffer: the layer that writes it, and its place.
fn placed(plan: &Plan) -> Vec<(&'static str, Place)> {
    let mut v = Vec::new();
    for s in plan.steps.iter().filter(|s| s.input != s.output) {
        if let Some(p) = plan.buffers[s.output].place {
            let kind = match s.layer {
                LayerSpec::Conv2d { .. } => "conv",
                LayerSpec::Deconv2d { .. } => "deconv",
                LayerSpec::Activation { .. } => "activation",
                _ => "other",
            };
            assert_eq!(plan.buffers[p.buffer].len % p.stride, 0, "cells of {p:?}");
            v.push((kind, p));
        }
    }
    v
}

fn place(buffer: usize, at: usize, stride: usize) -> Place {
    Place { buffer, at, stride }
}

#[test]
fn the_plan_places_the_inputs_their_layers_can_write() {
    // Inception: the empty branch is the concat's input (read by the other
    // branches too), the others end in a conv.
    let src = include_str!("../examples/models/unet_small.cnn");
    let unet = interp(src);
    let got: Vec<_> = placed(unet.plan())
        .into_iter()
        .map(|(k, p)| (k, p.at, p.stride))
        .collect();
    // Each level's skip is read by its pool too: only the transposed convs
    // that bring the level below back up are placed.
    assert_eq!(got, [("deconv", 32, 64), ("deconv", 16, 32)], "U-Net");

    let m = interp(
        "input 8x8x4; concat { } { conv 4 1x1 relu; conv 4 3x3 same relu } \
         { maxpool 3 stride 1 same; conv 2 1x1 relu }",
    );
    let out = m.plan().steps.last().unwrap().output;
    assert_eq!(
        placed(m.plan()),
        [("conv", place(out, 4, 10)), ("conv", place(out, 8, 10))],
        "inception"
    );

    // A batchnorm, pool or depthwise conv at the end of a
    // branch copies; so does a conv whose output something else reads, and
    // a grouped conv. An activation after a batchnorm is placed (in
    // inference the conv it folds into writes it).
    let cases: &[(&str, &[(&str, usize)])] = &[
        (
            "input 6x6x4; concat { conv 2 1x1; batchnorm } { conv 3 1x1; batchnorm; relu }",
            &[("activation", 2)],
        ),
        (
            "input 6x6x4; concat { maxpool 2 stride 1 same } { dwconv 3x3 same } \
             { conv 4 3x3 same groups 2 }",
            &[],
        ),
        (
            "input 6x6x4; conv 3 1x1; concat { } { relu } { conv 2 1x1 tanh }",
            &[("activation", 3), ("conv", 6)],
        ),
        // One conv read by two concats: copied into both.
        (
            "input 6x6x4; conv 3 1x1; concat { } { conv 2 1x1 }; concat { } { conv 1 1x1 }",
            &[("conv", 3), ("conv", 5)],
        ),
    ];
    for &(src, want) in cases {
        let m = interp(src);
        let got: Vec<_> = placed(m.plan())
            .into_iter()
            .map(|(k, p)| (k, p.at))
            .collect();
        assert_eq!(got, want, "{src}");
    }
}

/// Branches of every placed kind: a conv with relu (applied in the tile), a
/// conv with tanh (applied after it), an activation layer after a batchnorm
/// (in inference, a conv with the batchnorm folded and the relu fused), and
/// a transposed conv; channel offsets other than 0.
const PLACED: &str = "input 8x8x3; conv 4 3x3 same relu; \
    concat { } { conv 5 3x3 same tanh } { conv 6 1x1 nobias; batchnorm; relu } \
    { conv 3 3x3 stride 2 same relu; deconv 7 2x2 stride 2 sigmoid } { conv 16 3x3 same relu }; \
    conv 4 3x3 same relu; globalavgpool; dense 3 softmax";

/// [`PLACED`] with every branch copied.
const COPIED: &str = "input 8x8x3; conv 4 3x3 same relu; \
    concat { } { conv 5 3x3 same tanh; dropout 0.0 } { conv 6 1x1 nobias; batchnorm; relu; dropout 0.0 } \
    { conv 3 3x3 stride 2 same relu; deconv 7 2x2 stride 2 sigmoid; dropout 0.0 } \
    { conv 16 3x3 same relu; dropout 0.0 }; \
    conv 4 3x3 same relu; globalavgpool; dense 3 softmax";

cnn::cnn! { model PlacedNet {
    input 8x8x3; conv 4 3x3 same relu;
    concat { } { conv 5 3x3 same tanh } { conv 6 1x1 nobias; batchnorm; relu }
    { conv 3 3x3 stride 2 same relu; deconv 7 2x2 stride 2 sigmoid } { conv 16 3x3 same relu };
    conv 4 3x3 same relu; globalavgpool; dense 3 softmax
} }

/// Forward, predict, three SGD steps (losses) and the trained parameters.
fn run(m: &mut dyn Model) -> Vec<Vec<f32>> {
    randomize(m, 7);
    let mut rng = XorShift(3);
    let x = Array4::from_shape_fn((5, 8, 8, 3), |_| rng.unit());
    let labels = [0, 1, 2, 1, 0];
    let mut out = vec![
        flat(m.forward_batch(x.view()).unwrap().iter()),
        flat(m.predict_batch(x.view()).unwrap().iter()),
    ];
    let mut opt = Sgd::new(0.1);
    let losses = (0..3)
        .map(|_| m.train_batch(x.view(), &labels, &mut opt).unwrap())
        .collect();
    out.push(losses);
    for p in m.params_mut() {
        out.push(p.data.to_vec());
    }
    out
}

#[test]
fn a_placed_concat_computes_what_a_copied_one_does() {
    let mut placed_m = interp(PLACED);
    let mut copied = interp(COPIED);
    assert_eq!(
        placed(placed_m.plan()).len(),
        4,
        "every branch but the skip"
    );
    assert!(placed(copied.plan()).is_empty(), "dropout copies");
    let want = run(&mut copied);
    let bits = |v: &[Vec<f32>]| -> Vec<Vec<u32>> {
        v.iter()
            .map(|r| r.iter().map(|f| f.to_bits()).collect())
            .collect()
    };
    assert_eq!(bits(&run(&mut placed_m)), bits(&want), "interpreter");
    assert_eq!(PlacedNet::plan(), placed_m.plan(), "one plan");
    let mut generated = PlacedNet::new(1);
    assert_eq!(bits(&run(&mut generated)), bits(&want), "generated code");
}

#[test]
fn a_diverging_branch_written_in_place_is_named() {
    // The branch's conv (statement 0: a join is numbered after its
    // branches) overflows, two channels of 3e38 with weights 1: the
    // divergence names it, not the concat after it.
    let mut m = interp("input 3x3x2; concat { } { conv 3 1x1 }; flatten; dense 2 softmax");
    assert_eq!(placed(m.plan()).len(), 1);
    for p in m.params_mut() {
        p.data.fill(1.0);
    }
    let x = Array4::from_elem((2, 3, 3, 2), 3e38f32);
    let r = m.train_batch(x.view(), &[0, 1], &mut Sgd::new(0.1));
    let Err(cnn::runtime::Error::Diverged(d)) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        d.culprit,
        cnn::runtime::Culprit::Output {
            index: 0,
            statement: 0,
            join: false
        },
        "{d:?}"
    );
}
