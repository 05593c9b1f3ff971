//! The two kinds of PNG grid of `cnnc viz`: one tile per channel of a feature
//! map, and one tile per filter of a conv kernel.
use super::canvas::{text_width, Canvas, DIM_TEXT, TEXT};

/// Integer-ish scale factor for a tile: small maps are enlarged (nearest
/// neighbour) to about `min_px`, big ones shrunk to at most `max_px`.
fn tile_size(h: usize, w: usize, min_px: usize, max_px: usize) -> (usize, usize) {
    let side = h.max(w).max(1);
    if side < min_px {
        let f = min_px.div_ceil(side);
        (h * f, w * f)
    } else if side > max_px {
        ((h * max_px / side).max(1), (w * max_px / side).max(1))
    } else {
        (h, w)
    }
}

/// Lays out `n` tiles of `th x tw` in a near-square grid under a title, with a
/// label above each tile; returns the canvas and each tile's top-left corner.
fn grid_layout(
    n: usize,
    th: usize,
    tw: usize,
    title: &str,
    labels: bool,
) -> (Canvas, Vec<(usize, usize)>) {
    const PAD: usize = 6;
    let label_h = if labels { 10 } else { 0 };
    let cols = ((n as f64).sqrt().ceil() as usize).max(1);
    let rows = n.div_ceil(cols).max(1);
    let cell_w = tw.max(text_width("999", 1)) + PAD;
    let cell_h = th + label_h + PAD;
    let title_h = 7 * 2 + 2 * PAD;
    let w = (PAD + cols * cell_w).max(text_width(title, 2) + 2 * PAD);
    let h = title_h + rows * cell_h + PAD;
    let mut canvas = Canvas::new(w, h);
    canvas.text(PAD, PAD, title, 2, TEXT);
    let corners = (0..n)
        .map(|i| {
            (
                PAD + (i % cols) * cell_w,
                title_h + (i / cols) * cell_h + label_h,
            )
        })
        .collect();
    (canvas, corners)
}

/// One tile per channel of an `H x W x C` map, each normalised to its own
/// min/max (a constant channel is drawn mid-grey; `1 x 1` maps share the layer's
/// range). `rgb` draws the whole map as
/// one colour image instead (for the input).
pub fn maps_grid(data: &[f32], [h, w, c]: [usize; 3], title: &str, rgb: bool) -> Canvas {
    let n = if rgb { 1 } else { c };
    // the input, a single tile, is drawn larger than the channel tiles
    let (th, tw) = if rgb {
        tile_size(h, w, 128, 384)
    } else {
        tile_size(h, w, 48, 256)
    };
    let (mut canvas, corners) = grid_layout(n, th, tw, title, !rgb);
    let layer_range = data
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    for (k, &(x0, y0)) in corners.iter().enumerate() {
        if !rgb {
            canvas.text(x0, y0 - 9, &k.to_string(), 1, DIM_TEXT);
        }
        // the channel's range, for its own normalisation; a 1x1 map has no range of
        // its own, so those are normalised over the whole layer instead
        let (lo, hi) = if rgb {
            (0.0, 1.0)
        } else if h * w == 1 {
            layer_range
        } else {
            (0..h * w)
                .map(|p| data.get(p * c + k).copied().unwrap_or(0.0))
                .filter(|v| v.is_finite())
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                })
        };
        for ty in 0..th {
            for tx in 0..tw {
                let (y, x) = (ty * h / th, tx * w / tw);
                let base = (y * w + x) * c;
                let value = |ch: usize| -> u8 {
                    let v = data.get(base + ch).copied().unwrap_or(0.0);
                    to_byte(v, lo, hi)
                };
                let px = if rgb {
                    match c {
                        1 => [value(0); 3],
                        _ => [value(0), value(1.min(c - 1)), value(2.min(c - 1))],
                    }
                } else {
                    [value(k); 3]
                };
                canvas.set(x0 + tx, y0 + ty, px);
            }
        }
    }
    canvas
}

/// A value in `[lo, hi]` as a byte; a constant range (or no finite value) gives grey.
fn to_byte(v: f32, lo: f32, hi: f32) -> u8 {
    if !(v.is_finite() && lo.is_finite() && hi.is_finite()) || hi <= lo {
        return 128;
    }
    (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8
}

/// One tile per filter of a kernel `(KH, KW, CIN, F)`: in colour when `CIN = 3`,
/// otherwise the mean over the input channels in grey; each tile normalised to
/// its own min/max and enlarged.
pub fn filter_grid(kernel: &[f32], [kh, kw, cin, f]: [usize; 4], title: &str) -> Canvas {
    let (th, tw) = tile_size(kh, kw, 40, 256);
    let (mut canvas, corners) = grid_layout(f, th, tw, title, true);
    let at = |y: usize, x: usize, ci: usize, fi: usize| -> f32 {
        kernel
            .get(((y * kw + x) * cin + ci) * f + fi)
            .copied()
            .unwrap_or(0.0)
    };
    for (fi, &(x0, y0)) in corners.iter().enumerate() {
        canvas.text(x0, y0 - 9, &fi.to_string(), 1, DIM_TEXT);
        // the tile's values: RGB triples or one grey value per kernel cell
        let cell = |y: usize, x: usize| -> [f32; 3] {
            if cin == 3 {
                [at(y, x, 0, fi), at(y, x, 1, fi), at(y, x, 2, fi)]
            } else {
                let m = (0..cin).map(|ci| at(y, x, ci, fi)).sum::<f32>() / cin.max(1) as f32;
                [m; 3]
            }
        };
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for y in 0..kh {
            for x in 0..kw {
                for v in cell(y, x) {
                    if v.is_finite() {
                        lo = lo.min(v);
                        hi = hi.max(v);
                    }
                }
            }
        }
        for ty in 0..th {
            for tx in 0..tw {
                let v = cell(ty * kh / th, tx * kw / tw);
                canvas.set(x0 + tx, y0 + ty, v.map(|v| to_byte(v, lo, hi)));
            }
        }
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_maps_range_to_bytes() {
        assert_eq!(to_byte(-1.0, -1.0, 3.0), 0);
        assert_eq!(to_byte(3.0, -1.0, 3.0), 255);
        assert_eq!(to_byte(1.0, -1.0, 3.0), 128);
        assert_eq!(to_byte(5.0, 5.0, 5.0), 128);
        assert_eq!(to_byte(f32::NAN, 0.0, 1.0), 128);
    }

    #[test]
    fn tiles_grow_small_maps_and_shrink_big_ones() {
        assert_eq!(tile_size(3, 3, 40, 256), (42, 42));
        assert_eq!(tile_size(150, 75, 48, 256), (150, 75));
        assert_eq!(tile_size(1024, 512, 48, 256), (256, 128));
    }
}
