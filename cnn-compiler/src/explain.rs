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
are input, conv, dwconv, sepconv, deconv, maxpool, avgpool, minpool,
flatten, dense, batchnorm, dropout, globalavgpool, globalmaxpool, zeropad,
upsample, randomflip, randomtranslate, randomrotate and randomzoom; the
activations relu, sigmoid, tanh, softmax, linear, relu6,
leaky_relu, elu, selu, gelu, silu (or swish), softplus, hard_sigmoid and
hard_silu (or hard_swish). Decimals are written `0.5`, `1e-3`, `1.001e-5`.

Keras habits are told apart, each with the language's text for it:

    conv 32 (3, 3) padding='same' activation='relu' strides=2;
    Conv2D(32, (3, 3), activation='relu');
    x = conv 32 3x3;

are `conv 32 3x3 same relu stride 2`, `conv 32 3x3 relu` and
`conv 32 3x3`: sizes are written with `x`, options are words after the
layer's numbers, Keras's classes have twins named in the help (`Conv2D`
is `conv`, `MaxPooling2D` is `maxpool`, `Dense` is `dense`, ...), and the
language has no variables: each statement takes the output of the one
before it (branches are written as blocks, `residual { ... }`)."
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

Filter and unit counts, input axes, windows, strides, dilations, groups,
depth multipliers and upsampling sizes are all at least 1; a layer with
zero of something would have an empty output. (Padding may be 0.)

Example:

    input 28x28x1;
    conv 0 3x3;          // error[E004]: conv with 0 filters

