"""The engine commands through the real CLI: the fixed pipeline end to end, and every bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

pytestmark = pytest.mark.cli_in_process  # many CLI calls: no Python start for each

# one file for search and train: the strategy comes from it (no --strategy flag), train skips that key
TINY_CONFIG = (
    "search:\n  strategy: fixed\ntrain:\n  iterations: 2\n  val_every: 10\n  val_cases: 1\ndata:\n  split_seed: 0\n"
)


def _one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr.replace("\n", " "), result.stderr


def test_search_fixed_pipeline_then_train_evaluate_predict(cli, tiny_data_root: Path, tmp_path: Path) -> None:
    from automl_seg_registry import Registry

    config = tmp_path / "run.yaml"
    config.write_text(TINY_CONFIG)
    registry = tmp_path / "registry"
    common = ["--registry", registry, "--device", "cpu", "--no-progress"]
    searched = cli(
        "search", "--dataset", "Task99_Synthetic", "--data-root", tiny_data_root,
        "--config", config, "--train-epochs", "1", "--patch-size", "16x16x16", "--workdir", tmp_path / "work",
        "--json", *common,
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    summary = json.loads(searched.stdout)
    assert summary["architecture"] == "fixed-Task99_Synthetic:1"
    assert summary["trained"]["ref"] == "fixed-Task99_Synthetic:2"
    assert summary["trained"]["parent"] == "fixed-Task99_Synthetic:1"
    retrained = cli(
        "train", "fixed-Task99_Synthetic:1", "--epochs", "1", "--data-root", tiny_data_root, "--config", config,
        "--workdir", tmp_path / "work2", "--json", *common,
    )  # fmt: skip
    assert retrained.returncode == 0, retrained.stderr
    assert json.loads(retrained.stdout)["parent"] == "fixed-Task99_Synthetic:1"
    with Registry.open(registry) as reg:
        trained = reg.get("fixed-Task99_Synthetic:2")
        best = reg.resolve("fixed-Task99_Synthetic@best")
        assert reg.get("fixed-Task99_Synthetic:1").artifacts == []
    assert best in {"fixed-Task99_Synthetic:2", "fixed-Task99_Synthetic:3"}
    assert {a.name for a in trained.artifacts} >= {"weights", "train_history", "train_curves", "evaluation"}
    assert set(trained.metrics.dice_per_class) == {"anterior", "posterior"}
    assert trained.metrics.params and trained.metrics.train_time_s and trained.metrics.peak_memory_mb

    evaluated = cli("evaluate", "fixed-Task99_Synthetic:2", "--data-root", tiny_data_root, "--json", *common)
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["dice_per_class"] == pytest.approx(trained.metrics.dice_per_class)
    images = tiny_data_root / "Task99_Synthetic" / "imagesTr"
    out = tmp_path / "pred"
    predicted = cli("predict", "fixed-Task99_Synthetic@best", "--input", images / "synth_000.nii.gz", "--output", out,
                    *common)  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    assert nib.load(out / "synth_000.nii.gz").shape == nib.load(images / "synth_000.nii.gz").shape
    mirrored = cli("predict", "fixed-Task99_Synthetic:2", "--input", images / "synth_000.nii.gz", "--output",
                   tmp_path / "pred-tta", "--tta", "--json", *common)  # fmt: skip
    assert mirrored.returncode == 0, mirrored.stderr
    assert json.loads(mirrored.stdout)["tta"] is True
    assert nib.load(tmp_path / "pred-tta" / "synth_000.nii.gz").shape == nib.load(images / "synth_000.nii.gz").shape


def _weights_file(registry_root: Path, ref: str) -> Path:
    from automl_seg_registry import Registry

    with Registry.open(registry_root) as reg:
        return reg.artifact_path(ref, "weights", verify=False)


def test_unknown_strategy_lists_installed_ones(cli, tiny_data_root: Path) -> None:
    result = cli("search", "--strategy", "nope", "--dataset", "Task99_Synthetic", "--data-root", tiny_data_root)
    _one_line_error(result, "unknown strategy 'nope'", "fixed")


def test_strategy_setting_it_does_not_have(cli, tiny_data_root: Path) -> None:
    result = cli("search", "--strategy", "fixed", "--set", "epochs=3", "--dataset", "Task99_Synthetic",
                 "--data-root", tiny_data_root)  # fmt: skip
    _one_line_error(result, "strategy 'fixed' has no setting epochs; its settings: deep_supervision")
    result = cli("search", "--strategy", "dints", "--set", "warmup=1", "--dataset", "Task99_Synthetic",
                 "--data-root", tiny_data_root)  # fmt: skip
    _one_line_error(result, "strategy 'dints' has no setting warmup; its settings: epochs, warmup_epochs,")


def test_search_names_no_strategy_of_its_own(cli, tiny_data_root: Path) -> None:
    result = cli("search", "--dataset", "Task99_Synthetic", "--data-root", tiny_data_root)
    _one_line_error(result, "no search strategy given: pass --strategy NAME (installed: dints, fixed)")
    usage = cli("search", "--help", env={"COLUMNS": "200"})
    assert "--set" in usage.stdout
    assert "--warmup-epochs" not in usage.stdout and "--memory-budget" not in usage.stdout


def test_plugins_show_lists_a_strategys_settings(cli) -> None:
    shown = cli("plugins", "show", "dints", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {row["key"]: row for row in json.loads(shown.stdout)["settings"]}
    assert rows["warmup_epochs"]["defaults"]["quick"] == 2 and "weight-only" in rows["warmup_epochs"]["help"]
    assert rows["memory_budget"]["defaults"]["full"] == 0.8


def test_train_config_keys_it_cannot_use(cli, trained_registry, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    base = ["train", trained_registry.architecture, "--registry", trained_registry.root, "--config", config]
    config.write_text("data:\n  bogus: 1\n")
    _one_line_error(cli(*base), "bogus")
    config.write_text("data:\n  dataset: Task02_Heart\n")
    _one_line_error(cli(*base), "train takes dataset from the registered record")
    config.write_text("train:\n  epochs: 1\n")
    _one_line_error(cli(*base, "--max-cases", "0"), "max_cases")


def test_bad_seed_workers_and_undecodable_config(cli, tiny_data_root: Path, tmp_path: Path) -> None:
    base = ["search", "--strategy", "fixed", "--dataset", "Task99_Synthetic", "--data-root", tiny_data_root]
    _one_line_error(cli(*base, "--seed", "-5"), "seed: Input should be greater than or equal to 0")
    _one_line_error(cli(*base, "--workers", "-1"), "workers: Input should be greater than or equal to 0")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(bytes(range(128, 256)))
    _one_line_error(cli(*base, "-c", binary), "cannot be parsed", "utf-8")
    _one_line_error(cli(*base, "-c", tmp_path), "is a folder")


def test_evaluate_labels_the_model_does_not_know(cli, trained_registry, tmp_path: Path) -> None:
    task = trained_registry.data_root / "Task99_Synthetic"
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    shutil.copy(task / "imagesTr" / "synth_000.nii.gz", images)
    source = nib.load(task / "labelsTr" / "synth_000.nii.gz")
    nib.save(nib.Nifti1Image(np.full(source.shape, 7, np.uint8), source.affine), labels / "synth_000.nii.gz")
    result = cli("evaluate", trained_registry.trained, "--registry", trained_registry.root, "--device", "cpu",
                 "--images", images, "--labels", labels)  # fmt: skip
    _one_line_error(result, "holds value(s) 7 but the model knows labels 0..2")


def test_unknown_ref(cli, trained_registry) -> None:
    _one_line_error(cli("evaluate", "nothing-here:1", "--registry", trained_registry.root), "nothing-here")


def test_architecture_without_weights(cli, trained_registry, tmp_path: Path) -> None:
    images = trained_registry.data_root / "Task99_Synthetic" / "imagesTr"
    result = cli("predict", trained_registry.architecture, "--registry", trained_registry.root,
                 "--input", images, "--output", tmp_path / "o")  # fmt: skip
    _one_line_error(result, "no trained weights", "automl-seg train")  # fmt: skip


def test_missing_and_corrupt_weights(cli, trained_registry, broken_registry: Path) -> None:
    weights = _weights_file(broken_registry, trained_registry.trained)
    weights.write_bytes(weights.read_bytes()[:100])
    corrupt = cli("evaluate", trained_registry.trained, "--registry", broken_registry, "--device", "cpu")
    _one_line_error(corrupt, "corrupt")
    weights.unlink()
    missing = cli("evaluate", trained_registry.trained, "--registry", broken_registry, "--device", "cpu")
    _one_line_error(missing, "missing")


def test_predict_bad_inputs(cli, trained_registry, tmp_path: Path) -> None:
    base = ["predict", trained_registry.trained, "--registry", trained_registry.root, "--device", "cpu"]
    text = tmp_path / "scan.txt"
    text.write_text("hello")
    _one_line_error(cli(*base, "--input", text, "--output", tmp_path / "o1"), "not a NIfTI")
    two = tmp_path / "two.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 16, 2), np.float32), np.eye(4)), two)
    _one_line_error(cli(*base, "--input", two, "--output", tmp_path / "o2"), "2 channel(s)", "expects 1")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    image = trained_registry.data_root / "Task99_Synthetic" / "imagesTr" / "synth_000.nii.gz"
    _one_line_error(cli(*base, "--input", image, "--output", blocker / "sub"), "not writable")
    _one_line_error(cli(*base, "--input", image, "--output", image.parent, "--overwrite"), "holds the input images")
    _one_line_error(cli(*base, "--input", image, "--output", tmp_path / "o4", "--providers", "CPUExecutionProvider"),
                    "add --backend onnxruntime")  # fmt: skip
    _one_line_error(cli(*base, "--input", image, "--output", tmp_path / "o3", "--backend", "onnxruntime"),
                    "automl-seg export")  # fmt: skip


def test_workdir_that_cannot_be_a_folder(cli, trained_registry, tmp_path: Path) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    searched = cli("search", "--strategy", "fixed", "--dataset", "Task99_Synthetic", "--data-root",
                   trained_registry.data_root, "--registry", tmp_path / "reg", "--workdir", a_file)  # fmt: skip
    _one_line_error(searched, f"--workdir {a_file} cannot be a folder", "pass a folder you can write to")
    trained = cli("train", trained_registry.architecture, "--registry", trained_registry.root,
                  "--workdir", a_file / "below", "--data-root", trained_registry.data_root)  # fmt: skip
    _one_line_error(trained, "cannot be a folder")


def test_resume_without_checkpoint_and_cuda_without_cuda(cli, trained_registry, tmp_path: Path) -> None:
    resumed = cli("train", trained_registry.architecture, "--registry", trained_registry.root, "--resume",
                  "--workdir", tmp_path / "empty", "--data-root", trained_registry.data_root)  # fmt: skip
    _one_line_error(resumed, "no checkpoint")
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    cuda = cli("evaluate", trained_registry.trained, "--registry", trained_registry.root, "--device", "cuda")
    _one_line_error(cuda, "CUDA is not available")
