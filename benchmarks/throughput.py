"""Training throughput of each model family on this machine's device, fp32 (and bf16 autocast on CUDA).

    python benchmarks/throughput.py            # every family that exists, a few seconds each

Times whole Trainer steps (n_critic D steps + one G step) after a warm-up, and prints samples/s.
Compare numbers only within one run: machines here are shared and noisy.
"""
from __future__ import annotations

import argparse
import importlib
import time
from typing import Callable, Dict, List, Tuple

import torch

import ganlib
from ganlib import data, losses
from ganlib.models import MLPDiscriminator, MLPGenerator
from ganlib.train import Trainer


def toy_models() -> Tuple[torch.nn.Module, torch.nn.Module, object, dict]:
    toy = data.toy("grid")
    return (MLPGenerator(hidden=512, depth=3), MLPDiscriminator(hidden=512, depth=3),
            data.SamplerSource(toy.sample, 256, device=ganlib.device()), {})


def image_source(channels: int, size: int, batch: int):
    if channels == 1:
        x, _ = data.mnist(size=size)
    else:
        x = data.shapes(2048, size=size).images
    return data.TensorSource(x, batch_size=batch, device=ganlib.device())


def optional(module: str, build: Callable[[object], Tuple]) -> Callable[[], Tuple]:
    def make():
        return build(importlib.import_module(module))
    return make


CASES: Dict[str, Callable[[], Tuple]] = {
    "toy MLP 3x512, batch 256": toy_models,
    "DCGAN 32px, batch 64": optional("ganlib.models.dcgan", lambda m: (
        m.DCGANGenerator(image_size=32, channels=1), m.DCGANDiscriminator(image_size=32, channels=1),
        image_source(1, 32, 64), {})),
}


def bench(name: str, make: Callable[[], Tuple], seconds: float, bf16: bool) -> str:
    G, D, source, extra = make()
    trainer = Trainer(G, D, source, d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating,
                      progress=False, log_every=10**9, **extra)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with ctx:
        trainer.fit(5)  # warm-up (cudnn autotune, allocator)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        start, steps = time.perf_counter(), 5
        while time.perf_counter() - start < seconds:
            steps += 5
            trainer.fit(steps)
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    batch = source.batch_size
    return f"| {name} | {'bf16' if bf16 else 'fp32'} | {(steps - 5) / elapsed:8.1f} | {(steps - 5) * batch / elapsed:10.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per case")
    args = parser.parse_args()
    dev = ganlib.device()
    print(f"device: {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""))
    rows: List[str] = ["| model | precision | G steps/s | samples/s |", "|---|---|---|---|"]
    for name, make in CASES.items():
        for bf16 in ([False, True] if dev.type == "cuda" else [False]):
            try:
                rows.append(bench(name, make, args.seconds, bf16))
            except (ImportError, AttributeError, TypeError) as err:
                rows.append(f"| {name} | – | not available: {type(err).__name__}: {err} | |")
                break
    print("\n".join(rows))


if __name__ == "__main__":
    main()
