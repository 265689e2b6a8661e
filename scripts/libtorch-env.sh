#!/usr/bin/env bash
# Provisions libtorch from PyPI's torch wheel into a per-user cache, then exports
# what the tch build needs. Sourced by the Makefile; safe to re-run. It sets no shell
# options, so sourcing it leaves the caller's shell as it was; failures return non-zero.

TORCH_VERSION="2.11.0"
VAELAB_CACHE="${VAELAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vaelab}"
TORCH_VENV="$VAELAB_CACHE/torch-$TORCH_VERSION"
PYTHON="${PYTHON:-python3}"

if [ ! -f "$TORCH_VENV/.complete" ]; then
  echo "vaelab setup: installing torch==$TORCH_VERSION (libtorch) into $TORCH_VENV (first time only, a few GB)" >&2
  rm -rf "$TORCH_VENV"
  mkdir -p "$VAELAB_CACHE" || return 1
  "$PYTHON" -m venv "$TORCH_VENV" || return 1
  "$TORCH_VENV/bin/pip" install --quiet --disable-pip-version-check "torch==$TORCH_VERSION" safetensors numpy || return 1
  touch "$TORCH_VENV/.complete" || return 1
fi

TORCH_DIR="$("$TORCH_VENV/bin/python" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torch").origin))')" || return 1
export LIBTORCH="$TORCH_DIR"
export LIBTORCH_INCLUDE="$TORCH_DIR"
export LIBTORCH_LIB="$TORCH_DIR"
export VAELAB_TORCH_PYTHON="$TORCH_VENV/bin/python"
