#!/usr/bin/env bash
# Makes the Python that remakes the PyTorch fixtures (make_fixtures.py) and
# that cnnc/tests/import_torchvision.rs runs torchvision_models.py with: a
# venv under target/torch-venv holding torch, torchvision, onnx, onnxscript (for
# the dynamo exporter) and numpy
# (the torch wheel is large). The test skips, saying so, while it is absent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/../../../target/torch-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q torch torchvision onnx onnxscript numpy
"$venv/bin/python" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
