#!/usr/bin/env bash
# The GPU check: every test marked `gpu` on CUDA, then a small training-throughput table.
# Needs a CUDA machine with the project installed (`make install`); takes well under 8 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # works without an install, e.g. on a bare GPU box
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" - <<'PY'
import torch, sys
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device; run this on a GPU machine")
print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
PY
GANLIB_SCALE=smoke "$PY" -m pytest -q -m gpu -p no:cacheprovider tests
"$PY" benchmarks/throughput.py
