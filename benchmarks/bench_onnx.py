"""Torch eager vs onnxruntime: latency and peak memory per volume on the Hippocampus validation cases.

Same network, same weights, same run, same MONAI sliding-window inference (the engine's
``sliding_window_logits``); only the window predictor differs. Nothing is trained: the network
comes from a registry ref when given, else it is built (seeded) from the ``fixed`` or ``dints``
search space at the dataset's plan.

On the CPU (the default) both run on the CPU and the goal is onnxruntime <= 0.3x torch's latency.
There the table also gives the time each backend spends inside convolutions (``conv_time``, from
the profilers), and a note per model says how close to torch's latency onnxruntime could get if
everything but the faster of the two backends' convolutions were free.
With ``--device cuda`` torch runs on the GPU and onnxruntime on its CUDA provider (``--providers``
to choose; a session that falls back to the CPU is an error, not a slow row); ``--fp16`` adds the
half-precision export. Memory is the peak growth of the process RSS on the CPU, of the GPU's used
memory (whole device, sampled) on CUDA.

    python benchmarks/bench_onnx.py                       # fixed DynUNet and DiNTS, 8 validation cases
    python benchmarks/bench_onnx.py --ref my-model:3 --cases 20
    python benchmarks/bench_onnx.py --device cuda --fp16  # GPU deployment: torch CUDA vs onnxruntime CUDA
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

import onnxruntime as ort
import torch
from automl_seg_export.onnx_exporter import OnnxPredictor
from automl_seg_export.providers import session_options
from conv_time import ort_conv_seconds, torch_conv_seconds
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


def gpu_used_mb() -> float:
    """Memory in use on the current GPU, every allocator included (torch's and onnxruntime's)."""
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**20


@contextmanager
def peak_growth(read_mb: Callable[[], float], sample_s: float = 0.002) -> Iterator[dict[str, float]]:
    """Peak growth (MB) of ``read_mb`` over the block, sampled by a thread: ru_maxrss never goes down
    between runs, and onnxruntime's GPU memory is invisible to torch's counters."""
    result = {"peak_mb": 0.0}
    baseline = read_mb()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            result["peak_mb"] = max(result["peak_mb"], read_mb() - baseline)
            done.wait(sample_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        result["peak_mb"] = max(result["peak_mb"], read_mb() - baseline)


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


def release_free_memory() -> None:
    """Hand freed heap (glibc) and cached GPU blocks back, so one backend's growth is not hidden in
    another's leftovers."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: figures are then lower bounds
        log.debug("malloc_trim unavailable")


def measure(
    window: Callable[[torch.Tensor], torch.Tensor],
    volumes: list[tuple[str, torch.Tensor]],
    plan: Plan,
    repeats: int,
    device: torch.device,
) -> tuple[list[float], float, list[torch.Tensor]]:
    """Per-volume wall times (ms, ``repeats`` runs each after one warm-up, the GPU synchronised), peak
    memory growth over the memory before this backend's first run (warm-up included), and the last
    output per volume."""
    times, outputs = [], []
    cuda = device.type == "cuda"
    release_free_memory()
    with torch.inference_mode(), peak_growth(gpu_used_mb if cuda else current_rss_mb) as memory:
        for _, image in volumes:
            out = sliding_window_logits(window, image, plan, 2)  # warm-up: lazy allocations, first-run planning
            for _ in range(repeats):
                start = time.perf_counter()
                out = sliding_window_logits(window, image, plan, 2)
                if cuda:
                    torch.cuda.synchronize(device)
                times.append((time.perf_counter() - start) * 1000)
            outputs.append(out)
    return times, memory["peak_mb"], outputs


def torch_conv_ms(model: nn.Module, volumes: list[tuple[str, torch.Tensor]], plan: Plan) -> float:
    """Mean ms per volume inside torch's convolutions (one profiled sliding-window pass each)."""
    with torch.inference_mode():
        seconds = [
            torch_conv_seconds(lambda image=image: sliding_window_logits(model, image, plan, 2), repeats=1)[1]
            for _, image in volumes
        ]
    return statistics.mean(seconds) * 1000


def ort_conv_ms(path: Path, volumes: list[tuple[str, torch.Tensor]], plan: Plan) -> float:
    """Mean ms per volume inside onnxruntime's CPU convolution kernels, from a profiling session
    (after one warm-up window, left out)."""
    options = session_options()
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_name("profile"))
    predictor = OnnxPredictor(ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]))
    with torch.inference_mode():
        predictor(torch.zeros(1, plan.in_channels, *plan.patch_size))
        for _, image in volumes:
            sliding_window_logits(predictor, image, plan, 2)
    return ort_conv_seconds(Path(predictor.session.end_profiling()), skip_runs=1) / len(volumes) * 1000


