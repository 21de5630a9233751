"""Checkpoint files you can trust: atomic writes, a checksum, every RNG, clear errors for bad files.

A checkpoint file (format v2) is one header line and a ``torch.save`` payload::

    ganlib-checkpoint-v2
    sha256=<64 hex digits> bytes=<payload length>
    <payload: torch.save(state)>

The checksum is checked before anything is unpickled, so a truncated file or a flipped byte is a
``CheckpointError`` naming the file, never a silently different model; the payload is then loaded with
``weights_only=True``, so a checkpoint cannot run code. Version-1 files (a bare ``torch.save`` zip,
written before the header existed) still load, without a checksum to verify.

Files are written to ``.NAME.tmp-PID`` next to the target, flushed, fsynced and renamed over it, so a
crash or ``kill -9`` mid-write leaves the previous file intact; the temp files such a crash leaves behind
are removed by the next save to the same path.

``weight_problem`` is the divergence check the Trainer runs before a state may become its "last good"
checkpoint: every floating-point weight and buffer finite and at most ``MAX_ABS_WEIGHT`` in magnitude,
every optimiser state finite.

``Resumable`` is the Trainer's checkpoint half (its ``state_dict``, ``save``, ``resume``, ``load_state_dict``,
what it keeps when training diverges or is interrupted); ``HeldInterrupt`` holds Ctrl-C until a step ends.
"""
from __future__ import annotations

import copy
import glob
import hashlib
import io
import math
import numbers
import os
import pickle
import random
import re
import signal
import threading
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

CHECKPOINT_FORMAT = "ganlib-checkpoint-v2"
LEGACY_FORMAT = "ganlib-checkpoint-v1"
MAGIC = CHECKPOINT_FORMAT.encode() + b"\n"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's zip container: how a version-1 file starts
# Weights beyond this are treated as diverged: no model in the course comes within orders of magnitude of it
# (its weights are O(1)), while an lr of 1e20 puts them at 1e17 in one step. Change it here if yours must.
MAX_ABS_WEIGHT = 1e6
REQUIRED_KEYS = ("format", "models", "step", "d_steps", "batches_drawn", "G", "D", "G_ema", "g_opt", "d_opt",
                 "history", "rng", "hooks")
_HEADER_LINE = re.compile(rb"sha256=([0-9a-f]{64}) bytes=(\d+)\n")
_MAX_HEADER = 160

PathLike = Union[str, Path]


class CheckpointError(RuntimeError):
    """A checkpoint is truncated, corrupt, or was saved from different models; the message names the file."""


# -- writing ---------------------------------------------------------------------------------------

