//! `cnnc diagram`: a model's architecture as an SVG drawing, written as text
//! (one 3-D looking box per layer, sized by its output shape, with its statement,
//! shape and parameter count underneath; branches one above the other, joined
//! by a sum or a concat; repeats and block uses framed).
use crate::source::{self, Color};
use crate::CmdResult;
use clap::Args;
use cnn_compiler::ir::{self, GraphKind, Op, Shape};
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
    /// Colour the diagnostics
    #[arg(long, value_enum, default_value = "auto")]
    pub color: Color,
    /// Which model of the file (default: the only one)
    #[arg(long)]
    pub model: Option<String>,
    /// The SVG file to write
    #[arg(short = 'o', long = "output", visible_alias = "out")]
    pub out: PathBuf,
}

/// Writes the SVG diagram of a model.
pub fn diagram(a: DiagramArgs) -> CmdResult {
    crate::output::check(&a.out, &["svg"], &[&a.file])?;
    let Some(loaded) = source::load(&a.file, a.color)? else {
        return Ok(ExitCode::FAILURE);
    };
    let model = loaded.model(a.model.as_deref())?;
    let svg = diagram_svg(model);
    cnn::runtime::io::write_atomic(&a.out, svg.as_bytes())?;
    println!("wrote {} ({} layers)", a.out.display(), layer_count(model));
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
    /// CSS class: `input`, `conv`, `pool`, `flatten`, `dense`, `activation`,
    /// or a join: `add`, `concat`.
    kind: &'static str,
    /// Weight-name index and path, `None` for the input.
    at: Option<(usize, String)>,
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

/// What is drawn: boxes in a row, branches stacked and joined, and a frame
/// around a repeat or a block use.
enum Item {
    Box(Block),
    Row(Vec<Item>),
    /// Branches fed the same input, one above the other, then their join.
    Fork(Vec<Item>, Block),
    /// A labelled dashed frame around its content (`repeat 3`, `basic 16`).
    Frame(String, Box<Item>),
}

const CHAR_W: f64 = 6.8; // average advance of 11px sans-serif text
const GAP: f64 = 34.0; // room for the arrow between columns
const VGAP: f64 = 18.0; // between stacked branches
const PAD: f64 = 8.0; // inside a frame
const LINE_H: f64 = 14.0;

impl Block {
    fn layer(l: &ir::Layer) -> Block {
        let (face_w, face_h, depth) = block_for(&l.output);
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
        Block {
            kind,
            at: Some((l.index, l.path.clone())),
            lines,
            face_w,
            face_h,
            depth,
        }
    }

    /// The join of a graph statement: a circled plus for a sum, a thin slab
    /// for a concat.
    fn join(l: &ir::Layer, concat: bool) -> Block {
        let (kind, face_w, face_h) = if concat {
            ("concat", 6.0, block_for(&l.output).1)
        } else {
            ("add", 18.0, 18.0)
        };
        Block {
            kind,
            at: Some((l.index, l.path.clone())),
            lines: vec![kind.to_string(), shape_text(&l.output)],
            face_w,
            face_h,
            depth: 0.0,
        }
    }

    fn box_w(&self) -> f64 {
        self.face_w + self.depth * 0.8
    }

    /// Width, and extents above and below the arrow line, with the labels
    /// starting `labels` below that line.
    fn size(&self, labels: f64) -> (f64, f64, f64) {
        (
            self.col_w(),
            self.face_h / 2.0 + self.depth * 0.6,
            labels + 6.0 + self.lines.len() as f64 * LINE_H,
        )
    }

    /// The column's width: the box or its longest label.
    fn col_w(&self) -> f64 {
        let text = self
            .lines
            .iter()
            .map(|l| l.chars().count())
            .max()
            .unwrap_or(0) as f64
            * CHAR_W;
        text.max(self.box_w()).max(40.0)
    }
}

/// The items of a chain of layers.
fn row(layers: &[ir::Layer]) -> Item {
    Item::Row(layers.iter().map(item).collect())
}

fn item(l: &ir::Layer) -> Item {
    let Op::Graph(g) = &l.op else {
        return Item::Box(Block::layer(l));
    };
    match &g.kind {
        GraphKind::Repeat(_) | GraphKind::Use { .. } => {
            let inner: Vec<ir::Layer> = g.branches.iter().flatten().cloned().collect();
            Item::Frame(layer_text(&l.op), Box::new(row(&inner)))
        }
        GraphKind::Concat => Item::Fork(
            g.branches.iter().map(|b| row(b)).collect(),
            Block::join(l, true),
        ),
        _ => Item::Fork(
            g.branches.iter().map(|b| row(b)).collect(),
            Block::join(l, false),
        ),
    }
}

impl Item {
    /// Width, and extents above and below the line the arrows run on.
    fn size(&self) -> (f64, f64, f64) {
        match self {
            Item::Box(b) => b.size(b.face_h / 2.0),
            Item::Row(items) if items.is_empty() => (0.0, 4.0, 4.0),
            Item::Row(items) => {
                let labels = labels_at(items);
                items
                    .iter()
                    .map(|i| match i {
                        Item::Box(b) => b.size(labels),
                        _ => i.size(),
                    })
                    .fold((-GAP, 0.0, 0.0), |(w, u, d), (iw, iu, id)| {
                        (w + GAP + iw, u.max(iu), d.max(id))
                    })
            }
            Item::Fork(branches, join) => {
                let sizes: Vec<_> = branches.iter().map(Item::size).collect();
                let w = sizes.iter().map(|s| s.0).fold(0.0, f64::max);
                let h = sizes.iter().map(|s| s.1 + s.2).sum::<f64>()
                    + VGAP * (sizes.len() as f64 - 1.0);
                let (_, ju, jd) = join.size(join.face_h / 2.0);
                (
                    GAP + w + GAP + join.col_w(),
                    (h / 2.0).max(ju),
                    (h / 2.0).max(jd),
                )
            }
            Item::Frame(_, inner) => {
                let (w, u, d) = inner.size();
                (w + 2.0 * PAD, u + PAD + LINE_H, d + PAD)
            }
        }
    }
}

/// How far below the arrow line the labels of a row's boxes start: under the
/// tallest box, so that they line up.
fn labels_at(items: &[Item]) -> f64 {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Box(b) => Some(b.face_h / 2.0),
            _ => None,
        })
        .fold(0.0, f64::max)
}

