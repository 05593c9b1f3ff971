//! Batch normalization over the last (channel) axis, as Keras 3's
//! `BatchNormalization`: every run of `c` values is one position (a pixel of a
//! sample, or a sample of a dense layer's output), and the statistics of a
//! channel are taken over all positions of the batch (N, H, W).
//!
//! * Inference: `y = (x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta`,
//!   computed as one scale and shift per channel ([`fold`]), which is also what
//!   a preceding conv or dense layer can absorb.
//! * Training: the batch's mean and *biased* variance replace the moving ones,
//!   and the moving statistics are then updated with
//!   `moving = moving * momentum + batch * (1 - momentum)` ([`moving_update`]).
//!
//! `gamma` is absent with `noscale` (a scale of 1) and `beta` with `nocenter`
//! (a shift of 0). Channel sums are accumulated in f64, so a large batch does
//! not lose the mean's low bits.

#[cfg(test)]
mod gradcheck;

/// The scale and shift of each channel that inference applies: `y = x * a + b`
/// with `a = gamma / sqrt(var + eps)` and `b = beta - mean * a`.
///
/// # Panics
/// When `mean`, `var`, `gamma` or `beta` (when given) or `a`, `b` differ in length.
pub fn fold(
    eps: f32,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    mean: &[f32],
    var: &[f32],
    a: &mut [f32],
    b: &mut [f32],
) {
    let c = mean.len();
    assert!(
        var.len() == c && a.len() == c && b.len() == c,
        "batchnorm: statistics of different lengths"
    );
    assert!(
        gamma.is_none_or(|g| g.len() == c),
        "batchnorm: gamma length"
    );
    assert!(beta.is_none_or(|g| g.len() == c), "batchnorm: beta length");
    for j in 0..c {
        let inv = 1.0 / (var[j] + eps).sqrt();
        let s = gamma.map_or(inv, |g| g[j] * inv);
        a[j] = s;
        b[j] = beta.map_or(0.0, |t| t[j]) - mean[j] * s;
    }
}

/// The kernel and bias of a layer followed by `y = z * a + b` per output
/// channel (`a`, `b` from [`fold`]): `kernel * a` and `bias * a + b` (a layer
/// without a bias passes an empty one). Kernel value `i` feeds output channel
/// `(i / stride) % a.len()`.
///
/// # Panics
/// When the kernel's length is not a multiple of `stride * a.len()`, or a
/// bias is given with a length other than `a.len()`.
pub fn fold_into(
    a: &[f32],
    b: &[f32],
    stride: usize,
    (kernel, bias): (&[f32], &[f32]),
    (k_out, b_out): (&mut Vec<f32>, &mut Vec<f32>),
) {
    let c = a.len();
    assert!(
        stride > 0 && kernel.len() % (stride * c) == 0,
        "batchnorm fold: kernel length"
    );
    assert!(
        bias.is_empty() || bias.len() == c,
        "batchnorm fold: bias length"
    );
    k_out.clear();
    // Whole blocks of `stride * c` values, without a division per value: the
    // fold runs on every inference call (measured: 5% of MobileNetV2's time).
    for block in kernel.chunks_exact(stride * c) {
        if stride == 1 {
            k_out.extend(block.iter().zip(a).map(|(w, s)| w * s));
        } else {
            for (run, &s) in block.chunks_exact(stride).zip(a) {
                k_out.extend(run.iter().map(|w| w * s));
            }
        }
    }
    b_out.clear();
    b_out.extend((0..c).map(|o| bias.get(o).map_or(0.0, |z| z * a[o]) + b[o]));
}

/// `y = x * a + b` per channel (`a`, `b` from [`fold`]); `x` and `y` may be
/// the same length only.
///
/// # Panics
/// When the lengths do not match `a.len()` channels.
pub fn scale_shift(a: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) {
    let c = a.len();
    assert_eq!(b.len(), c, "batchnorm: scale and shift lengths");
    assert_eq!(x.len(), y.len(), "batchnorm: x and y lengths");
    assert!(
        c > 0 && x.len().is_multiple_of(c),
        "batchnorm: length not a multiple of channels"
    );
    for (xr, yr) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        for j in 0..c {
            yr[j] = xr[j] * a[j] + b[j];
        }
    }
}

