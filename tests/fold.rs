//! Batchnorm folding in inference: `predict` (each batchnorm after a conv,
//! grouped conv, depthwise, separable's pointwise half, transposed conv or dense
//! layer absorbed into that layer's kernel and bias) agrees with the unfolded
//! `forward` within 1e-5 of max(1, |y|), in the interpreter and in generated
//! code, with moving statistics, gamma and beta far from their initial values.
//! An activation layer after such a layer (or after its batchnorm) is applied
//! by that layer's kernel. What `predict` does not keep (the folded layers'
//! outputs) is an error to ask for, and a `backward` needs a `forward`.

mod codegen_support;

use cnn::ndarray::Array4;
use cnn::runtime::interp::Sequential;
use cnn::runtime::Model;
use codegen_support::{assert_forward, flat, randomize, XorShift};

fn interp(src: &str) -> Sequential {
    let c = cnn_compiler::compile(src, "Fold");
    assert!(!c.has_errors(), "{src}: {:?}", c.diagnostics);
    cnn::lower::interpreter(&c.models[0], 1).expect("plan")
}

fn input(m: &dyn Model, b: usize, seed: u64) -> Array4<f32> {
    let [h, w, c] = m.input_shape();
    let mut rng = XorShift(seed);
    Array4::from_shape_fn((b, h, w, c), |_| rng.unit())
}

/// Models, how many batchnorms their plans fold and how many activation
/// layers a kernel applies.
const MODELS: &[(&str, usize, usize)] = &[
    ("input 6x6x3; conv 4 3x3 same nobias; batchnorm; relu", 1, 1),
    (
        "input 6x6x3; conv 4 3x3 valid; batchnorm momentum 0.9 epsilon 1e-3",
        1,
        0,
    ),
    (
        "input 6x6x4; conv 6 3x3 same groups 2; batchnorm noscale; elu",
        1,
        1,
    ),
    (
        "input 7x7x3; dwconv 3x3 stride 2 same multiplier 2; batchnorm nocenter; relu6",
        1,
        1,
    ),
    ("input 6x6x3; sepconv 5 3x3 same; batchnorm; relu", 1, 1),
    (
        "input 4x4x3; deconv 5 3x3 stride 2 same nobias; batchnorm; sigmoid",
        1,
        1,
    ),
    (
        "input 5x5x2; flatten; dense 7; batchnorm noscale nocenter; dense 3 softmax",
        1,
        0,
    ),
    // An activation layer right after a conv, without a batchnorm, and
    // after a join.
    ("input 6x6x3; conv 4 3x3 same; gelu; conv 2 1x1; tanh", 0, 2),
    (
        "input 6x6x4; residual { conv 4 3x3 same nobias; batchnorm; relu; conv 4 3x3 same }; relu",
        1,
        2,
    ),
    (
        "input 6x6x4; concat { } { avgpool 3 stride 1 same }; relu6",
        0,
        1,
    ),
    // Not after a concat whose branches write their channels in place (the
    // activation then reads the concat's buffer in one pass of its own).
    (
        "input 6x6x4; concat { conv 2 1x1 } { conv 3 1x1 }; relu6",
        0,
        0,
    ),
    // Not folded: an activation or a pool lies between, or nothing feeds it.
    ("input 6x6x3; conv 4 3x3 same relu; batchnorm", 0, 0),
    ("input 6x6x3; conv 4 3x3 same; maxpool 2; batchnorm", 0, 0),
    ("input 4x4x3; batchnorm; relu", 0, 0),
    // Not fused: softmax needs whole rows; the conv's own activation; a
    // conv output that a residual also reads.
    ("input 4x4x3; conv 4 1x1; batchnorm; softmax", 1, 0),
    ("input 6x6x3; conv 4 3x3 same relu; relu6", 0, 0),
    ("input 6x6x4; conv 4 3x3 same; residual { relu }", 0, 0),
    (
        "input 6x6x4; conv 4 3x3 same nobias; batchnorm; residual { relu }",
        1,
        0,
    ),
    (
        "input 8x8x1; conv 8 3x3 same nobias; batchnorm; relu; maxpool 2; \
         conv 8 3x3 same nobias; batchnorm; relu; dropout 0.3; flatten; \
         dense 16 nobias; batchnorm; relu; dense 4 softmax",
        3,
        3,
    ),
];

#[test]
fn predict_folds_batchnorm_and_agrees_with_forward() {
    for (k, &(src, folds, acts)) in MODELS.iter().enumerate() {
        let mut m = interp(src);
        let plan = m.plan();
        let got = plan.steps.iter().filter(|s| s.fold.is_some()).count();
        assert_eq!(got, folds, "{src}: folds");
        let got = plan.steps.iter().filter(|s| s.fold_act.is_some()).count();
        assert_eq!(got, acts, "{src}: activations applied by a kernel");
        assert_eq!(
            plan.steps.iter().filter(|s| s.folded).count(),
            folds + acts,
            "{src}: folded batchnorms and activations"
        );
        randomize(&mut m, 11 + k as u64);
        let x = input(&m, 3, 5 + k as u64);
        let want = flat(m.forward(x.view()).unwrap());
        let got = flat(m.predict(x.view()).unwrap());
        assert_forward(src, &got, &want);
        // Twice: the fold's scratch is reused, the result is the same.
        let again = flat(m.predict(x.view()).unwrap());
        assert_eq!(got, again, "{src}: a second predict");
    }
}