/// Writes SVG elements into `s`.
struct Drawing {
    s: String,
}

impl Drawing {
    /// Draws `it` with its left edge at `x` and its arrow line at `y`; returns
    /// where arrows enter and leave it.
    fn item(&mut self, it: &Item, x: f64, y: f64) -> (f64, f64) {
        match it {
            Item::Box(b) => self.block(b, x, y, b.face_h / 2.0),
            Item::Row(items) => {
                let labels = labels_at(items);
                let mut cx = x;
                let mut ends: Option<(f64, f64)> = None;
                for i in items {
                    let (x_in, x_out) = match i {
                        Item::Box(b) => self.block(b, cx, y, labels),
                        _ => self.item(i, cx, y),
                    };
                    if let Some((first, last)) = ends {
                        self.arrow(&[(last + 3.0, y), (x_in - 3.0, y)]);
                        ends = Some((first, x_out));
                    } else {
                        ends = Some((x_in, x_out));
                    }
                    cx += i.size().0 + GAP;
                }
                ends.unwrap_or((x, x))
            }
            Item::Fork(branches, join) => {
                let (w, up, _) = it.size();
                let join_w = join.col_w();
                let bx = x + GAP;
                let jx = x + w - join_w;
                let sizes: Vec<_> = branches.iter().map(Item::size).collect();
                let stacked = sizes.iter().map(|s| s.1 + s.2).sum::<f64>()
                    + VGAP * (sizes.len() as f64 - 1.0);
                let mut top = y - up + (2.0 * up - stacked) / 2.0;
                let (j_in, j_out) = self.block(join, jx, y, join.face_h / 2.0);
                for (b, (_, bu, bd)) in branches.iter().zip(&sizes) {
                    let by = top + bu;
                    let (b_in, b_out) = self.item(b, bx, by);
                    let into_join = [(jx - GAP / 2.0, by), (j_in - 3.0, y)];
                    if matches!(b, Item::Row(items) if items.is_empty()) {
                        // The identity: one line from the fork to the join.
                        self.arrow(&[(x, y), (x + GAP / 2.0, by), into_join[0], into_join[1]]);
                    } else {
                        self.arrow(&[(x, y), (x + GAP / 2.0, by), (b_in - 3.0, by)]);
                        self.arrow(&[(b_out + 3.0, by), into_join[0], into_join[1]]);
                    }
                    top = by + bd + VGAP;
                }
                (x, j_out)
            }
            Item::Frame(label, inner) => {
                let (w, up, down) = it.size();
                let _ = writeln!(
                    self.s,
                    r##"<g class="frame"><rect x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}" rx="6" fill="none" stroke="#999" stroke-dasharray="4 3"/><text class="sub" x="{:.1}" y="{:.1}">{}</text></g>"##,
                    y - up,
                    up + down,
                    x + PAD,
                    y - up + LINE_H - 2.0,
                    xml_escape(label)
                );
                self.item(inner, x + PAD, y)
            }
        }
    }

