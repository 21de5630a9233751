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
"""
from __future__ import annotations

import copy
import os
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from ganlib.runtime import device as default_device

CHECKPOINT_FORMAT = "ganlib-checkpoint-v1"


class DivergenceError(RuntimeError):
    """A loss became NaN or infinite; the message names the step, the loss and the last good checkpoint."""


class CheckpointError(RuntimeError):
    """A checkpoint is truncated, corrupt, or was saved from different models."""


class Hook:
    """Override any of these to change training without touching the loop. All are no-ops by default."""

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
    """Every ``every`` steps (and after the last), call ``fn(trainer) -> {name: value}`` and keep the results
    in ``self.records`` (``{'step': [...], name: [...]}``): e.g. modes captured or FD over training."""

    def __init__(self, fn: Callable[["Trainer"], Dict[str, float]], every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.fn, self.every = fn, every
        self.records: Dict[str, List[float]] = {"step": []}

    def _record(self, trainer: "Trainer") -> None:
        if self.records["step"] and self.records["step"][-1] == trainer.step:
            return
        self.records["step"].append(trainer.step)
        for key, value in self.fn(trainer).items():
            self.records.setdefault(key, []).append(float(value))

    def on_step_end(self, trainer: "Trainer", step: int, logs: Optional[Dict[str, float]]) -> None:
        if trainer.step % self.every == 0:
            self._record(trainer)

    def on_fit_end(self, trainer: "Trainer") -> None:
        self._record(trainer)

    def state_dict(self) -> Dict[str, Any]:
        return {"records": self.records}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
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
        hooks: ``Hook`` instances, called in order.
        checkpoint_path, checkpoint_every: where and how often (in steps) to save; also saved at the end.
        log_every: record history (and gradient norms) every this many steps.
    """

    def __init__(self, G: nn.Module, D: nn.Module, data: Any, *, d_loss: Callable[[Tensor, Tensor], Tensor],
                 g_loss: Callable[[Tensor], Tensor], g_opt: Optional[torch.optim.Optimizer] = None,
                 d_opt: Optional[torch.optim.Optimizer] = None, lr: float = 2e-4,
                 betas: Tuple[float, float] = (0.5, 0.999), n_critic: Union[int, Callable[[int], int]] = 1,
                 d_penalty: Optional[Callable[..., Tensor]] = None, d_penalty_every: int = 1,
                 ema_decay: Optional[float] = None, latent: Optional[Callable[[int], Tensor]] = None,
                 joint_d_batch: bool = False, hooks: Sequence[Hook] = (),
                 checkpoint_path: Optional[Union[str, Path]] = None, checkpoint_every: int = 0,
                 log_every: int = 10, progress: bool = True, device: Optional[torch.device] = None) -> None:
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
        if latent is None and not isinstance(getattr(G, "z_dim", None), int):
            raise ValueError(f"{type(G).__name__} has no integer z_dim attribute; give it one or pass latent=f(n)")
        self.device = device or default_device()
        self.G, self.D, self.data = G.to(self.device), D.to(self.device), data
        self.d_loss, self.g_loss = d_loss, g_loss
        self.g_opt = g_opt or torch.optim.Adam(self.G.parameters(), lr=lr, betas=betas)
        self.d_opt = d_opt or torch.optim.Adam(self.D.parameters(), lr=lr, betas=betas)
        self.n_critic, self.d_penalty, self.d_penalty_every = n_critic, d_penalty, d_penalty_every
        self.ema_decay = ema_decay
        self.G_ema = None if ema_decay is None else copy.deepcopy(self.G).eval().requires_grad_(False)
        self.latent = latent or (lambda n: torch.randn(n, self.G.z_dim, device=self.device))
        self.joint_d_batch, self.hooks = joint_d_batch, list(hooks)
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.checkpoint_every, self.log_every, self.progress = checkpoint_every, log_every, progress
        self.step = 0           # generator updates done
        self.d_steps = 0        # discriminator updates done
        self.batches_drawn = 0  # index of the next real batch
        self.history = History()
        self.last_good_checkpoint: Optional[Path] = None

    # -- the loop ----------------------------------------------------------------------------------

    def fit(self, steps: int) -> History:
        """Train until ``self.step == steps`` (a total, so calling it again after ``resume`` continues)."""
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative int, got {steps!r}")
        from tqdm.auto import tqdm

        for hook in self.hooks:
            hook.on_fit_start(self)
        bar = tqdm(total=steps, initial=self.step, disable=not self.progress, desc="training", leave=False)
        try:
            while self.step < steps:
                step = self.step
                for hook in self.hooks:
                    hook.on_step_start(self, step)
                record = (step + 1) % self.log_every == 0 or step == 0 or step + 1 == steps
                logs: Dict[str, float] = {}
                for _ in range(self._critic_iterations(step)):
                    d_logs, batch_size, conditional = self._d_step(step, record)
                    logs.update(d_logs)
                    for hook in self.hooks:
                        hook.on_d_step_end(self)
                logs.update(self._g_step(step, record, batch_size, conditional))
                self.step += 1
                if record:
                    logs["step"] = self.step
                    self.history.add(logs)
                    bar.set_postfix(d=f"{logs['d_loss']:.3f}", g=f"{logs['g_loss']:.3f}", refresh=False)
                for hook in self.hooks:
                    hook.on_step_end(self, step, logs if record else None)
                bar.update(1)
                if self.checkpoint_path and self.checkpoint_every and self.step % self.checkpoint_every == 0:
                    self.save(self.checkpoint_path)
        finally:
            bar.close()
        if self.checkpoint_path:
            self.save(self.checkpoint_path)
        for hook in self.hooks:
            hook.on_fit_end(self)
        return self.history

    def _critic_iterations(self, step: int) -> int:
        n = self.n_critic(step) if callable(self.n_critic) else self.n_critic
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n_critic must give a positive int, got {n!r} at step {step}")
        return n

    def _next_batch(self) -> Tuple[Tensor, Optional[Tensor]]:
        batch = self.data.batch(self.batches_drawn)
        self.batches_drawn += 1
        if isinstance(batch, (tuple, list)):
            x, y = batch
            return x.to(self.device), y.to(self.device)
        return batch.to(self.device), None

    def _call(self, net: nn.Module, x: Tensor, y: Optional[Tensor]) -> Tensor:
        return net(x) if y is None else net(x, y)

    def _d_step(self, step: int, record: bool) -> Tuple[Dict[str, float], int, bool]:
        """One D update; returns its logs, the real batch size and whether the batch had labels."""
        real, y = self._next_batch()
        with torch.no_grad():
            fake = self._call(self.G, self.latent(real.shape[0]), y)
        self.D.requires_grad_(True)
        if self.joint_d_batch:
            both = self._call(self.D, torch.cat([real, fake]), None if y is None else torch.cat([y, y]))
            real_out, fake_out = both[: real.shape[0]], both[real.shape[0]:]
        else:
            real_out, fake_out = self._call(self.D, real, y), self._call(self.D, fake, y)
        loss = self.d_loss(real_out, fake_out)
        self._guard(loss, "discriminator loss", step)
        total, penalty = loss, None
        self.d_steps += 1
        if self.d_penalty is not None and self.d_steps % self.d_penalty_every == 0:
            penalty = self.d_penalty(self.D, real, fake, y)
            self._guard(penalty, "discriminator penalty", step)
            total = loss + self.d_penalty_every * penalty
        self.d_opt.zero_grad(set_to_none=True)
        total.backward()
        logs = {}
        if record:
            logs = {"d_loss": loss.item(), "d_grad_norm": _grad_norm(self.D),
                    "real_score": real_out.mean().item(), "fake_score": fake_out.mean().item(),
                    "d_real": torch.sigmoid(real_out).mean().item(), "d_fake": torch.sigmoid(fake_out).mean().item()}
            if penalty is not None:
                logs["d_penalty"] = penalty.item()
        self.d_opt.step()
        return logs, real.shape[0], y is not None

    def _g_step(self, step: int, record: bool, n: int, conditional: bool) -> Dict[str, float]:
        # Labels for the fakes come from a real batch, so fake classes follow the data's class balance.
        y = self._next_batch()[1] if conditional else None
        self.D.requires_grad_(False)  # G's step needs gradients w.r.t. the fakes only, not D's weights
        fake = self._call(self.G, self.latent(n), y)
        fake_out = self._call(self.D, fake, y)
        loss = self.g_loss(fake_out)
        self._guard(loss, "generator loss", step)
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.D.requires_grad_(True)
        logs = {"g_loss": loss.item(), "g_grad_norm": _grad_norm(self.G)} if record else {}
        self.g_opt.step()
        if self.G_ema is not None:
            self._update_ema()
        return logs

    @torch.no_grad()
    def _update_ema(self) -> None:
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.lerp_(p, 1.0 - self.ema_decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def _guard(self, loss: Tensor, what: str, step: int) -> None:
        if not torch.isfinite(loss).all():
            where = (f"the last good checkpoint is {self.last_good_checkpoint} (step {self._saved_step})"
                     if self.last_good_checkpoint else "no checkpoint was written yet")
            raise DivergenceError(
                f"{what} became {loss.item()} at step {step}: training diverged. {where}. "
                "Lower the learning rates, check the inputs are in [-1, 1], or use a gradient penalty; "
                "then resume from the checkpoint."
            )

    def reset_optimizers(self) -> None:
        """Fresh optimiser state with the same settings (PGGAN resets Adam at each new resolution)."""
        self.g_opt = type(self.g_opt)(self.G.parameters(), **self.g_opt.defaults)
        self.d_opt = type(self.d_opt)(self.D.parameters(), **self.d_opt.defaults)

    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Tensor] = None, use_ema: bool = True) -> Tensor:
        """``n`` generated samples (from ``G_ema`` when it exists and ``use_ema``)."""
        net = self.G_ema if (use_ema and self.G_ema is not None) else self.G
        z = self.latent(n)
        return net(z) if labels is None else net(z, labels.to(self.device))

    # -- checkpoints -------------------------------------------------------------------------------

    def state_dict(self) -> Dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "models": {"G": type(self.G).__name__, "D": type(self.D).__name__},
            "step": self.step, "d_steps": self.d_steps, "batches_drawn": self.batches_drawn,
            "G": self.G.state_dict(), "D": self.D.state_dict(),
            "G_ema": None if self.G_ema is None else self.G_ema.state_dict(),
            "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
            "history": dict(self.history), "rng": _rng_state(),
            "hooks": [hook.state_dict() for hook in self.hooks],
        }

    def save(self, path: Union[str, Path]) -> Path:
        """Write a checkpoint atomically: a crash mid-write never replaces the previous good file."""
        path = Path(path)
        atomic_save(self.state_dict(), path)
        self.last_good_checkpoint, self._saved_step = path, self.step
        return path

    def resume(self, path: Union[str, Path]) -> "Trainer":
        """Restore models, optimisers, step counters, history, hooks and every RNG from ``path``."""
        state = load_checkpoint(path)
        for key in ("G", "D"):
            mine, theirs = type(getattr(self, key)).__name__, state["models"][key]
            if mine != theirs:
                raise CheckpointError(f"{path} holds a {theirs} as {key}, but this trainer has a {mine}; "
                                      "build the same models you trained, or pick the right checkpoint")
        try:
            self.G.load_state_dict(state["G"])
            self.D.load_state_dict(state["D"])
            if self.G_ema is not None and state["G_ema"] is not None:
                self.G_ema.load_state_dict(state["G_ema"])
            self.g_opt.load_state_dict(state["g_opt"])
            self.d_opt.load_state_dict(state["d_opt"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{path} does not fit these models (different sizes or options?): {err}") from err
        if len(state["hooks"]) != len(self.hooks):
            raise CheckpointError(f"{path} was saved with {len(state['hooks'])} hooks, this trainer has "
                                  f"{len(self.hooks)}; resume with the same hooks")
        for hook, hook_state in zip(self.hooks, state["hooks"]):
            hook.load_state_dict(hook_state)
        self.step, self.d_steps, self.batches_drawn = state["step"], state["d_steps"], state["batches_drawn"]
        self.history = History(state["history"])
        _set_rng_state(state["rng"])
        self.last_good_checkpoint, self._saved_step = Path(path), self.step
        return self


def atomic_save(obj: Any, path: Union[str, Path]) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Load a ganlib checkpoint safely (``weights_only=True``), with clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train first, or check the path")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"{path} is truncated or not a ganlib checkpoint ({type(err).__name__}: "
                              f"{str(err)[:120]}); delete it and resume from an earlier one") from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} file; it was written by something else")
    return state


def _grad_norm(net: nn.Module) -> float:
    norms = [p.grad.detach().norm(2) for p in net.parameters() if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def _rng_state() -> Dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
