"""Train the evaluation classifier shipped as data/mnist_classifier.pt (deterministic; CPU, one thread, ~5 min).

    python scripts/train_classifier.py            # train, report held-out accuracy, write weights + checksum
    python scripts/train_classifier.py --check    # only evaluate the shipped weights

The network is ``ganlib.metrics.classifier.MnistCNN``, trained on the bundled train split (4,000 digits)
with small random affine jitter (rotation, scale, shift) so 4,000 digits are enough for >= 98 % on the
1,000 held-out digits. Seeds, thread count and batch order are fixed, so a rerun with the same torch on the
same kind of CPU reproduces the file bit for bit; elsewhere it reproduces the accuracy, not the bytes.
After writing the weights the script records their sha256 in ``ganlib/metrics/classifier.py``.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ganlib.data.mnist import mnist  # noqa: E402
from ganlib.metrics import classifier as clf  # noqa: E402

SEED = 2024
EPOCHS = 40
BATCH = 64
LR = 2e-3


def jitter(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random rotation (+-10 deg), scale (0.92-1.08) and shift (+-2 px) per image; background stays -1."""
    n = x.shape[0]
    angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(10)
    scale = 0.92 + 0.16 * torch.rand(n, generator=gen)
    shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2 / 14)  # 2 px in grid units (half-width 14 px)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros") - 1


@torch.no_grad()
def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    return float((net(x).argmax(1) == y).double().mean())


def train() -> clf.MnistCNN:
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    x, y = mnist(28, "train")
    net = clf.MnistCNN()
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=5e-4)
    steps = EPOCHS * (len(x) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps, pct_start=0.2)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        net.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(len(x) // BATCH):
            take = perm[i * BATCH:(i + 1) * BATCH]
            loss = F.cross_entropy(net(jitter(x[take], gen)), y[take])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % 5 == 0:
            print(f"epoch {epoch + 1:2d}/{EPOCHS}  last batch loss {loss.item():.4f}  "
                  f"train acc {accuracy(net, x[:1000], y[:1000]):.4f}", flush=True)
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only evaluate the shipped weights")
    args = parser.parse_args()
    torch.set_num_threads(1)  # one thread: bitwise repeatable, and fastest on a shared 2-core machine
    xh, yh = mnist(28, "heldout")
    if args.check:
        net = clf.load_classifier("cpu")
        print(f"held-out accuracy {accuracy(net, xh, yh):.4f} ({len(xh)} digits)")
        return
    start = time.time()
    net = train()
    acc = accuracy(net, xh, yh)
    print(f"held-out accuracy {acc:.4f} ({len(xh)} digits), trained in {time.time() - start:.0f} s")
    if acc < 0.98:
        raise SystemExit("held-out accuracy below 0.98: weights NOT written")
    clf.ship_weights(net, clf.classifier_path(), clf.__file__, "CLASSIFIER_SHA256")


if __name__ == "__main__":
    main()
