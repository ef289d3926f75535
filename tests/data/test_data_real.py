"""Integration on the real Hippocampus data (skipped where it is absent)."""

from __future__ import annotations

import json

import nibabel as nib
import pytest

from automl_seg.config import DataSettings
from automl_seg.data import prepare_data

pytestmark = pytest.mark.integration


def test_data_check_reports_208_cases(cli, real_data_root):
    result = cli("data", "check", "Task04_Hippocampus", "--data-root", real_data_root, "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["num_cases"] == 208
    split = report["fingerprint"]["split"]
    assert len(split["train"]) == 166 and len(split["val"]) == 42
    assert report["fingerprint"]["labels"] == {"0": "background", "1": "Anterior", "2": "Posterior"}
    assert report["plan"]["patch_size"] == [48, 64, 48] and report["plan"]["spacing"] == [1.0, 1.0, 1.0]
    # the anterior part lies before the posterior part along every axis: no flips (bench_quality's ablation)
    assert report["plan"]["mirror_axes"] == []
    centroids = report["fingerprint"]["cases"][0]["class_centroids"]
    assert set(centroids) == {"1", "2"}


def test_real_cases_give_full_patches(real_data_root):
    data = prepare_data(DataSettings(data_root=real_data_root, max_cases=4, patch_size=(32, 32, 32)), progress=False)
    batch = next(iter(data.train_loader(batch_size=2)))
    assert batch["image"].shape == (4, 1, 32, 32, 32) and batch["label"].shape == (4, 1, 32, 32, 32)
    volume = data.val_dataset()[0]
    assert volume["image"].shape[1:] == volume["label"].shape[1:]
    raw = nib.load(next(c.image for c in data.info.cases if c.id == volume["case"])).shape
    assert tuple(volume["image"].shape[1:]) == raw  # 1 mm RAS already: not resampled, not padded
