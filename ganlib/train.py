"""The one training loop every chapter uses.

A *step* is one generator update, preceded by ``n_critic`` discriminator updates. The loop does the
bookkeeping -- batches, optimiser steps, EMA of G, history, progress bar, checkpoints, the NaN guard --
and nothing else. What differs between GANs comes in from outside:

* ``d_loss(real_out, fake_out)`` and ``g_loss(fake_out)``: functions from ``ganlib.losses``;
* ``d_penalty(D, real, fake, labels)``: an already-weighted penalty (gradient penalty, R1), applied every
  ``d_penalty_every`` D steps and scaled by that interval (lazy regularisation, Karras et al. 2020, Sec. 3.1);
* hooks (``Hook`` subclasses): WGAN weight clipping after each D step, PGGAN's fade-in alpha and
  optimiser reset at each new resolution, live plots.

Batches are ``data.batch(i)`` for the i-th batch drawn (see ``ganlib.data.sources``), and every RNG is
saved in the checkpoint, so a resumed run continues exactly as an uninterrupted one would on CPU.

Nothing trained is lost: with a ``checkpoint_path``, ``fit`` saves every ``checkpoint_every`` steps
(``DEFAULT_CHECKPOINT_EVERY`` = 500 unless given), at the end, and on Ctrl-C (``KeyboardInterrupt``,
re-raised after the save); a NaN or an explosion keeps the last finite state. The file format, the
checksum and the RNG capture live in ``ganlib.checkpoint``.

Fast paths, all off by default (``ganlib.precision``, ``ganlib.distributed``): bf16/fp16 autocast of every
forward pass (fp16 with a gradient scaler), channels-last memory format, ``torch.compile`` of the forward
passes that are backpropagated once (never of the penalty's, which needs a double backward), and
data-parallel training over the processes of a ``torch.distributed`` group (torchrun).
"""
from __future__ import annotations

import copy
import math
import numbers
import signal
import threading
import warnings
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ganlib import distributed, precision as amp
from ganlib.checkpoint import (CHECKPOINT_FORMAT, MAX_ABS_WEIGHT, CheckpointError, atomic_save, check_state,
                               load_checkpoint, rng_state, save_checkpoint, set_rng_state, weight_problem)
from ganlib.runtime import device as default_device

# Re-exported: notebooks, tests and ganlib.experiments import these from ganlib.train.
__all__ = ["CHECKPOINT_FORMAT", "MAX_ABS_WEIGHT", "CheckpointError", "DivergenceError", "Hook", "WeightClip",
           "Evaluate", "History", "Trainer", "atomic_save", "load_checkpoint", "wgan_critic_schedule",
           "DEFAULT_CHECKPOINT_EVERY"]

# Steps between checkpoints when a checkpoint_path is given without checkpoint_every. At the course's
# CPU speeds (5-20 steps/s) a crash that no handler sees (kill -9, power) loses under two minutes, and a
# save of a course-sized model costs well under 1 % of that. Ctrl-C and divergence are handled anyway.
DEFAULT_CHECKPOINT_EVERY = 500


class DivergenceError(RuntimeError):
    """A loss became NaN or infinite, or the weights exploded; the message names the step and where the last
    finite state was kept (the last good checkpoint, or ``trainer.last_finite_state`` in memory)."""


class Hook:
    """Override any of these to change training without touching the loop. All are no-ops by default.

    ``step`` is always ``trainer.step`` at the call, the generator steps done: in ``on_step_start`` the steps
    before this one (0 for the first), in ``on_step_end`` those including it (1 after the first).
    """

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_step_start(self, trainer: "Trainer", step: int) -> None: ...
    def on_d_step_end(self, trainer: "Trainer") -> None: ...
    def on_step_end(self, trainer: "Trainer", step: int, logs: Optional[Dict[str, float]]) -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...

    def state_dict(self) -> Dict[str, Any]:
        """Whatever the hook must remember across a checkpoint (plain Python values and tensors)."""
        return {}

    def load_state_dict(self, state: Dict[str, Any]) -> None: ...


class WeightClip(Hook):
    """WGAN: clamp all critic parameters to [-c, c] after each critic update (Arjovsky et al. 2017, Alg. 1)."""

    def __init__(self, clip: float = 0.01) -> None:
        if not clip > 0:
            raise ValueError(f"clip must be positive, got {clip}")
        self.clip = clip

    def on_d_step_end(self, trainer: "Trainer") -> None:
        from ganlib.losses import clip_weights_
        clip_weights_(trainer.D, self.clip)


