#!/usr/bin/env bash
# Makes the Python that cnnc/tests/export_onnx.rs loads exported files in:
# a venv under target/ort-venv holding ONNX Runtime (CPU). The test that
# needs it skips, saying so, while it is absent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/../../../target/ort-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q onnxruntime numpy
"$venv/bin/python" -c "import onnxruntime; print('onnxruntime', onnxruntime.__version__)"
