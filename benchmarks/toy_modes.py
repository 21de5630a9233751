"""Mode coverage on the 2-D ring and grid (VEEGAN/PacGAN protocol) for every loss in chapters 02-05.

Each run trains a 3x128 MLP generator/discriminator pair (z in R^2) with one configuration, draws 2,500 samples
and counts modes / high-quality samples / reverse KL with ``ganlib.metrics.mode_stats``; we report the mean,
std and median over seeds beside the published rows, and every seed's numbers (``runs``). HQ is in percent
(a perfect sampler scores 98.9 %).

    python benchmarks/toy_modes.py                 # full: 5 seeds of everything, into benchmarks/results/toy_modes.json
    python benchmarks/toy_modes.py --losses ns_tips_drs --seeds 10          # one configuration, 10 seeds, merged in
    python benchmarks/toy_modes.py --losses ns_tips_drs --datasets grid_3x3,ring_5   # the hidden geometries
    python benchmarks/toy_modes.py --scale smoke   # CI: a few steps, checks it runs, writes nothing

Baselines: ``ns``, ``minimax``, ``lsgan`` use DCGAN's Adam (2e-4, 0.5, 0.999); ``wgan`` is Arjovsky et al.'s
RMSprop 5e-5, c = 0.01, n_critic 5; ``wgan_gp`` is gan_toy.py's Adam 1e-4 (0.5, 0.9), n_critic 5, lambda 0.1.
They get 3,000 steps (``wgan`` 1,000 and ``wgan_gp`` 600 generator steps with 5 critic steps each).
``ns_tips`` is the non-saturating GAN with the tips of chapter 05 that helped here: LeakyReLU(0.2) in D,
Adam 2e-3, the learning rate decayed linearly to 1 % over the second half (the lr-schedule lever), and an EMA
of G (0.99), for 8,000 steps: 113 s (grid) and 127 s (ring) of CPU time for seed 0 here, measured beside two
other busy processes on a 2-core EPYC (wall 303 s and 445 s there). Each further lever is its own row:

* ``ns_tips_long``  -- twice the steps (16,000), the decay still over the second half;
* ``ns_tips_pac2`` / ``ns_tips_pac4`` -- PacGAN packing of D (Lin et al. 2018), the published method we compare
  with (at the tips' Adam 2e-3, pac 4 lost the grid on seed 0: 19 modes, 1.9 % HQ);
* ``<name>_drs``    -- the same runs, then the 2,500 scored samples drawn by discriminator rejection sampling
  (Azadi et al. 2019, Alg. 1) with the trained D, a fraction of a second per run. A ``_drs`` job also writes
  the plain generator's row (``<name>``) from the same runs, so the two always sit side by side. Seed 0 of
  ``ns_tips``: ring 97.9 -> 99.0 % HQ, reverse KL 0.0057 -> 0.0011; grid 94.6 -> 97.4 %, 0.107 -> 0.088, but
  still 23 of 25 modes: DRS cannot bring back a mode G lost, and one lost grid mode alone costs log(25/24) = 0.041.

``--datasets`` other than ring/grid (``grid_3x3``, ``ring_5``: geometries no recipe was tuned on) go under the
JSON's ``hidden`` key. The JSON is merged into, not rewritten: a finished (dataset, configuration) group
replaces only its own row, atomically (temp file + rename), so an interrupted run keeps what it finished.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganlib.checkpoint import atomic_write  # noqa: E402
from ganlib.experiments.toy import (ToyConfig, ToyResult, drs_score, published_defaults, summarise,  # noqa: E402
                                    train_toy)

RESULTS = ROOT / "benchmarks" / "results" / "toy_modes.json"
DATASETS = ("ring", "grid")
HIDDEN = ("grid_3x3", "ring_5")  # held-out geometries (ganlib.data.toys): reported under "hidden"
TIPS = dict(loss="ns", d_activation="leaky_relu", lr_g=2e-3, lr_d=2e-3, lr_decay=0.5, ema_decay=0.99, steps=8000)
LEVERS: Dict[str, Dict[str, Any]] = {"ns_tips": {}, "ns_tips_long": dict(steps=16000), "ns_tips_pac2": dict(pac=2),
                                     "ns_tips_pac4": dict(pac=4)}
BASELINES = ("ns", "lsgan", "wgan_gp", "minimax", "wgan")
# ``_drs`` only on unpacked D's: DRS needs one score per sample
LOSS_ORDER = ("ns_tips_drs", "ns_tips", "ns_tips_long_drs", "ns_tips_long", "ns_tips_pac2", "ns_tips_pac4") + BASELINES

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


def config(name: str, dataset: str, scale: str, seed: int) -> ToyConfig:
    """The benchmark's config for one (configuration, dataset, seed); a ``_drs`` name trains its base's config."""
    name = name.removesuffix("_drs")
    if name in LEVERS:
        cfg = ToyConfig(dataset=dataset, **{**TIPS, **LEVERS[name]})
    else:
        steps = {"wgan": 1000, "wgan_gp": 600}.get(name, 3000)
        cfg = published_defaults(name, dataset, steps=steps)
    if scale == "smoke":
        cfg = cfg.replace(steps=20)
    return cfg.replace(seed=seed)


def _run(args) -> List[Dict[str, Any]]:
    """One seed: the plain generator's scores, and for a ``_drs`` name the rejection-sampled ones as well."""
    import torch
    torch.set_num_threads(1)  # one core per worker: tiny MLPs gain nothing from more threads
    name, dataset, scale, seed = args
    result = train_toy(config(name, dataset, scale, seed), log_every=500)
    plain = {"name": name.removesuffix("_drs"), "dataset": dataset, "seed": seed, "steps": result.config.steps,
             "stats": result.stats, "seconds": result.seconds}
    if not name.endswith("_drs"):
        return [plain]
    start = time.perf_counter()
    stats = drs_score(result.trainer)
    seconds = result.seconds + time.perf_counter() - start  # what the DRS sample set cost, training included
    return [plain, {**plain, "name": name, "stats": stats, "seconds": seconds}]


