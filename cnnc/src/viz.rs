//! `cnnc viz` (feature maps and filters as PNG grids) and `cnnc diagram` (the
//! architecture as an SVG drawing).
//!
//! Both are drawn by hand: PNGs pixel by pixel on a small RGB canvas with a
//! built-in 5x7 bitmap font (no system fonts are needed), the SVG as text.
use crate::source::{self, Color};
use crate::CmdResult;
use clap::Args;
use cnn_compiler::ir::{self, Op, Shape};
use cnn_compiler::label::{layer_text, shape_text};
use cnn_compiler::summary::thousands;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

type BoxError = Box<dyn std::error::Error>;

/// `cnnc viz FILE [--weights W] [--image IMG] -o DIR`
#[derive(Args)]
pub struct VizArgs {
    /// The .cnn file
    pub file: PathBuf,
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
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
    /// Seed of the initialisation when no --weights are given
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `cnnc diagram FILE -o model.svg [--model NAME]`
#[derive(Args)]
pub struct DiagramArgs {
    /// The .cnn file
    pub file: PathBuf,
    /// Which model of the file (default: the only one)
    #[arg(long)]
    pub model: Option<String>,
    /// The SVG file to write
    #[arg(short = 'o', long = "out")]
    pub out: PathBuf,
}

// ---------------------------------------------------------------------------
// diagram

/// Writes the SVG diagram of a model.
pub fn diagram(a: DiagramArgs) -> CmdResult {
    let Some(loaded) = source::load(&a.file, Color::Auto)? else {
        return Ok(ExitCode::FAILURE);
    };
    let model = loaded.model(a.model.as_deref())?;
    let svg = diagram_svg(model);
    std::fs::write(&a.out, svg).map_err(|e| format!("{}: {e}", a.out.display()))?;
    println!("wrote {} ({} layers)", a.out.display(), model.layers.len());
    Ok(ExitCode::SUCCESS)
}

/// Escapes text for SVG (XML) character data and attribute values.
fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids are left out.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Size on the drawing for a length `n` along one axis: grows with log2(n), so a
/// 150-pixel map and a 4-pixel map both fit on the page.
fn log_len(n: usize, base: f64, per_octave: f64, max: f64) -> f64 {
    (base + per_octave * (n.max(1) as f64).log2()).min(max)
}

/// One block of the drawing: its geometry and labels.
struct Block {
    /// CSS class: `input`, `conv`, `pool`, `flatten`, `dense`, `activation`.
    kind: &'static str,
    /// Weight-name index, `None` for the input.
    index: Option<usize>,
    lines: Vec<String>,
    /// Front face width and height, and depth of the oblique faces (0 for a flat box).
    face_w: f64,
    face_h: f64,
    depth: f64,
}

fn block_for(shape: &Shape) -> (f64, f64, f64) {
    match *shape {
        // front face: height ~ H, thickness ~ channels; the oblique depth ~ W
        Shape::Image { h, w, c } => (
            log_len(c, 4.0, 5.0, 60.0),
            log_len(h, 14.0, 16.0, 170.0),
            log_len(w, 5.0, 6.5, 70.0),
        ),
        // a flat bar whose height grows with the vector's length
        Shape::Vector { n } => (12.0, log_len(n, 14.0, 12.0, 220.0), 0.0),
    }
}

/// The SVG text of a model's diagram: one `<g class="layer ...">` per layer and one
/// `<g class="layer input">` for the input, left to right, joined by arrows.
pub fn diagram_svg(model: &ir::Model) -> String {
    let mut blocks = Vec::with_capacity(model.layers.len() + 1);
    let (fw, fh, d) = block_for(&model.input);
    blocks.push(Block {
        kind: "input",
        index: None,
        lines: vec!["input".into(), shape_text(&model.input)],
        face_w: fw,
        face_h: fh,
        depth: d,
    });
    for l in &model.layers {
        let (fw, fh, d) = block_for(&l.output);
        let kind = match l.op {
            Op::Conv(_) => "conv",
            Op::Pool(_) => "pool",
            Op::Flatten => "flatten",
            Op::Dense(_) => "dense",
            Op::Activation(_) => "activation",
        };
        let mut lines = vec![layer_text(&l.op), shape_text(&l.output)];
        if l.param_count > 0 {
            lines.push(format!("{} params", thousands(l.param_count)));
        }
        blocks.push(Block {
            kind,
            index: Some(l.index),
            lines,
            face_w: fw,
            face_h: fh,
            depth: d,
        });
    }

    // Layout: a column per block, wide enough for its box and its longest label.
    const CHAR_W: f64 = 6.8; // average advance of 11px sans-serif text
    const GAP: f64 = 34.0; // room for the arrow between columns
    const MARGIN: f64 = 24.0;
    let max_up = blocks
        .iter()
        .map(|b| b.face_h / 2.0 + b.depth * 0.6)
        .fold(0.0, f64::max);
    let max_down = blocks.iter().map(|b| b.face_h / 2.0).fold(0.0, f64::max);
    let title_h = 40.0;
    let mid_y = MARGIN + title_h + max_up;
    let label_y = mid_y + max_down + 20.0;
    let max_lines = blocks.iter().map(|b| b.lines.len()).max().unwrap_or(0) as f64;
    let height = label_y + max_lines * 14.0 + MARGIN;

    let mut x = MARGIN;
    let mut cols = Vec::with_capacity(blocks.len());
    for b in &blocks {
        let text_w = b.lines.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR_W;
        let box_w = b.face_w + b.depth * 0.8;
        let col_w = text_w.max(box_w).max(40.0);
        cols.push((x, col_w));
        x += col_w + GAP;
    }
    let width = (x - GAP + MARGIN).max(320.0);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">"#
    );
    s.push_str(concat!(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" ",
        "markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n",
        "<style>.face{stroke:#333;stroke-width:1} .label{font-size:11px;fill:#222;text-anchor:middle} ",
        ".op{font-weight:bold} .title{font-size:15px;font-weight:bold;fill:#111} ",
        ".sub{font-size:11px;fill:#555}</style>\n",
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    ));
    let _ = writeln!(
        s,
        r#"<text class="title" x="{MARGIN}" y="{:.1}">{}</text>"#,
        MARGIN + 14.0,
        xml_escape(&model.name)
    );
    let _ = writeln!(
        s,
        r#"<text class="sub" x="{MARGIN}" y="{:.1}">{} layers, {} parameters, input {}</text>"#,
        MARGIN + 30.0,
        model.layers.len(),
        thousands(model.total_params),
        xml_escape(&shape_text(&model.input))
    );

