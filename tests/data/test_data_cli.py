"""``automl-seg data check`` through the real CLI: output, JSON, and one clear line for bad input."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

pytestmark = pytest.mark.cli_in_process  # many CLI calls: no Python start for each


def _fails_cleanly(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr.replace("\n", ""), result.stderr


def test_check_prints_fingerprint_and_plan_tables(cli, synthetic_root):
    result = cli("data", "check", "Task99_Synthetic", "--data-root", synthetic_root)
    assert result.returncode == 0, result.stderr
    for text in ("Task99_Synthetic fingerprint", "cases", "content hash", "plan", "patch_size", "32 x 32 x 32"):
        assert text in result.stdout


def test_check_json(cli, synthetic_root):
    result = cli("data", "check", "Task99_Synthetic", "--data-root", synthetic_root, "--json", "--val-fraction", "0.5")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["num_cases"] == 6
    assert len(report["fingerprint"]["split"]["val"]) == 3
    assert report["plan"]["patch_size"] == [32, 32, 32] and report["plan"]["normalization"] == "zscore"


def test_unknown_dataset(cli, synthetic_root):
    _fails_cleanly(cli("data", "check", "NoSuchTask", "--data-root", synthetic_root), "unknown dataset 'NoSuchTask'")


def test_missing_data_root(cli, tmp_path):
    _fails_cleanly(cli("data", "check", "Task04_Hippocampus", "--data-root", tmp_path / "nope"), "does not exist")


def test_dataset_json_without_training(cli, synthetic_root):
    path = synthetic_root / "Task99_Synthetic" / "dataset.json"
    meta = json.loads(path.read_text())
    del meta["training"]
    path.write_text(json.dumps(meta))
    _fails_cleanly(cli("data", "check", "Task99_Synthetic", "--data-root", synthetic_root), "lacks the 'training'")


def test_truncated_image(cli, synthetic_root):
    path = synthetic_root / "Task99_Synthetic" / "imagesTr" / "synth_001.nii.gz"
    path.write_bytes(path.read_bytes()[:500])
    _fails_cleanly(cli("data", "check", "Task99_Synthetic", "--data-root", synthetic_root), "synth_001.nii.gz")


@pytest.mark.parametrize("problem", ["shape", "value"])
def test_bad_label(cli, synthetic_root, problem):
    path = synthetic_root / "Task99_Synthetic" / "labelsTr" / "synth_004.nii.gz"
    old = nib.load(path)
    label = np.zeros((5, 5, 5), np.uint8) if problem == "shape" else np.asanyarray(old.dataobj).copy()
    label[1, 1, 1] = 7 if problem == "value" else 0
    nib.save(nib.Nifti1Image(label, old.affine), path)
    expected = "label value(s) [7]" if problem == "value" else "has shape 5x5x5"
    _fails_cleanly(cli("data", "check", "Task99_Synthetic", "--data-root", synthetic_root), expected, "synth_004")


def test_invalid_val_fraction(cli, synthetic_root):
    result = cli("data", "check", "Task99_Synthetic", "--data-root", synthetic_root, "--val-fraction", "1.5")
    _fails_cleanly(result, "val_fraction")


def test_check_with_a_budget_shows_why_and_names_cases_it_warns_about(cli, tmp_path):
    from automl_seg.data.synthetic import make_synthetic_msd

    task = make_synthetic_msd(tmp_path / "data", name="Task96_Odd", num_cases=4, shape=(40, 40, 40), num_classes=3)
    odd = task / "imagesTr" / "synth_003.nii.gz"
    for path in (odd, task / "labelsTr" / odd.name):  # one case with 12 mm slices
        image = nib.load(path)
        nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), np.diag([1.0, 1.0, 12.0, 1.0])), path)
    result = cli("data", "check", "Task96_Odd", "--data-root", tmp_path / "data", "--budget", "quick", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["budget"] == "quick" and "spans" in report["plan"]["rationale"]
    assert any("synth_003" in w and "varies more than 10x" in w for w in report["warnings"])
    table = cli("data", "check", "Task96_Odd", "--data-root", tmp_path / "data", "--budget", "quick")
    assert "plan for the quick budget" in table.stdout and "warning" in table.stdout and "rationale" in table.stdout
    _fails_cleanly(cli("data", "check", "Task96_Odd", "--data-root", tmp_path / "data", "--budget", "huge"), "huge")
