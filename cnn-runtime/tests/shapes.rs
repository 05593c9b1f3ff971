//! The built-in `shapes` data set: determinism, split sizes, class balance, value range.

use cnn_runtime::data::shapes::{shapes, try_shapes, CLASSES};
use cnn_runtime::data::Dataset;

fn class_counts(d: &Dataset) -> Vec<usize> {
    let mut counts = vec![0; CLASSES.len()];
    for &l in &d.labels {
        counts[l] += 1;
    }
    counts
}

#[test]
fn same_seed_same_images_other_seed_other_images() {
    let (a_train, a_test) = shapes(40, [24, 20, 3], 7);
    let (b_train, b_test) = shapes(40, [24, 20, 3], 7);
    assert_eq!(a_train.images, b_train.images);
    assert_eq!(a_train.labels, b_train.labels);
    assert_eq!(a_test.images, b_test.images);
    assert_eq!(a_test.labels, b_test.labels);
    let (c_train, _) = shapes(40, [24, 20, 3], 8);
    assert_ne!(a_train.images, c_train.images);
}

#[test]
fn split_sizes_shapes_and_class_names() {
    let (train, test) = shapes(23, [16, 12, 3], 1);
    assert_eq!(train.images.dim(), (23, 16, 12, 3));
    assert_eq!(train.len(), 23);
    assert_eq!(test.images.dim(), (5, 16, 12, 3)); // ceil(23 / 5)
    assert_eq!(test.len(), 5);
    let names: Vec<&str> = train.classes.iter().map(String::as_str).collect();
    assert_eq!(names, ["circle", "square", "triangle", "cross", "line"]);
    assert_eq!(test.classes, train.classes);
}

#[test]
fn classes_are_balanced_and_shuffled() {
    let (train, test) = shapes(2000, [8, 8, 1], 3);
    assert_eq!(class_counts(&train), vec![400; 5]);
    assert_eq!(class_counts(&test), vec![80; 5]);
    // Not in the periodic order 0,1,2,3,4,0,...: a model fed batches in order
    // would otherwise see a fixed pattern.
    let periodic = train.labels.iter().enumerate().all(|(i, &l)| l == i % 5);
    assert!(!periodic);
    let (odd, _) = shapes(13, [8, 8, 1], 3);
    let counts = class_counts(&odd);
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{counts:?}"
    );
}

