//! Augmentation layers (`randomflip`, `randomtranslate`, `randomrotate`,
//! `randomzoom`): in training, each image is moved by a transform drawn for
//! it; inference never calls this module (the layers pass values through).
//!
//! Every transform is affine: output pixel (column `x`, row `y`) reads the
//! input at `(a0 x + a1 y + a2, b0 x + b1 y + b2)`, as Keras's
//! `affine_transform` does, with bilinear interpolation between pixels and
//! Keras's default `fill_mode="reflect"` outside the image (the image
//! mirrored about its edge: `d c b a | a b c d | d c b a`). A flip's
//! coordinates are whole, so it copies values exactly.
//!
//! The transform of sample `i` is a pure function of `(seed, i)` (the same
//! SplitMix64 hash as dropout's masks), so it does not depend on how a batch
//! is split across parts or cores.

use crate::ops::dropout::mix;
use crate::{Augment, AugmentSpec};
use std::f64::consts::TAU;

/// An affine map from output to input coordinates (`x` the column, `y` the
/// row): `x_in = a[0] x + a[1] y + a[2]`, `y_in = b[0] x + b[1] y + b[2]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub a: [f64; 3],
    pub b: [f64; 3],
}

impl Affine {
    /// The map that moves nothing.
    pub const IDENTITY: Affine = Affine {
        a: [1.0, 0.0, 0.0],
        b: [0.0, 1.0, 0.0],
    };

    /// Keras's `RandomTranslation` matrix: the image shifted right by `dx`
    /// and down by `dy` pixels.
    pub fn translation(dx: f64, dy: f64) -> Affine {
        Affine {
            a: [1.0, 0.0, -dx],
            b: [0.0, 1.0, -dy],
        }
    }

    /// Keras's `RandomRotation` matrix: a turn by `angle` radians about the
    /// centre of an `h x w` image.
    pub fn rotation(angle: f64, h: usize, w: usize) -> Affine {
        let (sin, cos) = angle.sin_cos();
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        Affine {
            a: [cos, -sin, cx - cos * cx + sin * cy],
            b: [sin, cos, cy - sin * cx - cos * cy],
        }
    }

    /// Keras's `RandomZoom` matrix: input coordinates scaled by `zoom` about
    /// the centre (`zoom > 1` shows more of the image: zooms out).
    pub fn zoom(zoom: f64, h: usize, w: usize) -> Affine {
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        Affine {
            a: [zoom, 0.0, cx * (1.0 - zoom)],
            b: [0.0, zoom, cy * (1.0 - zoom)],
        }
    }

    /// A mirror image: columns reversed (`horizontal`), rows reversed
    /// (`vertical`).
    pub fn flip(horizontal: bool, vertical: bool, h: usize, w: usize) -> Affine {
        let mut t = Affine::IDENTITY;
        if horizontal {
            t.a = [-1.0, 0.0, w as f64 - 1.0];
        }
        if vertical {
            t.b = [0.0, -1.0, h as f64 - 1.0];
        }
        t
    }
}

