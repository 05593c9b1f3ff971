//! `cnnc diagram`: a model's architecture as an SVG drawing, written as text
//! (one 3-D looking box per layer, sized by its output shape, with its statement,
//! shape and parameter count underneath).
use crate::source::{self, Color};
use crate::CmdResult;
use clap::Args;
use cnn_compiler::ir::{self, Op, Shape};
use cnn_compiler::label::{layer_text, shape_text};
use cnn_compiler::summary::thousands;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

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

/// Front face width and height and oblique depth of the block drawn for `shape`.
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
            Op::Conv(_) | Op::DwConv(_) | Op::SepConv(_) | Op::Deconv(_) => "conv",
            Op::Pool(_) | Op::GlobalPool(_) => "pool",
            Op::Flatten => "flatten",
            Op::Dense(_) => "dense",
            // Normalisation, dropout, padding, resampling: drawn as activations are.
            _ => "activation",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_in_text() {
        assert_eq!(xml_escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(xml_escape("x\u{1}y"), "xy");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(850), "850");
        assert_eq!(thousands(2416), "2,416");
        assert_eq!(thousands(10635685), "10,635,685");
    }
}
