//! Training and inference modes at the model level: dropout is the identity in
//! inference and a seeded, reproducible inverted dropout in training; batchnorm
//! normalises with the moving statistics in inference and with the batch's in
//! training, then updates the moving ones (never through an optimizer).

use cnn_runtime::interp::Sequential;
use cnn_runtime::ndarray::{Array4, ArrayView4};
use cnn_runtime::{BatchNormSpec, LayerSpec, Model, Real, Sgd};

fn dropout_model(rate: f32, len: usize, seed: u64) -> Sequential {
    let layers = vec![
        LayerSpec::Flatten { len },
        LayerSpec::Dropout {
            rate: Real::new(rate),
            len,
        },
    ];
    Sequential::new([len, 1, 1], layers, seed).unwrap()
}

/// One training-mode forward pass, its output copied out.
fn train_pass(m: &mut Sequential, x: ArrayView4<'_, f32>) -> Vec<f32> {
    m.forward_train_batch(x).unwrap().iter().copied().collect()
}

#[test]
fn dropout_keeps_one_minus_rate_scaled_and_inference_is_the_identity() {
    let len = 1000;
    let x = Array4::from_shape_fn((100, len, 1, 1), |(b, i, _, _)| 1.0 + (b * len + i) as f32);
    for rate in [0.1f32, 0.5, 0.8] {
        let mut m = dropout_model(rate, len, 7);
        let inf: Vec<f32> = m.forward(x.view()).unwrap().iter().copied().collect();
        assert!(
            inf.iter().zip(x.iter()).all(|(a, b)| a == b),
            "inference is the identity"
        );
        let y: Vec<f32> = train_pass(&mut m, x.view());
        let keep = 1.0 / (1.0 - rate);
        let mut kept = 0usize;
        for (v, xv) in y.iter().zip(x.iter()) {
            if *v != 0.0 {
                kept += 1;
                assert_eq!(*v, xv * keep, "kept values are scaled by 1/(1-R)");
            }
        }
        let frac = kept as f64 / y.len() as f64;
        assert!(
            (frac - f64::from(1.0 - rate)).abs() < 0.01,
            "rate {rate}: kept {frac} of 10^5"
        );
        // dL/dx goes through the same mask.
        let g = cnn_runtime::ndarray::Array2::<f32>::ones((100, len));
        m.backward(g.view()).unwrap();
        let dx = m.input_grad().unwrap();
        for (d, v) in dx.iter().zip(&y) {
            assert_eq!(*d == 0.0, *v == 0.0, "the gradient's mask is the forward's");
        }
    }
}

#[test]
fn dropout_masks_are_reproducible_for_a_seed_and_fresh_each_pass() {
    let len = 256;
    let x = Array4::<f32>::ones((8, len, 1, 1));
    let masks = |seed: u64| {
        let mut m = dropout_model(0.5, len, seed);
        let a: Vec<f32> = train_pass(&mut m, x.view());
        let b: Vec<f32> = train_pass(&mut m, x.view());
        (a, b)
    };
    let (a1, b1) = masks(3);
    let (a2, b2) = masks(3);
    assert_eq!((&a1, &b1), (&a2, &b2), "same seed, same masks");
    assert_ne!(a1, b1, "each training pass draws new masks");
    assert_ne!(masks(4).0, a1, "another seed, other masks");
    // Sample k's mask does not depend on the batch around it.
    let mut m = dropout_model(0.5, len, 3);
    let one: Vec<f32> = train_pass(&mut m, x.slice(cnn_runtime::ndarray::s![..1, .., .., ..]));
    assert_eq!(one[..], a1[..len]);
}

#[test]
fn batchnorm_updates_moving_statistics_in_training_only() {
    let c = 3;
    let bn = LayerSpec::BatchNorm(BatchNormSpec {
        len: 2 * 2 * c,
        c,
        momentum: Real::new(0.9),
        epsilon: Real::new(1e-3),
        scale: true,
        center: true,
    });
    let layers = vec![
        bn,
        LayerSpec::Flatten { len: 2 * 2 * c },
        LayerSpec::Dense {
            spec: cnn_runtime::DenseSpec {
                inputs: 2 * 2 * c,
                units: 2,
            },
            act: cnn_runtime::Activation::Softmax,
            bias: true,
        },
    ];
    let mut m = Sequential::new([2, 2, c], layers, 1).unwrap();
    let x = Array4::from_shape_fn((4, 2, 2, c), |(b, h, w, k)| {
        (b as f32) * 0.5 + (h * 2 + w) as f32 * 0.25 + k as f32 * 2.0
    });
    let moving = |m: &Sequential| -> Vec<Vec<f32>> {
        m.params()
            .iter()
            .filter(|p| p.name.contains("moving"))
            .map(|p| p.data.to_vec())
            .collect()
    };
    assert_eq!(moving(&m), [vec![0.0; c], vec![1.0; c]]);
    m.forward(x.view()).unwrap();
    assert_eq!(
        moving(&m),
        [vec![0.0; c], vec![1.0; c]],
        "inference changes nothing"
    );
    let mut sgd = Sgd::new(0.1);
    m.train_batch(x.view(), &[0, 1, 0, 1], &mut sgd).unwrap();
    let after = moving(&m);
    // Channel k: mean 0.75 + 0.375 + 2k over the batch; moving = 0.1 * mean.
    for k in 0..c {
        let mean = 1.125 + 2.0 * k as f32;
        assert!((after[0][k] - 0.1 * mean).abs() < 1e-5, "{after:?}");
        assert!(after[1][k] < 1.0, "the variance moved towards the batch's");
    }
    // The optimizer never touches them: a second step moves them by the rule only.
    let gamma_before: Vec<f32> = m.params()[0].data.to_vec();
    m.train_batch(x.view(), &[0, 1, 0, 1], &mut sgd).unwrap();
    let again = moving(&m);
    for k in 0..c {
        let mean = 1.125 + 2.0 * k as f32;
        let want = after[0][k] * 0.9 + 0.1 * mean;
        assert!((again[0][k] - want).abs() < 1e-5);
    }
    assert_ne!(
        m.params()[0].data.to_vec(),
        gamma_before,
        "gamma is trained"
    );
}
