"""Compute accounting: wall seconds and device seconds of a phase (search, retraining).

Device seconds are what a phase takes from its device, the measure equal-compute comparisons use:

- on CUDA, the wall time the GPU is held (one GPU per process), after waiting for its queued work;
- on the CPU, the process' CPU time over all its threads (user + system), i.e. core-seconds.
  Unlike wall time it does not grow when other processes load the machine, and it counts the
  threads a run really uses. CPU time of loader worker processes is not included (on the CPU the
  engine uses none by default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Spent:
    """Seconds a phase took: ``wall_s`` on the clock, ``device_s`` of its device (see the module)."""

    wall_s: float
    device_s: float
    device: str  #: ``"cpu"`` or ``"cuda"``


def _sync(device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.synchronize(device)


@dataclass
class Stopwatch:
    """Started on creation; ``spent()`` reads both clocks (and may be read again later)."""

    device: torch.device
    _wall: float = field(init=False)
    _cpu: float = field(init=False)

    def __post_init__(self) -> None:
        _sync(self.device)
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def spent(self) -> Spent:
        _sync(self.device)
        wall = time.perf_counter() - self._wall
        device_s = wall if self.device.type == "cuda" else time.process_time() - self._cpu
        return Spent(wall_s=wall, device_s=device_s, device=self.device.type)

    def device_seconds(self) -> float:
        """Device seconds so far (what a time budget in device seconds is checked against)."""
        return self.spent().device_s
