"""Tiny synthetic MSD datasets (blob labels in noise) for tests, demos and plugin conformance."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

LABELS = {"0": "background", "1": "anterior", "2": "posterior"}


def _blob_label(shape: tuple[int, ...], rng: np.random.Generator, num_classes: int) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(np.float32)
    label = np.zeros(shape, dtype=np.uint8)
    for cls in range(1, num_classes):
        centre = rng.uniform(0.3, 0.7, size=3) * np.array(shape)
        radii = rng.uniform(0.12, 0.22, size=3) * np.array(shape)
        inside = (((grid - centre) / radii) ** 2).sum(-1) <= 1.0
        label[inside] = cls
    return label


def _channel(modality: str, label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One image channel: MRI-like (arbitrary per-case scale, strictly positive) or CT-like (HU, outliers)."""
    if modality.upper() == "CT":
        image = rng.normal(40.0, 15.0, label.shape) + 80.0 * (label > 0)
        image.flat[rng.choice(image.size, max(1, image.size // 200), replace=False)] = 3000.0  # metal-like outliers
        return image
    scale = float(rng.choice([1.0, 50.0, 1000.0]))
    return (rng.normal(0.0, 0.3, label.shape) + label.astype(np.float32)) * scale + 2 * scale


def make_synthetic_msd(
    root: Path,
    name: str = "Task99_Synthetic",
    num_cases: int = 6,
    shape: tuple[int, int, int] = (24, 24, 24),
    num_classes: int = 3,
    seed: int = 0,
    spacing: float | tuple[float, float, float] = 1.0,
    modalities: tuple[str, ...] = ("MRI",),
    border: int = 0,
) -> Path:
    """Write an MSD-layout task under ``root/name`` and return its folder.

    Each case has a slightly different shape (as real data does), an image per modality whose
    intensity scale varies per case (MRI-like) or sits on the Hounsfield scale (CT: soft tissue
    around 40 HU, foreground brighter, a few outliers), and ``num_classes - 1`` ellipsoid blobs as
    labels. ``spacing`` may differ per axis (thick slices); ``border`` adds that many zero voxels
    around every image (a background border to crop)."""
    rng = np.random.default_rng(seed)
    task = Path(root) / name
    (task / "imagesTr").mkdir(parents=True, exist_ok=True)
    (task / "labelsTr").mkdir(parents=True, exist_ok=True)
    steps = (spacing,) * 3 if isinstance(spacing, int | float) else tuple(spacing)
    affine = np.diag([*map(float, steps), 1.0])
    training = []
    for i in range(num_cases):
        case_shape = tuple(int(s + rng.integers(-2, 3)) for s in shape)
        label = _blob_label(case_shape, rng, num_classes)
        channels = [_channel(modality, label, rng) for modality in modalities]
        image = np.stack(channels, -1) if len(channels) > 1 else channels[0]
        if border:
            image = np.pad(image, [(border, border)] * 3 + [(0, 0)] * (image.ndim - 3))
            label = np.pad(label, border)
        case = f"synth_{i:03d}.nii.gz"
        nib.save(nib.Nifti1Image(image.astype(np.float32), affine), task / "imagesTr" / case)
        nib.save(nib.Nifti1Image(label, affine), task / "labelsTr" / case)
        training.append({"image": f"./imagesTr/{case}", "label": f"./labelsTr/{case}"})
    labels = {str(c): LABELS.get(str(c), f"class{c}") for c in range(num_classes)}
    meta = {
        "name": name,
        "description": "synthetic blobs for automl-seg tests",
        "tensorImageSize": "3D",
        "modality": {str(i): modality for i, modality in enumerate(modalities)},
        "labels": labels,
        "numTraining": num_cases,
        "numTest": 0,
        "training": training,
        "test": [],
    }
    (task / "dataset.json").write_text(json.dumps(meta, indent=2))
    return task
