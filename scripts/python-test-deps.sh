#!/usr/bin/env bash
# The Python packages only the tests' reference computations use, installed into the
# torch virtual environment that scripts/libtorch-env.sh provisions (run after it):
# scipy, and pytorch-fid's source without its dependencies (its Fréchet distance is run
# as written by tests/fixtures/feature_metrics.py; torchvision is never needed).
set -euo pipefail
python="${VAELAB_TORCH_PYTHON:?source scripts/libtorch-env.sh first}"
if ! "$python" -c 'import scipy, pytorch_fid' 2>/dev/null; then
  echo "installing scipy and pytorch-fid (test references) into the torch environment" >&2
  "$python" -m pip install --quiet --disable-pip-version-check scipy "pytorch-fid==0.3.0" --no-deps
fi
