//! Zero padding of the spatial axes (Keras's `ZeroPadding2D`): `top`, `bottom`
//! rows and `left`, `right` columns of zeros around each `H x W x C` sample.

/// Rows and columns added on each side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pad4 {
    /// Rows above.
    pub top: usize,
    /// Rows below.
    pub bottom: usize,
    /// Columns on the left.
    pub left: usize,
    /// Columns on the right.
    pub right: usize,
}

impl Pad4 {
    /// The padded size of an `h x w` image.
    pub fn out(&self, h: usize, w: usize) -> (usize, usize) {
        (h + self.top + self.bottom, w + self.left + self.right)
    }
}

/// `y` (overwritten) = each sample of `x` framed by zeros.
///
/// # Panics
/// When a length does not match the sizes.
pub fn zeropad_forward(
    p: Pad4,
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    x: &[f32],
    y: &mut [f32],
) {
    let (oh, ow) = p.out(h, w);
    assert_eq!(
        x.len(),
        batch * h * w * c,
        "zeropad: x has the wrong length"
    );
    assert_eq!(
        y.len(),
        batch * oh * ow * c,
        "zeropad: y has the wrong length"
    );
    y.fill(0.0);
    for (xs, ys) in x
        .chunks_exact(h * w * c)
        .zip(y.chunks_exact_mut(oh * ow * c))
    {
        for r in 0..h {
            let dst = ((r + p.top) * ow + p.left) * c;
            ys[dst..dst + w * c].copy_from_slice(&xs[r * w * c..(r + 1) * w * c]);
        }
    }
}

/// Backward of [`zeropad_forward`]: `dx` (overwritten) is `dy` without the frame.
///
/// # Panics
/// When a length does not match the sizes.
pub fn zeropad_backward(
    p: Pad4,
    batch: usize,
    h: usize,
    w: usize,
    c: usize,
    dy: &[f32],
    dx: &mut [f32],
) {
    let (oh, ow) = p.out(h, w);
    assert_eq!(
        dx.len(),
        batch * h * w * c,
        "zeropad: dx has the wrong length"
    );
    assert_eq!(
        dy.len(),
        batch * oh * ow * c,
        "zeropad: dy has the wrong length"
    );
    for (dxs, dys) in dx
        .chunks_exact_mut(h * w * c)
        .zip(dy.chunks_exact(oh * ow * c))
    {
        for r in 0..h {
            let src = ((r + p.top) * ow + p.left) * c;
            dxs[r * w * c..(r + 1) * w * c].copy_from_slice(&dys[src..src + w * c]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dot, fd_check, noise, Fd};

    #[test]
    fn frames_each_sample_and_crops_the_gradient() {
        let p = Pad4 {
            top: 0,
            bottom: 1,
            left: 2,
            right: 1,
        };
        let (batch, h, w, c) = (2, 3, 2, 2);
        let mut x = noise(batch * h * w * c, 1);
        let (oh, ow) = p.out(h, w);
        let fwd = |x: &[f32]| {
            let mut y = vec![f32::NAN; batch * oh * ow * c];
            zeropad_forward(p, batch, h, w, c, x, &mut y);
            y
        };
        let y = fwd(&x);
        for n in 0..batch {
            for r in 0..oh {
                for q in 0..ow {
                    for j in 0..c {
                        let inside = r < h && (p.left..p.left + w).contains(&q);
                        let want = if inside {
                            x[((n * h + r) * w + q - p.left) * c + j]
                        } else {
                            0.0
                        };
                        assert_eq!(y[((n * oh + r) * ow + q) * c + j], want);
                    }
                }
            }
        }
        let g = noise(y.len(), 2);
        let mut dx = vec![f32::NAN; x.len()];
        zeropad_backward(p, batch, h, w, c, &g, &mut dx);
        fd_check(Fd::Sampled, "zeropad", &mut x, &dx, 1e-2, 1e-3, |xp| {
            dot(&fwd(xp), &g)
        });
    }
}
