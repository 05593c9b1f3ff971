//! Helpers shared by the crate's unit tests: deterministic test data, the
//! activations to loop over, conv runners that allocate their outputs,
//! comparisons, and the finite-difference gradient checks.
//!
//! The gradient checks (beside their ops, `ops/<op>/gradcheck.rs`) cover every
//! option combination. For an op `y = f(x, K, b)` and a fixed random `g`, the
//! scalar loss is `L = sum(y * g)` (accumulated in f64). The analytic gradients
//! from the op's backward (with `dy = g`) are compared with central differences
//! of `L`. The ops run in f32, so steps are moderately large (`h = 1e-2`, exact
//! for the ops that are linear in the perturbed tensor) and the tolerance is
//! relative to the largest gradient of the tensor: an indexing bug gives O(1)
//! errors, rounding gives about 1e-4. Forward values are also checked against a
//! naive f64 reference, so that a wrong forward with a consistent backward
//! cannot pass.

use crate::interp::Sequential;
use crate::ops::{conv2d_backward, conv2d_forward, Conv2dScratch, Grads, Operands};
use crate::{Activation, Conv2dSpec, DenseSpec, LayerSpec};

/// Every activation, for tests that loop over them.
pub(crate) const ACTIVATIONS: [Activation; 5] = [
    Activation::Linear,
    Activation::Relu,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Softmax,
];

/// `len` deterministic values in `[-1, 1)`, varied by `seed` (a cheap hash of
/// the index: consecutive values are far apart).
pub(crate) fn data(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.5) - 1.0)
        .collect()
}

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

/// The central difference of `loss` at entry `i` of `v` with step `h` (`v` is
/// restored afterwards).
fn central_difference(
    v: &mut [f32],
    i: usize,
    h: f32,
    loss: &mut impl FnMut(&[f32]) -> f64,
) -> f64 {
    let old = v[i];
    v[i] = old + h;
    let lp = loss(v);
    v[i] = old - h;
    let lm = loss(v);
    v[i] = old;
    (lp - lm) / (2.0 * (h as f64))
}

/// Checks `analytic` against central differences of `loss` (step `h`) over
/// about 150 entries of `v`, evenly spread: the error relative to the largest
/// analytic value (at least 1e-3) must be at most `tol`.
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
        let num = central_difference(v, i, h, &mut loss);
        let a = analytic[i];
        let err = (num - a as f64).abs() / scale;
        worst = worst.max(err);
        assert!(
            err <= tol,
            "{what}[{i}]: numeric {num} vs analytic {a} (scale {scale})"
        );
    }
    assert!(worst.is_finite());
}

/// Asserts `|got - want| <= tol * scale` entrywise, where `scale` is the
/// largest `|want|` (at least 1).
pub(crate) fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (u, v) in got.iter().zip(want) {
        assert!((u - v).abs() <= tol * scale, "{what}: {u} vs {v}");
    }
}

