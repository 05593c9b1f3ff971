"""Makes the fixtures of tests/import_keras.rs: small Keras 3 models with
random weights (and random batchnorm statistics, so that inference uses
them), each saved as `model.keras` (Keras 3's zip) and `model.h5` (the legacy
HDF5 file), with a seeded input and Keras's inference output in `io.npz`
(`x`, NHWC, and `y`).

    python make_fixtures.py            # a Python with keras, jax and numpy

`cnnc/tests/keras/setup.sh` makes one under target/keras-venv.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def lenet5():
    """A Sequential LeNet-5: convs, average pools, a flatten, dense layers."""
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(6, 5, padding="same", activation="tanh"),
            layers.AveragePooling2D(2),
            layers.Conv2D(16, 5, activation="tanh"),
            layers.AveragePooling2D(2),
            layers.Flatten(),
            layers.Dense(120, activation="tanh"),
            layers.Dense(84, activation="tanh"),
            layers.Dense(10, activation="softmax"),
        ],
        name="lenet5",
    )


def resnet_bn():
    """Functional: batchnorm, an identity residual block, a projection block
    with a strided 1x1 shortcut, global average pooling, dropout."""
    x = inputs = keras.Input(shape=(16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    y = layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(8, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(y)
    x = layers.Add()([y, x])
    x = layers.ReLU()(x)
    y = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(16, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    s = layers.Conv2D(16, 1, strides=2, use_bias=False)(x)
    s = layers.BatchNormalization(center=False)(s)
    x = layers.Add()([y, s])
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="resnet_bn")


def mixed():
    """Functional: padding, depthwise and separable convs, a concat of
    branches, a transposed conv, upsampling, pools and the activations
    Keras writes as layers of their own."""
    x = inputs = keras.Input(shape=(12, 10, 4))
    x = layers.ZeroPadding2D(((1, 2), (0, 1)))(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = layers.ReLU(max_value=6.0)(x)
    x = layers.SeparableConv2D(8, 3, padding="same", activation="silu")(x)
    a = layers.Conv2D(4, 1, activation="gelu")(x)
    b = layers.MaxPooling2D(3, strides=1, padding="same")(x)
    c = layers.Conv2D(3, (3, 1), padding="same", dilation_rate=(2, 1))(x)
    c = layers.LeakyReLU(negative_slope=0.1)(c)
    x = layers.Concatenate()([a, b, c])
    x = layers.Conv2DTranspose(6, 3, strides=2, padding="same")(x)
    x = layers.ELU()(x)
    x = layers.MaxPooling2D((2, 3), strides=(2, 2), padding="same")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.AveragePooling2D(2)(x)
    x = layers.Conv2D(5, 3, strides=(2, 1), activation="hard_sigmoid", groups=1)(x)
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dense(7, activation="selu")(x)
    outputs = layers.Softmax()(x)
    return keras.Model(inputs, outputs, name="mixed")


def randomize(model, rng):
    """Random weights everywhere, moving variances positive."""
    for layer in model.layers:
        ws = []
        for w in layer.weights:
            shape = tuple(w.shape)
            if "variance" in w.path:
                ws.append(rng.uniform(0.5, 2.0, shape).astype("float32"))
            else:
                ws.append(rng.normal(0.0, 0.3, shape).astype("float32"))
        if ws:
            layer.set_weights(ws)


def keras2_stamp(folder):
    """`keras2/hard_sigmoid.h5`: the mixed net's .h5 file stamped as saved by
    Keras 2.15, whose `hard_sigmoid` was another function (the import must
    refuse it rather than read it as Keras 3's)."""
    import shutil

    import h5py

    out = os.path.join(HERE, "keras2")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "hard_sigmoid.h5")
    shutil.copyfile(os.path.join(folder, "model.h5"), path)
    with h5py.File(path, "r+") as f:
        f.attrs["keras_version"] = "2.15.0"


def main():
    rng = np.random.default_rng(7)
    for make in (lenet5, resnet_bn, mixed):
        model = make()
        randomize(model, rng)
        folder = os.path.join(HERE, model.name)
        os.makedirs(folder, exist_ok=True)
        model.save(os.path.join(folder, "model.keras"))
        model.save(os.path.join(folder, "model.h5"))
        x = rng.normal(0.0, 1.0, (3,) + tuple(model.input_shape[1:])).astype("float32")
        y = np.asarray(model(x, training=False))
        np.savez(os.path.join(folder, "io.npz"), x=x, y=y)
        print(model.name, model.count_params(), "parameters", y.shape)
        if model.name == "mixed":
            keras2_stamp(folder)
    print("keras", keras.__version__)


if __name__ == "__main__":
    main()