class Evaluate(Hook):
    """Call ``fn(trainer) -> {name: value}`` every ``every`` steps and keep the results: the course's one
    periodic evaluation (modes captured, FD, W1 over training), which the others build on.

    The one cadence rule: evaluate after the step that brings ``trainer.step`` to a multiple of ``every``
    (steps every, 2 every, ...), and with ``at_end`` after each ``fit`` too (never twice for one step).
    ``every`` may be a function of the step, for a cadence that changes during a run (``lambda step: 15 if
    step <= 210 else 150``). Results are in ``records`` (``{'step': [...], name: [...]}``), or as one dict per
    evaluation in ``rows``; ``records`` are checkpointed, so a resumed run's curve continues.
    """

    def __init__(self, fn: Callable[["Trainer"], Dict[str, float]], every: Union[int, Callable[[int], int]], *,
                 at_end: bool = True) -> None:
        if not callable(every) and every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.fn, self.every, self.at_end = fn, every, at_end
        self.records: Dict[str, List[float]] = {"step": []}

    def due(self, step: int) -> bool:
        """Whether to evaluate after ``step`` steps."""
        every = self.every(step) if callable(self.every) else self.every
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must give a positive int, got {every!r} at step {step}")
        return step % every == 0

    def _record(self, trainer: "Trainer") -> None:
        if self.records["step"] and self.records["step"][-1] == trainer.step:
            return
        self.records["step"].append(trainer.step)
        for key, value in self.fn(trainer).items():
            self.records.setdefault(key, []).append(float(value))

    @property
    def rows(self) -> List[Dict[str, float]]:
        """``records`` as one ``{'step': s, name: value, ...}`` per evaluation."""
        return [dict(zip(self.records, values)) for values in zip(*self.records.values())]

    def on_step_end(self, trainer: "Trainer", step: int, logs: Optional[Dict[str, float]]) -> None:
        if self.due(step):
            self._record(trainer)

    def on_fit_end(self, trainer: "Trainer") -> None:
        if self.at_end:
            self._record(trainer)

    def state_dict(self) -> Dict[str, Any]:
        return {"records": self.records}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if "records" in state:  # hooks that became Evaluates (ModeTracker, W1Probe) saved none before
            self.records = {k: list(v) for k, v in state["records"].items()}


def wgan_critic_schedule(step: int, n_critic: int = 5) -> int:
    """The official WGAN code's critic iterations: 100 for the first 25 G steps and every 500th, else n_critic."""
    return 100 if step < 25 or step % 500 == 0 else n_critic


class History(dict):
    """Logged values as ``{name: [value, ...]}``, all lists aligned with ``history['step']``."""

    def add(self, logs: Dict[str, float]) -> None:
        length = len(self.get("step", []))
        for key, value in logs.items():
            column = self.setdefault(key, [float("nan")] * length)
            column.append(float(value))
        for key, column in self.items():
            if len(column) < length + 1:
                column.append(float("nan"))

    def last(self, key: str) -> float:
        return self[key][-1]


Batch = Union[Tensor, Tuple[Tensor, Tensor]]


