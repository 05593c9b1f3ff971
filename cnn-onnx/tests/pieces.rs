//! The pieces of the export that are easy to get wrong, each run in tract
//! against values worked out here: the NHWC order of a flatten after an
//! image, min-pools and `same` pools that never read their padding, a
//! softmax over a flattened image, a branch that reads an image its sibling
//! flattened, transposed-conv cropping, the NCHW layout option and the
//! inference identity of dropout and augmentation.

mod support;

use std::collections::HashMap;

use support::{plan_of, run};

/// Exports `src` (weights by name from `weights`) and runs it on `x`.
fn exported(
    src: &str,
    weights: &[(&str, Vec<f32>)],
    options: &cnn_onnx::Options,
    x: &[f32],
) -> (Vec<usize>, Vec<f32>) {
    let plan = plan_of(src);
    let map: HashMap<&str, Vec<f32>> = weights.iter().cloned().collect();
    let bytes = cnn_onnx::export(&plan, |n| map.get(n).cloned(), options).expect("export");
    let mut shape = vec![1];
    shape.extend(plan.input);
    if options.layout == cnn_onnx::Layout::Nchw {
        shape[1..].rotate_right(1);
    }
    run(&bytes, &shape, x).expect("tract")
}

fn nhwc(src: &str, weights: &[(&str, Vec<f32>)], x: &[f32]) -> (Vec<usize>, Vec<f32>) {
    exported(src, weights, &cnn_onnx::Options::default(), x)
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "[{i}]: {a} vs {b}"
        );
    }
}

fn iota(n: usize) -> Vec<f32> {
    (0..n).map(|v| v as f32).collect()
}

#[test]
fn a_flatten_after_an_image_keeps_the_nhwc_order() {
    // Input values are their own NHWC index: a flatten must give them back
    // in order (an NCHW flatten would give 0, 2, 4, ...).
    let (shape, y) = nhwc("input 2x3x2;\nflatten;\n", &[], &iota(12));
    assert_eq!(shape, [1, 12]);
    assert_eq!(y, iota(12));
    // After a conv too: a 1x1 conv that copies channel 1 to channel 0 and
    // doubles channel 0 into channel 1, then a dense that picks value 3
    // (pixel 1, channel 1 in NHWC = 2 * x[pixel 1, channel 0] = 2 * 2).
    let kernel = vec![0.0, 2.0, 1.0, 0.0]; // (1, 1, 2, 2): [cin][f]
    let mut dense = vec![0.0; 12];
    dense[3] = 1.0;
    let (_, y) = nhwc(
        "input 2x3x2;\nconv 2 1x1 nobias;\nflatten;\ndense 1 nobias;\n",
        &[("layer0.kernel", kernel), ("layer2.kernel", dense)],
        &iota(12),
    );
    assert_eq!(y, [4.0]);
}

#[test]
fn pools_never_read_their_padding() {
    // 2x2 windows, stride 1, same, on 3x3: the last row and column of
    // windows hang over the padding (TensorFlow's split puts it at the
    // end). Positive inputs: a zero read from the padding would show as a
    // min of 0 or a smaller average.
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let (_, y) = nhwc("input 3x3x1;\nminpool 2 stride 1 same;\n", &[], &x);
    assert_eq!(y, [1., 2., 3., 4., 5., 6., 7., 8., 9.]);
    let (_, y) = nhwc("input 3x3x1;\nmaxpool 2 stride 1 same;\n", &[], &x);
    assert_eq!(y, [5., 6., 6., 8., 9., 9., 8., 9., 9.]);
    let (_, y) = nhwc("input 3x3x1;\navgpool 2 stride 1 same;\n", &[], &x);
    close(&y, &[3., 4., 4.5, 6., 7., 7.5, 7.5, 8.5, 9.]);
    // Negative values: a min-pool is -max(-x), not max(x) negated.
    let neg: Vec<f32> = x.iter().map(|v| -v).collect();
    let (_, y) = nhwc("input 3x3x1;\nminpool 2 stride 2 same;\n", &[], &neg);
    assert_eq!(y, [-5., -6., -8., -9.]);
}

#[test]
fn softmax_of_a_flattened_image_spans_all_of_it() {
    let x = iota(8).iter().map(|v| v * 0.25).collect::<Vec<_>>();
    let (shape, y) = nhwc("input 2x2x2;\nflatten;\nsoftmax;\n", &[], &x);
    assert_eq!(shape, [1, 8]);
    let sum: f32 = x.iter().map(|v| v.exp()).sum();
    let want: Vec<f32> = x.iter().map(|v| v.exp() / sum).collect();
    close(&y, &want);
    // On the image itself it is over the channels of each pixel.
    let (shape, y) = nhwc("input 2x2x2;\nsoftmax;\n", &[], &x);
    assert_eq!(shape, [1, 2, 2, 2]);
    for p in 0..4 {
        let (a, b) = (x[2 * p].exp(), x[2 * p + 1].exp());
        close(&y[2 * p..2 * p + 2], &[a / (a + b), b / (a + b)]);
    }
}

