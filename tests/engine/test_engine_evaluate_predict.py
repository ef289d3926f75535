"""Evaluation (Dice/HD95 per class and case) and prediction (NIfTI out on the input's grid)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from automl_seg.engine.evaluate import evaluate_loader, evaluate_reference, score_case
from automl_seg.engine.inference import mirrored
from automl_seg.engine.predict import predict_files, predict_reference
from automl_seg.errors import DataError, UserError
from automl_seg.plugins import load_plugins

CPU = torch.device("cpu")


def test_score_case_perfect_and_empty_prediction() -> None:
    label = torch.zeros(1, 12, 12, 12, dtype=torch.long)
    label[0, 2:6, 2:6, 2:6] = 1
    label[0, 7:10, 7:10, 7:10] = 2
    perfect = score_case("c", label, label, ["a", "b"])
    assert perfect.dice == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    assert perfect.hd95 == {"a": pytest.approx(0.0), "b": pytest.approx(0.0)}
    empty = score_case("c", torch.zeros_like(label), label, ["a", "b"])
    assert empty.dice == {"a": 0.0, "b": 0.0}
    assert empty.hd95 == {"a": None, "b": None}


def test_evaluate_loader_rows_and_ranges(prepared) -> None:
    network = (
        load_plugins()
        .space("fixed")
        .build_network(load_plugins().space("fixed").default_args(prepared.plan, "quick"), {})
    )
    report = evaluate_loader(network.eval(), prepared.val_loader(), prepared.plan, CPU)
    assert [row.case for row in report.cases] == prepared.val_cases
    assert set(report.dice_per_class) == {"anterior", "posterior"}
    assert all(0.0 <= value <= 1.0 for value in report.dice_per_class.values())
    assert 0.0 <= report.dice_mean <= 1.0


def test_mirrored_window_is_the_mean_of_the_eight_flipped_predictions() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 2, 3, padding=1)  # an asymmetric kernel: flipping the input changes its output
    x = torch.randn(2, 1, 6, 7, 8)
    calls = []

    def window(t: torch.Tensor) -> torch.Tensor:
        calls.append(t.shape)
        return conv(t)

    flips = [(2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)]
    with torch.no_grad():
        got = mirrored(window)(x)
        expected = (conv(x) + sum(torch.flip(conv(torch.flip(x, dims)), dims) for dims in flips)) / 8
        assert len(calls) == 8 and set(calls) == {x.shape}
        assert torch.allclose(got, expected, atol=1e-6)
        assert not torch.allclose(got, conv(x), atol=1e-3)  # not the plain prediction
        assert torch.allclose(mirrored(lambda t: 3 * t)(x), 3 * x)  # a flip-equivariant window is unchanged


def test_mirrored_window_flips_only_the_plans_mirror_axes(caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 2, 3, padding=1)
    x = torch.randn(1, 1, 6, 7, 8)
    with torch.no_grad():
        one_axis = mirrored(conv, (1,))(x)
        assert torch.allclose(one_axis, (conv(x) + torch.flip(conv(torch.flip(x, (3,))), (3,))) / 2, atol=1e-6)
        assert torch.allclose(mirrored(conv, ())(x), conv(x))  # no axis: the plain prediction, with a warning
    assert "flips along no axis" in caplog.text


def test_tta_evaluates_and_predicts_through_the_mirrored_window(
    trained_registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automl_seg_registry import Registry

    from automl_seg.engine import evaluate, inference, predict

    wrapped = []

    def spy(window, mirror_axes):  # noqa: ANN001, ANN202
        wrapped.append(window)
        return inference.mirrored(window, mirror_axes)

    monkeypatch.setattr(evaluate, "mirrored", spy)
    monkeypatch.setattr(predict, "mirrored", spy)
    source = trained_registry.data_root / "Task99_Synthetic" / "imagesTr" / "synth_000.nii.gz"
    with Registry.open(trained_registry.root) as registry:
        run = dict(device="cpu", progress=False)
        report = evaluate_reference(
            registry, trained_registry.trained, load_plugins(), data_root=trained_registry.data_root, tta=True, **run
        )
        predictions, _ = predict_reference(
            registry, trained_registry.trained, load_plugins(), source, tmp_path / "out", tta=True, **run
        )
    assert len(wrapped) == 2 and all(isinstance(w, torch.nn.Module) for w in wrapped)
    assert len(report.cases) == 2 and all(0.0 <= v <= 1.0 for row in report.cases for v in row.dice.values())
    assert predictions[0].shape == nib.load(source).shape


def test_evaluate_reference_on_split_and_on_folders(trained_registry, tmp_path: Path) -> None:
    import shutil

    from automl_seg_registry import Registry

    task = trained_registry.data_root / "Task99_Synthetic"
    for folder in ("imagesTr", "labelsTr"):
        (tmp_path / folder).mkdir()
        for case in ("synth_000.nii.gz", "synth_001.nii.gz"):
            shutil.copy(task / folder / case, tmp_path / folder / case)
    with Registry.open(trained_registry.root) as registry:
        on_split = evaluate_reference(
            registry, trained_registry.trained, load_plugins(), device="cpu", data_root=trained_registry.data_root,
            progress=False,
        )  # fmt: skip
        on_files = evaluate_reference(
            registry, trained_registry.trained, load_plugins(), device="cpu", images=tmp_path / "imagesTr",
            labels=tmp_path / "labelsTr", progress=False,
        )  # fmt: skip
        stored = registry.get(trained_registry.trained)
    assert stored.dataset.split == {"val_fraction": 0.34, "split_seed": 3, "max_cases": None, "holdout_fraction": 0.0}
    assert [row.case for row in on_split.cases] == stored.provenance["val_cases"]  # the record's split: 2 cases
    assert len(on_split.cases) == 2 and [row.case for row in on_files.cases] == ["synth_000", "synth_001"]
    assert on_split.dice_per_class == pytest.approx(stored.metrics.dice_per_class)
    assert all(0.0 <= v <= 1.0 for row in on_files.cases for v in row.dice.values())


def test_predict_keeps_shape_affine_header_and_refuses_overwrite(trained_registry, tmp_path: Path) -> None:
    from automl_seg_registry import Registry

    images = trained_registry.data_root / "Task99_Synthetic" / "imagesTr"
    source = tmp_path / "in"
    source.mkdir()
    # an input with an oblique-ish, non-RAS affine and odd shape: preprocessing must be inverted exactly
    original = nib.load(images / "synth_000.nii.gz")
    affine = np.array([[0, -1.2, 0, 10.0], [1.1, 0, 0, -5.0], [0, 0, 0.9, 3.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(np.asanyarray(original.dataobj)[:, :-1], affine), source / "case_a.nii.gz")
    out = tmp_path / "out"
    with Registry.open(trained_registry.root) as registry:
        run = lambda **kw: predict_reference(  # noqa: E731
            registry, trained_registry.trained, load_plugins(), source, out, device="cpu", progress=False, **kw
        )
        predictions, providers = run()
        with pytest.raises(UserError, match="already exist.*--overwrite"):
            run()
        again, _ = run(overwrite=True)
    assert providers == [] and len(predictions) == len(again) == 1
    written = nib.load(out / "case_a.nii.gz")
    reference = nib.load(source / "case_a.nii.gz")
    assert written.shape == reference.shape
    assert np.allclose(written.affine, reference.affine)
    for field in ("pixdim", "qform_code", "sform_code", "xyzt_units", "dim"):
        assert np.array_equal(written.header[field], reference.header[field]), field
    assert set(np.unique(np.asanyarray(written.dataobj))) <= {0, 1, 2}


def test_predict_rejects_non_nifti_and_wrong_channels(trained_registry, prepared, tmp_path: Path) -> None:
    network = (
        load_plugins()
        .space("fixed")
        .build_network(load_plugins().space("fixed").default_args(prepared.plan, "quick"), {})
    )
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.raises(DataError, match="not a NIfTI"):
        predict_files(network, text, tmp_path / "o1", prepared.plan, CPU, progress=False)
    two_channels = tmp_path / "two.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 16, 2), np.float32), np.eye(4)), two_channels)
    with pytest.raises(DataError, match="2 channel"):
        predict_files(network, two_channels, tmp_path / "o2", prepared.plan, CPU, progress=False)


def test_a_record_with_an_invalid_plan_is_a_registry_error(trained_registry) -> None:
    from automl_seg_registry import Registry

    from automl_seg.engine.model import record_plan
    from automl_seg.errors import RegistryError

    with Registry.open(trained_registry.root) as registry:
        record = registry.get(trained_registry.trained)
    assert record_plan(record).patch_size == tuple(record.dataset.plan["patch_size"])
    edited = record.model_copy(update={"dataset": record.dataset.model_copy(update={"plan": {"patch_size": "big"}})})
    with pytest.raises(RegistryError, match=f"{record.ref}: its stored plan is not valid"):
        record_plan(edited)
