"""Atomic per-epoch checkpoints: a killed run never leaves a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from automl_seg.errors import UserError

CHECKPOINT_NAME = "checkpoint.pt"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(workdir: Path, state: dict[str, Any]) -> Path:
    path = workdir / CHECKPOINT_NAME
    atomic_torch_save(state, path)
    return path


def load_checkpoint(workdir: Path) -> dict[str, Any]:
    """The last checkpoint in ``workdir``; a clear error when there is none or it is unreadable."""
    path = workdir / CHECKPOINT_NAME
    if not path.is_file():
        raise UserError(f"--resume: no checkpoint in {workdir}; run without --resume to start afresh")
    return read_checkpoint(path)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint file of tensors and plain values (``weights_only``: a planted file cannot run code)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"--resume: checkpoint {path} cannot be read ({type(exc).__name__}); delete it and run without --resume"
        ) from exc


def has_checkpoint(workdir: Path) -> bool:
    return (workdir / CHECKPOINT_NAME).is_file()