def floor_note(label: str, torch_ms: float, conv_ms: dict[str, float]) -> str:
    """What the convolutions alone allow: the goal is out of reach when the faster ones already take
    more than ``GOAL_RATIO`` of torch's latency."""
    floor = min(conv_ms.values()) / torch_ms
    verdict = "within reach" if floor <= GOAL_RATIO else "out of reach on this machine"
    spent = ", ".join(f"{backend} {ms:.0f}" for backend, ms in conv_ms.items())
    return (
        f"{label}: convolutions alone take {spent} ms/volume; with the faster ones and everything else free, "
        f"onnxruntime could reach {floor:.2f}x of torch's latency: the {GOAL_RATIO}x goal is {verdict}"
    )


def variants(args: argparse.Namespace) -> list[tuple[str, bool]]:
    """(label, fp16) of the onnxruntime exports to measure."""
    return [("onnxruntime", False)] + ([("onnxruntime fp16", True)] if args.fp16 else [])


def check_args(args: argparse.Namespace) -> torch.device:
    """The device, after the checks that would otherwise fail deep inside a run."""
    from automl_seg.engine.devices import resolve_device

    device = resolve_device(args.device)
    if args.fp16 and device.type != "cuda":
        raise UserError("--fp16 needs --device cuda: onnxruntime's CPU provider runs float16 slower than float32")
    return device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="Task04_Hippocampus")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--registry", type=Path, default=None)
    parser.add_argument("--ref", default=None, help="registered model; default: build fixed and dints networks")
    parser.add_argument("--spaces", nargs="+", default=["fixed", "dints"])
    parser.add_argument("--cases", type=int, default=8, help="validation volumes")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per volume and backend")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu", help="where torch runs")
    parser.add_argument("--providers", nargs="+", default=None,
                        help="onnxruntime providers (default: CPU on --device cpu, CUDA on --device cuda)")  # fmt: skip
    parser.add_argument("--fp16", action="store_true", help="also a float16 export (--device cuda)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = check_args(args)
    providers = args.providers or (["CUDAExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"])

    data = prepare_data(DataSettings(dataset=args.dataset, data_root=args.data_root), progress=False)
    volumes = [(b["case"][0], b["image"].as_tensor().to(device)) for b in data.val_loader(data.val_cases[: args.cases])]
    host = load_plugins()
    exporter = host.exporter("onnx")
    console = Console(width=160)
    cpu = f"CPU, torch threads {torch.get_num_threads()}"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    table = Table(title=f"torch eager vs onnxruntime, {len(volumes)} {args.dataset} validation volumes, {where}")
    memory = "peak GPU +MB" if device.type == "cuda" else "peak RSS +MB"
    cpu_run = device.type == "cpu"
    columns = ("model", "window", "backend", "median ms/volume", "p90 ms", "conv ms", memory, "latency ratio",
               "max diff")  # fmt: skip
    notes = []
    for column in columns:
        table.add_column(column, justify="left" if column in ("model", "window", "backend") else "right")
    for label, model, plan in networks(args, host, data.plan):
        model = model.to(device)
        results = {"torch": measure(model, volumes, plan, args.repeats, device)}
        conv_ms = {"torch": torch_conv_ms(model, volumes, plan)} if cpu_run else {}
        example = torch.zeros(1, plan.in_channels, *plan.patch_size)
        for backend, fp16 in variants(args):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.onnx"
                options = ExportOptions(spatial_multiple=network_stride(model, plan), fp16=fp16)
                exporter.export(model, example, path, options)  # exports a CPU copy
                predictor = exporter.load(path, providers)
                used = ", ".join(p.removesuffix("ExecutionProvider") for p in predictor.providers)
                results[f"{backend} ({used})"] = measure(predictor, volumes, plan, args.repeats, device)
                if cpu_run:
                    conv_ms[f"{backend} ({used})"] = ort_conv_ms(path, volumes, plan)
        base = statistics.median(results["torch"][0])
        for backend, (times, mem, outputs) in results.items():
            median = statistics.median(times)
            p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else median
            ratio = median / base
            goal = backend != "torch" and device.type == "cpu"  # the goal is a CPU goal
            mark = (" (goal met)" if ratio <= GOAL_RATIO else f" (goal {GOAL_RATIO})") if goal else ""
            worst = max((t - o).abs().max().item() for t, o in zip(results["torch"][2], outputs, strict=True))
            window = "x".join(map(str, plan.patch_size))
            conv = f"{conv_ms[backend]:.1f}" if backend in conv_ms else ""
            table.add_row(label, window, backend, f"{median:.1f}", f"{p90:.1f}", conv, f"{mem:.0f}",
                          f"{ratio:.2f}x{mark}", "" if backend == "torch" else f"{worst:.1e}")  # fmt: skip
        if conv_ms:
            notes.append(floor_note(label, base, conv_ms))
    console.print(table)
    for note in notes:
        console.print(note)


if __name__ == "__main__":
    try:
        main()
    except UserError as exc:  # a dataset not found, a bad --ref: one line, as the CLI says it
        sys.exit(f"error: {exc}")