/// `n` zeros at the start of `v`, which grows (only) to hold them: the f64
/// sums of a pass, without an allocation in steady state.
fn zeroed(v: &mut Vec<f64>, n: usize) -> &mut [f64] {
    if v.len() < n {
        v.resize(n, 0.0);
    }
    let s = &mut v[..n];
    s.fill(0.0);
    s
}

/// Per-channel mean and biased variance of `x` (runs of `c` values), in f64
/// (two passes: the variance of the centred values, never `E[x^2] - E[x]^2`);
/// `sums` is scratch for the f64 sums.
///
/// # Panics
/// When `x` is empty or not a multiple of `c` long, or `mean`/`var` are not `c` long.
pub fn batch_moments(c: usize, x: &[f32], mean: &mut [f32], var: &mut [f32], sums: &mut Vec<f64>) {
    assert!(
        c > 0 && !x.is_empty() && x.len().is_multiple_of(c),
        "batchnorm: length not a positive multiple of channels"
    );
    assert!(
        mean.len() == c && var.len() == c,
        "batchnorm: statistics length"
    );
    let rows = (x.len() / c) as f64;
    let (mu, sq) = zeroed(sums, 2 * c).split_at_mut(c);
    for r in x.chunks_exact(c) {
        for (s, v) in mu.iter_mut().zip(r) {
            *s += f64::from(*v);
        }
    }
    for m in mu.iter_mut() {
        *m /= rows;
    }
    for r in x.chunks_exact(c) {
        for j in 0..c {
            let d = f64::from(r[j]) - mu[j];
            sq[j] += d * d;
        }
    }
    for j in 0..c {
        mean[j] = mu[j] as f32;
        var[j] = (sq[j] / rows) as f32;
    }
}

/// Training-mode forward: normalises with the batch's own statistics, which it
/// writes to `mean` and `var` (for [`moving_update`] and [`batchnorm_backward`]).
///
/// # Panics
/// When a length does not match `c` channels.
#[allow(clippy::too_many_arguments)]
pub fn train_forward(
    c: usize,
    eps: f32,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    x: &[f32],
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
) {
    batch_moments(c, x, mean, var, &mut Vec::new());
    let (mut a, mut b) = (vec![0f32; c], vec![0f32; c]);
    fold(eps, gamma, beta, mean, var, &mut a, &mut b);
    scale_shift(&a, &b, x, y);
}

/// `moving = moving * momentum + batch * (1 - momentum)`, for the mean and the
/// variance alike (Keras's update; the batch variance is the biased one).
///
/// # Panics
/// When the slices differ in length.
pub fn moving_update(momentum: f32, batch: &[f32], moving: &mut [f32]) {
    assert_eq!(batch.len(), moving.len(), "batchnorm: statistics length");
    for (m, b) in moving.iter_mut().zip(batch) {
        *m = *m * momentum + *b * (1.0 - momentum);
    }
}

/// What a batchnorm's backward pass normalised with: `c` channels, epsilon,
/// gamma (`None` with `noscale`) and the statistics (the batch's in training,
/// the moving ones in inference).
#[derive(Clone, Copy)]
pub struct Norm<'a> {
    pub c: usize,
    pub eps: f32,
    pub gamma: Option<&'a [f32]>,
    pub mean: &'a [f32],
    pub var: &'a [f32],
}

/// The gradients of one batchnorm, any of which the caller may not need.
pub struct BatchNormGrads<'a> {
    /// dL/dx (overwritten), when the input needs a gradient.
    pub dx: Option<&'a mut [f32]>,
    /// dL/dgamma (overwritten); `None` with `noscale` or when frozen.
    pub dgamma: Option<&'a mut [f32]>,
    /// dL/dbeta (overwritten); `None` with `nocenter` or when frozen.
    pub dbeta: Option<&'a mut [f32]>,
}

