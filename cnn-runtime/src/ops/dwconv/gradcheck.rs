//! Depthwise conv against a direct f64 reference and finite differences (see
//! [`crate::ops::gradcheck`]), over strides, dilations, both paddings,
//! multipliers and with and without a bias.

use super::{dwconv_backward, dwconv_forward};
use crate::testing::{dot, fd_check, noise, Fd};
use crate::{Activation, Conv2dSpec, Padding};

/// An `h x w x c` input, `k x k` taps, multiplier `m`, stride, dilation.
#[allow(clippy::too_many_arguments)]
fn spec(
    h: usize,
    w: usize,
    c: usize,
    m: usize,
    k: usize,
    st: usize,
    d: usize,
    pad_same: bool,
) -> Conv2dSpec {
    let p = if pad_same {
        Padding::Same
    } else {
        Padding::Valid
    };
    let (out_h, pad_top) = p.axis(h, k, st, d);
    let (out_w, pad_left) = p.axis(w, k, st, d);
    Conv2dSpec {
        in_h: h,
        in_w: w,
        in_c: c,
        out_h,
        out_w,
        out_c: c * m,
        kh: k,
        kw: k,
        sh: st,
        sw: st,
        dh: d,
        dw: d,
        pad_top,
        pad_left,
    }
}

/// `y[n, r, q, c*M + j] = b + sum_taps x[n, r*sh + a*dh - pt, q*sw + b*dw - pl, c] k[a, b, c*M + j]`.
fn reference(s: &Conv2dSpec, batch: usize, x: &[f32], k: &[f32], bias: Option<&[f32]>) -> Vec<f64> {
    let m = s.out_c / s.in_c;
    let mut y = vec![0f64; batch * s.out_h * s.out_w * s.out_c];
    for n in 0..batch {
        for r in 0..s.out_h {
            for q in 0..s.out_w {
                for o in 0..s.out_c {
                    let mut acc = bias.map_or(0.0, |b| f64::from(b[o]));
                    for a in 0..s.kh {
                        for b in 0..s.kw {
                            let ih = (r * s.sh + a * s.dh) as isize - s.pad_top as isize;
                            let iw = (q * s.sw + b * s.dw) as isize - s.pad_left as isize;
                            if ih < 0 || iw < 0 || ih as usize >= s.in_h || iw as usize >= s.in_w {
                                continue;
                            }
                            let xv = x[((n * s.in_h + ih as usize) * s.in_w + iw as usize)
                                * s.in_c
                                + o / m];
                            acc += f64::from(xv) * f64::from(k[(a * s.kw + b) * s.out_c + o]);
                        }
                    }
                    y[((n * s.out_h + r) * s.out_w + q) * s.out_c + o] = acc;
                }
            }
        }
    }
    y
}

fn check(s: Conv2dSpec, with_bias: bool) {
    let batch = 2;
    let tag = format!("{s:?} bias {with_bias}");
    let mut x = noise(batch * s.in_h * s.in_w * s.in_c, 1);
    let mut k = noise(s.kh * s.kw * s.out_c, 2);
    let mut b = noise(s.out_c, 3);
    let ylen = batch * s.out_h * s.out_w * s.out_c;
    let g = noise(ylen, 4);
    let fwd = |x: &[f32], k: &[f32], b: &[f32]| {
        let mut y = vec![f32::NAN; ylen];
        dwconv_forward(
            &s,
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
    let r = reference(&s, batch, &x, &k, with_bias.then_some(&b[..]));
    for (a, w) in y.iter().zip(&r) {
        assert!(
            (f64::from(*a) - w).abs() <= 1e-5 * (1.0 + w.abs()),
            "{tag}: {a} vs {w}"
        );
    }
    let mut dx = vec![f32::NAN; x.len()];
    let mut dk = vec![f32::NAN; k.len()];
    let mut db = vec![f32::NAN; b.len()];
    dwconv_backward(
        &s,
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
    // Without dx the parameter gradients are the same.
    let mut dk2 = vec![f32::NAN; k.len()];
    dwconv_backward(&s, batch, &x0, &k0, &g, None, &mut dk2, None);
    assert_eq!(dk, dk2, "{tag}: dkernel depends on dx");
}

#[test]
fn dwconv_matches_reference_and_finite_differences() {
    // (h, w, c, multiplier, k, stride, dilation, same)
    for (h, w, c, m, k, st, d, sm) in [
        (6, 6, 4, 1, 3, 1, 1, true),
        (7, 5, 3, 2, 3, 2, 1, true),
        (8, 8, 2, 1, 3, 2, 1, true),
        (9, 9, 3, 1, 3, 1, 2, true),
        (9, 7, 2, 3, 2, 1, 1, false),
        (10, 9, 5, 1, 3, 2, 2, false),
        (5, 5, 16, 1, 5, 1, 1, true),
    ] {
        for bias in [true, false] {
            check(spec(h, w, c, m, k, st, d, sm), bias);
        }
    }
}

/// The activation is applied after the bias, as in conv.
#[test]
fn dwconv_applies_its_activation() {
    let s = spec(4, 4, 2, 1, 3, 1, 1, true);
    let x = noise(32, 5);
    let k = noise(18, 6);
    let (mut lin, mut relu) = (vec![0f32; 32], vec![0f32; 32]);
    dwconv_forward(&s, Activation::Linear, 1, &x, &k, None, &mut lin);
    dwconv_forward(&s, Activation::Relu, 1, &x, &k, None, &mut relu);
    assert!(lin.iter().any(|v| *v < 0.0));
    for (l, r) in lin.iter().zip(&relu) {
        assert_eq!(*r, l.max(0.0));
    }
}
