"""Samples per second of the DiNTS search step and of the retraining step versus the DDP world size
(1 and 2 processes), with the ratio to one process measured in the same run (run by hand, not in CI).

Every world size runs as a job of the elastic agent (``torch.distributed.launcher``, what ``--nproc``
uses): each rank steps on its own batch of ``--batch`` synthetic volumes, so a step at world size N
trains on N times the samples. The search step is the DiNTS strategy's weight step and architecture
step (``automl_seg_dints.search``); the retraining step is the engine's training step
(``automl_seg.engine.train``) on the decoded discrete network in DDP. Samples per second count both
ranks' samples over the slowest rank's time. On the CPU the cores are shared out between the ranks
(``--threads`` each); on CUDA each rank has a GPU of its own.

    python benchmarks/bench_ddp.py --threads 1
    python benchmarks/bench_ddp.py --device cuda --batch 2 --patch 96 96 96 --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

SPACE = {"num_blocks": 4, "num_depths": 3, "channel_mul": 0.5}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Any, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    began = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - began


def _worker(options: dict[str, Any]) -> None:
    """One rank: time both steps, rank 0 writes the slowest rank's seconds."""
    from automl_seg_dints.search import DintsSearch
    from automl_seg_dints.space import DintsSpace
    from automl_seg_dints.strategy import DintsStrategy
    from monai.losses import DiceCELoss

    from automl_seg.config import DataSettings
    from automl_seg.data import prepare_data
    from automl_seg.engine.distributed import process_group
    from automl_seg.engine.settings import train_settings
    from automl_seg.engine.train import _step, make_optimizer
    from automl_seg.interfaces import RunInfo, SearchContext

    torch.set_num_threads(options["threads"])
    patch = tuple(options["patch"])
    with process_group(options["device"]) as dist:
        device = dist.device(torch.device(options["device"]))
        data = prepare_data(
            DataSettings(dataset="Task99_Synthetic", data_root=Path(options["data"]), patch_size=patch), progress=False
        )
        space, strategy = DintsSpace(), DintsStrategy()
        args = {**space.default_args(data.plan, "quick"), **SPACE}
        settings = strategy.settings("quick", {"batch_size": options["batch"], "measure_memory": False})
        ctx = SearchContext(
            space=space, space_args=args, data=data, settings=settings, seed=0, device=device,
            workdir=Path(options["data"]) / "work", resume=False, run=RunInfo(run_id="bench", kind="search"),
            dist=dist, progress=False,
        )  # fmt: skip
        search = DintsSearch(ctx)
        state = search.new_state()
        generator = torch.Generator().manual_seed(dist.rank)
        batch = {
            "image": torch.randn(options["batch"], 1, *patch, generator=generator),
            "label": torch.randint(0, 3, (options["batch"], 1, *patch), generator=generator),
        }

        def search_step() -> None:
            search._weight_step(state, batch)
            search._arch_step(state, batch, weight=0.5)

        seconds = {"search": _timed(search_step, options["steps"], 1, device)}
        network = space.build_network(args, search._decode().to_payload()).to(device)
        model = dist.wrap(network, static_graph=True)
        train = train_settings("quick", overrides={"batch_size": options["batch"]})
        optimizer, loss = make_optimizer(network, train), DiceCELoss(to_onehot_y=True, softmax=True)
        scaler = torch.amp.GradScaler(device.type, enabled=False)
        seconds["retrain"] = _timed(
            lambda: _step(model, batch, loss, optimizer, scaler, train, device), options["steps"], 1, device
        )
        slowest = {key: max(dist.gather(value)) for key, value in seconds.items()}
        if dist.is_main:
            Path(options["out"]).write_text(json.dumps({"world_size": dist.world_size, "seconds": slowest}))


def _launch(nproc: int, options: dict[str, Any]) -> dict[str, Any]:
    from torch.distributed.launcher.api import elastic_launch

    from automl_seg.engine.launch import local_launch_config

    config = local_launch_config(nproc)
    out = Path(options["data"]) / f"world{nproc}.json"
    elastic_launch(config, sys.executable)(__file__, "--worker", json.dumps({**options, "out": str(out)}))
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch", type=int, default=1, help="volumes per rank and step")
    parser.add_argument("--patch", type=int, nargs=3, default=[32, 32, 32])
    parser.add_argument("--steps", type=int, default=4, help="timed steps (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per rank (default: cores / 2)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(json.loads(args.worker))
        return
    from automl_seg.data.synthetic import make_synthetic_msd

    threads = args.threads or max(1, len(os.sched_getaffinity(0)) // 2)
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        make_synthetic_msd(Path(tmp), num_cases=4, shape=tuple(s + 8 for s in args.patch))
        options = {
            "device": args.device, "batch": args.batch, "patch": args.patch, "steps": args.steps,
            "threads": threads, "data": tmp,
        }  # fmt: skip
        results = {n: _launch(n, options) for n in (1, 2)}
    table = Table(
        title=f"DDP samples/s ({args.device}, batch {args.batch} per rank, patch {'x'.join(map(str, args.patch))}, "
        f"{args.steps} steps, {threads} thread(s) per rank)"
    )
    for column in ("step", "world size", "samples/s", "ratio to 1 process"):
        table.add_column(column, justify="right" if column != "step" else "left")
    for step in ("search", "retrain"):
        base = args.batch * args.steps / results[1]["seconds"][step]
        for world, result in results.items():
            rate = world * args.batch * args.steps / result["seconds"][step]
            table.add_row(f"DiNTS {step} step", str(world), f"{rate:.2f}", f"{rate / base:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