class Trainer:
    """Alternating D/G training with hooks, EMA, history, checkpoints and a NaN guard.

    Args:
        G, D: generator (``G(z)`` or ``G(z, labels)``; exposes ``z_dim`` unless ``latent`` is given) and
            discriminator / critic (``D(x)`` or ``D(x, labels)`` returning one score per sample).
        data: a batch source with ``batch(i)`` returning ``x`` or ``(x, labels)``.
        d_loss, g_loss: loss functions on D's outputs, e.g. ``losses.discriminator_bce`` and
            ``losses.generator_nonsaturating``.
        g_opt, d_opt: optimisers; default Adam(lr, betas).
        n_critic: D steps per G step, or a function of the step (e.g. ``wgan_critic_schedule``).
        d_penalty: ``f(D, real, fake, labels) -> Tensor``, already weighted, added to D's loss.
        d_penalty_every: lazy regularisation interval; the penalty is multiplied by it.
        ema_decay: keep ``G_ema``, an exponential moving average of G's weights (None = off).
        latent: ``f(n) -> z`` on the right device; default ``randn(n, G.z_dim)``.
        joint_d_batch: run real and fake through D as one concatenated batch (matters with BatchNorm).
        augment: ``f(images) -> images`` applied to every batch D sees, real and fake, in D's step, its
            penalty and G's step (differentiable augmentation, e.g. ``ganlib.augment.DiffAugment()``);
            None = off. Its ``state_dict`` (the augmentation RNG), if it has one, is checkpointed.
        hooks: ``Hook`` instances, called in order.
        checkpoint_path: where ``fit`` saves: every ``checkpoint_every`` steps, at the end, on Ctrl-C, and
            the last finite state on divergence.
        checkpoint_every: steps between saves; default ``DEFAULT_CHECKPOINT_EVERY`` (500) with a
            checkpoint_path, 0 = only at the end / on interrupt / on divergence.
        log_every: record history (and gradient norms) every this many steps; the weights are checked for
            divergence and an in-memory copy of the last finite state is refreshed as often.
        precision: 'fp32' (default), 'bf16' (autocast, CPU or CUDA), 'fp16' (autocast + a gradient scaler per
            optimiser, CUDA) or 'auto' (see ``ganlib.precision``). Forward passes and losses run under autocast;
            weights, optimiser state and G_ema stay fp32. An fp16 penalty runs in fp32: its gradient w.r.t. the
            input is not loss-scaled, so fp16 could flush it to zero.
        channels_last: keep conv weights and image batches in channels-last memory format (faster convolutions
            on oneDNN and tensor cores); results equal fp32's up to float rounding.
        compile: ``torch.compile`` the forward passes of G and D that are backpropagated once; the penalty
            (GP, R1) runs on the eager D, because compiled graphs do not support its double backward.
        reuse_fakes: G's step trains on the fakes of the last D step instead of drawing new ones, as
            pytorch/examples' DCGAN loop does: one G forward pass per step fewer. A different random stream,
            so not bit-identical to a run without it.
        distributed: train data-parallel over the initialised ``torch.distributed`` group (see
            ``ganlib.distributed``): None = whenever one with more than one process exists, False = never.
        meta: plain values saved in every checkpoint as ``state['meta']`` (the command line stores how to
            rebuild the models there).

    Resuming (``resume(path)`` or ``load_state_dict(state)``) restores weights, optimiser *state*, counters,
    history, hooks and RNGs, but this trainer's optimiser *settings* (lr, betas, weight decay: every
    param-group entry but the parameters) win over the checkpoint's, so "lower the learning rate, then
    resume" does what it says. A checkpoint without an EMA generator loaded into a trainer with
    ``ema_decay`` starts ``G_ema`` as a copy of the loaded G; one with an EMA generator loaded into a
    trainer without ``ema_decay`` has its G_ema ignored (with a warning).
    """

    def __init__(self, G: nn.Module, D: nn.Module, data: Any, *, d_loss: Callable[[Tensor, Tensor], Tensor],
                 g_loss: Callable[[Tensor], Tensor], g_opt: Optional[torch.optim.Optimizer] = None,
                 d_opt: Optional[torch.optim.Optimizer] = None, lr: float = 2e-4,
                 betas: Tuple[float, float] = (0.5, 0.999), n_critic: Union[int, Callable[[int], int]] = 1,
                 d_penalty: Optional[Callable[..., Tensor]] = None, d_penalty_every: int = 1,
                 ema_decay: Optional[float] = None, latent: Optional[Callable[[int], Tensor]] = None,
                 joint_d_batch: bool = False, augment: Optional[Callable[[Tensor], Tensor]] = None,
                 hooks: Sequence[Hook] = (),
                 checkpoint_path: Optional[Union[str, Path]] = None, checkpoint_every: Optional[int] = None,
                 log_every: int = 10, progress: bool = True, device: Optional[torch.device] = None,
                 precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                 reuse_fakes: bool = False, distributed: Optional[bool] = None,
                 meta: Optional[Dict[str, Any]] = None) -> None:
        if not hasattr(data, "batch"):
            raise TypeError("data must be a batch source with .batch(i) (ganlib.data.TensorSource / SamplerSource), "
                            f"got {type(data).__name__}")
        if isinstance(n_critic, int) and n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if not isinstance(d_penalty_every, int) or d_penalty_every < 1:
            raise ValueError(f"d_penalty_every must be a positive int, got {d_penalty_every!r}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), e.g. 0.999, got {ema_decay}")
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be a function of a batch of images (e.g. ganlib.augment.DiffAugment()), "
                            f"got {type(augment).__name__}")
        if latent is None and not isinstance(getattr(G, "z_dim", None), int):
            raise ValueError(f"{type(G).__name__} has no integer z_dim attribute; give it one or pass latent=f(n)")
        self.device = device or default_device()
        self.dist = _process_group(distributed)
        self.precision = amp.resolve(precision, self.device)
        self.channels_last, self.reuse_fakes, self.meta = bool(channels_last), bool(reuse_fakes), meta
        memory = torch.channels_last if channels_last else torch.preserve_format
        self.G = G.to(self.device, memory_format=memory)
        self.D = D.to(self.device, memory_format=memory)
        self.data = data
        self.d_loss, self.g_loss = d_loss, g_loss
        self.g_opt = g_opt or torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
        self.d_opt = d_opt or torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas)
        self.scalers = {key: amp.grad_scaler(self.precision, self.device) for key in ("d", "g")}
        self.n_critic, self.d_penalty, self.d_penalty_every = n_critic, d_penalty, d_penalty_every
        self.ema_decay = ema_decay
        keep_ema = ema_decay is not None and self.dist.is_main  # data parallel: one average, on rank 0
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if keep_ema else None
        self.latent = latent or (lambda n: torch.randn(n, self.G.z_dim, device=self.device))
        self.nets = _forwards(self.G, self.D, self.dist, self.device, compile)
        self.joint_d_batch, self.hooks = joint_d_batch, list(hooks)
        self.augment = augment
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.checkpoint_every = _checkpoint_cadence(checkpoint_path, checkpoint_every)
        self.log_every, self.progress = log_every, progress and self.dist.is_main
        self.step = 0           # generator updates done
        self.d_steps = 0        # discriminator updates done
        self.batches_drawn = 0  # index of the next real batch
        self.history = History()
        self.last_good_checkpoint: Optional[Path] = None
        self._saved_step = -1
        self._in_step = False
        self.last_finite_state: Optional[Dict[str, Any]] = None  # refreshed every log_every steps in fit

    # -- the loop ----------------------------------------------------------------------------------

    def fit(self, steps: int) -> History:
        """Train until ``self.step == steps`` (a total, so calling it again after ``resume`` continues).

        Ctrl-C is held until the current step ends (a second one interrupts at once), so the trainer stays
        whole: with a ``checkpoint_path`` it is saved there, and the ``KeyboardInterrupt`` is re-raised
        either way; the models stay in memory, ready to sample or to ``fit`` on.
        """
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative int, got {steps!r}")
        from tqdm.auto import tqdm

        for hook in self.hooks:
            hook.on_fit_start(self)
        self._remember_finite()
        bar = tqdm(total=steps, initial=self.step, disable=not self.progress, desc="training", leave=False)
        try:
            with _HeldInterrupt() as interrupt:
                while self.step < steps:
                    self._in_step = True
                    self._train_step(steps, bar)
                    self._in_step = False
                    self._after_step()
                    interrupt.raise_if_pressed()
        except KeyboardInterrupt as err:
            err.args = (self._on_interrupt(),)
            raise
        finally:
            self._in_step = False
            bar.close()
        if self.checkpoint_path:
            self.save(self.checkpoint_path)
        for hook in self.hooks:
            hook.on_fit_end(self)
        return self.history

    def _train_step(self, steps: int, bar: Any) -> None:
        step = self.step
        for hook in self.hooks:
            hook.on_step_start(self, step)
        record = (step + 1) % self.log_every == 0 or step == 0 or step + 1 == steps
        logs: Dict[str, float] = {}
        n_critic = self._critic_iterations(step)
        for i in range(n_critic):
            d_logs, drawn = self._d_step(step, record, keep_fakes=self.reuse_fakes and i == n_critic - 1)
            logs.update(d_logs)
            for hook in self.hooks:
                hook.on_d_step_end(self)
        logs.update(self._g_step(step, record, drawn))
        self.step += 1
        if record:
            logs["step"] = self.step
            self.history.add(logs)
            bar.set_postfix(d=f"{logs['d_loss']:.3f}", g=f"{logs['g_loss']:.3f}", refresh=False)
        for hook in self.hooks:
            hook.on_step_end(self, self.step, logs if record else None)
        bar.update(1)

    def _after_step(self) -> None:
        if self.step % self.log_every == 0:
            self._remember_finite()
        if self.checkpoint_path and self.checkpoint_every and self.step % self.checkpoint_every == 0:
            self.save(self.checkpoint_path)

    def _on_interrupt(self) -> str:
        """Save what was trained (if there is a path and the weights are sane); the interrupt's message."""
        where = f"training interrupted at step {self.step}"
        # A second Ctrl-C (or one outside the main thread) can land mid-step: D updated, G not yet.
        cut = " in the middle of a step (it is redone on fit, so not bit-exact)" if self._in_step else ""
        if self.checkpoint_path is None:
            return (f"{where}{cut}; the trainer and its models are in memory (no checkpoint_path was given, "
                    "nothing was saved): sample from it, or fit again to continue")
        if not self.dist.is_main:
            return f"{where}{cut}; rank {self.dist.rank} leaves saving to rank 0"
        state = self.state_dict()
        problem = weight_problem(state)
        if problem is not None:
            return f"{where}{cut}; not saved to {self.checkpoint_path}: {problem}"
        try:
            self._write(state, self.checkpoint_path)
        except OSError as err:  # keep the interrupt: the trained models are still in memory
            return f"{where}{cut}; saving to {self.checkpoint_path} failed ({err}); the models are still in memory"
        return f"{where}{cut}; saved to {self.checkpoint_path}: resume(path) and fit again to continue"

    def _critic_iterations(self, step: int) -> int:
        n = self.n_critic(step) if callable(self.n_critic) else self.n_critic
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n_critic must give a positive int, got {n!r} at step {step}")
        return n

    def _next_batch(self) -> Tuple[Tensor, Optional[Tensor]]:
        """The next global batch of the source, this process's slice of it, on the device."""
        batch = self.data.batch(self.batches_drawn)
        self.batches_drawn += 1
        x, y = batch if isinstance(batch, (tuple, list)) else (batch, None)
        x, y = self.dist.shard(x), self.dist.shard(y)
        return self._to_device(x), None if y is None else self._to_device(y)

    def _to_device(self, x: Tensor) -> Tensor:
        if self.channels_last and x.dim() == 4:
            return x.to(self.device, memory_format=torch.channels_last)
        return x.to(self.device)

    def _latents(self, n: int) -> Tensor:
        """Latents for this process's n samples: drawn for the whole global batch, then sliced like the data."""
        return self.dist.shard(self.latent(n * self.dist.world_size))

    def _call(self, net: Callable[..., Tensor], x: Tensor, y: Optional[Tensor]) -> Tensor:
        return net(x) if y is None else net(x, y)

    def _autocast(self, penalty: bool = False) -> Any:
        if penalty and self.precision == "fp16":  # input gradients are not loss-scaled: keep them in fp32
            return amp.autocast("fp32", self.device)
        return amp.autocast(self.precision, self.device)

    def _d_step(self, step: int, record: bool, keep_fakes: bool = False) -> Tuple[Dict[str, float], "_Drawn"]:
        """One D update; returns its logs and what G's step needs (batch size, labels, the fakes if kept)."""
        real, y = self._next_batch()
        with torch.set_grad_enabled(keep_fakes), self._autocast():
            generated = self._call(self.nets.g_train if keep_fakes else self.nets.g_sample,
                                   self._latents(real.shape[0]), y)
        fake = generated.detach()
        self.D.requires_grad_(True)
        if self.augment is not None:  # DiffAugment: the same policy on both, so D cannot tell them apart by it
            real, fake = self.augment(real), self.augment(fake)
        with self._autocast():
            if self.joint_d_batch:
                both = self._call(self.nets.d_train, torch.cat([real, fake]), None if y is None else torch.cat([y, y]))
                real_out, fake_out = both[: real.shape[0]], both[real.shape[0]:]
            else:
                real_out, fake_out = self._call(self.nets.d_train, real, y), self._call(self.nets.d_train, fake, y)
        real_out, fake_out = real_out.float(), fake_out.float()  # losses in fp32, whatever the autocast dtype
        loss = self.d_loss(real_out, fake_out)
        loss_value = self._checked(loss, "discriminator loss", step)
        total, penalty_value = loss, None
        self.d_steps += 1
        if self.d_penalty is not None and self.d_steps % self.d_penalty_every == 0:
            with self._autocast(penalty=True):
                penalty = self.d_penalty(self.nets.d_penalty, real, fake, y)
            penalty_value = self._checked(penalty, "discriminator penalty", step)
            total = loss + self.d_penalty_every * penalty
        self.d_opt.zero_grad(set_to_none=True)
        self._backward(total, "d")
        logs = {}
        if record:
            logs = {"d_loss": loss_value, "d_grad_norm": self._unscaled_grad_norm("d"),
                    "real_score": real_out.mean().item(), "fake_score": fake_out.mean().item(),
                    "d_real": torch.sigmoid(real_out).mean().item(), "d_fake": torch.sigmoid(fake_out).mean().item()}
            if penalty_value is not None:
                logs["d_penalty"] = penalty_value
        self._optimizer_step("d")
        return logs, _Drawn(real.shape[0], y is not None, generated if keep_fakes else None, y)

    def _g_step(self, step: int, record: bool, drawn: "_Drawn") -> Dict[str, float]:
        if drawn.fake is not None:  # reuse_fakes: the last D step's fakes, still attached to G's graph
            fake, y = drawn.fake, drawn.labels
        else:
            # Labels for the fakes come from a real batch, so fake classes follow the data's class balance.
            y = self._next_batch()[1] if drawn.conditional else None
        self.D.requires_grad_(False)  # G's step needs gradients w.r.t. the fakes only, not D's weights
        with self._autocast():
            if drawn.fake is None:
                fake = self._call(self.nets.g_train, self._latents(drawn.n), y)
            fake_out = self._call(self.nets.d_frozen, fake if self.augment is None else self.augment(fake), y)
        loss = self.g_loss(fake_out.float())
        loss_value = self._checked(loss, "generator loss", step)
        self.g_opt.zero_grad(set_to_none=True)
        self._backward(loss, "g")
        self.D.requires_grad_(True)
        logs = {"g_loss": loss_value, "g_grad_norm": self._unscaled_grad_norm("g")} if record else {}
        self._optimizer_step("g")
        if self.G_ema is not None:
            self._update_ema()
        return logs

    # fp16's gradient scaler, where there is one; plain backward and step otherwise

    def _backward(self, loss: Tensor, which: str) -> None:
        scaler = self.scalers[which]
        (loss if scaler is None else scaler.scale(loss)).backward()

    def _unscaled_grad_norm(self, which: str) -> float:
        scaler, opt = self.scalers[which], self._optimizer(which)
        if scaler is not None:
            scaler.unscale_(opt)
        return _grad_norm(self.D if which == "d" else self.G)

    def _optimizer_step(self, which: str) -> None:
        scaler, opt = self.scalers[which], self._optimizer(which)
        if scaler is None:
            opt.step()
        else:  # skips the step when a gradient overflowed, and adapts the scale
            scaler.step(opt)
            scaler.update()

    def _optimizer(self, which: str) -> torch.optim.Optimizer:
        return self.d_opt if which == "d" else self.g_opt

    @torch.no_grad()
    def _update_ema(self) -> None:
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1.0 - self.ema_decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def _checked(self, loss: Tensor, what: str, step: int) -> float:
        """The loss as a float (averaged over the processes, so all of them stop together if it is not finite)."""
        value = float(self.dist.mean(loss.detach()))
        if not math.isfinite(value):
            raise self._divergence(f"{what} became {value} at step {step}")
        return value

    def _divergence(self, problem: str) -> DivergenceError:
        """The error for a diverged run, after making sure the last finite state is kept (and where)."""
        return DivergenceError(
            f"{problem}: training diverged. {self._keep_last_finite()}. Lower the learning rates, check the "
            "inputs are in [-1, 1], or use a gradient penalty; then resume from it: a new Trainer(..., lr=lower) "
            "keeps its own learning rates when it resumes."
        )

    def _keep_last_finite(self) -> str:
        """Write the in-memory finite copy to checkpoint_path if it is newer than the file; say where it is."""
        snapshot, path = self.last_finite_state, self.checkpoint_path
        if snapshot is not None and path is not None and snapshot["step"] > self._saved_step and self.dist.is_main:
            try:
                self._write(snapshot, path)
            except OSError as err:
                return (f"The last finite state (step {snapshot['step']}) is kept in memory as "
                        f"trainer.last_finite_state; writing it to {path} failed ({err})")
        if self.last_good_checkpoint is not None:
            return f"The last good checkpoint is {self.last_good_checkpoint} (step {self._saved_step})"
        if snapshot is not None:
            return (f"No checkpoint_path was given, so the last finite state (step {snapshot['step']}) is kept in "
                    "memory: new_trainer.load_state_dict(trainer.last_finite_state) continues from it")
        return "No finite state was kept: the weights were already diverged when fit started"

    def _remember_finite(self) -> None:
        """Check the weights (raising DivergenceError if they are not sane) and keep a copy of this state."""
        state = self.state_dict()
        problem = weight_problem(state)
        if problem is not None:
            raise self._divergence(f"after step {self.step}, {problem}")
        self.last_finite_state = copy.deepcopy(state)

    def reset_optimizers(self) -> None:
        """Fresh optimiser state with the same settings (PGGAN resets Adam at each new resolution)."""
        self.g_opt = type(self.g_opt)(self.G.parameters(), **self.g_opt.defaults)
        self.d_opt = type(self.d_opt)(self.D.parameters(), **self.d_opt.defaults)

    @property
    def is_main(self) -> bool:
        """True in the process that writes (checkpoints, samples, logs): the only one, or rank 0 of a group."""
        return self.dist.is_main

    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Tensor] = None, use_ema: bool = True) -> Tensor:
        """``n`` generated samples (from ``G_ema`` when it exists and ``use_ema``)."""
        net = self.G_ema if (use_ema and self.G_ema is not None) else self.G
        z = self.latent(n)
        return net(z) if labels is None else net(z, labels.to(self.device))

    # -- checkpoints -------------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        """Everything a resume needs: models, optimisers, counters, history, hooks, RNGs (live tensors, not copies)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "models": {"G": type(self.G).__name__, "D": type(self.D).__name__},
            "optimizers": {"g_opt": type(self.g_opt).__name__, "d_opt": type(self.d_opt).__name__},
            "step": self.step, "d_steps": self.d_steps, "batches_drawn": self.batches_drawn,
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "G_ema": None if self.G_ema is None else self.G_ema.state_dict(),
            "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
            "history": dict(self.history), "rng": rng_state(),
            "hooks": [hook.state_dict() for hook in self.hooks],
            "augment": self.augment.state_dict() if hasattr(self.augment, "state_dict") else None,
            "scalers": {k: s.state_dict() for k, s in self.scalers.items() if s is not None} or None,
            "meta": self.meta,
        }

    def save(self, path: Union[str, Path]) -> Path:
        """Write a checkpoint atomically, with a checksum: a crash mid-write never replaces the previous file.

        Refuses with ``DivergenceError`` when a weight is non-finite or over ``MAX_ABS_WEIGHT`` (1e6), so a
        diverged state never becomes the last good checkpoint.
        """
        state = self.state_dict()
        problem = weight_problem(state)
        if problem is not None:
            raise self._divergence(f"not saving {path} after step {self.step}: {problem}")
        if not self.dist.is_main:  # data parallel: every process holds the same weights, rank 0 writes them
            return Path(path)
        return self._write(state, Path(path))

    def _write(self, state: Dict[str, Any], path: Path) -> Path:
        save_checkpoint(state, path)
        self.last_good_checkpoint, self._saved_step = path, state["step"]
        return path

    def resume(self, path: Union[str, Path]) -> "Trainer":
        """Restore this trainer from the checkpoint at ``path``; see ``load_state_dict`` for what wins."""
        state = load_checkpoint(path)
        self.load_state_dict(state, source=str(path))
        self.last_good_checkpoint, self._saved_step = Path(path), self.step
        return self

    def load_state_dict(self, state: Dict[str, Any], source: str = "the state") -> "Trainer":
        """Restore models, optimiser state, counters, history, hooks and every RNG from ``state``.

        All or nothing: every part is first loaded into copies, so a state that does not fit (other
        models, widths, optimisers, hooks) raises ``CheckpointError`` and leaves this trainer untouched.
        This trainer's optimiser settings (lr, betas, ...) are kept; without an EMA generator in
        ``state``, ``G_ema`` starts as a copy of the loaded G.
        """
        check_state(state, source)
        for problem in self._kind_mismatches(state):
            raise CheckpointError(f"{source} {problem}")
        problem = weight_problem(state)
        if problem is not None:
            raise CheckpointError(f"{source} holds a diverged state ({problem}); resume from an earlier checkpoint")
        staged = self._stage(state, source)
        self._commit(state, staged, source)
        return self

    def _kind_mismatches(self, state: Dict[str, Any]) -> List[str]:
        saved = dict(state["models"], **state.get("optimizers", {}))
        mine = {"G": self.G, "D": self.D, "g_opt": self.g_opt, "d_opt": self.d_opt}
        return [f"holds a {saved[key]} as {key}, but this trainer has a {type(obj).__name__}; build the same "
                "models and optimisers you trained, or pick the right checkpoint"
                for key, obj in mine.items() if key in saved and saved[key] != type(obj).__name__]

    def _stage(self, state: Dict[str, Any], source: str) -> Dict[str, Any]:
        """Load every part into a copy (raising CheckpointError on the first that does not fit)."""
        staged = {"G": _loaded_copy(self.G, state["G"], "G", source),
                  "D": _loaded_copy(self.D, state["D"], "D", source)}
        if self.G_ema is not None:
            # A checkpoint saved without EMA: the average starts from the loaded G, as it does at construction.
            ema = state["G_ema"] if state["G_ema"] is not None else state["G"]
            staged["G_ema"] = _loaded_copy(self.G_ema, ema, "G_ema", source)
        for key in ("g_opt", "d_opt"):
            _check_optimizer(getattr(self, key), state[key], key, source)
        if len(state["hooks"]) != len(self.hooks):
            raise CheckpointError(f"{source} was saved with {len(state['hooks'])} hooks, this trainer has "
                                  f"{len(self.hooks)}; resume with the same hooks, in the same order")
        for hook, hook_state in zip(self.hooks, state["hooks"]):
            _check_hook(hook, hook_state, source)
        return staged

    def _commit(self, state: Dict[str, Any], staged: Dict[str, Any], source: str) -> None:
        """Copy the staged parts into the live objects (users hold references to G, D and the hooks)."""
        previous_rng = rng_state()
        try:
            set_rng_state(state["rng"])
        except Exception as err:  # a malformed RNG state: nothing has changed yet
            set_rng_state(previous_rng)
            raise CheckpointError(f"{source} has an unusable RNG state ({err}); resume from another checkpoint") from err
        for key in ("g_opt", "d_opt"):
            _load_optimizer_keeping_settings(getattr(self, key), state[key])
        for key, module in staged.items():
            getattr(self, key).load_state_dict(module.state_dict())
        if self.ema_decay is None and state["G_ema"] is not None:
            warnings.warn(f"{source} holds an EMA generator, but this trainer has ema_decay=None: G_ema is ignored "
                          "(pass ema_decay to keep it)", stacklevel=3)
        for hook, hook_state in zip(self.hooks, state["hooks"]):
            hook.load_state_dict(hook_state)
        if state.get("augment") is not None and hasattr(self.augment, "load_state_dict"):
            self.augment.load_state_dict(state["augment"])
        for key, scaler_state in (state.get("scalers") or {}).items():  # fp16's loss scale carries on
            if self.scalers.get(key) is not None:
                self.scalers[key].load_state_dict(scaler_state)
        self.step, self.d_steps, self.batches_drawn = state["step"], state["d_steps"], state["batches_drawn"]
        self.history = History({key: list(values) for key, values in state["history"].items()})


