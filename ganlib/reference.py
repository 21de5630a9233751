"""Reference models: each image chapter's generator, trained by our own script on one CPU core and shipped.

A notebook trains its model live at ``small`` (the dynamics are the lesson), then loads the chapter's
reference model to show what the same method reaches with ~20x the compute. The weights live in
``data/reference/NAME.pt`` and everything needed to rebuild and trust them in
``data/reference/manifest.json``: the model class and constructor arguments, the recipe, the steps and
images seen, the wall time, the torch version, the file's sha256 and the metrics measured at the end
of the run against the real-vs-real floor.

* ``names()``                      -- the shipped reference models;
* ``load(name)``                   -- the model rebuilt from the manifest, checksum verified, loaded with
  ``weights_only=True``, in eval mode on ``ganlib.device()``;
* ``sample(name, n, seed, labels)`` -- ``n`` images in [-1, 1] on the CPU;
* ``obtain(name)``                 -- what a notebook calls: ``load`` or ``train``, as ``wanted()`` says;
* ``wanted()``                     -- ``GANLIB_REFERENCE``: ``load`` (default below ``full``) or ``train``.

Re-create one with ``python scripts/reference.py NAME`` (``make reference`` does all); the recipes and
the training loop they run are in ``ganlib.experiments.reference``.
"""
from __future__ import annotations

import copy
import importlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ganlib.data.mnist import data_dir
from ganlib.metrics.classifier import sha256_of  # noqa: F401  (re-exported: the run writes it into the manifest)
from ganlib.runtime import device as default_device
from ganlib.runtime import scale

MANIFEST = "manifest.json"
CHOICES = ("load", "train")
# Only ganlib's own model classes may be rebuilt from a manifest: it names code, so it must not name any.
_ALLOWED_MODULES = ("ganlib.models.",)


class ReferenceError(RuntimeError):
    """A reference model is missing, truncated, tampered with, or does not match its manifest."""


def reference_dir() -> Path:
    """``data/reference/`` (moves with ``GANLIB_DATA``)."""
    return data_dir() / "reference"


def recreate_command(name: str) -> str:
    return f"python scripts/reference.py {name}"


def wanted() -> str:
    """``GANLIB_REFERENCE`` (``load`` or ``train``); default ``train`` at ``full`` scale, ``load`` below it."""
    value = os.environ.get("GANLIB_REFERENCE", "").strip().lower()
    if not value:
        return "train" if scale() == "full" else "load"
    if value not in CHOICES:
        raise ValueError(f"GANLIB_REFERENCE={value!r} is not a choice; use 'load' (the shipped reference model) "
                         "or 'train' (train to the reference budget in the notebook; hours on a CPU)")
    return value


def read_manifest(directory: Optional[Path] = None) -> Dict[str, Any]:
    """The manifest as ``{name: entry}``."""
    path = (directory or reference_dir()) / MANIFEST
    if not path.is_file():
        raise ReferenceError(f"{path} is missing; it ships with the repository -- restore it with "
                             "`git checkout data/reference`, or re-create the models with `make reference`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReferenceError(f"{path} is not valid JSON ({err}); restore it with `git checkout {path}`") from err
    return manifest.get("models", {})


def names(directory: Optional[Path] = None) -> List[str]:
    """The reference models listed in the manifest, sorted."""
    return sorted(read_manifest(directory))


def entry(name: str, directory: Optional[Path] = None) -> Dict[str, Any]:
    """The manifest entry of ``name``; an unknown name is a clear error listing the known ones."""
    manifest = read_manifest(directory)
    if name not in manifest:
        known = ", ".join(sorted(manifest)) or "none"
        raise ReferenceError(f"no reference model {name!r}; shipped: {known}. "
                             f"Train it with `{recreate_command(name)}`")
    return manifest[name]


def build_model(class_path: str, kwargs: Dict[str, Any]) -> nn.Module:
    """Instantiate ``class_path(**kwargs)``, refusing anything outside ``ganlib.models``."""
    if not class_path.startswith(_ALLOWED_MODULES):
        raise ReferenceError(f"manifest names {class_path!r}; only ganlib.models classes can be rebuilt")
    module, _, cls = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), cls)(**kwargs)
    except (ImportError, AttributeError, TypeError, ValueError) as err:
        raise ReferenceError(f"cannot rebuild {class_path}(**{kwargs}) from the manifest: {err}") from err


