#!/usr/bin/env bash
# Regenerates augment_twins.json with real Keras 3 (JAX backend, CPU): makes a
# venv under target/keras-venv on first use, then runs augment_twins.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/../../../target/keras-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q keras jax numpy
KERAS_BACKEND=jax "$venv/bin/python" "$here/augment_twins.py"
