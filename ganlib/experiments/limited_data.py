"""Chapter 10's limited-data experiment: what differentiable augmentation (DiffAugment) does at equal steps.

Zhao et al. 2020 ("Differentiable Augmentation for Data-Efficient GAN Training", Sec. 3 and Fig. 1) trace
the collapse of GANs on small datasets to the discriminator *memorising* its few real images: its output on
them keeps rising while its output on held-out real images falls. Augmenting real and fake batches alike,
with differentiable ops so G's gradient passes through, removes that shortcut. We rerun the measurement at
a CPU's scale: the chapter-06 DCGAN on a few hundred bundled digits, with and without the augmentation, the
same seed and steps, tracking D's mean output on its training digits and on held-out digits, and the
classifier Fréchet distance of the samples.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch

from ganlib import losses
from ganlib.augment import DiffAugment
from ganlib.data import TensorSource, mnist
from ganlib.hooks import Evaluate
from ganlib.metrics.classifier import classifier_fd
from ganlib.models import dcgan
from ganlib.runtime import device as default_device
from ganlib.runtime import seed_everything
from ganlib.train import Trainer

POLICY = "color,translation,cutout"  # the paper's policy for small data (Sec. 3.2)


def train_limited(n_images: int, steps: int, policy: Optional[str], width: int = 32, batch_size: int = 16,
                  every: int = 250, n_eval: int = 500, seed: int = 0,
                  device: Optional[torch.device] = None) -> Dict[str, object]:
    """Train a DCGAN on the first ``n_images`` of a fixed shuffle of the bundled train digits, augmenting D's
    inputs with ``policy`` (None: plain), and record every ``every`` steps D's mean probability on its training
    digits and on ``n_eval`` held-out digits, and the FD of ``n_eval`` samples against held-out digits.

    Returns {'policy', 'records' (step, d_train, d_heldout, gap, fd), 'samples' (64 images, CPU), 'trainer'}.
    """
    if not isinstance(n_images, int) or not 16 <= n_images <= 4000:
        raise ValueError(f"n_images must be an int in [16, 4000] (the bundled train split), got {n_images!r}")
    device = device or default_device()
    x, _ = mnist(28, "train")
    chosen = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n_images]].to(device)
    held = mnist(28, "heldout")[0][:n_eval].to(device)
    seed_everything(seed)
    G = dcgan.Generator(z_dim=100, image_size=28, channels=1, width=width)
    D = dcgan.Discriminator(image_size=28, channels=1, width=width)

    def scores(trainer: Trainer) -> Dict[str, float]:
        with torch.no_grad():
            d_train = torch.sigmoid(trainer.D(chosen[:n_eval])).mean().item()  # un-augmented: what D has learnt
            d_held = torch.sigmoid(trainer.D(held)).mean().item()
            fd = classifier_fd(trainer.sample(n_eval), held)
        return {"d_train": d_train, "d_heldout": d_held, "gap": d_train - d_held, "fd": fd}

    evaluate = Evaluate(scores, every=every)
    trainer = Trainer(G, D, TensorSource(chosen, batch_size=batch_size, seed=seed, device=device),
                      d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating, lr=2e-4,
                      betas=(0.5, 0.999), augment=DiffAugment(policy, seed=seed) if policy else None,
                      hooks=[evaluate], progress=False, device=device)
    trainer.fit(steps)
    return {"policy": policy, "records": evaluate.records, "samples": trainer.sample(64).cpu(), "trainer": trainer}


def compare(n_images: int, steps: int, policies: Sequence[Optional[str]] = (None, POLICY),
            **kwargs) -> Dict[str, Dict[str, object]]:
    """``train_limited`` once per policy, same seed and steps: {'plain' or policy: result}."""
    return {policy or "plain": train_limited(n_images, steps, policy, **kwargs) for policy in policies}


def summary(result: Dict[str, object]) -> Dict[str, float]:
    """The last evaluation of a run: FD and D's training-vs-held-out gap at the final step."""
    records: Dict[str, list] = result["records"]  # type: ignore[assignment]
    return {k: records[k][-1] for k in ("step", "fd", "d_train", "d_heldout", "gap")}
