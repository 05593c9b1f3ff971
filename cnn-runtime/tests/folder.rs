//! `folder:DIR` loading on a generated folder of PNG and JPEG files, with the
//! awkward cases: a corrupt file, a truncated file, a non-image file, a stray
//! file at the top, an empty class folder and a decompression bomb.

use cnn_runtime::data::folder::{load_folder, load_image};
use image::{ImageFormat, Rgb, RgbImage};
use std::fs;
use std::path::Path;

fn solid(path: &Path, w: u32, h: u32, rgb: [u8; 3], format: ImageFormat) {
    RgbImage::from_pixel(w, h, Rgb(rgb))
        .save_with_format(path, format)
        .unwrap();
}

/// a/: 3 red PNGs + 1 red JPEG; b/: 2 blue PNGs + a corrupt PNG, a truncated PNG,
/// a text file; empty/: nothing; a stray README at the top.
fn make_folder(root: &Path) {
    for d in ["a", "b", "empty", "a/nested"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    solid(&root.join("a/1.png"), 10, 20, [255, 0, 0], ImageFormat::Png);
    solid(&root.join("a/2.png"), 33, 7, [255, 0, 0], ImageFormat::Png);
    solid(
        &root.join("a/nested/3.png"),
        5,
        5,
        [255, 0, 0],
        ImageFormat::Png,
    );
    solid(
        &root.join("a/4.jpg"),
        16,
        16,
        [255, 0, 0],
        ImageFormat::Jpeg,
    );
    solid(&root.join("b/1.png"), 12, 12, [0, 0, 255], ImageFormat::Png);
    solid(&root.join("b/2.PNG"), 40, 30, [0, 0, 255], ImageFormat::Png);
    fs::write(
        root.join("b/corrupt.png"),
        b"\x89PNG\r\n\x1a\n this is not a png at all",
    )
    .unwrap();
    let good = fs::read(root.join("b/2.PNG")).unwrap();
    fs::write(root.join("b/truncated.png"), &good[..good.len() / 2]).unwrap();
    fs::write(root.join("b/notes.txt"), "some notes").unwrap();
    fs::write(root.join(".hidden"), "ignored").unwrap();
    fs::write(root.join("README"), "stray file").unwrap();
}

#[test]
fn loads_classes_images_and_reports_what_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path());
    let data = load_folder(dir.path(), [8, 8, 3], 0.0, 1).unwrap();
    assert_eq!(data.train.classes, ["a", "b", "empty"]);
    assert_eq!(data.validation.classes, data.train.classes);
    assert_eq!(data.train.images.dim(), (6, 8, 8, 3));
    assert!(data.validation.is_empty());
    assert_eq!(data.validation.images.dim(), (0, 8, 8, 3));
    let mut labels = data.train.labels.clone();
    labels.sort();
    assert_eq!(labels, [0, 0, 0, 0, 1, 1]);
    // Each image's colour matches its class (red = a, blue = b), so labels and
    // images stayed together through the shuffle.
    for (img, &label) in data.train.images.outer_iter().zip(&data.train.labels) {
        let r = img[[4, 4, 0]];
        let b = img[[4, 4, 2]];
        if label == 0 {
            assert!(r > 0.9 && b < 0.1, "class a should be red: r={r} b={b}");
        } else {
            assert!(b > 0.9 && r < 0.1, "class b should be blue: r={r} b={b}");
        }
        assert!(img.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    let skipped = data.skipped.join("\n");
    for needle in [
        "corrupt.png",
        "truncated.png",
        "notes.txt",
        "README",
        "empty",
    ] {
        assert!(
            skipped.contains(needle),
            "`{needle}` not reported in:\n{skipped}"
        );
    }
    assert!(!skipped.contains(".hidden"), "{skipped}");
    assert_eq!(data.skipped.len(), 5, "{skipped}");
    assert!(skipped.contains("no images"), "{skipped}");
}

#[test]
fn validation_split_is_seeded_and_disjoint() {
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path());
    let a = load_folder(dir.path(), [4, 4, 3], 0.5, 7).unwrap();
    let b = load_folder(dir.path(), [4, 4, 3], 0.5, 7).unwrap();
    assert_eq!(a.train.len(), 3);
    assert_eq!(a.validation.len(), 3);
    assert_eq!(a.train.labels, b.train.labels);
    assert_eq!(a.validation.images, b.validation.images);
    // Different seeds give different orders for at least one of a few seeds.
    let differs = (8..16).any(|s| {
        let c = load_folder(dir.path(), [4, 4, 3], 0.5, s).unwrap();
        c.train.labels != a.train.labels || c.validation.labels != a.validation.labels
    });
    assert!(differs);
    let mut all: Vec<usize> = a
        .train
        .labels
        .iter()
        .chain(&a.validation.labels)
        .copied()
        .collect();
    all.sort();
    assert_eq!(all, [0, 0, 0, 0, 1, 1]);
}

#[test]
fn converts_to_the_models_channel_count() {
    let dir = tempfile::tempdir().unwrap();
    make_folder(dir.path());
    let gray = load_folder(dir.path(), [6, 5, 1], 0.0, 0).unwrap();
    assert_eq!(gray.train.images.dim(), (6, 6, 5, 1));
    for (img, &label) in gray.train.images.outer_iter().zip(&gray.train.labels) {
        // luma of pure red / pure blue as the image crate computes it (Rec. 709)
        let expected = if label == 0 {
            54.0 / 255.0
        } else {
            18.0 / 255.0
        };
        let v = img[[2, 2, 0]];
        assert!(
            (v - expected).abs() < 0.03,
            "label {label}: {v} vs {expected}"
        );
    }
    let rgba = load_image(&dir.path().join("a/1.png"), [3, 3, 4]).unwrap();
    assert_eq!(rgba.dim(), (3, 3, 4));
    assert!(rgba.iter().step_by(4).all(|&r| r == 1.0));
    assert!(rgba.iter().skip(3).step_by(4).all(|&a| a == 1.0));
    assert!(load_image(&dir.path().join("a/1.png"), [3, 3, 2]).is_err());
    assert!(load_folder(dir.path(), [3, 3, 5], 0.0, 0).is_err());
}

