//! Generated models against the Keras oracle (`../shared/oracle/goldens/`).
//!
//! Every case's `model.cnn` is written below with `cnn!` (one module per case;
//! the model text is the case file verbatim). Each test loads the case's
//! `weights.npz` through the generated `load`, runs the stored input and checks
//! the output and every layer's output (1e-5 relative to max(1, |v|)), then the
//! gradients of the linear loss `sum(y * g)` through `backward` and, for
//! classifiers, of the mean cross-entropy through `train_step` (1e-4 relative to
//! the largest gradient of each tensor). `seed_150` has no stored weights: they
//! come from the integer-hash formula of FORMAT.md, and only the forward output
//! is stored.

mod codegen_support;

use codegen_support::*;

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod seed_conv_same_valid {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 32x32x3;
            conv 32 3x3 stride 1 same;
            conv 32 3x3 stride 1 valid;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "seed_conv_same_valid");
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

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod classic_conv_5x5 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 5x5x1;
            conv 1 3x3 valid;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "classic_conv_5x5");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod conv_correlation_asym {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 5x5x1;
            conv 1 3x3 valid;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "conv_correlation_asym");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod pool_example_max {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 4x4x1;
            maxpool 2 stride 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "pool_example_max");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod pool_example_avg {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 4x4x1;
            avgpool 2 stride 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "pool_example_avg");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod pool_example_min {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 4x4x1;
            minpool 2 stride 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "pool_example_min");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod lenet5 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 32x32x1;
            conv 6 5x5 tanh;
            avgpool 2;
            conv 16 5x5 tanh;
            avgpool 2;
            conv 120 5x5 tanh;
            flatten;
            dense 84 tanh;
            dense 10 softmax;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "lenet5");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_conv3x3_s2_in7 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x7x2;
            conv 4 3x3 stride 2 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_conv3x3_s2_in7");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_conv5x3_s2x1_in7 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x7x2;
            conv 2 5x3 stride 2x1 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_conv5x3_s2x1_in7");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_maxpool3_s2_in7 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x7x2;
            maxpool 3 stride 2 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_maxpool3_s2_in7");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_avgpool3_s2_in7 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x7x2;
            avgpool 3 stride 2 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_avgpool3_s2_in7");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_minpool2_s1_in7 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x7x2;
            minpool 2 stride 1 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_minpool2_s1_in7");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_conv3x3_s2_in8 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 8x8x2;
            conv 4 3x3 stride 2 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_conv3x3_s2_in8");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_conv4x4_s2_in8 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 8x8x2;
            conv 3 4x4 stride 2 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_conv4x4_s2_in8");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_maxpool3_s2_in8 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 8x8x2;
            maxpool 3 stride 2 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_maxpool3_s2_in8");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_minpool2_s1_in8 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 8x8x2;
            minpool 2 stride 1 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_minpool2_s1_in8");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod keras_doc_maxpool2_s1_same {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 3x3x1;
            maxpool 2 stride 1 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "keras_doc_maxpool2_s1_same");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod keras_doc_minpool2_s1_same {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 3x3x1;
            minpool 2 stride 1 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "keras_doc_minpool2_s1_same");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod keras_doc_avgpool2_s1_same {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 3x3x1;
            avgpool 2 stride 1 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "keras_doc_avgpool2_s1_same");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_avgpool5_s2_in4 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 4x4x2;
            avgpool 5 stride 2 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_avgpool5_s2_in4");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_conv2x2_s1 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 5x6x2;
            conv 3 2x2 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_conv2x2_s1");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_conv4x4_s1 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 5x5x2;
            conv 2 4x4 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_conv4x4_s1");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_conv3x3_s3 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x8x2;
            conv 2 3x3 stride 3 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_conv3x3_s3");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod same_conv1x1_s2 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x8x2;
            conv 3 1x1 stride 2 same;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "same_conv1x1_s2");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod conv_rect_kernel_stride {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 9x11x2;
            conv 3 2x4 stride 1x2 valid relu;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "conv_rect_kernel_stride");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod conv_1x1 {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 6x6x3;
            conv 5 1x1;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "conv_1x1");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod conv_1x1_s2_valid {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x7x2;
            conv 2 1x1 stride 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "conv_1x1_s2_valid");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod conv_kernel_eq_input {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 5x4x3;
            conv 4 5x4;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "conv_kernel_eq_input");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod maxpool_overlap {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 9x9x2;
            maxpool 3 stride 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "maxpool_overlap");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod avgpool_overlap {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 9x9x2;
            avgpool 3 stride 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "avgpool_overlap");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod minpool_overlap {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 9x9x2;
            minpool 3 stride 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "minpool_overlap");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod maxpool_nondiv {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x7x2;
            maxpool 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "maxpool_nondiv");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod avgpool_nondiv {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 8x8x2;
            avgpool 3;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "avgpool_nondiv");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod maxpool_rect {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 7x9x2;
            maxpool 2x3;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "maxpool_rect");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod pool_stride_gt_size {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 8x8x2;
            maxpool 2 stride 3;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "pool_stride_gt_size");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod conv_softmax_channels {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 5x5x2;
            conv 4 3x3 same softmax;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "conv_softmax_channels");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod dense_only {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 1x1x6;
            flatten;
            dense 4 relu;
            dense 3 sigmoid;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "dense_only");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod cls_small {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 12x12x3;
            conv 4 3x3 same relu;
            maxpool 2;
            conv 8 3x3 valid relu;
            flatten;
            dense 5 softmax;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "cls_small");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod maxpool_tie_grad {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 2x4x1;
            maxpool 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "maxpool_tie_grad");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod minpool_tie_grad {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 2x4x1;
            minpool 2;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "minpool_tie_grad");
    }
}

// Some cases warn (W003: a stride larger than the window), on purpose.
#[allow(deprecated)]
mod relu_grad_at_zero {
    use super::*;
    cnn::cnn! {
        pub model M {
            input 1x1x2;
            flatten;
            dense 3 relu;
        }
    }

    #[test]
    fn oracle() {
        let mut m = M::new(0);
        check_case(&mut m, "relu_grad_at_zero");
    }
}
