//! The shared helpers of the finite-difference gradient checks, which live
//! beside their ops (`ops/<op>/gradcheck.rs`) and cover every option combination.
//!
//! For an op `y = f(x, K, b)` and a fixed random `g`, the scalar loss is
//! `L = sum(y * g)` (accumulated in f64). The analytic gradients from the op's
//! backward (with `dy = g`) are compared with central differences of `L`. The
//! ops run in f32, so steps are moderately large (`h = 1e-2`, exact for the
//! ops that are linear in the perturbed tensor) and the tolerance is relative
//! to the largest gradient of the tensor: an indexing bug gives O(1) errors,
//! rounding gives about 1e-4.
//!
//! Forward values are also checked against a naive f64 reference, so that a
//! wrong forward with a consistent backward cannot pass.

/// `len` deterministic pseudo-random values in `[-1, 1)` (xorshift of `seed`).
pub(crate) fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e3779b97f4a7c15).wrapping_add(12345);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `sum(y * g)` in f64: the scalar loss whose gradient the checks compare.
pub(crate) fn dot(y: &[f32], g: &[f32]) -> f64 {
    y.iter().zip(g).map(|(a, b)| *a as f64 * *b as f64).sum()
}

/// Checks `analytic` against central differences of `loss` over (a sample of)
/// the entries of `v`.
pub(crate) fn fd_check(
    what: &str,
    v: &mut [f32],
    analytic: &[f32],
    h: f32,
    tol: f64,
    mut loss: impl FnMut(&[f32]) -> f64,
) {
    assert_eq!(v.len(), analytic.len());
    let scale = analytic
        .iter()
        .fold(0f64, |a, &b| a.max(b.abs() as f64))
        .max(1e-3);
    let step = (v.len() / 150).max(1);
    let mut worst = 0f64;
    for i in (0..v.len()).step_by(step) {
        let old = v[i];
        v[i] = old + h;
        let lp = loss(v);
        v[i] = old - h;
        let lm = loss(v);
        v[i] = old;
        let num = (lp - lm) / (2.0 * (h as f64));
        let err = (num - analytic[i] as f64).abs() / scale;
        worst = worst.max(err);
        assert!(
            err <= tol,
            "{what}[{i}]: numeric {num} vs analytic {} (scale {scale})",
            analytic[i]
        );
    }
    assert!(worst.is_finite());
}

/// Output size and leading padding of a `same` axis (Keras's rule).
pub(crate) fn same(n: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let e = (k - 1) * d + 1;
    let out = n.div_ceil(s);
    let total = ((out - 1) * s + e).saturating_sub(n);
    (out, total / 2)
}

/// Output size and (zero) padding of a `valid` axis.
pub(crate) fn valid(n: usize, k: usize, s: usize, d: usize) -> (usize, usize) {
    let e = (k - 1) * d + 1;
    ((n - e) / s + 1, 0)
}
