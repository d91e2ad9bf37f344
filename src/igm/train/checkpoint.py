"""Checkpoints: state_dicts, the config, the step and every RNG state — never pickled classes.

Writes are atomic: the file is written to a temporary name in the same folder, flushed to disk and
renamed over the old one, so a process killed mid-save leaves the previous checkpoint intact.
Files are loaded with ``weights_only=True``.

A run's ``checkpoints/`` folder holds the last ``train.keep_checkpoints`` step checkpoints
``step-00001000.pt``, ``last.pt`` (the newest of them, a hard link where the file system has them,
else a copy) and ``best.pt``. :func:`load_latest` resumes from the newest readable one, so a file
corrupted on disk costs the steps since the one before it, not the run.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["save_atomic", "save_step", "load", "load_latest", "resumable", "step_checkpoints", "remove_temporaries",
           "rng_state", "set_rng_state", "CheckpointError"]

STEP_GLOB = "step-*.pt"
TEMP_GLOB = ".*.tmp"


class CheckpointError(ValueError):
    """A checkpoint that is missing or unreadable; ``reason`` says why without the path."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def save_atomic(state: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # serialise first: torch's zip writer reports a full disk as a RuntimeError,
    torch.save(state, buffer)  # a plain write raises OSError with its errno
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(buffer.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _step_of(path: Path) -> int:
    return int(path.stem.split("-", 1)[1])


def step_checkpoints(folder: str | Path) -> list[Path]:
    """The ``step-N.pt`` files in ``folder``, newest (highest N) first."""
    found = []
    for path in Path(folder).glob(STEP_GLOB):
        try:
            found.append((_step_of(path), path))
        except ValueError:
            continue  # not one of ours
    return [p for _, p in sorted(found, reverse=True)]


def resumable(folder: str | Path) -> bool:
    """Whether ``folder`` (a run's ``checkpoints/``) holds ``last.pt`` or a step checkpoint to try."""
    folder = Path(folder)
    return (folder / "last.pt").is_file() or bool(step_checkpoints(folder))


def save_step(state: dict[str, Any], folder: str | Path, step: int, keep: int) -> Path:
    """Write ``folder/step-N.pt`` atomically, point ``last.pt`` at it and delete all but the newest
    ``keep`` step checkpoints. Returns the path of ``last.pt``."""
    folder = Path(folder)
    path = save_atomic(state, folder / f"step-{int(step):08d}.pt")
    last = folder / "last.pt"
    tmp = folder / f".last.pt.{os.getpid()}.link.tmp"
    try:
        if tmp.exists():
            tmp.unlink()
        os.link(path, tmp)  # last.pt becomes the same file, swapped in atomically
        os.replace(tmp, last)
    except OSError:  # no hard links here (some network and FAT file systems): a second copy
        if tmp.exists():
            tmp.unlink()
        save_atomic(state, last)
    for old in step_checkpoints(folder)[max(int(keep), 1):]:
        old.unlink(missing_ok=True)
    return last


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files of saves that a killed process left half-written."""
    removed = []
    for path in Path(folder).glob(TEMP_GLOB):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def load_latest(folder: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], Path, list[str]]:
    """The newest readable checkpoint of a run's ``checkpoints/`` folder: ``last.pt``, then the step
    checkpoints newest first. Returns ``(state, path, skipped)``, ``skipped`` saying in one line each
    which files were passed over and why; :class:`CheckpointError` if none can be read."""
    folder = Path(folder)
    candidates = [folder / "last.pt"] if (folder / "last.pt").is_file() else []
    for path in step_checkpoints(folder):
        if not any(_same(path, c) for c in candidates):
            candidates.append(path)
    skipped = []
    for path in candidates:
        try:
            state = load(path, map_location)
        except CheckpointError as err:
            skipped.append(f"skipped {path}: {err.reason}")
            continue
        if not isinstance(state, dict) or "step" not in state:
            skipped.append(f"skipped {path}: not an igm checkpoint")
            continue
        return state, path, skipped
    if not candidates:
        raise CheckpointError(f"no checkpoint in {folder}: neither last.pt nor step-*.pt")
    raise CheckpointError(f"no readable checkpoint in {folder}: " + "; ".join(skipped))


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {path}: the file is empty", "the file is empty")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means an unreadable file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}", reason) from None


def rng_state(data_generator: torch.Generator) -> dict[str, Any]:
    """Every RNG the loop draws from: torch (CPU and CUDA), the data generator, NumPy, Python."""
    state = {
        "torch": torch.get_rng_state(),
        "data": data_generator.get_state(),
        "numpy": torch.from_numpy(np.frombuffer(np.random.get_state()[1].tobytes(), dtype=np.uint8).copy()),
        "numpy_pos": int(np.random.get_state()[2]),
        "python": torch.tensor(list(random.getstate()[1]), dtype=torch.int64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], data_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    data_generator.set_state(state["data"])
    keys = np.frombuffer(state["numpy"].numpy().tobytes(), dtype=np.uint32)
    np.random.set_state(("MT19937", keys, int(state["numpy_pos"])))
    py = tuple(int(v) for v in state["python"].tolist())
    random.setstate((3, py, None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
