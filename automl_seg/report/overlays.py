"""Slice overlays (image, label, prediction) of the best, median and worst validation cases.

The trained model predicts each case again from the dataset's files (on each file's own grid), so
the section needs the weights and the data; without either it says which is missing.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from automl_seg.errors import UserError
from automl_seg.report.page import image, missing, section, text

if TYPE_CHECKING:
    import torch
    from torch import nn

    from automl_seg.data.models import Plan

TITLE = "Best, median and worst validation cases"


def ranked_cases(evaluation: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """(role, case, mean Dice) of the best, median and worst cases (fewer when fewer cases)."""
    scored = sorted(((float(np.mean(list(c["dice"].values()))), c["case"]) for c in evaluation["cases"]), reverse=True)
    if not scored:
        return []
    picks = {"best": 0, "median": len(scored) // 2, "worst": len(scored) - 1}
    if picks["median"] in (0, len(scored) - 1):  # two cases or one: no median of its own
        del picks["median"]
    if picks["worst"] == 0:
        del picks["worst"]
    return [(role, scored[index][1], scored[index][0]) for role, index in picks.items()]


def overlay_png(volume: np.ndarray, label: np.ndarray, prediction: np.ndarray) -> bytes:
    """Three panels of the axial slice with the most labelled voxels: image, label, prediction."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    depth = int(np.argmax((label > 0).sum(axis=(0, 1)))) if label.any() else label.shape[2] // 2
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, (title, mask) in zip(axes, (("image", None), ("label", label), ("prediction", prediction)), strict=True):
        ax.imshow(volume[:, :, depth].T, cmap="gray", origin="lower")
        if mask is not None:
            ax.imshow(np.ma.masked_equal(mask[:, :, depth].T, 0), cmap="autumn", alpha=0.5, origin="lower")
        ax.set_title(f"{title} (slice {depth})", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def overlays(
    evaluation: Mapping[str, Any] | None,
    model: tuple[nn.Module, Plan] | str,
    images: Mapping[str, tuple[Path, Path]] | str,
    device: torch.device,
) -> str:
    """The section; ``model`` and ``images`` (case -> image, label files) are the reason when absent."""
    if evaluation is None:
        return section("overlays", TITLE, missing("not evaluated: no validation cases to show"))
    if isinstance(model, str):
        return section("overlays", TITLE, missing(model))
    if isinstance(images, str):
        return section("overlays", TITLE, missing(images))
    from automl_seg.data.nifti import load_image
    from automl_seg.engine.inference import predict_file_labels

    network, plan = model
    parts = []
    for role, case, dice in ranked_cases(evaluation):
        if case not in images:
            parts.append(missing(f"{role}: case {case} is not in the dataset any more"))
            continue
        image_file, label_file = images[case]
        try:
            prediction = predict_file_labels(network, image_file, plan, device)
        except UserError as exc:
            parts.append(missing(f"{role}: case {case} cannot be predicted ({exc})"))
            continue
        volume = np.asarray(load_image(image_file).dataobj, dtype=np.float32)
        volume = volume[..., 0] if volume.ndim == 4 else volume
        label = np.asarray(load_image(label_file).dataobj).astype(np.uint8)
        parts.append(f"<h3>{text(role)}: {text(case)} (mean Dice {dice:.4f})</h3>")
        parts.append(image(overlay_png(volume, label, prediction), f"{role} case {case}"))
    return section("overlays", TITLE, *parts)
