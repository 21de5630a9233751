"""The command line: train a model of the course on bundled data or your own images, sample it, score it.

    python -m ganlib train dcgan --data mnist --steps 2000 --out runs/dcgan
    python -m ganlib train stylegan --data ~/pictures --size 64 --out runs/mine --precision auto
    python -m ganlib sample runs/dcgan/checkpoint.pt -n 64 -o grid.png
    python -m ganlib fid runs/dcgan/checkpoint.pt
    torchrun --standalone --nproc_per_node 2 -m ganlib train dcgan --data mnist --batch 64 --out runs/ddp

``train`` builds the chapter's model with the chapter's settings at the current ``GANLIB_SCALE``
(``DEFAULTS``; ``--steps``, ``--batch``, ``--lr`` override them) and hands it to the one ``Trainer``:
progress bar, checkpoints in ``OUT/checkpoint.pt`` (LapGAN: one per level, ``OUT/levelK.pt``), a sample grid
in ``OUT/samples/`` every ``--sample-every`` steps, ``--resume`` to continue. Each checkpoint keeps in
``state['meta']`` what rebuilds its networks (model, data, size, class paths and constructor arguments), so
``sample`` and ``fid`` need nothing but the checkpoint. Under torchrun it trains data-parallel
(``ganlib.distributed``); ``--batch`` is then the global batch, split evenly over the processes.
"""
from __future__ import annotations

import argparse
import copy
import importlib
import math
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from scipy.linalg import LinAlgWarning
from torch import Tensor, nn

from ganlib import data as datasets
from ganlib import distributed, losses
from ganlib.checkpoint import CheckpointError, load_checkpoint
from ganlib import precision as amp
from ganlib.precision import PRECISIONS
from ganlib.runtime import by_scale, scale, seed_everything
from ganlib.hooks import Hook
from ganlib.train import Trainer

MODELS = ("dcgan", "cgan", "lapgan", "pggan", "stylegan", "mlp")
IMAGE_DATA = ("mnist", "shapes")
SIZES = (32, 64, 128)
CHECKPOINT = "checkpoint.pt"


class UsageError(Exception):
    """A bad argument: printed as ``ganlib: error: ...`` with exit status 2, never as a traceback."""


# -- the chapters' settings per scale --------------------------------------------------------------

def defaults(model: str) -> Dict[str, Any]:
    """Steps, batch, learning rate, EMA and width of ``model`` at the current GANLIB_SCALE (the chapters' values)."""
    ema = by_scale(smoke=0.9, small=0.99, full=0.999)
    table = {
        # 01: 3 leaky-ReLU layers of 128, Adam(1e-3, (0.5, 0.999)), EMA 0.99, 256 points a batch
        "mlp": dict(steps=by_scale(150, 3000, 5000), batch=256, lr=1e-3, ema=0.99, hidden=128),
        # 06/07: pytorch/examples' optimiser; the chapters' CPU runs use width 32 and batch 16, no EMA
        "dcgan": dict(steps=by_scale(30, 2400, 6000), batch=by_scale(16, 16, 64), lr=2e-4,
                      ema=by_scale(None, None, 0.999), width=by_scale(8, 32, 64)),
        "cgan": dict(steps=by_scale(20, 2000, 8000), batch=by_scale(16, 16, 64), lr=2e-4,
                     ema=by_scale(None, None, 0.999), width=by_scale(8, 32, 64)),
        # 08: conv base, levels trained one after another; lr is the base's, finer levels train at 5x
        "lapgan": dict(steps=by_scale(18, 3900, 35000), batch=by_scale(16, 32, 64), lr=5e-4, ema=ema,
                       width=by_scale(8, 32, 64), z_dim=64),
        # 09: G steps per phase (each stabilise and each fade), then FINAL more at full size
        "pggan": dict(steps=by_scale(3 * 7 + 3, 30 * 7 + 1000, 3000 * 7 + 3000), batch=by_scale(8, 16, 64), lr=1e-3,
                      ema=ema, channels=by_scale((16, 8, 8, 4), (64, 32, 16, 8), (256, 128, 64, 32)),
                      z_dim=by_scale(16, 64, 256), n_critic=by_scale(1, 2, 1), phase_share=by_scale(3 / 24, 30 / 1210,
                                                                                                   3000 / 24000)),
        # 10: R1 every 4th D step, Adam(2e-3, (0, 0.99))
        "stylegan": dict(steps=by_scale(8, 900, 20000), batch=by_scale(16, 16, 64), lr=2e-3, ema=ema,
                         fmap=by_scale((128, 8), (512, 32), (4096, 256)), gamma=by_scale(4.0, 4.0, 10.0)),
    }
    return table[model]


