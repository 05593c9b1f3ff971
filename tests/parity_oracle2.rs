//! Generated models against the language-2 Keras oracle: every case of
//! `../shared/oracle/goldens2/`, graphs included, through the include form of
//! `cnn!` (the case's own `model.cnn`: a bare body gives the struct `Model`),
//! with every check of `check_case2`. `every_case_is_here` keeps the list
//! below in step with the oracle's index.

mod codegen_support;

use codegen_support::oracle2::{all_cases, check_case2};

/// One module per case: the model from the case's file and its oracle test.
/// A case whose file names its model (`model ResNet8 { ... }`) gives the
/// struct's name after the file (`=> ResNet8`).
macro_rules! oracle2_cases {
    ($($case:ident $file:tt $(=> $ty:ident)?)*) => {
        $(
            #[allow(deprecated)]
            mod $case {
                cnn::cnn!(include $file);

                #[test]
                fn oracle() {
                    oracle2_cases!(@run $case $($ty)?);
                }
            }
        )*

        #[test]
        fn every_case_is_here() {
            let mut here = vec![$(stringify!($case).to_string()),*];
            let mut all = all_cases();
            here.sort();
            all.sort();
            assert_eq!(here, all);
        }
    };
    (@run $case:ident) => {
        super::check_case2(&mut Model::new(0), stringify!($case))
    };
    (@run $case:ident $ty:ident) => {
        super::check_case2(&mut $ty::new(0), stringify!($case))
    };
}

oracle2_cases! {
    conv_groups2 "../shared/oracle/goldens2/conv_groups2/model.cnn"
    conv_nobias "../shared/oracle/goldens2/conv_nobias/model.cnn"
    conv_pad1_s2 "../shared/oracle/goldens2/conv_pad1_s2/model.cnn"
    conv_dilation2_same "../shared/oracle/goldens2/conv_dilation2_same/model.cnn"
    dwconv_mult2 "../shared/oracle/goldens2/dwconv_mult2/model.cnn"
    dwconv_s2_same_even "../shared/oracle/goldens2/dwconv_s2_same_even/model.cnn"
    dwconv_dilation2 "../shared/oracle/goldens2/dwconv_dilation2/model.cnn"
    dwconv_pad1_s2_mult2 "../shared/oracle/goldens2/dwconv_pad1_s2_mult2/model.cnn"
    sepconv_same_dilation2_relu "../shared/oracle/goldens2/sepconv_same_dilation2_relu/model.cnn"
    deconv_2x2_s2_valid "../shared/oracle/goldens2/deconv_2x2_s2_valid/model.cnn"
    deconv_3x3_s2_same_even "../shared/oracle/goldens2/deconv_3x3_s2_same_even/model.cnn"
    deconv_3x3_s2_valid "../shared/oracle/goldens2/deconv_3x3_s2_valid/model.cnn"
    deconv_4x4_s2_same_nobias "../shared/oracle/goldens2/deconv_4x4_s2_same_nobias/model.cnn"
    deconv_3x2_s1_same "../shared/oracle/goldens2/deconv_3x2_s1_same/model.cnn"
    deconv_1x1_s2_valid "../shared/oracle/goldens2/deconv_1x1_s2_valid/model.cnn"
    dense_nobias "../shared/oracle/goldens2/dense_nobias/model.cnn"
    bn_defaults "../shared/oracle/goldens2/bn_defaults/model.cnn"
    bn_momentum_eps "../shared/oracle/goldens2/bn_momentum_eps/model.cnn"
    bn_noscale "../shared/oracle/goldens2/bn_noscale/model.cnn"
    bn_after_conv "../shared/oracle/goldens2/bn_after_conv/model.cnn"
    bn_after_dense_ce "../shared/oracle/goldens2/bn_after_dense_ce/model.cnn"
    dropout_inference "../shared/oracle/goldens2/dropout_inference/model.cnn"
    dropout_rate0_train "../shared/oracle/goldens2/dropout_rate0_train/model.cnn"
    globalavgpool "../shared/oracle/goldens2/globalavgpool/model.cnn"
    globalmaxpool "../shared/oracle/goldens2/globalmaxpool/model.cnn"
    globalmaxpool_tie "../shared/oracle/goldens2/globalmaxpool_tie/model.cnn"
    zeropad_1 "../shared/oracle/goldens2/zeropad_1/model.cnn"
    zeropad_0x1x0x1 "../shared/oracle/goldens2/zeropad_0x1x0x1/model.cnn"
    upsample_2 "../shared/oracle/goldens2/upsample_2/model.cnn"
    upsample_2x3 "../shared/oracle/goldens2/upsample_2x3/model.cnn"
    upsample_bilinear_2 "../shared/oracle/goldens2/upsample_bilinear_2/model.cnn"
    act_relu6 "../shared/oracle/goldens2/act_relu6/model.cnn"
    act_leaky_relu_default "../shared/oracle/goldens2/act_leaky_relu_default/model.cnn"
    act_leaky_relu_0_1 "../shared/oracle/goldens2/act_leaky_relu_0_1/model.cnn"
    act_elu "../shared/oracle/goldens2/act_elu/model.cnn"
    act_gelu "../shared/oracle/goldens2/act_gelu/model.cnn"
    act_silu "../shared/oracle/goldens2/act_silu/model.cnn"
    act_softplus "../shared/oracle/goldens2/act_softplus/model.cnn"
    act_hard_sigmoid "../shared/oracle/goldens2/act_hard_sigmoid/model.cnn"
    act_options_on_layers "../shared/oracle/goldens2/act_options_on_layers/model.cnn"
    mbv2_block_s2 "../shared/oracle/goldens2/mbv2_block_s2/model.cnn"
    residual_identity "../shared/oracle/goldens2/residual_identity/model.cnn"
    add_three "../shared/oracle/goldens2/add_three/model.cnn"
    concat_inception "../shared/oracle/goldens2/concat_inception/model.cnn"
    repeat_residual "../shared/oracle/goldens2/repeat_residual/model.cnn"
    resnet8_ce "../shared/oracle/goldens2/resnet8_ce/model.cnn" => ResNet8
}
