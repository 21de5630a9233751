"""Stacked MNIST mode coverage: how many of the 1,000 digit triples a DCGAN draws, and how evenly.

    python benchmarks/stacked_mnist.py --scale smoke      # CI: checks that it runs (writes nothing)
    nice python benchmarks/stacked_mnist.py --scale small # CPU, ~7 min; merges into the results JSON
    python benchmarks/stacked_mnist.py --scale full       # DCGAN and PacDCGAN2, ~70 min on one CPU core

Protocol (VEEGAN, Srivastava et al. 2017, Table 2; PacGAN, Lin et al. 2018, Table 2): each training image stacks three
random bundled digits in R, G, B; after training, 25,600 generated images are labelled by classifying
each channel with the shipped MNIST classifier; *modes* = distinct triples seen, *KL* =
KL(p_gen || uniform over 1,000) = sum p log(1000 p). A perfect sampler with 25,600 draws scores
1,000 modes and KL ~ 0.02 (finite-sample floor); we also score real stacked digits as that floor.

Deviations from the papers, all deliberate: the digits are the 4,000 bundled training digits (not
60,000); z ~ N(0, I) rather than U(-1, 1); the networks are ``ganlib.models.dcgan`` at 28 px.
PacDCGAN2 (Lin et al. 2018) packs two samples into one discriminator input along the channels. At
``small`` the batch is 16 (many cheap steps on a CPU); ``full`` uses the papers' batch of 64 with
width 32 (the papers' width 64 costs 0.40 s a step on one core against 0.14 s: 30,000 steps would
take 3.4 hours a model), 15,000 steps each, so both models fit in about 70 minutes on one CPU core.
Results go to ``benchmarks/results/stacked_mnist.json`` as {"<model>_<scale>": {modes, kl, samples,
steps, batch, width, seed, scale, seconds, kind}}; real stacked digits are ``"kind": "reference"``
(the ceiling), every trained network ``"kind": "model"``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ganlib  # noqa: E402
from ganlib import losses  # noqa: E402
from ganlib.checkpoint import atomic_write  # noqa: E402
from ganlib.data import SamplerSource  # noqa: E402
from ganlib.data.stacked import images_only, stacked_mnist, stacked_sampler  # noqa: E402
from ganlib.metrics.classifier import stacked_mode_stats  # noqa: E402
from ganlib.models.dcgan import Discriminator, Generator  # noqa: E402
from ganlib.train import Trainer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "stacked_mnist.json"
PUBLISHED = [  # (source, model, modes, KL); T = table of VEEGAN (Srivastava et al. 2017),
    # PacGAN (Lin et al. 2018) or GDPP (Elfeki et al. 2019)
    ("VEEGAN T2", "DCGAN", 99, 3.4),
    ("PacGAN T2", "PacDCGAN2", 1000, 0.06),
    ("GDPP T3", "WGAN-GP", 995, 0.148),
]
SETTINGS = {  # steps, batch, width, samples, models
    "smoke": dict(steps=4, batch=16, width=8, samples=512, models=("dcgan",)),
    "small": dict(steps=3000, batch=16, width=32, samples=25_600, models=("dcgan",)),  # CPU: many cheap steps
    "full": dict(steps=15_000, batch=64, width=32, samples=25_600, models=("dcgan", "pacdcgan2")),  # sized for 1 core
}


class Packed(nn.Module):
    """PacGAN: D judges ``pac`` samples at once, stacked along the channel axis (N, C, S, S) -> (N / pac,)."""

    def __init__(self, D: nn.Module, pac: int) -> None:
        super().__init__()
        self.D, self.pac = D, pac

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        if n % self.pac:
            raise ValueError(f"batch size {n} must be a multiple of pac={self.pac}")
        return self.D(x.reshape(n // self.pac, self.pac * c, h, w))


def build(model: str, width: int) -> tuple:
    G = Generator(z_dim=100, image_size=28, channels=3, width=width)
    if model == "dcgan":
        return G, Discriminator(image_size=28, channels=3, width=width)
    if model == "pacdcgan2":
        return G, Packed(Discriminator(image_size=28, channels=6, width=width), pac=2)
    raise ValueError(f"unknown model {model!r}; choose dcgan or pacdcgan2")


@torch.no_grad()
def generate(G: nn.Module, n: int, device: torch.device, batch: int = 256) -> Tensor:
    # Sampled in train mode (batch statistics), as pytorch/examples' DCGAN does; batches of 256.
    out = [G(torch.randn(min(batch, n - i), G.z_dim, device=device)).cpu() for i in range(0, n, batch)]
    return torch.cat(out)


def run(model: str, scale: str, seed: int = 0, budget: float = float("inf")) -> dict:
    """Train ``model`` for the scale's steps (or until ``budget`` seconds of training), then score it."""
    cfg = SETTINGS[scale]
    dev = ganlib.device()
    torch.backends.cudnn.benchmark = dev.type == "cuda"
    ganlib.seed_everything(seed)
    G, D = build(model, cfg["width"])
    source = SamplerSource(images_only(stacked_sampler(28, "train")), batch_size=cfg["batch"], seed=seed, device=dev)
    trainer = Trainer(G, D, source, d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating,
                      lr=2e-4, betas=(0.5, 0.999), log_every=100, progress=sys.stderr.isatty(), device=dev)
    start, start_cpu = time.time(), time.process_time()
    while trainer.step < cfg["steps"] and time.time() - start < budget:
        trainer.fit(min(cfg["steps"], trainer.step + 1000))
    stats = stacked_mode_stats(generate(trainer.G, cfg["samples"], dev))
    return {"modes": stats["modes"], "kl": round(stats["kl"], 4), "samples": cfg["samples"], "steps": trainer.step,
            "batch": cfg["batch"], "width": cfg["width"], "seed": seed, "scale": scale,
            "seconds": round(time.time() - start, 1), "cpu_seconds": round(time.process_time() - start_cpu, 1),
            "kind": "model"}  # wall time counts a shared machine's neighbours; CPU time is this process's own


