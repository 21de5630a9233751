#!/usr/bin/env bash
# The GPU check: every test marked `gpu` on CUDA (fp16 with its gradient scaler, bf16 and channels-last steps,
# the rest of the suite's CUDA variants), a data-parallel run over two GPUs when there are two, then the
# throughput table: every family fp32 / bf16 / channels-last / compiled, and DCGAN against pytorch/examples'
# loop as a ratio (written to build/throughput_gpu.json). Needs a CUDA machine with the project installed
# (`make install`). Set GPU_CHECK_COMPILE=0 to skip torch.compile's warm-ups (minutes) in the table.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # works without an install, e.g. on a bare GPU box
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" - <<'PY'
import torch, sys
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device; run this on a GPU machine")
print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| GPUs:", torch.cuda.device_count())
PY
GANLIB_SCALE=smoke "$PY" -m pytest -q -m gpu -p no:cacheprovider tests
if [ "$("$PY" -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  run=$(mktemp -d)
  GANLIB_SCALE=smoke "$PY" -m torch.distributed.run --standalone --nproc_per_node 2 -m ganlib \
    train stylegan --data shapes --steps 20 --batch 32 --precision bf16 --out "$run/ddp"
  GANLIB_SCALE=smoke "$PY" -m ganlib train stylegan --data shapes --steps 30 --batch 32 --out "$run/ddp" --resume
  rm -rf "$run"
fi
mkdir -p build
compile_flag=$([ "${GPU_CHECK_COMPILE:-1}" = 0 ] && echo --no-compile || true)
"$PY" benchmarks/throughput.py --seconds 3 --out build/throughput_gpu.json $compile_flag
