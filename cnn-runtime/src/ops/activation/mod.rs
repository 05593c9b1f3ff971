//! Activations, elementwise or (softmax) over the last axis of `channels` entries.

#[cfg(test)]
mod gradcheck;
pub mod pointwise;

use super::Cells;
use crate::pool::{self, SendPtr};
use crate::Activation;
use pointwise::Pointwise;

/// `y = act(z)`; softmax normalises each run of `channels` values.
///
/// # Panics
/// When `z` and `y` differ in length, or (softmax) the length is not a multiple
/// of `channels`.
pub fn activation_forward(act: Activation, channels: usize, z: &[f32], y: &mut [f32]) {
    assert_eq!(z.len(), y.len(), "activation: length mismatch");
    // The common ones in one pass from z to y; the others copy, then work in place.
    match act {
        Activation::Relu => map(Some(z), y, relu),
        Activation::Relu6 => map(Some(z), y, relu6),
        Activation::Sigmoid => map(Some(z), y, sigmoid),
        Activation::Tanh => map(Some(z), y, tanh),
        _ => {
            y.copy_from_slice(z);
            activation_forward_inplace(act, channels, y);
        }
    }
}

/// `y = act(y)` in place.
///
/// # Panics
/// (softmax) When the length is not a multiple of `channels`.
pub fn activation_forward_inplace(act: Activation, channels: usize, y: &mut [f32]) {
    match act {
        Activation::Linear => {}
        Activation::Relu => map(None, y, relu),
        // MobileNet's activation: the same values as `Pointwise::value` (which
        // clamps in f64, exact for a clamp), in f32 so that it vectorises; it
        // cost MobileNetV2 more time than its convolutions.
        Activation::Relu6 => map(None, y, relu6),
        Activation::Sigmoid => map(None, y, sigmoid),
        Activation::Tanh => map(None, y, tanh),
        Activation::Softmax => {
            assert!(
                channels > 0 && y.len().is_multiple_of(channels),
                "softmax: length not a multiple of channels"
            );
            for row in y.chunks_exact_mut(channels) {
                softmax_row(row);
            }
        }
        other => {
            if let Some(p) = Pointwise::of(other) {
                p.forward_inplace(y);
            }
        }
    }
}

/// `dz = dL/dz` of any activation, from its input `z`, its output `y` and
/// `dy = dL/dy`: [`activation_backward`] for those whose derivative follows
/// from the output, the pre-activation form of [`Pointwise`] for the others.
///
/// # Panics
/// As [`activation_backward`].
pub fn activation_backward_zy(
    act: Activation,
    channels: usize,
    z: &[f32],
    y: &[f32],
    dy: &[f32],
    dz: &mut [f32],
) {
    match Pointwise::of(act) {
        Some(p) => p.backward(z, dy, dz),
        None => activation_backward(act, channels, y, dy, dz),
    }
}

/// [`activation_forward`] of `z`'s cells of `channels` values into `y`'s
/// (one after another, or `y.stride` apart: a concat's channels written in
/// place, see [`Cells`]).
///
/// # Panics
/// When the cells do not fit, or `z` is not whole cells.
pub fn activation_forward_cells<'a>(
    act: Activation,
    channels: usize,
    z: &[f32],
    y: impl Into<Cells<'a>>,
) {
    let mut y = y.into();
    if y.stride.is_none() {
        return activation_forward(act, channels, z, y.y);
    }
    assert!(
        channels > 0 && z.len().is_multiple_of(channels),
        "activation: {} values are not cells of {channels}",
        z.len()
    );
    y.check("activation", z.len() / channels, channels);
    let cells = z.len() / channels;
    for (zc, yc) in z.chunks_exact(channels).zip(y.each(cells, channels)) {
        activation_forward(act, channels, zc, yc);
    }
}

