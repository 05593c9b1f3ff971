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
use crate::{Activation, Conv2dSpec};

/// Buffers of a grouped conv, kept between calls so that a steady-state step
/// allocates nothing.
#[derive(Default)]
pub struct GroupedScratch {
    conv: Conv2dScratch,
    x: Vec<f32>,
    k: Vec<f32>,
    b: Vec<f32>,
    y: Vec<f32>,
    dx: Vec<f32>,
    dk: Vec<f32>,
    db: Vec<f32>,
}

fn resize(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if v.len() < len {
        v.resize(len, 0.0);
    }
    &mut v[..len]
}

/// The spec of one group: `C / G` channels in, `F / G` filters out.
fn group_spec(s: &Conv2dSpec, groups: usize) -> Conv2dSpec {
    assert!(
        groups > 0 && s.in_c.is_multiple_of(groups) && s.out_c.is_multiple_of(groups),
        "conv: {groups} groups do not divide {} channels and {} filters",
        s.in_c,
        s.out_c
    );
    Conv2dSpec {
        in_c: s.in_c / groups,
        out_c: s.out_c / groups,
        ..*s
    }
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

/// Forward pass of a conv with `groups` groups (`groups == 1` is a plain conv);
/// `kernel` is `(KH, KW, C / G, F)`.
///
/// # Panics
/// When `groups` does not divide the channels and filters, or a slice length
/// does not match.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_grouped_forward(
    s: &Conv2dSpec,
    groups: usize,
    act: Activation,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    bias: &[f32],
    y: &mut [f32],
    scratch: &mut GroupedScratch,
) {
    let gs = group_spec(s, groups);
    if groups == 1 {
        return conv2d_forward(s, act, batch, x, kernel, bias, y, &mut scratch.conv);
    }
    assert_eq!(
        kernel.len(),
        s.kh * s.kw * gs.in_c * s.out_c,
        "conv: kernel has the wrong length"
    );
    assert_eq!(
        y.len(),
        batch * s.out_h * s.out_w * s.out_c,
        "conv: y has the wrong length"
    );
    let GroupedScratch {
        conv,
        x: xg,
        k: kg,
        b: bg,
        y: yg,
        ..
    } = scratch;
    let xg = resize(xg, batch * s.in_h * s.in_w * gs.in_c);
    let kg = resize(kg, s.kh * s.kw * gs.in_c * gs.out_c);
    let bg = resize(bg, gs.out_c);
    let yg = resize(yg, batch * s.out_h * s.out_w * gs.out_c);
    for g in 0..groups {
        gather(x, s.in_c, gs.in_c, g, xg);
        // A kernel row (one tap, one input channel) holds all F filters.
        gather(kernel, s.out_c, gs.out_c, g, kg);
        bg.copy_from_slice(&bias[g * gs.out_c..(g + 1) * gs.out_c]);
        conv2d_forward(&gs, act, batch, xg, kg, bg, yg, conv);
        scatter(yg, s.out_c, gs.out_c, g, y);
    }
}

