"""Atomic per-epoch checkpoints: a killed run never leaves a half-written file behind.

A write goes to a temporary sibling (``.<name>.<random>.tmp``) renamed over the checkpoint. A process
killed mid-write (``kill -9``) cannot remove its temporary file: the next save or read of the same
checkpoint (the next run, ``--resume``) sweeps such leftovers.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from automl_seg.errors import UserError

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def sweep_partial_writes(path: Path) -> list[Path]:
    """Delete the temporary files that writes of ``path`` killed mid-way left in its folder (only
    regular files named as :func:`atomic_torch_save` names them); return what was deleted."""
    pattern = re.compile(re.escape(_temp_prefix(path)) + r"[A-Za-z0-9_]+\.tmp")
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return []
    for candidate in candidates:
        if pattern.fullmatch(candidate.name) and candidate.is_file() and not candidate.is_symlink():
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    if removed:
        log.info("removed %d partial checkpoint write(s) of a killed run in %s", len(removed), path.parent)
    return removed


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_partial_writes(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
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
    sweep_partial_writes(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"--resume: checkpoint {path} cannot be read ({type(exc).__name__}); delete it and run without --resume"
        ) from exc


def has_checkpoint(workdir: Path) -> bool:
    sweep_partial_writes(workdir / CHECKPOINT_NAME)
    return (workdir / CHECKPOINT_NAME).is_file()