/// Runs `write` into a plain output of `cells` cells of `width` values, then
/// into channels `3..3 + width` of cells of `width + 5` (the others holding
/// a sentinel), as into a concat's output ([`crate::ops::Cells`]); asserts
/// the same bits land and the other channels are untouched.
pub(crate) fn assert_cells_agree(
    what: &str,
    cells: usize,
    width: usize,
    mut write: impl FnMut(crate::ops::Cells<'_>),
) {
    let mut plain = vec![f32::NAN; cells * width];
    write((&mut plain[..]).into());
    let (at, stride, sentinel) = (3, width + 5, -7.25f32);
    let mut wide = vec![sentinel; cells * stride];
    write(crate::ops::Cells {
        y: &mut wide[at..],
        stride: Some(stride),
    });
    for (k, cell) in wide.chunks_exact(stride).enumerate() {
        for (j, &v) in cell.iter().enumerate() {
            if (at..at + width).contains(&j) {
                let want = plain[k * width + j - at];
                assert_eq!(v.to_bits(), want.to_bits(), "{what}: cell {k} channel {j}");
            } else {
                assert_eq!(v, sentinel, "{what}: cell {k} channel {j} is another's");
            }
        }
    }
}

/// [`conv2d_forward`] into a fresh output (NaN-filled first, so every value
/// must be written).
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_forward(
    s: &Conv2dSpec,
    act: Activation,
    batch: usize,
    x: &[f32],
    k: &[f32],
    b: &[f32],
    scratch: &mut Conv2dScratch,
) -> Vec<f32> {
    let mut y = vec![f32::NAN; batch * s.out_h * s.out_w * s.out_c];
    conv2d_forward(s, act, batch, x, k, Some(b), &mut y, scratch);
    y
}

/// [`conv2d_backward`] into fresh NaN-filled gradients: `(dx, dk, db)`, `dx`
/// empty (not asked for) unless `with_dx`.
pub(crate) fn conv_backward(
    s: &Conv2dSpec,
    batch: usize,
    (x, k, dz): (&[f32], &[f32], &[f32]),
    with_dx: bool,
    scratch: &mut Conv2dScratch,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut dx = vec![f32::NAN; if with_dx { x.len() } else { 0 }];
    let mut dk = vec![f32::NAN; k.len()];
    let mut db = vec![f32::NAN; s.out_c];
    let dxs = with_dx.then_some(&mut dx[..]);
    conv2d_backward(s, batch, x, k, dz, dxs, &mut dk, Some(&mut db), scratch);
    (dx, dk, db)
}

/// A flatten and a 4 -> 3 dense softmax on `[2, 2, 1]` inputs (seed 5).
pub(crate) fn tiny_model() -> Sequential {
    let layers = vec![
        LayerSpec::Flatten { len: 4 },
        LayerSpec::Dense {
            spec: DenseSpec {
                inputs: 4,
                units: 3,
            },
            act: Activation::Softmax,
            bias: true,
        },
    ];
    Sequential::new([2, 2, 1], layers, 5).unwrap()
}

/// Checks a layer kernel with a kernel tensor and an optional bias (a
/// language-2 kernel taking [`Operands`] and [`Grads`]): its forward against
/// an f64 `reference`, every gradient against finite differences of
/// `sum(y * g)`, and that leaving out `dx` and `dbias` does not change
/// `dkernel`. `lens` are the lengths of x, the kernel, the bias and y.
pub(crate) fn check_kernel_op(
    tag: &str,
    batch: usize,
    (xlen, klen, blen, ylen): (usize, usize, usize, usize),
    with_bias: bool,
    forward: impl Fn(Operands<'_>, &mut [f32]),
    backward: impl Fn(Operands<'_>, &[f32], Grads<'_>),
    reference: impl Fn(Operands<'_>) -> Vec<f64>,
) {
    let tag = format!("{tag} bias {with_bias}");
    let (mut x, mut k, mut b) = (noise(xlen, 1), noise(klen, 2), noise(blen, 3));
    let g = noise(ylen, 4);
    let op = |x: &'_ [f32], kernel: &'_ [f32], b: &'_ [f32]| -> (Vec<f32>, f64) {
        let bias = with_bias.then_some(b);
        let mut y = vec![f32::NAN; ylen];
        forward(
            Operands {
                batch,
                x,
                kernel,
                bias,
            },
            &mut y,
        );
        let l = dot(&y, &g);
        (y, l)
    };
    let (y, _) = op(&x, &k, &b);
    let want = reference(Operands {
        batch,
        x: &x,
        kernel: &k,
        bias: with_bias.then_some(&b),
    });
    for (a, w) in y.iter().zip(want) {
        assert!(
            (f64::from(*a) - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{tag}: {a} vs {w}"
        );
    }
    let (mut dx, mut dk, mut db) = (
        vec![f32::NAN; xlen],
        vec![f32::NAN; klen],
        vec![f32::NAN; blen],
    );
    let ops = Operands {
        batch,
        x: &x,
        kernel: &k,
        bias: None,
    };
    let dbias = with_bias.then_some(&mut db[..]);
    backward(
        ops,
        &g,
        Grads {
            dx: Some(&mut dx),
            dkernel: &mut dk,
            dbias,
        },
    );
    let (k0, b0, x0) = (k.clone(), b.clone(), x.clone());
    fd_check(&format!("{tag} dx"), &mut x, &dx, 1e-2, 1e-3, |v| {
        op(v, &k0, &b0).1
    });
    fd_check(&format!("{tag} dk"), &mut k, &dk, 1e-2, 1e-3, |v| {
        op(&x0, v, &b0).1
    });
    if with_bias {
        fd_check(&format!("{tag} db"), &mut b, &db, 1e-2, 1e-3, |v| {
            op(&x0, &k0, v).1
        });
    }
    let mut dk2 = vec![f32::NAN; klen];
    let ops = Operands {
        batch,
        x: &x0,
        kernel: &k0,
        bias: None,
    };
    backward(
        ops,
        &g,
        Grads {
            dx: None,
            dkernel: &mut dk2,
            dbias: None,
        },
    );
    assert_eq!(dk, dk2, "{tag}: dkernel depends on dx or dbias");
}

/// The f64 reference of a windowed op with `s`'s geometry: each output
/// `(n, r, q, o)` is `bias[o]` plus, over the taps `(a, b)` whose input cell
/// lies inside the image, the products `x[cell, ci] * k[ki]` for every
/// `(ci, ki)` that `pairs(tap, o)` lists (all input channels for a conv, one
/// for a depthwise conv).
pub(crate) fn window_reference(
    s: &Conv2dSpec,
    op: Operands<'_>,
    pairs: impl Fn(usize, usize) -> Vec<(usize, usize)>,
) -> Vec<f64> {
    let mut y = vec![0f64; op.batch * s.out_h * s.out_w * s.out_c];
    for (i, out) in y.iter_mut().enumerate() {
        let (n, r, q, o) = (
            i / (s.out_h * s.out_w * s.out_c),
            i / (s.out_w * s.out_c) % s.out_h,
            i / s.out_c % s.out_w,
            i % s.out_c,
        );
        *out = op.bias.map_or(0.0, |b| f64::from(b[o]));
        for (a, b) in (0..s.kh).flat_map(|a| (0..s.kw).map(move |b| (a, b))) {
            let ih = (r * s.sh + a * s.dh)
                .checked_sub(s.pad_top)
                .filter(|&v| v < s.in_h);
            let iw = (q * s.sw + b * s.dw)
                .checked_sub(s.pad_left)
                .filter(|&v| v < s.in_w);
            let (Some(ih), Some(iw)) = (ih, iw) else {
                continue;
            };
            let cell = ((n * s.in_h + ih) * s.in_w + iw) * s.in_c;
            for (ci, ki) in pairs(a * s.kw + b, o) {
                *out += f64::from(op.x[cell + ci]) * f64::from(op.kernel[ki]);
            }
        }
    }
    y
}
