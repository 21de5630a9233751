"""The one training loop every chapter uses.

A *step* is one generator update, preceded by ``n_critic`` discriminator updates. The loop does the
bookkeeping -- batches, optimiser steps, EMA of G, history, progress bar, the NaN guard -- and nothing else.
What differs between GANs comes in from outside: losses (``ganlib.losses``), a weighted penalty (GP, R1; lazy
regularisation, Karras et al. 2020, Sec. 3.1), the optimisers, hooks (``ganlib.hooks``). Batches are
``data.batch(i)`` for the i-th batch drawn and every RNG is checkpointed, so a resumed run continues exactly as
an uninterrupted one would on CPU (``ganlib.checkpoint.Resumable``).
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ganlib import precision as amp
from ganlib.checkpoint import HeldInterrupt, PathLike, Resumable, checkpoint_cadence
from ganlib.distributed import forwards, training_group
from ganlib.hooks import Hook
from ganlib.runtime import device as default_device

OptimizerFactory = Callable[[nn.Module, str], torch.optim.Optimizer]


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


class Trainer(Resumable):
    """Alternating D/G training with hooks, EMA, history, checkpoints and a NaN guard.

    Args:
        G, D: ``G(z)`` or ``G(z, labels)`` (with ``z_dim``); ``D(x)`` or ``D(x, labels)``, one score per sample.
        data: a batch source, ``batch(i) -> x or (x, labels)``, the same size every time: G's step makes as many
            fakes, labelled like a real batch (``ganlib.data.TensorSource``, ``SamplerSource``).
        d_loss, g_loss: functions of D's outputs, e.g. ``losses.discriminator_bce``, ``losses.generator_nonsaturating``.
        lr, betas: Adam's for both networks (default 2e-4, (0.5, 0.999)); or instead ``optimizer``,
            ``f(net, 'G' | 'D') -> torch.optim.Optimizer`` (RMSprop, one lr per network), called again on reset.
        n_critic: D steps per G step, or a function of the step (``ganlib.hooks.wgan_critic_schedule``).
        d_penalty, d_penalty_every: ``f(D, real, fake, labels)``, already weighted, added to D's loss every
            ``d_penalty_every`` D steps and multiplied by that interval.
        ema_decay: keep ``G_ema``, an exponential moving average of G's weights (None = off).
        latent: ``f(n) -> z`` on the right device; default ``randn(n, G.z_dim)``.
        joint_d_batch: real and fake through D as one concatenated batch (matters with BatchNorm).
        augment: ``f(images) -> images`` on every batch D sees (``ganlib.augment.DiffAugment()``), checkpointed.
        hooks: ``Hook`` instances, called in order.
        checkpoint_path, checkpoint_every: where and how often (default 500 steps) ``fit`` saves, also at the end,
            on Ctrl-C and (the last finite state) on divergence: ``ganlib.checkpoint.Resumable``.
        log_every: record history and gradient norms, and refresh the in-memory finite state, this often.
        precision, channels_last, compile, reuse_fakes, distributed: fast paths, off by default: autocast
            (``ganlib.precision``), channels-last memory, ``torch.compile`` of the once-backpropagated forwards,
            G's step on the last D step's fakes (pytorch/examples' loop), data parallel (``ganlib.distributed``).
        meta: plain values saved in every checkpoint as ``state['meta']`` (the command line's rebuild recipe).
    """

    def __init__(self, G: nn.Module, D: nn.Module, data: Any, *, d_loss: Callable[[Tensor, Tensor], Tensor],
                 g_loss: Callable[[Tensor], Tensor], lr: Optional[float] = None,
                 betas: Optional[Tuple[float, float]] = None, optimizer: Optional[OptimizerFactory] = None,
                 n_critic: Union[int, Callable[[int], int]] = 1, d_penalty: Optional[Callable[..., Tensor]] = None,
                 d_penalty_every: int = 1, ema_decay: Optional[float] = None,
                 latent: Optional[Callable[[int], Tensor]] = None, joint_d_batch: bool = False,
                 augment: Optional[Callable[[Tensor], Tensor]] = None, hooks: Sequence[Hook] = (),
                 checkpoint_path: Optional[PathLike] = None, checkpoint_every: Optional[int] = None,
                 log_every: int = 10, progress: bool = True, device: Optional[torch.device] = None,
                 precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                 reuse_fakes: bool = False, distributed: Optional[bool] = None,
                 meta: Optional[Dict[str, Any]] = None) -> None:
        _check_arguments(G, data, n_critic, d_penalty_every, ema_decay, log_every, augment, latent, optimizer, lr, betas)
        self.device = device or default_device()
        self.dist = training_group(distributed)
        self.precision = amp.resolve(precision, self.device)
        self.channels_last, self.reuse_fakes, self.meta = bool(channels_last), bool(reuse_fakes), meta
        memory = torch.channels_last if channels_last else torch.preserve_format
        self.G, self.D = G.to(self.device, memory_format=memory), D.to(self.device, memory_format=memory)
        self.data, self.d_loss, self.g_loss = data, d_loss, g_loss
        self.batch_size, self.labelled = _batch_shape(data)  # global: this process trains on its share
        self.make_optimizer = optimizer or _adam(2e-4 if lr is None else lr, betas or (0.5, 0.999))
        self.g_opt, self.d_opt = self.make_optimizer(self.G, "G"), self.make_optimizer(self.D, "D")
        self.scalers = {key: amp.grad_scaler(self.precision, self.device) for key in ("d", "g")}
        self.n_critic, self.d_penalty, self.d_penalty_every = n_critic, d_penalty, d_penalty_every
        self.ema_decay = ema_decay
        keep_ema = ema_decay is not None and self.dist.is_main  # data parallel: one average, on rank 0
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if keep_ema else None
        self.latent = latent or (lambda n: torch.randn(n, self.G.z_dim, device=self.device))
        self.nets = forwards(self.G, self.D, self.dist, self.device, compile)
        self.joint_d_batch, self.augment, self.hooks = joint_d_batch, augment, list(hooks)
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.checkpoint_every = checkpoint_cadence(checkpoint_path, checkpoint_every)
        self.log_every, self.progress = log_every, progress and self.dist.is_main
        self.step, self.d_steps, self.batches_drawn = 0, 0, 0  # G updates, D updates, index of the next real batch
        self.history = History()
        self.last_good_checkpoint: Optional[Path] = None
        self.last_finite_state: Optional[Dict[str, Any]] = None  # refreshed every log_every steps in fit
        self._saved_step, self._in_step = -1, False
        self._kept_fakes: Optional[Tuple[Tensor, Optional[Tensor]]] = None  # reuse_fakes: D's for G's step

    def fit(self, steps: int) -> History:
        """Train until ``self.step == steps`` (a total, so calling it again after ``resume`` continues). Ctrl-C is
        held until the step ends (a second one interrupts at once), the trainer saved if it has a checkpoint_path."""
        if not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative int, got {steps!r}")
        from tqdm.auto import tqdm

        for hook in self.hooks:
            hook.on_fit_start(self)
        self._remember_finite()
        bar = tqdm(total=steps, initial=self.step, disable=not self.progress, desc="training", leave=False)
        try:
            with HeldInterrupt() as interrupt:
                while self.step < steps:
                    self._in_step = True
                    self._train_step(steps, bar)
                    self._in_step = False
                    self._keep_progress()
                    interrupt.raise_if_pressed()
        except KeyboardInterrupt as err:
            err.args = (self._interrupted(),)
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
        n_critic = self.n_critic(step) if callable(self.n_critic) else self.n_critic
        if not isinstance(n_critic, int) or n_critic < 1:
            raise ValueError(f"n_critic must give a positive int, got {n_critic!r} at step {step}")
        for i in range(n_critic):
            logs.update(self._d_step(step, record, keep_fakes=self.reuse_fakes and i == n_critic - 1))
            for hook in self.hooks:
                hook.on_d_step_end(self)
        logs.update(self._g_step(step, record))
        self.step += 1
        if record:
            logs["step"] = self.step
            self.history.add(logs)
            bar.set_postfix(d=f"{logs['d_loss']:.3f}", g=f"{logs['g_loss']:.3f}", refresh=False)
        for hook in self.hooks:
            hook.on_step_end(self, self.step, logs if record else None)
        bar.update(1)

    def _d_step(self, step: int, record: bool, keep_fakes: bool) -> Dict[str, float]:
        """One D update; ``keep_fakes`` leaves its fakes, still attached to G's graph, for G's step."""
        real, y = self._next_batch()
        with torch.set_grad_enabled(keep_fakes), self._autocast():
            generated = self._call(self.nets.g_train if keep_fakes else self.nets.g_sample,
                                   self._latents(real.shape[0] * self.dist.world_size), y)
        self._kept_fakes = (generated, y) if keep_fakes else None
        fake = generated.detach()
        self.D.requires_grad_(True)
        if self.augment is not None:  # DiffAugment: the same policy on both, so D cannot tell them apart by it
            real, fake = self.augment(real), self.augment(fake)
        with self._autocast():
            real_out, fake_out = self._d_outputs(real, fake, y)
        real_out, fake_out = real_out.float(), fake_out.float()  # losses in fp32, whatever the autocast dtype
        loss = self.d_loss(real_out, fake_out)
        loss_value, penalty_value = self._checked(loss, "discriminator loss", step), None
        self.d_steps += 1
        if self.d_penalty is not None and self.d_steps % self.d_penalty_every == 0:
            with self._autocast(penalty=True):
                penalty = self.d_penalty(self.nets.d_penalty, real, fake, y)
            penalty_value = self._checked(penalty, "discriminator penalty", step)
            loss = loss + self.d_penalty_every * penalty
        grad_norm = amp.update(self.d_opt, self.scalers["d"], loss, self.D, norm=record)
        if not record:
            return {}
        logs = {"d_loss": loss_value, "d_grad_norm": grad_norm, "real_score": real_out.mean().item(),
                "fake_score": fake_out.mean().item(), "d_real": torch.sigmoid(real_out).mean().item(),
                "d_fake": torch.sigmoid(fake_out).mean().item()}
        return logs if penalty_value is None else {**logs, "d_penalty": penalty_value}

    def _d_outputs(self, real: Tensor, fake: Tensor, y: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        if not self.joint_d_batch:
            return self._call(self.nets.d_train, real, y), self._call(self.nets.d_train, fake, y)
        both = self._call(self.nets.d_train, torch.cat([real, fake]), None if y is None else torch.cat([y, y]))
        return both[: real.shape[0]], both[real.shape[0]:]

    def _g_step(self, step: int, record: bool) -> Dict[str, float]:
        """One G update on a source-sized batch of fresh fakes (``reuse_fakes``: the last D step's)."""
        if self._kept_fakes is not None:
            (fake, y), self._kept_fakes = self._kept_fakes, None
        else:  # labels for the fakes come from a real batch, so fake classes follow the data's class balance
            y = self._next_batch()[1] if self.labelled else None
            with self._autocast():
                fake = self._call(self.nets.g_train, self._latents(self.batch_size), y)
        self.D.requires_grad_(False)  # G's step needs gradients w.r.t. the fakes only, not D's weights
        with self._autocast():
            fake_out = self._call(self.nets.d_frozen, fake if self.augment is None else self.augment(fake), y)
        loss = self.g_loss(fake_out.float())
        loss_value = self._checked(loss, "generator loss", step)
        grad_norm = amp.update(self.g_opt, self.scalers["g"], loss, self.G, norm=record)
        self.D.requires_grad_(True)
        if self.G_ema is not None:
            self._update_ema()
        return {"g_loss": loss_value, "g_grad_norm": grad_norm} if record else {}

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
        """This process's slice of latents for a global batch of ``n`` (drawn whole, sliced like the data)."""
        return self.dist.shard(self.latent(n))

    def _call(self, net: Callable[..., Tensor], x: Tensor, y: Optional[Tensor]) -> Tensor:
        return net(x) if y is None else net(x, y)

    def _autocast(self, penalty: bool = False) -> Any:
        if penalty and self.precision == "fp16":  # input gradients are not loss-scaled: keep them in fp32
            return amp.autocast("fp32", self.device)
        return amp.autocast(self.precision, self.device)

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

    def reset_optimizers(self) -> None:
        """Fresh optimisers from the same factory (PGGAN resets Adam at each new resolution)."""
        self.g_opt, self.d_opt = self.make_optimizer(self.G, "G"), self.make_optimizer(self.D, "D")

    @torch.no_grad()
    def sample(self, n: int, labels: Optional[Tensor] = None, use_ema: bool = True) -> Tensor:
        """``n`` generated samples (from ``G_ema`` when it exists and ``use_ema``)."""
        net = self.G_ema if (use_ema and self.G_ema is not None) else self.G
        z = self.latent(n)
        return net(z) if labels is None else net(z, labels.to(self.device))


def _adam(lr: float, betas: Tuple[float, float]) -> OptimizerFactory:
    return lambda net, role: torch.optim.Adam(net.parameters(), lr=lr, betas=betas)


def _batch_shape(data: Any) -> Tuple[int, bool]:
    """(global batch size, whether batches carry labels) of a source, read off its first batch."""
    first = data.batch(0)
    labelled = isinstance(first, (tuple, list))
    return len(first[0] if labelled else first), labelled


def _check_arguments(G: nn.Module, data: Any, n_critic: Any, d_penalty_every: Any, ema_decay: Optional[float],
                     log_every: int, augment: Any, latent: Any, optimizer: Any, lr: Any, betas: Any) -> None:
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
    if optimizer is not None and (lr is not None or betas is not None):
        raise ValueError("give lr/betas (Adam for both networks) or an optimizer factory, not both")
