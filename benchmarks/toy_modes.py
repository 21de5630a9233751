"""Mode coverage on the 2-D ring and grid (VEEGAN/PacGAN protocol) for every loss in chapters 02-05.

Each run trains a 3x128 MLP generator/discriminator pair (z in R^2) with one loss, draws 2,500 samples
and counts modes / high-quality samples / reverse KL with ``ganlib.metrics.mode_stats``; we report the
mean and std over seeds beside the published rows. HQ is in percent (a perfect sampler scores 98.9 %).

    python benchmarks/toy_modes.py                 # full: 5 seeds, writes benchmarks/results/toy_modes.json
    python benchmarks/toy_modes.py --scale smoke   # CI: a few steps, checks it runs, writes nothing

Losses: ``ns``, ``minimax``, ``lsgan`` use DCGAN's Adam (2e-4, 0.5, 0.999); ``wgan`` is Arjovsky et al.'s
RMSprop 5e-5, c = 0.01, n_critic 5; ``wgan_gp`` is gan_toy.py's Adam 1e-4 (0.5, 0.9), n_critic 5, lambda 0.1.
``ns_tips`` is the non-saturating GAN with the tips of chapter 05 that helped here: LeakyReLU(0.2) in D,
Adam 2e-3, the learning rate decayed linearly to 1 % over the second half, and an EMA of G (0.99).
``ns_tips`` runs 8,000 steps (about a minute of one CPU core); the published-settings baselines get
3,000 steps (``wgan`` 1,000 and ``wgan_gp`` 600 generator steps with 5 critic steps each), roughly 20-25 s of
one core, so that the whole table fits an hour of a shared 2-core machine. The JSON is rewritten after
every finished (dataset, loss) group, so an interrupted run keeps what it finished.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganlib.experiments.toy import ToyConfig, published_defaults, summarise, train_toy  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "toy_modes.json"
DATASETS = ("ring", "grid")
LOSS_ORDER = ("ns_tips", "ns", "lsgan", "wgan_gp", "minimax", "wgan")  # run order: the target first

# Published rows, copied from each paper's Table 1 (VEEGAN, Srivastava et al. 2017; PacGAN, Lin et al. 2018;
# GDPP, Elfeki et al. 2019): modes, HQ %, reverse KL (None = not reported).
PUBLISHED = {
    "ring": [("VEEGAN T1: GAN", 1, 99.3, None), ("VEEGAN T1: VEEGAN", 8, 52.9, None),
             ("PacGAN T1: GAN", 6.3, 98.2, 0.45), ("PacGAN T1: PacGAN2", 7.9, 95.6, 0.07),
             ("GDPP T1: WGAN-GP", 6.8, 59.6, None), ("GDPP T1: GDPP", 8.0, 71.7, None)],
    "grid": [("VEEGAN T1: GAN", 3.3, 0.5, None), ("VEEGAN T1: VEEGAN", 24.6, 40, None),
             ("PacGAN T1: GAN", 17.3, 94.8, 0.70), ("PacGAN T1: PacGAN4", 24.8, 93.6, 0.04),
             ("GDPP T1: WGAN-GP", 24.2, 28.7, None), ("GDPP T1: GDPP", 24.8, 68.5, None)],
}


def config(loss: str, dataset: str, scale: str, seed: int) -> ToyConfig:
    """The benchmark's config for one (loss, dataset, seed)."""
    if loss == "ns_tips":
        cfg = ToyConfig(dataset=dataset, loss="ns", d_activation="leaky_relu", lr_g=2e-3, lr_d=2e-3,
                        lr_decay=0.5, ema_decay=0.99, steps=8000)
    else:
        steps = {"wgan": 1000, "wgan_gp": 600}.get(loss, 3000)
        cfg = published_defaults(loss, dataset, steps=steps)
    if scale == "smoke":
        cfg = cfg.replace(steps=20)
    return cfg.replace(seed=seed)


