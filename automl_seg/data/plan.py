"""Deriving the training plan from a fingerprint and a budget's limits, in the spirit of nnU-Net's rules.

Rules:

- **Normalisation.** Every channel CT -> ``"ct"``: clip to the foreground 0.5/99.5 intensity
  percentiles of the fingerprint (``ct_clip``), then z-score per image. Anything else (MRI and its
  sequences) -> ``"zscore"``: per-image, per-channel z-score over the nonzero voxels, because MR
  intensity scales are arbitrary per scan.
- **Native spacing.** The median voxel spacing per axis (RAS order). Where one axis is much coarser
  than the others (thick slices: more than ``ANISOTROPY_RATIO`` times, and its median side under a
  third of theirs), nnU-Net's rule takes that axis' 10th percentile instead of its median, so few
  cases lose slices by the resampling.
- **Patch at a spacing.** The median shape on that spacing, rounded *up* to a multiple of
  ``divisor`` (one patch covers a typical case), capped at the budget's ``max_patch_side`` and shrunk
  by ``divisor`` until it holds at most the budget's voxel limit; the side shrunk is the one that keeps
  most of the median foreground bounding box in view, ties going to the side largest relative to
  the median shape (nnU-Net's rule). For Hippocampus (35x50x36 at 1 mm) this is
  48x64x48 without limits and 32x32x32 within 32^3 voxels.
- **Memory.** A budget may limit a patch's estimated training memory too (``PlanLimits``); that
  lowers its voxel limit by the memory its networks keep per voxel.
- **Budget spacing (low resolution).** A budget limits voxels, not millimetres: when the patch
  that fits at the native spacing spans less than ``MIN_COVERAGE`` of the median foreground
  bounding box along some axis, the spacing of the axes it falls short on is coarsened (by
  ``COARSENING_STEP``, never past the coarsest axis until all are as coarse, so thick slices stay;
  at most ``MAX_COARSENING`` times the native spacing) until it does. The field of view is
  kept and the detail given up, as in nnU-Net's low-resolution stage; prediction then maps the
  logits back onto the input's grid linearly (``Plan.maps_back``). Where the native patch already
  covers the foreground (Hippocampus: 32^3 spans 84 % of its 38 mm) the native spacing stays.
- **Explicit patch.** ``--patch-size`` replaces the derived patch at the native spacing: each side a
  positive multiple of ``divisor``, at most ``MAX_OVERRIDE_VOXELS`` voxels (memory), and no side
  beyond both ``MAX_PATCH_SIDE`` and the largest case's extent rounded up to ``divisor`` (past that a
  patch is padding).
- **Crop.** Images are cropped to their nonzero region when the median case's nonzero box holds
  less than ``CROP_BELOW`` of its volume (a background border), as nnU-Net does.
- **Foreground sampling.** Half the training patches are centred on foreground; two thirds when
  the foreground is under ``SMALL_FOREGROUND`` of all voxels, so a small structure in a large volume
  is seen often enough.
- **Mirroring.** Training flips, and test-time mirroring averages, along every axis (nnU-Net's default)
  except one along which two classes lie in a fixed order: where one class' centroid is on the same side
  of another's in at least ``ORDERED_SHARE`` of at least ``MIN_ORDERED_CASES`` cases holding both, a flip
  along that axis shows the network the classes swapped (Hippocampus' anterior part lies before its
  posterior part along every axis, and training with flips cost 0.02 held-out Dice at the quick budget).
  ``data.mirror_axes`` overrides the rule; retraining keeps a record's axes.
- **Classes and channels.** ``num_classes = len(labels)`` (background included),
  ``in_channels = len(modality)``.

``plan_warnings`` names the cases that a plan cannot serve well (spacing far from the others', a
case smaller than the patch, a class in no case) so they are reported before any training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from automl_seg.data.models import Fingerprint, Plan, PlanLimits
from automl_seg.errors import ConfigError

DIVISOR = 16
MAX_PATCH_SIDE = 128
MAX_PATCH_VOXELS = 128 * 128 * 64
#: An explicit patch may be larger than the derived one, up to this many voxels (a float32 batch of
#: such patches and a network's activations on them already take many GB).
MAX_OVERRIDE_VOXELS = 256 * 256 * 128
#: the limits of a plan made without a budget (nnU-Net-like, for a GPU)
DEFAULT_LIMITS = PlanLimits(max_patch_voxels=MAX_PATCH_VOXELS, max_patch_side=MAX_PATCH_SIDE)
#: a patch should span at least this share of the median foreground bounding box along every axis
MIN_COVERAGE = 0.75
#: each coarsening step multiplies the spacing by this (nnU-Net's low-resolution stage uses 1.03)
COARSENING_STEP = 1.1
#: the spacing is never coarsened beyond this multiple of the native one
MAX_COARSENING = 8.0
#: an axis this many times coarser than the finest is anisotropic (nnU-Net: 3 for the target spacing)
ANISOTROPY_RATIO = 3.0
#: crop to the nonzero region when the median case's nonzero box holds less than this share of it
CROP_BELOW = 0.9
#: foreground under this share of all voxels counts as small: 2/3 of the patches are centred on it
SMALL_FOREGROUND = 0.02
#: two classes lie in a fixed order along an axis when one's centroid is on the same side of the other's
#: in at least this share of the cases holding both, and there are at least ``MIN_ORDERED_CASES`` of them
ORDERED_SHARE = 0.9
MIN_ORDERED_CASES = 8
#: spacings of one axis that differ by more than this factor between cases get a warning
SPACING_SPREAD = 10.0

Spacing = tuple[float, float, float]
Patch = tuple[int, int, int]


def _is_ct(fingerprint: Fingerprint) -> bool:
    return all(name.strip().upper() == "CT" for name in fingerprint.modality.values())


def _mm(values: Sequence[float]) -> str:
    return "x".join(f"{v:.3g}" for v in values)


def native_spacing(fingerprint: Fingerprint) -> Spacing:
    """The median spacing, with nnU-Net's thick-slice rule (see the module docstring)."""
    target = [float(s) for s in fingerprint.spacings.median]
    worst = int(np.argmax(target))
    others = [axis for axis in range(3) if axis != worst]
    finest_other = max(target[a] for a in others)
    thick = target[worst] > ANISOTROPY_RATIO * finest_other
    few_slices = fingerprint.shapes.median[worst] * ANISOTROPY_RATIO < min(fingerprint.shapes.median[a] for a in others)
    if thick and few_slices:
        per_case = [case.spacing[worst] for case in fingerprint.cases] or [fingerprint.spacings.min[worst]]
        target[worst] = max(float(np.percentile(per_case, 10)), finest_other)
    return (target[0], target[1], target[2])


