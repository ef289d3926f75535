"""Cross-validation: seeded fold splits, one record of fold weights, per-fold resume, bad fold requests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from automl_seg.engine.folds import FOLDS_KEY, check_folds, fold_artifact, fold_splits
from automl_seg.engine.settings import RunSettings
from automl_seg.errors import ConfigError


class Killed(Exception):
    """Stands in for a process killed between two epochs."""


def test_fold_splits_partition_the_cases_deterministically() -> None:
    cases = [f"case_{i:02d}" for i in range(11)]
    splits = fold_splits(cases, 5, seed=0)
    assert splits == fold_splits(list(reversed(cases)), 5, seed=0)  # order of the ids does not matter
    assert splits != fold_splits(cases, 5, seed=1)
    vals = [val for _, val in splits]
    assert sorted(c for val in vals for c in val) == cases  # every case validated exactly once
    assert sorted(len(v) for v in vals) == [2, 2, 2, 2, 3]
    for train, val in splits:
        assert not set(train) & set(val) and sorted(train + val) == cases


@pytest.mark.parametrize(
    ("folds", "fold", "message"),
    [
        (1, None, "--folds 1: cross-validation needs at least 2 folds"),
        (6, None, "--folds 6 is more than the 5 cases to split"),
        (5, 7, "--fold 7 does not exist with --folds 5; folds are numbered 0 to 4"),
    ],
)
def test_bad_fold_requests_are_one_line(folds: int, fold: int | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_folds(folds, fold, 5)


def test_fold_without_folds_is_refused() -> None:
    with pytest.raises(ConfigError, match="--fold 1 needs --folds N"):
        RunSettings(fold=1)


def _run(workdir: Path, **changes: object) -> RunSettings:
    return RunSettings(device="cpu", workdir=workdir, progress=False, **changes)


def _data(trained) -> dict[str, object]:
    return {"data_root": trained.data_root}


def test_folds_register_one_record_once_all_are_done(trained_registry, tiny_train, tmp_path: Path) -> None:
    from automl_seg_registry import Registry

    from automl_seg.engine.pipeline import retrain
    from automl_seg.plugins import load_plugins

    train = tiny_train(epochs=1, iterations=1)
    host = load_plugins()
    with Registry.open(trained_registry.root) as registry:
        before = len(registry.list())
        first = retrain(trained_registry.architecture, _run(tmp_path / "w", folds=2, fold=1), train,
                        registry=registry, host=host, data_options=_data(trained_registry))  # fmt: skip
        assert first.record is None and first.pending == [0] and [f.fold for f in first.folds] == [1]
        assert len(registry.list()) == before  # nothing registered until every fold is done
        done = retrain(trained_registry.architecture, _run(tmp_path / "w", folds=2), train,
                       registry=registry, host=host, data_options=_data(trained_registry))  # fmt: skip
        record = done.record
        assert record is not None and len(registry.list()) == before + 1
        names = {a.name for a in record.artifacts}
        assert {fold_artifact(0), fold_artifact(1), "cross_validation"} <= names and "weights" not in names
        assert record.parent == trained_registry.architecture
        assert record.dataset.split["folds"] == 2
        folds = record.provenance[FOLDS_KEY]
        assert folds["count"] == 2 and len({c for v in folds["val_cases"] for c in v}) == 5
        assert set(record.provenance["postprocessing"]["dice_gain"]) == {"anterior", "posterior"}
        extra = record.metrics.extra
        assert extra["folds"] == 2 and {"dice_sd_anterior", "dice_sd_posterior"} <= set(extra)
        means = [f.evaluation.dice_per_class["anterior"] for f in done.folds]
        assert record.metrics.dice_per_class["anterior"] == pytest.approx(sum(means) / 2)


def test_an_interrupted_fold_resumes_to_the_same_weights(trained_registry, tiny_train, tmp_path, monkeypatch) -> None:
    from automl_seg_registry import Registry

    import automl_seg.engine.folds as folds_module
    from automl_seg.engine.pipeline import retrain
    from automl_seg.plugins import load_plugins

    train = tiny_train(epochs=2, iterations=1)
    host = load_plugins()
    real = folds_module.train_network

    def killed_after_first_epoch(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        def stop(epoch: int, metrics: object) -> None:
            if epoch == 1:
                raise Killed

        return real(*args, **kwargs, epoch_ended=stop)

    with Registry.open(trained_registry.root) as registry:
        whole = retrain(trained_registry.architecture, _run(tmp_path / "a", folds=2, fold=0), train,
                        registry=registry, host=host, data_options=_data(trained_registry))  # fmt: skip
        monkeypatch.setattr(folds_module, "train_network", killed_after_first_epoch)
        with pytest.raises(Killed):
            retrain(trained_registry.architecture, _run(tmp_path / "b", folds=2, fold=0), train,
                    registry=registry, host=host, data_options=_data(trained_registry))  # fmt: skip
        monkeypatch.setattr(folds_module, "train_network", real)
        resumed = retrain(trained_registry.architecture, _run(tmp_path / "b", folds=2, fold=0, resume=True), train,
                          registry=registry, host=host, data_options=_data(trained_registry))  # fmt: skip
    assert whole.folds[0].evaluation == resumed.folds[0].evaluation
    a = torch.load(tmp_path / "a" / "fold0" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "fold0" / "weights.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.cli_in_process
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--folds", "1"], "--folds 1: cross-validation needs at least 2 folds"),
        (["--folds", "9"], "--folds 9 is more than the 5 cases to split"),
        (["--folds", "5", "--fold", "7"], "--fold 7 does not exist with --folds 5"),
        (["--fold", "1"], "--fold 1 needs --folds N"),
    ],
)
def test_cli_bad_folds_are_one_line_and_register_nothing(cli, trained_registry, flags, message) -> None:
    from automl_seg_registry import Registry

    with Registry.open(trained_registry.root) as registry:
        before = len(registry.list())
    result = cli("train", trained_registry.architecture, "--registry", trained_registry.root, "--data-root",
                 trained_registry.data_root, "--device", "cpu", *flags)  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and message in errors[0], result.stderr
    with Registry.open(trained_registry.root) as registry:
        assert len(registry.list()) == before
