"""Training with subnormal floats flushed (what the CLI does, ``automl_seg.engine.devices.flush_denormals``)
against the same run computing on them, on the CPU (run by hand, not in CI).

Both runs are ``automl-seg search --strategy STRATEGY --dataset DATASET --budget BUDGET --device cpu``
with the same seed, each in a fresh interpreter with its own registry and checkpoint folder; the
reference replaces the flush with a no-op before the CLI starts. They run one after the other (the
reference first) and share the preprocessed-data cache, which the first run fills. The table gives
the epoch times in quarters of the training (subnormals appear as the network grows confident, so
late epochs show the difference), the whole training time, and the last validation Dice (equal up to
the run-to-run noise of the CPU kernels: flushing values below 1e-38 changes no decision).

    python benchmarks/bench_denormals.py                       # fixed, quick, Task04_Hippocampus
    python benchmarks/bench_denormals.py --budget standard --epochs 12
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

#: The reference: the CLI with the flush replaced by a no-op, started before anything else runs.
_NO_FLUSH = "import automl_seg.cli.main as m; m.flush_denormals = lambda: None; m.entry()"
_CLI = "import automl_seg.cli.main as m; m.entry()"


def _train(code: str, args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    """The training history of one search run (``--json``), run as ``python -c code``."""
    command = [sys.executable, "-c", code, "search", "--strategy", args.strategy, "--dataset", args.dataset,
               "--budget", args.budget, "--device", "cpu", "--seed", str(args.seed), "--json", "--no-progress",
               "--registry", str(folder / "registry"), "--workdir", str(folder / "work")]  # fmt: skip
    if args.epochs:
        command += ["--train-epochs", str(args.epochs)]
    out = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode:
        sys.exit(f"error: {' '.join(command[3:])} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout)["trained"]["history"]


def _quarters(history: list[dict[str, Any]]) -> list[float]:
    """Mean epoch seconds in each quarter of the training."""
    times = [row["time_s"] for row in history]
    size = max(1, len(times) // 4)
    return [sum(part) / len(part) for part in (times[i : i + size] for i in range(0, len(times), size)) if part][:4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="fixed")
    parser.add_argument("--dataset", default="Task04_Hippocampus")
    parser.add_argument("--budget", default="quick")
    parser.add_argument("--epochs", type=int, default=0, help="retraining epochs (default: the budget's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-denormals-") as tmp:
        for name, code in (("subnormals computed", _NO_FLUSH), ("subnormals flushed", _CLI)):
            Console(stderr=True).log(f"training: {name}")
            runs[name] = _train(code, args, Path(tmp) / name.split()[1])
    ref, ours = runs["subnormals computed"], runs["subnormals flushed"]
    table = Table(title=f"{args.strategy} {args.budget} retraining on {args.dataset}, CPU, seed {args.seed}")
    for column in ("measure", "subnormals computed", "subnormals flushed", "ratio"):
        table.add_column(column)
    for quarter, (a, b) in enumerate(zip(_quarters(ref), _quarters(ours), strict=False), start=1):
        table.add_row(f"epoch s, quarter {quarter}", f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}x faster")
    total_ref, total_ours = (sum(row["time_s"] for row in h) for h in (ref, ours))
    table.add_row("training s", f"{total_ref:.0f}", f"{total_ours:.0f}", f"{total_ref / total_ours:.2f}x faster")
    dice = [next((row["val_dice"] for row in reversed(h) if row["val_dice"] is not None), None) for h in (ref, ours)]
    table.add_row("last validation Dice", *(f"{d:.4f}" if d is not None else "-" for d in dice), "")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