def median_shape_at(fingerprint: Fingerprint, spacing: Sequence[float]) -> list[float]:
    """The median case shape (voxels) once resampled to ``spacing``."""
    return [m * s / t for m, s, t in zip(fingerprint.shapes.median, fingerprint.spacings.median, spacing, strict=True)]


def fit_patch(
    shape: Sequence[float],
    limits: PlanLimits,
    divisor: int = DIVISOR,
    spacing: Sequence[float] | None = None,
    extent_mm: Sequence[float] | None = None,
) -> Patch:
    """The patch rule described in the module docstring, for a median ``shape`` in voxels. With the
    foreground's ``extent_mm`` (and the ``spacing``), each shrink keeps the most of it in view; ties go
    to the side largest relative to the median shape."""
    cap = max(divisor, limits.max_patch_side // divisor * divisor)
    patch = [min(cap, max(divisor, math.ceil(side / divisor) * divisor)) for side in shape]

    def preference(axis: int) -> tuple[float, float]:
        smaller = [side - divisor if a == axis else side for a, side in enumerate(patch)]
        kept = coverage(smaller, spacing, extent_mm) if spacing is not None and extent_mm is not None else 0.0
        return kept, patch[axis] / max(shape[axis], 1e-6)

    while math.prod(patch) > limits.voxel_limit:
        shrinkable = [axis for axis in range(3) if patch[axis] > divisor]
        if not shrinkable:
            break
        patch[max(shrinkable, key=preference)] -= divisor
    return (patch[0], patch[1], patch[2])


def default_patch_size(
    fingerprint: Fingerprint, spacing: Sequence[float], divisor: int = DIVISOR, limits: PlanLimits = DEFAULT_LIMITS
) -> Patch:
    """The patch at ``spacing`` within ``limits`` (no coarsening)."""
    shape = median_shape_at(fingerprint, spacing)
    return fit_patch(shape, limits, divisor, spacing, foreground_extent_mm(fingerprint))


def foreground_extent_mm(fingerprint: Fingerprint) -> Spacing | None:
    """The median foreground bounding box in mm per axis (None when the fingerprint has none)."""
    boxes = [
        [side * spacing for side, spacing in zip(case.foreground_extent, case.spacing, strict=True)]
        for case in fingerprint.cases
        if case.foreground_extent is not None
    ]
    if not boxes:
        return None
    median = np.median(np.asarray(boxes), axis=0)
    return (float(median[0]), float(median[1]), float(median[2]))


def axis_coverage(patch: Sequence[int], spacing: Sequence[float], extent_mm: Sequence[float]) -> list[float]:
    """The share of the foreground extent the patch spans along each axis (at most 1)."""
    sides = zip(patch, spacing, extent_mm, strict=True)
    return [min(1.0, side * step / max(extent, 1e-6)) for side, step, extent in sides]


def coverage(patch: Sequence[int], spacing: Sequence[float], extent_mm: Sequence[float]) -> float:
    """The smallest share of the foreground extent the patch spans along one axis."""
    return min(axis_coverage(patch, spacing, extent_mm))


def coarser(spacing: Sequence[float], short: Sequence[int]) -> Spacing:
    """One coarsening step for the ``short`` axes (those the patch does not cover enough): each finer than
    the coarsest axis grows up to it, so thick slices stay as they are while the fine axes catch up; once
    every short axis is as coarse as the coarsest, all axes grow together (the grid keeps its shape). Axes
    of equal spacing grow together, so an isotropic grid (or plane) stays isotropic."""
    coarsest = max(spacing)
    short = [axis for axis in range(3) if any(math.isclose(spacing[axis], spacing[s], rel_tol=1e-6) for s in short)]
    growing = [axis for axis in short if spacing[axis] < coarsest * (1 - 1e-6)]
    if growing:
        out = [min(coarsest, s * COARSENING_STEP) if axis in growing else s for axis, s in enumerate(spacing)]
    else:
        out = [s * COARSENING_STEP for s in spacing]
    return (out[0], out[1], out[2])


def _limit(limits: PlanLimits) -> str:
    """The voxel limit in words, saying when memory sets it."""
    if limits.voxel_limit < limits.max_patch_voxels:
        return f"{limits.voxel_limit} voxels ({limits.max_patch_memory_mb:g} MB of training memory)"
    return f"{limits.voxel_limit} voxels"


def _limited(voxels: int, limits: PlanLimits) -> str:
    """A patch's voxels (and estimated training memory) against the limit."""
    memory = limits.patch_memory_mb(voxels)
    shown = f"{voxels} voxels" + ("" if memory is None else f", about {memory:.0f} MB to train")
    return f"{shown}, limit {_limit(limits)}"


def budget_grid(
    fingerprint: Fingerprint, native: Spacing, limits: PlanLimits, divisor: int = DIVISOR
) -> tuple[Spacing, Patch, str]:
    """The spacing and patch for ``limits`` and why (see the module docstring's budget rule)."""
    patch = default_patch_size(fingerprint, native, divisor, limits)
    fits = f"patch {_mm(patch)} ({_limited(math.prod(patch), limits)})"
    extent = foreground_extent_mm(fingerprint)
    if extent is None:
        return native, patch, f"native spacing: {fits}; no foreground extent known"
    start = coverage(patch, native, extent)
    if start >= MIN_COVERAGE:
        return native, patch, (
            f"native spacing: {fits} spans {start:.0%} of the median foreground box ({_mm(extent)} mm)"
        )  # fmt: skip
    spacing, covered = native, start
    while covered < MIN_COVERAGE:
        short = [axis for axis, share in enumerate(axis_coverage(patch, spacing, extent)) if share < MIN_COVERAGE]
        candidate = coarser(spacing, short)
        if max(c / n for c, n in zip(candidate, native, strict=True)) > MAX_COARSENING:
            break
        spacing = candidate
        patch = default_patch_size(fingerprint, spacing, divisor, limits)
        covered = coverage(patch, spacing, extent)
    spacing = (round(spacing[0], 4), round(spacing[1], 4), round(spacing[2], 4))
    patch = default_patch_size(fingerprint, spacing, divisor, limits)
    covered = coverage(patch, spacing, extent)
    return spacing, patch, (
        f"low resolution: at the native {_mm(native)} mm a patch within {_limit(limits)} spans "
        f"only {start:.0%} of the median foreground box ({_mm(extent)} mm); at {_mm(spacing)} mm patch "
        f"{_mm(patch)} spans {covered:.0%}"
        + ("" if covered >= MIN_COVERAGE else f" (coarsening stops at {MAX_COARSENING:g}x)")
    )  # fmt: skip


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
    return patch


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


def crops_nonzero(fingerprint: Fingerprint) -> bool:
    """True when the median case's nonzero bounding box holds less than ``CROP_BELOW`` of its volume."""
    shares = [
        math.prod(case.nonzero_extent) / math.prod(case.shape)
        for case in fingerprint.cases
        if case.nonzero_extent is not None
    ]
    return bool(shares) and float(np.median(shares)) < CROP_BELOW


def foreground_ratio(fingerprint: Fingerprint) -> float:
    """Half the patches on foreground; two thirds where the foreground is small (module docstring)."""
    foreground = sum(share for label, share in fingerprint.class_fractions.items() if label != 0)
    return 2 / 3 if foreground < SMALL_FOREGROUND else 0.5


def ordered_axes(fingerprint: Fingerprint) -> dict[int, str]:
    """The RAS axes along which two classes lie in a fixed order, each with the pair and its share of cases."""
    found: dict[int, str] = {}
    labels = sorted(label for label in fingerprint.labels if label != 0)
    for index, first in enumerate(labels):
        for second in labels[index + 1 :]:
            pairs = [
                np.subtract(case.class_centroids[first], case.class_centroids[second])
                for case in fingerprint.cases
                if first in case.class_centroids and second in case.class_centroids
            ]
            if len(pairs) < MIN_ORDERED_CASES:
                continue
            ahead = (np.asarray(pairs) > 0).mean(axis=0)
            for axis in range(3):
                share = max(float(ahead[axis]), 1.0 - float(ahead[axis]))
                if share >= ORDERED_SHARE and axis not in found:
                    names = fingerprint.labels
                    found[axis] = f"{names[first]} and {names[second]} keep their order in {share:.0%} of the cases"
    return found


def mirroring_note(fingerprint: Fingerprint) -> str:
    """Which axes the plan does not flip along and why, in words ("" when it flips along all three)."""
    ordered = ordered_axes(fingerprint)
    return "; ".join(f"no flips along {'xyz'[axis]}: {why}" for axis, why in sorted(ordered.items()))


def mirror_axes(fingerprint: Fingerprint) -> tuple[int, ...]:
    """The axes to flip along in training and test-time mirroring: those no two classes are ordered along."""
    ordered = ordered_axes(fingerprint)
    return tuple(axis for axis in range(3) if axis not in ordered)


def derive_plan(
    fingerprint: Fingerprint,
    patch_size: Sequence[int] | None = None,
    divisor: int = DIVISOR,
    limits: PlanLimits | None = None,
    mirror: Sequence[int] | None = None,
) -> Plan:
    """The plan for ``fingerprint`` within ``limits`` (default ``DEFAULT_LIMITS``); ``patch_size``
    (validated) replaces the derived patch and keeps the native spacing, ``mirror`` the mirror axes."""
    native = native_spacing(fingerprint)
    ct = _is_ct(fingerprint)
    if patch_size is not None:
        spacing, patch, why = native, check_patch_size(patch_size, divisor), "patch size given explicitly"
        check_patch_fits_data(patch, fingerprint, spacing, divisor)
    else:
        spacing, patch, why = budget_grid(fingerprint, native, limits or DEFAULT_LIMITS, divisor)
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
        native_spacing=native,
        crop_nonzero=crops_nonzero(fingerprint),
        foreground_ratio=foreground_ratio(fingerprint),
        mirror_axes=mirror_axes(fingerprint) if mirror is None else tuple(mirror),
        rationale=why,
    )


