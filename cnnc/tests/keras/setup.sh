#!/usr/bin/env bash
# Makes the Python that cnnc/tests/export_keras.rs runs exported programs
# with: a venv under target/keras-venv holding Keras 3 and JAX (CPU). The
# test skips, saying so, while it is absent.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/../../../target/keras-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q keras jax numpy
KERAS_BACKEND=jax "$venv/bin/python" -c "import keras; print('keras', keras.__version__)"