class _Drawn(NamedTuple):
    """What D's step drew that G's step needs: the batch size, whether there were labels, and (reuse_fakes)
    the fakes with their graph and labels."""

    n: int
    conditional: bool
    fake: Optional[Tensor]
    labels: Optional[Tensor]


@dataclass
class _Nets:
    """The callable each forward pass goes through: DDP-wrapped where gradients flow into the weights,
    compiled where one backward follows, the eager DDP module for the penalty's double backward."""

    g_sample: Callable[..., Tensor]   # G in D's step (no gradients)
    g_train: Callable[..., Tensor]    # G in G's step
    d_train: Callable[..., Tensor]    # D in D's step
    d_frozen: Callable[..., Tensor]   # D in G's step: weights frozen, so never DDP (it would wait for their gradients)
    d_penalty: Callable[..., Tensor]  # D in the penalty: GP/R1 backpropagate through a gradient, which compile cannot


def _forwards(G: nn.Module, D: nn.Module, group: distributed.Group, device: torch.device, compile: bool) -> _Nets:
    G_ddp, D_ddp = group.wrap(G, device), group.wrap(D, device)
    fast = torch.compile if compile else (lambda net: net)
    g_sample, d_frozen = fast(G), fast(D)
    return _Nets(g_sample=g_sample, g_train=g_sample if G_ddp is G else fast(G_ddp),
                 d_train=d_frozen if D_ddp is D else fast(D_ddp), d_frozen=d_frozen, d_penalty=D_ddp)


