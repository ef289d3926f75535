"""Reading memory use: process RSS on CPU, allocator peaks on CUDA.

A peak is read over a window that ``reset_peak`` opens: on CUDA the allocator's peak statistics,
on Linux the kernel's peak-RSS counter (``VmHWM``, reset through ``/proc/self/clear_refs``). Without
that counter (not Linux) the CPU peak is the process' peak since it started.
"""

from __future__ import annotations

import resource
import sys

import torch


def _lifetime_peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def peak_rss_mb() -> float:
    """Peak resident set size of this process since the last ``reset_peak`` (or its start), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _lifetime_peak_rss_mb()


def reset_peak_rss() -> bool:
    """Restart the peak-RSS counter at the current RSS; False where the kernel offers no way to."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def current_rss_mb() -> float:
    """Resident set size right now, in MB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except OSError:
        return peak_rss_mb()
    return pages * resource.getpagesize() / 2**20


def reset_peak(device: torch.device) -> None:
    """Open a new peak window on ``device`` (so one run's peak does not include an earlier run's)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()


def device_peak_mb(device: torch.device) -> float:
    """Peak memory on ``device`` since ``reset_peak``: CUDA max allocated, or the peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_rss_mb()
