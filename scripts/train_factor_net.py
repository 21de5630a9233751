"""Train the shapes factor network shipped as data/factor_net.pt (deterministic; CPU, one thread, about a minute).

    python scripts/train_factor_net.py            # train, report held-out scores, write weights + checksum
    python scripts/train_factor_net.py --check    # only evaluate the shipped weights

The network is ``ganlib.experiments.stylegan.FactorNet``, trained on fresh procedural renders
(``ganlib.data.shapes``, an endless supply, so no held-out split is needed beyond a separate seed). Chapter 10
and the StyleGAN reference model are measured with it: shape confidence, factor coverage, the factor-feature
Fréchet distance and which factors each layer range carries. After writing the weights the script records
their sha256 in ``ganlib/experiments/stylegan.py``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganlib.experiments import stylegan as lab  # noqa: E402
from ganlib.metrics.classifier import ship_weights  # noqa: E402

STEPS = 3000
SEED = 2024
MIN_SHAPE_ACCURACY = 0.99  # real renders' shapes must be read almost perfectly, or the scores built on it mislead


def show(scores: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in scores.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only evaluate the shipped weights")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: bitwise repeatable, and fastest on a shared 2-core machine
    if args.check:
        print("held-out scores (accuracy / R^2):", show(lab.score_factor_net(lab.load_factor_net("cpu"))))
        return
    start = time.time()
    torch.use_deterministic_algorithms(True)
    net, scores = lab.train_factor_net(STEPS, seed=SEED)
    print(f"trained {STEPS} steps in {time.time() - start:.0f} s; held-out scores (accuracy / R^2): {show(scores)}")
    if scores["shape"] < MIN_SHAPE_ACCURACY:
        raise SystemExit(f"shape accuracy below {MIN_SHAPE_ACCURACY}: weights NOT written")
    ship_weights(net, lab.factor_net_path(), lab.__file__, "FACTOR_NET_SHA256")


if __name__ == "__main__":
    main()