def _run(args) -> Dict[str, object]:
    import torch
    torch.set_num_threads(1)  # one core per worker: tiny MLPs gain nothing from more threads
    loss, dataset, scale, seed = args
    result = train_toy(config(loss, dataset, scale, seed))
    result.trainer = None  # models stay in the worker; only the scores travel back
    return {"loss": loss, "dataset": dataset, "result": result}


def main(argv: List[str] | None = None) -> Dict[str, Dict[str, Dict[str, float]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("smoke", "full"), default="full")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per (loss, dataset); default 5 (smoke: 1)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes, one CPU core each")
    parser.add_argument("--losses", default=",".join(LOSS_ORDER))
    parser.add_argument("--out", type=Path, default=None, help=f"JSON path (full default: {RESULTS})")
    args = parser.parse_args(argv)
    losses = [name.strip() for name in args.losses.split(",") if name.strip()]
    unknown = [name for name in losses if name not in LOSS_ORDER]
    if unknown:
        parser.error(f"unknown loss(es) {unknown}; choose from {', '.join(LOSS_ORDER)}")
    seeds = args.seeds or (1 if args.scale == "smoke" else 5)
    if seeds < 1 or args.workers < 1:
        parser.error("--seeds and --workers must be >= 1")
    jobs = [(loss, ds, args.scale, seed) for loss in losses for ds in DATASETS for seed in range(seeds)]
    out = args.out or (RESULTS if args.scale == "full" else None)
    start = time.perf_counter()
    done: List[Dict[str, object]] = []
    table: Dict[str, Dict[str, Dict[str, float]]] = {}

    def collect(item: Dict[str, object]) -> None:
        done.append(item)
        runs = [d["result"] for d in done if d["dataset"] == item["dataset"] and d["loss"] == item["loss"]]
        if len(runs) < seeds:
            return
        s = summarise(runs)
        row = {k: s[k] for k in ("modes_mean", "modes_std", "hq_mean", "hq_std", "rkl_mean", "seeds", "steps",
                                 "seconds_per_run")}
        if not math.isfinite(row["rkl_mean"]):  # some seed had no HQ sample at all: KL undefined, JSON null
            row["rkl_mean"] = None
        table.setdefault(item["dataset"], {})[item["loss"]] = row
        print(f"{item['dataset']:5s} {item['loss']:8s} done after {time.perf_counter() - start:.0f} s", flush=True)
        if out is not None:
            ordered = {ds: {l: table[ds][l] for l in losses if l in table.get(ds, {})} for ds in DATASETS}
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(ordered, indent=2) + "\n")

    if args.workers == 1:
        for job in jobs:
            collect(_run(job))
    else:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for item in pool.imap_unordered(_run, jobs, chunksize=1):
                collect(item)
    table = {ds: {l: table[ds][l] for l in losses} for ds in DATASETS}
    print(report(table))
    print(f"total wall time {time.perf_counter() - start:.0f} s with {args.workers} worker(s)")
    if out is not None:
        print(f"wrote {out}")
    return table


def report(table: Dict[str, Dict[str, Dict[str, float]]]) -> str:
    """The results beside the published rows, as a plain-text table."""
    lines = []
    for ds, rows in table.items():
        lines.append(f"\n{ds}: {'method':<22} {'modes':>12} {'HQ %':>13} {'rev. KL':>8} {'s/run':>6}")
        for name, m, hq, kl in PUBLISHED[ds]:
            lines.append(f"{'':6}{name:<22} {m:>12} {hq:>13} {'' if kl is None else kl:>8}")
        for loss, r in rows.items():
            lines.append(f"{'':6}{'ours: ' + loss:<22} {r['modes_mean']:6.1f} ± {r['modes_std']:3.1f} "
                         f"{r['hq_mean']:6.1f} ± {r['hq_std']:4.1f} {_kl(r['rkl_mean'])} {r['seconds_per_run']:6.1f}")
    return "\n".join(lines)


def _kl(value) -> str:
    return f"{'inf':>8}" if value is None else f"{value:8.3f}"


if __name__ == "__main__":
    main()
