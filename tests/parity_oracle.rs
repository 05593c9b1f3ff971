//! Generated models against the Keras oracle (`../shared/oracle/goldens/`).
//!
//! Every case's `model.cnn` is written below with `cnn!` (one module per case;
//! the model text is the case file verbatim; `lenet5` includes its file). Each test loads the case's
//! `weights.npz` through the generated `load`, runs the stored input and checks
//! the output and every layer's output (1e-5 relative to max(1, |v|)), then the
//! gradients of the linear loss `sum(y * g)` through `backward` and, for
//! classifiers, of the mean cross-entropy through `train_step` (1e-4 relative to
//! the largest gradient of each tensor). `seed_150` has no stored weights: they
//! come from the integer-hash formula of FORMAT.md, and only the forward output
//! is stored.

mod codegen_support;

use codegen_support::*;

/// One module per case: the model written with `cnn!` and a test that checks
/// it against the case's goldens (`check_case`). Some cases warn (W003: a
/// stride larger than the window), on purpose.
macro_rules! oracle_case {
    ($case:ident { $($model:tt)* }) => {
        #[allow(deprecated)]
        mod $case {
            use super::*;
            cnn::cnn! {
                pub model M {
                    $($model)*
                }
            }

            #[test]
            fn oracle() {
                let mut m = M::new(0);
                check_case(&mut m, stringify!($case));
            }
        }
    };
}

oracle_case! {
    seed_conv_same_valid {
        input 32x32x3;
        conv 32 3x3 stride 1 same;
        conv 32 3x3 stride 1 valid;
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod seed_150 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 150x150x3;
            conv 32 3x3 same;
            maxpool 2;
            conv 32 4x4 valid;
            maxpool 2;
            flatten;
            dense 256 relu;
            dense 5 softmax;
        }
    }

    #[test]
    fn forward_with_formula_weights() {
        let mut m = M::new(0);
        check_seed150(&mut m, "seed_150");
    }
}

oracle_case! {
    classic_conv_5x5 {
        input 5x5x1;
        conv 1 3x3 valid;
    }
}

oracle_case! {
    conv_correlation_asym {
        input 5x5x1;
        conv 1 3x3 valid;
    }
}

oracle_case! {
    pool_example_max {
        input 4x4x1;
        maxpool 2 stride 2;
    }
}

oracle_case! {
    pool_example_avg {
        input 4x4x1;
        avgpool 2 stride 2;
    }
}

oracle_case! {
    pool_example_min {
        input 4x4x1;
        minpool 2 stride 2;
    }
}

// LeNet-5 through the include form, from the case's own file: the bare body
// is named after the file (`model.cnn` defines `Model`).
mod lenet5 {
    use super::*;
    cnn::cnn!(include "../shared/oracle/goldens/lenet5/model.cnn");

    #[test]
    fn oracle() {
        check_case(&mut Model::new(0), "lenet5");
    }
}

oracle_case! {
    same_conv3x3_s2_in7 {
        input 7x7x2;
        conv 4 3x3 stride 2 same;
    }
}

oracle_case! {
    same_conv5x3_s2x1_in7 {
        input 7x7x2;
        conv 2 5x3 stride 2x1 same;
    }
}

oracle_case! {
    same_maxpool3_s2_in7 {
        input 7x7x2;
        maxpool 3 stride 2 same;
    }
}

oracle_case! {
    same_avgpool3_s2_in7 {
        input 7x7x2;
        avgpool 3 stride 2 same;
    }
}

oracle_case! {
    same_minpool2_s1_in7 {
        input 7x7x2;
        minpool 2 stride 1 same;
    }
}

oracle_case! {
    same_conv3x3_s2_in8 {
        input 8x8x2;
        conv 4 3x3 stride 2 same;
    }
}

oracle_case! {
    same_conv4x4_s2_in8 {
        input 8x8x2;
        conv 3 4x4 stride 2 same;
    }
}

oracle_case! {
    same_maxpool3_s2_in8 {
        input 8x8x2;
        maxpool 3 stride 2 same;
    }
}

oracle_case! {
    same_minpool2_s1_in8 {
        input 8x8x2;
        minpool 2 stride 1 same;
    }
}

oracle_case! {
    keras_doc_maxpool2_s1_same {
        input 3x3x1;
        maxpool 2 stride 1 same;
    }
}

oracle_case! {
    keras_doc_minpool2_s1_same {
        input 3x3x1;
        minpool 2 stride 1 same;
    }
}

oracle_case! {
    keras_doc_avgpool2_s1_same {
        input 3x3x1;
        avgpool 2 stride 1 same;
    }
}

oracle_case! {
    same_avgpool5_s2_in4 {
        input 4x4x2;
        avgpool 5 stride 2 same;
    }
}

oracle_case! {
    same_conv2x2_s1 {
        input 5x6x2;
        conv 3 2x2 same;
    }
}

oracle_case! {
    same_conv4x4_s1 {
        input 5x5x2;
        conv 2 4x4 same;
    }
}

oracle_case! {
    same_conv3x3_s3 {
        input 7x8x2;
        conv 2 3x3 stride 3 same;
    }
}

oracle_case! {
    same_conv1x1_s2 {
        input 7x8x2;
        conv 3 1x1 stride 2 same;
    }
}

oracle_case! {
    conv_rect_kernel_stride {
        input 9x11x2;
        conv 3 2x4 stride 1x2 valid relu;
    }
}

oracle_case! {
    conv_1x1 {
        input 6x6x3;
        conv 5 1x1;
    }
}

oracle_case! {
    conv_1x1_s2_valid {
        input 7x7x2;
        conv 2 1x1 stride 2;
    }
}

oracle_case! {
    conv_kernel_eq_input {
        input 5x4x3;
        conv 4 5x4;
    }
}

oracle_case! {
    maxpool_overlap {
        input 9x9x2;
        maxpool 3 stride 2;
    }
}

oracle_case! {
    avgpool_overlap {
        input 9x9x2;
        avgpool 3 stride 2;
    }
}

oracle_case! {
    minpool_overlap {
        input 9x9x2;
        minpool 3 stride 2;
    }
}

oracle_case! {
    maxpool_nondiv {
        input 7x7x2;
        maxpool 2;
    }
}

oracle_case! {
    avgpool_nondiv {
        input 8x8x2;
        avgpool 3;
    }
}

oracle_case! {
    maxpool_rect {
        input 7x9x2;
        maxpool 2x3;
    }
}

oracle_case! {
    pool_stride_gt_size {
        input 8x8x2;
        maxpool 2 stride 3;
    }
}

oracle_case! {
    conv_softmax_channels {
        input 5x5x2;
        conv 4 3x3 same softmax;
    }
}

oracle_case! {
    dense_only {
        input 1x1x6;
        flatten;
        dense 4 relu;
        dense 3 sigmoid;
    }
}

oracle_case! {
    cls_small {
        input 12x12x3;
        conv 4 3x3 same relu;
        maxpool 2;
        conv 8 3x3 valid relu;
        flatten;
        dense 5 softmax;
    }
}

oracle_case! {
    maxpool_tie_grad {
        input 2x4x1;
        maxpool 2;
    }
}

oracle_case! {
    minpool_tie_grad {
        input 2x4x1;
        minpool 2;
    }
}

oracle_case! {
    relu_grad_at_zero {
        input 1x1x2;
        flatten;
        dense 3 relu;
    }
}
