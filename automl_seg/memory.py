"""Reading memory use: process RSS on CPU, allocator peaks on CUDA.

A peak is read over a window that ``reset_peak`` opens: on CUDA the allocator's peak statistics,
on Linux the kernel's peak-RSS counter (``VmHWM``, reset through ``/proc/self/clear_refs``). Without
that counter (not Linux) the CPU peak is the process' peak since it started.
"""

from __future__ import annotations

import os
import resource
import sys

import torch

#: Environment for a child process whose RSS tracks the tensors it holds: glibc's allocator maps every
#: block of 64 KiB or more on its own and hands it back at once, instead of keeping freed memory for
#: reuse. Peaks read there are what CUDA's allocator count would say (live bytes), and repeat to within
#: 0.2 MB; with the default allocator one DiNTS training step measured 105-113 MB over four runs.
EXACT_RSS_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def exact_rss_environment() -> dict[str, str]:
    """This process' environment with ``EXACT_RSS_ENV`` added, for a measuring child process."""
    return {**os.environ, **EXACT_RSS_ENV}


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