def _process_group(wanted: Optional[bool]) -> distributed.Group:
    """The processes to train over: the initialised torch.distributed group unless told not to."""
    if wanted is False:
        return distributed.SINGLE
    if wanted and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        raise ValueError("distributed=True needs a torch.distributed process group: launch with torchrun and "
                         "call ganlib.distributed.init() before building the Trainer")
    return distributed.current()


def _checkpoint_cadence(path: Optional[Union[str, Path]], every: Optional[int]) -> int:
    """checkpoint_every as given, or the default with a path; nonsense is a ValueError."""
    if every is None:
        return DEFAULT_CHECKPOINT_EVERY if path is not None else 0
    if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 0:
        raise ValueError(f"checkpoint_every must be a whole number of steps >= 1 (or 0 = save only at the end, "
                         f"on Ctrl-C and on divergence), got {every!r}")
    if every and path is None:
        raise ValueError(f"checkpoint_every={every} needs a checkpoint_path to save to")
    return int(every)


def _loaded_copy(module: nn.Module, state: Any, name: str, source: str) -> nn.Module:
    staged = copy.deepcopy(module)
    try:
        staged.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as err:
        detail = " ".join(str(err).split())[:300].rstrip(".")
        raise CheckpointError(f"{source} does not fit this trainer's {name} ({type(module).__name__}): different "
                              f"sizes or options? {detail}. Build the same model you trained, or pick the checkpoint "
                              "that matches") from err
    return staged


