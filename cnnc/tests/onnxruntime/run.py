"""Loads ONNX files written by `cnnc export` in ONNX Runtime and runs each
on its oracle case's input, for cnnc/tests/export_onnx.rs: for each pair
given, reads x from the case's io.npz, runs MODEL.onnx (NHWC in and out) and
writes the output next to it as MODEL.ort.npy.

    python run.py ORACLE_CASE_DIR MODEL.onnx [ORACLE_CASE_DIR MODEL.onnx ...]
"""

import os
import sys

import numpy as np
import onnxruntime as ort


def run(case, model):
    x = np.load(os.path.join(case, "io.npz"))["x"].astype("float32")
    options = ort.SessionOptions()
    # The check is that the file loads and computes the model; ORT's own
    # graph rewrites are not what is tested.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    (y,) = session.run(None, {name: x})
    np.save(model[: -len(".onnx")] + ".ort.npy", y)


def main():
    args = sys.argv[1:]
    for case, model in zip(args[::2], args[1::2]):
        run(case, model)
        print("ran", os.path.basename(case), flush=True)


if __name__ == "__main__":
    main()
