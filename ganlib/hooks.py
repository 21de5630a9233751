"""Hooks: how a chapter changes training without touching the loop (``ganlib.train.Trainer``).

A ``Hook`` overrides any of five callbacks and may keep state across checkpoints. The ones every chapter shares:

* ``WeightClip``: WGAN's clamp of the critic after each of its steps (Arjovsky et al. 2017, Alg. 1);
* ``Evaluate``: the one periodic evaluation, with the one cadence rule; ``ganlib.experiments.toy``'s
  ``ModeTracker`` and ``W1Probe`` are ``Evaluate``s, and so is ``TimedEvaluate``, which adds a training clock;

and one schedule that is not a hook but changes the loop from outside too: ``wgan_critic_schedule``.

Others live with what they serve: PGGAN's ``ProgressiveSchedule`` (``ganlib.experiments.progressive``), live
plots (``ganlib.viz.LivePlot``), sample grids (``ganlib.cli``).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union

import torch

from ganlib.losses import clip_weights_

if TYPE_CHECKING:
    from ganlib.train import Trainer


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


class TimedEvaluate(Evaluate):
    """An ``Evaluate`` with a training clock, for comparisons at equal wall-clock time (chapter 09: PGGAN vs LapGAN).

    ``seconds`` adds up the time spent inside training steps, from this hook's ``on_step_start`` to its
    ``on_step_end``: its own evaluations, and whatever runs between steps or between fits (checkpoints, sample
    grids), are not counted. With ``at`` and ``once``: after the first step that brings ``seconds`` to ``at`` or
    more, ``once(trainer)`` is called (before that step's periodic evaluation) and ``result`` becomes
    ``{'step': trainer.step, 'seconds': seconds, **once(trainer)}``; it stays None until then. ``once`` runs on a
    fork of the random state, so the training after it does not depend on when the clock reached ``at``.

    Cadence, records and checkpoint state are ``Evaluate``'s. The clock is not saved (a resumed run counts from
    0), so a checkpoint moves freely between a ``TimedEvaluate`` and a plain ``Evaluate``. ``clock`` is the time
    source, ``time.perf_counter`` unless a test gives its own.
    """

    def __init__(self, fn: Callable[["Trainer"], Dict[str, float]], every: Union[int, Callable[[int], int]], *,
                 at: Optional[float] = None, once: Optional[Callable[["Trainer"], Dict[str, Any]]] = None,
                 at_end: bool = True, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__(fn, every, at_end=at_end)
        if (at is None) != (once is None):
            raise ValueError("give both at (seconds) and once (a function of the trainer), or neither")
        if at is not None and not at >= 0:
            raise ValueError(f"at must be >= 0 seconds, got {at}")
        self.at, self.once, self.clock = at, once, clock
        self.seconds = 0.0
        self.result: Optional[Dict[str, Any]] = None
        self._started = 0.0

    def on_step_start(self, trainer: "Trainer", step: int) -> None:
        self._started = self.clock()

    def on_step_end(self, trainer: "Trainer", step: int, logs: Optional[Dict[str, float]]) -> None:
        self.seconds += self.clock() - self._started  # first: the evaluations below are not training time
        if self.once is not None and self.result is None and self.seconds >= self.at:
            # the moment is the wall clock's: on its own RNG stream, or the rest of the run would depend on it
            cuda = [trainer.device.index or 0] if trainer.device.type == "cuda" else []
            with torch.random.fork_rng(devices=cuda):
                self.result = {"step": trainer.step, "seconds": self.seconds, **self.once(trainer)}
        super().on_step_end(trainer, step, logs)


def wgan_critic_schedule(step: int, n_critic: int = 5) -> int:
    """``Trainer(n_critic=...)`` as the official WGAN code: 100 critic steps for the first 25 G steps and every
    500th, else ``n_critic``."""
    return 100 if step < 25 or step % 500 == 0 else n_critic
