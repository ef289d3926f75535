"""The planner's budget choices on synthetic fingerprints of several sizes and spacings (no voxels read)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from automl_seg.data.models import CaseFacts, Fingerprint, IntensityStats, PlanLimits, ShapeSummary
from automl_seg.data.plan import (
    MIN_COVERAGE,
    MIN_ORDERED_CASES,
    coverage,
    derive_plan,
    foreground_extent_mm,
    mirroring_note,
    plan_warnings,
)
from automl_seg.engine.settings import plan_limits

QUICK = PlanLimits(max_patch_voxels=32**3, max_patch_side=64)


def _fingerprint(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    foreground: tuple[int, int, int] | None,
    *,
    cases: int = 5,
    modality: str = "MRI",
    nonzero: tuple[int, int, int] | None = None,
    fraction: float = 0.05,
    spacings: list[tuple[float, float, float]] | None = None,
    classes: list[int] | None = None,
) -> Fingerprint:
    """A fingerprint whose cases all have ``shape``/``spacing`` (or ``spacings`` per case)."""
    spacings = spacings or [spacing] * cases
    facts = [
        CaseFacts(
            id=f"case_{i:03d}",
            shape=shape,
            spacing=spacings[i],
            foreground_extent=foreground,
            nonzero_extent=nonzero or shape,
            classes=classes if classes is not None else [0, 1],
        )
        for i in range(len(spacings))
    ]
    array = np.asarray(spacings)
    return Fingerprint(
        dataset="T",
        num_cases=len(facts),
        num_channels=1,
        modality={0: modality},
        labels={0: "background", 1: "organ"},
        shapes=ShapeSummary(min=shape, median=shape, max=shape),
        spacings=ShapeSummary(min=tuple(array.min(0)), median=tuple(np.median(array, 0)), max=tuple(array.max(0))),
        intensity=[IntensityStats(channel=modality, p00_5=-100.0, p50=40.0, p99_5=250.0, mean=50.0, std=60.0)],
        class_fractions={0: 1 - fraction, 1: fraction},
        content_hash="0" * 64,
        cases=facts,
    )


def test_hippocampus_like_quick_keeps_native_spacing_and_32_cube():
    fp = _fingerprint((35, 50, 36), (1.0, 1.0, 1.0), (22, 38, 25))
    plan = derive_plan(fp, limits=QUICK)
    assert plan.spacing == (1.0, 1.0, 1.0) and plan.patch_size == (32, 32, 32)
    assert not plan.resamples_coarser and not plan.maps_back and plan.foreground_ratio == 0.5
    assert "native spacing" in plan.rationale
    assert derive_plan(fp).patch_size == (48, 64, 48)  # no budget: the whole median case


def test_engine_declares_the_quick_limits():
    assert plan_limits("quick") == QUICK and plan_limits("full") is None


def test_standard_budget_limits_a_patch_s_training_memory():
    limits = plan_limits("standard")
    assert limits is not None and limits.max_patch_memory_mb is not None
    assert limits.voxel_limit < limits.max_patch_voxels  # the memory limit is the tighter one
    assert limits.patch_memory_mb(limits.voxel_limit) <= limits.max_patch_memory_mb


@pytest.mark.parametrize("memory_mb", [64.0, 200.0, 700.0])
def test_memory_limit_shrinks_the_patch_and_coarsens_to_keep_the_field_of_view(memory_mb):
    limits = PlanLimits(max_patch_voxels=128**3, max_patch_memory_mb=memory_mb, memory_kb_per_voxel=1.0)
    fp = _fingerprint((190, 142, 88), (0.625, 0.625, 0.625), (80, 80, 50))
    plan = derive_plan(fp, limits=limits)
    memory = limits.patch_memory_mb(math.prod(plan.patch_size))
    assert memory is not None and memory <= memory_mb
    unlimited = derive_plan(fp, limits=PlanLimits(max_patch_voxels=128**3))
    assert math.prod(plan.patch_size) < math.prod(unlimited.patch_size)
    assert coverage(plan.patch_size, plan.spacing, foreground_extent_mm(fp)) >= MIN_COVERAGE
    assert f"{memory_mb:g} MB of training memory" in plan.rationale


def test_memory_limit_needs_its_rate():
    for half in ({"max_patch_memory_mb": 100.0}, {"memory_kb_per_voxel": 1.0}):
        with pytest.raises(ValueError, match="give both or neither"):
            PlanLimits(max_patch_voxels=32**3, **half)
    generous = PlanLimits(max_patch_voxels=32**3, max_patch_memory_mb=1000, memory_kb_per_voxel=1.0)
    assert generous.voxel_limit == 32**3  # the voxel limit is the tighter one


@pytest.mark.parametrize(
    ("shape", "spacing", "foreground"),
    [
        ((190, 142, 88), (0.625, 0.625, 0.625), (80, 80, 50)),  # the large MRI task
        ((300, 300, 300), (0.4, 0.4, 0.4), (60, 90, 70)),  # Hippocampus at 0.4 mm in a large volume
        ((128, 128, 128), (1.0, 1.0, 1.0), (70, 70, 70)),
    ],
)
def test_quick_budget_coarsens_to_keep_the_foreground_in_view(shape, spacing, foreground):
    fp = _fingerprint(shape, spacing, foreground)
    native_patch_side = 32 * spacing[0]
    plan = derive_plan(fp, limits=QUICK)
    assert math.prod(plan.patch_size) <= QUICK.max_patch_voxels and all(s % 16 == 0 for s in plan.patch_size)
    assert plan.resamples_coarser and plan.maps_back and plan.native_spacing == spacing
    assert all(t > n for t, n in zip(plan.spacing, spacing, strict=True))
    extent = foreground_extent_mm(fp)
    assert coverage(plan.patch_size, plan.spacing, extent) >= MIN_COVERAGE
    assert min(side * step for side, step in zip(plan.patch_size, plan.spacing, strict=True)) > native_patch_side
    assert "low resolution" in plan.rationale and "spans" in plan.rationale
    # without a budget the plan's patch is large enough at the native spacing
    assert derive_plan(fp).spacing == spacing


def test_coarsening_stops_at_its_limit():
    plan = derive_plan(_fingerprint((600, 600, 600), (0.1, 0.1, 0.1), (590, 590, 590)), limits=QUICK)
    assert max(plan.spacing) <= 0.1 * 8 + 1e-9 and "stops" in plan.rationale


def test_small_volumes_need_no_coarsening():
    plan = derive_plan(_fingerprint((20, 20, 20), (2.0, 2.0, 2.0), (10, 10, 10)), limits=QUICK)
    assert plan.spacing == (2.0, 2.0, 2.0) and plan.patch_size == (32, 32, 32)


def test_thick_slices_take_the_10th_percentile_spacing_and_coarsen_the_fine_axes_only():
    spacings = [(0.7, 0.7, z) for z in (2.5, 5.0, 5.0, 5.0, 6.0)]
    fp = _fingerprint((400, 400, 40), (0.7, 0.7, 5.0), (150, 150, 8), spacings=spacings)
    plan = derive_plan(fp)
    assert plan.spacing[2] == pytest.approx(float(np.percentile([2.5, 5, 5, 5, 6], 10)))
    quick = derive_plan(fp, limits=QUICK)
    assert quick.spacing[2] == plan.spacing[2]  # the thick axis is not coarsened further
    assert quick.spacing[0] > 0.7 and quick.spacing[0] == quick.spacing[1] <= quick.spacing[2]
    assert quick.patch_size[2] <= quick.patch_size[0]  # fewer voxels along the thick axis


def test_thick_slices_give_the_fixed_space_in_plane_kernels_first():
    from automl_seg_fixed.space import FixedSpace

    spacings = [(0.7, 0.7, 5.0)] * 5
    plan = derive_plan(_fingerprint((256, 256, 40), (0.7, 0.7, 5.0), (60, 60, 8), spacings=spacings))
    args = FixedSpace().default_args(plan, "quick")
    assert args["kernel_size"][0] == [3, 3, 1] and args["strides"][1] == [2, 2, 1]


def test_explicit_patch_keeps_native_spacing():
    fp = _fingerprint((190, 142, 88), (0.625, 0.625, 0.625), (80, 80, 50))
    plan = derive_plan(fp, patch_size=(32, 32, 32), limits=QUICK)
    assert plan.spacing == (0.625, 0.625, 0.625) and plan.patch_size == (32, 32, 32)


def test_crop_and_foreground_ratio_follow_the_fingerprint():
    bordered = _fingerprint((100, 100, 100), (1.0, 1.0, 1.0), (20, 20, 20), nonzero=(60, 60, 100))
    assert derive_plan(bordered).crop_nonzero and derive_plan(bordered).maps_back
    full = _fingerprint((100, 100, 100), (1.0, 1.0, 1.0), (20, 20, 20))
    assert not derive_plan(full).crop_nonzero
    tiny = _fingerprint((100, 100, 100), (1.0, 1.0, 1.0), (5, 5, 5), fraction=0.001)
    assert derive_plan(tiny).foreground_ratio == pytest.approx(2 / 3) and derive_plan(full).foreground_ratio == 0.5


def test_warnings_name_the_cases():
    spacings = [(1.0, 1.0, 1.0)] * 4 + [(1.0, 1.0, 12.0)]
    fp = _fingerprint((10, 10, 10), (1.0, 1.0, 1.0), (4, 4, 4), spacings=spacings, classes=[0, 1])
    fp = fp.model_copy(update={"labels": {0: "background", 1: "organ", 2: "tumour"}})
    plan = derive_plan(fp, patch_size=(32, 32, 32))
    warnings = plan_warnings(fp, plan)
    assert any("along z varies" in w and "case_004" in w and "case_000" in w for w in warnings)
    assert any("smaller than the patch" in w and "case_000" in w for w in warnings)
    assert not any("smaller than the patch" in w for w in plan_warnings(fp, derive_plan(fp)))  # 16^3: the minimum
    assert any("class 2 (tumour) occurs in no case" in w for w in warnings)
    quiet = _fingerprint((64, 64, 64), (1.0, 1.0, 1.0), (20, 20, 20))
    assert plan_warnings(quiet, derive_plan(quiet)) == []


def _two_classes(offsets: list[tuple[float, float, float]]) -> Fingerprint:
    """A two-class fingerprint whose case i holds class 1's centroid at ``offsets[i]`` from class 2's."""
    fp = _fingerprint((40, 40, 40), (1.0, 1.0, 1.0), (20, 20, 20), cases=len(offsets), classes=[0, 1, 2])
    cases = [
        case.model_copy(update={"class_centroids": {2: (10.0, 10.0, 10.0), 1: tuple(10.0 + d for d in offset)}})
        for case, offset in zip(fp.cases, offsets, strict=True)
    ]
    labels = {0: "background", 1: "anterior", 2: "posterior"}
    return fp.model_copy(update={"cases": cases, "labels": labels})


def test_no_flips_along_an_axis_two_classes_keep_their_order_along():
    rng = np.random.default_rng(0)
    # class 1 always ahead of class 2 along y; on either side at random along x and z
    offsets = [(float(rng.choice([-3, 3])), 5.0 + i, float(rng.choice([-3, 3]))) for i in range(10)]
    fp = _two_classes(offsets)
    assert derive_plan(fp).mirror_axes == (0, 2)
    assert derive_plan(fp, mirror=(0, 1, 2)).mirror_axes == (0, 1, 2)  # data.mirror_axes overrides the rule
    assert mirroring_note(fp) == "no flips along y: anterior and posterior keep their order in 100% of the cases"
    hippocampus = _two_classes([(1.0 if i else -1.0, 18.0, -7.0) for i in range(20)])  # 95 % along x
    assert derive_plan(hippocampus).mirror_axes == ()


def test_flips_along_every_axis_without_a_class_order_or_evidence_for_one():
    mixed = [(3.0, 5.0 if i % 4 else -5.0, 1.0) for i in range(MIN_ORDERED_CASES + 4)]  # y: 75 % < the share
    assert derive_plan(_two_classes(mixed)).mirror_axes == (1,)  # x and z: always the same side
    few = _two_classes([(3.0, 5.0, 1.0)] * (MIN_ORDERED_CASES - 1))  # too few cases to call it an order
    assert derive_plan(few).mirror_axes == (0, 1, 2) and mirroring_note(few) == ""
    one_class = _fingerprint((40, 40, 40), (1.0, 1.0, 1.0), (20, 20, 20), cases=12)
    assert derive_plan(one_class).mirror_axes == (0, 1, 2)


@pytest.mark.parametrize("axes", [(3,), (0, 0), (-1,)])
def test_plan_mirror_axes_are_distinct_spatial_axes(axes):
    from pydantic import ValidationError

    plan = derive_plan(_fingerprint((40, 40, 40), (1.0, 1.0, 1.0), (20, 20, 20)))
    with pytest.raises(ValidationError, match="mirror_axes"):
        type(plan).model_validate({**plan.model_dump(), "mirror_axes": axes})


def test_dints_takes_in_channels_from_the_plan():
    import random

    import torch
    from automl_seg_dints.space import DintsSpace

    fp = _fingerprint((30, 30, 30), (1.0, 1.0, 1.0), (10, 10, 10))
    plan = derive_plan(fp.model_copy(update={"num_channels": 2, "modality": {0: "T1", 1: "T2"}}), limits=QUICK)
    space = DintsSpace()
    args = space.default_args(plan, "quick")
    assert args["in_channels"] == 2
    network = space.build_network(args, space.sample_arch(args, random.Random(0))).eval()
    with torch.no_grad():
        assert tuple(network(torch.zeros(1, 2, *plan.patch_size)).shape) == (1, 2, *plan.patch_size)