def class_path(model: nn.Module) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def load(name: str, device: Optional[torch.device] = None, directory: Optional[Path] = None) -> nn.Module:
    """The reference generator ``name``, rebuilt from the manifest and verified, in eval mode on ``device``.

    Extra tensors the chapter needs (e.g. StyleGAN's ``w_avg``) are buffers of the model, so they come along.
    """
    info = entry(name, directory)
    path = (directory or reference_dir()) / info["file"]
    fix = f"restore it with `git checkout data/reference/{info['file']}` or re-create it with `{recreate_command(name)}`"
    if not path.is_file():
        raise ReferenceError(f"reference weights {path} are missing; {fix}")
    digest = sha256_of(path)
    if digest != info["sha256"]:
        raise ReferenceError(f"{path} does not match its manifest (sha256 {digest[:12]}..., expected "
                             f"{info['sha256'][:12]}...): it is truncated, corrupt or was replaced; {fix}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a checksum-valid file that torch cannot read means the manifest is wrong too
        raise ReferenceError(f"{path} cannot be read by torch ({type(err).__name__}: {str(err)[:120]}); {fix}") from err
    model = build_model(info["model"], info["kwargs"])
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as err:
        raise ReferenceError(f"{path} does not fit {info['model']}(**{info['kwargs']}): {str(err)[:200]}; {fix}") from err
    return model.to(device or default_device()).eval().requires_grad_(False)


def obtain(name: str, device: Optional[torch.device] = None) -> Tuple[nn.Module, Dict[str, Any]]:
    """The chapter's reference model and its manifest entry, as ``GANLIB_REFERENCE`` asks: ``load`` the
    shipped one, or ``train`` it here to the recipe's full budget (into ``build/reference/``; an hour on a
    CPU core, minutes on a GPU) and load that."""
    if wanted() == "load":
        return load(name, device), entry(name)
    from ganlib.experiments.reference import run, run_dir

    trained = run_dir(name).parent / "trained"
    run(name, out_dir=trained)
    return load(name, device, directory=trained), entry(name, trained)


@torch.no_grad()
def generate(model: nn.Module, kind: str, n: int, seed: int = 0, labels: Optional[Tensor] = None,
             psi: float = 1.0) -> Tensor:
    """``n`` images from a generator of ``kind`` (``unconditional``, ``conditional``, ``lapgan``, ``style``), on the CPU.

    The latents (and StyleGAN's noise images) come from a CPU generator seeded with ``seed``, so the same call
    gives the same images on every device. Conditional models take ``labels`` (default ``arange(n) % n_classes``);
    a StyleGAN takes the truncation ``psi`` (1 = none).
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if psi != 1.0 and kind != "style":
        raise ValueError(f"truncation (psi={psi}) needs a StyleGAN (kind 'style'), not a {kind!r} generator")
    gen = torch.Generator().manual_seed(seed)
    dev = next(model.parameters()).device
    if kind == "lapgan":
        if labels is None and getattr(model, "n_classes", 0):
            labels = torch.arange(n) % model.n_classes
        return model.sample(n, labels=None if labels is None else labels.to(dev), generator=gen).cpu()
    z = torch.randn(n, model.z_dim, generator=gen).to(dev)
    if kind == "style":  # StyleGAN: the per-pixel noise images come from the same seeded stream
        return model(z, psi=psi, noise=model.synthesis.make_noise(n, "random", generator=gen)).clamp(-1, 1).cpu()
    if kind == "conditional":
        labels = torch.arange(n) % model.n_classes if labels is None else labels
        if len(labels) != n:
            raise ValueError(f"{n} images asked for but {len(labels)} labels given; give one label per image")
        return model(z, labels.to(dev)).clamp(-1, 1).cpu()
    if kind != "unconditional":
        raise ValueError(f"unknown generator kind {kind!r}; choose unconditional, conditional, lapgan or style")
    if labels is not None:
        raise ValueError("this reference model is unconditional; drop labels=")
    return model(z).clamp(-1, 1).cpu()  # PGGAN's and StyleGAN's outputs are linear, not tanh


def sample(name: str, n: int, seed: int = 0, labels: Optional[Tensor] = None, psi: float = 1.0) -> Tensor:
    """``n`` images in [-1, 1] from the reference model ``name`` as a CPU tensor (same seed, same images)."""
    info = entry(name)
    return generate(load(name), info["kind"], n, seed=seed, labels=labels, psi=psi)


@torch.no_grad()
def recalibrate_batchnorm_(G: nn.Module, forward: Any, batches: int = 64) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics of ``G`` from ``batches`` calls of ``forward(G)``.

    An EMA generator averages weights, but the running statistics it would use in eval mode were
    collected by the *training* weights: they do not belong to the averaged network. Averaging the batch
    statistics the EMA weights themselves produce (``momentum=None``: a plain cumulative mean) fixes that.
    """
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return G
    momenta = [bn.momentum for bn in bns]
    was_training = G.training
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    G.train()
    for _ in range(batches):
        forward(G)
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    G.train(was_training)
    return G


def half_round_trip(model: nn.Module) -> Dict[str, Tensor]:
    """The fp16 state dict we ship, and ``model`` set to exactly those (rounded) weights, so metrics are
    measured on what a user loads."""
    state = {k: v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return state


def copy_for_export(G: nn.Module) -> nn.Module:
    return copy.deepcopy(G).cpu().requires_grad_(False)