# -- data --------------------------------------------------------------------------------------------

@dataclass
class Dataset:
    """What a model trains on: images (N, C, S, S) in [-1, 1] with optional labels, or a toy distribution."""

    name: str
    images: Optional[Tensor] = None
    labels: Optional[Tensor] = None
    n_classes: int = 0
    toy: Any = None

    @property
    def channels(self) -> int:
        return 0 if self.images is None else self.images.shape[1]


def load_data(name: str, size: int, channels: int) -> Dataset:
    """``mnist`` (bundled, train split), ``shapes`` (procedural), a toy name, or a folder of images."""
    if name in datasets.TOY_NAMES:
        return Dataset(name, toy=datasets.toy(name))
    if name == "mnist":
        if size != 32:
            raise UsageError(f"the bundled MNIST digits are 28x28, padded to 32: use --size 32 (or train on a folder "
                             f"of your own images at --size {size})")
        x, y = datasets.mnist(32, "train")
        return Dataset(name, x, y, 10)
    if name == "shapes":
        shapes = datasets.shapes(by_scale(smoke=512, small=4000, full=20000), size=size)
        return Dataset(name, shapes.images, shapes.labels, len(datasets.SHAPE_NAMES))
    folder = Path(name).expanduser()
    if not folder.exists():
        raise UsageError(f"--data {name!r} is neither a bundled dataset ({', '.join(IMAGE_DATA)}), a toy "
                         f"({', '.join(datasets.TOY_NAMES)}), nor an existing folder of images")
    try:
        return Dataset(str(folder.resolve()), datasets.image_folder(folder, size, channels))
    except (ValueError, NotADirectoryError) as err:
        raise UsageError(str(err)) from err


# -- the models, as class paths and constructor arguments (what the checkpoint keeps) --------------