def _check_optimizer(opt: torch.optim.Optimizer, saved: Any, name: str, source: str) -> None:
    """Group sizes and state shapes must match the parameters (torch checks only the counts, at load)."""
    groups = saved.get("param_groups") if isinstance(saved, dict) else None
    if not isinstance(groups, list) or not isinstance(saved.get("state"), dict):
        raise CheckpointError(f"{source} has no usable {name} state (param_groups and state are missing)")
    sizes, mine = [len(g.get("params", ())) for g in groups], [len(g["params"]) for g in opt.param_groups]
    if sizes != mine:
        raise CheckpointError(f"{source}'s {name} optimises parameter groups of sizes {sizes}, this trainer's {mine}: "
                              "the models differ; build the ones you trained")
    params = [p for group in opt.param_groups for p in group["params"]]
    ids = [i for group in groups for i in group["params"]]
    for index, p in zip(ids, params):
        for key, value in saved["state"].get(index, {}).items():
            if torch.is_tensor(value) and value.dim() > 0 and value.shape != p.shape:
                raise CheckpointError(f"{source}'s {name} {key} has shape {tuple(value.shape)} for a parameter of "
                                      f"shape {tuple(p.shape)}: the models differ; build the ones you trained")
    try:
        copy.deepcopy(opt).load_state_dict(saved)
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise CheckpointError(f"{source}'s {name} state does not load ({err})") from err