#[test]
fn bilinear_resize_uses_half_pixel_centres() {
    let dir = tempfile::tempdir().unwrap();
    // 1 x 2 gray image [0, 255] upscaled to 1 x 4: tf.image.resize gives 0, .25, .75, 1
    let path = dir.path().join("ramp.png");
    image::GrayImage::from_raw(2, 1, vec![0, 255])
        .unwrap()
        .save(&path)
        .unwrap();
    let up = load_image(&path, [1, 4, 1]).unwrap();
    let got: Vec<f32> = up.iter().copied().collect();
    for (g, e) in got.iter().zip([0.0, 0.25, 0.75, 1.0]) {
        assert!((g - e).abs() < 1e-6, "{got:?}");
    }
    // 1 x 4 [0, 100, 200, 255] down to 1 x 2: each output averages two inputs
    let path = dir.path().join("down.png");
    image::GrayImage::from_raw(4, 1, vec![0, 100, 200, 255])
        .unwrap()
        .save(&path)
        .unwrap();
    let down = load_image(&path, [1, 2, 1]).unwrap();
    assert!((down[[0, 0, 0]] - 50.0 / 255.0).abs() < 1e-6);
    assert!((down[[0, 1, 0]] - 227.5 / 255.0).abs() < 1e-6);
}

#[test]
fn jpeg_and_a_png_named_jpg_are_read_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("really-a-png.jpg");
    solid(&path, 9, 9, [0, 255, 0], ImageFormat::Png);
    let img = load_image(&path, [4, 4, 3]).unwrap();
    assert!(img.iter().skip(1).step_by(3).all(|&g| g == 1.0));
    let jpg = dir.path().join("x.jpeg");
    solid(&jpg, 32, 32, [0, 255, 0], ImageFormat::Jpeg);
    let img = load_image(&jpg, [4, 4, 3]).unwrap();
    assert!(img.iter().skip(1).step_by(3).all(|&g| g > 0.9));
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

#[test]
fn a_decompression_bomb_is_refused_not_allocated() {
    // A valid PNG header claiming 100000 x 100000 RGB pixels (30 GB), no data.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IEND", &[]);
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("cls")).unwrap();
    let bomb = dir.path().join("cls/bomb.png");
    fs::write(&bomb, &png).unwrap();
    let err = load_image(&bomb, [8, 8, 3]).unwrap_err().to_string();
    // refused by the size limits, before any pixel data is read
    assert!(err.contains("limit"), "{err}");
    solid(
        &dir.path().join("cls/ok.png"),
        4,
        4,
        [1, 2, 3],
        ImageFormat::Png,
    );
    let data = load_folder(dir.path(), [8, 8, 3], 0.0, 0).unwrap();
    assert_eq!(data.train.len(), 1);
    assert!(
        data.skipped.iter().any(|s| s.contains("bomb.png")),
        "{:?}",
        data.skipped
    );
}

#[test]
fn folders_without_images_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // no class folders at all
    fs::write(dir.path().join("x.png"), b"nope").unwrap();
    assert!(load_folder(dir.path(), [8, 8, 3], 0.0, 0).is_err());
    // class folders, but nothing readable in them
    fs::create_dir(dir.path().join("cat")).unwrap();
    fs::create_dir(dir.path().join("dog")).unwrap();
    fs::write(dir.path().join("cat/broken.jpg"), b"\xff\xd8\xff garbage").unwrap();
    let err = load_folder(dir.path(), [8, 8, 3], 0.0, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no readable"), "{err}");
    // missing folder, bad split
    assert!(load_folder(&dir.path().join("missing"), [8, 8, 3], 0.0, 0).is_err());
    make_folder(&dir.path().join("ok"));
    assert!(load_folder(&dir.path().join("ok"), [8, 8, 3], 1.0, 0).is_err());
    assert!(load_folder(&dir.path().join("ok"), [8, 8, 3], -0.1, 0).is_err());
    assert!(load_folder(&dir.path().join("ok"), [0, 8, 3], 0.0, 0).is_err());
}

#[test]
fn resizes_worth_a_word_are_named() {
    use cnn_runtime::data::folder::resize_note;
    // A mild resize, either way: nothing to say.
    assert_eq!(resize_note([32, 32], [28, 28]), None);
    assert_eq!(resize_note([100, 100], [28, 28]), None);
    // 300x200 to 28x28: more than 4x smaller on one side, and squashed.
    let n = resize_note([300, 200], [28, 28]).unwrap();
    assert!(n.contains("300x200") && n.contains("28x28"), "{n}");
    assert!(
        n.contains("large resize") && n.contains("proportions"),
        "{n}"
    );
    assert!(resize_note([30, 40], [28, 28])
        .unwrap()
        .contains("squashed"));
    assert!(resize_note([8, 8], [64, 64]).unwrap().contains("blurred"));
    // Degenerate sizes do not divide by zero.
    assert!(resize_note([0, 5], [1, 1]).is_some());
}
