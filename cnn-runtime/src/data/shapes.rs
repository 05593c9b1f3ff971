//! `shapes`: a built-in synthetic image data set that needs no download.
//!
//! Five classes, in this label order: `circle`, `square`, `triangle`, `cross`,
//! `line` (so it fits the course's `dense 5 softmax` model). Each image is one
//! filled shape at a random position (centre in the middle 40% of each axis),
//! size and colour (upright give or take 15 degrees; a line at any angle) on a random
//! background with a soft colour gradient, plus per-pixel noise, rendered at
//! whatever `H x W x C` the model takes.
//!
//! Everything is deterministic for a seed: each image has its own RNG stream
//! (derived from the seed, the split and the image's index), so the images can be
//! rendered in parallel and still come out the same on every run and machine.

use super::Dataset;
use crate::{Error, Result};
use ndarray::{Array3, Array4};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Class names, index = label.
pub const CLASSES: [&str; 5] = ["circle", "square", "triangle", "cross", "line"];

/// Largest data set (in f32 values, train and test together) that
/// [`try_shapes`] agrees to render: 2^31 values = 8 GiB.
pub const MAX_VALUES: usize = 1 << 31;

/// `count` training images and a test split of `ceil(count / 5)` images, of size
/// `input` = `[H, W, C]`, deterministic for `seed`. Classes are balanced (counts
/// differ by at most one) and in random order.
///
/// `C = 3` gives RGB, `C = 1` grayscale (luma); any other channel count repeats
/// the R, G, B planes. Pixel values are in `[0, 1]`.
///
/// Sizes beyond [`MAX_VALUES`] give two empty data sets (with the class names);
/// use [`try_shapes`] to get an error instead.
pub fn shapes(count: usize, input: [usize; 3], seed: u64) -> (Dataset, Dataset) {
    try_shapes(count, input, seed).unwrap_or_else(|_| {
        let empty = || Dataset {
            images: Array4::zeros((0, input[0], input[1], input[2])),
            labels: Vec::new(),
            classes: class_names(),
        };
        (empty(), empty())
    })
}

/// [`shapes`], but an error when the requested data set is too large to hold
/// (more than [`MAX_VALUES`] values) or when `H`, `W` or `C` is zero.
pub fn try_shapes(count: usize, input: [usize; 3], seed: u64) -> Result<(Dataset, Dataset)> {
    let [h, w, c] = input;
    if h == 0 || w == 0 || c == 0 {
        return Err(Error::Invalid(format!(
            "shapes: the image size {h}x{w}x{c} has a zero dimension"
        )));
    }
    let test_count = count.div_ceil(5);
    let values = (count + test_count)
        .checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .and_then(|v| v.checked_mul(c));
    match values {
        Some(v) if v <= MAX_VALUES => {}
        _ => {
            return Err(Error::Invalid(format!(
                "shapes: {count} + {test_count} images of {h}x{w}x{c} are too many values to hold \
                 in memory (at most {MAX_VALUES}); ask for fewer images or a smaller input"
            )))
        }
    }
    Ok((
        render_split(count, input, seed, 0),
        render_split(test_count, input, seed, 1),
    ))
}

/// Renders just image `index` of [`shapes`]`(count, input, seed)`: of the test
/// split when `test`, else of the training split. Returns the image (`H x W x C`)
/// and its label; the same values as in the whole data set, without rendering it.
pub fn shapes_image(
    count: usize,
    input: [usize; 3],
    seed: u64,
    test: bool,
    index: usize,
) -> Result<(Array3<f32>, usize)> {
    let [h, w, c] = input;
    if h == 0 || w == 0 || c == 0 {
        return Err(Error::Invalid(format!(
            "shapes: the image size {h}x{w}x{c} has a zero dimension"
        )));
    }
    let (n, split) = if test {
        (count.div_ceil(5), 1)
    } else {
        (count, 0)
    };
    if index >= n {
        return Err(Error::Invalid(format!(
            "shapes: there is no image {index} in a split of {n} images"
        )));
    }
    let values = h.checked_mul(w).and_then(|v| v.checked_mul(c));
    if !matches!(values, Some(v) if v <= MAX_VALUES) {
        return Err(Error::Invalid(format!(
            "shapes: an image of {h}x{w}x{c} is too large"
        )));
    }
    let label = split_labels(n, seed, split)[index];
    let mut img = vec![0f32; h * w * c];
    render(&mut img, input, label, &mut image_rng(seed, split, index));
    let img = Array3::from_shape_vec((h, w, c), img)
        .map_err(|e| Error::Invalid(format!("shapes: {e}")))?;
    Ok((img, label))
}

