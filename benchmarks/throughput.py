"""Training throughput of each model family on this machine's device, fp32 (and bf16 autocast on CUDA).

    python benchmarks/throughput.py            # every family that exists, a few seconds each

Times whole Trainer steps (n_critic D steps + one G step) after a warm-up, and prints samples/s.
Compare numbers only within one run: machines here are shared and noisy.
"""
from __future__ import annotations

import argparse
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


def wgan_gp_extra() -> dict:
    return dict(d_loss=lambda r, f: losses.critic_wasserstein(r, f) + 1e-3 * losses.drift_penalty(r),
                g_loss=losses.generator_wasserstein,
                d_penalty=lambda D, real, fake, y: 10 * losses.gradient_penalty(D, real, fake), n_critic=1,
                lr=1e-3, betas=(0.0, 0.99))


def dcgan():
    from ganlib.models import dcgan as m
    return m.Generator(image_size=32, channels=1), m.Discriminator(image_size=32, channels=1), image_source(1, 32, 64), {}


def pggan():
    from ganlib.models import pggan as m
    return m.PGGANGenerator(img_channels=1), m.PGGANDiscriminator(img_channels=1), image_source(1, 32, 64), wgan_gp_extra()


def stylegan():
    from ganlib.models import stylegan as m
    return (m.StyleGenerator(img_channels=3), m.StyleDiscriminator(img_channels=3), image_source(3, 32, 64),
            dict(d_penalty=m.r1_regularizer(1.0), d_penalty_every=16))


def stylegan_demod():
    from ganlib.models import stylegan as m
    return (m.StyleGenerator(img_channels=3, modulation="demod"), m.StyleDiscriminator(img_channels=3),
            image_source(3, 32, 64), dict(d_penalty=m.r1_regularizer(1.0), d_penalty_every=16))


CASES: Dict[str, Callable[[], Tuple]] = {
    "toy MLP 3x512, batch 256": toy_models,
    "DCGAN 32px MNIST, batch 64": dcgan,
    "PGGAN 32px (top level) WGAN-GP, batch 64": pggan,
    "StyleGAN 32px shapes, lazy R1, batch 64": stylegan,
    "StyleGAN, weight demodulation (StyleGAN2), batch 64": stylegan_demod,
}


def bench(name: str, make: Callable[[], Tuple], seconds: float, bf16: bool) -> str:
    G, D, source, extra = make()
    settings = dict(d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating)
    settings.update(extra)
    trainer = Trainer(G, D, source, progress=False, log_every=10**9, **settings)
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
            except Exception as err:  # a family or a precision that fails here is a row, not a crash
                rows.append(f"| {name} | – | not available: {type(err).__name__}: {err} | |")
                break
    print("\n".join(rows))


if __name__ == "__main__":
    main()
