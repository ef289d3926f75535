"""Per-epoch training history: saved as JSON and plotted to a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def save_history_json(history: Sequence[Mapping[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(history), indent=2))
    return path


def plot_history(history: Sequence[Mapping[str, Any]], path: Path, title: str = "training") -> Path:
    """Loss and learning rate per epoch on the left, validation Dice on the right."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), tight_layout=True)
    loss_ax, dice_ax = fig.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    loss_ax.plot(epochs, [row["loss"] for row in history], marker="o", label="train loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    lr_ax = loss_ax.twinx()
    lr_ax.plot(epochs, [row["lr"] for row in history], color="tab:gray", linestyle="--", label="lr")
    lr_ax.set_ylabel("learning rate")
    loss_ax.set_title(title)
    validated = [row for row in history if row.get("val_dice") is not None]
    dice_ax.plot([row["epoch"] for row in validated], [row["val_dice"] for row in validated], marker="o")
    dice_ax.set_xlabel("epoch")
    dice_ax.set_ylabel("mean validation Dice")
    dice_ax.set_ylim(0, 1)
    dice_ax.set_title("validation")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
