"""A pareto study's front as a PNG: validation Dice against measured memory."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from automl_seg.tune.best import completed

if TYPE_CHECKING:
    import optuna


def pareto_png(study: optuna.Study, path: Path) -> Path | None:
    """Dice vs measured memory of every completed trial, the Pareto front drawn as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(t.values[1], t.values[0], t.number) for t in completed(study) if len(t.values) == 2]
    points = [p for p in points if all(math.isfinite(v) for v in p[:2])]
    if not points:
        return None
    front = sorted((t.values[1], t.values[0], t.number) for t in study.best_trials)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="0.6", label="trials")
    ax.plot([p[0] for p in front], [p[1] for p in front], "o-", color="tab:red", label="Pareto front")
    for mem, dice, number in front:
        ax.annotate(f"#{number}", (mem, dice), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("measured memory (MB)")
    ax.set_ylabel("validation Dice")
    ax.set_title(f"study {study.study_name}")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
