//! `folder:DIR`: a data set from a folder of images, as Keras's
//! `image_dataset_from_directory`.
//!
//! `DIR` holds one sub-folder per class; the sorted sub-folder names are the
//! class names (label = index). Every PNG or JPEG file under a class folder (its
//! own sub-folders included) is one sample, resized to the model's `H x W`
//! (bilinear, half-pixel centres as `tf.image.resize`), converted to the model's
//! channel count and scaled to `[0, 1]`.
//!
//! Nothing in the folder can crash the loader: unreadable, corrupt, oversized or
//! non-image files are skipped and reported; empty class folders are kept as
//! classes without images and reported; a folder with no image at all is an error.

use super::Dataset;
use crate::{Error, Result};
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ndarray::{Array3, Array4, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Largest image width or height the loader decodes (guards against
/// decompression bombs: a tiny file that claims a gigantic image).
pub const MAX_IMAGE_SIDE: u32 = 16_384;
/// Largest allocation the decoder may make for one image, in bytes.
pub const MAX_IMAGE_BYTES: u64 = 512 << 20;
/// How deep the loader walks into a class folder's sub-folders.
const MAX_DEPTH: usize = 16;

/// A data set loaded from an image folder.
#[derive(Debug, Clone)]
pub struct FolderData {
    /// The training part.
    pub train: Dataset,
    /// The validation part (`validation_split` of the images; may be empty).
    pub validation: Dataset,
    /// One line per file or folder that was skipped or is worth a warning
    /// (`path: reason`), e.g. a corrupt file or an empty class folder.
    pub skipped: Vec<String>,
}

/// Loads `dir` (one sub-folder per class) at the model's `input` = `[H, W, C]`
/// (`C` = 1 grayscale, 3 RGB or 4 RGBA), and splits it: after a shuffle seeded by
/// `seed`, the last `round(n * validation_split)` images go to validation, as in
/// Keras. `validation_split` must be in `[0, 1)`.
///
/// Shows a progress bar on stderr when it is a terminal.
pub fn load_folder(
    dir: &Path,
    input: [usize; 3],
    validation_split: f32,
    seed: u64,
) -> Result<FolderData> {
    check_input(input)?;
    if !(0.0..1.0).contains(&validation_split) {
        return Err(Error::Invalid(format!(
            "the validation split must be at least 0 and below 1, got {validation_split}"
        )));
    }
    let mut skipped = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut class_dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if is_hidden(&path) {
            continue;
        }
        // `metadata` follows symlinks: a link to a folder counts as a class folder.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => class_dirs.push(path),
            Ok(_) => skipped.push(format!(
                "{}: not in a class folder (images go in DIR/CLASS/)",
                path.display()
            )),
            Err(e) => skipped.push(format!("{}: {e}", path.display())),
        }
    }
    if class_dirs.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no class folders; put the images in one sub-folder per class (DIR/CLASS/IMAGE.png)",
            dir.display()
        )));
    }
    class_dirs.sort();
    let classes: Vec<String> = class_dirs
        .iter()
        .map(|p| {
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        })
        .collect();

    // Every candidate file with its label, in sorted order per class.
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    for (label, class_dir) in class_dirs.iter().enumerate() {
        let mut found = Vec::new();
        walk(class_dir, 0, &mut found, &mut skipped);
        found.sort();
        files.extend(found.into_iter().map(|p| (p, label)));
    }

    let bar = progress_bar(files.len() as u64);
    let decoded: Vec<std::result::Result<Array3<f32>, String>> = files
        .par_iter()
        .map(|(path, _)| {
            let r = load_image(path, input).map_err(|e| e.to_string());
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();

    let mut counts = vec![0usize; classes.len()];
    let mut samples: Vec<(Array3<f32>, usize)> = Vec::with_capacity(files.len());
    for ((path, label), r) in files.iter().zip(decoded) {
        match r {
            Ok(img) => {
                counts[*label] += 1;
                samples.push((img, *label));
            }
            Err(msg) => {
                // Error messages of the loader already start with the path.
                if msg.starts_with(&path.display().to_string()) {
                    skipped.push(msg)
                } else {
                    skipped.push(format!("{}: {msg}", path.display()))
                }
            }
        }
    }
    for (name, (&n, class_dir)) in classes.iter().zip(counts.iter().zip(&class_dirs)) {
        if n == 0 {
            skipped.push(format!(
                "{}: class `{name}` has no images (kept as a class with none)",
                class_dir.display()
            ));
        }
    }
    if samples.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no readable PNG or JPEG images in the class folders{}",
            dir.display(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!(" ({} skipped)", skipped.len())
            }
        )));
    }

    // Seeded shuffle, then the tail is the validation split (as Keras does).
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    samples.shuffle(&mut rng);
    let n_val = ((samples.len() as f64) * f64::from(validation_split)).round() as usize;
    let n_val = n_val.min(samples.len());
    let val = samples.split_off(samples.len() - n_val);
    Ok(FolderData {
        train: to_dataset(samples, input, &classes),
        validation: to_dataset(val, input, &classes),
        skipped,
    })
}