def resampling_note(plan: Plan) -> str:
    """How inference moves between the input's grid and the plan's, in words (export sidecars, ``predict``)."""
    steps = ["crop to the image's nonzero region (any channel)"] if plan.crop_nonzero else []
    native = _mm(plan.native_spacing or plan.spacing)
    coarse = f" (coarser than the data's {native} mm)" if plan.resamples_coarser else ""
    steps.append(f"image (tri)linearly to {_mm(plan.spacing)} mm{coarse}")
    if plan.maps_back:
        steps.append("logits mapped back onto the input grid (tri)linearly, then argmax")
    else:
        steps.append("label map mapped back onto the input grid by nearest neighbour")
    return "; ".join(steps)


def _cases(ids: Sequence[str], limit: int = 5) -> str:
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def plan_warnings(fingerprint: Fingerprint, plan: Plan) -> list[str]:
    """What the plan cannot serve well, each naming the cases: checked before any training."""
    warnings = []
    cases = fingerprint.cases
    for axis, name in enumerate("xyz"):
        spacings = [case.spacing[axis] for case in cases]
        if spacings and max(spacings) > SPACING_SPREAD * min(spacings):
            fine = min(cases, key=lambda c: c.spacing[axis])
            coarse = max(cases, key=lambda c: c.spacing[axis])
            warnings.append(
                f"spacing along {name} varies more than {SPACING_SPREAD:g}x between cases ({fine.id}: "
                f"{fine.spacing[axis]:g} mm, {coarse.id}: {coarse.spacing[axis]:g} mm); every case is resampled to "
                f"{plan.spacing[axis]:g} mm: check those cases' headers"
            )
    small = [
        case.id
        for case in cases
        if all(  # a whole divisor short on every axis: the patch is mostly padding (a patch rounds a case up)
            side * step / target + plan.divisor <= patch
            for side, step, target, patch in zip(case.shape, case.spacing, plan.spacing, plan.patch_size, strict=True)
        )
    ]
    if small:
        warnings.append(
            f"{len(small)} case(s) are smaller than the patch {_mm(plan.patch_size)} by at least {plan.divisor} voxels "
            f"in every axis ({_cases(small)}); they are mostly zero padding in it"
        )
    if cases:
        present = {label for case in cases for label in case.classes}
        for label, name in plan.labels.items():
            if label != 0 and label not in present:
                warnings.append(
                    f"class {label} ({name}) occurs in no case of {fingerprint.dataset}: the model cannot learn it; "
                    "check the labels or dataset.json"
                )
    return warnings