/// Backward pass from `dz`: overwrites `dkernel`, `dbias` and, when given, `dx`.
///
/// # Panics
/// As [`conv2d_grouped_forward`].
#[allow(clippy::too_many_arguments)]
pub fn conv2d_grouped_backward(
    s: &Conv2dSpec,
    groups: usize,
    batch: usize,
    x: &[f32],
    kernel: &[f32],
    dz: &[f32],
    mut dx: Option<&mut [f32]>,
    dkernel: &mut [f32],
    dbias: &mut [f32],
    scratch: &mut GroupedScratch,
) {
    let gs = group_spec(s, groups);
    if groups == 1 {
        return conv2d_backward(
            s,
            batch,
            x,
            kernel,
            dz,
            dx,
            dkernel,
            dbias,
            &mut scratch.conv,
        );
    }
    assert_eq!(
        dkernel.len(),
        kernel.len(),
        "conv: dkernel has the wrong length"
    );
    let GroupedScratch {
        conv,
        x: xg,
        k: kg,
        y: zg,
        dx: dxg,
        dk: dkg,
        db: dbg,
        ..
    } = scratch;
    let xg = resize(xg, batch * s.in_h * s.in_w * gs.in_c);
    let kg = resize(kg, s.kh * s.kw * gs.in_c * gs.out_c);
    let zg = resize(zg, batch * s.out_h * s.out_w * gs.out_c);
    let dxg = resize(dxg, xg.len());
    let dkg = resize(dkg, kg.len());
    let dbg = resize(dbg, gs.out_c);
    for g in 0..groups {
        gather(x, s.in_c, gs.in_c, g, xg);
        gather(kernel, s.out_c, gs.out_c, g, kg);
        gather(dz, s.out_c, gs.out_c, g, zg);
        let want_dx = dx.is_some();
        conv2d_backward(
            &gs,
            batch,
            xg,
            kg,
            zg,
            want_dx.then_some(&mut *dxg),
            dkg,
            dbg,
            conv,
        );
        if let Some(dx) = dx.as_deref_mut() {
            scatter(dxg, s.in_c, gs.in_c, g, dx);
        }
        scatter(dkg, s.out_c, gs.out_c, g, dkernel);
        dbias[g * gs.out_c..(g + 1) * gs.out_c].copy_from_slice(dbg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::noise;

    /// Each group equals a plain conv over its channels with its filters,
    /// computed here with the full kernel zeroed outside the group (a dense
    /// `(KH, KW, C, F)` kernel whose off-group blocks are 0).
    #[test]
    fn groups_equal_a_block_diagonal_conv() {
        let (h, c, f, g, k) = (7, 6, 4, 2, 3);
        let (out, pad) = crate::Padding::Same.axis(h, k, 1, 1);
        let s = Conv2dSpec {
            in_h: h,
            in_w: h,
            in_c: c,
            out_h: out,
            out_w: out,
            out_c: f,
            kh: k,
            kw: k,
            sh: 1,
            sw: 1,
            dh: 1,
            dw: 1,
            pad_top: pad,
            pad_left: pad,
        };
        let (cg, fg) = (c / g, f / g);
        let batch = 2;
        let x = noise(batch * h * h * c, 1);
        let kern = noise(k * k * cg * f, 2);
        let bias = noise(f, 3);
        let dz = noise(batch * out * out * f, 4);
        // The equivalent dense kernel.
        let mut full = vec![0f32; k * k * c * f];
        for t in 0..k * k {
            for ci in 0..c {
                for fo in 0..f {
                    if ci / cg == fo / fg {
                        full[(t * c + ci) * f + fo] = kern[(t * cg + ci % cg) * f + fo];
                    }
                }
            }
        }
        let mut scratch = GroupedScratch::default();
        let mut y = vec![f32::NAN; dz.len()];
        conv2d_grouped_forward(
            &s,
            g,
            Activation::Tanh,
            batch,
            &x,
            &kern,
            &bias,
            &mut y,
            &mut scratch,
        );
        let mut yf = vec![f32::NAN; dz.len()];
        conv2d_forward(
            &s,
            Activation::Tanh,
            batch,
            &x,
            &full,
            &bias,
            &mut yf,
            &mut Conv2dScratch::default(),
        );
        for (a, b) in y.iter().zip(&yf) {
            assert!((a - b).abs() < 1e-5, "forward {a} vs {b}");
        }
        let (mut dx, mut dk, mut db) = (
            vec![f32::NAN; x.len()],
            vec![f32::NAN; kern.len()],
            vec![f32::NAN; f],
        );
        conv2d_grouped_backward(
            &s,
            g,
            batch,
            &x,
            &kern,
            &dz,
            Some(&mut dx),
            &mut dk,
            &mut db,
            &mut scratch,
        );
        let (mut dxf, mut dkf, mut dbf) =
            (vec![0f32; x.len()], vec![0f32; full.len()], vec![0f32; f]);
        conv2d_backward(
            &s,
            batch,
            &x,
            &full,
            &dz,
            Some(&mut dxf),
            &mut dkf,
            &mut dbf,
            &mut Conv2dScratch::default(),
        );
        let near = |a: f32, b: f32| (a - b).abs() <= 1e-4 * (1.0 + b.abs());
        for (a, b) in dx.iter().zip(&dxf) {
            assert!(near(*a, *b), "dx {a} vs {b}");
        }
        for (a, b) in db.iter().zip(&dbf) {
            assert!(near(*a, *b), "db {a} vs {b}");
        }
        // The grouped kernel gradient is the dense one's in-group blocks.
        for t in 0..k * k {
            for ci in 0..cg {
                for fo in 0..f {
                    let dense = dkf[(t * c + (fo / fg) * cg + ci) * f + fo];
                    let ours = dk[(t * cg + ci) * f + fo];
                    assert!(near(ours, dense), "dk {ours} vs {dense}");
                }
            }
        }
    }
}
