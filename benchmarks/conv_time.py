"""Time spent inside convolutions, read from the profilers (CPU only).

A speed goal stated as a ratio against another implementation is out of reach when the
convolutions alone, run by the fastest kernels measured on this machine, already take longer than
the goal allows: everything else could be made free and the goal would still be missed. The
benchmarks print that floor next to the goal, measured in the same run.

- torch: inclusive time of ``aten::convolution`` (every 1D/2D/3D and transposed convolution, whatever
  kernel it picks), ``aten::convolution_backward`` and the oneDNN calls ``automl_seg.onednn`` makes
  directly, each counted where it is outermost, from ``torch.profiler``.
- onnxruntime: the kernel time of ``Conv``, ``ConvTranspose`` and their fused forms, from the
  session's own profile (``SessionOptions.enable_profiling``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.profiler import ProfilerActivity, profile

TORCH_CONV_EVENTS = frozenset(
    {"aten::convolution", "aten::convolution_backward", "aten::mkldnn_convolution", "aten::mkldnn_convolution_backward"}
)
ORT_CONV_OPS = frozenset({"Conv", "ConvTranspose", "FusedConv", "NchwcConv"})


def torch_conv_seconds(fn: Callable[[], object], repeats: int = 3) -> tuple[float, float]:
    """(wall seconds, seconds inside torch convolutions) of a call of ``fn`` on the CPU, profiled: the
    fastest of ``repeats`` calls, each figure on its own (slower calls measure the neighbours too)."""
    walls, convs = [], []
    for _ in range(repeats):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - start)
        convs.append(sum(e.cpu_time_total for e in prof.events() if _outermost_convolution(e)) / 1e6)
    return min(walls), min(convs)


def _outermost_convolution(event: Any) -> bool:
    """A convolution event not inside another one (``aten::convolution`` calls ``aten::mkldnn_convolution``)."""
    if event.name not in TORCH_CONV_EVENTS:
        return False
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in TORCH_CONV_EVENTS:
            return False
        parent = parent.cpu_parent
    return True


def ort_conv_seconds(profile_json: Path, skip_runs: int = 0) -> float:
    """Seconds inside convolution kernels in an onnxruntime profile (``InferenceSession.end_profiling()``),
    leaving out the session's first ``skip_runs`` runs (warm-up: memory planning, first-touch pages)."""
    events = json.loads(Path(profile_json).read_text())
    run_ends = sorted(e["ts"] + e["dur"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    start = run_ends[skip_runs - 1] if skip_runs else float("-inf")
    return (
        sum(
            event["dur"]
            for event in events
            if event.get("cat") == "Node"
            and event["ts"] >= start
            and event["name"].endswith("_kernel_time")
            and event.get("args", {}).get("op_name") in ORT_CONV_OPS
        )
        / 1e6
    )
