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

use std::ops::Range;

use crate::pool::{self, SendPtr};

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

/// Blocks of rows that the channel sums run over: each block summed in row
/// order, then the blocks in order, so that the sums' bits depend on the
/// rows alone, never on how many cores summed the blocks.
const SUM_BLOCKS: usize = pool::FIXED_PARTS;

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
    let yp = SendPtr(y.as_mut_ptr());
    pool::over_ranges(x.len() / c, 2 * x.len(), &|r| {
        // SAFETY: rows `r` of y (in bounds: y is as long as x) are this
        // part's alone.
        let ys = unsafe { yp.slice(r.start * c, r.len() * c) };
        rows::scale_shift(a, b, &x[r.start * c..r.end * c], ys);
    });
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

/// Sums `f(rows, sums)` over the [`SUM_BLOCKS`] blocks of `0..rows` into
/// `out` (`width` sums): block `t` adds its rows into its own `width` values
/// of `blocks` (zeroed first), then the blocks are added in order.
fn block_sums(
    rows: usize,
    work: usize,
    (blocks, out): (&mut [f64], &mut [f64]),
    f: &(dyn Fn(Range<usize>, &mut [f64]) + Sync),
) {
    let width = out.len();
    let nb = SUM_BLOCKS.min(rows).max(1);
    assert!(blocks.len() >= nb * width, "batchnorm: block sums scratch");
    let bp = SendPtr(blocks.as_mut_ptr());
    // The same blocks on the pool or in order on this thread: the same sums.
    let block = |t: usize| {
        // SAFETY: block t's `width` sums (in bounds, checked above) are its own.
        let sums = unsafe { bp.slice(t * width, width) };
        sums.fill(0.0);
        f(pool::split(rows, nb, t), sums);
    };
    if nb > 1 && pool::parts_for(work, nb) > 1 {
        pool::run(nb, &block);
    } else {
        (0..nb).for_each(block);
    }
    out.fill(0.0);
    for block in blocks[..nb * width].chunks_exact(width) {
        for (o, s) in out.iter_mut().zip(block) {
            *o += s;
        }
    }
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
    let rows = x.len() / c;
    let (acc, blocks) = zeroed(sums, (2 + SUM_BLOCKS) * c).split_at_mut(2 * c);
    let (mu, sq) = acc.split_at_mut(c);
    let rows_of = |r: Range<usize>| &x[r.start * c..r.end * c];
    block_sums(rows, x.len(), (&mut *blocks, &mut *mu), &|r, s| {
        rows::sum(c, rows_of(r), s)
    });
    for m in mu.iter_mut() {
        *m /= rows as f64;
    }
    let mu: &[f64] = mu;
    block_sums(rows, 3 * x.len(), (blocks, &mut *sq), &|r, s| {
        rows::sum_squared_deviations(c, rows_of(r), mu, s)
    });
    for j in 0..c {
        mean[j] = mu[j] as f32;
        var[j] = (sq[j] / rows as f64) as f32;
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
/// (those asked for), with `xh = (x - mean) * inv`; `sums` (`2 * c`)
/// receives both, `sum(dy)` first (`blocks`: scratch for [`block_sums`]).
fn param_grads(
    c: usize,
    (mean, inv): (&[f64], &[f64]),
    (x, dy): (&[f32], &[f32]),
    grads: &mut BatchNormGrads<'_>,
    (sums, blocks): (&mut [f64], &mut [f64]),
) {
    assert_eq!(x.len(), dy.len(), "batchnorm: x and dy lengths");
    assert!(
        c > 0 && !x.is_empty() && x.len().is_multiple_of(c),
        "batchnorm: length not a positive multiple of channels"
    );
    block_sums(x.len() / c, 4 * x.len(), (blocks, &mut *sums), &|r, s| {
        let (sdy, sdyxh) = s.split_at_mut(c);
        let (xs, dys) = (&x[r.start * c..r.end * c], &dy[r.start * c..r.end * c]);
        rows::sum_grads(c, xs, dys, mean, inv, sdy, sdyxh);
    });
    let (sdy, sdyxh) = sums.split_at(c);
    for (out, sums) in [(&mut grads.dgamma, sdyxh), (&mut grads.dbeta, sdy)] {
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
/// `sums` is scratch for the f64 sums (it grows only).
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
    assert!(
        var.len() == c && mean.len() == c,
        "batchnorm: statistics length"
    );
    assert!(
        gamma.is_none_or(|g| g.len() == c),
        "batchnorm: gamma length"
    );
    // Per channel, in f64: 1 / sqrt(var + eps), the mean, the two sums, the
    // input gradient's coefficients; then the blocks' sums.
    let (per, blocks) = zeroed(sums, (7 + 2 * SUM_BLOCKS) * c).split_at_mut(7 * c);
    let (inv, rest) = per.split_at_mut(c);
    let (mean64, rest) = rest.split_at_mut(c);
    let (both, coef) = rest.split_at_mut(2 * c);
    for ((i, m), (v, mv)) in inv
        .iter_mut()
        .zip(mean64.iter_mut())
        .zip(var.iter().zip(mean))
    {
        *i = 1.0 / (f64::from(*v) + f64::from(eps)).sqrt();
        *m = f64::from(*mv);
    }
    param_grads(c, (mean64, inv), (x, dy), &mut grads, (&mut *both, blocks));
    let Some(dx) = grads.dx else { return };
    assert_eq!(dx.len(), x.len(), "batchnorm: dx length");
    // dx = a dy - k1 - k2 (x - mean), with a = gamma * inv, and in training
    // k1 = a sum(dy) / m, k2 = a inv sum(dy xh) / m (in inference 0: dx
    // does not depend on x).
    let rows = x.len() / c;
    let (a, k) = coef.split_at_mut(c);
    let (k1, k2) = k.split_at_mut(c);
    let (sdy, sdyxh) = both.split_at(c);
    for j in 0..c {
        a[j] = gamma.map_or(1.0, |g| f64::from(g[j])) * inv[j];
        k1[j] = a[j] * sdy[j] / rows as f64;
        k2[j] = a[j] * inv[j] * sdyxh[j] / rows as f64;
    }
    let (a, k1, k2, mean64): (&[f64], &[f64], &[f64], &[f64]) = (a, k1, k2, mean64);
    let dxp = SendPtr(dx.as_mut_ptr());
    pool::over_ranges(rows, 4 * x.len(), &|r| {
        // SAFETY: rows `r` of dx (as long as x, checked above) are this
        // part's alone.
        let dxs = unsafe { dxp.slice(r.start * c, r.len() * c) };
        let (xs, dys) = (&x[r.start * c..r.end * c], &dy[r.start * c..r.end * c]);
        if train {
            rows::input_grad(c, xs, dys, a, k1, k2, mean64, dxs);
        } else {
            rows::input_grad_constant(c, dys, a, dxs);
        }
    });
}

/// The loops over rows (runs of `c` channels), each compiled for AVX-512,
/// AVX2 and the portable path (the crate itself targets baseline x86-64,
/// whose two-lane SSE2 made them twice as slow as their share of the sums).
mod rows {
    use crate::cpu::avx512_twin;

    avx512_twin! {
        /// `y = x * a + b` per channel.
        pub fn scale_shift(a: &[f32], b: &[f32], x: &[f32], y: &mut [f32]) => "avx512f,avx2,fma", {
            let c = a.len();
            let b = &b[..c];
            for (xr, yr) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
                for (((y, x), a), b) in yr.iter_mut().zip(xr).zip(a).zip(b) {
                    *y = x * a + b;
                }
            }
        }
    }

    avx512_twin! {
        /// `s += x`, row by row, in f64.
        pub fn sum(c: usize, x: &[f32], s: &mut [f64]) => "avx512f,avx2,fma", {
            let s = &mut s[..c];
            for row in x.chunks_exact(c) {
                for (s, v) in s.iter_mut().zip(row) {
                    *s += f64::from(*v);
                }
            }
        }
    }

    avx512_twin! {
        /// `s += (x - mu)^2`, row by row, in f64.
        pub fn sum_squared_deviations(c: usize, x: &[f32], mu: &[f64], s: &mut [f64])
            => "avx512f,avx2,fma", {
            let (mu, s) = (&mu[..c], &mut s[..c]);
            for row in x.chunks_exact(c) {
                for ((s, v), m) in s.iter_mut().zip(row).zip(mu) {
                    let d = f64::from(*v) - m;
                    *s += d * d;
                }
            }
        }
    }

    avx512_twin! {
        /// `sdy += dy` and `sdyxh += dy * (x - mean) * inv`, row by row, in f64.
        pub fn sum_grads(
            c: usize,
            x: &[f32],
            dy: &[f32],
            mean: &[f64],
            inv: &[f64],
            sdy: &mut [f64],
            sdyxh: &mut [f64],
        ) => "avx512f,avx2,fma", {
            let (mean, inv) = (&mean[..c], &inv[..c]);
            let (sdy, sdyxh) = (&mut sdy[..c], &mut sdyxh[..c]);
            for (xr, dr) in x.chunks_exact(c).zip(dy.chunks_exact(c)) {
                let sums = sdy.iter_mut().zip(sdyxh.iter_mut());
                for ((((s1, s2), x), g), (m, i)) in sums.zip(xr).zip(dr).zip(mean.iter().zip(inv)) {
                    let g = f64::from(*g);
                    *s1 += g;
                    *s2 += g * ((f64::from(*x) - m) * i);
                }
            }
        }
    }

    avx512_twin! {
        /// Training's `dx = a dy - k1 - k2 (x - mean)`, in f64.
        #[allow(clippy::too_many_arguments)]
        pub fn input_grad(
            c: usize,
            x: &[f32],
            dy: &[f32],
            a: &[f64],
            k1: &[f64],
            k2: &[f64],
            mean: &[f64],
            dx: &mut [f32],
        ) => "avx512f,avx2,fma", {
            let (a, k1, k2, mean) = (&a[..c], &k1[..c], &k2[..c], &mean[..c]);
            let rows = x.chunks_exact(c).zip(dy.chunks_exact(c));
            for ((xr, dr), dxr) in rows.zip(dx.chunks_exact_mut(c)) {
                let coef = a.iter().zip(k1).zip(k2.iter().zip(mean));
                for (((d, x), g), ((a, k1), (k2, m))) in dxr.iter_mut().zip(xr).zip(dr).zip(coef) {
                    *d = (a * f64::from(*g) - k1 - k2 * (f64::from(*x) - m)) as f32;
                }
            }
        }
    }

    avx512_twin! {
        /// Inference's `dx = a dy` (constant statistics), in f64.
        pub fn input_grad_constant(c: usize, dy: &[f32], a: &[f64], dx: &mut [f32])
            => "avx512f,avx2,fma", {
            let a = &a[..c];
            for (dr, dxr) in dy.chunks_exact(c).zip(dx.chunks_exact_mut(c)) {
                for ((d, g), a) in dxr.iter_mut().zip(dr).zip(a) {
                    *d = (a * f64::from(*g)) as f32;
                }
            }
        }
    }
}
