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
"""
from __future__ import annotations

import glob
import hashlib
import io
import math
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

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

