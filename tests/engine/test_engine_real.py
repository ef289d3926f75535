"""One short integration run on the real Hippocampus data: search (fixed) -> train -> evaluate -> predict."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import pytest


@pytest.mark.integration
def test_fixed_pipeline_on_real_hippocampus(cli, real_data_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("train:\n  iterations: 3\n  val_every: 10\n")
    registry = tmp_path / "registry"
    searched = cli(
        "search", "--strategy", "fixed", "--dataset", "Task04_Hippocampus", "--data-root", real_data_root,
        "--max-cases", "6", "--patch-size", "32x32x32", "--train-epochs", "1", "--config", config,
        "--registry", registry, "--workdir", tmp_path / "work", "--device", "cpu", "--no-progress", "--json",
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    trained = json.loads(searched.stdout)["trained"]
    assert set(trained["metrics"]["dice_per_class"]) == {"Anterior", "Posterior"}
    assert all(0.0 <= v <= 1.0 for v in trained["metrics"]["dice_per_class"].values())
    image = real_data_root / "Task04_Hippocampus" / "imagesTr" / "hippocampus_001.nii.gz"
    predicted = cli("predict", trained["ref"], "--input", image, "--output", tmp_path / "pred", "--registry", registry,
                    "--device", "cpu", "--no-progress")  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    written, source = nib.load(tmp_path / "pred" / image.name), nib.load(image)
    assert written.shape == source.shape and (written.affine == source.affine).all()


@pytest.mark.integration
@pytest.mark.cli_in_process
def test_cross_validated_standard_budget_on_real_hippocampus(cli, real_data_root: Path, tmp_path: Path) -> None:
    """search --folds 2 at the standard budget's recipe (augmentation, warm-up) on 8 real cases, 2 held out:
    one record of both folds, its held-out Dice, and predict with the fold ensemble and its postprocessing."""
    config = tmp_path / "tiny.yaml"
    config.write_text("train:\n  iterations: 2\n  val_every: 10\n  warmup_steps: 1\ndata:\n  holdout_fraction: 0.25\n")
    registry = tmp_path / "registry"
    common = ["--registry", registry, "--device", "cpu", "--no-progress"]
    searched = cli(
        "search", "--strategy", "fixed", "--dataset", "Task04_Hippocampus", "--data-root", real_data_root,
        "--budget", "standard", "--max-cases", "8", "--patch-size", "32x32x32", "--train-epochs", "1",
        "--config", config, "--folds", "2", "--workdir", tmp_path / "work", "--json", *common,
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    cv = json.loads(searched.stdout)["cross_validation"]
    assert cv["folds_done"] == [0, 1] and set(cv["metrics"]["dice_per_class"]) == {"Anterior", "Posterior"}
    assert {"dice_sd_Anterior", "dice_sd_Posterior"} <= set(cv["metrics"]["extra"])
    held_out = cli("evaluate", cv["ref"], "--data-root", real_data_root, "--split", "test", "--json", *common)
    assert held_out.returncode == 0, held_out.stderr
    assert len(json.loads(held_out.stdout)["cases"]) == 2
    image = real_data_root / "Task04_Hippocampus" / "imagesTr" / "hippocampus_001.nii.gz"
    predicted = cli("predict", cv["ref"], "--input", image, "--output", tmp_path / "pred", *common)
    assert predicted.returncode == 0, predicted.stderr
    assert nib.load(tmp_path / "pred" / image.name).shape == nib.load(image).shape
