//! The full rendered text of at least one diagnostic per code (errors and
//! warnings), fixed with insta snapshots (`tests/snapshots/`).

use cnn_compiler::{compile, render, to_json, Code};

fn rendered(src: &str) -> String {
    let c = compile(src, "Model");
    render("model.cnn", src, &c.diagnostics, false)
}

/// Renders `src` and checks that it has a diagnostic with `code`.
fn case(code: Code, src: &str) -> String {
    let c = compile(src, "Model");
    assert!(
        c.diagnostics.iter().any(|d| d.code == code),
        "{src}: expected {}, got {:#?}",
        code.as_str(),
        c.diagnostics
    );
    rendered(src)
}

/// One snapshot test per line: `name: Code, source;` checks that `source` has
/// a diagnostic with that code and snapshots its rendering (`case`) under `name`.
macro_rules! snapshot_cases {
    ($($name:ident: $code:ident, $src:expr;)*) => {
        $(
            #[test]
            fn $name() {
                insta::assert_snapshot!(case(Code::$code, $src));
            }
        )*
    };
}

snapshot_cases! {
    e001_unknown_layer: Syntax, "input 28x28x1;\nmaxpooling 2;\n";
    e001_unknown_activation: Syntax, "input 28x28x1;\nconv 6 5x5 same rellu;\n";
    e001_parse_error_unclosed_block: Syntax, "model LeNet {\n    input 28x28x1;\n    flatten;\n";
    e001_missing_semicolon: Syntax, "input 28x28x1\nconv 6 5x5;\n";
    e002_missing_input: MissingInput, "conv 6 5x5 tanh;\nflatten;\n";
    e002_input_twice: MissingInput, "input 28x28x1;\nflatten;\ninput 28x28x1;\n";
    e003_window_too_big: WindowTooBig, "input 28x28x1;\nconv 6 5x5 tanh;\navgpool 2;\nconv 16 5x5 tanh;\navgpool 2;\nconv 120 5x5 tanh;\nflatten;\ndense 84 tanh;\ndense 10 softmax;\n";
    e003_dilated_window: WindowTooBig, "input 4x4x1;\nconv 1 3x3 dilation 2;\n";
    e004_zero: ZeroOrEmpty, "input 28x28x1;\nconv 0 3x3;\nmaxpool 2 stride 0;\n";
    e005_needs_image: NeedsImage, "input 20x20x1;\nflatten;\nconv 8 3x3;\n";
    e006_needs_vector: NeedsVector, "input 28x28x1;\nconv 8 3x3 relu;\ndense 10 softmax;\n";
    e007_option_twice: OptionTwice, "input 28x28x1;\nconv 8 3x3 same valid;\nflatten;\ndense 10 relu softmax;\n";
    e008_too_large: TooLarge, "input 99999999999x99999999999x3;\n";
    e008_too_many_parameters: TooLarge, "input 1024x1024x3;\nflatten;\ndense 1048576;\n";
    e009_duplicate_model: DuplicateModel, "model Net {\n    input 28x28x1;\n}\nmodel Net {\n    input 32x32x3;\n}\n";
    w001_softmax_not_last: SoftmaxNotLast, "input 8x8x1;\nflatten;\ndense 16 softmax;\ndense 2 softmax;\n";
    w002_double_activation: DoubleActivation, "input 8x8x1;\nflatten;\ndense 16 relu;\nsigmoid;\ndense 2 softmax;\n";
    w003_stride_skips_input: StrideSkipsInput, "input 8x8x2;\nmaxpool 2 stride 3;\n";
    // language 2
    e001_option_of_another_layer: Syntax, "input 8x8x3;\nmaxpool 2 groups 2;\nbatchnorm relu;\ndense 4 pad 1;\n";
    e001_negative_slope: Syntax, "input 8x8x3;\nleaky_relu -0.1;\nzeropad 1x2x3;\n";
    e001_block_definition_inside_a_model: Syntax, "input 8x8x4;\nblock b { relu }\nresidual { relu } shortcut relu;\n";
    e013_residual_changes_the_shape: BranchesDoNotJoin, "input 32x32x16;\nresidual { conv 32 3x3 stride 2 same relu; conv 32 3x3 same }\n";
    e013_concat_sizes_and_one_branch: BranchesDoNotJoin, "input 7x7x2;\nconcat { } { maxpool 2; conv 4 3x3 same relu; upsample 2 };\nadd { conv 4 1x1 };\n";
    e013_add_channels: BranchesDoNotJoin, "input 8x8x4;\nadd { conv 4 1x1 } { conv 5 1x1 } { };\n";
    e014_unknown_block: UnknownBlock, "block basic f { conv f 3x3 same relu }\nmodel M {\n    input 8x8x3;\n    basci 16;\n}\n";
    e015_block_values: BlockValues, "block basic f s { conv f 3x3 stride s same }\nmodel M {\n    input 8x8x3;\n    basic 16;\n    basic 16 same;\n}\n";
    e015_error_inside_a_block_names_the_use: WindowTooBig, "block down f { conv f 3x3 stride 2 }\nmodel M {\n    input 8x8x3;\n    down 8;\n    down 16;\n    down 32;\n}\n";
    e016_recursive_block: RecursiveBlock, "block a f { conv f 3x3 same; b f }\nblock b f { relu; a f }\nmodel M {\n    input 8x8x3;\n    a 4;\n}\n";
    e017_nested_too_deep: TooDeep, "input 8x8x3;\nrepeat 1000 { repeat 1000 { relu } }\n";
    e003_window_too_big_after_pad: WindowTooBig, "input 2x2x2;\nconv 4 5x5 pad 1;\n";
    e004_zero_multiplier: ZeroOrEmpty, "input 8x8x3;\ndwconv 3x3 multiplier 0;\nupsample 0;\n";
    e005_image_layer_after_global_pool: NeedsImage, "input 4x4x2;\nglobalavgpool;\nupsample 2;\n";
    e007_option_twice_language_2: OptionTwice, "input 8x8x3;\nconv 8 3x3 nobias nobias;\nupsample 2 nearest bilinear;\nbatchnorm momentum 0.9 momentum 0.8;\n";
    e010_groups_filters: GroupsNotDividing, "input 6x6x8;\nconv 6 3x3 groups 4;\n";
    e010_groups_channels_and_filters: GroupsNotDividing, "input 6x6x8;\nconv 6 3x3 groups 3;\n";
    e011_pad_with_same: PadWithSame, "input 8x8x3;\nconv 16 3x3 stride 2 same pad 1;\nmaxpool 3 pad 1 same;\n";
    e012_dropout_rate: OutOfRange, "input 28x28x1;\nflatten;\ndropout 1.5;\ndense 10 softmax;\n";
    e012_batchnorm_options: OutOfRange, "input 8x8x3;\nbatchnorm momentum 1.5 epsilon 0;\nbatchnorm epsilon 1e-50;\n";
    e012_pool_pad_over_half_the_window: OutOfRange, "input 8x8x3;\nmaxpool 3 stride 2 pad 2;\n";
    e012_augmentation_factors: OutOfRange, "input 28x28x1;\nrandomrotate 1.5;\nrandomzoom 1;\nrandomtranslate 0.1 2;\n";
    e001_augmentation_forms: Syntax, "input 28x28x1;\nrandomflip sideways;\nrandomtranslate;\nrandomzoom 0.1 0.1;\n";
    e001_keras_augmentation_classes: Syntax, "input 28x28x1;\nRandomFlip('horizontal');\nRandomTranslation(0.1, 0.1);\nRandomRotation(0.05, fill_mode='reflect');\nRandomZoom(0.1);\n";
    w004_augmentation_by_zero: NoEffect, "input 28x28x1;\nrandomrotate 0;\nrandomtranslate 0 0.0;\n";
    w004_dropout_last: NoEffect, "input 28x28x1;\nflatten;\ndense 10 softmax;\ndropout 0.5;\n";
    w004_dropout_zero_and_batchnorm_twice: NoEffect, "input 8x8x3;\nconv 8 3x3 nobias;\nbatchnorm;\nbatchnorm;\ndropout 0;\nflatten;\ndense 2;\n";
    // What users coming from Keras write (issue 14, item 5)
    e001_keras_padding: Syntax, "input 28x28x1;\nconv 32 3x3 padding=same;\nconv 32 3x3 padding=\"same\";\nmaxpool 2 padding='valid';\n";
    e001_keras_activation: Syntax, "input 28x28x1;\nconv 32 3x3 activation=relu;\nconv 32 3x3 same activation='relu';\nconv 32 3x3 activation='mish';\nflatten;\ndense 10 activation=\"softmax\";\n";
    e001_keras_tuple_sizes: Syntax, "input (28, 28, 1);\nconv 32 (3,3) same;\nmaxpool (2, 2);\n";
    e001_keras_strides: Syntax, "input 28x28x1;\nconv 32 3x3 strides=2;\nconv 32 3x3 stride=(2,2);\nmaxpool 3 strides=(2, 1);\n";
    e001_keras_class_call: Syntax, "input 28x28x1;\nConv2D(32, (3,3), activation='relu');\n";
    e001_keras_class_names: Syntax, "input 32x32x3;\nConv2D(32, (3, 3), padding='same', activation='relu');\nMaxPooling2D((2, 2));\nAveragePooling2D(pool_size=2, strides=1);\nBatchNormalization(momentum=0.9);\nGlobalAveragePooling2D();\nGlobalMaxPooling2D();\nDense(10, activation='softmax');\nDropout(0.5);\nFlatten();\nDepthwiseConv2D(3, depth_multiplier=2, padding='same');\nSeparableConv2D(64, (3, 3), use_bias=False);\nConv2DTranspose(16, 3, strides=2, padding='same');\nZeroPadding2D(padding=(1, 1));\nUpSampling2D(size=(2, 2), interpolation='bilinear');\nAdd()([x, y]);\nConcatenate()([a, b]);\nActivation('relu');\nReLU();\n";
    e001_keras_input_classes: Syntax, "Input(shape=(28, 28, 1));\nInputLayer(input_shape=(28, 28, 1));\n";
    e001_keras_class_forms: Syntax, "input 32x32x3;\nlayers.Conv2D(32, 3, kernel_initializer='he_normal');\nDense 10 relu;\nBatchNormalization;\n";
    e001_keras_lines_without_semicolons: Syntax, "input 28x28x1;\nConv2D(8, 3)\nMaxPooling2D()\nFlatten()\n";
    e001_keras_assignment: Syntax, "input 28x28x1;\nx = conv 32 3x3 same relu;\nx = layers.Conv2D(32, 3)(x);\ny = ;\nresidual { z = conv 1 1x1 }\n";
    e001_keras_call_and_quotes: Syntax, "input 28x28x1;\nconv(32, 3);\nconv 32 3x3 'same';\nconv 32 3x3 use_bias=False name='c1';\n";
    e001_keras_option_the_layer_lacks: Syntax, "input 28x28x1;\nflatten;\ndense 10 padding=same;\ndense 10 kernel_initializer='he_normal';\n";
    e001_unknown_layer_every_statement: Syntax, "input 8x8x3;\nconvtranspose 4 3x3;\nresidul { relu }\nconcatenate { } { };\nsomething;\n";
}

#[test]
fn all_errors_in_one_pass() {
    insta::assert_snapshot!(rendered(
        "input 28x28x1;\nconv 6 5x5 tanh;\navgpool 2;\nconv 16 5x5 tanh;\navgpool 2;\nconv 120 5x5 tanh;\nmaxpooling 2;\nflatten;\nconv 8 3x3;\n"
    ));
}

#[test]
fn json_form() {
    let src = "input 3x3x1;\nmaxpool 4;\n";
    let c = compile(src, "Model");
    let json = serde_json::to_string_pretty(&to_json("model.cnn", src, &c.diagnostics)).unwrap();
    insta::assert_snapshot!(json);
}