def row(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One table row from a configuration's per-seed results: mean, std and median over seeds, and each seed."""
    s = summarise([ToyResult(ToyConfig(steps=r["steps"]), None, r["stats"], r["seconds"]) for r in runs])
    out: Dict[str, Any] = {k: _finite(s[k]) for k in ("modes_mean", "modes_std", "modes_median", "hq_mean", "hq_std",
                                                      "hq_median", "rkl_mean", "rkl_median")}
    out.update(seeds=s["seeds"], steps=s["steps"], seconds_per_run=s["seconds_per_run"])
    if "acceptance" in runs[0]["stats"]:
        out["acceptance_mean"] = statistics.fmean(r["stats"]["acceptance"] for r in runs)
    out["runs"] = [{"seed": r["seed"], "modes": r["stats"]["modes"], "hq": 100 * r["stats"]["hq"],
                    "rkl": _finite(r["stats"]["reverse_kl"]), "seconds": r["seconds"],
                    **({"acceptance": r["stats"]["acceptance"]} if "acceptance" in r["stats"] else {})}
                   for r in sorted(runs, key=lambda r: r["seed"])]
    return out


def _finite(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None  # a seed with no HQ sample: KL undefined, JSON null


def merge(path: Path, dataset: str, name: str, new_row: Dict[str, Any]) -> None:
    """Put one row into the JSON at ``path``, keeping every other row; atomic, so a crash leaves the old file."""
    table = json.loads(path.read_text()) if path.is_file() else {}
    section = table.setdefault("hidden", {}) if dataset not in DATASETS else table
    section.setdefault(dataset, {})[name] = new_row
    atomic_write(path, lambda fh: fh.write((json.dumps(table, indent=2) + "\n").encode()))


def main(argv: List[str] | None = None) -> Dict[str, Dict[str, Dict[str, Any]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=("smoke", "full"), default="full")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..n-1 per (configuration, dataset); "
                                                                "default 5 (smoke: 1)")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes, one CPU core each")
    parser.add_argument("--losses", default=",".join(LOSS_ORDER), help="configurations, comma-separated")
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"of {', '.join(DATASETS + HIDDEN)}")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON to merge into (full default: {RESULTS})")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.losses.split(",") if n.strip()]
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if [n for n in names if n not in LOSS_ORDER]:
        parser.error(f"unknown configuration(s) {[n for n in names if n not in LOSS_ORDER]}; "
                     f"choose from {', '.join(LOSS_ORDER)}")
    if [d for d in datasets if d not in DATASETS + HIDDEN]:
        parser.error(f"unknown dataset(s) {[d for d in datasets if d not in DATASETS + HIDDEN]}; "
                     f"choose from {', '.join(DATASETS + HIDDEN)}")
    seeds = args.seeds or (1 if args.scale == "smoke" else 5)
    if seeds < 1 or args.workers < 1:
        parser.error("--seeds and --workers must be >= 1")
    trained = [n for n in names if n + "_drs" not in names]  # a _drs job writes its base's row too
    jobs = [(n, ds, args.scale, seed) for n in trained for ds in datasets for seed in range(seeds)]
    out = args.out or (RESULTS if args.scale == "full" else None)
    start = time.perf_counter()
    done: Dict[tuple, List[Dict[str, Any]]] = {}
    table: Dict[str, Dict[str, Dict[str, Any]]] = {}

    def collect(items: List[Dict[str, Any]]) -> None:
        for item in items:
            runs = done.setdefault((item["dataset"], item["name"]), [])
            runs.append(item)
            if len(runs) < seeds:
                continue
            table.setdefault(item["dataset"], {})[item["name"]] = row(runs)
            print(f"{item['dataset']:8s} {item['name']:16s} done after {time.perf_counter() - start:.0f} s", flush=True)
            if out is not None:
                merge(out, item["dataset"], item["name"], table[item["dataset"]][item["name"]])

    if args.workers == 1:
        for job in jobs:
            collect(_run(job))
    else:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for items in pool.imap_unordered(_run, jobs, chunksize=1):
                collect(items)
    table = {ds: {n: table[ds][n] for n in LOSS_ORDER if n in table.get(ds, {})} for ds in datasets}
    print(report(table))
    print(f"total wall time {time.perf_counter() - start:.0f} s with {args.workers} worker(s)")
    if out is not None:
        print(f"merged into {out}")
    return table


def report(table: Dict[str, Dict[str, Dict[str, Any]]]) -> str:
    """The results beside the published rows (ring and grid), as a plain-text table."""
    lines = []
    for ds, rows in table.items():
        lines.append(f"\n{ds}: {'method':<24} {'modes':>12} {'median':>6} {'HQ %':>13} {'median':>6} "
                     f"{'rev. KL':>8} {'median':>8} {'s/run':>6}")
        for name, m, hq, kl in PUBLISHED.get(ds, []):
            lines.append(f"{'':{len(ds) + 2}}{name:<24} {m:>12} {'':6} {hq:>13} {'':6} {'' if kl is None else kl:>8}")
        for name, r in rows.items():
            lines.append(f"{'':{len(ds) + 2}}{'ours: ' + name:<24} {r['modes_mean']:6.1f} ± {r['modes_std']:3.1f} "
                         f"{r['modes_median']:6.1f} {r['hq_mean']:6.1f} ± {r['hq_std']:4.1f} {r['hq_median']:6.1f} "
                         f"{_kl(r['rkl_mean'])} {_kl(r['rkl_median'])} {r['seconds_per_run']:6.1f}")
    return "\n".join(lines)


def _kl(value) -> str:
    return f"{'inf':>8}" if value is None else f"{value:8.3f}"


if __name__ == "__main__":
    main()