/// The shuffled, balanced labels of a split of `n` images.
fn split_labels(n: usize, seed: u64, split: u64) -> Vec<usize> {
    let mut labels: Vec<usize> = (0..n).map(|i| i % CLASSES.len()).collect();
    let mut order_rng = ChaCha8Rng::seed_from_u64(seed);
    order_rng.set_stream(split << 62 | (1 << 61));
    labels.shuffle(&mut order_rng);
    labels
}

/// The RNG of image `i` of a split: its own stream, so that images can be
/// rendered in any order (in parallel, or one alone) with the same result.
fn image_rng(seed: u64, split: u64, i: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(split << 62 | i as u64);
    rng
}

fn class_names() -> Vec<String> {
    CLASSES.iter().map(|s| s.to_string()).collect()
}

/// Renders one split; `split` (0 train, 1 test) selects independent RNG streams,
/// so the test images are never copies of training images.
fn render_split(n: usize, input: [usize; 3], seed: u64, split: u64) -> Dataset {
    let [h, w, c] = input;
    // Balanced labels (i mod 5), shuffled so that batches taken in order are mixed.
    let labels = split_labels(n, seed, split);
    let per_image = h * w * c;
    let mut values = vec![0f32; n * per_image];
    values
        .par_chunks_mut(per_image.max(1))
        .zip(labels.par_iter())
        .enumerate()
        .for_each(|(i, (img, &label))| {
            let mut rng = image_rng(seed, split, i);
            render(img, [h, w, c], label, &mut rng);
        });
    let images = Array4::from_shape_vec((n, h, w, c), values)
        .unwrap_or_else(|_| Array4::zeros((0, h, w, c)));
    Dataset {
        images,
        labels,
        classes: class_names(),
    }
}

/// Relative luminance (Rec. 709 weights) of an RGB colour.
fn luma(rgb: [f32; 3]) -> f32 {
    0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
}

fn random_colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    [rng.gen::<f32>(), rng.gen::<f32>(), rng.gen::<f32>()]
}

/// A shape in its own frame: `(u, v)` are coordinates relative to the centre,
/// rotated, in units of the shape's radius.
fn inside(label: usize, u: f32, v: f32, thickness: f32) -> bool {
    match label {
        // circle
        0 => u * u + v * v <= 1.0,
        // square: half-side 0.8 keeps its area close to the circle's
        1 => u.abs() <= 0.8 && v.abs() <= 0.8,
        // equilateral triangle with circumradius 1, one vertex at v = -1
        2 => {
            let s = 3f32.sqrt() / 2.0;
            // three half-planes: the bottom edge and the two slanted sides
            v <= 0.5 && (s * u - 0.5 * v) <= 0.5 && (-s * u - 0.5 * v) <= 0.5
        }
        // cross: two bars of half-width `thickness`
        3 => (u.abs() <= 1.0 && v.abs() <= thickness) || (v.abs() <= 1.0 && u.abs() <= thickness),
        // line: one long thin bar
        _ => u.abs() <= 1.0 && v.abs() <= thickness,
    }
}

