//! Zero padding of the spatial axes (Keras's `ZeroPadding2D`): rows and
//! columns of zeros around each sample, as [`ZeroPadSpec`] says.

use std::ops::Range;

use crate::ops::per_sample;
use crate::ZeroPadSpec;

/// Calls `f(input range, output range)` for each row of one sample: where the
/// row's values sit in the input and in the padded output.
fn rows(s: &ZeroPadSpec, mut f: impl FnMut(Range<usize>, Range<usize>)) {
    let (w, c, ow) = (s.in_w, s.c, s.out()[1]);
    for r in 0..s.in_h {
        let at = ((r + s.top) * ow + s.left) * c;
        f(r * w * c..(r + 1) * w * c, at..at + w * c);
    }
}

/// Values per sample of the input and of the padded output.
fn lens(s: &ZeroPadSpec) -> (usize, usize) {
    let [oh, ow] = s.out();
    (s.in_h * s.in_w * s.c, oh * ow * s.c)
}

/// `y` (overwritten) = each sample of `x` framed by zeros.
///
/// # Panics
/// When a length does not match the spec and batch.
pub fn zeropad_forward(s: &ZeroPadSpec, batch: usize, x: &[f32], y: &mut [f32]) {
    let (xl, yl) = lens(s);
    for (xs, ys) in per_sample(["zeropad", "x", "y"], batch, (x, xl), (y, yl)) {
        ys.fill(0.0);
        rows(s, |from, to| ys[to].copy_from_slice(&xs[from]));
    }
}

/// Backward of [`zeropad_forward`]: `dx` (overwritten) is `dy` without the frame.
///
/// # Panics
/// When a length does not match the spec and batch.
pub fn zeropad_backward(s: &ZeroPadSpec, batch: usize, dy: &[f32], dx: &mut [f32]) {
    let (xl, yl) = lens(s);
    for (dys, dxs) in per_sample(["zeropad", "dy", "dx"], batch, (dy, yl), (dx, xl)) {
        rows(s, |from, to| dxs[from].copy_from_slice(&dys[to]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dot, fd_check, noise};

    #[test]
    fn frames_each_sample_and_crops_the_gradient() {
        let s = ZeroPadSpec {
            in_h: 3,
            in_w: 2,
            c: 2,
            top: 0,
            bottom: 1,
            left: 2,
            right: 1,
        };
        let batch = 2;
        let (xl, yl) = lens(&s);
        let [oh, ow] = s.out();
        let mut x = noise(batch * xl, 1);
        let fwd = |x: &[f32]| {
            let mut y = vec![f32::NAN; batch * yl];
            zeropad_forward(&s, batch, x, &mut y);
            y
        };
        let y = fwd(&x);
        for (i, v) in y.iter().enumerate() {
            let (n, r, q, j) = (i / yl, i / (ow * s.c) % oh, i / s.c % ow, i % s.c);
            let inside = r < s.in_h && (s.left..s.left + s.in_w).contains(&q);
            let want = if inside {
                x[((n * s.in_h + r) * s.in_w + q - s.left) * s.c + j]
            } else {
                0.0
            };
            assert_eq!(*v, want);
        }
        let g = noise(y.len(), 2);
        let mut dx = vec![f32::NAN; x.len()];
        zeropad_backward(&s, batch, &g, &mut dx);
        fd_check("zeropad", &mut x, &dx, 1e-2, 1e-3, |xp| dot(&fwd(xp), &g));
    }
}
