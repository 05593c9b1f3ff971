//! The joins of a graph's branches: `add` (and `residual`), an element-wise
//! sum, and `concat`, the branches side by side on the channel axis. Both are
//! linear, so their backward passes hand dL/d(output) back to each branch (a
//! concat, each branch its own channels). A gradient is written or, for an
//! input that another step reads too, added (`acc`).

use crate::pool::{self, SendPtr};

/// `f(y, a, b)` on matching ranges of `y`, `a` and `b` (as long as `y`),
/// split across the pool in whole cache lines when the pass is large (a
/// batchnorm plan runs the batch as one part).
fn elementwise(y: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync) {
    const LINE: usize = 16;
    let n = y.len();
    assert!(
        a.len() == n && (b.is_empty() || b.len() == n),
        "add: input and output lengths differ"
    );
    let yp = SendPtr(y.as_mut_ptr());
    pool::over_ranges(n.div_ceil(LINE), n, &|r| {
        let (s, e) = (r.start * LINE, (r.end * LINE).min(n));
        // SAFETY: values s..e of y (in bounds) are this part's alone.
        let ys = unsafe { yp.slice(s, e - s) };
        f(ys, &a[s..e], if b.is_empty() { b } else { &b[s..e] });
    });
}

/// `y = x` (the first input of a sum).
pub fn add_first(x: &[f32], y: &mut [f32]) {
    elementwise(y, x, &[], |y, x, _| y.copy_from_slice(x));
}

/// `y += x` (every further input of a sum).
pub fn add_more(x: &[f32], y: &mut [f32]) {
    elementwise(y, x, &[], |y, x, _| {
        for (y, x) in y.iter_mut().zip(x) {
            *y += x;
        }
    });
}

/// `y = a + b` (the first two inputs of a sum, in one pass).
pub fn add_pair(a: &[f32], b: &[f32], y: &mut [f32]) {
    assert_eq!(b.len(), y.len(), "add: input and output lengths differ");
    elementwise(y, a, b, |y, a, b| {
        for ((y, a), b) in y.iter_mut().zip(a).zip(b) {
            *y = a + b;
        }
    });
}

/// The backward pass of a sum for one input: `dx = dy`, or `dx += dy`.
pub fn add_backward(dy: &[f32], dx: &mut [f32], acc: bool) {
    assert_eq!(dx.len(), dy.len(), "add: gradient lengths differ");
    if acc {
        add_more(dy, dx);
    } else {
        add_first(dy, dx);
    }
}

/// Writes one input of a concat: `ck` channels per cell of `x` go to the
/// channels `at..at + ck` of each cell of `y`, which has `c` channels.
///
/// # Panics
/// When the channels do not fit or the lengths disagree.
pub fn concat_forward(c: usize, at: usize, ck: usize, x: &[f32], y: &mut [f32]) {
    let cells = check(c, at, ck, x.len(), y.len());
    for (xs, ys) in x.chunks_exact(ck).zip(y.chunks_exact_mut(c)).take(cells) {
        ys[at..at + ck].copy_from_slice(xs);
    }
}

/// The backward pass of [`concat_forward`]: the input's channels of `dy`,
/// written to `dx` or added to it.
pub fn concat_backward(c: usize, at: usize, ck: usize, dy: &[f32], dx: &mut [f32], acc: bool) {
    let cells = check(c, at, ck, dx.len(), dy.len());
    for (dxs, dys) in dx.chunks_exact_mut(ck).zip(dy.chunks_exact(c)).take(cells) {
        let g = &dys[at..at + ck];
        if acc {
            for (d, g) in dxs.iter_mut().zip(g) {
                *d += g;
            }
        } else {
            dxs.copy_from_slice(g);
        }
    }
}

/// The number of cells of a concat input, after checking the sizes.
fn check(c: usize, at: usize, ck: usize, x_len: usize, y_len: usize) -> usize {
    assert!(
        ck > 0 && at + ck <= c,
        "concat: channels {at}..{} of {c}",
        at + ck
    );
    assert!(
        x_len.is_multiple_of(ck) && y_len.is_multiple_of(c) && x_len / ck == y_len / c,
        "concat: {x_len} values of {ck} channels do not fit {y_len} of {c}"
    );
    x_len / ck
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{dot, noise};

    #[test]
    fn concat_interleaves_channels_and_its_backward_is_the_adjoint() {
        // Two cells; inputs of 1 and 2 channels into 3.
        let (a, b) = ([1.0, 2.0], [10.0, 11.0, 20.0, 21.0]);
        let mut y = [0.0; 6];
        concat_forward(3, 0, 1, &a, &mut y);
        concat_forward(3, 1, 2, &b, &mut y);
        assert_eq!(y, [1.0, 10.0, 11.0, 2.0, 20.0, 21.0]);
        // <dy, J x> = <J^T dy, x> for each input, and `acc` adds.
        let (x, dy) = (noise(5 * 4, 1), noise(5 * 7, 2));
        let mut y = vec![0.0; 5 * 7];
        concat_forward(7, 3, 4, &x, &mut y);
        let mut dx = vec![f32::NAN; x.len()];
        concat_backward(7, 3, 4, &dy, &mut dx, false);
        assert!((dot(&dy, &y) - dot(&dx, &x)).abs() < 1e-4);
        let before = dx.clone();
        concat_backward(7, 3, 4, &dy, &mut dx, true);
        for (d, b) in dx.iter().zip(&before) {
            assert_eq!(*d, 2.0 * b);
        }
    }

    #[test]
    fn a_sum_and_its_gradient() {
        let (x0, x1) = (noise(12, 3), noise(12, 4));
        let mut y = vec![f32::NAN; 12];
        add_first(&x0, &mut y);
        add_more(&x1, &mut y);
        for k in 0..12 {
            assert_eq!(y[k], x0[k] + x1[k]);
        }
        let mut pair = vec![f32::NAN; 12];
        add_pair(&x0, &x1, &mut pair);
        assert_eq!(pair, y, "one pass, the same bits");
        let dy = noise(12, 5);
        let mut dx = vec![f32::NAN; 12];
        add_backward(&dy, &mut dx, false);
        assert_eq!(dx, dy);
        add_backward(&dy, &mut dx, true);
        assert_eq!(dx, dy.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    }

    #[test]
    #[should_panic(expected = "concat: channels")]
    fn channels_past_the_output_are_refused() {
        concat_forward(3, 2, 2, &[0.0; 4], &mut [0.0; 6]);
    }
}
