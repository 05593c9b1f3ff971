//! Grouped convolution (`conv ... groups G`, Keras's `Conv2D(groups=G)`): the
//! input channels and the filters are split into `G` equal groups, and group
//! `g`'s filters see only group `g`'s channels. The kernel is Keras's
//! `(KH, KW, C / G, F)`; filter `f` belongs to group `f / (F / G)`.
//!
//! Each group runs through the ordinary conv kernels on its own channels,
//! gathered into contiguous buffers (NHWC interleaves the groups' channels)
//! and scattered back: the copies are linear in the data, the conv is not,
//! and the fast paths stay the ones every conv uses. Depthwise convs (one
//! channel per group) have their own kernel, [`crate::ops::dwconv`].

use super::{conv2d_backward, conv2d_forward, Conv2dScratch};
use crate::ops::{Grads, Operands};
use crate::{Activation, Conv2dSpec};

/// Buffers of a grouped conv, kept between calls so that a steady-state step
/// allocates nothing: one group's input, kernel, bias and output, and their
/// gradients.
#[derive(Default)]
pub struct GroupedScratch {
    conv: Conv2dScratch,
    x: Vec<f32>,
    k: Vec<f32>,
    b: Vec<f32>,
    y: Vec<f32>,
    dx: Vec<f32>,
    dk: Vec<f32>,
}

fn resize(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// One group's slices of the scratch, sized for `gs` and the batch.
struct Group<'s> {
    conv: &'s mut Conv2dScratch,
    x: &'s mut [f32],
    k: &'s mut [f32],
    b: &'s mut [f32],
    y: &'s mut [f32],
    dx: &'s mut [f32],
    dk: &'s mut [f32],
}

impl GroupedScratch {
    fn group(&mut self, gs: &Conv2dSpec, batch: usize, grads: bool) -> Group<'_> {
        let x = batch * gs.in_h * gs.in_w * gs.in_c;
        let k = gs.kh * gs.kw * gs.in_c * gs.out_c;
        let g = |n: usize| if grads { n } else { 0 };
        Group {
            conv: &mut self.conv,
            x: resize(&mut self.x, x),
            k: resize(&mut self.k, k),
            b: resize(&mut self.b, gs.out_c),
            y: resize(&mut self.y, batch * gs.out_h * gs.out_w * gs.out_c),
            dx: resize(&mut self.dx, g(x)),
            dk: resize(&mut self.dk, g(k)),
        }
    }
}

/// The spec of one group: `C / G` channels in, `F / G` filters out.
fn group_spec(s: &Conv2dSpec, groups: usize, klen: usize) -> Conv2dSpec {
    assert!(
        groups > 0 && s.in_c.is_multiple_of(groups) && s.out_c.is_multiple_of(groups),
        "conv: {groups} groups do not divide {} channels and {} filters",
        s.in_c,
        s.out_c
    );
    let gs = Conv2dSpec {
        in_c: s.in_c / groups,
        out_c: s.out_c / groups,
        ..*s
    };
    assert_eq!(
        klen,
        s.kh * s.kw * gs.in_c * s.out_c,
        "conv: kernel has the wrong length"
    );
    gs
}

/// Copies channels `g * part .. (g + 1) * part` of every run of `total`
/// values of `src` into consecutive runs of `part` values of `dst`.
fn gather(src: &[f32], total: usize, part: usize, g: usize, dst: &mut [f32]) {
    for (d, s) in dst.chunks_exact_mut(part).zip(src.chunks_exact(total)) {
        d.copy_from_slice(&s[g * part..(g + 1) * part]);
    }
}

/// The inverse of [`gather`]: writes runs of `part` values of `src` into
/// channels `g * part ..` of `dst`.
fn scatter(src: &[f32], total: usize, part: usize, g: usize, dst: &mut [f32]) {
    for (s, d) in src.chunks_exact(part).zip(dst.chunks_exact_mut(total)) {
        d[g * part..(g + 1) * part].copy_from_slice(s);
    }
}

/// Forward pass of a conv with `groups` groups; `kernel` is `(KH, KW, C / G, F)`
/// and `bias` is `None` for `nobias`.
///
/// # Panics
/// When `groups` does not divide the channels and filters, or a slice length
/// does not match.
pub fn conv2d_grouped_forward(
    (s, groups): (&Conv2dSpec, usize),
    act: Activation,
    op: Operands<'_>,
    y: &mut [f32],
    scratch: &mut GroupedScratch,
) {
    let Operands {
        batch,
        x,
        kernel,
        bias,
    } = op;
    let gs = group_spec(s, groups, kernel.len());
    let f = gs.out_c;
    let p = scratch.group(&gs, batch, false);
    for g in 0..groups {
        gather(x, s.in_c, gs.in_c, g, p.x);
        // A kernel row (one tap, one input channel) holds all F filters.
        gather(kernel, s.out_c, f, g, p.k);
        let gb = match bias {
            Some(b) => {
                p.b.copy_from_slice(&b[g * f..(g + 1) * f]);
                Some(&*p.b)
            }
            None => None,
        };
        conv2d_forward(&gs, act, batch, p.x, p.k, gb, &mut *p.y, p.conv);
        scatter(p.y, s.out_c, f, g, y);
    }
}