    /// A box in the column at `x` (centred in it), its labels from `labels`
    /// below the arrow line.
    fn block(&mut self, b: &Block, x: f64, y: f64, labels: f64) -> (f64, f64) {
        let s = &mut self.s;
        let col_w = b.col_w();
        let box_w = b.box_w();
        let x0 = x + (col_w - box_w) / 2.0;
        let y0 = y - b.face_h / 2.0;
        let (front, top, side) = colours(b.kind);
        match &b.at {
            Some((i, path)) => {
                let _ = writeln!(
                    s,
                    r#"<g class="layer {}" data-index="{i}" data-path="{path}">"#,
                    b.kind
                );
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
        if b.kind == "add" {
            let r = b.face_w / 2.0;
            let (cx, cy) = (x0 + r, y);
            let _ = writeln!(
                s,
                r##"<circle class="face" fill="{front}" cx="{cx:.1}" cy="{cy:.1}" r="{r:.1}"/><path d="M{:.1},{cy:.1} H{:.1} M{cx:.1},{:.1} V{:.1}" stroke="#333" stroke-width="1.5"/>"##,
                cx - r + 4.0,
                cx + r - 4.0,
                cy - r + 4.0,
                cy + r - 4.0
            );
        } else {
            let _ = writeln!(
                s,
                r#"<rect class="face" fill="{front}" x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}"/>"#,
                b.face_w, b.face_h
            );
        }
        let cx = x + col_w / 2.0;
        for (k, line) in b.lines.iter().enumerate() {
            let class = if k == 0 { "label op" } else { "label" };
            let _ = writeln!(
                s,
                r#"<text class="{class}" x="{cx:.1}" y="{:.1}">{}</text>"#,
                y + labels + 6.0 + (k as f64 + 0.75) * LINE_H,
                xml_escape(line)
            );
        }
        s.push_str("</g>\n");
        (x0, x0 + box_w)
    }

    /// A line through `points`, with an arrow head at its end (when it has a length).
    fn arrow(&mut self, points: &[(f64, f64)]) {
        let (Some(a), Some(b)) = (points.first(), points.last()) else {
            return;
        };
        if b.0 - a.0 <= 0.0 && points.len() == 2 {
            return;
        }
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = writeln!(
            self.s,
            r##"<polyline class="arrow" points="{}" fill="none" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>"##,
            pts.join(" ")
        );
    }
}

/// The layers drawn as boxes: every layer but the graph statements.
fn layer_count(model: &ir::Model) -> usize {
    model
        .walk()
        .iter()
        .filter(|(_, l)| !matches!(l.op, Op::Graph(_)))
        .count()
}

/// The SVG text of a model's diagram: one `<g class="layer ...">` per layer
/// (nested ones included, with `data-path`) and one `<g class="layer input">`
/// for the input, left to right, joined by arrows; the branches of a
/// `residual`, `add` or `concat` one above the other, then their join; a
/// `repeat` or block use in a labelled frame.
pub fn diagram_svg(model: &ir::Model) -> String {
    const MARGIN: f64 = 24.0;
    let (fw, fh, d) = block_for(&model.input);
    let input = Block {
        kind: "input",
        at: None,
        lines: vec!["input".into(), shape_text(&model.input)],
        face_w: fw,
        face_h: fh,
        depth: d,
    };
    let mut items = vec![Item::Box(input)];
    items.extend(model.layers.iter().map(item));
    let root = Item::Row(items);
    let (w, up, down) = root.size();
    let title_h = 40.0;
    let mid_y = MARGIN + title_h + up;
    let width = (w + 2.0 * MARGIN).max(320.0);
    let height = mid_y + down + MARGIN;

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
    let layers = layer_count(model);
    let _ = writeln!(
        s,
        r#"<text class="sub" x="{MARGIN}" y="{:.1}">{} layers, {} parameters, input {}</text>"#,
        MARGIN + 30.0,
        layers,
        thousands(model.total_params),
        xml_escape(&shape_text(&model.input))
    );
    let mut drawing = Drawing { s };
    drawing.item(&root, MARGIN, mid_y);
    let mut s = drawing.s;
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
        "add" | "concat" => ("#f5e6a3", "#f5e6a3", "#f5e6a3"),
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
