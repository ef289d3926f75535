"""Postprocessing chosen on validation, as nnU-Net does: per class, keep only the largest connected
component, and only for the classes where that raises the cross-validated Dice.

A model's decision is a ``Postprocessing`` (the class names whose largest component is kept). It is
chosen once from the out-of-fold predictions of a cross-validation (every case predicted by the fold
that did not train on it), stored in the record (``provenance["postprocessing"]``) and in the export
sidecar, and applied to the label map after the argmax by ``predict`` and ``evaluate``, whatever the
backend. Dropping a class' smaller components only changes that class' voxels (they become
background), so each class is decided on its own Dice alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from automl_seg.data.models import Plan
from automl_seg.errors import ConfigError

PROVENANCE_KEY = "postprocessing"


class Postprocessing(BaseModel):
    """Which classes keep only their largest connected component (26-connectivity in 3D)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_largest: tuple[str, ...] = Field(default=(), description="class names, in label order")
    dice_gain: dict[str, float] = Field(
        default_factory=dict, description="per class: cross-validated Dice with it minus without it"
    )

    def check(self, plan: Plan) -> Postprocessing:
        """Itself, when every class it names is a foreground class of ``plan``; else one ``ConfigError``."""
        names = list(foreground_classes(plan).values())
        unknown = [name for name in self.keep_largest if name not in names]
        if unknown:
            raise ConfigError(
                f"postprocessing names class(es) {', '.join(unknown)} that {plan.dataset} does not have; "
                f"its classes: {', '.join(names)}"
            )
        return self

    def apply(self, labels: np.ndarray, plan: Plan) -> np.ndarray:
        """``labels`` (integer label map) with only the largest component kept for the chosen classes."""
        if not self.keep_largest:
            return labels
        index = {name: value for value, name in foreground_classes(plan).items()}
        result = labels.copy()
        for name in self.keep_largest:
            value = index[name]
            result[(labels == value) & ~largest_component(labels == value)] = 0
        return result


def foreground_classes(plan: Plan) -> dict[int, str]:
    """Label value -> class name of the foreground classes (the names scoring uses)."""
    return {value: plan.labels.get(value, f"class{value}") for value in range(1, plan.num_classes)}


def parse_keep_largest(text: str, plan: Plan) -> Postprocessing:
    """A ``--keep-largest`` value: class names separated by commas, or ``none``; checked against ``plan``."""
    names = [] if text.strip().lower() == "none" else [n.strip() for n in text.split(",") if n.strip()]
    return Postprocessing(keep_largest=tuple(names)).check(plan)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a boolean mask (all False when the mask is empty)."""
    from scipy import ndimage

    components, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    if count <= 1:
        return mask.astype(bool)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(sizes.argmax())


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks; 1.0 when both are empty (nothing to find, nothing found)."""
    total = int(prediction.sum()) + int(truth.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(prediction, truth).sum()) / total


def case_dice_pairs(prediction: np.ndarray, truth: np.ndarray, plan: Plan) -> dict[str, tuple[float, float]]:
    """Per class: Dice of the prediction as it is, and with only its largest component kept."""
    pairs = {}
    for value, name in foreground_classes(plan).items():
        mask, true = prediction == value, truth == value
        pairs[name] = (dice(mask, true), dice(largest_component(mask), true))
    return pairs


def choose(pairs: Iterable[Mapping[str, Sequence[float]]], plan: Plan) -> Postprocessing:
    """Keep a class' largest component only when that raises its mean Dice over the cases (``pairs``:
    one ``case_dice_pairs`` per out-of-fold case)."""
    rows = list(pairs)
    if not rows:
        return Postprocessing()
    gain = {
        name: float(np.mean([row[name][1] - row[name][0] for row in rows]))
        for name in foreground_classes(plan).values()
    }
    return Postprocessing(keep_largest=tuple(n for n, g in gain.items() if g > 0), dice_gain=gain)