/// Backward pass from `dz` into `grads` (see [`Grads`]).
///
/// # Panics
/// As [`conv2d_grouped_forward`].
pub fn conv2d_grouped_backward(
    (s, groups): (&Conv2dSpec, usize),
    op: Operands<'_>,
    dz: &[f32],
    mut grads: Grads<'_>,
    scratch: &mut GroupedScratch,
) {
    let Operands {
        batch, x, kernel, ..
    } = op;
    let gs = group_spec(s, groups, kernel.len());
    let f = gs.out_c;
    grads.start(x.len(), kernel.len(), dz, s.out_c);
    let p = scratch.group(&gs, batch, true);
    for g in 0..groups {
        gather(x, s.in_c, gs.in_c, g, p.x);
        gather(kernel, s.out_c, f, g, p.k);
        gather(dz, s.out_c, f, g, p.y);
        let dx = grads.dx.is_some().then_some(&mut *p.dx);
        // The bias gradient came from `dz` in `start`.
        conv2d_backward(&gs, batch, p.x, p.k, p.y, dx, p.dk, None, p.conv);
        if let Some(dx) = grads.dx.as_deref_mut() {
            scatter(p.dx, s.in_c, gs.in_c, g, dx);
        }
        scatter(p.dk, s.out_c, f, g, grads.dkernel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_close, conv_backward, conv_forward, noise};
    use crate::{Padding, Window};

    /// Each group equals a plain conv over its channels with its filters:
    /// compared with a dense `(KH, KW, C, F)` kernel whose off-group blocks
    /// are 0, with and without a bias.
    #[test]
    fn groups_equal_a_block_diagonal_conv() {
        let (h, c, f, g, k) = (7, 6, 4, 2, 3);
        let s = Conv2dSpec::new([h, h, c], f, Window::new([k, k], Padding::Same));
        let (cg, fg) = (c / g, f / g);
        let batch = 2;
        let x = noise(batch * h * h * c, 1);
        let kern = noise(k * k * cg * f, 2);
        let bias = noise(f, 3);
        let dz = noise(batch * h * h * f, 4);
        let mut full = vec![0f32; k * k * c * f];
        for t in 0..k * k {
            for ci in 0..c {
                for fo in (0..f).filter(|fo| ci / cg == fo / fg) {
                    full[(t * c + ci) * f + fo] = kern[(t * cg + ci % cg) * f + fo];
                }
            }
        }
        let mut scratch = GroupedScratch::default();
        let mut dense = Conv2dScratch::default();
        for b in [Some(&bias[..]), None] {
            let mut y = vec![f32::NAN; dz.len()];
            let act = Activation::Tanh;
            let op = Operands {
                batch,
                x: &x,
                kernel: &kern,
                bias: b,
            };
            conv2d_grouped_forward((&s, g), act, op, &mut y, &mut scratch);
            let zeros = vec![0f32; f];
            let want = conv_forward(&s, act, batch, &x, &full, b.unwrap_or(&zeros), &mut dense);
            assert_close("forward", &y, &want, 1e-5);
        }
        let (mut dx, mut dk, mut db) = (
            vec![f32::NAN; x.len()],
            vec![f32::NAN; kern.len()],
            vec![f32::NAN; f],
        );
        let grads = Grads {
            dx: Some(&mut dx),
            dkernel: &mut dk,
            dbias: Some(&mut db),
        };
        let op = Operands {
            batch,
            x: &x,
            kernel: &kern,
            bias: None,
        };
        conv2d_grouped_backward((&s, g), op, &dz, grads, &mut scratch);
        let (dxf, dkf, dbf) = conv_backward(&s, batch, (&x, &full, &dz), true, &mut dense);
        assert_close("dx", &dx, &dxf, 1e-4);
        assert_close("db", &db, &dbf, 1e-4);
        // The grouped kernel gradient is the dense one's in-group blocks.
        let want: Vec<f32> = (0..k * k * cg * f)
            .map(|i| {
                let (t, ci, fo) = (i / (cg * f), i / f % cg, i % f);
                dkf[(t * c + (fo / fg) * cg + ci) * f + fo]
            })
            .collect();
        assert_close("dk", &dk, &want, 1e-4);
    }
}
