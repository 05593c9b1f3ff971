//! Long explanations of the diagnostic codes (`cnnc explain CODE`).

use crate::diag::Code;

/// A paragraph explaining `code`, with an example that triggers it and the fix.
pub fn explain(code: Code) -> &'static str {
    match code {
        Code::Syntax => {
            "E001 (syntax): the text is not a well-formed model.

This covers unexpected tokens, unknown layer, option or activation names,
and badly written numbers or dimensions. Layer and activation names are
lowercase; dimensions are positive integers joined by `x` (`3x3`,
`28x28x1`); statements are separated by `;`.

Example:

    input 28x28x1;
    maxpooling 2;        // error[E001]: unknown layer `maxpooling`

Fix: use the layer's name in this language (here `maxpool 2`). The layers
are input, conv, maxpool, avgpool, minpool, flatten and dense; the
activations relu, sigmoid, tanh, softmax and linear."
        }
        Code::MissingInput => {
            "E002 (missing input): every model starts with exactly one `input HxWxC`.

The input statement fixes the shape of one sample (height, width,
channels); every later shape is computed from it. A model without it, with
another statement first, or with a second `input`, is rejected.

Example:

    conv 6 5x5 tanh;     // error[E002]: model does not start with `input`
    flatten;

Fix: add `input HxWxC` as the first statement, e.g. `input 28x28x1` for
grey 28x28 images, and remove any later `input`."
        }
        Code::WindowTooBig => {
            "E003 (window too big): a `valid` conv or pool window is larger than its input.

With `valid` padding (the default) the window must fit inside the input on
both axes: `out = floor((n - k) / s) + 1` needs `n >= k` (with dilation d,
the window covers `(k - 1) * d + 1` cells). Keras rejects the same model
(\"Computed output size would be zero or negative\").

Example:

    input 28x28x1;
    conv 6 5x5 tanh;     // 24x24x6
    avgpool 2;           // 12x12x6
    conv 16 5x5 tanh;    // 8x8x16
    avgpool 2;           // 4x4x16
    conv 120 5x5 tanh;   // error[E003]: the 5x5 kernel does not fit its 4x4 input

Fix: use `same` padding (`conv 6 5x5 same tanh` keeps 28x28), start from a
larger input, remove a pooling layer, or use a window of at most the input
size shown in the message."
        }
        Code::ZeroOrEmpty => {
            "E004 (zero or empty): a count, window, stride or dilation is 0.

Filter and unit counts, input axes, windows, strides and dilations are all
at least 1; a layer with zero of something would have an empty output.

Example:

    input 28x28x1;
    conv 0 3x3;          // error[E004]: conv with 0 filters

Fix: use a positive number, e.g. `conv 8 3x3`."
        }
        Code::NeedsImage => {
            "E005 (needs image): a conv or pool layer gets a flat vector.

Convolutions and pools work on images HxWxC. After `flatten` or `dense`
the data is a vector, and there are no rows and columns left to slide a
window over.

Example:

    input 28x28x1;
    flatten;
    conv 8 3x3;          // error[E005]: conv needs an image, it gets a vector of 784

Fix: put the conv and pool layers before `flatten`, and the dense layers
after it."
        }
        Code::NeedsVector => {
            "E006 (needs vector): a dense layer gets an image HxWxC.

A dense layer multiplies a flat vector by a matrix; it does not flatten an
image implicitly (neither does Keras's Dense, which would act on the last
axis only).

Example:

    input 28x28x1;
    conv 8 3x3 relu;
    dense 10 softmax;    // error[E006]: dense needs a vector, it gets 26x26x8

Fix: insert `flatten;` before the dense layer."
        }
        Code::OptionTwice => {
            "E007 (option twice): an option is given twice, or conflicts with another.

Options follow a layer's required arguments in any order, each at most
once. `same` and `valid` exclude each other, and a layer has at most one
activation.

Example:

    input 32x32x3;
    conv 16 3x3 same valid;   // error[E007]: `same` and `valid` together
    dense 10 relu softmax;    // error[E007]: two activations

Fix: keep one of them. To apply two activations on purpose, write the
second as its own statement (`relu;`)."
        }
        Code::TooLarge => {
            "E008 (too large): a number or size is beyond what the compiler and runtime support.

Limits: every single number (input axis, filter or unit count, window,
stride, dilation) is at most 1,048,576 (2^20); a layer's output holds at
most 2^31 values per sample; a layer, and a whole model, has at most 2^31
parameters. All sizes are computed with overflow checks, so a huge number
is reported here instead of wrapping around.

Example:

    input 99999999999x99999999999x3;   // error[E008]: too large

Fix: use realistic sizes; pool or stride earlier to keep activations small,
and use fewer units or filters to keep the parameter count down."
        }
        Code::DuplicateModel => {
            "E009 (duplicate model): two models in one file have the same name.

Each model becomes a Rust type, so names must be unique within a file.

Example:

    model Net { input 28x28x1; flatten; dense 10 softmax }
    model Net { input 32x32x3; flatten; dense 10 softmax }   // error[E009]

Fix: rename one of them (e.g. `model NetRgb`)."
        }
        Code::SoftmaxNotLast => {
            "W001 (softmax not last, warning): softmax is used before the last layer.

Softmax turns a layer's values into probabilities that sum to 1; it is
meant for the output of a classifier. Earlier in the network it squashes
the signal and slows or stalls learning. The model still compiles.

Example:

    input 28x28x1;
    flatten;
    dense 64 softmax;    // warning[W001]
    dense 10 softmax;

Fix: use relu (or another activation) on hidden layers and keep softmax
for the last one."
        }
        Code::DoubleActivation => {
            "W002 (two activations in a row, warning): an activation statement follows a
layer that already ends with a (non-linear) activation.

`dense 64 relu; relu` applies relu twice, which is usually a slip (for relu
it does nothing; for sigmoid or tanh it distorts the values). The model
still compiles.

Example:

    input 28x28x1;
    flatten;
    dense 64 relu;
    sigmoid;             // warning[W002]: two activations in a row: relu then sigmoid

Fix: keep one activation: drop the statement, or drop the layer's option
(`dense 64; sigmoid`)."
        }
        Code::StrideSkipsInput => {
            "W003 (stride skips input, warning): a stride is larger than the window.

With a stride larger than the (effective) window, some rows and columns of
the input are never read, and get a zero gradient. The model still
compiles (Keras accepts it too).

Example:

    input 8x8x2;
    maxpool 2 stride 3;  // warning[W003]: stride 3x3 is larger than the 2x2 window

Fix: use a stride of at most the window size (the default stride of a pool
is its window), or a larger window."
        }
    }
}