def _load_optimizer_keeping_settings(opt: torch.optim.Optimizer, saved: Dict[str, Any]) -> None:
    """Load the saved moments and step counts, then put back this optimiser's own hyperparameters."""
    settings = [{k: v for k, v in group.items() if k != "params"} for group in opt.param_groups]
    opt.load_state_dict(saved)
    for group, mine in zip(opt.param_groups, settings):
        params = group["params"]
        group.clear()
        group.update(mine, params=params)


def _check_hook(hook: Hook, hook_state: Any, source: str) -> None:
    """Trial-load a hook's state into a shallow copy (hooks may hold figures or widgets: no deep copies)."""
    if type(hook).load_state_dict is Hook.load_state_dict:
        return
    try:
        copy.copy(hook).load_state_dict(hook_state)
    except Exception as err:
        raise CheckpointError(f"{source}: hook {type(hook).__name__} cannot load its saved state ({err!r}); "
                              "resume with the same hooks, in the same order") from err


class _HeldInterrupt:
    """Hold Ctrl-C (SIGINT) until the current step ends, so the trainer is never left half-updated.

    A second Ctrl-C interrupts at once. Only where it can work: the main thread, with Python's default
    handler (as in a script or a Jupyter cell); elsewhere it changes nothing.
    """

    def __enter__(self) -> "_HeldInterrupt":
        self.pressed, self._previous = False, None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def raise_if_pressed(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _grad_norm(net: nn.Module) -> float:
    norms = [p.grad.detach().norm(2) for p in net.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0