#[test]
fn values_are_in_unit_range_and_images_are_not_flat() {
    let (train, _) = shapes(50, [32, 32, 3], 11);
    assert!(train
        .images
        .iter()
        .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    for img in train.images.outer_iter() {
        let (lo, hi) = img
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        // shape against background: clear contrast in every image
        assert!(hi - lo > 0.25, "an image is nearly flat: {lo}..{hi}");
    }
}

#[test]
fn train_and_test_images_differ() {
    let (train, test) = shapes(20, [16, 16, 3], 5);
    for t in test.images.outer_iter() {
        for x in train.images.outer_iter() {
            assert_ne!(t, x);
        }
    }
}

#[test]
fn grayscale_and_odd_sizes() {
    let (train, test) = shapes(10, [28, 28, 1], 2);
    assert_eq!(train.images.dim(), (10, 28, 28, 1));
    assert_eq!(test.images.dim(), (2, 28, 28, 1));
    // tiny and non-square images and unusual channel counts do not panic
    for input in [[1, 1, 1], [3, 50, 3], [50, 2, 1], [5, 5, 4]] {
        let (t, _) = shapes(6, input, 9);
        assert_eq!(t.images.dim(), (6, input[0], input[1], input[2]));
        assert!(t.images.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    let (empty, empty_test) = shapes(0, [8, 8, 3], 0);
    assert!(empty.is_empty() && empty_test.is_empty());
}

#[test]
fn the_classes_differ_in_how_much_they_cover() {
    // A weak but real learnability check: with the same seed stream the mean share
    // of pixels that differ from the image's background differs between a line and a
    // circle. Measured as the share of pixels far from the median luma.
    let (train, _) = shapes(500, [32, 32, 1], 4);
    let mut share = [0f64; 5];
    for (img, &l) in train.images.outer_iter().zip(&train.labels) {
        let mut v: Vec<f32> = img.iter().copied().collect();
        v.sort_by(f32::total_cmp);
        let median = v[v.len() / 2];
        let far = img.iter().filter(|&&x| (x - median).abs() > 0.2).count();
        share[l] += far as f64 / v.len() as f64 / 100.0;
    }
    let (circle, line) = (share[0], share[4]);
    assert!(circle > 2.0 * line, "circle {circle} vs line {line}");
}

#[test]
fn too_large_or_zero_sized_requests_are_errors() {
    assert!(try_shapes(10, [0, 8, 3], 0).is_err());
    assert!(try_shapes(usize::MAX / 2, [150, 150, 3], 0).is_err());
    let (t, v) = shapes(usize::MAX / 2, [150, 150, 3], 0);
    assert!(t.is_empty() && v.is_empty());
}

#[test]
fn two_thousand_course_sized_images_and_a_fifth_for_testing() {
    // The README's first command: 2,000 (+400 test) images of 150x150x3. How
    // fast they render is the `shapes_2000_150x150` row of benches/throughput.rs.
    let (train, test) = shapes(2000, [150, 150, 3], 0);
    assert_eq!(train.images.dim(), (2000, 150, 150, 3));
    assert_eq!(test.len(), 400);
}

#[test]
fn one_image_alone_equals_the_same_image_in_the_data_set() {
    use cnn_runtime::data::shapes::shapes_image;
    let (train, test) = shapes(17, [20, 24, 3], 6);
    for i in [0, 5, 16] {
        let (img, label) = shapes_image(17, [20, 24, 3], 6, false, i).unwrap();
        assert_eq!(img, train.images.index_axis(ndarray::Axis(0), i));
        assert_eq!(label, train.labels[i]);
    }
    for i in 0..test.len() {
        let (img, label) = shapes_image(17, [20, 24, 3], 6, true, i).unwrap();
        assert_eq!(img, test.images.index_axis(ndarray::Axis(0), i));
        assert_eq!(label, test.labels[i]);
    }
    assert!(shapes_image(17, [20, 24, 3], 6, true, 4).is_err()); // the test split has 4
    assert!(shapes_image(17, [20, 0, 3], 6, false, 0).is_err());
}

/// A small CNN on 32x32x3 inputs, built from runtime specs:
/// conv 8 3x3 same relu; maxpool 2; conv 16 3x3 same relu; maxpool 2; flatten;
/// dense 32 relu; dense 5 softmax (examples/models/shapes_small.cnn).
fn small_cnn(seed: u64) -> cnn_runtime::interp::Sequential {
    use cnn_runtime::{
        Activation, Conv2dSpec, DenseSpec, LayerSpec, Padding, Pool2dSpec, PoolKind, Window,
    };
    let conv = |n: usize, cin: usize, cout: usize| LayerSpec::Conv2d {
        spec: Conv2dSpec::new([n, n, cin], cout, Window::new([3, 3], Padding::Same)),
        act: Activation::Relu,
        bias: true,
        groups: 1,
    };
    let pool = |n: usize, c: usize| {
        LayerSpec::Pool2d(Pool2dSpec::new(
            PoolKind::Max,
            [n, n, c],
            Window::new([2, 2], Padding::Valid).stride([2, 2]),
        ))
    };
    let layers = vec![
        conv(32, 3, 8),
        pool(32, 8),
        conv(16, 8, 16),
        pool(16, 16),
        LayerSpec::Flatten { len: 8 * 8 * 16 },
        LayerSpec::Dense {
            spec: DenseSpec {
                inputs: 1024,
                units: 32,
            },
            act: Activation::Relu,
            bias: true,
        },
        LayerSpec::Dense {
            spec: DenseSpec {
                inputs: 32,
                units: 5,
            },
            act: Activation::Softmax,
            bias: true,
        },
    ];
    cnn_runtime::interp::Sequential::new([32, 32, 3], layers, seed).unwrap()
}

#[test]
fn a_small_cnn_learns_the_shapes_well_above_chance() {
    // The data set must be learnable: a few epochs of a small CNN get far above
    // the 20% of guessing on images it never saw.
    use cnn_runtime::{evaluate, fit, Adam, FitOptions, Progress};
    let (train, test) = shapes(2000, [32, 32, 3], 0);
    let mut net = small_cnn(0);
    let opts = FitOptions {
        epochs: 5,
        batch_size: 16,
        shuffle: true,
        seed: 0,
        progress: Progress::Silent,
        ..FitOptions::default()
    };
    fit(&mut net, &train, &opts, &mut Adam::new(0.001)).unwrap();
    let e = evaluate(&mut net, &test, 200).unwrap();
    eprintln!(
        "shapes 32x32, 5 epochs: test accuracy {:.1}%",
        100.0 * e.accuracy
    );
    assert!(e.accuracy > 0.45, "test accuracy {}", e.accuracy);
}