/// Reads one PNG or JPEG image, resized (bilinear) to `input` = `[H, W, C]`,
/// converted to `C` channels (1 grayscale, 3 RGB, 4 RGBA) and scaled to `[0, 1]`.
/// The format is taken from the file's contents, not its name.
pub fn load_image(path: &Path, input: [usize; 3]) -> Result<Array3<f32>> {
    Ok(load_image_sized(path, input)?.0)
}

/// As [`load_image`], also giving the image's own size `[H, W]` before the
/// resize (see [`resize_note`]).
pub fn load_image_sized(path: &Path, input: [usize; 3]) -> Result<(Array3<f32>, [usize; 2])> {
    check_input(input)?;
    let img = decode(path)?;
    let [h, w, c] = input;
    let (src_w, src_h) = (img.width() as usize, img.height() as usize);
    if src_w == 0 || src_h == 0 {
        return Err(Error::format(path, "the image is empty (0 pixels)"));
    }
    let (pixels, src_c): (Vec<u8>, usize) = match c {
        1 => (img.to_luma8().into_raw(), 1),
        3 => (img.to_rgb8().into_raw(), 3),
        _ => (img.to_rgba8().into_raw(), 4),
    };
    debug_assert_eq!(src_c, c);
    Ok((
        resize_bilinear(&pixels, src_h, src_w, c, h, w),
        [src_h, src_w],
    ))
}

/// What a user should hear about resizing an image of `src` = `[H, W]` to a
/// model's `to` = `[H, W]`: `None` for a mild resize; a sentence when either
/// side shrinks or grows more than 4 times (the model sees little of what was
/// there, or a blur), or when the sides' ratio changes by more than 10% (shapes
/// are squashed).
pub fn resize_note(src: [usize; 2], to: [usize; 2]) -> Option<String> {
    let scale = |a: usize, b: usize| a.max(1) as f64 / b.max(1) as f64;
    let (sh, sw) = (scale(to[0], src[0]), scale(to[1], src[1]));
    let aspect = (scale(src[1], src[0]) / scale(to[1], to[0]) - 1.0).abs();
    let far = |s: f64| !(0.25..=4.0).contains(&s);
    let what = match (far(sh) || far(sw), aspect > 0.1) {
        (false, false) => return None,
        (true, false) => "a large resize: small details are lost or blurred".to_string(),
        (false, true) => "the proportions change: shapes are squashed".to_string(),
        (true, true) => "a large resize that also changes the proportions".to_string(),
    };
    Some(format!(
        "the {}x{} image is resized to {}x{} for the model ({what})",
        src[0], src[1], to[0], to[1]
    ))
}

