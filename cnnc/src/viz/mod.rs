//! `cnnc viz`: feature maps and filters as PNG grids, drawn by hand pixel by
//! pixel on a small RGB canvas with a built-in 5x7 bitmap font (no system fonts
//! are needed).
mod canvas;
mod font;
mod grid;

use crate::source::{self, Color};
use crate::CmdResult;
use clap::Args;
use cnn_compiler::ir::{self, Op, Shape};
use cnn_compiler::label::layer_text;
use grid::{filter_grid, maps_grid};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

type BoxError = Box<dyn std::error::Error>;

/// `cnnc viz FILE [--weights W] [--image IMG] -o DIR`
#[derive(Args)]
pub struct VizArgs {
    /// The .cnn file
    pub file: PathBuf,
    /// Colour the diagnostics
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
    /// Which model of the file (default: the only one)
    #[arg(long)]
    pub model: Option<String>,
    /// Trained weights (.safetensors or .npz); without them the model's fresh
    /// initialisation for --seed is drawn
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// An image (PNG or JPEG) to run through the model: one PNG of feature maps
    /// per conv layer. `shapes:I` takes image I of the built-in shapes test split
    /// (of `shapes` with its default count, for --seed) instead of a file.
    /// Without it only the first conv layer's filters are drawn
    #[arg(long, value_name = "IMG")]
    pub image: Option<PathBuf>,
    /// Output folder (created if missing)
    #[arg(short = 'o', long = "output", visible_alias = "out")]
    pub out: PathBuf,
    /// Seed of the initialisation when no --weights are given
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Draws the first conv layer's filters and, with `--image`, every conv layer's
/// feature maps, as PNG grids in the output folder.
pub fn viz(a: VizArgs) -> CmdResult {
    let Some(loaded) = source::load(&a.file, a.color)? else {
        return Ok(ExitCode::FAILURE);
    };
    let model = loaded.model(a.model.as_deref())?;
    let conv_layers: Vec<&ir::Layer> = model
        .layers
        .iter()
        .filter(|l| matches!(l.op, Op::Conv(_)))
        .collect();
    if conv_layers.is_empty() {
        return Err(format!(
            "{}: model {} has no conv layer to draw",
            a.file.display(),
            model.name
        )
        .into());
    }
    let Shape::Image { h, w, c } = model.input else {
        return Err("the model's input is not an image".into());
    };
    let mut net = cnn::lower::interpreter(model, a.seed)?;
    if net.num_layers() != model.layers.len() {
        return Err(format!(
            "internal: the interpreter has {} layers for {} statements",
            net.num_layers(),
            model.layers.len()
        )
        .into());
    }
    if let Some(wpath) = &a.weights {
        cnn_runtime::io::weights::load_weights(&mut net, wpath)?;
    } else {
        eprintln!(
            "note: no --weights given: drawing the fresh initialisation (seed {})",
            a.seed
        );
    }
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let mut written = Vec::new();

    // Filters of the first conv layer, from the kernel (KH, KW, CIN, F).
    let first = conv_layers[0];
    let kernel_name = format!("layer{}.kernel", first.index);
    {
        let params = cnn_runtime::Model::params(&net);
        let p = params
            .iter()
            .find(|p| p.name == kernel_name)
            .ok_or_else(|| format!("internal: no parameter {kernel_name}"))?;
        let [kh, kw, cin, f] = <[usize; 4]>::try_from(p.shape.as_slice())
            .map_err(|_| format!("internal: {kernel_name} has shape {:?}", p.shape))?;
        let title = format!(
            "layer {} {} - {} filters {}x{}x{}",
            first.index,
            layer_text(&first.op),
            f,
            kh,
            kw,
            cin
        );
        let img = filter_grid(p.data, [kh, kw, cin, f], &title);
        let path = a.out.join(format!("layer{}_filters.png", first.index));
        img.save_png(&path)?;
        written.push(path);
    }

    if let Some(img_path) = &a.image {
        let x = input_image(img_path, [h, w, c], a.seed)?;
        let input_png = a.out.join("input.png");
        maps_grid(x.as_slice().unwrap_or(&[]), [h, w, c], "input", true).save_png(&input_png)?;
        written.push(input_png);
        let batch = x.insert_axis(ndarray::Axis(0));
        net.forward(batch.view())?;
        for l in &conv_layers {
            let Shape::Image { h, w, c } = l.output else {
                continue;
            };
            let out = cnn::runtime::Model::layer_output(&net, l.index)?;
            let row = out.row(0);
            let data: Vec<f32> = row.iter().copied().collect();
            let title = format!(
                "layer {} {} - {}x{}x{}",
                l.index,
                layer_text(&l.op),
                h,
                w,
                c
            );
            let img = maps_grid(&data, [h, w, c], &title, false);
            let path = a.out.join(format!("layer{}_features.png", l.index));
            img.save_png(&path)?;
            written.push(path);
        }
    }
    for p in &written {
        println!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads `--image`: a PNG/JPEG file, or `shapes:I` (a built-in test image).
fn input_image(arg: &Path, input: [usize; 3], seed: u64) -> Result<ndarray::Array3<f32>, BoxError> {
    use cnn_runtime::data::shapes::{shapes_image, CLASSES};
    let text = arg.to_string_lossy();
    if let (Some(index), false) = (text.strip_prefix("shapes:"), arg.exists()) {
        let index: usize = index
            .parse()
            .map_err(|_| format!("--image shapes:I needs an image number, got `{index}`"))?;
        let count = cnn_runtime::data::DEFAULT_SHAPES;
        let (img, label) = shapes_image(count, input, seed, true, index)?;
        eprintln!(
            "image: shapes test image {index} (seed {seed}), a {}",
            CLASSES[label]
        );
        return Ok(img);
    }
    Ok(cnn_runtime::data::folder::load_image(arg, input)?)
}