    let mut right_edges = Vec::with_capacity(blocks.len());
    for (b, &(col_x, col_w)) in blocks.iter().zip(&cols) {
        let box_w = b.face_w + b.depth * 0.8;
        let x0 = col_x + (col_w - box_w) / 2.0;
        let y0 = mid_y - b.face_h / 2.0;
        let (front, top, side) = colours(b.kind);
        match b.index {
            Some(i) => {
                let _ = writeln!(s, r#"<g class="layer {}" data-index="{i}">"#, b.kind);
            }
            None => {
                let _ = writeln!(s, r#"<g class="layer {}">"#, b.kind);
            }
        }
        // A 3-D looking box: front face, then the top and right faces drawn obliquely.
        let (dx, dy) = (b.depth * 0.8, b.depth * 0.6);
        if b.depth > 0.0 {
            let _ = writeln!(
                s,
                r#"<polygon class="face" fill="{top}" points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}"/>"#,
                x0,
                y0,
                x0 + dx,
                y0 - dy,
                x0 + dx + b.face_w,
                y0 - dy,
                x0 + b.face_w,
                y0
            );
            let _ = writeln!(
                s,
                r#"<polygon class="face" fill="{side}" points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}"/>"#,
                x0 + b.face_w,
                y0,
                x0 + b.face_w + dx,
                y0 - dy,
                x0 + b.face_w + dx,
                y0 - dy + b.face_h,
                x0 + b.face_w,
                y0 + b.face_h
            );
        }
        let _ = writeln!(
            s,
            r#"<rect class="face" fill="{front}" x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}"/>"#,
            b.face_w, b.face_h
        );
        let cx = col_x + col_w / 2.0;
        for (k, line) in b.lines.iter().enumerate() {
            let class = if k == 0 { "label op" } else { "label" };
            let _ = writeln!(
                s,
                r#"<text class="{class}" x="{cx:.1}" y="{:.1}">{}</text>"#,
                label_y + k as f64 * 14.0,
                xml_escape(line)
            );
        }
        s.push_str("</g>\n");
        right_edges.push((x0, x0 + box_w));
    }
    for pair in right_edges.windows(2) {
        let (from, to) = (pair[0].1 + 3.0, pair[1].0 - 3.0);
        if to > from {
            let _ = writeln!(
                s,
                r##"<line class="arrow" x1="{from:.1}" y1="{mid_y:.1}" x2="{to:.1}" y2="{mid_y:.1}" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>"##
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// Front, top and side fill colours per kind of layer.
fn colours(kind: &str) -> (&'static str, &'static str, &'static str) {
    match kind {
        "input" => ("#d9d9d9", "#ececec", "#bdbdbd"),
        "conv" => ("#7fb3e6", "#b3d3f2", "#5b93c9"),
        "pool" => ("#f2b066", "#f7cf9f", "#d18f45"),
        "flatten" => ("#c9c9c9", "#e0e0e0", "#a8a8a8"),
        "dense" => ("#8fd18f", "#bde6bd", "#6db36d"),
        _ => ("#c5a3e0", "#ddc8ee", "#a37fc2"),
    }
}

// ---------------------------------------------------------------------------
// viz

/// Draws the first conv layer's filters and, with `--image`, every conv layer's
/// feature maps, as PNG grids in the output folder.
pub fn viz(a: VizArgs) -> CmdResult {
    let Some(loaded) = source::load(&a.file, Color::Auto)? else {
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
        save_png(&img, &path)?;
        written.push(path);
    }

    if let Some(img_path) = &a.image {
        let x = input_image(img_path, [h, w, c], a.seed)?;
        let input_png = a.out.join("input.png");
        save_png(
            &maps_grid(x.as_slice().unwrap_or(&[]), [h, w, c], "input", true),
            &input_png,
        )?;
        written.push(input_png);
        let batch = x.insert_axis(ndarray::Axis(0));
        net.forward(batch.view())?;
        for l in &conv_layers {
            let Shape::Image { h, w, c } = l.output else {
                continue;
            };
            let out = net.layer_output(l.index);
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
            save_png(&img, &path)?;
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

fn save_png(c: &Canvas, path: &Path) -> Result<(), BoxError> {
    let img = image::RgbImage::from_raw(c.w as u32, c.h as u32, c.px.clone())
        .ok_or("internal: canvas size")?;
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

/// An RGB canvas.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

const BACKGROUND: [u8; 3] = [32, 32, 36];
const TEXT: [u8; 3] = [235, 235, 235];
const DIM_TEXT: [u8; 3] = [160, 160, 170];

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        let mut px = vec![0u8; w * h * 3];
        for p in px.chunks_exact_mut(3) {
            p.copy_from_slice(&BACKGROUND);
        }
        Canvas { w, h, px }
    }
    fn set(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.w && y < self.h {
            let i = (y * self.w + x) * 3;
            self.px[i..i + 3].copy_from_slice(&rgb);
        }
    }
    /// Draws `text` with the 5x7 font, each font pixel `scale` x `scale`.
    fn text(&mut self, x: usize, y: usize, text: &str, scale: usize, rgb: [u8; 3]) {
        for (k, ch) in text.chars().enumerate() {
            let rows = glyph(ch);
            let gx = x + k * 6 * scale;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        for sy in 0..scale {
                            for sx in 0..scale {
                                self.set(gx + col * scale + sx, y + r * scale + sy, rgb);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Width in pixels of `text` drawn at `scale`.
fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * 6 * scale
}

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
fn maps_grid(data: &[f32], [h, w, c]: [usize; 3], title: &str, rgb: bool) -> Canvas {
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
fn filter_grid(kernel: &[f32], [kh, kw, cin, f]: [usize; 4], title: &str) -> Canvas {
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

/// The 5x7 bitmap of a character: 7 rows, the low 5 bits of each, leftmost = 0x10.
/// Upper-case letters, digits, a lower-case `x` (as in `3x3`) and some punctuation;
/// other lower-case letters are drawn as upper case, anything else as `?`.
fn glyph(ch: char) -> [u8; 7] {
    let ch = if ch.is_ascii_lowercase() && ch != 'x' {
        ch.to_ascii_uppercase()
    } else {
        ch
    };
    match ch {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        'x' => [0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '[' => [0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E],
        ']' => [0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drawn_character_has_a_distinct_glyph() {
        let chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZx0123456789.,:-_/()=+%[]";
        let glyphs: Vec<[u8; 7]> = chars.chars().map(glyph).collect();
        for (i, a) in glyphs.iter().enumerate() {
            assert!(a.iter().all(|r| *r < 0x20), "glyph {i} wider than 5");
            for b in &glyphs[i + 1..] {
                assert_ne!(a, b, "two characters share a glyph");
            }
        }
        assert_eq!(glyph('q'), glyph('Q'));
        assert_eq!(glyph('\u{1F600}'), glyph('?'));
    }

    #[test]
    fn escapes_markup_in_text() {
        assert_eq!(xml_escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(xml_escape("x\u{1}y"), "xy");
    }

    #[test]
    fn normalisation_maps_range_to_bytes() {
        assert_eq!(to_byte(-1.0, -1.0, 3.0), 0);
        assert_eq!(to_byte(3.0, -1.0, 3.0), 255);
        assert_eq!(to_byte(1.0, -1.0, 3.0), 128);
        assert_eq!(to_byte(5.0, 5.0, 5.0), 128);
        assert_eq!(to_byte(f32::NAN, 0.0, 1.0), 128);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(850), "850");
        assert_eq!(thousands(2416), "2,416");
        assert_eq!(thousands(10635685), "10,635,685");
    }

    #[test]
    fn tiles_grow_small_maps_and_shrink_big_ones() {
        assert_eq!(tile_size(3, 3, 40, 256), (42, 42));
        assert_eq!(tile_size(150, 75, 48, 256), (150, 75));
        assert_eq!(tile_size(1024, 512, 48, 256), (256, 128));
    }
}
