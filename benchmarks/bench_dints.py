"""DiNTS benchmark against MONAI's own classes, in one process (run by hand, not in CI).

    python benchmarks/bench_dints.py                      # search iteration + decode
    python benchmarks/bench_dints.py --iterations 5 --patch 48 64 48 --device cuda
    python benchmarks/bench_dints.py --device cuda --amp  # both in the search's float16 mixed precision

1. One bi-level search iteration (weight step on a batch, architecture step with every loss term on
   another), MONAI's ``DiNTS(TopologySearch)`` + its loss helpers vs ours, same config, batch,
   patch and initial parameters: fastest iteration and peak memory (CUDA max allocated, or, on the CPU,
   peak-RSS growth with the kernel's peak counter reset before each variant, in a child process
   whose allocator returns freed memory at once). On the CPU also the time each spends inside
   convolutions (``conv_time``): MONAI's iteration over our convolutions' time is the most any
   rewrite of the rest could gain.
2. A training step and a one-patch inference of a discrete network: the plugin's (MONAI's ``DiNTS``,
   faster stems and resizing, batch-1 convolutions on oneDNN) vs plain MONAI, same architecture,
   weights and batch.
3. Trilinear 2x up-sampling (forward + backward) at the supernet's feature-map sizes:
   ``F.interpolate`` vs the separable ``SeparableTrilinear`` that replaces it in the supernet.
4. Decode at 12 blocks x 4 depths: MONAI's Dijkstra over its dense matrix vs our dynamic program,
   on the same probabilities: time and peak Python/numpy memory (tracemalloc), plus whether the
   architectures agree.
The quick preset's end-to-end wall time and Dice come from the engine (``automl-seg search
--strategy dints --budget quick``); pass ``--quick-json`` with that command's ``--json`` output to
add them to the table.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import io
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from automl_seg_dints.losses import arch_loss_terms
from automl_seg_dints.space import DintsSpaceArgs
from automl_seg_dints.supernet import MemoryEstimator, build_supernet
from automl_seg_dints.topology import Topology, decode
from conv_time import torch_conv_seconds
from monai.losses import DiceCELoss
from monai.networks.nets import DiNTS, TopologySearch
from rich.console import Console
from rich.table import Table

from automl_seg.engine.precision import mixed_precision, training_dtype
from automl_seg.memory import current_rss_mb, exact_rss_environment, peak_rss_mb, reset_peak_rss

BUDGET, TOPOLOGY_WEIGHT, RAMP = 0.5, 0.001, 1.0


def monai_arch_regulariser(space: TopologySearch, shape: tuple[int, ...]) -> torch.Tensor:
    """The DiNTS tutorial's architecture terms, computed with MONAI's helpers."""
    probs_a, _ = space.get_prob_a(child=True)
    entropy_a = -(probs_a * torch.log(probs_a + 1e-5)).mean()
    entropy_c = -(F.softmax(space.log_alpha_c, -1) * F.log_softmax(space.log_alpha_c, -1)).mean()
    topology = space.get_topology_entropy(probs_a)
    memory = torch.abs(BUDGET - space.get_ram_cost_usage(shape) / space.get_ram_cost_usage(shape, full=True))
    return RAMP * (entropy_a + entropy_c + memory + TOPOLOGY_WEIGHT * topology)


def make_iteration(
    model: DiNTS, regulariser: Callable[[], torch.Tensor], x: torch.Tensor, y: torch.Tensor, amp: bool
) -> Callable[[], None]:
    """One bi-level iteration; with ``amp`` the forward passes run in the device's training precision
    (the search's own autocast), the losses in float32 on float32 logits, as in the search (which also
    scales float16 gradients: a few elementwise operations, left out here)."""
    space = model.dints_space
    arch = [space.log_alpha_a, space.log_alpha_c]
    arch_ids = {id(p) for p in arch}
    weights = [p for p in model.parameters() if id(p) not in arch_ids]
    weight_opt = torch.optim.SGD(weights, lr=0.01, momentum=0.9)
    arch_opt = torch.optim.Adam(arch, lr=1e-3, betas=(0.5, 0.999))
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)

    def forward() -> torch.Tensor:
        with mixed_precision(x.device, amp):
            return model(x).float()

    def iteration() -> None:
        for p in weights:
            p.requires_grad_(True)
        for p in arch:
            p.requires_grad_(False)
        weight_opt.zero_grad(set_to_none=True)
        loss_fn(forward(), y).backward()
        weight_opt.step()
        for p in weights:
            p.requires_grad_(False)
        for p in arch:
            p.requires_grad_(True)
        arch_opt.zero_grad(set_to_none=True)
        (loss_fn(forward(), y) + regulariser()).backward()
        arch_opt.step()

    return iteration


def measure(iteration: Callable[[], None], iterations: int, device: torch.device) -> tuple[float, float, float]:
    """(fastest wall seconds, fastest process CPU seconds, peak MB) of ``iterations`` after a warm-up one.

    The fastest iteration is the robust figure on a shared machine (slower ones measure the
    neighbours too). On the CPU the peak is meaningful only in the honest-RSS child process
    (``cpu_peaks_in_honest_process``); times are taken in this one, since that allocator setting
    makes every allocation a page fault and slows both variants."""
    iteration()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = current_rss_mb()
        reset_peak_rss()
    walls, cpus = [], []
    for _ in range(iterations):
        start, cpu_start = time.perf_counter(), time.process_time()
        iteration()
        if device.type == "cuda":
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = peak_rss_mb() - base
    return min(walls), min(cpus), peak


def search_iterations(args: argparse.Namespace, device: torch.device) -> dict[str, Callable[[], None]]:
    """One search iteration of each variant, ``monai`` and ``ours``, same initial parameters and batch."""
    space_args = DintsSpaceArgs(
        in_channels=1, num_classes=3, num_blocks=args.blocks, num_depths=args.depths, channel_mul=args.channel_mul
    )
    torch.manual_seed(0)
    ours = build_supernet(space_args).to(device)
    with contextlib.redirect_stdout(io.StringIO()):
        monai_space = TopologySearch(
            channel_mul=args.channel_mul, num_blocks=args.blocks, num_depths=args.depths, device=str(device)
        )
    reference = DiNTS(monai_space, in_channels=1, num_classes=3).to(device)
    reference.load_state_dict(ours.state_dict())
    shape = (args.batch, 1, *args.patch)
    x = torch.randn(shape, device=device)
    y = torch.randint(0, 3, (args.batch, 1, *args.patch), device=device)
    estimator = MemoryEstimator(ours.dints_space, args.batch, args.patch)
    return {
        "monai": make_iteration(reference, lambda: monai_arch_regulariser(monai_space, shape), x, y, args.amp),
        "ours": make_iteration(
            ours,
            lambda: arch_loss_terms(ours.dints_space, estimator, BUDGET).combined(RAMP, TOPOLOGY_WEIGHT),
            x,
            y,
            args.amp,
        ),
    }


def search_figures(
    runs: dict[str, Callable[[], None]], args: argparse.Namespace, device: torch.device
) -> dict[str, tuple[float, float, float]]:
    """Best wall time, best CPU time and highest peak of each variant."""
    # alternate the variants and keep each one's fastest iteration and highest peak, so that neither
    # gains from running second (warm caches, allocator pools)
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    for _ in range(2):
        for name, run in runs.items():
            results[name].append(measure(run, args.iterations, device))
    return {name: (min(r[0] for r in rs), min(r[1] for r in rs), max(r[2] for r in rs)) for name, rs in results.items()}


def cpu_peaks_in_honest_process() -> dict[str, float]:
    """Peak RSS growth of each variant, measured in a child process whose allocator hands freed
    tensors back to the OS at once, so that RSS tracks the memory in use."""
    child = subprocess.run(
        [sys.executable, *sys.argv, "--peaks-json"], env=exact_rss_environment(), check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    return json.loads(child.stdout.strip().splitlines()[-1])


def bench_search(args: argparse.Namespace, device: torch.device) -> list[tuple[str, float, float, str]]:
    runs = search_iterations(args, device)
    figures = search_figures(runs, args, device)
    (t_ref, c_ref, m_ref), (t_ours, c_ours, m_ours) = figures["monai"], figures["ours"]
    patch = "x".join(map(str, args.patch))
    config = f"{args.blocks}x{args.depths} mul {args.channel_mul} batch {args.batch} patch {patch}"
    rows = [
        ("search iteration wall time (s)", t_ref, t_ours, f"{t_ref / t_ours:.2f}x faster (goal >= 2x); {config}"),
        ("search iteration CPU time (s)", c_ref, c_ours, f"{c_ref / c_ours:.2f}x less CPU"),
    ]
    if device.type == "cpu":
        conv_ref, conv_ours = (torch_conv_seconds(runs[name])[1] for name in ("monai", "ours"))
        ceiling = f"{t_ref / conv_ours:.2f}x: the most ours could gain, everything but its convolutions free"
        rows.append(("convolutions in one iteration (s, profiler)", conv_ref, conv_ours, ceiling))
        peaks = cpu_peaks_in_honest_process()
        m_ref, m_ours = peaks["monai"], peaks["ours"]
    rows.append(("search iteration peak memory (MB)", m_ref, m_ours, f"{m_ours / m_ref:.2f}x of MONAI (goal <= 0.6x)"))
    return rows


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    amp: bool = False,
) -> None:
    """One training step: forward (in the device's training precision with ``amp``), loss, backward, update."""
    optimizer.zero_grad(set_to_none=True)
    with mixed_precision(x.device, amp):
        logits = model(x).float()
    loss_fn(logits, y).backward()
    optimizer.step()


def infer_patch(model: torch.nn.Module, x: torch.Tensor) -> None:
    """One no-gradient forward pass (a sliding window's batch of one)."""
    with torch.inference_mode():
        model(x)


def fastest_alternated(runs: dict[str, Callable[[], None]], iterations: int, device: torch.device) -> dict[str, float]:
    """Fastest wall seconds of each run; the runs take turns twice, so that none gains from going second."""
    best = {name: float("inf") for name in runs}
    for _ in range(2):
        for name, run in runs.items():
            best[name] = min(best[name], measure(run, iterations, device)[0])
    return best


def bench_discrete(args: argparse.Namespace, device: torch.device) -> list[tuple[str, float, float, str]]:
    """A training step (forward, loss, backward, SGD step) of a discrete network, MONAI's ``DiNTS``
    as the space builds it (``automl_seg_dints.stems``) vs plain MONAI: same architecture (the
    decode of seeded random probabilities), weights and batch; fastest step of each."""
    import random

    import numpy as np
    from automl_seg_dints.space import DintsSpace
    from monai.networks.nets import TopologyInstance

    space_args = {"in_channels": 1, "num_classes": 3, "num_blocks": args.blocks, "num_depths": args.depths,
                  "channel_mul": args.channel_mul}  # fmt: skip
    arch = DintsSpace().sample_arch(space_args, random.Random(0))
    torch.manual_seed(0)
    ours = DintsSpace().build_network(space_args, arch).to(device)
    with contextlib.redirect_stdout(io.StringIO()):
        instance = TopologyInstance(
            arch_code=[np.array(arch["arch_code_a"], dtype=np.float32), np.array(arch["arch_code_c"])],
            channel_mul=args.channel_mul, num_blocks=args.blocks, num_depths=args.depths, device=str(device),
        )  # fmt: skip
    reference = DiNTS(instance, in_channels=1, num_classes=3, node_a=np.array(arch["node_a"])).to(device)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(args.batch, 1, *args.patch, device=device)
    y = torch.randint(0, 3, (args.batch, 1, *args.patch), device=device)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    steps, models = {}, {"monai": reference, "ours": ours}
    for name, model in models.items():
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        steps[name] = functools.partial(train_step, model, optimizer, loss_fn, x, y, args.amp)
    seconds = fastest_alternated(steps, args.iterations, device)
    ratio = f"{seconds['monai'] / seconds['ours']:.2f}x faster (stems channels-last on the CPU, separable resizing)"
    one_patch = {name: functools.partial(infer_patch, model, x[:1]) for name, model in models.items()}
    inference = fastest_alternated(one_patch, args.iterations, device)
    why = "batch-1 convolutions on oneDNN" if device.type == "cpu" else "separable resizing"
    return [
        ("discrete network training step (s)", seconds["monai"], seconds["ours"], ratio),
        ("discrete network inference, 1 patch (s)", inference["monai"], inference["ours"],
         f"{inference['monai'] / inference['ours']:.2f}x faster ({why})"),
    ]  # fmt: skip


def bench_resize(args: argparse.Namespace, device: torch.device) -> list[tuple[str, float, float, str]]:
    """Trilinear 2x up-sampling forward + backward, ``F.interpolate`` vs ``SeparableTrilinear``, on the
    feature maps the supernet's up-paths resize (every coarser level of the patch)."""
    from automl_seg_dints.interpolate import SeparableTrilinear

    ours = SeparableTrilinear(2)
    rows = []
    for level in range(2, args.depths + 1):
        channels = int(32 * 2**level * args.channel_mul)
        shape = (args.batch, channels, *(side // 2**level for side in args.patch))
        x = torch.randn(shape, device=device, requires_grad=True)
        variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
            "torch": lambda t: F.interpolate(t, scale_factor=2, mode="trilinear", align_corners=True),
            "ours": ours,
        }
        seconds = {}
        for name, resize in variants.items():
            resize(x).sum().backward()  # warm-up
            start = time.perf_counter()
            for _ in range(5):
                resize(x).sum().backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            seconds[name] = (time.perf_counter() - start) / 5 * 1000
        size = "x".join(map(str, shape[1:]))
        rows.append((f"trilinear 2x up, fwd+bwd (ms), {size}", seconds["torch"], seconds["ours"],
                     f"{seconds['torch'] / seconds['ours']:.2f}x faster than F.interpolate"))  # fmt: skip
    return rows


def bench_decode() -> list[tuple[str, float, float, str]]:
    with contextlib.redirect_stdout(io.StringIO()):
        space = TopologySearch(channel_mul=0.0625, num_blocks=12, num_depths=4)
    torch.manual_seed(0)
    with torch.no_grad():
        space.log_alpha_a.normal_(0, 1)
        space.log_alpha_c.normal_(0, 1)

    def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
        tracemalloc.start()
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return result, seconds, peak

    reference, t_ref, m_ref = timed(space.decode)
    ours, t_ours, m_ours = timed(lambda: decode(Topology(4), torch.sigmoid(space.log_alpha_a), space.log_alpha_c))
    same = bool((ours.arch_code_a == reference[1]).all() and (ours.node_a == reference[0]).all())  # type: ignore
    return [
        ("decode time 12x4 (s)", t_ref, t_ours, f"{t_ref / t_ours:.0f}x faster (goal >= 100x); same arch: {same}"),
        ("decode peak memory 12x4 (MB)", m_ref, m_ours, f"{m_ref / max(m_ours, 1e-6):.0f}x less"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--depths", type=int, default=3)
    parser.add_argument("--channel-mul", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=4, help="patches per batch (the plan's 2 volumes x 2 crops)")
    parser.add_argument("--patch", type=int, nargs=3, default=[48, 64, 48])
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--amp",
        action="store_true",
        help="both variants under the search's mixed precision (float16 on CUDA; none on the CPU)",
    )
    parser.add_argument("--skip-decode", action="store_true")
    parser.add_argument("--quick-json", type=Path, default=None, help="--json output of a quick-preset search")
    parser.add_argument("--peaks-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.peaks_json:
        figures = search_figures(search_iterations(args, device), args, device)
        sys.stdout.write(json.dumps({name: peak for name, (_, _, peak) in figures.items()}) + "\n")
        return
    rows = bench_search(args, device)
    rows += bench_discrete(args, device)
    rows += bench_resize(args, device)
    if not args.skip_decode:
        rows += bench_decode()
    precision = training_dtype(device, args.amp) or torch.float32
    table = Table(title=f"DiNTS: MONAI vs automl-seg ({device}, {torch.get_num_threads()} threads, {precision})")
    for column in ("measure", "MONAI", "ours", "ratio"):
        table.add_column(column)
    for name, ref, ours, ratio in rows:
        table.add_row(name, f"{ref:.4g}", f"{ours:.4g}", ratio)
    if args.quick_json:
        quick = json.loads(args.quick_json.read_text())
        table.add_row("quick preset (engine)", "", json.dumps(quick)[:200], "")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