def main() -> None:
    parser = argparse.ArgumentParser(description="Stacked MNIST modes and KL for ganlib's DCGAN")
    parser.add_argument("--scale", choices=tuple(SETTINGS), default=None, help="default: ganlib.scale()")
    parser.add_argument("--models", nargs="*", default=None, help="dcgan and/or pacdcgan2 (default per scale)")
    parser.add_argument("--budget", type=float, default=float("inf"),
                        help="stop training a model after this many seconds (checked every 1,000 steps)")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON to merge into (default {RESULTS}; smoke: none)")
    args = parser.parse_args()
    scale = args.scale or ganlib.scale()
    cfg = SETTINGS[scale]
    out = args.out if args.out is not None else (None if scale == "smoke" else RESULTS)
    results = {}
    real = stacked_mode_stats(stacked_mnist(cfg["samples"], split="heldout", seed=1)[0])
    results[f"real_heldout_{scale}"] = {"modes": real["modes"], "kl": round(real["kl"], 4), "samples": cfg["samples"],
                                        "steps": 0, "scale": scale, "seconds": 0.0,
                                        "kind": "reference"}  # the ceiling a perfect sampler reaches, not a model
    for model in args.models or cfg["models"]:
        results[f"{model}_{scale}"] = run(model, scale, budget=args.budget)
        if out is not None:  # after each model, so a long run that is cut off keeps what finished
            merge(out, results)
    print(f"\nStacked MNIST, {cfg['samples']} samples, device {ganlib.device()}")
    print(f"{'source':<12} {'model':<24} {'modes':>6} {'KL':>7} {'steps':>7} {'seconds':>8}")
    for source, model, modes, kl in PUBLISHED:
        print(f"{source:<12} {model:<24} {modes:>6} {kl:>7.3f} {'':>7} {'':>8}")
    for key, r in results.items():
        print(f"{'ganlib':<12} {key:<24} {r['modes']:>6} {r['kl']:>7.3f} {r['steps']:>7} {r['seconds']:>8}")
    if out is not None:
        print(f"merged into {out}")


def merge(out: Path, results: dict) -> None:
    merged = json.loads(out.read_text()) if out.is_file() else {}
    merged.update(results)
    atomic_write(out, lambda fh: fh.write((json.dumps(merged, indent=2, sort_keys=True) + "\n").encode()))


if __name__ == "__main__":
    main()