/// Checks the lengths and writes `dgamma = sum(dy * xh)` and `dbeta = sum(dy)`
/// (those asked for), with `xh = (x - mean) * inv`; `sdy` and `sdyxh` (zeroed)
/// receive both sums.
fn param_grads(
    c: usize,
    (mean, inv): (&[f32], &[f64]),
    x: &[f32],
    dy: &[f32],
    grads: &mut BatchNormGrads<'_>,
    (sdy, sdyxh): (&mut [f64], &mut [f64]),
) {
    assert_eq!(x.len(), dy.len(), "batchnorm: x and dy lengths");
    assert!(
        c > 0 && !x.is_empty() && x.len().is_multiple_of(c),
        "batchnorm: length not a positive multiple of channels"
    );
    for (xr, dr) in x.chunks_exact(c).zip(dy.chunks_exact(c)) {
        for j in 0..c {
            let xh = (f64::from(xr[j]) - f64::from(mean[j])) * inv[j];
            sdy[j] += f64::from(dr[j]);
            sdyxh[j] += f64::from(dr[j]) * xh;
        }
    }
    for (out, sums) in [(&mut grads.dgamma, &*sdyxh), (&mut grads.dbeta, &*sdy)] {
        if let Some(d) = out.as_deref_mut() {
            for (d, s) in d.iter_mut().zip(sums) {
                *d = *s as f32;
            }
        }
    }
}

/// Backward pass from `dy`, in training mode (`train`: `n` holds the batch
/// statistics [`train_forward`] wrote) or inference mode (`n` holds the moving
/// ones, constants). With `xh = (x - mean) / sqrt(var + eps)` over `m`
/// positions, both give `dgamma = sum(dy * xh)` and `dbeta = sum(dy)`; the
/// input gradient is `dx = gamma / sqrt(var + eps) * dy` in inference and, in
/// training, where it also flows through the batch mean and variance,
/// `dx = gamma / sqrt(var + eps) * (dy - (dbeta + xh * dgamma) / m)`.
///
/// `sums` is scratch for the f64 sums (`3 * c` values; it grows only).
///
/// # Panics
/// When a length does not match `c` channels.
pub fn batchnorm_backward(
    train: bool,
    n: Norm<'_>,
    x: &[f32],
    dy: &[f32],
    mut grads: BatchNormGrads<'_>,
    sums: &mut Vec<f64>,
) {
    let Norm {
        c,
        eps,
        gamma,
        mean,
        var,
    } = n;
    assert_eq!(var.len(), c, "batchnorm: statistics length");
    let (inv, rest) = zeroed(sums, 3 * c).split_at_mut(c);
    let (sdy, sdyxh) = rest.split_at_mut(c);
    // 1 / sqrt(var + eps) per channel, in f64.
    for (i, v) in inv.iter_mut().zip(var) {
        *i = 1.0 / (f64::from(*v) + f64::from(eps)).sqrt();
    }
    param_grads(c, (mean, inv), x, dy, &mut grads, (sdy, sdyxh));
    let Some(dx) = grads.dx else { return };
    assert_eq!(dx.len(), x.len(), "batchnorm: dx length");
    let rows = (x.len() / c) as f64;
    let pairs = x.chunks_exact(c).zip(dy.chunks_exact(c));
    for ((xr, dr), dxr) in pairs.zip(dx.chunks_exact_mut(c)) {
        for j in 0..c {
            let a = gamma.map_or(1.0, |g| f64::from(g[j])) * inv[j];
            let mut d = f64::from(dr[j]);
            if train {
                let xh = (f64::from(xr[j]) - f64::from(mean[j])) * inv[j];
                d -= (sdy[j] + xh * sdyxh[j]) / rows;
            }
            dxr[j] = (a * d) as f32;
        }
    }
}
