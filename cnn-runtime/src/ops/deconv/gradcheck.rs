//! Transposed conv against a reference that builds Keras's uncropped output and
//! crops it, and finite differences (see [`crate::ops::gradcheck`]).

use super::{deconv_backward, deconv_forward};
use crate::testing::{dot, fd_check, noise, Fd};
use crate::{Activation, Conv2dSpec};

/// The transposed-conv spec of an `h x w x c` input, `f` filters, a square
/// `k` kernel and stride `s`, `same` or `valid`, by Keras's rules.
fn spec(h: usize, w: usize, c: usize, f: usize, k: usize, s: usize, same: bool) -> Conv2dSpec {
    let axis = |n: usize| {
        if same {
            (n * s, k.saturating_sub(s) / 2)
        } else {
            ((n - 1) * s + k.max(s), 0)
        }
    };
    let ((oh, pt), (ow, pl)) = (axis(h), axis(w));
    Conv2dSpec {
        in_h: oh,
        in_w: ow,
        in_c: f,
        out_h: h,
        out_w: w,
        out_c: c,
        kh: k,
        kw: k,
        sh: s,
        sw: s,
        dh: 1,
        dw: 1,
        pad_top: pt,
        pad_left: pl,
    }
}

/// Scatter every input pixel into the full `(h-1)*s + k` output, then keep
/// `out` cells from `crop` on (zeros past the full output), plus the bias.
fn reference(t: &Conv2dSpec, batch: usize, x: &[f32], k: &[f32], bias: Option<&[f32]>) -> Vec<f64> {
    let (f, c) = (t.in_c, t.out_c);
    let (fh, fw) = ((t.out_h - 1) * t.sh + t.kh, (t.out_w - 1) * t.sw + t.kw);
    let mut y = vec![0f64; batch * t.in_h * t.in_w * f];
    for n in 0..batch {
        let mut full = vec![0f64; fh * fw * f];
        for i in 0..t.out_h {
            for j in 0..t.out_w {
                for a in 0..t.kh {
                    for b in 0..t.kw {
                        for o in 0..f {
                            for ch in 0..c {
                                let xv = x[((n * t.out_h + i) * t.out_w + j) * c + ch];
                                let kv = k[((a * t.kw + b) * f + o) * c + ch];
                                full[((i * t.sh + a) * fw + j * t.sw + b) * f + o] +=
                                    f64::from(xv) * f64::from(kv);
                            }
                        }
                    }
                }
            }
        }
        for u in 0..t.in_h {
            for v in 0..t.in_w {
                for o in 0..f {
                    let (fu, fv) = (u + t.pad_top, v + t.pad_left);
                    let val = if fu < fh && fv < fw {
                        full[(fu * fw + fv) * f + o]
                    } else {
                        0.0
                    };
                    y[((n * t.in_h + u) * t.in_w + v) * f + o] =
                        val + bias.map_or(0.0, |b| f64::from(b[o]));
                }
            }
        }
    }
    y
}

fn check(t: Conv2dSpec, with_bias: bool) {
    let batch = 2;
    let tag = format!("{t:?} bias {with_bias}");
    let mut x = noise(batch * t.out_h * t.out_w * t.out_c, 1);
    let mut k = noise(t.kh * t.kw * t.in_c * t.out_c, 2);
    let mut b = noise(t.in_c, 3);
    let ylen = batch * t.in_h * t.in_w * t.in_c;
    let g = noise(ylen, 4);
    let fwd = |x: &[f32], k: &[f32], b: &[f32]| {
        let mut y = vec![f32::NAN; ylen];
        deconv_forward(
            &t,
            Activation::Linear,
            batch,
            x,
            k,
            with_bias.then_some(b),
            &mut y,
        );
        y
    };
    let y = fwd(&x, &k, &b);
    let r = reference(&t, batch, &x, &k, with_bias.then_some(&b[..]));
    for (a, w) in y.iter().zip(&r) {
        assert!(
            (f64::from(*a) - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{tag}: {a} vs {w}"
        );
    }
    let mut dx = vec![f32::NAN; x.len()];
    let mut dk = vec![f32::NAN; k.len()];
    let mut db = vec![f32::NAN; b.len()];
    deconv_backward(
        &t,
        batch,
        &x,
        &k,
        &g,
        Some(&mut dx),
        &mut dk,
        with_bias.then_some(&mut db[..]),
    );
    let (k0, b0, x0) = (k.clone(), b.clone(), x.clone());
    fd_check(
        Fd::Sampled,
        &format!("{tag} dx"),
        &mut x,
        &dx,
        1e-2,
        1e-3,
        |xp| dot(&fwd(xp, &k0, &b0), &g),
    );
    fd_check(
        Fd::Sampled,
        &format!("{tag} dk"),
        &mut k,
        &dk,
        1e-2,
        1e-3,
        |kp| dot(&fwd(&x0, kp, &b0), &g),
    );
    if with_bias {
        fd_check(
            Fd::Sampled,
            &format!("{tag} db"),
            &mut b,
            &db,
            1e-2,
            1e-3,
            |bp| dot(&fwd(&x0, &k0, bp), &g),
        );
    }
}

#[test]
fn deconv_matches_reference_and_finite_differences() {
    // (h, w, c, filters, k, stride, same): kernels smaller than, equal to and
    // larger than the stride, even and odd.
    for (h, w, c, f, k, s, sm) in [
        (3, 3, 2, 2, 1, 2, false),
        (4, 3, 3, 2, 2, 2, false),
        (4, 5, 2, 3, 3, 1, true),
        (4, 4, 2, 3, 3, 2, true),
        (4, 4, 2, 2, 3, 2, false),
        (3, 3, 2, 2, 4, 2, true),
        (2, 3, 4, 5, 5, 3, true),
    ] {
        for bias in [true, false] {
            check(spec(h, w, c, f, k, s, sm), bias);
        }
    }
}