def atomic_write(path: PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(fh)`` on a temp file next to ``path``, fsync, then rename it over ``path``.

    Readers see the old file or the new one, never half of one. Temp files left by writers that were
    killed mid-write (``.NAME.tmp-PID`` whose process is gone) are removed first.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file path such as {path / 'checkpoint.pt'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = _temp_path(path, os.getpid())
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_save(obj: Any, path: PathLike) -> None:
    """``torch.save(obj)`` written atomically (a plain torch file: ``torch.load`` reads it, no header)."""
    atomic_write(path, lambda fh: torch.save(obj, fh))


def save_checkpoint(state: Dict[str, Any], path: PathLike) -> Path:
    """Write a trainer state as a checksummed checkpoint file, atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    header = MAGIC + b"sha256=%s bytes=%d\n" % (hashlib.sha256(payload).hexdigest().encode(), len(payload))

    def write(fh: BinaryIO) -> None:
        fh.write(header)
        fh.write(payload)

    return atomic_write(path, write)


def remove_stale_temps(path: PathLike) -> List[Path]:
    """Delete the ``.NAME.tmp-PID`` files of ``path`` whose writer process no longer exists; returns them.

    A temp file of a live process (another writer, right now) is left alone.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _temp_path(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.tmp-{pid}")


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows: keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, it is someone else's
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading ---------------------------------------------------------------------------------------

def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Load and verify a ganlib checkpoint (checksum, then ``weights_only=True``), with clear errors.

    Raises ``FileNotFoundError`` when there is no file, and ``CheckpointError`` -- naming the file and
    what to do -- when it is a folder, unreadable, empty, truncated, corrupt, foreign or incomplete.
    """
    path = Path(path)
    data = _read(path)
    state = _unpickle(_payload(data, path), path)
    if not isinstance(state, dict) or state.get("format") not in (CHECKPOINT_FORMAT, LEGACY_FORMAT):
        raise CheckpointError(f"{path} is not a ganlib-checkpoint file (no ganlib format tag); it was written by "
                              "something else -- check the path, or save it with Trainer.save")
    check_state(state, path)
    return state


def check_state(state: Any, source: Union[str, Path]) -> None:
    """Raise ``CheckpointError`` unless ``state`` is a dict with every key a trainer checkpoint holds."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{source} is not a trainer state (a dict), got {type(state).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{source} lacks {', '.join(missing)}: it is incomplete or was edited; "
                              "resume from another checkpoint, or train afresh")


def _read(path: Path) -> bytes:
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; pass the .pt file inside it")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint at {path}; train first (Trainer(..., checkpoint_path=...)), "
                                "or check the path") from None
    except OSError as err:
        raise CheckpointError(f"cannot read {path} ({err.strerror or err}); check its permissions") from err


def _payload(data: bytes, path: Path) -> bytes:
    """The verified torch payload of a v2 file, or the whole of a v1 file."""
    if not data:
        raise CheckpointError(f"{path} is empty (0 bytes): the save that wrote it was cut off; delete it and "
                              "resume from an earlier checkpoint, or train afresh")
    if data.startswith(ZIP_MAGIC):
        return data  # version 1: no header, no checksum
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data) or ZIP_MAGIC.startswith(data):
            raise CheckpointError(f"{path} is truncated ({len(data)} bytes, inside its header); delete it and "
                                  "resume from an earlier checkpoint")
        raise CheckpointError(f"{path} is not a ganlib-checkpoint file (it does not start with "
                              f"{CHECKPOINT_FORMAT!r}); check the path, or save it with Trainer.save")
    match = _HEADER_LINE.match(data, len(MAGIC), len(MAGIC) + _MAX_HEADER)
    if match is None:
        raise CheckpointError(f"{path} is truncated or corrupt: its header line is damaged; delete it and "
                              "resume from an earlier checkpoint")
    digest, size = match.group(1).decode(), int(match.group(2))
    payload = data[match.end():]
    if len(payload) != size:
        raise CheckpointError(f"{path} is truncated or corrupt: it holds {len(payload)} of its {size} bytes; "
                              "delete it and resume from an earlier checkpoint")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"{path} is corrupt: its sha256 checksum does not match its contents (bytes were "
                              "changed on disk after it was written); delete it and resume from an earlier checkpoint")
    return payload


def _unpickle(payload: bytes, path: Path) -> Any:
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused an object: never in a checkpoint we wrote
        raise CheckpointError(f"{path} is corrupt or not a ganlib-checkpoint file: its pickle holds Python objects "
                              "other than tensors and plain values (e.g. a whole model), which a checkpoint never "
                              "does and which are not unpickled here, as they could run code; check the path") from err
    except Exception as err:  # torch raises RuntimeError, OSError, EOFError... for bad zips
        detail = (re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines() or [""])[0][:120]  # no ANSI bold
        raise CheckpointError(f"{path} cannot be read: it is truncated, corrupt or not a ganlib-checkpoint file "
                              f"({type(err).__name__}: {detail}); delete it and resume from an earlier checkpoint, "
                              "or check the path") from err


# -- divergence check ------------------------------------------------------------------------------

def weight_problem(state: Dict[str, Any], limit: Optional[float] = None) -> Optional[str]:
    """What makes ``state`` unfit to be a last good checkpoint, or None.

    Every floating-point tensor of ``G``, ``D`` and ``G_ema`` must be finite with ``|w| <= limit``
    (default ``MAX_ABS_WEIGHT``); the optimisers' state must be finite (its size is not bounded:
    Adam's second moments may legitimately be large).
    """
    limit = MAX_ABS_WEIGHT if limit is None else limit
    for net in ("G", "D", "G_ema"):
        name, value = _largest(state.get(net) or {})
        if name is not None and not value <= limit:
            if not math.isfinite(value):
                return f"{net}'s {name} is not finite (nan or inf)"
            return f"{net}'s {name} reached |w| = {value:.3g} (over MAX_ABS_WEIGHT = {limit:.3g})"
    for opt in ("g_opt", "d_opt"):
        for index, param_state in (state.get(opt) or {}).get("state", {}).items():
            name, value = _largest(param_state)
            if name is not None and not math.isfinite(value):
                return f"{opt}'s {name} for parameter {index} is not finite"
    return None


