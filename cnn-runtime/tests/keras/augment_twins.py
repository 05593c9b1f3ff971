"""Writes augment_twins.json beside this file: Keras's own augmentation
layers (RandomFlip, RandomTranslation, RandomRotation, RandomZoom, with their
default bilinear interpolation and fill_mode="reflect") applied to a small
batch, each with the transform Keras drew, so that
`cnn-runtime/tests/augment_keras.rs` can rebuild the same transform here and
compare the images. Keras's random draws cannot be matched draw for draw;
the transform of each image is recorded instead.

Run it with ./regenerate.sh (a venv with keras and jax, made on first use).
"""

import json
import math
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

H, W, C, N = 7, 9, 2, 6


def case(layer, x):
    t = layer.get_random_transformation(x, training=True, seed=None)
    y = np.asarray(layer.transform_images(x, t, training=True))
    per_image = []
    for i in range(N):
        if isinstance(layer, keras.layers.RandomFlip):
            flips = np.asarray(t["flips"]).reshape(N, -1)[i]
            # Keras draws one flip per image; its mode says which axes.
            p = {"flip": bool(flips[0])}
        elif isinstance(layer, keras.layers.RandomTranslation):
            tx, ty = (float(v) for v in np.asarray(t["translations"])[i])
            p = {"dx": tx, "dy": ty}
        elif isinstance(layer, keras.layers.RandomRotation):
            p = {"radians": math.radians(float(np.asarray(t["angle"])[i]))}
        else:
            hz = float(np.asarray(t["height_zoom"])[i, 0])
            wz = float(np.asarray(t["width_zoom"])[i, 0])
            assert hz == wz
            p = {"zoom": hz}
        per_image.append(p)
    return {
        "layer": layer.__class__.__name__,
        "config": {k: v for k, v in layer.get_config().items() if k in (
            "mode", "factor", "height_factor", "width_factor", "fill_mode",
            "interpolation")},
        "transforms": per_image,
        "y": y.reshape(-1).tolist(),
    }


def main():
    rng = np.random.default_rng(12)
    x = rng.random((N, H, W, C), dtype=np.float32)
    layers = [
        keras.layers.RandomFlip("horizontal", seed=1),
        keras.layers.RandomFlip("vertical", seed=2),
        keras.layers.RandomTranslation(0.3, 0.2, seed=3),
        keras.layers.RandomRotation(0.2, seed=4),
        keras.layers.RandomZoom(0.4, seed=5),
    ]
    out = {
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "shape": [N, H, W, C],
        "x": x.reshape(-1).tolist(),
        "cases": [case(layer, x) for layer in layers],
    }
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "augment_twins.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