#[test]
fn a_branch_reads_the_image_its_sibling_flattened() {
    // The flatten shares its input's buffer with the other branch, which
    // pools it as an image. The dense picks the flattened (NHWC) values 0
    // and 7; the pool gives the channel means (0 + 2 + 4 + 6) / 4 and
    // (1 + 3 + 5 + 7) / 4.
    let mut kernel = vec![0.0; 16]; // (8, 2)
    kernel[0] = 1.0;
    kernel[7 * 2 + 1] = 1.0;
    let (shape, y) = nhwc(
        "input 2x2x2;\nadd { flatten; dense 2 nobias } { globalavgpool };\n",
        &[("layer0.0.1.kernel", kernel)],
        &iota(8),
    );
    assert_eq!(shape, [1, 2]);
    close(&y, &[0.0 + 3.0, 7.0 + 4.0]);
}

/// The transposed conv written out: each input cell scatters its kernel
/// times its value over the full output, which Keras then crops by `crop`
/// cells at the start (one channel in and out, square).
fn naive_deconv(
    x: &[f32],
    n: usize,
    k: &[f32],
    ks: usize,
    s: usize,
    out: usize,
    crop: usize,
) -> Vec<f32> {
    let full = (n - 1) * s + ks.max(s) + ks;
    let mut y = vec![0f32; full * full];
    for i in 0..n {
        for j in 0..n {
            for a in 0..ks {
                for b in 0..ks {
                    y[(i * s + a) * full + j * s + b] += x[i * n + j] * k[a * ks + b];
                }
            }
        }
    }
    (0..out * out)
        .map(|p| y[(p / out + crop) * full + p % out + crop])
        .collect()
}

#[test]
fn transposed_convs_crop_as_keras() {
    let x: Vec<f32> = (0..9).map(|v| 1.0 + v as f32 * 0.5).collect();
    // same, 4x4 stride 2 on 3x3: 6x6, cropping 1 cell before (and 1 after).
    let k: Vec<f32> = (0..16).map(|v| (v as f32 - 7.0) * 0.125).collect();
    let (shape, y) = nhwc(
        "input 3x3x1;\ndeconv 1 4x4 stride 2 same nobias;\n",
        &[("layer0.kernel", k.clone())],
        &x,
    );
    assert_eq!(shape, [1, 6, 6, 1]);
    close(&y, &naive_deconv(&x, 3, &k, 4, 2, 6, 1));
    // valid, 1x1 stride 2 on 3x3: Keras's 6x6, whose last row and column
    // no input reaches (they hold the bias alone).
    let (shape, y) = nhwc(
        "input 3x3x1;\ndeconv 1 1x1 stride 2;\n",
        &[("layer0.kernel", vec![2.0]), ("layer0.bias", vec![0.5])],
        &x,
    );
    assert_eq!(shape, [1, 6, 6, 1]);
    let want: Vec<f32> = naive_deconv(&x, 3, &[2.0], 1, 2, 6, 0)
        .iter()
        .map(|v| v + 0.5)
        .collect();
    close(&y, &want);
}

#[test]
fn the_nchw_layout_option_takes_and_gives_nchw() {
    // A 1x1 conv swapping two channels, on a 2x3 image given NCHW.
    let options = cnn_onnx::Options {
        layout: cnn_onnx::Layout::Nchw,
        ..Default::default()
    };
    let (shape, y) = exported(
        "input 2x3x2;\nconv 2 1x1 nobias;\n",
        &[("layer0.kernel", vec![0.0, 1.0, 1.0, 0.0])],
        &options,
        &iota(12),
    );
    assert_eq!(shape, [1, 2, 2, 3]);
    let want: Vec<f32> = (6..12).chain(0..6).map(|v| v as f32).collect();
    assert_eq!(y, want);
    // A vector output stays [N, n] and in the runtime's (NHWC) order.
    let (shape, y) = exported("input 1x2x2;\nflatten;\n", &[], &options, &[0., 1., 2., 3.]);
    assert_eq!(shape, [1, 4]);
    assert_eq!(y, [0., 2., 1., 3.]);
}

#[test]
fn dropout_and_augmentation_are_the_identity() {
    let x = iota(18);
    let src = "input 3x3x2;\nrandomflip horizontal;\nrandomrotate 0.2;\ndropout 0.5;\n";
    let (shape, y) = nhwc(src, &[], &x);
    assert_eq!(shape, [1, 3, 3, 2]);
    assert_eq!(y, x);
}

#[test]
fn a_missing_or_mis_sized_weight_is_an_error() {
    let plan = plan_of("input 4x4x1;\nconv 2 3x3;\n");
    let err = cnn_onnx::export(&plan, |_| None, &Default::default()).unwrap_err();
    assert_eq!(
        err,
        cnn_onnx::ExportError::MissingWeight {
            name: "layer0.kernel".into()
        }
    );
    let err = cnn_onnx::export(&plan, |_| Some(vec![0.0; 5]), &Default::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "weight tensor 'layer0.kernel' has 5 values, its shape [3, 3, 1, 2] has 18"
    );
}