def model_specs(model: str, size: int, dataset: Dataset, settings: Dict[str, Any]) -> Dict[str, Any]:
    """``{'generator': [class path, kwargs], 'discriminator': [...]}`` (LapGAN: the whole pyramid as generator)."""
    c, k = dataset.channels, dataset.n_classes
    if model == "mlp":
        dim = dataset.toy.sample(1).shape[1]
        act = dict(hidden=settings["hidden"], depth=3, activation="leaky_relu")
        return _specs("toy.MLPGenerator", dict(z_dim=2, out_dim=dim, **act), "toy.MLPDiscriminator", dict(in_dim=dim, **act))
    if model == "dcgan":
        w = settings["width"]
        return _specs("dcgan.Generator", dict(z_dim=100, image_size=size, channels=c, width=w),
                      "dcgan.Discriminator", dict(image_size=size, channels=c, width=w))
    if model == "cgan":
        common = dict(n_classes=k, image_size=size, channels=c, width=settings["width"], conditioning="onehot")
        return _specs("cgan.ConditionalGenerator", dict(z_dim=100, **common), "cgan.ConditionalDiscriminator", common)
    if model == "lapgan":
        levels = int(math.log2(size // 8)) + 1  # a conv base at 8x8, then one level per doubling
        hidden = [max(4, settings["width"] // 2 ** i) for i in range(levels - 1)]
        return _specs("lapgan.LapGAN", dict(img_channels=c, resolution=size, levels=levels, z_dim=settings["z_dim"],
                                            base_hidden=settings["width"], hidden=hidden, kernel=3, base="conv"), None, {})
    if model == "pggan":
        channels = list(settings["channels"])
        while len(channels) < int(math.log2(size)) - 1:  # one width per resolution 4 .. size, halving upwards
            channels.append(max(4, channels[-1] // 2))
        return _specs("pggan.PGGANGenerator", dict(z_dim=settings["z_dim"], img_channels=c, resolution=size,
                                                   channels=channels),
                      "pggan.PGGANDiscriminator", dict(img_channels=c, resolution=size, channels=channels))
    base, cap = settings["fmap"]
    common = dict(resolution=size, img_channels=c, fmap_base=base, fmap_max=cap)
    return _specs("stylegan.StyleGenerator", dict(const_init="randn", **common), "stylegan.StyleDiscriminator", common)


def _specs(g: str, g_kwargs: Dict[str, Any], d: Optional[str], d_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    return {"generator": [f"ganlib.models.{g}", g_kwargs],
            "discriminator": None if d is None else [f"ganlib.models.{d}", d_kwargs]}


def build(spec: Sequence[Any]) -> nn.Module:
    """Instantiate ``[class path, kwargs]``; only classes under ``ganlib.models`` (a checkpoint names them)."""
    path, kwargs = spec
    module, _, name = path.rpartition(".")
    if not module.startswith("ganlib.models."):
        raise CheckpointError(f"the checkpoint names {path!r}, which is not a ganlib model")
    return getattr(importlib.import_module(module), name)(**kwargs)


# -- checking the arguments ------------------------------------------------------------------------

def check_combination(model: str, data: str, size: Optional[int], channels: Optional[int]) -> None:
    """Models and data that do not go together, each refused with what would work (before loading anything)."""
    toy = data in datasets.TOY_NAMES
    if model == "mlp" and not toy:
        raise UsageError(f"mlp trains on a toy distribution: --data one of {', '.join(datasets.TOY_NAMES)}")
    if model != "mlp" and toy:
        raise UsageError(f"{model} trains on images: --data mnist, shapes or a folder; toys ({data}) are for mlp")
    if model == "mlp" and size is not None:
        raise UsageError("--size is the side of images; toy data are points, leave it out")
    if channels is not None and (toy or data in IMAGE_DATA):
        raise UsageError(f"--channels is for a folder of your own images; {data} has its own")
    if model == "cgan" and data not in IMAGE_DATA:
        raise UsageError("cgan needs class labels: --data mnist (10 digits) or shapes (4 shapes); a folder has none")


def whole_number(minimum: int, note: str = "") -> Callable[[str], int]:
    """An argparse ``type``: a whole number >= ``minimum``, else a one-line error (``note`` says what the minimum means)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}{note}, got {text!r}")
        return value
    return parse


positive_int = whole_number(1)
non_negative_int = whole_number(0, " (0 = never)")


def learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and 0 < value < 1):
        raise argparse.ArgumentTypeError(f"expected a learning rate in (0, 1), e.g. 2e-4, got {text!r}")
    return value


# -- the sample grid -------------------------------------------------------------------------------

class SampleGrid(Hook):
    """Every ``every`` steps and at the end, write ``folder/step_NNNNNN.png`` from ``sample(trainer)``.

    The samples come from fixed latents in a forked random stream, so grids are comparable across steps and
    writing them never changes what training draws (a resumed run stays exact). Only rank 0 writes.
    """

    def __init__(self, folder: Path, every: int, sample: Callable[[Trainer], Tensor], kind: str) -> None:
        self.folder, self.every, self.sample, self.kind = Path(folder), every, sample, kind

    def on_step_end(self, trainer: Trainer, step: int, logs: Optional[Dict[str, float]]) -> None:
        if self.every and trainer.step % self.every == 0:
            self.write(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.every:
            self.write(trainer)

    def write(self, trainer: Trainer) -> Optional[Path]:
        if not trainer.dist.is_main:
            return None
        devices = [trainer.device.index or 0] if trainer.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(1234)
            images = self.sample(trainer)
        return save_samples(images, self.folder / f"step_{trainer.step:06d}.png", self.kind)


def save_samples(samples: Tensor, path: Path, kind: str) -> Path:
    """Images as one grid PNG (``kind`` 'images'), or 2-D points as a scatter plot PNG (``kind`` 'points')."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = samples.detach().float().cpu()
    if kind == "points":
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4, 4))
        ax = fig.add_subplot(111)
        ax.scatter(samples[:, 0], samples[:, -1], s=3, alpha=0.5)
        ax.set_aspect("equal")
        fig.savefig(path, dpi=100)
        return path
    from torchvision.utils import save_image

    save_image(samples.clamp(-1, 1) * 0.5 + 0.5, path, nrow=max(1, round(math.sqrt(len(samples)))), padding=2,
               pad_value=1.0)
    return path


# -- sampling a model of the checkpoint's kind -----------------------------------------------------

def draw(meta: Dict[str, Any], G: nn.Module, n: int, device: torch.device) -> Tensor:
    """``n`` samples of an unconditional or conditional generator (labels cycling through the classes)."""
    z = torch.randn(n, G.z_dim, device=device)
    with torch.no_grad():
        if meta["model"] == "cgan":
            return G(z, torch.arange(n, device=device) % meta["n_classes"])
        return G(z)


def ema_or_g(trainer: Trainer) -> nn.Module:
    return trainer.G_ema if trainer.G_ema is not None else trainer.G


def eval_copy(G: nn.Module) -> nn.Module:
    """A copy of G in eval mode; with BatchNorm, its running statistics re-estimated for these (EMA) weights."""
    from ganlib.reference import recalibrate_batchnorm_

    G = copy.deepcopy(G)
    z_dim, classes, device = getattr(G, "z_dim", None), getattr(G, "n_classes", 0), next(G.parameters()).device

    def forward(net: nn.Module) -> Tensor:
        z = torch.randn(256, z_dim, device=device)
        return net(z, torch.randint(0, classes, (256,), device=device)) if classes else net(z)

    if z_dim is not None and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules()):
        recalibrate_batchnorm_(G, forward, batches=20)
    return G.eval()


# -- train -----------------------------------------------------------------------------------------

def train(args: argparse.Namespace) -> Path:
    """The ``train`` command: build (or resume) the run in ``args.out`` and fit it; returns the checkpoint."""
    group = distributed.init(_device())
    path = _train(args, group)
    distributed.shutdown()  # not on an error: torchrun stops the other processes when one fails
    return path


def _train(args: argparse.Namespace, group: distributed.Group) -> Path:
    out = Path(args.out)
    meta, dataset, steps = _plan(args, group, out)
    options = _options(args, distributed.device_for(_device()))
    if meta["model"] == "lapgan":
        return _train_lapgan(meta, dataset, steps, out, args.sample_every, options)
    trainer = _trainer(meta, dataset, out, args.sample_every, options)
    if args.resume:
        trainer.resume(out / CHECKPOINT)
        if steps <= trainer.step:
            raise UsageError(f"{out / CHECKPOINT} is already at step {trainer.step}; pass --steps above it to train on")
    trainer.fit(steps)
    _say(group, f"saved {out / CHECKPOINT} at step {trainer.step}" + _grid_note(out, args.sample_every))
    return out / CHECKPOINT


def _plan(args: argparse.Namespace, group: distributed.Group, out: Path) -> Tuple[Dict[str, Any], Dataset, int]:
    """What to train: the run's meta (networks, data, batch, settings; a resumed run's own), its data, the steps."""
    saved = _saved_meta(out, args.resume)
    settings = dict(saved["settings"]) if saved else defaults(args.model)  # a resumed run keeps its settings
    check_combination(args.model, args.data, args.size, args.channels)
    size = _choose("size", args.size, saved, None if args.model == "mlp" else 32)
    dataset = load_data(args.data, size, _choose("channels", args.channels, saved, 3))
    batch = _choose("batch", args.batch, saved, settings["batch"])
    if batch % group.world_size:
        raise UsageError(f"--batch {batch} does not split evenly over {group.world_size} processes; use a multiple "
                         f"of {group.world_size} (--batch is the global batch)")
    if saved is not None:
        _check_same(saved, args.model, dataset.name, dataset.channels)
    steps = args.steps or settings["steps"]
    settings["lr"] = args.lr or settings["lr"]  # a resume without --lr keeps the run's rate
    if args.model == "pggan" and saved is None:  # the growth schedule is fixed when the run starts
        settings["phase_steps"] = max(1, round(steps * settings["phase_share"]))
    seed_everything(args.seed)
    meta = saved or dict(model_specs(args.model, size, dataset, settings), model=args.model, data=dataset.name,
                         size=size, channels=dataset.channels, n_classes=dataset.n_classes, seed=args.seed,
                         scale=scale())
    return dict(meta, batch=batch, world_size=group.world_size, settings=settings), dataset, steps


def _options(args: argparse.Namespace, device: torch.device) -> Dict[str, Any]:
    """The Trainer's fast paths and checkpoint cadence from the arguments (an impossible precision is refused)."""
    try:
        amp.resolve(args.precision, device)
    except ValueError as err:
        raise UsageError(str(err)) from err
    return dict(precision=args.precision, channels_last=args.channels_last, compile=args.compile, device=device,
                checkpoint_every=args.checkpoint_every)


def _saved_meta(out: Path, resume: bool) -> Optional[Dict[str, Any]]:
    """The meta of the run to resume, or None for a new run; refuses to overwrite a run without --resume."""
    files = [out / CHECKPOINT] + sorted(out.glob("level*.pt")) if out.is_dir() else []
    existing = [f for f in files if f.is_file()]
    if existing and not resume:
        raise UsageError(f"{out} already holds a run ({existing[0].name}); pass --resume to continue it, or choose "
                         "another --out")
    if not resume:
        return None
    if not existing:
        raise UsageError(f"--resume: {out} holds no checkpoint to continue; leave --resume out to start a new run")
    meta = load_checkpoint(existing[0]).get("meta")
    if not isinstance(meta, dict) or "model" not in meta:
        raise UsageError(f"{existing[0]} was not written by `python -m ganlib train`, so it cannot be resumed from "
                         "here; resume it with the Trainer that wrote it")
    return {k: v for k, v in meta.items() if k != "level"}


def _choose(name: str, given: Optional[int], saved: Optional[Dict[str, Any]], default: Optional[int]) -> Optional[int]:
    """An explicit argument, else the resumed run's value, else the default; a resume must keep sizes and batches."""
    if saved is None:
        return given if given is not None else default
    if given is not None and given != saved[name]:
        raise UsageError(f"the run was trained with --{name} {saved[name]}; resume with the same value (its batches "
                         "and networks depend on it) or start a new --out")
    return saved[name]


def _check_same(saved: Dict[str, Any], model: str, data: str, channels: int) -> None:
    for key, mine in (("model", model), ("data", data), ("channels", channels)):
        if saved[key] != mine:
            raise UsageError(f"the run to resume was trained with {key} {saved[key]!r}, not {mine!r}; resume it with "
                             "the same arguments or start a new --out")


def _device() -> torch.device:
    from ganlib.runtime import device

    return device()


def _trainer(meta: Dict[str, Any], dataset: Dataset, out: Path, sample_every: int, options: Dict[str, Any]) -> Trainer:
    """A Trainer for every model but LapGAN, set up as its chapter does."""
    model, device, settings = meta["model"], options["device"], meta["settings"]
    G, D = build(meta["generator"]), build(meta["discriminator"])
    kind = "points" if model == "mlp" else "images"
    grid = SampleGrid(out / "samples", sample_every, lambda tr: draw(meta, eval_copy(ema_or_g(tr)), 64, tr.device), kind)
    common = dict(lr=settings["lr"], ema_decay=settings["ema"], hooks=[grid], checkpoint_path=out / CHECKPOINT, meta=meta, **options)
    if model == "mlp":
        source = datasets.SamplerSource(dataset.toy.sample, meta["batch"], seed=meta["seed"], device=device)
    else:
        labels = dataset.labels if model == "cgan" else None
        source = _image_source(dataset.images, labels, meta["batch"], meta["seed"], device)
    if model == "pggan":
        return _pggan_trainer(G, D, source, settings, common)
    bce = dict(d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating)
    if model == "stylegan":
        return Trainer(G, D, source, **bce, d_penalty=losses.r1_regularizer(settings["gamma"]), d_penalty_every=4,
                       betas=(0.0, 0.99), **common)
    return Trainer(G, D, source, **bce, betas=(0.5, 0.999), **common)


def _image_source(x: Tensor, y: Optional[Tensor], batch: int, seed: int, device: torch.device) -> datasets.TensorSource:
    try:
        return datasets.TensorSource(x, y, batch_size=batch, seed=seed, device=device)
    except ValueError as err:  # a batch larger than the dataset
        raise UsageError(f"{err} (--batch {batch}, {len(x)} images)") from err


def _pggan_trainer(G: nn.Module, D: nn.Module, source: Any, settings: Dict[str, Any], common: Dict[str, Any]) -> Trainer:
    """Chapter 09's growth: every stabilise and fade phase the chapter's share of the steps, the rest at full size."""
    from ganlib.experiments.progressive import ProgressiveSchedule, make_trainer

    if common["compile"]:
        raise UsageError("pggan's fade-in changes alpha every step, which would recompile a compiled forward "
                         "every step; train pggan without --compile")
    schedule = ProgressiveSchedule(G.n_levels, settings["phase_steps"])
    return make_trainer(G, D, source, schedule, gp_at="current", n_critic=settings["n_critic"], **common)


def _train_lapgan(meta: Dict[str, Any], dataset: Dataset, steps: int, out: Path, sample_every: int,
                  options: Dict[str, Any]) -> Path:
    """Chapter 08: one Trainer per level, coarse to fine, each on real pyramids; checkpoints OUT/levelK.pt."""
    from ganlib.experiments.lapgan import make_level_trainer

    settings = meta["settings"]
    lr = settings["lr"]
    model = build(meta["generator"]).to(options["device"])
    shares = [0.4 ** k for k in range(model.levels)]  # the chapter's 2500 : 1000 : 400 split, extended
    level_steps = [max(1, round(steps * s / sum(shares))) for s in shares]
    finished: List[nn.Module] = []
    x = dataset.images.to(options["device"])
    for k, n in enumerate(level_steps):
        path = out / f"level{k}.pt"
        grid = SampleGrid(out / "samples" / f"level{k}", sample_every,
                          lambda tr, k=k: _lapgan_chain(model, finished + [ema_or_g(tr)], k, 64), "images")
        trainer = make_level_trainer(model, k, x, batch_size=meta["batch"], lr=lr if k == 0 else 5 * lr,
                                     seed=meta["seed"] + k, ema_decay=settings["ema"], hooks=[grid],
                                     checkpoint_path=path, meta=dict(meta, level=k, levels=model.levels), **options)
        if path.is_file():
            trainer.resume(path)
        trainer.fit(max(n, trainer.step))
        finished.append(ema_or_g(trainer))
    _say(distributed.current(), f"saved {', '.join(f'level{k}.pt' for k in range(model.levels))} in {out}"
         + _grid_note(out, sample_every))
    return out / f"level{model.levels - 1}.pt"


def _lapgan_chain(model: nn.Module, generators: List[nn.Module], level: int, n: int) -> Tensor:
    """Coarse-to-fine samples up to ``level`` (the levels above it are not trained yet)."""
    gens = [eval_copy(g) if i == 0 else g for i, g in enumerate(generators)] + list(model.generators[len(generators):])
    return model.sample_levels(n, generators=gens)["images"][level].clamp(-1, 1)


def _grid_note(out: Path, every: int) -> str:
    return f"; sample grids in {out / 'samples'}" if every else ""


def _say(group: distributed.Group, message: str) -> None:
    if group.is_main:
        print(message, flush=True)


# -- sample and fid --------------------------------------------------------------------------------

def load_generator(path: Path, device: torch.device) -> Tuple[Dict[str, Any], nn.Module]:
    """The checkpoint's meta and its generator (the EMA weights when there are), ready to sample."""
    files = _checkpoint_files(Path(path))
    states = [load_checkpoint(f) for f in files]
    meta = states[0].get("meta")
    if not isinstance(meta, dict) or "model" not in meta:
        raise UsageError(f"{files[0]} was not written by `python -m ganlib train`: it does not say how to rebuild its "
                         "networks")
    G = build(meta["generator"])
    if meta["model"] == "lapgan":
        for k, state in enumerate(states):
            G.generators[k].load_state_dict(state["G_ema"] or state["G"])
    else:
        G.load_state_dict(states[0]["G_ema"] or states[0]["G"])
    return meta, G.to(device)


def _checkpoint_files(path: Path) -> List[Path]:
    """One checkpoint, or every level of a LapGAN run (given its folder or any of its level files)."""
    if not path.exists():
        raise UsageError(f"no checkpoint at {path}: pass OUT/{CHECKPOINT} of a `python -m ganlib train` run")
    folder = path if path.is_dir() else path.parent
    if path.is_dir() and (path / CHECKPOINT).is_file():
        return [path / CHECKPOINT]
    if path.is_file() and not path.name.startswith("level"):
        return [path]
    levels = sorted(folder.glob("level*.pt"))
    if not levels:
        raise UsageError(f"no checkpoint at {path}: pass OUT/{CHECKPOINT} (or a LapGAN run's folder)")
    expected = load_checkpoint(levels[0]).get("meta", {}).get("levels", len(levels))
    missing = [k for k in range(expected) if not (folder / f"level{k}.pt").is_file()]
    if missing:
        raise UsageError(f"the LapGAN run in {folder} has no level{missing[0]}.pt yet: train it to the end first")
    return [folder / f"level{k}.pt" for k in range(expected)]


def generate(meta: Dict[str, Any], G: nn.Module, n: int, seed: int) -> Tensor:
    """``n`` samples on the CPU from a loaded generator, the same for the same seed."""
    device = next(G.parameters()).device
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        if meta["model"] == "lapgan":
            first = eval_copy(G.generators[0])
            return G.sample(n, generators=[first] + list(G.generators[1:])).cpu()
        net = eval_copy(G)
        return torch.cat([draw(meta, net, min(500, n - i), device).cpu() for i in range(0, n, 500)])


def sample(args: argparse.Namespace) -> Path:
    """The ``sample`` command: ``n`` samples of a checkpoint as one PNG."""
    meta, G = load_generator(args.checkpoint, _device())
    images = generate(meta, G, args.n, args.seed)
    path = save_samples(images, Path(args.output), "points" if meta["model"] == "mlp" else "images")
    print(f"wrote {args.n} samples of {meta['model']} to {path}")
    return path


def fid(args: argparse.Namespace) -> Dict[str, float]:
    """The ``fid`` command: the chapter's Fréchet distance of the checkpoint's samples, beside the real floor."""
    meta, G = load_generator(args.checkpoint, _device())
    fakes = generate(meta, G, args.n, args.seed)
    if meta["model"] == "mlp":
        return _report(_toy_modes(meta, fakes))
    if meta["data"] == "shapes":
        return _report(_factor_fd(fakes, args.n))
    if meta["channels"] == 1:
        return _report(_classifier_fd(meta, fakes, args.n))
    raise UsageError("fid scores 1-channel (MNIST-like) images with the bundled digit classifier and the shapes with "
                     "their factor network; for your own RGB images use a standard FID tool on `ganlib sample` output")


def _classifier_fd(meta: Dict[str, Any], fakes: Tensor, n: int) -> Dict[str, float]:
    """MNIST classifier FD against held-out digits (bundled MNIST) or the folder's own images (resized to 28)."""
    import torch.nn.functional as F

    from ganlib.metrics.classifier import classifier_fd, real_floor

    if meta["data"] == "mnist":
        real, _ = datasets.mnist(32, "heldout")
        n = min(n, len(real))
        return {"classifier_fd": classifier_fd(fakes[:n], real[:n]), "floor": real_floor(n=n), "n": n}
    real = datasets.image_folder(meta["data"], 28, 1)
    n = min(n, len(real) // 2)
    if n < 2:
        raise UsageError(f"the folder {meta['data']} holds too few images for a Fréchet distance (at least 4)")
    fit = (lambda x: x) if fakes.shape[-1] in (28, 32) else (lambda x: F.interpolate(x, size=28, mode="area"))
    perm = torch.randperm(len(real), generator=torch.Generator().manual_seed(0))
    return {"classifier_fd": classifier_fd(fit(fakes[:n]), real[perm[:n]]),
            "floor": classifier_fd(real[perm[:n]], real[perm[n:2 * n]]), "n": n}


def _factor_fd(fakes: Tensor, n: int) -> Dict[str, float]:
    """FD in the features of chapter 10's factor network (trained here on fresh renders) against fresh renders."""
    import torch.nn.functional as F

    from ganlib.experiments import stylegan as lab
    from ganlib.metrics.frechet import frechet_distance

    net, _ = lab.train_factor_net(steps=by_scale(smoke=10, small=600, full=3000))
    gen = torch.Generator().manual_seed(5678)
    real_a, real_b = (datasets.render(datasets.sample_factors(n, gen), 32) for _ in range(2))
    fakes = fakes if fakes.shape[-1] == 32 else F.interpolate(fakes.float(), size=32, mode="area")
    feats = lambda x: lab.features(net, x.clamp(-1, 1))  # noqa: E731
    with warnings.catch_warnings():  # a collapsed generator's features are near-singular: large, finite, no warning
        warnings.simplefilter("ignore", category=LinAlgWarning)
        return {"factor_fd": frechet_distance(feats(fakes), feats(real_a)),
                "floor": frechet_distance(feats(real_a), feats(real_b)), "n": n}


def _toy_modes(meta: Dict[str, Any], points: Tensor) -> Dict[str, float]:
    from ganlib.metrics.modes import mode_stats

    toy = datasets.toy(meta["data"])
    if not hasattr(toy, "centers"):
        raise UsageError(f"{meta['data']} has no modes to count; fid scores ring, grid and the other mixtures")
    stats = mode_stats(points, toy.centers, toy.std)
    return {"modes": stats["modes"], "of": toy.num_modes, "hq": stats["hq"], "reverse_kl": stats["reverse_kl"],
            "n": len(points)}


def _report(scores: Dict[str, float]) -> Dict[str, float]:
    print("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()))
    return scores


# -- the parser ------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m ganlib", description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    tr = commands.add_parser("train", help="train a model (chapter defaults at GANLIB_SCALE)")
    tr.add_argument("model", choices=MODELS)
    tr.add_argument("--data", required=True, help=f"{', '.join(IMAGE_DATA)}, a toy ({', '.join(datasets.TOY_NAMES)}) "
                                                  "or a folder of images")
    tr.add_argument("--size", type=int, choices=SIZES, help="image side in pixels (default 32)")
    tr.add_argument("--channels", type=int, choices=(1, 3), help="for a folder: 1 = grey, 3 = RGB (default)")
    tr.add_argument("--steps", type=positive_int, help="total generator steps (default: the chapter's)")
    tr.add_argument("--batch", type=positive_int, help="global batch size (default: the chapter's)")
    tr.add_argument("--lr", type=learning_rate, help="Adam learning rate (default: the chapter's)")
    tr.add_argument("--out", required=True, help="run folder: checkpoints and sample grids")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--precision", choices=PRECISIONS, default="fp32")
    tr.add_argument("--channels-last", action="store_true", help="channels-last memory format for convolutions")
    tr.add_argument("--compile", action="store_true", help="torch.compile the forward passes (not GP/R1)")
    tr.add_argument("--sample-every", type=non_negative_int, default=500, help="steps between sample grids (0 = none)")
    tr.add_argument("--checkpoint-every", type=non_negative_int, default=500, help="steps between checkpoints")
    tr.add_argument("--seed", type=non_negative_int, default=0)
    sa = commands.add_parser("sample", help="write samples of a checkpoint as one PNG")
    sa.add_argument("checkpoint", type=Path)
    sa.add_argument("-n", type=positive_int, default=64)
    sa.add_argument("-o", "--output", default="samples.png")
    sa.add_argument("--seed", type=non_negative_int, default=0)
    fd = commands.add_parser("fid", help="Fréchet distance of a checkpoint's samples, beside the real-vs-real floor")
    fd.add_argument("checkpoint", type=Path)
    fd.add_argument("-n", type=positive_int, default=1000)
    fd.add_argument("--seed", type=non_negative_int, default=0)
    return top


def main(argv: Optional[Sequence[str]] = None) -> Any:
    """Run a command; bad arguments and unusable files exit with status 2 and one line saying what to do."""
    top = parser()
    args = top.parse_args(argv)
    try:
        return {"train": train, "sample": sample, "fid": fid}[args.command](args)
    except (UsageError, CheckpointError, FileNotFoundError) as err:
        top.exit(2, f"{top.prog}: error: {err}\n")


if __name__ == "__main__":
    main(sys.argv[1:])
