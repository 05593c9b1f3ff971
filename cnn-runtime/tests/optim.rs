//! Optimizer updates against Keras 3's formulas, worked by hand.

use cnn_runtime::optim::{Adam, Optimizer, Sgd};

fn close(a: f32, b: f64, tol: f64) -> bool {
    (a as f64 - b).abs() <= tol
}

/// Steps `o` on one parameter starting at 1.0 with the gradient 0.5 each time;
/// after step `i` the parameter is `wants[i]` (within 1e-6).
fn steps_of_grad_half(mut o: Sgd, wants: [f64; 2]) {
    let mut p = [1.0f32];
    for want in wants {
        o.begin_step();
        o.update(0, &mut p, &[0.5]);
        assert!(close(p[0], want, 1e-6), "{} vs {want}", p[0]);
    }
}

#[test]
fn keras_defaults() {
    let s = Sgd::default();
    assert_eq!((s.lr, s.momentum, s.nesterov), (0.01, 0.0, false));
    let a = Adam::default();
    assert_eq!((a.lr, a.beta1, a.beta2, a.eps), (0.001, 0.9, 0.999, 1e-7));
}

#[test]
fn plain_sgd_is_p_minus_lr_g() {
    let mut o = Sgd::new(0.1);
    let mut p = [1.0f32, -2.0];
    o.begin_step();
    o.update(0, &mut p, &[0.5, -1.0]);
    assert!(close(p[0], 0.95, 1e-7) && close(p[1], -1.9, 1e-7), "{p:?}");
    assert_eq!(o.learning_rate(), 0.1);
}

#[test]
fn momentum_accumulates_velocity() {
    // v1 = -lr*g = -0.05, p = 0.95; v2 = 0.9*(-0.05) - 0.05 = -0.095, p = 0.855.
    steps_of_grad_half(Sgd::with_momentum(0.1, 0.9, false), [0.95, 0.855]);
}

#[test]
fn nesterov_looks_ahead() {
    // v1 = -0.05, p += 0.9*v1 - 0.05 = -0.095 -> 0.905;
    // v2 = -0.095, p += 0.9*v2 - 0.05 = -0.1355 -> 0.7695.
    steps_of_grad_half(Sgd::with_momentum(0.1, 0.9, true), [0.905, 0.7695]);
}

#[test]
fn momentum_state_is_per_slot() {
    let mut o = Sgd::with_momentum(0.1, 0.9, false);
    let (mut a, mut b) = ([1.0f32], [1.0f32]);
    o.begin_step();
    o.update(0, &mut a, &[0.5]);
    o.update(1, &mut b, &[0.0]);
    o.begin_step();
    o.update(0, &mut a, &[0.0]);
    o.update(1, &mut b, &[0.0]);
    // slot 0 keeps moving on its velocity, slot 1 never had any.
    assert!(close(a[0], 1.0 - 0.05 - 0.045, 1e-6), "{}", a[0]);
    assert_eq!(b[0], 1.0);
}

#[test]
fn adam_matches_keras3_three_steps() {
    // Keras 3: alpha = lr*sqrt(1-b2^t)/(1-b1^t); m += (g-m)(1-b1); v += (g^2-v)(1-b2);
    // p -= alpha*m/(sqrt(v)+eps). Values worked in float64.
    let mut o = Adam::default();
    let mut p = [1.0f32];
    let wants = [0.9990000063245154, 0.9987336707920792, 0.9980630241660109];
    for (g, want) in [0.5f32, -0.25, 2.0].into_iter().zip(wants) {
        o.begin_step();
        o.update(0, &mut p, &[g]);
        assert!(close(p[0], want, 2e-7), "{} vs {want}", p[0]);
    }
    assert_eq!(o.steps(), 3);
}

#[test]
fn adam_first_step_is_about_lr_per_coordinate() {
    // After bias correction the first step is lr * g/|g| (up to eps) whatever |g|.
    let mut o = Adam::new(0.01);
    let mut p = [0.0f32, 0.0, 0.0];
    o.begin_step();
    o.update(3, &mut p, &[0.1, -50.0, 7.0]);
    for (x, s) in p.iter().zip([-1.0, 1.0, -1.0]) {
        assert!(close(*x, s * 0.01, 1e-5), "{p:?}");
    }
}
