"""Choosing the device and seeding every random generator a run touches."""

from __future__ import annotations

import os
import random
from typing import Any, NotRequired, TypedDict, cast

import numpy as np
import torch
from numpy.typing import NDArray

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


def flush_denormals() -> None:
    """Compute with subnormal floats as zeros on this thread and on every thread it creates later.

    Late in training a confident network's softmax is below float32's normal range (about 1e-38) for
    the classes it rules out, and those values flow into the backward pass. x86 CPUs handle subnormal
    operands in microcode: a 3D convolution's backward pass on them runs an order of magnitude slower,
    so epochs slow down as the model gets better (``benchmarks/bench_denormals.py``). Values that small
    change no result. Threads inherit the setting only when created after it, so the CLI calls this
    before any parallel work starts the intra-op thread pool; GPUs are unaffected."""
    torch.set_flush_denormal(True)


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


class RngStates(TypedDict):
    """Every generator's state as a checkpoint stores it (plain values and tensors, so that it loads
    with ``torch.load(weights_only=True)``)."""

    python: tuple[Any, ...]
    numpy: list[Any]  #: NumPy's MT19937 state: name, keys (an int64 tensor), pos, has_gauss, cached
    torch: torch.Tensor
    cuda: NotRequired[list[torch.Tensor]]  #: where CUDA is available


def rng_states() -> RngStates:
    """Every generator's state, for checkpoints (restored by ``set_rng_states``)."""
    # the global generator is MT19937, whose legacy state is the tuple (the stub also allows a dict)
    name, keys, pos, has_gauss, cached = cast(tuple[str, NDArray[np.uint32], int, int, float], np.random.get_state())
    states: RngStates = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: RngStates) -> None:
    """Restore what ``rng_states`` returned."""
    random.setstate(states["python"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
