"""The MLflow observer against a real local MLflow store (SQLite in a temp folder), through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

mlflow = pytest.importorskip("mlflow")

pytestmark = pytest.mark.cli_in_process  # MLflow and torch imported once

DATASET = "Task99_Synthetic"
TINY_TRAIN = """
train:
  iterations: 1
  val_every: 1
"""
TINY_TUNE = f"""{TINY_TRAIN}
tune:
  params:
    patch_size: [16, 16, 16]
    batch_size: 1
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite tracking store for the module (creating its tables takes seconds). MLflow fixes its
    artifact root (./mlruns) when it first opens the store: open it from inside its folder."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        mlflow.MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from automl_seg.data.synthetic import make_synthetic_msd

    root = tmp_path_factory.mktemp("mlflow-data")
    make_synthetic_msd(root, shape=(16, 16, 16), num_cases=4)
    return root


@pytest.fixture
def tiny_search(tmp_path: Path, data_root: Path) -> list[object]:
    """``search`` arguments for a two-step run on the tiny data, into this test's registry."""
    config = tmp_path / "train.yaml"
    config.write_text(TINY_TRAIN)
    return [
        "search", "--strategy", "fixed", "--dataset", DATASET, "--data-root", data_root, "--registry",
        tmp_path / "registry", "--patch-size", "16x16x16", "--device", "cpu", "--no-progress",
        "--workdir", tmp_path / "work", "-c", config,
    ]  # fmt: skip


def runs_of(client: mlflow.MlflowClient, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    return client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])


def test_search_run_is_tracked_and_its_model_registered(cli, store, tiny_search, tmp_path, monkeypatch) -> None:
    from automl_seg_registry import Registry

    from automl_seg.engine.model import load_trained_model
    from automl_seg.plugins import load_plugins

    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "search-run")
    registry = tmp_path / "registry"
    proc = cli(*tiny_search, "--train-epochs", "2", "--mlflow", store, "--json")
    assert proc.returncode == 0, proc.stderr
    assert "MLflow" not in proc.stderr  # no warning
    trained_ref = json.loads(proc.stdout)["trained"]["ref"]
    client = mlflow.MlflowClient(store)
    (run,) = runs_of(client, "search-run")
    assert run.info.status == "FINISHED"
    assert run.data.tags["automl_seg.kind"] == "search" and run.data.tags["automl_seg.trained"] == trained_ref
    assert run.data.params["run.strategy"] == "fixed" and run.data.params["train.epochs"] == "2"
    assert run.data.params["data.dataset"] == DATASET and "data.data_root" not in run.data.params
    # every training epoch's metrics, with the epoch as step
    losses = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in losses] == [0, 1] or [m.step for m in losses] == [1, 2]
    with Registry.open(registry) as reg:
        record = reg.get(trained_ref)
    assert run.data.metrics["dice_mean"] == pytest.approx(record.metrics.dice_mean)
    assert run.data.metrics["peak_memory_mb"] == pytest.approx(record.metrics.peak_memory_mb)
    assert any(key.startswith("hd95") for key in run.data.metrics)
    folder = f"{record.name}/v{record.version}"
    logged = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, folder)}
    assert {"train_curves.png", "train_history.json", "evaluation.json", "record.json", "model"} <= logged
    assert "weights.pt" not in logged  # the weights travel inside the model
    # the Model Registry: a version tagged with the ref, the alias mirrored, loadable as a pyfunc
    version = client.get_model_version_by_alias(record.name, "best")
    assert version.tags["automl_seg.ref"] == trained_ref and version.run_id == run.info.run_id
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    model = mlflow.pyfunc.load_model(f"models:/{record.name}@best")
    x = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    with Registry.open(registry) as reg:
        network, _ = load_trained_model(reg, trained_ref, load_plugins())
    with torch.no_grad():
        expected = network(x).argmax(1).numpy()
    np.testing.assert_array_equal(model.predict(x.numpy()), expected)


def test_tune_trials_nest_under_the_study_run(cli, store, data_root, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "tune-run")
    config = tmp_path / "tune.yaml"
    config.write_text(TINY_TUNE)
    proc = cli(
        "tune", "--strategy", "fixed", "--dataset", DATASET, "--data-root", data_root, "--registry",
        tmp_path / "registry", "--trials", "2", "--train-epochs", "1", "--device", "cpu", "--study", "tiny",
        "--sampler", "random", "-c", config, "--mlflow", store, "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    best = json.loads(proc.stdout)["best_ref"]
    client = mlflow.MlflowClient(store)
    study, *trials = runs_of(client, "tune-run")
    assert study.data.tags["automl_seg.kind"] == "tune" and study.info.status == "FINISHED"
    assert study.data.tags["automl_seg.best"] == best and study.data.params["tune.trials"] == "2"
    assert len(trials) == 2
    for trial in trials:
        assert trial.data.tags["mlflow.parentRunId"] == study.info.run_id
        assert trial.info.status == "FINISHED" and "dice_mean" in trial.data.metrics
        assert trial.data.params["record.provenance.study"] == "tiny"
    refs = {v.tags["automl_seg.ref"] for v in client.search_model_versions("name = 'tiny'")}
    assert best in refs and len(refs) == 2


def test_unreachable_server_warns_once_and_loses_nothing(cli, tiny_search, tmp_path) -> None:
    from automl_seg_registry import Registry

    registry = tmp_path / "registry"
    proc = cli(*tiny_search, "--train-epochs", "1", "--mlflow", "http://127.0.0.1:9")
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert output.count("MLflow tracking at http://127.0.0.1:9 failed") == 1, output
    assert "Traceback" not in output and "no answer from 127.0.0.1:9" in output
    with Registry.open(registry) as reg:
        assert [r.version for r in reg.list()] == [1, 2]