fn check_input(input: [usize; 3]) -> Result<()> {
    let [h, w, c] = input;
    if h == 0 || w == 0 {
        return Err(Error::Invalid(format!(
            "image size {h}x{w}x{c} has a zero side"
        )));
    }
    if !matches!(c, 1 | 3 | 4) {
        return Err(Error::Invalid(format!(
            "images can be read with 1 (grayscale), 3 (RGB) or 4 (RGBA) channels; the model takes {c}"
        )));
    }
    Ok(())
}

/// Decodes a PNG or JPEG with size limits; any failure (including a panic inside
/// a decoder on hostile input) becomes an error.
fn decode(path: &Path) -> Result<DynamicImage> {
    let reader = ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    match reader.format() {
        Some(ImageFormat::Png) | Some(ImageFormat::Jpeg) => {}
        _ => return Err(Error::format(path, "not a PNG or JPEG image")),
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_BYTES);
    let mut reader = reader;
    reader.limits(limits);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.decode()));
    match result {
        Ok(Ok(img)) => Ok(img),
        Ok(Err(e)) => Err(Error::format(path, format!("cannot decode: {e}"))),
        Err(_) => Err(Error::format(path, "cannot decode: the decoder failed")),
    }
}

/// Bilinear resize of `src` (`sh x sw x c`, u8) to `dh x dw x c` f32 in `[0, 1]`,
/// with half-pixel centres (`tf.image.resize(..., "bilinear")`, no antialias).
fn resize_bilinear(
    src: &[u8],
    sh: usize,
    sw: usize,
    c: usize,
    dh: usize,
    dw: usize,
) -> Array3<f32> {
    // For each output coordinate: the two source indices and the weight of the second.
    fn taps(dst: usize, src: usize) -> Vec<(usize, usize, f32)> {
        let scale = src as f32 / dst as f32;
        (0..dst)
            .map(|i| {
                let s = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (s.floor() as usize).min(src - 1);
                let i1 = (i0 + 1).min(src - 1);
                (i0, i1, s - i0 as f32)
            })
            .collect()
    }
    let ys = taps(dh, sh);
    let xs = taps(dw, sw);
    let px = |y: usize, x: usize, k: usize| f32::from(src[(y * sw + x) * c + k]);
    let mut out = Array3::<f32>::zeros((dh, dw, c));
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            for k in 0..c {
                let top = px(y0, x0, k) * (1.0 - fx) + px(y0, x1, k) * fx;
                let bottom = px(y1, x0, k) * (1.0 - fx) + px(y1, x1, k) * fx;
                out[[oy, ox, k]] = (top * (1.0 - fy) + bottom * fy) / 255.0;
            }
        }
    }
    out
}

/// Collects the regular files under `dir` (recursively, to a bounded depth,
/// hidden entries left out); unreadable folders are reported, not fatal.
fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>, skipped: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            skipped.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if is_hidden(&path) {
            continue;
        }
        // `file_type` does not follow symlinks, so a link loop cannot recurse forever;
        // links to files are followed by `metadata`.
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if depth + 1 < MAX_DEPTH {
                walk(&path, depth + 1, out, skipped);
            } else {
                skipped.push(format!("{}: folder nested too deep", path.display()));
            }
        } else if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            out.push(path);
        } else {
            skipped.push(format!("{}: not a regular file", path.display()));
        }
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn to_dataset(
    samples: Vec<(Array3<f32>, usize)>,
    input: [usize; 3],
    classes: &[String],
) -> Dataset {
    let [h, w, c] = input;
    let mut images = Array4::<f32>::zeros((samples.len(), h, w, c));
    let mut labels = Vec::with_capacity(samples.len());
    for (mut slot, (img, label)) in images.axis_iter_mut(Axis(0)).zip(samples) {
        slot.assign(&img);
        labels.push(label);
    }
    Dataset {
        images,
        labels,
        classes: classes.to_vec(),
    }
}

fn progress_bar(len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("loading images {bar:40} {pos}/{len} {eta}") {
        bar.set_style(style);
    }
    bar
}
