"""Train a chapter's reference model from scratch on the bundled data, then ship it to data/reference/.

    python scripts/reference.py dcgan            # train (or resume) and export
    python scripts/reference.py dcgan --steps 50 --out /tmp/ref   # a quick try that leaves data/ alone
    python scripts/reference.py --list
    make reference                               # all of them, two side by side

One CPU core is the budget the recipes are sized for (OMP_NUM_THREADS=1); a run checkpoints into
build/reference/NAME/ and a second call resumes it exactly. See ganlib/experiments/reference.py.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from ganlib.experiments import reference  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help="one of: " + ", ".join(sorted(reference.RECIPES)))
    parser.add_argument("--steps", type=int, help="stop after this many generator steps (default: the recipe's)")
    parser.add_argument("--out", type=Path, help="write the weights and manifest here instead of data/reference/")
    parser.add_argument("--runs", type=Path, help="checkpoint folder root (default build/reference/)")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar, only the evaluation lines")
    args = parser.parse_args()
    if args.list or not args.name:
        for name, r in sorted(reference.RECIPES.items()):
            print(f"{name:10s} chapter {r.chapter}: {r.steps} steps, batch {r.batch}, {r.data}")
        return
    if args.name not in reference.RECIPES:
        parser.error(f"unknown reference model {args.name!r}; choose one of {', '.join(sorted(reference.RECIPES))}")
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be a positive number of generator steps, got {args.steps}")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    reference.run(args.name, root=args.runs, out_dir=args.out, steps=args.steps, progress=not args.quiet,
                  log=lambda msg: print(msg, flush=True))


if __name__ == "__main__":
    main()
