"""Every kind of bad dataset ends in one DataError naming the problem (and the file), before training."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from automl_seg.data import load_dataset_info, prepare_data
from automl_seg.data.plan import check_patch_size
from automl_seg.errors import ConfigError, DataError

CASE = "synth_002"


def _rewrite_json(task: Path, **changes) -> None:
    meta = json.loads((task / "dataset.json").read_text())
    meta.update(changes)
    for key, value in changes.items():
        if value is None:
            del meta[key]
    (task / "dataset.json").write_text(json.dumps(meta))


def _replace_label(task: Path, label: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path = task / "labelsTr" / f"{CASE}.nii.gz"
    old = nib.load(path)
    nib.save(nib.Nifti1Image(label.astype(np.uint8), old.affine if affine is None else affine), path)
    return path


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_unknown_dataset_lists_msd_tasks_and_root_contents(synthetic_root, settings):
    with pytest.raises(DataError) as exc:
        prepare_data(settings(dataset="Task42_Nothing"), progress=False)
    message = _one_line(exc)
    assert "unknown dataset 'Task42_Nothing'" in message
    assert "Task04_Hippocampus" in message and "Task99_Synthetic" in message


def test_missing_data_root(tmp_path):
    with pytest.raises(DataError) as exc:
        load_dataset_info("Task04_Hippocampus", tmp_path / "nowhere")
    assert "does not exist" in _one_line(exc) and "nowhere" in str(exc.value)


def test_missing_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOML_SEG_DATA", str(tmp_path / "absent"))
    with pytest.raises(DataError, match=r"AUTOML_SEG_DATA\) does not exist"):
        load_dataset_info("Task04_Hippocampus", None)


def test_known_msd_task_missing_without_download(synthetic_root):
    with pytest.raises(DataError, match="data check Task09_Spleen"):
        load_dataset_info("Task09_Spleen", synthetic_root)


def test_dataset_json_not_json(task, synthetic_root):
    (task / "dataset.json").write_text("{not json")
    with pytest.raises(DataError) as exc:
        load_dataset_info(task.name, synthetic_root)
    assert "dataset.json is not valid JSON (line 1" in _one_line(exc)


def test_dataset_json_missing(task, synthetic_root):
    (task / "dataset.json").unlink()
    with pytest.raises(DataError, match="dataset.json is missing"):
        load_dataset_info(task.name, synthetic_root)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"training": None}, "lacks the 'training' list"),
        ({"training": []}, "'training' must be a non-empty list"),
        ({"training": [{"image": "./imagesTr/synth_000.nii.gz"}]}, "training entry 0 must be"),
        ({"labels": None}, "lacks a non-empty 'labels'"),
        ({"labels": {"0": "background", "x": "bad"}}, "every key of 'labels' must be an integer"),
        ({"modality": {"1": "MRI"}}, "the keys of 'modality' must number its entries from 0 without gaps (0..0)"),
        ({"labels": ["background", "a"]}, "'labels' must be an object from index to name"),
        ({"labels": {"1": "a", "2": "b"}}, "label 0 is the background"),
    ],
)
def test_dataset_json_content(task, synthetic_root, changes, expected):
    _rewrite_json(task, **changes)
    with pytest.raises(DataError) as exc:
        load_dataset_info(task.name, synthetic_root)
    assert expected in _one_line(exc)


def test_missing_image_names_the_file(task, synthetic_root):
    (task / "imagesTr" / f"{CASE}.nii.gz").unlink()
    with pytest.raises(DataError) as exc:
        load_dataset_info(task.name, synthetic_root)
    assert f"imagesTr/{CASE}.nii.gz" in _one_line(exc) and "is missing" in str(exc.value)


def test_truncated_nifti_names_the_file(task, settings):
    path = task / "imagesTr" / f"{CASE}.nii.gz"
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(DataError) as exc:
        prepare_data(settings(), progress=False)
    assert str(path) in _one_line(exc) and "corrupt or truncated" in str(exc.value)


def test_not_a_nifti_file(task, settings):
    path = task / "labelsTr" / f"{CASE}.nii.gz"
    path.write_text("hello")
    with pytest.raises(DataError, match="cannot be read as NIfTI"):
        prepare_data(settings(), progress=False)


def test_label_shape_differs_from_image(task, settings):
    image_shape = nib.load(task / "imagesTr" / f"{CASE}.nii.gz").shape
    path = _replace_label(task, np.zeros(tuple(s + 1 for s in image_shape)))
    with pytest.raises(DataError) as exc:
        prepare_data(settings(), progress=False)
    assert str(path) in _one_line(exc) and "image and label must cover the same voxels" in str(exc.value)


def test_label_affine_differs_from_image(task, settings):
    label = np.asanyarray(nib.load(task / "labelsTr" / f"{CASE}.nii.gz").dataobj)
    _replace_label(task, label, affine=np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(DataError, match=f"{CASE}.nii.gz and its image .* different affines"):
        prepare_data(settings(), progress=False)


def test_label_value_not_declared(task, settings):
    label = np.asanyarray(nib.load(task / "labelsTr" / f"{CASE}.nii.gz").dataobj).copy()
    label[0, 0, 0] = 7
    path = _replace_label(task, label)
    with pytest.raises(DataError) as exc:
        prepare_data(settings(), progress=False)
    assert str(path) in _one_line(exc) and "label value(s) [7]" in str(exc.value)


def test_image_with_nan_voxels(task, settings):
    path = task / "imagesTr" / f"{CASE}.nii.gz"
    image = nib.load(path)
    voxels = np.asanyarray(image.dataobj).astype(np.float32)
    voxels[:2] = np.nan
    nib.save(nib.Nifti1Image(voxels, image.affine), path)
    with pytest.raises(DataError) as exc:
        prepare_data(settings(), progress=False)
    assert str(path) in _one_line(exc) and "NaN or infinite voxel(s)" in str(exc.value)


def test_image_with_wrong_channel_count(task, settings):
    _rewrite_json(task, modality={"0": "T2", "1": "ADC"})
    with pytest.raises(DataError, match="declares 2 channel"):
        prepare_data(settings(), progress=False)


def test_dataset_without_foreground(tmp_path):
    from automl_seg.config import DataSettings
    from automl_seg.data.synthetic import make_synthetic_msd

    task = make_synthetic_msd(tmp_path / "data", num_cases=2, shape=(16, 16, 16))
    for label in (task / "labelsTr").iterdir():
        old = nib.load(label)
        nib.save(nib.Nifti1Image(np.zeros(old.shape, np.uint8), old.affine), label)
    with pytest.raises(DataError, match="has any foreground"):
        prepare_data(DataSettings(dataset=task.name, data_root=tmp_path / "data"), progress=False)


@pytest.mark.parametrize("patch", [(48, 64, 40), (33, 32, 32)])
def test_patch_size_not_multiple_of_divisor(settings, patch):
    with pytest.raises(ConfigError, match="positive multiple of 16"):
        prepare_data(settings(patch_size=patch), progress=False)


def test_patch_size_check_rejects_non_positive_sides():
    with pytest.raises(ConfigError, match="0x32x32 is invalid"):
        check_patch_size((0, 32, 32))


def test_too_few_cases_to_split(task, settings):
    meta = json.loads((task / "dataset.json").read_text())
    _rewrite_json(task, training=meta["training"][:1])
    with pytest.raises(DataError, match="needs at least 2 cases"):
        prepare_data(settings(), progress=False)


def test_data_root_is_never_written(task, settings):
    before = sorted((p.relative_to(task), p.stat().st_mtime_ns) for p in task.rglob("*"))
    prepare_data(settings(), progress=False).val_dataset()[0]
    after = sorted((p.relative_to(task), p.stat().st_mtime_ns) for p in task.rglob("*"))
    assert after == before
