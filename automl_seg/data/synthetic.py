"""Tiny synthetic MSD datasets (blob labels in noise) for tests, demos and plugin conformance."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

LABELS = {"0": "background", "1": "anterior", "2": "posterior"}


def _blob_label(shape: tuple[int, int, int], rng: np.random.Generator, num_classes: int) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(np.float32)
    label = np.zeros(shape, dtype=np.uint8)
    for cls in range(1, num_classes):
        centre = rng.uniform(0.3, 0.7, size=3) * np.array(shape)
        radii = rng.uniform(0.12, 0.22, size=3) * np.array(shape)
        inside = (((grid - centre) / radii) ** 2).sum(-1) <= 1.0
        label[inside] = cls
    return label


def make_synthetic_msd(
    root: Path,
    name: str = "Task99_Synthetic",
    num_cases: int = 6,
    shape: tuple[int, int, int] = (24, 24, 24),
    num_classes: int = 3,
    seed: int = 0,
    spacing: float = 1.0,
) -> Path:
    """Write an MSD-layout task under ``root/name`` and return its folder.

    Each case has a slightly different shape (as real data does), an MRI-like image whose
    intensity scale varies per case, and ``num_classes - 1`` ellipsoid blobs as labels."""
    rng = np.random.default_rng(seed)
    task = Path(root) / name
    (task / "imagesTr").mkdir(parents=True, exist_ok=True)
    (task / "labelsTr").mkdir(parents=True, exist_ok=True)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    training = []
    for i in range(num_cases):
        case_shape = tuple(int(s + rng.integers(-2, 3)) for s in shape)
        label = _blob_label(case_shape, rng, num_classes)
        scale = float(rng.choice([1.0, 50.0, 1000.0]))
        image = (rng.normal(0.0, 0.3, case_shape) + label.astype(np.float32)) * scale + 2 * scale
        case = f"synth_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image.astype(np.float32), affine), task / "imagesTr" / case)
        nib.save(nib.Nifti1Image(label, affine), task / "labelsTr" / case)
        training.append({"image": f"./imagesTr/{case}", "label": f"./labelsTr/{case}"})
    labels = {str(c): LABELS.get(str(c), f"class{c}") for c in range(num_classes)}
    meta = {
        "name": name,
        "description": "synthetic blobs for automl-seg tests",
        "tensorImageSize": "3D",
        "modality": {"0": "MRI"},
        "labels": labels,
        "numTraining": num_cases,
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (task / "dataset.json").write_text(json.dumps(meta, indent=2))
    return task