Fix: use a positive number, e.g. `conv 8 3x3`."
        }
        Code::NeedsImage => {
            "E005 (needs image): a conv or pool layer gets a flat vector.

Convolutions (conv, dwconv, sepconv, deconv), pools (also the global
ones), zeropad and upsample work on images HxWxC. After `flatten`,
`dense`, `globalavgpool` or `globalmaxpool` the data is a vector, and there
are no rows and columns left to slide a window over. (batchnorm, dropout
and the activations work on both.)

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
once. `same` and `valid` exclude each other, so do `nearest` and
`bilinear`, and a layer has at most one activation.

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
stride, dilation, padding) is at most 1,048,576 (2^20); a layer's output
(and an explicitly padded input, or a sepconv's depthwise result) holds at
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
        Code::GroupsNotDividing => {
            "E010 (groups not dividing): `groups G` does not divide the input channels
or the filters of a conv.

A grouped conv splits the C input channels into G groups of C/G and the F
filters into G groups of F/G; group g reads only its own channels. So G
must divide both C and F (Keras rejects the same models).

Example:

    input 6x6x8;
    conv 6 3x3 groups 4;      // error[E010]: `groups 4` does not divide the 6 filters

Fix: choose G among the common divisors of C and F (here `groups 2`), or
change the number of filters (`conv 8 3x3 groups 4`)."
        }
        Code::PadWithSame => {
            "E011 (pad with same): `pad P` and `same` on one layer.

`pad P` adds P zero cells on both sides of each axis and then slides a
`valid` window (PyTorch's `padding=P`); `same` chooses its own padding so
that the output is `ceil(n / stride)`. The two together would pad twice.
(They differ: on 8x8 with a 3x3 kernel and stride 2, `pad 1` pads one
cell on every side, `same` none before and one after.)

Example:

    input 8x8x3;
    conv 16 3x3 stride 2 same pad 1;   // error[E011]: `pad` together with `same`

Fix: keep one of them: `conv 16 3x3 stride 2 pad 1` or
`conv 16 3x3 stride 2 same`."
        }
        Code::OutOfRange => {
            "E012 (out of range): a number outside the range its option allows.

The ranges: a dropout rate is in [0, 1) (at 1 everything would be
dropped); a batchnorm momentum in [0, 1]; an epsilon above 0 (it keeps a
division away from zero); a leaky_relu slope at least 0; a pool's `pad` at
most half its window (so that every window holds a real cell); the
largest shift of `randomtranslate` and turn of `randomrotate` in [0, 1]
(fractions of the size and of a full turn); the largest zoom of
`randomzoom` in [0, 1) (at 1 an image could shrink to a point). Numbers
are read as 32-bit floats: an epsilon of `1e-50` is 0.

Example:

    input 28x28x1;
    flatten;
    dropout 1.5;           // error[E012]: the dropout rate 1.5 must be in [0, 1)

Fix: use a value in the range, e.g. `dropout 0.5`, `batchnorm momentum
0.9 epsilon 1e-5`, `maxpool 3 stride 2 pad 1`."
        }
        Code::BranchesDoNotJoin => {
            "E013 (branches do not join): the branches of a `residual`, `add` or
`concat` give shapes that cannot be joined.

`residual` and `add` sum their branches value by value, so every branch
must give the same shape (no broadcasting). `concat` puts its branches side
by side on the channel axis, so their height and width must agree. The
error names each branch's shape and the statement it came from; for a
residual whose body changes the shape it shows the `shortcut` that fixes it.

Example:

    input 32x32x16;
    residual { conv 32 3x3 stride 2 same }   // error[E013]: 16x16x32 vs 32x32x16

Fix: give the residual a shortcut that makes the same shape,
`residual { conv 32 3x3 stride 2 same } shortcut { conv 32 1x1 stride 2 }`,
or change the branches so that they agree."
        }
        Code::UnknownBlock => {
            "E014 (unknown block): a statement names a block that is not defined.

A block is defined once, at the top of the file, with `block NAME P... {
... }`, and used by its name with a value for each parameter. A name that
is neither a layer nor a defined block is reported with the closest name.

Example:

    block basic f { conv f 3x3 same relu }
    model M { input 8x8x3; basci 16 }      // error[E014]: unknown block `basci`

Fix: correct the name (`basic 16`), or define the block before the models."
        }
        Code::BlockValues => {
            "E015 (block values): a block is used with the wrong number of values,
or a value that is not a whole number.

Each parameter of `block NAME P1 P2 { ... }` stands for one whole number in
the block's statements (`conv f 3x3 stride s`), so a use gives exactly one
integer per parameter, in order. A parameter is a number: it cannot stand
where the statement needs a word (a padding, an activation).

Example:

    block basic f s { conv f 3x3 stride s same }
    model M { input 8x8x3; basic 16 }      // error[E015]: 1 value for 2 parameters

Fix: give one value per parameter, e.g. `basic 16 1`."
        }
        Code::RecursiveBlock => {
            "E016 (recursive block): a block uses itself, directly or through other
blocks, so it would never end.

Example:

    block a { conv 8 3x3 same; a }        // error[E016]: `a` uses itself

Fix: write the repetition with `repeat N { ... }`, or remove the use."
        }
        Code::TooDeep => {
            "E017 (too deep): blocks are nested too deep, or a model unfolds into
too many layers.

The limits: 64 levels of `{ }` (a model block counts as one), and 1,000,000
layers once every `repeat` and block use is unfolded. Real networks stay far
below both; text past them is refused before any work is spent on it.

Example:

    input 8x8x3;
    repeat 1000 { repeat 1000 { repeat 1000 { relu } } }   // error[E017]

Fix: use fewer copies, or nest fewer blocks."
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
is its window), or a larger window.

Not reported for a 1x1 conv with stride 2: that is the projection shortcut
with which ResNet halves the image, on purpose. Warnings are given inside
blocks too, once per statement however often the block is used."
        }
        Code::NoEffect => {
            "W004 (no effect, warning): a dropout, batchnorm or augmentation that
changes nothing.

`dropout 0` drops nothing; `randomtranslate 0`, `randomrotate 0` and
`randomzoom 0` move no image. A `dropout` as the last statement drops
outputs that no later layer learns from (and does nothing at inference).
A `batchnorm` right after another normalises values that are already
normalised. The model still compiles.

Example:

    input 28x28x1;
    flatten;
    dense 10 softmax;
    dropout 0.5;           // warning[W004]: `dropout` as the last layer has no effect

Fix: put dropout between layers with weights (`dense 128 relu; dropout
0.5; dense 10 softmax`), give it a rate above 0, and keep one batchnorm."
        }
    }
}
