"""Torch eager vs onnxruntime: latency and peak memory per volume on the Hippocampus validation cases.

Same network, same weights, same run, same MONAI sliding-window inference (the engine's
``sliding_window_logits``); only the window predictor differs. Nothing is trained: the network
comes from a registry ref when given, else it is built (seeded) from the ``fixed`` or ``dints``
search space at the dataset's plan.

    python benchmarks/bench_onnx.py                       # fixed DynUNet and DiNTS, 8 validation cases
    python benchmarks/bench_onnx.py --ref my-model:3 --cases 20
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import logging
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from automl_seg.config import DataSettings
from automl_seg.data import prepare_data
from automl_seg.data.models import Plan
from automl_seg.engine.evaluate import sliding_window_logits
from automl_seg.errors import UserError
from automl_seg.export import network_stride
from automl_seg.interfaces import ExportOptions
from automl_seg.memory import current_rss_mb
from automl_seg.plugins import PluginHost, load_plugins

log = logging.getLogger("bench_onnx")
GOAL_RATIO = 0.3


@contextmanager
def peak_rss(sample_s: float = 0.002) -> Iterator[dict[str, float]]:
    """Peak RSS growth (MB) over the block, sampled by a thread: ru_maxrss never goes down between runs."""
    result = {"peak_mb": 0.0}
    baseline = current_rss_mb()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            result["peak_mb"] = max(result["peak_mb"], current_rss_mb() - baseline)
            done.wait(sample_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        result["peak_mb"] = max(result["peak_mb"], current_rss_mb() - baseline)


def networks(args: argparse.Namespace, host: PluginHost, plan: Plan) -> Iterator[tuple[str, nn.Module, Plan]]:
    """(label, network, plan): a registered model comes with its own plan (the window ``predict`` uses)."""
    if args.ref:
        from automl_seg_registry import Registry

        from automl_seg.engine.model import load_trained_model

        with Registry.open(args.registry) as registry:
            model, record = load_trained_model(registry, args.ref, host, "cpu")
        yield record.ref, model, Plan.model_validate(record.dataset.plan)
        return
    for name in args.spaces:
        space = host.space(name)
        space_args = space.default_args(plan, "quick")
        arch = {}
        if name == "dints":  # every path active, op 0: a dense instance, the slow end of the space
            from monai.networks.nets import TopologyInstance

            blocks, depths = space_args["num_blocks"], space_args["num_depths"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "arch_code not provided": only the path count is read
                paths = TopologyInstance(num_blocks=blocks, num_depths=depths).arch_code_a.shape[1]
            arch = {"arch_code_a": [[1] * paths] * blocks, "arch_code_c": [[0] * paths] * blocks,
                    "node_a": [[1] * depths] * (blocks + 1)}  # fmt: skip
        torch.manual_seed(0)
        yield f"{name} (quick, untrained)", space.build_network(space_args, arch).eval(), plan


def release_free_heap() -> None:
    """Hand freed heap back to the OS (glibc), so one backend's growth is not hidden in another's leftovers."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: figures are then lower bounds
        log.debug("malloc_trim unavailable")


def measure(
    window: Callable[[torch.Tensor], torch.Tensor], volumes: list[tuple[str, torch.Tensor]], plan: Plan, repeats: int
) -> tuple[list[float], float, list[torch.Tensor]]:
    """Per-volume wall times (ms, ``repeats`` runs each after one warm-up), peak RSS growth over the RSS
    before this backend's first run (warm-up included), and the last output per volume."""
    times, outputs = [], []
    release_free_heap()
    with torch.inference_mode(), peak_rss() as memory:
        for _, image in volumes:
            out = sliding_window_logits(window, image, plan, 2)  # warm-up: lazy allocations, first-run planning
            for _ in range(repeats):
                start = time.perf_counter()
                out = sliding_window_logits(window, image, plan, 2)
                times.append((time.perf_counter() - start) * 1000)
            outputs.append(out)
    return times, memory["peak_mb"], outputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Task04_Hippocampus")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--registry", type=Path, default=None)
    parser.add_argument("--ref", default=None, help="registered model; default: build fixed and dints networks")
    parser.add_argument("--spaces", nargs="+", default=["fixed", "dints"])
    parser.add_argument("--cases", type=int, default=8, help="validation volumes")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per volume and backend")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    data = prepare_data(DataSettings(dataset=args.dataset, data_root=args.data_root), progress=False)
    volumes = [(b["case"][0], b["image"].as_tensor()) for b in data.val_loader(data.val_cases[: args.cases])]
    host = load_plugins()
    exporter = host.exporter("onnx")
    console = Console(width=150)
    table = Table(title=f"torch eager vs onnxruntime, {len(volumes)} {args.dataset} validation volumes, "
                  f"torch threads {torch.get_num_threads()}")  # fmt: skip
    columns = ("model", "window", "backend", "median ms/volume", "p90 ms", "peak RSS +MB", "latency ratio", "max diff")
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "window", "backend") else "right")
    for label, model, plan in networks(args, host, data.plan):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            exporter.export(model, torch.zeros(1, plan.in_channels, *plan.patch_size), path,
                            ExportOptions(spatial_multiple=network_stride(model, plan)))  # fmt: skip
            predictor = exporter.load(path, ["CPUExecutionProvider"])
            t_times, t_mem, t_outs = measure(model, volumes, plan, args.repeats)
            o_times, o_mem, o_outs = measure(predictor, volumes, plan, args.repeats)
        worst = max((t - o).abs().max().item() for t, o in zip(t_outs, o_outs, strict=True))
        results = {"torch": (t_times, t_mem), "onnxruntime": (o_times, o_mem)}
        base = statistics.median(results["torch"][0])
        for backend, (times, mem) in results.items():
            median = statistics.median(times)
            p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else median
            ratio = median / base
            mark = "" if backend == "torch" else (" (goal met)" if ratio <= GOAL_RATIO else f" (goal {GOAL_RATIO})")
            window = "x".join(map(str, plan.patch_size))
            table.add_row(label, window, backend, f"{median:.1f}", f"{p90:.1f}", f"{mem:.0f}", f"{ratio:.2f}x{mark}",
                          "" if backend == "torch" else f"{worst:.1e}")  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:  # a dataset not found, a bad --ref: one line, as the CLI says it
        sys.exit(f"error: {exc}")
