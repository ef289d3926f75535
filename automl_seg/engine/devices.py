"""Choosing the device and seeding every random generator a run touches."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from automl_seg.config import Device
from automl_seg.errors import ConfigError


def resolve_device(name: Device | str) -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without CUDA is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for but CUDA is not available here; use --device cpu or auto")
        return torch.device("cuda")
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")


#: Auto worker count on CUDA is capped: augmenting patches for one GPU rarely needs more processes.
MAX_AUTO_WORKERS = 8


def loader_workers(requested: int | None, device: torch.device) -> int:
    """Data-loading processes for training batches: ``requested``, else none on the CPU (the network
    uses every core there) and one per core but one, up to ``MAX_AUTO_WORKERS``, to keep a GPU fed."""
    if requested is not None:
        return requested
    if device.type == "cpu":
        return 0
    return max(0, min(MAX_AUTO_WORKERS, len(os.sched_getaffinity(0)) - 1))


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and make CPU kernels deterministic."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False


def rng_states() -> dict[str, object]:
    """Every generator's state, for checkpoints (restored by ``set_rng_states``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, object] = {
        "python": random.getstate(),
        # as plain values and a tensor, so checkpoints load with torch.load(weights_only=True)
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, object]) -> None:
    random.setstate(states["python"])  # type: ignore[arg-type]
    name, keys, pos, has_gauss, cached = states["numpy"]  # type: ignore[misc]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])  # type: ignore[arg-type]
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])  # type: ignore[arg-type]
