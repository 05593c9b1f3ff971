"""Writes applications.json beside this file: every layer of Keras's
ResNet50, MobileNetV2 and VGG16 (keras.applications, weights=None, 224x224x3,
1,000 classes) with its class, name, output shape and parameter counts, in the
order of `model.layers`. `cnn-compiler/tests/applications.rs` compares the
`.cnn` twins in examples/models/ against it layer by layer.

Run it with ./regenerate.sh (a venv with keras and jax, made on first use).
"""

import json
import os
import re

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402


def count(weights):
    return int(sum(int(w.numpy().size) for w in weights))


def layers_of(model):
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = layer.output.shape[1:]
        row = {
            "class": layer.__class__.__name__,
            "name": layer.name,
            "output": [int(d) for d in shape],
            "trainable": count(layer.trainable_weights),
            "non_trainable": count(layer.non_trainable_weights),
        }
        # Which activation an Activation or ReLU layer computes.
        config = layer.get_config()
        if "activation" in config:
            row["activation"] = str(config["activation"])
        if config.get("max_value") is not None:
            row["max_value"] = float(config["max_value"])
        rows.append(row)
    return rows


def main():
    apps = keras.applications
    models = {
        "resnet50.cnn": apps.ResNet50,
        "mobilenet_v2.cnn": apps.MobileNetV2,
        "vgg16.cnn": apps.VGG16,
    }
    out = {"keras": keras.__version__, "models": {}}
    for file, build in models.items():
        model = build(weights=None, input_shape=(224, 224, 3), classes=1000)
        out["models"][file] = {
            "keras_name": model.name,
            "total_params": int(model.count_params()),
            "layers": layers_of(model),
        }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "applications.json")
    # One layer a line, so that a diff of a regenerated file reads by layer.
    text = json.dumps(out, indent=1)
    text = re.sub(r"\{[^{}]*\}", lambda m: " ".join(m.group(0).split()), text)
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.replace(path + ".tmp", path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