/// [`activation_backward`] (with `z`, [`activation_backward_zy`]) reading
/// the output `y` as cells of `channels` values `stride` apart (a concat's
/// channels written in place, see [`Cells`]); `dy` and `dz` are whole cells.
///
/// # Panics
/// As those, and when the cells do not fit `y`.
pub fn activation_backward_cells(
    act: Activation,
    channels: usize,
    z: Option<&[f32]>,
    (y, stride): (&[f32], usize),
    dy: &[f32],
    dz: &mut [f32],
) {
    let run = |z: Option<&[f32]>, y: &[f32], dy: &[f32], dz: &mut [f32]| match z {
        Some(z) => activation_backward_zy(act, channels, z, y, dy, dz),
        None => activation_backward(act, channels, y, dy, dz),
    };
    if stride == channels {
        return run(z, y, dy, dz);
    }
    let cells = dy.len() / channels.max(1);
    assert!(
        channels > 0
            && stride > channels
            && dy.len() == cells * channels
            && (cells == 0 || y.len() >= (cells - 1) * stride + channels),
        "activation backward: {cells} cells of {channels} every {stride} do not fit {} values",
        y.len()
    );
    for (k, (g, d)) in dy
        .chunks_exact(channels)
        .zip(dz.chunks_exact_mut(channels))
        .enumerate()
    {
        let zc = z.map(|z| &z[k * channels..(k + 1) * channels]);
        run(zc, &y[k * stride..k * stride + channels], g, d);
    }
}

/// Adds `bias` to every row of `y` (rows of `bias.len()` values) and applies
/// the activation, in place: the epilogue of the conv and dense forward passes.
pub(crate) fn bias_activation(y: &mut [f32], bias: Option<&[f32]>, n: usize, act: Activation) {
    // A layer without a bias spends no pass on it.
    if let Some(bias) = bias {
        for row in y.chunks_exact_mut(n.max(1)) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v += b;
            }
        }
    }
    activation_forward_inplace(act, n, y);
}

/// `e^x` for f32, branch-free so loops over it vectorise: Cephes' range reduction
/// `x = n ln2 + r` and degree-6 polynomial (about 1 ulp), `2^n` built from bits.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.33654, 88.72283);
    // Round to nearest with the 1.5 * 2^23 trick (no SSE4.1 `round` needed).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // n is in [-126, 128]; 2^128 overflows to inf like the true value.
    // 2^n from bits. The biased exponent n + 127 is read from the mantissa of
    // `n + 127 + 1.5 * 2^23` (an `as i32` cast would be scalarised by the
    // compiler because of its saturating semantics). NaN stays NaN through `e`.
    let biased = (n + (127.0 + 12_582_912.0))
        .to_bits()
        .wrapping_sub(0x4b40_0000)
        & 0xff;
    let scale = f32::from_bits(biased << 23);
    if n > 127.5 {
        e * 2.0 * f32::from_bits(254 << 23)
    } else {
        e * scale
    }
}

/// `tanh(z) = sign(z) (1 - 2 / (e^{2|z|} + 1))`; absolute error below 1e-7.
#[inline(always)]
fn tanh(z: f32) -> f32 {
    let a = z.abs();
    let t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
    // NaN propagates through `exp`; copysign keeps the odd symmetry.
    t.copysign(z)
}

#[inline(always)]
fn sigmoid(z: f32) -> f32 {
    // e^{-|z|} never overflows; mirror for negative z.
    let e = exp(-z.abs());
    let s = 1.0 / (1.0 + e);
    if z >= 0.0 {
        s
    } else {
        1.0 - s
    }
}

/// `min(max(v, 0), 6)`; `clamp` keeps NaN and `-0.0` (ordered compares).
#[inline(always)]
pub(crate) fn relu6(v: f32) -> f32 {
    v.clamp(0.0, 6.0)
}

