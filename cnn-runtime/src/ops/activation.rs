//! Activations, elementwise or (softmax) over the last axis of `channels` entries.

use crate::Activation;

/// `y = act(z)`; softmax normalises each run of `channels` values.
///
/// # Panics
/// When `z` and `y` differ in length, or (softmax) the length is not a multiple
/// of `channels`.
pub fn activation_forward(act: Activation, channels: usize, z: &[f32], y: &mut [f32]) {
    assert_eq!(z.len(), y.len(), "activation: length mismatch");
    if act == Activation::Linear {
        y.copy_from_slice(z);
        return;
    }
    y.copy_from_slice(z);
    activation_forward_inplace(act, channels, y);
}

/// `y = act(y)` in place.
///
/// # Panics
/// (softmax) When the length is not a multiple of `channels`.
pub fn activation_forward_inplace(act: Activation, channels: usize, y: &mut [f32]) {
    match act {
        Activation::Linear => {}
        Activation::Relu => {
            for v in y.iter_mut() {
                // `max` would turn NaN into 0 and hide a diverging model.
                if *v < 0.0 {
                    *v = 0.0;
                }
            }
        }
        Activation::Sigmoid => {
            for v in y.iter_mut() {
                *v = sigmoid(*v);
            }
        }
        Activation::Tanh => tanh_inplace(y),
        Activation::Softmax => {
            assert!(
                channels > 0 && y.len() % channels == 0,
                "softmax: length not a multiple of channels"
            );
            for row in y.chunks_exact_mut(channels) {
                softmax_row(row);
            }
        }
    }
}

#[inline]
fn sigmoid(z: f32) -> f32 {
    // Both branches avoid overflow of exp for large |z|.
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn tanh_inplace(y: &mut [f32]) {
    for v in y.iter_mut() {
        *v = v.tanh();
    }
}

/// Numerically stable softmax of one row, in place.
pub(crate) fn softmax_row(row: &mut [f32]) {
    let mut mx = f32::NEG_INFINITY;
    for &v in row.iter() {
        mx = mx.max(v);
    }
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - mx).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// `dz = dL/dz` from `y = act(z)` (post-activation) and `dy = dL/dy`.
/// relu'(0) = 0 (the derivative is taken as 0 wherever `y <= 0`).
///
/// # Panics
/// When the lengths differ, or (softmax) are not a multiple of `channels`.
pub fn activation_backward(
    act: Activation,
    channels: usize,
    y: &[f32],
    dy: &[f32],
    dz: &mut [f32],
) {
    assert!(
        y.len() == dy.len() && y.len() == dz.len(),
        "activation backward: length mismatch"
    );
    match act {
        Activation::Linear => dz.copy_from_slice(dy),
        Activation::Relu => {
            for ((d, &yv), &g) in dz.iter_mut().zip(y).zip(dy) {
                *d = if yv > 0.0 { g } else { 0.0 };
            }
        }
        Activation::Sigmoid => {
            for ((d, &yv), &g) in dz.iter_mut().zip(y).zip(dy) {
                *d = g * yv * (1.0 - yv);
            }
        }
        Activation::Tanh => {
            for ((d, &yv), &g) in dz.iter_mut().zip(y).zip(dy) {
                *d = g * (1.0 - yv * yv);
            }
        }
        Activation::Softmax => {
            assert!(
                channels > 0 && y.len() % channels == 0,
                "softmax: length not a multiple of channels"
            );
            for ((d, yr), gr) in dz
                .chunks_exact_mut(channels)
                .zip(y.chunks_exact(channels))
                .zip(dy.chunks_exact(channels))
            {
                // dz_i = y_i * (dy_i - sum_j dy_j y_j)
                let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
                for ((dv, &yv), &g) in d.iter_mut().zip(yr).zip(gr) {
                    *dv = yv * (g - dot);
                }
            }
        }
    }
}
