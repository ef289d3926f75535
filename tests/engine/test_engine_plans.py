"""Data we never tuned for, end to end: thick slices, several channels, CT, and a low-resolution plan.

Each task is synthetic (MSD layout), planned by the planner itself (no explicit patch), searched
with the ``fixed`` strategy, trained for a few steps, evaluated and used for prediction."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import torch

from automl_seg.data.models import PlanLimits
from automl_seg.data.synthetic import make_synthetic_msd


def _search(root: Path, name: str, tiny_train, tmp_path: Path):
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.predict import predict_reference
    from automl_seg.engine.settings import SearchRunSettings
    from automl_seg.plugins import load_plugins

    host = load_plugins()
    run = SearchRunSettings(strategy="fixed", device="cpu", workdir=tmp_path / "work", progress=False)
    with Registry.open(tmp_path / "registry") as registry:
        result = run_search(
            run,
            DataSettings(dataset=name, data_root=root),
            tiny_train(epochs=1, iterations=1),
            {},
            registry=registry,
            host=host,
        )
        source = sorted((root / name / "imagesTr").iterdir())[0]
        predictions, _ = predict_reference(
            registry, result.trained.record.ref, host, source, tmp_path / "out", device="cpu", progress=False
        )
    assert predictions[0].shape == nib.load(source).shape[:3]  # on the input's own grid
    return result, predictions[0]


def test_thick_slice_ct_runs_end_to_end(tiny_train, tmp_path: Path) -> None:
    options = {"spacing": (1.0, 1.0, 4.0), "shape": (28, 28, 8), "modalities": ("CT",), "num_classes": 2}
    make_synthetic_msd(tmp_path / "data", name="Task98_New", num_cases=4, **options)
    result, _ = _search(tmp_path / "data", "Task98_New", tiny_train, tmp_path)
    plan, args = result.trained.record.dataset.plan, result.architecture.space.args
    assert 0.0 <= result.trained.evaluation.dice_mean <= 1.0
    assert plan["spacing"] == [1.0, 1.0, 4.0]
    assert args["kernel_size"][0] == [3, 3, 1]  # no 3-voxel kernel across thick slices at full resolution
    assert plan["normalization"] == "ct" and plan["ct_clip"][1] < 3000.0  # outliers clipped


def test_several_channels_run_end_to_end(tiny_train, tmp_path: Path) -> None:
    make_synthetic_msd(tmp_path / "data", name="Task98_New", num_cases=4, shape=(16, 16, 16), modalities=("T1", "T2"))
    result, _ = _search(tmp_path / "data", "Task98_New", tiny_train, tmp_path)
    plan, args = result.trained.record.dataset.plan, result.architecture.space.args
    assert plan["in_channels"] == 2 and args["in_channels"] == 2 and plan["normalization"] == "zscore"
    assert 0.0 <= result.trained.evaluation.dice_mean <= 1.0


def test_low_resolution_plan_trains_scores_and_predicts_on_the_native_grid(tiny_train, tmp_path, monkeypatch):
    from automl_seg.data import plan as planner
    from automl_seg.engine import settings

    monkeypatch.setitem(settings.PLAN_LIMITS, "quick", PlanLimits(max_patch_voxels=16**3, max_patch_side=16))
    # coverage out of reach: the spacing coarsens up to MAX_COARSENING (2x here, so validation stays a few windows)
    monkeypatch.setattr(planner, "MIN_COVERAGE", 2.0)
    monkeypatch.setattr(planner, "MAX_COARSENING", 2.0)
    make_synthetic_msd(tmp_path / "data", name="Task97_Large", num_cases=3, shape=(36, 36, 36), num_classes=2, border=4)
    result, prediction = _search(tmp_path / "data", "Task97_Large", tiny_train, tmp_path)
    plan = result.trained.record.dataset.plan
    assert 1.5 < plan["spacing"][0] <= 2.0 and plan["native_spacing"] == [1.0, 1.0, 1.0] and plan["crop_nonzero"]
    assert plan["patch_size"] == [16, 16, 16] and "low resolution" in plan["rationale"]
    assert "mapped back onto the input grid (tri)linearly" in prediction.resampling


def test_validation_scores_low_resolution_plans_on_the_native_grid(tmp_path: Path) -> None:
    from automl_seg.config import DataSettings
    from automl_seg.data import prepare_data
    from automl_seg.engine.evaluate import evaluate_loader

    make_synthetic_msd(tmp_path / "data", name="Task97_Large", num_cases=3, shape=(60, 60, 60), num_classes=2)
    limits = PlanLimits(max_patch_voxels=16**3, max_patch_side=16)
    data = prepare_data(
        DataSettings(dataset="Task97_Large", data_root=tmp_path / "data"), progress=False, limits=limits
    )
    assert data.plan.resamples_coarser
    batch = next(iter(data.val_loader()))
    native = batch["native_label"]
    assert tuple(native.shape[2:]) == tuple(nib.load(data.info.cases[0].image).shape) or native.shape[2] > 40

    def oracle(x: torch.Tensor) -> torch.Tensor:  # z-scored image: the blob is brighter than the background
        middle = 1.5
        return torch.cat([middle - x, x - middle], 1)

    report = evaluate_loader(oracle, data.val_loader(), data.plan, torch.device("cpu"), 1)
    assert report.dice_mean > 0.8
