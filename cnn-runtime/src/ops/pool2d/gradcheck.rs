//! Finite-difference gradient checks of pooling (see [`crate::testing`]),
//! its forward pass against a reference, and its tie rule.

use super::{pool2d_backward, pool2d_forward};
use crate::testing::{dot, fd_check, noise};
use crate::{Padding, Pool2dSpec, PoolKind, Window};

fn check_pool(s: Pool2dSpec, batch: usize) {
    let xlen = batch * s.in_h * s.in_w * s.c;
    // Distinct values, so max/min are differentiable at the test point.
    let mut x: Vec<f32> = (0..xlen)
        .map(|i| ((i * 7919) % xlen) as f32 / xlen as f32 * 4.0 - 2.0)
        .collect();
    let ylen = batch * s.out_h * s.out_w * s.c;
    let g = noise(ylen, 9);
    let fwd = |x: &[f32]| {
        let mut y = vec![f32::NAN; ylen];
        let mut am = vec![0u32; if s.kind == PoolKind::Avg { 0 } else { ylen }];
        pool2d_forward(&s, batch, x, &mut y, &mut am);
        (y, am)
    };
    let (y, am) = fwd(&x);
    // forward reference: real cells of each window only
    for n in 0..batch {
        for oh in 0..s.out_h {
            for ow in 0..s.out_w {
                for c in 0..s.c {
                    let mut vals = Vec::new();
                    for a in 0..s.ph {
                        for b in 0..s.pw {
                            let ih = (oh * s.sh + a) as isize - s.pad_top as isize;
                            let iw = (ow * s.sw + b) as isize - s.pad_left as isize;
                            if ih >= 0
                                && iw >= 0
                                && (ih as usize) < s.in_h
                                && (iw as usize) < s.in_w
                            {
                                vals.push(
                                    x[((n * s.in_h + ih as usize) * s.in_w + iw as usize) * s.c
                                        + c],
                                );
                            }
                        }
                    }
                    let want = match s.kind {
                        PoolKind::Max => vals.iter().cloned().fold(f32::NEG_INFINITY, f32::max),
                        PoolKind::Min => vals.iter().cloned().fold(f32::INFINITY, f32::min),
                        PoolKind::Avg => vals.iter().sum::<f32>() / vals.len() as f32,
                    };
                    let got = y[((n * s.out_h + oh) * s.out_w + ow) * s.c + c];
                    assert!((got - want).abs() < 1e-5, "{s:?}: {got} vs {want}");
                }
            }
        }
    }
    let mut dx = vec![f32::NAN; xlen];
    pool2d_backward(&s, batch, &g, &am, &mut dx);
    // Avg is linear (large step); max/min values are >= 4/xlen apart, so a step
    // of 1e-3 never changes the chosen cell.
    let h = if s.kind == PoolKind::Avg { 1e-2 } else { 1e-3 };
    fd_check(&format!("pool dx {s:?}"), &mut x, &dx, h, 2e-3, |xx| {
        dot(&fwd(xx).0, &g)
    });
}

#[test]
fn pools_overlap_same_rect_and_sparse_strides() {
    use Padding::{Same, Valid};
    for kind in [PoolKind::Max, PoolKind::Avg, PoolKind::Min] {
        for &(h, w, ph, pw, sh, sw, pad) in &[
            (9, 9, 3, 3, 2, 2, Valid), // overlapping windows
            (7, 7, 3, 3, 2, 2, Same),
            (8, 8, 3, 3, 2, 2, Same),
            (7, 7, 2, 2, 1, 1, Same),
            (4, 4, 5, 5, 2, 2, Same), // window larger than the input
            (7, 9, 2, 3, 2, 3, Valid),
            (8, 8, 2, 2, 3, 3, Valid), // stride > window: skipped cells get 0
            (7, 7, 2, 2, 2, 2, Valid),
            (6, 5, 2, 3, 1, 2, Same),
        ] {
            let s = Pool2dSpec::new(kind, [h, w, 3], Window::new([ph, pw], pad).stride([sh, sw]));
            check_pool(s, 2);
        }
    }
}

#[test]
fn pool_ties_go_to_the_first_cell() {
    let s = Pool2dSpec::new(
        PoolKind::Max,
        [2, 4, 1],
        Window::new([2, 2], Padding::Valid).stride([2, 2]),
    );
    let x = [1.0, 1.0, 0.0, 2.0, 1.0, 0.5, 2.0, 2.0];
    let mut y = [0.0; 2];
    let mut am = [0u32; 2];
    pool2d_forward(&s, 1, &x, &mut y, &mut am);
    assert_eq!(y, [1.0, 2.0]);
    assert_eq!(am, [0, 3]);
    let mut dx = [9.0; 8];
    pool2d_backward(&s, 1, &[1.0, 1.0], &am, &mut dx);
    assert_eq!(dx, [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
}
