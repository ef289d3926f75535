"""Deriving the training plan from a fingerprint, in the spirit of nnU-Net's fixed rules.

Rules:

- **Normalisation.** Every channel CT -> ``"ct"``: clip to the foreground 0.5/99.5 intensity
  percentiles of the fingerprint (``ct_clip``), then z-score per image. Anything else (MRI and its
  sequences) -> ``"zscore"``: per-image, per-channel z-score over the nonzero voxels, because MR
  intensity scales are arbitrary per scan.
- **Spacing.** The median voxel spacing per axis (RAS order).
- **Patch size.** The median shape, rescaled to the target spacing, rounded *up* to a multiple of
  ``divisor`` so one patch covers a typical case, then capped at ``MAX_PATCH_SIDE`` per axis and
  shrunk (largest side first, by ``divisor``) until it holds at most ``MAX_PATCH_VOXELS`` voxels.
  For Hippocampus (median 35x50x36 at 1 mm) this is 48x64x48. ``DataSettings.patch_size``
  overrides it; each side must be a positive multiple of ``divisor``, the patch must hold at most
  ``MAX_OVERRIDE_VOXELS`` voxels (memory), and no side may exceed both ``MAX_PATCH_SIDE`` and the
  largest case's extent at the plan's spacing rounded up to ``divisor`` (beyond that a patch is padding).
- **Classes and channels.** ``num_classes = len(labels)`` (background included),
  ``in_channels = len(modality)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from automl_seg.data.models import Fingerprint, Plan
from automl_seg.errors import ConfigError

DIVISOR = 16
MAX_PATCH_SIDE = 128
MAX_PATCH_VOXELS = 128 * 128 * 64
#: An explicit patch may be larger than the derived one, up to this many voxels (a float32 batch of
#: such patches and a network's activations on them already take many GB).
MAX_OVERRIDE_VOXELS = 256 * 256 * 128


def _is_ct(fingerprint: Fingerprint) -> bool:
    return all(name.strip().upper() == "CT" for name in fingerprint.modality.values())


def default_patch_size(fingerprint: Fingerprint, spacing: Sequence[float], divisor: int = DIVISOR) -> tuple[int, ...]:
    """The patch rule described in the module docstring."""
    median = [
        m * s / t for m, s, t in zip(fingerprint.shapes.median, fingerprint.spacings.median, spacing, strict=True)
    ]
    patch = [min(MAX_PATCH_SIDE, max(divisor, math.ceil(side / divisor) * divisor)) for side in median]
    while math.prod(patch) > MAX_PATCH_VOXELS:
        largest = max(range(3), key=lambda axis: patch[axis])
        if patch[largest] <= divisor:
            break
        patch[largest] -= divisor
    return tuple(patch)


def check_patch_size(patch_size: Sequence[int], divisor: int = DIVISOR) -> tuple[int, int, int]:
    """``patch_size`` as a triple; ``ConfigError`` unless every side is a positive multiple of ``divisor``."""
    patch = tuple(int(p) for p in patch_size)
    shown = "x".join(map(str, patch))
    if len(patch) != 3 or any(p <= 0 or p % divisor for p in patch):
        raise ConfigError(
            f"patch size {shown} is invalid: give 3 sides, each a positive multiple of {divisor} "
            f"(e.g. {divisor * 2}x{divisor * 2}x{divisor * 2})"
        )
    if math.prod(patch) > MAX_OVERRIDE_VOXELS:
        raise ConfigError(
            f"patch size {shown} holds {math.prod(patch):,} voxels, more than the {MAX_OVERRIDE_VOXELS:,} a training "
            "batch can hold in memory; give a smaller patch (e.g. 128x128x64) or leave it to the plan"
        )
    return patch  # type: ignore[return-value]


def check_patch_fits_data(
    patch: Sequence[int], fingerprint: Fingerprint, spacing: Sequence[float], divisor: int = DIVISOR
) -> None:
    """``ConfigError`` where a side of ``patch`` exceeds both ``MAX_PATCH_SIDE`` and the largest case's
    extent at ``spacing`` rounded up to ``divisor``: such a patch would be mostly padding."""
    largest = [m * s / t for m, s, t in zip(fingerprint.shapes.max, fingerprint.spacings.median, spacing, strict=True)]
    limits = [max(MAX_PATCH_SIDE, math.ceil(side / divisor) * divisor) for side in largest]
    if any(p > limit for p, limit in zip(patch, limits, strict=True)):
        extent = "x".join(str(math.ceil(side)) for side in largest)
        raise ConfigError(
            f"patch size {'x'.join(map(str, patch))} is larger than the data: the largest case of "
            f"{fingerprint.dataset} spans {extent} voxels at the plan's spacing; give at most "
            f"{'x'.join(map(str, limits))}, or leave the patch to the plan"
        )


def derive_plan(fingerprint: Fingerprint, patch_size: Sequence[int] | None = None, divisor: int = DIVISOR) -> Plan:
    """The plan for ``fingerprint``; ``patch_size`` (validated) replaces the derived patch."""
    spacing = tuple(float(s) for s in fingerprint.spacings.median)
    ct = _is_ct(fingerprint)
    if patch_size is not None:
        patch = check_patch_size(patch_size, divisor)
        check_patch_fits_data(patch, fingerprint, spacing, divisor)
    else:
        patch = default_patch_size(fingerprint, spacing, divisor)
    return Plan(
        dataset=fingerprint.dataset,
        modality="/".join(dict.fromkeys(fingerprint.modality.values())),
        in_channels=fingerprint.num_channels,
        num_classes=len(fingerprint.labels),
        labels=fingerprint.labels,
        spacing=spacing,
        normalization="ct" if ct else "zscore",
        ct_clip=(fingerprint.intensity[0].p00_5, fingerprint.intensity[0].p99_5) if ct else None,
        patch_size=patch,
        divisor=divisor,
    )