/// A number in `[0, 1)` for draw `k` of sample `sample` in the stream `seed`.
fn uniform(seed: u64, sample: u64, k: u64) -> f64 {
    let bits = mix(mix(seed) ^ sample.wrapping_mul(4).wrapping_add(k)) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// A number in `[-f, f)` for draw `k` of sample `sample`.
fn symmetric(f: f32, seed: u64, sample: u64, k: u64) -> f64 {
    f64::from(f) * (2.0 * uniform(seed, sample, k) - 1.0)
}

/// The transform `spec` draws for sample `sample` of the stream `seed`.
pub fn transform(spec: &AugmentSpec, seed: u64, sample: u64) -> Affine {
    let (h, w) = (spec.h, spec.w);
    match spec.kind {
        Augment::Flip {
            horizontal,
            vertical,
        } => Affine::flip(
            horizontal && uniform(seed, sample, 0) < 0.5,
            vertical && uniform(seed, sample, 1) < 0.5,
            h,
            w,
        ),
        Augment::Translate(fh, fw) => {
            let dy = symmetric(fh.get(), seed, sample, 0) * h as f64;
            let dx = symmetric(fw.get(), seed, sample, 1) * w as f64;
            Affine::translation(dx, dy)
        }
        Augment::Rotate(f) => Affine::rotation(symmetric(f.get(), seed, sample, 0) * TAU, h, w),
        Augment::Zoom(f) => Affine::zoom(1.0 + symmetric(f.get(), seed, sample, 0), h, w),
    }
}

/// A coordinate folded into `[0, len - 1]` by reflection about the image's
/// edges (half-sample symmetric, period `2 len`).
fn reflect(u: f64, len: usize) -> f64 {
    let n = len as f64;
    // Inside the image (the common case) nothing folds.
    if (0.0..=n - 1.0).contains(&u) {
        return u;
    }
    if len <= 1 || !u.is_finite() {
        return 0.0;
    }
    let mut m = u.rem_euclid(2.0 * n);
    if m >= n {
        m = 2.0 * n - 1.0 - m;
    }
    // Between the last pixel and its mirror (and between -1 and 0) the value
    // is the edge pixel's.
    m.clamp(0.0, n - 1.0)
}

/// The two neighbours of a reflected coordinate along an axis of `len`
/// pixels, and the weight of the second.
fn neighbours(u: f64, len: usize) -> (usize, usize, f32) {
    let m = reflect(u, len);
    let lo = (m.floor() as usize).min(len - 1);
    let hi = (lo + 1).min(len - 1);
    (lo, hi, (m - lo as f64) as f32)
}

/// Calls `f(output pixel, input pixel, weight)` for every nonzero weight of
/// `t` on an `h x w` image (pixels as flat `row * w + column` indices).
fn each_tap(t: &Affine, h: usize, w: usize, mut f: impl FnMut(usize, usize, f32)) {
    // A flip, shift or zoom moves rows and columns apart: a row's
    // neighbours are worked out once per row.
    let separable = t.a[1] == 0.0 && t.b[0] == 0.0;
    for r in 0..h {
        let y = r as f64;
        let row = neighbours(t.b[1] * y + t.b[2], h);
        for q in 0..w {
            let x = q as f64;
            let (c0, c1, fx) = neighbours(t.a[0] * x + t.a[1] * y + t.a[2], w);
            let (r0, r1, fy) = if separable {
                row
            } else {
                neighbours(t.b[0] * x + t.b[1] * y + t.b[2], h)
            };
            let out = r * w + q;
            for (rr, cc, wgt) in [
                (r0, c0, (1.0 - fy) * (1.0 - fx)),
                (r0, c1, (1.0 - fy) * fx),
                (r1, c0, fy * (1.0 - fx)),
                (r1, c1, fy * fx),
            ] {
                // A zero weight is skipped, so that whole coordinates copy
                // exactly (a far infinity times 0 would be NaN).
                if wgt != 0.0 {
                    f(out, rr * w + cc, wgt);
                }
            }
        }
    }
}

/// `y` (overwritten) = one `h x w x c` image `x` moved by `t`.
///
/// # Panics
/// When `x` or `y` is not `h * w * c` long.
pub fn resample(t: &Affine, [h, w, c]: [usize; 3], x: &[f32], y: &mut [f32]) {
    assert!(
        x.len() == h * w * c && y.len() == x.len(),
        "augment: image length"
    );
    if *t == Affine::IDENTITY {
        y.copy_from_slice(x);
        return;
    }
    y.fill(0.0);
    each_tap(t, h, w, |out, src, wgt| {
        let v = &x[src * c..(src + 1) * c];
        for (o, v) in y[out * c..(out + 1) * c].iter_mut().zip(v) {
            *o += wgt * v;
        }
    });
}

/// Backward of [`resample`]: `dx` (overwritten) gathers each output
/// gradient at the input pixels it was read from, with the same weights.
///
/// # Panics
/// When `dy` or `dx` is not `h * w * c` long.
pub fn resample_backward(t: &Affine, [h, w, c]: [usize; 3], dy: &[f32], dx: &mut [f32]) {
    assert!(
        dy.len() == h * w * c && dx.len() == dy.len(),
        "augment: image length"
    );
    if *t == Affine::IDENTITY {
        dx.copy_from_slice(dy);
        return;
    }
    dx.fill(0.0);
    each_tap(t, h, w, |out, src, wgt| {
        let g = &dy[out * c..(out + 1) * c];
        for (d, g) in dx[src * c..(src + 1) * c].iter_mut().zip(g) {
            *d += wgt * g;
        }
    });
}

/// The training forward pass: each sample of `x` (sample `k` being number
/// `first + k` of the batch) moved by its transform into `y`.
///
/// # Panics
/// When the lengths do not hold whole samples of the spec's shape.
pub fn augment_forward(s: &AugmentSpec, seed: u64, first: usize, x: &[f32], y: &mut [f32]) {
    per_image(s, seed, first, x, y, resample);
}

/// Backward of [`augment_forward`] with the same `seed` and `first`.
///
/// # Panics
/// When the lengths do not hold whole samples of the spec's shape.
pub fn augment_backward(s: &AugmentSpec, seed: u64, first: usize, dy: &[f32], dx: &mut [f32]) {
    per_image(s, seed, first, dy, dx, resample_backward);
}

/// `f` on each sample of `src` and `dst` with the sample's transform.
fn per_image(
    s: &AugmentSpec,
    seed: u64,
    first: usize,
    src: &[f32],
    dst: &mut [f32],
    f: fn(&Affine, [usize; 3], &[f32], &mut [f32]),
) {
    let len = s.h * s.w * s.c;
    assert!(
        len > 0 && src.len().is_multiple_of(len) && dst.len() == src.len(),
        "augment: {} and {} values for images of {len}",
        src.len(),
        dst.len()
    );
    for (k, (a, b)) in src
        .chunks_exact(len)
        .zip(dst.chunks_exact_mut(len))
        .enumerate()
    {
        let t = transform(s, seed, (first + k) as u64);
        f(&t, [s.h, s.w, s.c], a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dot, fd_check, noise};
    use crate::Real;

    fn spec(h: usize, w: usize, c: usize, kind: Augment) -> AugmentSpec {
        AugmentSpec { h, w, c, kind }
    }

    const KINDS: [Augment; 4] = [
        Augment::Flip {
            horizontal: true,
            vertical: true,
        },
        // 0.2 and 0.1
        Augment::Translate(Real::from_bits(0x3e4c_cccd), Real::from_bits(0x3dcc_cccd)),
        Augment::Rotate(Real::from_bits(0x3e80_0000)), // 0.25
        Augment::Zoom(Real::from_bits(0x3f00_0000)),   // 0.5
    ];

    /// Reflection about the edges: `d c b a | a b c d | d c b a`.
    #[test]
    fn reflection_mirrors_about_the_edge() {
        let got: Vec<f64> = [-5.0, -1.0, -0.25, 0.0, 3.0, 3.5, 4.0, 5.0, 9.0]
            .iter()
            .map(|&u| reflect(u, 4))
            .collect();
        assert_eq!(got, [3.0, 0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 2.0, 1.0]);
        assert_eq!(reflect(7.5, 1), 0.0);
        assert_eq!(reflect(f64::NAN, 4), 0.0);
    }

    /// A flip copies exactly; a shift by whole pixels copies and reflects.
    #[test]
    fn whole_pixel_transforms_copy_values() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 rows of 3, 1 channel
        let mut y = [0f32; 6];
        resample(&Affine::flip(true, false, 2, 3), [2, 3, 1], &x, &mut y);
        assert_eq!(y, [3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        resample(&Affine::flip(false, true, 2, 3), [2, 3, 1], &x, &mut y);
        assert_eq!(y, [4.0, 5.0, 6.0, 1.0, 2.0, 3.0]);
        // One pixel right: the first column is the image's first column
        // mirrored.
        resample(&Affine::translation(1.0, 0.0), [2, 3, 1], &x, &mut y);
        assert_eq!(y, [1.0, 1.0, 2.0, 4.0, 4.0, 5.0]);
        // A half-turn of a 2x3 image is both flips.
        resample(
            &Affine::rotation(std::f64::consts::PI, 2, 3),
            [2, 3, 1],
            &x,
            &mut y,
        );
        for (g, want) in y.iter().zip([6.0, 5.0, 4.0, 3.0, 2.0, 1.0]) {
            assert!((g - want).abs() < 1e-5, "{y:?}");
        }
    }

    /// A half-pixel shift averages neighbours.
    #[test]
    fn fractional_shifts_interpolate() {
        let x = [0.0f32, 2.0, 4.0];
        let mut y = [0f32; 3];
        resample(&Affine::translation(-0.5, 0.0), [1, 3, 1], &x, &mut y);
        assert_eq!(y, [1.0, 3.0, 4.0]);
    }

    /// Each sample's transform depends on its number in the batch only: a
    /// batch run whole or in two parts gives the same images.
    #[test]
    fn parts_see_the_same_transforms() {
        for kind in KINDS {
            let s = spec(5, 6, 2, kind);
            let len = 5 * 6 * 2;
            let x = noise(4 * len, 3);
            let mut whole = vec![f32::NAN; x.len()];
            augment_forward(&s, 9, 0, &x, &mut whole);
            let mut split = vec![f32::NAN; x.len()];
            let (a, b) = split.split_at_mut(len);
            augment_forward(&s, 9, 0, &x[..len], a);
            augment_forward(&s, 9, 1, &x[len..], b);
            assert_eq!(whole, split, "{kind:?}");
            assert!(whole != x, "{kind:?} moved nothing");
        }
    }

    /// The drawn factors stay in their ranges and cover them.
    #[test]
    fn draws_cover_their_ranges() {
        let s = spec(9, 9, 1, Augment::Rotate(Real::new(0.1)));
        let angles: Vec<f64> = (0..2000)
            .map(|i| {
                let t = transform(&s, 5, i);
                t.b[0].atan2(t.a[0])
            })
            .collect();
        let limit = 0.1 * TAU;
        assert!(angles.iter().all(|a| a.abs() <= limit + 1e-9));
        assert!(angles.iter().any(|a| *a > 0.9 * limit));
        assert!(angles.iter().any(|a| *a < -0.9 * limit));
        let s = spec(9, 9, 1, Augment::Zoom(Real::new(0.2)));
        let zooms: Vec<f64> = (0..2000).map(|i| transform(&s, 5, i).a[0]).collect();
        assert!(zooms.iter().all(|z| (0.8..=1.2).contains(z)));
        assert!(zooms.iter().any(|z| *z > 1.18) && zooms.iter().any(|z| *z < 0.82));
    }

    #[test]
    fn gradients_match_finite_differences() {
        for kind in KINDS {
            let s = spec(4, 5, 2, kind);
            let len = 4 * 5 * 2;
            let batch = 3;
            let mut x = noise(batch * len, 1);
            let g = noise(batch * len, 2);
            let fwd = |x: &[f32]| {
                let mut y = vec![f32::NAN; x.len()];
                augment_forward(&s, 11, 2, x, &mut y);
                y
            };
            let mut dx = vec![f32::NAN; x.len()];
            augment_backward(&s, 11, 2, &g, &mut dx);
            let tag = format!("{kind:?}");
            fd_check(&tag, &mut x, &dx, 1e-2, 1e-3, |xp| dot(&fwd(xp), &g));
        }
    }
}