/// Draws one image into `img` (`H x W x C`, row-major).
fn render(img: &mut [f32], [h, w, c]: [usize; 3], label: usize, rng: &mut ChaCha8Rng) {
    let (hf, wf) = (h as f32, w as f32);
    let side = hf.min(wf);

    // Background: a random colour with a linear gradient across the image.
    let bg = random_colour(rng);
    let bg2 = random_colour(rng);
    let grad_strength = rng.gen_range(0.0..0.35f32);
    let grad_angle = rng.gen_range(0.0..std::f32::consts::TAU);
    let (gdx, gdy) = (grad_angle.cos(), grad_angle.sin());

    // Foreground: a colour whose luminance differs clearly from the background's,
    // so the shape is visible in grayscale too (but not always black on white).
    let mut fg = random_colour(rng);
    for _ in 0..16 {
        if (luma(fg) - luma(bg)).abs() >= 0.4 {
            break;
        }
        fg = random_colour(rng);
    }
    if (luma(fg) - luma(bg)).abs() < 0.4 {
        // Rare: push the colour towards black or white away from the background.
        let target = if luma(bg) > 0.5 { 0.0 } else { 1.0 };
        fg = fg.map(|x| 0.3 * x + 0.7 * target);
    }

    // Size: radius 20% to 40% of the shorter side (at least 1.5 pixels).
    let radius = (side * rng.gen_range(0.2..0.4f32)).max(1.5);
    // Position: the whole shape stays inside the image where possible.
    let margin_x = radius.min(wf / 2.0);
    let margin_y = radius.min(hf / 2.0);
    // The centre stays within the middle 40% of each axis (when the shape fits
    // there): positions vary, but a small model still learns in a few epochs.
    let lo_x = margin_x.max(0.3 * wf);
    let lo_y = margin_y.max(0.3 * hf);
    let cx = rng.gen_range(lo_x.min(wf - margin_x).max(margin_x)..=(wf - lo_x).max(margin_x));
    let cy = rng.gen_range(lo_y.min(hf - margin_y).max(margin_y)..=(hf - lo_y).max(margin_y));
    // Orientation: squares, triangles and crosses stand upright give or take 15
    // degrees (a rotated square would be a diamond and a rotated cross an X: the
    // classes stay what their names say); a line may point anywhere.
    let angle = if label == 4 {
        rng.gen_range(0.0..std::f32::consts::PI)
    } else {
        rng.gen_range(-15f32..15.0).to_radians()
    };
    let (ca, sa) = (angle.cos(), angle.sin());
    // Bars at least about one pixel wide, whatever the size.
    let thickness = rng.gen_range(0.12..0.22f32).max(0.6 / radius);
    let noise = rng.gen_range(0.02..0.06f32);

    let fg_val = colour_channels(fg, c);
    let bg_val = colour_channels(bg, c);
    let bg2_val = colour_channels(bg2, c);
    let inv_r = 1.0 / radius;
    // Pixel noise is the bulk of the random numbers (H*W*C per image): a small
    // xorshift generator seeded from the image's ChaCha stream is several times faster.
    let mut noise_state: u64 = rng.gen::<u64>() | 1;
    let mut px = vec![0f32; c];
    for (p, out) in img.chunks_exact_mut(c).enumerate() {
        let (y, x) = (p / w, p % w);
        // Pixel centre, relative to the shape's centre, rotated into its frame.
        let dx = (x as f32 + 0.5 - cx) * inv_r;
        let dy = (y as f32 + 0.5 - cy) * inv_r;
        let u = ca * dx + sa * dy;
        let v = -sa * dx + ca * dy;
        if inside(label, u, v, thickness) {
            px.copy_from_slice(&fg_val);
        } else {
            // gradient position in [0, 1] along the gradient's direction
            let t = ((x as f32 / wf - 0.5) * gdx + (y as f32 / hf - 0.5) * gdy + 0.5)
                .clamp(0.0, 1.0)
                * grad_strength;
            for ((p, &a), &b) in px.iter_mut().zip(&bg_val).zip(&bg2_val) {
                *p = a * (1.0 - t) + b * t;
            }
        }
        for (o, &v) in out.iter_mut().zip(&px) {
            // Uniform noise in [-noise, noise]; values clamped to [0, 1].
            noise_state ^= noise_state << 13;
            noise_state ^= noise_state >> 7;
            noise_state ^= noise_state << 17;
            // top 24 bits -> uniform in [0, 1)
            let unit = (noise_state >> 40) as f32 * (1.0 / (1u32 << 24) as f32);
            let n = (unit * 2.0 - 1.0) * noise;
            *o = (v + n).clamp(0.0, 1.0);
        }
    }
}

/// A colour as `c` channel values: luma for 1, RGB for 3, R, G, B repeated otherwise.
fn colour_channels(rgb: [f32; 3], c: usize) -> Vec<f32> {
    if c == 1 {
        vec![luma(rgb)]
    } else {
        (0..c).map(|k| rgb[k % 3]).collect()
    }
}
