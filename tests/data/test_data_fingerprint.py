"""Fingerprint, plan and split on synthetic data; the fingerprint cache; the plan's rules."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from automl_seg.config import DataSettings
from automl_seg.data import prepare_data
from automl_seg.data.fingerprint import cache_dir
from automl_seg.data.models import Fingerprint, IntensityStats, ShapeSummary
from automl_seg.data.plan import derive_plan
from automl_seg.data.split import split_cases
from automl_seg.data.synthetic import make_synthetic_msd


def _true_shapes(task: Path) -> np.ndarray:
    return np.array([nib.load(p).shape for p in sorted((task / "imagesTr").iterdir())])


def test_fingerprint_matches_the_files(task, settings):
    data = prepare_data(settings(), progress=False)
    fp = data.fingerprint
    shapes = _true_shapes(task)
    assert fp.num_cases == 6 and fp.num_channels == 1
    assert fp.shapes.min == tuple(shapes.min(0).astype(float))
    assert fp.shapes.max == tuple(shapes.max(0).astype(float))
    assert fp.shapes.median == tuple(np.median(shapes, 0))
    assert fp.spacings.median == (1.0, 1.0, 1.0)
    assert sum(fp.class_fractions.values()) == pytest.approx(1.0)
    assert set(fp.class_fractions) == {0, 1, 2} and 0 < fp.class_fractions[1] < 0.2
    stats = fp.intensity[0]
    assert stats.channel == "MRI" and stats.p00_5 <= stats.p50 <= stats.p99_5
    assert len(fp.content_hash) == 64
    assert fp.split is not None and sorted(fp.split.train + fp.split.val) == sorted(c.id for c in data.info.cases)


def test_class_centroids_are_in_world_millimetres():
    from automl_seg.data.scan import class_centroids

    label = np.zeros((4, 6, 8), dtype=np.int64)
    label[1, 2:4, 4] = 1  # voxel centroid (1, 2.5, 4)
    label[3, 0, 0] = 2
    affine = np.diag([-2.0, 1.0, 0.5, 1.0])  # x stored right to left, 2 mm; z 0.5 mm
    affine[:3, 3] = (10.0, 0.0, -1.0)
    centroids = class_centroids(label, affine, [1, 2])
    assert centroids[1] == pytest.approx((8.0, 2.5, 1.0)) and centroids[2] == pytest.approx((4.0, 0.0, -1.0))


def test_fingerprint_records_each_cases_class_centroids(settings):
    fp = prepare_data(settings(), progress=False).fingerprint
    for case in fp.cases:
        assert set(case.class_centroids) == set(case.classes) - {0}


def test_plan_from_synthetic_fingerprint(settings):
    plan = prepare_data(settings(), progress=False).plan
    assert plan.patch_size == (32, 32, 32)  # median ~24-26 rounded up to a multiple of 16
    assert plan.normalization == "zscore" and plan.ct_clip is None
    assert plan.num_classes == 3 and plan.in_channels == 1 and plan.spacing == (1.0, 1.0, 1.0)


def test_patch_size_override_is_honoured(settings):
    assert prepare_data(settings(patch_size=(16, 32, 48)), progress=False).plan.patch_size == (16, 32, 48)


def _fingerprint(modality: str, median: tuple[float, float, float], spacing: tuple[float, float, float]) -> Fingerprint:
    return Fingerprint(
        dataset="T",
        num_cases=3,
        num_channels=1,
        modality={0: modality},
        labels={0: "background", 1: "organ"},
        shapes=ShapeSummary(min=median, median=median, max=median),
        spacings=ShapeSummary(min=spacing, median=spacing, max=spacing),
        intensity=[IntensityStats(channel=modality, p00_5=-100.0, p50=40.0, p99_5=250.0, mean=50.0, std=60.0)],
        class_fractions={0: 0.9, 1: 0.1},
        content_hash="0" * 64,
    )


def test_plan_rules_for_ct_and_large_volumes():
    plan = derive_plan(_fingerprint("CT", (512.0, 512.0, 90.0), (0.8, 0.8, 5.0)))
    assert plan.normalization == "ct" and plan.ct_clip == (-100.0, 250.0)
    assert plan.spacing == (0.8, 0.8, 5.0)
    assert all(side % 16 == 0 for side in plan.patch_size)
    assert max(plan.patch_size) <= 128 and np.prod(plan.patch_size) <= 128 * 128 * 64


def test_plan_for_hippocampus_like_median():
    assert derive_plan(_fingerprint("MRI", (35.0, 50.0, 36.0), (1.0, 1.0, 1.0))).patch_size == (48, 64, 48)


def test_split_is_deterministic_and_seed_dependent():
    ids = [f"case_{i:03d}" for i in range(50)]
    first = split_cases(ids, 0.2, seed=3)
    assert first == split_cases(list(reversed(ids)), 0.2, seed=3)
    assert len(first.val) == 10 and len(first.train) == 40 and not set(first.val) & set(first.train)
    assert split_cases(ids, 0.2, seed=4).val != first.val


def test_split_is_stored_with_the_fingerprint(settings):
    a = prepare_data(settings(split_seed=1, val_fraction=0.5), progress=False)
    b = prepare_data(settings(split_seed=1, val_fraction=0.5), progress=False)
    assert a.val_cases == b.val_cases == a.fingerprint.split.val and len(a.val_cases) == 3
    assert a.fingerprint.split.seed == 1


def test_max_cases_limits_the_dataset(settings):
    data = prepare_data(settings(max_cases=3), progress=False)
    assert data.fingerprint.num_cases == 3 and len(data.train_cases) + len(data.val_cases) == 3


def test_fingerprint_is_cached_and_not_recomputed(settings, monkeypatch):
    first = prepare_data(settings(), progress=False).fingerprint
    assert len(list(cache_dir().glob("*.json"))) == 1
    loads = []
    monkeypatch.setattr(nib, "load", lambda *a, **k: loads.append(a) or pytest.fail("file re-read"))
    assert prepare_data(settings(), progress=False).fingerprint == first
    assert loads == []


def test_changed_file_invalidates_the_cache(task, settings):
    first = prepare_data(settings(), progress=False).fingerprint
    make_synthetic_msd(task.parent, seed=1)  # same names, new content
    second = prepare_data(settings(), progress=False).fingerprint
    assert second.content_hash != first.content_hash


def test_content_hash_does_not_depend_on_location(tmp_path):
    hashes = set()
    for where in ("a", "b"):
        make_synthetic_msd(tmp_path / where, num_cases=3, shape=(16, 16, 16))
        fp = prepare_data(DataSettings(dataset="Task99_Synthetic", data_root=tmp_path / where), progress=False)
        hashes.add(fp.fingerprint.content_hash)
    assert len(hashes) == 1
