"""One validating pass over the cases: every file is read once, checked, hashed and measured.

Checks (each a ``DataError`` naming the file): unreadable or truncated NIfTI, wrong number of image
channels, image/label shape or affine mismatch, non-integer labels or label values that
``dataset.json`` does not declare. Measures, in the RAS frame the plan resamples into: shape,
spacing, label voxel counts, the bounding boxes of the foreground and of the nonzero image, each
foreground class's centroid in world (RAS) millimetres, and a seeded sample of foreground intensities
per channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import nibabel as nib
import numpy as np

from automl_seg.data.msd import CaseFiles, DatasetInfo
from automl_seg.data.nifti import load_image
from automl_seg.errors import DataError

#: foreground voxels sampled per case and channel for the intensity percentiles (as nnU-Net does)
INTENSITY_SAMPLES = 10_000
#: image and label affines may differ by this much (mm) before they count as mismatched
AFFINE_TOLERANCE = 1e-3


class Hasher(Protocol):
    """What ``hashlib.sha256()`` offers that the scan uses."""

    def update(self, data: bytes, /) -> None: ...


@dataclass
class CaseStats:
    """What one case contributes to the fingerprint."""

    id: str
    shape: tuple[int, int, int]  # RAS axis order
    spacing: tuple[float, float, float]  # RAS axis order, mm
    label_counts: dict[int, int]
    foreground_samples: list[np.ndarray]  # one 1-D array per channel
    foreground_extent: tuple[int, int, int] | None = None  # RAS order, voxels; None: no foreground
    nonzero_extent: tuple[int, int, int] | None = None  # RAS order, voxels; None: an all-zero image
    class_centroids: dict[int, tuple[float, float, float]] | None = None  # world RAS mm, per foreground class


def bounding_box_sides(mask: np.ndarray) -> tuple[int, ...] | None:
    """The sides (voxels) of the smallest box holding every True voxel of ``mask``; None when there is none."""
    sides = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hits.size == 0:
            return None
        sides.append(int(hits[-1] - hits[0] + 1))
    return tuple(sides)


def class_centroids(
    label: np.ndarray, affine: np.ndarray, classes: Sequence[int]
) -> dict[int, tuple[float, float, float]]:
    """Each foreground class's centroid in world millimetres (NIfTI's RAS+ frame), so that cases stored in
    other voxel orientations compare: the planner asks whether one class lies before another along an axis."""
    centroids = {}
    for value in classes:
        mask = label == value
        profiles = [mask.sum(axis=tuple(a for a in range(3) if a != axis)) for axis in range(3)]
        voxel = [float(np.average(np.arange(profile.size), weights=profile)) for profile in profiles]
        world = affine[:3, :3] @ np.asarray(voxel) + affine[:3, 3]
        centroids[int(value)] = (float(world[0]), float(world[1]), float(world[2]))
    return centroids


def _load(path: Path, hasher: Hasher) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """Voxels, affine and zooms of a NIfTI file whose bytes also feed ``hasher``."""
    try:
        raw = path.read_bytes()
        hasher.update(path.name.encode())
        hasher.update(raw)
        image = load_image(path)
        data = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises many types for truncated/corrupt files
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{path} cannot be read as NIfTI ({type(exc).__name__}: {reason}); the file is corrupt or truncated: "
            "replace it or re-download the task"
        ) from exc
    return data, image.affine, tuple(float(z) for z in image.header.get_zooms()[:3])


def _to_ras(values: tuple, affine: np.ndarray) -> tuple:
    """Reorder per-axis values from voxel-axis order into RAS order (the plan's orientation)."""
    axes = nib.orientations.io_orientation(affine)[:, 0].astype(int)
    out = [None, None, None]
    for voxel_axis, world_axis in enumerate(axes):
        out[world_axis] = values[voxel_axis]
    return tuple(out)


def _check_geometry(case: CaseFiles, image: np.ndarray, label: np.ndarray, channels: int) -> np.ndarray:
    """The label as 3-D integers, after checking channels and shape against the image."""
    if label.ndim == 4 and label.shape[3] == 1:
        label = label[..., 0]
    if label.ndim != 3:
        raise DataError(f"{case.label} has shape {label.shape}; a label must be a 3-D volume")
    expected_ndim = 3 if channels == 1 else 4
    if image.ndim == 4 and channels == 1 and image.shape[3] == 1:
        image = image[..., 0]
    if image.ndim != expected_ndim or (channels > 1 and image.shape[3] != channels):
        raise DataError(
            f"{case.image} has shape {image.shape}; dataset.json declares {channels} channel(s), so it must be "
            f"{'X x Y x Z' if channels == 1 else f'X x Y x Z x {channels}'}"
        )
    if image.shape[:3] != label.shape:
        raise DataError(
            f"{case.label} has shape {'x'.join(map(str, label.shape))} but its image {case.image.name} has "
            f"{'x'.join(map(str, image.shape[:3]))}; image and label must cover the same voxels"
        )
    return label


def _label_counts(case: CaseFiles, label: np.ndarray, declared: dict[int, str]) -> tuple[np.ndarray, dict[int, int]]:
    if not np.issubdtype(label.dtype, np.integer):
        rounded = np.rint(label)
        if not np.array_equal(rounded, label):
            raise DataError(f"{case.label} holds non-integer label values; labels must be whole numbers")
        label = rounded
    label = label.astype(np.int64)
    values, counts = np.unique(label, return_counts=True)
    unknown = sorted(int(v) for v in values if int(v) not in declared)
    if unknown:
        raise DataError(
            f"{case.label} holds label value(s) {unknown} that dataset.json does not declare "
            f"(labels: {sorted(declared)}); fix the label or the 'labels' entry"
        )
    return label, {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def scan_case(case: CaseFiles, info: DatasetInfo, hasher: Hasher, seed: int) -> CaseStats:
    """Read, validate and measure one case (its bytes are added to ``hasher``)."""
    image, image_affine, zooms = _load(case.image, hasher)
    label, label_affine, _ = _load(case.label, hasher)
    label = _check_geometry(case, image, label, info.num_channels)
    if not np.allclose(image_affine, label_affine, atol=AFFINE_TOLERANCE):
        raise DataError(
            f"{case.label} and its image {case.image.name} have different affines (orientation/spacing/origin); "
            "resample the label onto the image grid"
        )
    label, counts = _label_counts(case, label, info.labels)
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        bad = int(np.size(image) - np.isfinite(image).sum())
        raise DataError(f"{case.image} holds {bad} NaN or infinite voxel(s); fix or remove the case")
    foreground = label > 0
    rng = np.random.default_rng(seed)
    channels = image.reshape(*label.shape, -1)
    samples = []
    for c in range(channels.shape[-1]):
        values = np.asarray(channels[..., c][foreground], dtype=np.float64)
        if values.size > INTENSITY_SAMPLES:
            values = rng.choice(values, INTENSITY_SAMPLES, replace=False)
        samples.append(values)
    foreground_extent = bounding_box_sides(foreground)
    nonzero_extent = bounding_box_sides((channels != 0).any(-1))
    return CaseStats(
        id=case.id,
        shape=_to_ras(label.shape, image_affine),
        spacing=_to_ras(zooms, image_affine),
        label_counts=counts,
        foreground_samples=samples,
        foreground_extent=None if foreground_extent is None else _to_ras(foreground_extent, image_affine),
        nonzero_extent=None if nonzero_extent is None else _to_ras(nonzero_extent, image_affine),
        class_centroids=class_centroids(label, image_affine, [c for c, n in counts.items() if c != 0 and n]),
    )
