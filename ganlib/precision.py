"""Mixed precision for the training loop: which dtype, its autocast context, and fp16's gradient scaler
(``update``: backward and step through it).

Four settings, for ``Trainer(precision=...)`` and ``python -m ganlib train --precision``:

* ``fp32`` -- no autocast: the default, and what every number in the course was measured with.
* ``bf16`` -- ``torch.autocast`` with bfloat16, on a CPU or a GPU: convolutions and matrix products run in
  bf16, losses and reductions in fp32; weights, optimiser state and the EMA generator stay fp32. bf16 has
  fp32's exponent range, so gradients need no scaling.
* ``fp16`` -- autocast with float16, CUDA only, with one ``torch.amp.GradScaler`` per optimiser: fp16's small
  range would flush small gradients to zero without it (Micikevicius et al. 2018, Sec. 3.2).
* ``auto`` -- on CUDA bf16 where the GPU supports it, else fp16; on a CPU bf16 only if a short measurement
  on this machine found it faster than fp32 (``bf16_faster_on_cpu``, cached), else fp32; elsewhere fp32.

Why ``auto`` measures instead of guessing: a CPU without bf16 instructions (e.g. AVX2 only) emulates bf16
convolutions, and on the course's 2-core machine that made every family's step 10-24x *slower* (see
``benchmarks/results/throughput_cpu.json``); on CPUs with AVX512-BF16 or AMX it is faster.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path
from typing import ContextManager, Dict, Optional

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_MEASURED: Dict[str, bool] = {}  # this process's answers, by machine key


def resolve(precision: str, device: torch.device) -> str:
    """``precision`` made concrete for ``device``: 'fp32', 'bf16' or 'fp16'; a ValueError says what to use instead."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    kind = torch.device(device).type
    if precision == "auto":
        if kind == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if kind == "cpu" and bf16_faster_on_cpu() else "fp32"
    if precision == "fp16" and kind != "cuda":
        raise ValueError(f"precision 'fp16' needs a CUDA device (its gradient scaler is CUDA's), got {kind}; "
                         "use 'bf16' or 'auto' on a CPU")
    if precision == "bf16" and kind not in ("cpu", "cuda"):
        raise ValueError(f"precision 'bf16' runs on CPU and CUDA only, got {kind}; use 'fp32'")
    if precision == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU does not support bf16; use precision 'fp16' (with its gradient scaler) or 'auto'")
    return precision


def autocast(precision: str, device: torch.device) -> ContextManager:
    """The context a forward pass runs in: ``torch.autocast`` for bf16/fp16, a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[precision])


def grad_scaler(precision: str, device: torch.device) -> Optional[torch.amp.GradScaler]:
    """A fresh ``GradScaler`` for fp16 on CUDA, else None (bf16 and fp32 need none)."""
    return torch.amp.GradScaler(torch.device(device).type) if precision == "fp16" else None


def update(opt: torch.optim.Optimizer, scaler: Optional[torch.amp.GradScaler], loss: torch.Tensor, net: nn.Module,
           norm: bool = False) -> Optional[float]:
    """Backward and one step of ``opt``, through ``scaler`` when there is one (fp16); with ``norm``, the gradient
    norm of ``net``'s parameters, unscaled, taken before the step."""
    opt.zero_grad(set_to_none=True)
    (loss if scaler is None else scaler.scale(loss)).backward()
    value = None
    if norm:
        if scaler is not None:
            scaler.unscale_(opt)
        grads = [p.grad.detach().norm(2) for p in net.parameters() if p.grad is not None]
        value = float(torch.linalg.vector_norm(torch.stack(grads))) if grads else 0.0
    if scaler is None:
        opt.step()
    else:  # skips the step when a gradient overflowed, and adapts the scale
        scaler.step(opt)
        scaler.update()
    return value


# -- auto on a CPU: measure once ------------------------------------------------------------------

def bf16_faster_on_cpu(refresh: bool = False) -> bool:
    """Whether a bf16-autocast training step of a small conv net beats fp32 on this CPU, at this thread count.

    Measured once (well under a second where bf16 is fast, a few seconds where it is emulated) and cached
    in memory and in ``cache_file()``, keyed by torch version, CPU model and thread count; ``refresh``
    measures again. A cache that cannot be written is skipped silently: the answer is still returned.
    """
    key = machine_key()
    if not refresh and key in _MEASURED:
        return _MEASURED[key]
    cached = {} if refresh else _read_cache()
    if key not in cached:
        fp32, bf16 = _step_seconds(None), _step_seconds(torch.bfloat16)
        cached[key] = {"bf16_faster": bf16 < 0.9 * fp32, "fp32_s": round(fp32, 5), "bf16_s": round(bf16, 5)}
        _write_cache(cached)
    _MEASURED[key] = bool(cached[key]["bf16_faster"])
    return _MEASURED[key]


def machine_key() -> str:
    """What the measurement depends on: torch version, CPU model, torch threads."""
    return f"torch {torch.__version__} | {_cpu_name()} | {torch.get_num_threads()} threads"


def cache_file() -> Path:
    """``$GANLIB_CACHE/precision.json``, default ``~/.cache/ganlib/precision.json``."""
    root = os.environ.get("GANLIB_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ganlib"
    return Path(root) / "precision.json"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _step_seconds(dtype: Optional[torch.dtype], repeats: int = 3) -> float:
    """Best-of-``repeats`` time of one forward + backward of a DCGAN-like discriminator (32 px, width 32)."""
    with torch.random.fork_rng(devices=[]):  # measuring must not move the caller's random stream
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 32, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 4, 2, 1),
                            nn.BatchNorm2d(64), nn.LeakyReLU(0.2), nn.Conv2d(64, 1, 8))
        x = torch.randn(32, 3, 32, 32)
    context = (lambda: torch.autocast("cpu", dtype=dtype)) if dtype else contextlib.nullcontext
    best = float("inf")
    for i in range(repeats + 1):  # the first call warms up oneDNN
        start = time.perf_counter()
        with context():
            loss = net(x).float().mean()
        loss.backward()
        if i:
            best = min(best, time.perf_counter() - start)
    return best


def _read_cache() -> Dict[str, dict]:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(table: Dict[str, dict]) -> None:
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        tmp.replace(path)
    except OSError:
        pass
