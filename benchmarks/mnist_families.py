"""DCGAN vs PGGAN vs StyleGAN on the bundled MNIST at one step budget: how fast each family learns.

    python benchmarks/mnist_families.py --scale smoke   # CI: checks that it runs (writes nothing)
    python benchmarks/mnist_families.py                 # small (CPU, ~10 min on one core): writes the JSON
    python benchmarks/mnist_families.py --scale full    # GPU: wider networks, 5,000 steps

Same data (the 4,000 bundled training digits, padded to 32x32), same batch size and the same number of
generator steps for each family, each with its paper's loss and optimiser: DCGAN (Radford et al. 2016: Adam
2e-4, beta1 0.5, BCE), PGGAN (Karras et al. 2018: WGAN-GP, fade-in, the schedule spread evenly over the
budget) and StyleGAN (Karras et al. 2019: non-saturating loss, lazy R1, Adam 2e-3 with beta1 0). The score is
the Fréchet distance in the course's MNIST classifier's features (``ganlib.metrics.classifier``) between EMA
samples and the held-out digits, measured every ``every`` steps, so the JSON holds a learning curve; the
real-vs-real row (training digits vs held-out digits) is the floor, ``"kind": "reference"``. At these
budgets this ranks *speed of learning*, not the quality each family reaches (chapter 10, section 9, reads
this file). Writes ``benchmarks/results/mnist_families.json`` and, beside it, a PNG of 16 samples each.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ganlib  # noqa: E402
from ganlib import losses  # noqa: E402
from ganlib.checkpoint import atomic_write  # noqa: E402
from ganlib.data import TensorSource, mnist  # noqa: E402
from ganlib.experiments.progressive import ProgressiveSchedule, make_trainer  # noqa: E402
from ganlib.hooks import TimedEvaluate  # noqa: E402
from ganlib.metrics.classifier import classifier_fd  # noqa: E402
from ganlib.models import dcgan, pggan  # noqa: E402
from ganlib.models.stylegan import StyleDiscriminator, StyleGenerator  # noqa: E402
from ganlib.reference import generate  # noqa: E402
from ganlib.train import Trainer  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "mnist_families.json"
SETTINGS = {  # generator steps, batch, network width, FD every, FD sample size, R1 gamma, EMA decay
    "smoke": dict(steps=6, batch=16, width="tiny", every=3, n_eval=200, gamma=4.0, ema=0.9),
    "small": dict(steps=1000, batch=16, width="small", every=200, n_eval=500, gamma=4.0, ema=0.99),
    "full": dict(steps=5000, batch=64, width="full", every=500, n_eval=1000, gamma=10.0, ema=0.999),
}
WIDTHS = {  # per family and width: DCGAN base width, PGGAN maps per level (4x4..32x32), StyleGAN fmap_base/max
    "tiny": dict(dcgan=8, pggan=(8, 8, 8, 8), stylegan=dict(fmap_base=128, fmap_max=8)),
    "small": dict(dcgan=32, pggan=(64, 64, 32, 16), stylegan=dict(fmap_base=512, fmap_max=32)),
    "full": dict(dcgan=64, pggan=(128, 128, 64, 32), stylegan=dict(fmap_base=2048, fmap_max=128)),
}


def trainers(data: TensorSource, cfg: dict, device: torch.device) -> Dict[str, Callable[[], Trainer]]:
    """One factory per family at 32x32 grey, each with its paper's loss and optimiser (built after seeding)."""
    w = WIDTHS[cfg["width"]]

    def dcgan_trainer() -> Trainer:
        G = dcgan.Generator(z_dim=100, image_size=32, channels=1, width=w["dcgan"])
        D = dcgan.Discriminator(image_size=32, channels=1, width=w["dcgan"])
        return Trainer(G, D, data, d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating,
                       lr=2e-4, betas=(0.5, 0.999), ema_decay=cfg["ema"], progress=False, device=device)

    def pggan_trainer() -> Trainer:
        G = pggan.PGGANGenerator(img_channels=1, resolution=32, channels=w["pggan"])
        D = pggan.PGGANDiscriminator(img_channels=1, resolution=32, channels=w["pggan"])
        # every fade and every stabilisation gets an equal share of the budget
        schedule = ProgressiveSchedule(G.n_levels, stabilize_steps=max(1, cfg["steps"] // (2 * G.n_levels - 1)))
        return make_trainer(G, D, data, schedule, ema_decay=cfg["ema"], progress=False, device=device)

    def stylegan_trainer() -> Trainer:
        G = StyleGenerator(img_channels=1, const_init="randn", **w["stylegan"])
        D = StyleDiscriminator(img_channels=1, **w["stylegan"])
        return Trainer(G, D, data, d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating,
                       d_penalty=losses.r1_regularizer(cfg["gamma"]), d_penalty_every=4, lr=2e-3,
                       betas=(0.0, 0.99), ema_decay=cfg["ema"], progress=False, device=device)

    return {"DCGAN": dcgan_trainer, "PGGAN": pggan_trainer, "StyleGAN": stylegan_trainer}


@torch.no_grad()
def samples(trainer: Trainer, n: int, seed: int) -> Tensor:
    """``n`` EMA samples in [-1, 1] as every model in the course is scored (``ganlib.reference.generate``): latents
    and StyleGAN's noise images from their own seeded RNG, so evaluating does not move training's."""
    G = trainer.G_ema if trainer.G_ema is not None else trainer.G
    return generate(G, "style" if isinstance(G, StyleGenerator) else "unconditional", n, seed=seed)


def run(scale: str, seed: int = 0, families: Optional[List[str]] = None) -> Dict[str, dict]:
    """Train each family for the scale's budget from the same seed; FD curves, seconds and 16 samples each."""
    cfg = SETTINGS[scale]
    device = ganlib.device()
    x_train, _ = mnist(size=32, split="train")
    x_held, _ = mnist(size=32, split="heldout")
    held = x_held[:cfg["n_eval"]].to(device)  # the held-out split is interleaved by class: its head is balanced
    # the train split is sorted by class: a random n_eval of it, not its head (0s, 1s and 2s)
    pick = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:cfg["n_eval"]]
    out: Dict[str, dict] = {"real_vs_real": {"fd": round(classifier_fd(x_train[pick].to(device), held), 3),
                                             "n": cfg["n_eval"], "kind": "reference"}}
    data = TensorSource(x_train, batch_size=cfg["batch"], seed=seed, device=device)
    for name, make in trainers(data, cfg, device).items():
        if families and name not in families:
            continue
        ganlib.seed_everything(seed)
        trainer = make()
        def measure(tr: Trainer) -> Dict[str, float]:
            fd = classifier_fd(samples(tr, cfg["n_eval"], seed + 1).to(device), held)
            return {"fd": round(fd, 3), "seconds": round(curve.seconds, 1)}

        # TimedEvaluate counts training steps only, not the FD's; in CPU time of this process, because on a shared
        # machine wall time measures the neighbours and a paused run would count its pause
        curve = TimedEvaluate(measure, every=cfg["every"], clock=time.process_time)
        trainer.hooks.append(curve)
        trainer.fit(cfg["steps"])
        rec = curve.records
        out[name] = {"curve": {"step": rec["step"], "fd": rec["fd"], "seconds": rec["seconds"]},
                     "fd": rec["fd"][-1], "seconds": rec["seconds"][-1], "steps": trainer.step,
                     "batch": cfg["batch"], "width": cfg["width"], "n": cfg["n_eval"], "seed": seed,
                     "kind": "model", "samples": samples(trainer, 16, seed + 2)}
    return out


def save(results: Dict[str, dict], scale: str, torch_threads: int, out: Path) -> None:
    """The JSON (atomically) and a PNG of each family's 16 samples, one row of 16 per family."""
    from torchvision.utils import save_image

    families = [k for k, r in results.items() if r["kind"] == "model"]
    grids = [results[k]["samples"] for k in families]
    table = {"scale": scale, "settings": SETTINGS[scale], "torch_threads": torch_threads, "seconds": "process CPU time",
             "torch": torch.__version__, "device": str(ganlib.device()),
             "results": {k: {f: v for f, v in r.items() if f != "samples"} for k, r in results.items()}}
    atomic_write(out, lambda fh: fh.write((json.dumps(table, indent=2) + "\n").encode()))
    if grids:
        save_image(torch.cat(grids), out.with_suffix(".png"), nrow=16, normalize=True, value_range=(-1, 1), padding=1)


def main(argv: Optional[List[str]] = None) -> Dict[str, dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=tuple(SETTINGS), default=None, help="default: ganlib.scale()")
    parser.add_argument("--families", nargs="*", default=None, help="DCGAN, PGGAN and/or StyleGAN (default: all)")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON path (default {RESULTS}; smoke: none)")
    args = parser.parse_args(argv)
    scale = args.scale or ganlib.scale()
    unknown = set(args.families or ()) - {"DCGAN", "PGGAN", "StyleGAN"}
    if unknown:
        parser.error(f"unknown families {sorted(unknown)}; choose from DCGAN, PGGAN, StyleGAN")
    out = args.out if args.out is not None else (None if scale == "smoke" else RESULTS)
    results = run(scale, families=args.families)
    print(f"MNIST, 32x32, {SETTINGS[scale]['steps']} generator steps of {SETTINGS[scale]['batch']}, "
          f"FD at N = {SETTINGS[scale]['n_eval']} (real vs real {results['real_vs_real']['fd']:.2f})")
    for name, r in results.items():
        if r["kind"] == "model":
            print(f"{name:10s} FD " + " -> ".join(f"{v:.1f}" for v in r["curve"]["fd"]) + f"   ({r['seconds']:.0f} s)")
    if out is not None:
        save(results, scale, torch.get_num_threads(), out)
        print(f"wrote {out} and {out.with_suffix('.png')}")
    return results


if __name__ == "__main__":
    main()
