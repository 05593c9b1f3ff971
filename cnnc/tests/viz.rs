//! `cnnc diagram` and `cnnc viz`, run as a user would: the SVG parses as XML with
//! one block per layer; the PNGs decode, with one tile per channel or filter, and
//! show what the weights and the image put there.

mod common;

use cnn_runtime::io::npy::npy_bytes;
use cnn_runtime::io::npz::write_npz;
use common::{cnnc, cnnc_ok};
use std::path::Path;

/// A fresh temp dir holding the file `name`: the dir and the file's path.
fn scratch_with(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let src = write(dir.path(), name, text);
    (dir, src)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// input 12x12x3; layers 0 conv, 1 maxpool, 2 conv, 3 flatten, 4 dense
const SMALL: &str =
    "input 12x12x3; conv 4 3x3 same relu; maxpool 2; conv 5 3x3 relu; flatten; dense 3 softmax";

#[test]
fn diagram_is_xml_with_one_block_per_layer() {
    let dir = tempfile::tempdir().unwrap();
    // LeNet-5 on 32x32x1, the Keras oracle's case.
    let src = common::golden("lenet5").join("model.cnn");
    let src = src.to_str().unwrap();
    let svg_path = dir.path().join("lenet5.svg");
    cnnc_ok(&["diagram", src, "-o", svg_path.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("valid XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let blocks: Vec<_> = doc
        .descendants()
        .filter(|n| {
            n.tag_name().name() == "g"
                && n.attribute("class").is_some_and(|c| c.starts_with("layer"))
        })
        .collect();
    // the input plus 8 layers
    assert_eq!(blocks.len(), 9);
    assert_eq!(blocks[0].attribute("class"), Some("layer input"));
    let kinds: Vec<&str> = blocks[1..]
        .iter()
        .map(|b| b.attribute("class").unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "layer conv",
            "layer pool",
            "layer conv",
            "layer pool",
            "layer conv",
            "layer flatten",
            "layer dense",
            "layer dense"
        ]
    );
    for (i, b) in blocks[1..].iter().enumerate() {
        assert_eq!(b.attribute("data-index"), Some(i.to_string().as_str()));
    }
    // each block is labelled with its statement and its output shape
    let texts = |b: &roxmltree::Node| -> Vec<String> {
        b.descendants()
            .filter(|n| n.tag_name().name() == "text")
            .filter_map(|n| n.text())
            .map(String::from)
            .collect()
    };
    assert_eq!(texts(&blocks[0]), ["input", "32x32x1"]);
    assert_eq!(
        texts(&blocks[1]),
        ["conv 6 5x5 tanh", "28x28x6", "156 params"]
    );
    assert_eq!(texts(&blocks[2]), ["avgpool 2", "14x14x6"]);
    assert_eq!(
        texts(&blocks[5]),
        ["conv 120 5x5 tanh", "1x1x120", "48,120 params"]
    );
    assert_eq!(texts(&blocks[6]), ["flatten", "120"]);
    assert_eq!(texts(&blocks[8]), ["dense 10 softmax", "10", "850 params"]);
    let arrows = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("arrow"))
        .count();
    assert_eq!(arrows, 8);
    assert!(svg.contains("61,706 parameters"), "{svg}");
}

#[test]
fn diagram_shows_non_default_options_and_picks_a_model() {
    let (dir, src) = scratch_with("two.cnn",
        "model A { input 20x20x3; conv 8 3x3 stride 2 same dilation 2; maxpool 3 stride 2 same; relu }
         model B { input 8x8x1; flatten; dense 2 }",
    );
    let svg_path = dir.path().join("a.svg");
    // two models and no --model: an error that names them
    let out = cnnc(&["diagram", &src, "-o", svg_path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--model") && err.contains('A') && err.contains('B'),
        "{err}"
    );
    cnnc_ok(&[
        "diagram",
        &src,
        "--model",
        "A",
        "-o",
        svg_path.to_str().unwrap(),
    ]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text())
        .collect();
    assert!(
        texts.contains(&"conv 8 3x3 stride 2 same dilation 2"),
        "{texts:?}"
    );
    assert!(texts.contains(&"maxpool 3 stride 2 same"), "{texts:?}");
    assert!(texts.contains(&"relu"), "{texts:?}");
    let out = cnnc(&[
        "diagram",
        &src,
        "--model",
        "C",
        "-o",
        svg_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}

#[test]
fn diagram_of_a_model_with_errors_fails_with_the_diagnostics() {
    let (dir, src) = scratch_with("bad.cnn", "input 4x4x1; conv 8 5x5; flatten; dense 2");
    let svg_path = dir.path().join("bad.svg");
    let out = cnnc(&["diagram", &src, "-o", svg_path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.cnn"), "{err}");
    assert!(!svg_path.exists());
    let out = cnnc(&[
        "diagram",
        "/nonexistent/x.cnn",
        "-o",
        svg_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}

const BG: [u8; 3] = [32, 32, 36];

/// Tiles in a viz PNG: rectangles of exactly `tw x th` non-background pixels
/// whose top-left corner has background above and to the left.
fn tiles(img: &image::RgbImage, tw: u32, th: u32) -> Vec<(u32, u32)> {
    let bg = |x: u32, y: u32| img.get_pixel(x, y).0 == BG;
    let mut found = Vec::new();
    for y in 1..img.height().saturating_sub(th) {
        for x in 1..img.width().saturating_sub(tw) {
            if bg(x, y) || !bg(x - 1, y) || !bg(x, y - 1) {
                continue;
            }
            let across = (x..x + tw).all(|xx| !bg(xx, y)) && bg(x + tw, y);
            let down = (y..y + th).all(|yy| !bg(x, yy)) && bg(x, y + th);
            if across && down {
                found.push((x, y));
            }
        }
    }
    found
}

fn tensor(name: &str, shape: &[usize], data: &[f32]) -> (String, Vec<u8>) {
    (name.to_string(), npy_bytes(shape, data).unwrap())
}

/// Weights for SMALL: filter 0 of layer 0 is 1 at kernel cell (0, 0) in every
/// input channel and 0 elsewhere; the other filters are small distinct values.
fn small_weights(path: &Path) {
    let (kh, kw, cin, f) = (3, 3, 3, 4);
    let mut k0 = vec![0f32; kh * kw * cin * f];
    for (i, v) in k0.iter_mut().enumerate() {
        let fi = i % f;
        let cell = i / (cin * f);
        *v = if fi == 0 {
            if cell == 0 {
                1.0
            } else {
                0.0
            }
        } else {
            ((i * 37 % 11) as f32 - 5.0) / 10.0
        };
    }
    let arrays = vec![
        tensor("layer0.kernel", &[3, 3, 3, 4], &k0),
        tensor("layer0.bias", &[4], &[0.0; 4]),
        tensor(
            "layer2.kernel",
            &[3, 3, 4, 5],
            &(0..180)
                .map(|i| ((i % 7) as f32 - 3.0) / 10.0)
                .collect::<Vec<_>>(),
        ),
        tensor("layer2.bias", &[5], &[0.1; 5]),
        tensor("layer4.kernel", &[80, 3], &vec![0.01; 240]),
        tensor("layer4.bias", &[3], &[0.0; 3]),
    ];
    write_npz(path, arrays).unwrap();
}

#[test]
fn viz_draws_filters_and_one_tile_per_channel_of_each_conv_layer() {
    let (dir, src) = scratch_with("small.cnn", SMALL);
    let weights = dir.path().join("w.npz");
    small_weights(&weights);
    // an input whose left half is black and right half white
    let img_path = dir.path().join("half.png");
    image::RgbImage::from_fn(24, 24, |x, _| {
        if x < 12 {
            image::Rgb([0, 0, 0])
        } else {
            image::Rgb([255, 255, 255])
        }
    })
    .save(&img_path)
    .unwrap();
    let out_dir = dir.path().join("viz");
    cnnc_ok(&[
        "viz",
        &src,
        "--weights",
        weights.to_str().unwrap(),
        "--image",
        img_path.to_str().unwrap(),
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    let open = |name: &str| {
        image::open(out_dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .to_rgb8()
    };

    // filters: 4 tiles of 3x3 cells enlarged 14x (to at least 40 px)
    let filters = open("layer0_filters.png");
    let ft = tiles(&filters, 42, 42);
    assert_eq!(ft.len(), 4, "{ft:?}");
    // filter 0: its top-left cell is the maximum (white), every other cell the minimum (black)
    let (x0, y0) = ft[0];
    assert_eq!(filters.get_pixel(x0 + 5, y0 + 5).0, [255, 255, 255]);
    assert_eq!(filters.get_pixel(x0 + 20, y0 + 20).0, [0, 0, 0]);
    assert_eq!(filters.get_pixel(x0 + 40, y0 + 5).0, [0, 0, 0]);

    // layer 0: 12x12x4 maps enlarged 4x -> 4 tiles of 48x48
    let l0 = open("layer0_features.png");
    let t0 = tiles(&l0, 48, 48);
    assert_eq!(t0.len(), 4, "{t0:?}");
    // channel 0 = the input shifted by one pixel (same padding): dark left, bright right
    let (x0, y0) = t0[0];
    assert!(l0.get_pixel(x0 + 10, y0 + 24).0[0] < 30);
    assert!(l0.get_pixel(x0 + 40, y0 + 24).0[0] > 225);

    // layer 2: 4x4x5 maps enlarged 12x -> 5 tiles of 48x48
    let l2 = open("layer2_features.png");
    assert_eq!(tiles(&l2, 48, 48).len(), 5);

    // the input as the model sees it: 12x12 enlarged to 132x132, one tile
    let input = open("input.png");
    assert_eq!(tiles(&input, 132, 132).len(), 1);

    // no PNG for non-conv layers
    let mut names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "input.png",
            "layer0_features.png",
            "layer0_filters.png",
            "layer2_features.png"
        ]
    );
}

#[test]
fn viz_reports_bad_inputs_without_crashing() {
    let (dir, src) = scratch_with("small.cnn", SMALL);
    let out_dir = dir.path().join("viz");
    let od = out_dir.to_str().unwrap();
    // weights of another architecture
    let weights = dir.path().join("w.npz");
    write_npz(
        &weights,
        vec![tensor("layer0.kernel", &[1, 1, 1, 1], &[1.0])],
    )
    .unwrap();
    let out = cnnc(&[
        "viz",
        &src,
        "--weights",
        weights.to_str().unwrap(),
        "-o",
        od,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("layer0.kernel"));
    // an image that is not an image
    let bogus = write(dir.path(), "bogus.png", "not a png");
    let out = cnnc(&["viz", &src, "--image", &bogus, "-o", od]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus.png"));
    // a model without conv layers
    let dense = write(
        dir.path(),
        "dense.cnn",
        "input 4x4x1; flatten; dense 2 softmax",
    );
    let out = cnnc(&["viz", &dense, "-o", od]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no conv layer"));
    // without weights or image: the fresh filters only
    cnnc_ok(&["viz", &src, "-o", od]);
    let filters = image::open(out_dir.join("layer0_filters.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(tiles(&filters, 42, 42).len(), 4);
}

#[test]
fn viz_takes_a_built_in_shapes_image() {
    let (dir, src) = scratch_with("small.cnn", SMALL);
    let out_dir = dir.path().join("viz");
    let out = cnnc_ok(&[
        "viz",
        &src,
        "--image",
        "shapes:3",
        "-o",
        out_dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shapes test image 3"), "{err}");
    let l2 = image::open(out_dir.join("layer2_features.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(tiles(&l2, 48, 48).len(), 5);
    // out of range / not a number: errors, not panics
    for bad in ["shapes:100000", "shapes:x"] {
        let out = cnnc(&["viz", &src, "--image", bad, "-o", out_dir.to_str().unwrap()]);
        assert!(!out.status.success(), "{bad}");
    }
}

/// A graph: every layer of every branch, repeat copy and block use has its
/// block (with its path), each join its own, each repeat and block use a
/// frame; the branches of a join stand one above the other.
#[test]
fn diagram_draws_branches_side_by_side_and_joins() {
    let root = common::repo();
    let src = root.join("grammar/valid/graph_blocks.cnn");
    let text = std::fs::read_to_string(&src).unwrap();
    let c = cnn_compiler::compile(&text, "ResNet8");
    let model = &c.models[0];
    let walk = model.walk();
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("resnet8.svg");
    let out = cnnc_ok(&[
        "diagram",
        src.to_str().unwrap(),
        "-o",
        svg_path.to_str().unwrap(),
    ]);
    let layers = walk
        .iter()
        .filter(|(_, l)| l.op.keyword() != "residual")
        .filter(|(_, l)| !matches!(l.op, cnn_compiler::ir::Op::Graph(_)))
        .count();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("({layers} layers)")));
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("valid XML");
    let class_of = |n: &roxmltree::Node| n.attribute("class").unwrap_or("").to_string();
    let blocks: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "g" && class_of(n).starts_with("layer "))
        .collect();
    // Every layer and join of the IR, by path, and the input.
    let mut want: Vec<String> = walk
        .iter()
        .filter(|(_, l)| match &l.op {
            cnn_compiler::ir::Op::Graph(g) => g.joins(),
            _ => true,
        })
        .map(|(_, l)| l.path.clone())
        .collect();
    let mut got: Vec<String> = blocks
        .iter()
        .filter_map(|b| b.attribute("data-path").map(String::from))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(blocks.len(), want.len() + 1, "and the input");
    let joins = blocks.iter().filter(|b| class_of(b) == "layer add").count();
    let residuals = walk
        .iter()
        .filter(|(_, l)| l.op.keyword() == "residual")
        .count();
    assert_eq!(
        (joins, residuals),
        (5, 5),
        "one residual at the top, one in each basic block"
    );
    let frames = doc.descendants().filter(|n| class_of(n) == "frame").count();
    let uses = walk
        .iter()
        .filter(|(_, l)| matches!(l.op.keyword(), "use" | "repeat"))
        .count();
    assert_eq!(frames, uses);
    // A residual's body and its shortcut: one above the other.
    let rect_y = |path: &str| -> f64 {
        let b = blocks
            .iter()
            .find(|b| b.attribute("data-path") == Some(path))
            .unwrap();
        let r = b
            .descendants()
            .find(|n| n.tag_name().name() == "rect")
            .unwrap();
        r.attribute("y").unwrap().parse().unwrap()
    };
    let residual = walk
        .iter()
        .find(|(_, l)| matches!(&l.op, cnn_compiler::ir::Op::Graph(g) if matches!(g.kind, cnn_compiler::ir::GraphKind::Residual { shortcut: true })))
        .map(|(_, l)| l.path.clone())
        .unwrap();
    let (body, short) = (format!("{residual}.0.0"), format!("{residual}.1.0"));
    assert!(rect_y(&body) < rect_y(&short), "{body} above {short}");
}