def _largest(tensors: Dict[str, Any]) -> Tuple[Optional[str], float]:
    """(name, max |x|) of the float tensor with the largest magnitude (NaN counts as largest)."""
    floats = [(k, t) for k, t in tensors.items() if torch.is_tensor(t) and t.is_floating_point() and t.numel()]
    if not floats:
        return None, 0.0
    maxima = torch.stack([t.detach().abs().amax().double().cpu() for _, t in floats])
    worst = int(torch.where(torch.isnan(maxima), torch.full_like(maxima, float("inf")), maxima).argmax())
    return floats[worst][0], float(maxima[worst])


# -- random number generators ------------------------------------------------------------------------

def rng_state() -> Dict[str, Any]:
    """Python's, numpy's, torch's (and CUDA's) RNG states, as tensors and plain values ``weights_only`` loads."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- a trainer's checkpoints -------------------------------------------------------------------------

class DivergenceError(RuntimeError):
    """A loss became NaN or infinite, or the weights exploded; the message names the step and where the last
    finite state was kept (the last good checkpoint, or ``trainer.last_finite_state`` in memory)."""


# Steps between checkpoints when a checkpoint_path is given without checkpoint_every. At the course's
# CPU speeds (5-20 steps/s) a crash that no handler sees (kill -9, power) loses under two minutes, and a
# save of a course-sized model costs well under 1 % of that. Ctrl-C and divergence are handled anyway.
DEFAULT_CHECKPOINT_EVERY = 500


class Resumable:
    """The checkpoint half of ``ganlib.train.Trainer``: its state, saving and resuming, and keeping progress safe.

    Nothing trained is lost: with a ``checkpoint_path`` the trainer saves every ``checkpoint_every`` steps, at
    the end and on Ctrl-C; a NaN or an explosion keeps the last finite state (on disk if there is a path, else
    in ``last_finite_state``), and a diverged state never becomes the last good checkpoint.

    Resuming restores weights, optimiser *state*, counters, history, hooks and RNGs, but the trainer's own
    optimiser *settings* (lr, betas, weight decay: every param-group entry but the parameters) win over the
    checkpoint's, so "lower the learning rate, then resume" does what it says. All or nothing: a state that does
    not fit raises ``CheckpointError`` and leaves the trainer untouched. A checkpoint without an EMA generator
    loaded into a trainer with ``ema_decay`` starts ``G_ema`` as a copy of the loaded G; one with an EMA
    generator loaded into a trainer without ``ema_decay`` has its G_ema ignored (with a warning).

    The Trainer's ``__init__`` sets what these methods use: G, D, G_ema, g_opt, d_opt, hooks, augment, scalers,
    meta, ema_decay, dist, step, d_steps, batches_drawn, history, log_every, checkpoint_path, checkpoint_every,
    last_good_checkpoint, last_finite_state, _saved_step, _in_step.
    """

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

    def save(self, path: PathLike) -> Path:
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

    def resume(self, path: PathLike) -> "Resumable":
        """Restore this trainer from the checkpoint at ``path``; see ``load_state_dict`` for what wins."""
        state = load_checkpoint(path)
        self.load_state_dict(state, source=str(path))
        self.last_good_checkpoint, self._saved_step = Path(path), self.step
        return self

    def load_state_dict(self, state: Dict[str, Any], source: str = "the state") -> "Resumable":
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
        self.history.clear()  # in place: references to trainer.history stay valid
        self.history.update({key: list(values) for key, values in state["history"].items()})

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

    def _keep_progress(self) -> None:
        """After a step: refresh the finite copy every ``log_every`` steps, save every ``checkpoint_every``."""
        if self.step % self.log_every == 0:
            self._remember_finite()
        if self.checkpoint_path and self.checkpoint_every and self.step % self.checkpoint_every == 0:
            self.save(self.checkpoint_path)

    def _interrupted(self) -> str:
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


def checkpoint_cadence(path: Optional[PathLike], every: Optional[int]) -> int:
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


def _check_hook(hook: Any, hook_state: Any, source: str) -> None:
    """Trial-load a hook's state into a shallow copy (hooks may hold figures or widgets: no deep copies)."""
    try:
        copy.copy(hook).load_state_dict(hook_state)
    except Exception as err:
        raise CheckpointError(f"{source}: hook {type(hook).__name__} cannot load its saved state ({err!r}); "
                              "resume with the same hooks, in the same order") from err


class HeldInterrupt:
    """Hold Ctrl-C (SIGINT) until the current step ends, so the trainer is never left half-updated.

    A second Ctrl-C interrupts at once. Only where it can work: the main thread, with Python's default
    handler (as in a script or a Jupyter cell); elsewhere it changes nothing.
    """

    def __init__(self) -> None:
        self.pressed, self._previous = False, None

    def __enter__(self) -> "HeldInterrupt":
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
