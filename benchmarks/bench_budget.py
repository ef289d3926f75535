"""How well megabyte budgets predict real training memory (run by hand, not in CI).

    python benchmarks/bench_budget.py                    # quick preset, batch 4 of 32^3, 6 random architectures
    python benchmarks/bench_budget.py --archs 10 --device cuda

Calibrates DiNTS' cost model as a search with ``--set memory_budget=NMB`` does (``automl_seg_dints.calibrate``:
the sparsest and the densest architecture measured), then measures seeded random architectures of the
space and prints, for each, the cost model's megabytes, the calibrated prediction and the measured
training memory: how far off a megabyte budget would be read on the cost model alone, and with the
calibration.
"""

from __future__ import annotations

import argparse
import random

import torch
from automl_seg_dints.calibrate import calibrate
from automl_seg_dints.measure import measure_training_memory_mb
from automl_seg_dints.space import DintsSpace, DintsSpaceArgs
from automl_seg_dints.supernet import FastTopologySearch, MemoryEstimator
from automl_seg_dints.topology import DecodedArch
from rich.console import Console
from rich.table import Table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--depths", type=int, default=3)
    parser.add_argument("--channel-mul", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=4, help="patches per batch (the quick plan's 2 volumes x 2 crops)")
    parser.add_argument("--patch", type=int, nargs=3, default=[32, 32, 32])
    parser.add_argument("--archs", type=int, default=6, help="random architectures to measure")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    space_args = DintsSpaceArgs(
        in_channels=1, num_classes=3, num_blocks=args.blocks, num_depths=args.depths, channel_mul=args.channel_mul
    )
    device = torch.device(args.device)
    supernet = FastTopologySearch(args.blocks, args.depths, args.channel_mul)
    estimator = MemoryEstimator(supernet, args.batch, args.patch)
    calibration = calibrate(space_args, estimator, args.batch, args.patch, device)

    table = Table(title=f"training memory, batch {args.batch} of {'x'.join(map(str, args.patch))}, {device.type}")
    for column in ("architecture", "paths", "cost model MB", "predicted MB", "measured MB", "measured/model", "error"):
        table.add_column(column, justify="left" if column == "architecture" else "right")
    for name, estimated, measured in zip(
        ("sparsest", "densest"), calibration.estimated_mb, calibration.measured_mb, strict=True
    ):
        table.add_row(f"{name} (calibrates)", "", f"{estimated:.1f}", "", f"{measured:.1f}", "", "")
    ratios, errors = [], []
    for seed in range(args.archs):
        payload = DintsSpace().sample_arch(space_args.model_dump(), random.Random(seed))
        arch = DecodedArch.from_payload(payload)
        estimated = estimator.discrete_mb(arch.arch_code_a, arch.arch_code_c)
        predicted = calibration.measured_for(estimated)
        measured = measure_training_memory_mb(space_args.model_dump(), payload, args.batch, args.patch, device)
        ratios.append(measured / estimated)
        errors.append(predicted / measured - 1)
        table.add_row(
            f"random {seed}", str(int(arch.arch_code_a.sum())), f"{estimated:.1f}", f"{predicted:.1f}",
            f"{measured:.1f}", f"{ratios[-1]:.2f}x", f"{errors[-1]:+.1%}",
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(
        f"cost model alone: measured memory {min(ratios):.2f}-{max(ratios):.2f}x its megabytes; "
        f"calibrated: {min(errors):+.1%} to {max(errors):+.1%} of the measured memory"
    )


if __name__ == "__main__":
    main()
