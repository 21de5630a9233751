"""Data-parallel training over several processes (``torch.distributed``), as the Trainer uses it.

Launch any script or the command line with torchrun; one process per GPU (or per CPU worker)::

    torchrun --standalone --nproc_per_node 2 -m ganlib train dcgan --data mnist --batch 64 ...

``init()`` joins the process group torchrun describes (NCCL on CUDA, gloo on a CPU). A ``Trainer`` built
afterwards sees a group of more than one process and trains data-parallel, with nothing else to change:

* **the same batches, split**: every process draws the same global batch ``data.batch(i)`` and keeps its
  own contiguous slice (``Group.shard``); latents are drawn for the whole global batch and sliced the
  same way. So the processes see disjoint parts of exactly the batch one process would see, and the
  checkpoint's counters mean the same at any world size: a run resumes on any number of processes;
* **gradients all-reduced** by ``DistributedDataParallel`` (DDP) around G and D. D's step, its penalty
  and G's step each run through the DDP module whose weights get gradients (G's step calls the plain D,
  whose weights are frozen then: DDP would wait forever for gradients that never come). The gradient
  penalty and R1 differentiate D's output w.r.t. its input with ``create_graph=True`` and then backpropagate
  through that gradient: DDP's hooks sit on the weights' gradient accumulators, which run once, in the
  final backward, so the double-backward contribution is all-reduced with the rest (tested);
* **staged layers**: PGGAN's and a progressive StyleGAN's unused resolutions get no gradient, so those
  models are wrapped with ``find_unused_parameters=True``; every other model without it (it costs a graph walk);
* **BatchNorm per process**: each process normalises with its own slice's statistics, as a single GPU would
  at that batch size; running statistics and other buffers (StyleGAN's ``w_avg``, PGGAN's level) are
  broadcast from rank 0 at every forward (DDP's default). SyncBatchNorm was not chosen: it does not run on
  a CPU (so it could not be tested here), and an all-reduce inside every BatchNorm of every forward costs
  more than the DCGAN recipe gains from it. Keep each process's slice at 16 samples or more;
* **one writer**: checkpoints, the EMA generator, the progress bar and logs live on rank 0; loss values are
  averaged over the processes for the NaN guard and the logs, so every process stops together.

In-model randomness (StyleGAN's noise images and mixing latents, GP's interpolation weights, dropout,
DiffAugment) comes from the same random stream on every process, so it repeats across the slices; the
latents and the data, which decide what is learned, do not.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["Group", "SINGLE", "Forwards", "current", "forwards", "init", "launched", "shutdown",
           "has_staged_layers", "training_group", "unwrap"]


@dataclass(frozen=True)
class Group:
    """Where this process stands: its rank among ``world_size`` processes (rank 0 is the one that writes)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    def shard(self, x: Optional[Tensor]) -> Optional[Tensor]:
        """This process's contiguous slice of a global batch (rows ``rank * n/W`` to ``(rank + 1) * n/W``)."""
        if x is None or not self.parallel:
            return x
        if len(x) % self.world_size:
            raise ValueError(f"a batch of {len(x)} does not split evenly over {self.world_size} processes; use a "
                             f"global batch size that is a multiple of {self.world_size}")
        size = len(x) // self.world_size
        return x[self.rank * size:(self.rank + 1) * size]

    def mean(self, value: Tensor) -> Tensor:
        """``value`` averaged over the processes (a new tensor; NaN anywhere makes it NaN everywhere)."""
        if not self.parallel:
            return value
        total = value.detach().float().clone()
        dist.all_reduce(total)
        return total / self.world_size

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` inside ``DistributedDataParallel`` when there are several processes, else itself."""
        if not self.parallel:
            return module
        ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=has_staged_layers(module))

    def barrier(self) -> None:
        if self.parallel:
            dist.barrier()


SINGLE = Group()


def launched() -> bool:
    """True inside a process started by torchrun (it sets RANK, WORLD_SIZE, MASTER_ADDR, ...)."""
    return all(key in os.environ for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def init(device: Optional[torch.device] = None) -> Group:
    """Join torchrun's process group (NCCL for CUDA, gloo otherwise) and return this process's ``Group``.

    Without torchrun (no RANK/WORLD_SIZE in the environment) there is nothing to join: ``SINGLE``. On CUDA
    each process takes the GPU of its LOCAL_RANK; ``device_for`` gives that device.
    """
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched():
        return SINGLE
    cuda = (device.type == "cuda") if device is not None else torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if cuda else "gloo")
    return current()


def device_for(device: torch.device) -> torch.device:
    """The device this process trains on: the GPU of its LOCAL_RANK under torchrun, else ``device`` itself."""
    if device.type == "cuda" and launched():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return device


def current() -> Group:
    """The ``Group`` of the initialised process group, or ``SINGLE`` when there is none."""
    if dist.is_available() and dist.is_initialized():
        return Group(dist.get_rank(), dist.get_world_size())
    return SINGLE


@dataclass
class Forwards:
    """The callable each of a Trainer's forward passes goes through: DDP-wrapped where gradients flow into the
    weights, compiled where one backward follows, the eager DDP module for the penalty's double backward."""

    g_sample: Callable[..., Tensor]   # G in D's step (no gradients)
    g_train: Callable[..., Tensor]    # G in G's step
    d_train: Callable[..., Tensor]    # D in D's step
    d_frozen: Callable[..., Tensor]   # D in G's step: weights frozen, so never DDP (it would wait for their gradients)
    d_penalty: Callable[..., Tensor]  # D in the penalty: GP/R1 backpropagate through a gradient, which compile cannot


def forwards(G: nn.Module, D: nn.Module, group: Group, device: torch.device, compile: bool) -> Forwards:
    """G's and D's forwards for ``group`` (DDP when it has several processes), ``torch.compile``-d if asked."""
    G_ddp, D_ddp = group.wrap(G, device), group.wrap(D, device)
    fast = torch.compile if compile else (lambda net: net)
    g_sample, d_frozen = fast(G), fast(D)
    return Forwards(g_sample=g_sample, g_train=g_sample if G_ddp is G else fast(G_ddp),
                    d_train=d_frozen if D_ddp is D else fast(D_ddp), d_frozen=d_frozen, d_penalty=D_ddp)


def training_group(wanted: Optional[bool]) -> Group:
    """The processes a Trainer trains over: the initialised group (None = if any), ``SINGLE`` (False), or the
    group, which must exist (True)."""
    if wanted is False:
        return SINGLE
    if wanted and not (dist.is_available() and dist.is_initialized()):
        raise ValueError("distributed=True needs a torch.distributed process group: launch with torchrun and "
                         "call ganlib.distributed.init() before building the Trainer")
    return current()


def shutdown() -> None:
    """Wait for every process, then leave the process group (a no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def has_staged_layers(module: nn.Module) -> bool:
    """Progressive models (PGGAN, StyleGAN with progressive=True) leave some layers unused at each stage."""
    return hasattr(module, "set_stage") and getattr(module, "progressive", True)


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside a DDP (or ``torch.compile``) wrapper, or the module itself."""
    while isinstance(module, DistributedDataParallel) or hasattr(module, "_orig_mod"):
        module = module.module if isinstance(module, DistributedDataParallel) else module._orig_mod
    return module
