"""Runs programs written by `cnnc export --to keras`, for
cnnc/tests/export_keras.rs: for each case folder given, imports its
model.py, builds the model, loads the case's weights.npz and writes the
model's inference outputs on the case's x (from io.npz) to keras_y.npy, and
x itself to x.npy (what `cnnc predict` reads); then saves the model as
model.keras and model.h5 (what `cnnc import` reads back), except a model
with a Lambda layer (Python code, which no import reads): lambda.txt says so.

    python run_exported.py ORACLE_CASE_DIR OUT_DIR [ORACLE_CASE_DIR OUT_DIR ...]
"""

import importlib.util
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402


def run(case, out):
    spec = importlib.util.spec_from_file_location("exported", os.path.join(out, "model.py"))
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    model = program.build()
    program.load_weights(model, os.path.join(case, "weights.npz"))
    x = np.load(os.path.join(case, "io.npz"))["x"].astype("float32")
    np.save(os.path.join(out, "x.npy"), x)
    np.save(os.path.join(out, "keras_y.npy"), np.asarray(model(x, training=False)))
    if any(type(layer).__name__ == "Lambda" for layer in model.layers):
        with open(os.path.join(out, "lambda.txt"), "w") as f:
            f.write("a Lambda layer\n")
        return
    model.save(os.path.join(out, "model.keras"))
    model.save(os.path.join(out, "model.h5"))


def main():
    args = sys.argv[1:]
    for case, out in zip(args[::2], args[1::2]):
        run(case, out)
        print("ran", os.path.basename(case), flush=True)


if __name__ == "__main__":
    main()