/// A select, not `max` (which would turn NaN into 0 and hide a diverging
/// model), written branch-free so it vectorises.
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// `y = f(z)` element by element, or `y = f(y)` without `z`, with the loop
/// compiled for AVX-512 when the CPU has it (the crate itself targets
/// baseline x86-64).
///
/// Split across the pool in whole cache lines when the pass is large (in a
/// batchnorm plan, which runs the batch as one part, it would otherwise use
/// one core); inside a part of a split batch it runs whole.
#[inline(always)]
fn map<F: Fn(f32) -> f32 + Copy + Sync>(z: Option<&[f32]>, y: &mut [f32], f: F) {
    const LINE: usize = 16;
    let n = y.len();
    if let Some(z) = z {
        assert_eq!(z.len(), n, "activation: length mismatch");
    }
    let yp = SendPtr(y.as_mut_ptr());
    pool::over_ranges(n.div_ceil(LINE), 2 * n, &|r| {
        let (a, b) = (r.start * LINE, (r.end * LINE).min(n));
        // SAFETY: values a..b of y (in bounds) are this part's alone.
        let ys = unsafe { yp.slice(a, b - a) };
        map_part(z.map(|z| &z[a..b]), ys, f);
    });
}

/// [`map`] on one part, on this thread.
#[inline(always)]
fn map_part<F: Fn(f32) -> f32 + Copy>(z: Option<&[f32]>, y: &mut [f32], f: F) {
    #[inline(always)]
    fn body<F: Fn(f32) -> f32>(z: Option<&[f32]>, y: &mut [f32], f: F) {
        match z {
            Some(z) => {
                for (o, &v) in y.iter_mut().zip(z) {
                    *o = f(v);
                }
            }
            None => {
                for v in y.iter_mut() {
                    *v = f(*v);
                }
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        /// `body` compiled for AVX-512.
        ///
        /// # Safety
        /// AVX-512F/DQ, AVX2 and FMA must be available.
        #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
        unsafe fn wide<F: Fn(f32) -> f32>(z: Option<&[f32]>, y: &mut [f32], f: F) {
            body(z, y, f)
        }
        if crate::cpu::avx512() {
            // SAFETY: the features were detected at run time.
            unsafe { wide(z, y, f) };
            return;
        }
    }
    body(z, y, f)
}

/// Numerically stable softmax of one row, in place.
pub(crate) fn softmax_row(row: &mut [f32]) {
    let mut mx = f32::NEG_INFINITY;
    for &v in row.iter() {
        mx = mx.max(v);
    }
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = exp(*v - mx);
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
/// When the lengths differ, or (softmax) are not a multiple of `channels`; for
/// an activation whose derivative needs the pre-activation
/// ([`Activation::from_output`] is false: use [`activation_backward_zy`]).
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
    // Whole runs of `channels` per part (softmax's rows), split across the
    // pool when the pass is large (see `map`).
    let ch = channels.max(1);
    if !y.len().is_multiple_of(ch) {
        return backward_part(act, channels, y, dy, dz);
    }
    let dzp = SendPtr(dz.as_mut_ptr());
    pool::over_ranges(y.len() / ch, 2 * y.len(), &|r| {
        let (a, b) = (r.start * ch, r.end * ch);
        // SAFETY: values a..b of dz (in bounds: as long as y) are this
        // part's alone.
        let dzs = unsafe { dzp.slice(a, b - a) };
        backward_part(act, channels, &y[a..b], &dy[a..b], dzs);
    });
}

/// [`activation_backward`] on one part, on this thread.
fn backward_part(act: Activation, channels: usize, y: &[f32], dy: &[f32], dz: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        /// `backward_body` compiled for AVX-512.
        ///
        /// # Safety
        /// AVX-512F/DQ, AVX2 and FMA must be available.
        #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
        unsafe fn wide(act: Activation, channels: usize, y: &[f32], dy: &[f32], dz: &mut [f32]) {
            backward_body(act, channels, y, dy, dz)
        }
        if crate::cpu::avx512() {
            // SAFETY: the features were detected at run time.
            unsafe { wide(act, channels, y, dy, dz) };
            return;
        }
    }
    backward_body(act, channels, y, dy, dz)
}

#[inline(always)]
fn backward_body(act: Activation, channels: usize, y: &[f32], dy: &[f32], dz: &mut [f32]) {
    assert!(
        y.len() == dy.len() && y.len() == dz.len(),
        "activation backward: length mismatch"
    );
    assert!(
        act.from_output(),
        "activation backward: {act:?} needs the pre-activation"
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
                channels > 0 && y.len().is_multiple_of(channels),
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
        // Excluded by the assertion above.
        _ => {}
    }
}