#[test]
fn predict_keeps_only_what_it_computed() {
    let mut m = interp(MODELS[0].0);
    randomize(&mut m, 3);
    let x = input(&m, 2, 4);
    m.predict(x.view()).unwrap();
    // The conv and the batchnorm were absorbed: only the activation's output
    // was computed.
    for i in [0, 1] {
        let e = m.layer_output(i).unwrap_err().to_string();
        assert!(
            e.contains("predict folded the batchnorm or activation"),
            "{e}"
        );
    }
    assert!(m.layer_output(2).is_ok());
    let dy = cnn::ndarray::Array2::<f32>::ones((2, 6 * 6 * 4));
    let e = m.backward(dy.view()).unwrap_err().to_string();
    assert!(e.contains("not predict"), "{e}");
    // A forward pass makes every layer's output and the backward pass available.
    m.forward(x.view()).unwrap();
    assert!(m.layer_output(0).is_ok() && m.layer_output(1).is_ok());
    m.backward(dy.view()).unwrap();
}

#[test]
fn predict_follows_every_change_of_the_weights() {
    // Predict prepares folded (and packed) weights once and keeps them: each
    // way the weights change must be seen by the next prediction.
    let src = MODELS[MODELS.len() - 1].0;
    let mut m = interp(src);
    randomize(&mut m, 31);
    let x = input(&m, 4, 32);
    let agrees = |m: &mut Sequential, what: &str| {
        let want = flat(m.forward(x.view()).unwrap());
        let got = flat(m.predict(x.view()).unwrap());
        assert_forward(what, &got, &want);
        got
    };
    let first = agrees(&mut m, "first predict");
    randomize(&mut m, 33);
    let loaded = agrees(&mut m, "after params_mut");
    assert_ne!(first, loaded, "new weights, new predictions");
    let mut opt = cnn::runtime::Sgd::new(0.05);
    let labels = [0, 1, 2, 3];
    m.train_batch(x.view(), &labels, &mut opt).unwrap();
    let trained = agrees(&mut m, "after a training step");
    assert_ne!(loaded, trained, "a step moved the weights");
    // A training-mode forward pass moves only the moving statistics.
    m.forward_train_batch(x.view()).unwrap();
    let moved = agrees(&mut m, "after a training forward pass");
    assert_ne!(trained, moved, "the moving statistics moved");
    // Without a batchnorm, only the optimizer's update changes a packed conv.
    let mut m = interp("input 6x6x3; conv 4 3x3 same; relu; flatten; dense 3 softmax");
    randomize(&mut m, 35);
    let x = input(&m, 4, 36);
    let before = flat(m.predict(x.view()).unwrap());
    m.train_batch(x.view(), &[0, 1, 2, 0], &mut opt).unwrap();
    let want = flat(m.forward(x.view()).unwrap());
    let got = flat(m.predict(x.view()).unwrap());
    assert_forward("after a step without batchnorm", &got, &want);
    assert_ne!(before, got, "a step moved the weights");
}

#[test]
fn training_is_unchanged_by_an_earlier_predict() {
    // Predictions between training steps do not disturb training: same
    // losses with and without them.
    let src = MODELS[MODELS.len() - 1].0;
    let losses = |with_predict: bool| {
        let mut m = interp(src);
        let mut opt = cnn::runtime::Sgd::new(0.05);
        let x = input(&m, 8, 9);
        let labels: Vec<usize> = (0..8).map(|i| i % 4).collect();
        (0..3)
            .map(|_| {
                if with_predict {
                    m.predict(x.view()).unwrap();
                }
                m.train_batch(x.view(), &labels, &mut opt).unwrap()
            })
            .collect::<Vec<f32>>()
    };
    assert_eq!(losses(false), losses(true));
}

cnn::cnn! { model FoldNet {
    input 8x8x3;
    conv 6 3x3 same nobias; batchnorm; relu;
    sepconv 8 3x3 same; batchnorm; relu; maxpool 2;
    dwconv 3x3 same; batchnorm; relu6;
    flatten; dense 10 nobias; batchnorm; relu; dense 3 softmax
} }

#[test]
fn generated_predict_folds_as_the_interpreter_does() {
    let src = "input 8x8x3; conv 6 3x3 same nobias; batchnorm; relu; \
               sepconv 8 3x3 same; batchnorm; relu; maxpool 2; \
               dwconv 3x3 same; batchnorm; relu6; \
               flatten; dense 10 nobias; batchnorm; relu; dense 3 softmax";
    let mut i = interp(src);
    let mut g = FoldNet::new(1);
    assert_eq!(FoldNet::plan().steps.iter().filter(|s| s.folded).count(), 8);
    randomize(&mut i, 21);
    randomize(&mut g, 21);
    let x = input(&i, 4, 22);
    let want = flat(i.forward(x.view()).unwrap());
    let gi = flat(i.predict(x.view()).unwrap());
    let gg = flat(g.predict_view(x.view()).unwrap());
    assert_forward("interpreter predict", &gi, &want);
    assert_forward("generated predict", &gg, &want);
    assert_eq!(
        flat(Model::predict_batch(&mut g, x.view()).unwrap()),
        gg,
        "the trait's predict is predict_view"
    );
}
