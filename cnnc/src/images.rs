//! `cnnc images`: a data set written out as a folder of images, one
//! sub-folder per class, as `--data folder:DIR` reads it (and as Keras's
//! `image_dataset_from_directory` does): the README's `photos/` example made
//! from the built-in `shapes`, or a look at MNIST's digits as files.

use crate::CmdResult;
use clap::Args;
use cnn::runtime::data::DataSource;
use cnn_compiler::label::dims_text;
use ndarray::{ArrayView3, Axis};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `cnnc images SOURCE -o DIR [--size HxWxC] [--limit N] [--seed N]`
#[derive(Args)]
pub struct ImagesArgs {
    /// A data set: `shapes[:COUNT]`, `mnist:DIR`, `fashion-mnist:DIR` or
    /// `folder:DIR` (its training part)
    pub source: String,
    /// The folder to write (made; it must not exist yet, or be empty)
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub output: PathBuf,
    /// Image size of `shapes` (and of a folder's images), HxWxC with C 1, 3 or 4
    #[arg(long, value_name = "HxWxC", default_value = "64x64x3", value_parser = parse_size)]
    pub size: [usize; 3],
    /// Write only the first N images
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Seed of the synthetic images
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
}

fn parse_size(s: &str) -> Result<[usize; 3], String> {
    let dims: Vec<usize> = s
        .split('x')
        .map(|d| {
            d.parse::<usize>()
                .map_err(|_| format!("{s:?}: expected HxWxC, e.g. 64x64x3"))
        })
        .collect::<Result<_, _>>()?;
    match dims[..] {
        [h, w, c @ (1 | 3 | 4)] if h > 0 && w > 0 && h <= 4096 && w <= 4096 => Ok([h, w, c]),
        [_, _, _] => Err(format!(
            "{s:?}: sides from 1 to 4096 and 1 (grey), 3 (RGB) or 4 (RGBA) channels"
        )),
        _ => Err(format!("{s:?}: expected HxWxC, e.g. 64x64x3")),
    }
}

/// Writes the images, `DIR/<class>/<i>.png`.
pub fn images(a: ImagesArgs) -> CmdResult {
    let out = &a.output;
    if out.exists() && std::fs::read_dir(out).map_or(true, |mut d| d.next().is_some()) {
        return Err(format!(
            "{}: exists and is not an empty folder; give a new one",
            out.display()
        )
        .into());
    }
    let src: DataSource = a.source.parse()?;
    let data = src.load_train(a.size, a.seed)?.train;
    let n = a.limit.unwrap_or(data.len()).min(data.len());
    let names: Vec<String> = (0..data.labels.iter().max().map_or(0, |m| m + 1))
        .map(|i| match data.classes.get(i) {
            Some(c) => folder_name(c),
            None => format!("class{i}"),
        })
        .collect();
    // Numbered within each class: every class folder starts at 0.png.
    let mut count = vec![0usize; names.len()];
    for (img, &label) in data.images.axis_iter(Axis(0)).zip(&data.labels).take(n) {
        let dir = out.join(&names[label]);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        write_png(&dir.join(format!("{}.png", count[label])), img)?;
        count[label] += 1;
    }
    let [_, h, w, c] = data.images.shape() else {
        return Err("images are not a 4-D array".into());
    };
    let mut used: Vec<usize> = data.labels[..n].to_vec();
    used.sort_unstable();
    used.dedup();
    println!(
        "wrote {n} images of {} in {} class folders under {}",
        dims_text(&[*h, *w, *c]),
        used.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A class name as a folder name: path separators and other awkward
/// characters become `_` (Fashion-MNIST's `T-shirt/top` is `T-shirt_top`).
fn folder_name(class: &str) -> String {
    let s: String = class
        .chars()
        .map(|ch| {
            if ch.is_alphanumeric() || "-_ ".contains(ch) {
                ch
            } else {
                '_'
            }
        })
        .collect();
    if s.trim().is_empty() {
        "_".into()
    } else {
        s
    }
}

/// One `[0, 1]` image (H, W, C) as an 8-bit PNG.
fn write_png(path: &Path, img: ArrayView3<'_, f32>) -> Result<(), String> {
    let [h, w, c] = [img.shape()[0], img.shape()[1], img.shape()[2]];
    let bytes: Vec<u8> = img
        .iter()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let color = match c {
        1 => image::ExtendedColorType::L8,
        3 => image::ExtendedColorType::Rgb8,
        4 => image::ExtendedColorType::Rgba8,
        _ => return Err(format!("{c} channels cannot be a PNG")),
    };
    image::save_buffer(path, &bytes, w as u32, h as u32, color)
        .map_err(|e| format!("{}: {e}", path.display()))
}
