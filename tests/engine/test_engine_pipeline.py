"""The search pipeline in-process: a run stopped during retraining resumes without re-registering."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_seg.errors import RunStopped, UserError
from automl_seg.hookspecs import hookimpl


class StopAtFirstTrainEpoch:
    """An observer plugin that stops the run once (as a killed process would), then lets it pass."""

    def __init__(self) -> None:
        self.stopped = False

    @hookimpl
    def on_epoch_ended(self, run, phase: str, epoch: int, metrics) -> None:
        if phase == "train" and not self.stopped:
            self.stopped = True
            raise RunStopped("simulated kill")


def test_resume_skips_finished_search_and_continues_training(tiny_data_root: Path, tiny_train, tmp_path: Path) -> None:
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings
    from automl_seg.plugins import load_plugins

    observer = StopAtFirstTrainEpoch()
    host = load_plugins(extra=[("stopper", observer)])
    data = DataSettings(dataset="Task99_Synthetic", data_root=tiny_data_root, patch_size=(16, 16, 16))
    run = SearchRunSettings(strategy="fixed", device="cpu", workdir=tmp_path / "work", progress=False)
    with Registry.open(tmp_path / "registry") as registry:
        with pytest.raises(RunStopped):
            run_search(run, data, tiny_train(), {}, registry=registry, host=host)
        assert [r.ref for r in registry.list()] == ["fixed-Task99_Synthetic:1"]  # only the architecture
        resumed = run_search(
            run.model_copy(update={"resume": True}), data, tiny_train(), {}, registry=registry, host=host
        )
        refs = [r.ref for r in registry.list()]
    assert resumed.architecture.ref == "fixed-Task99_Synthetic:1"
    assert resumed.trained is not None and resumed.trained.record.parent == "fixed-Task99_Synthetic:1"
    assert [row["epoch"] for row in resumed.trained.train.history] == [1, 2]
    assert refs == ["fixed-Task99_Synthetic:1", "fixed-Task99_Synthetic:2"]


def test_resume_with_other_settings_is_refused(tiny_data_root: Path, tiny_train, tmp_path: Path) -> None:
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings
    from automl_seg.plugins import load_plugins

    host = load_plugins(extra=[("stopper", StopAtFirstTrainEpoch())])
    data = DataSettings(dataset="Task99_Synthetic", data_root=tiny_data_root, patch_size=(16, 16, 16))
    run = SearchRunSettings(strategy="fixed", device="cpu", workdir=tmp_path / "work", progress=False)
    with Registry.open(tmp_path / "registry") as registry:
        with pytest.raises(RunStopped):
            run_search(run, data, tiny_train(), {}, registry=registry, host=host)
        resume = run.model_copy(update={"resume": True})
        with pytest.raises(UserError, match="checkpoints in .* are of a run with other settings"):
            run_search(resume, data, tiny_train(lr=0.5), {}, registry=registry, host=host)
        with pytest.raises(UserError, match="other settings"):
            run_search(resume, data, tiny_train(), {"deep_supervision": 1}, registry=registry, host=host)
        assert [r.ref for r in registry.list()] == ["fixed-Task99_Synthetic:1"]  # nothing more registered
        resumed = run_search(resume, data, tiny_train(), {}, registry=registry, host=host)  # the same: continues
    assert resumed.trained is not None and resumed.architecture.ref == "fixed-Task99_Synthetic:1"


def test_search_resume_without_a_run_is_a_clear_error(tiny_data_root: Path, tiny_train, tmp_path: Path) -> None:
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings
    from automl_seg.plugins import load_plugins

    run = SearchRunSettings(strategy="fixed", device="cpu", workdir=tmp_path / "none", resume=True, progress=False)
    data = DataSettings(dataset="Task99_Synthetic", data_root=tiny_data_root)
    with Registry.open(tmp_path / "registry") as registry, pytest.raises(UserError, match="no checkpoint"):
        run_search(run, data, tiny_train(), {}, registry=registry, host=load_plugins())


def test_best_moves_only_for_a_dice_on_the_same_validation_cases(broken_registry: Path, trained_registry) -> None:
    from automl_seg_registry import Registry

    from automl_seg.engine.pipeline import promote_if_comparable

    with Registry.open(broken_registry) as registry:
        best = registry.get(f"{trained_registry.trained.split(':')[0]}@best")
        better = best.metrics.model_copy(update={"dice_mean": (best.metrics.dice_mean or 0) + 0.1})

        def candidate(val_cases: list[str]):
            payload = best.model_dump(exclude={"version", "artifacts", "created"})
            payload.update(metrics=better.model_dump(), provenance={**best.provenance, "val_cases": val_cases})
            return registry.register(type(best).model_validate(payload))

        other_cases = candidate(["synth_999"])  # e.g. a --max-cases run's single validation case
        assert not promote_if_comparable(registry, other_cases)
        same_cases = candidate(best.provenance["val_cases"])
        assert promote_if_comparable(registry, same_cases)
        assert registry.resolve(f"{best.name}@best") == same_cases.ref


@pytest.mark.parametrize(
    ("budget", "device", "warned"), [("full", "cpu", True), ("quick", "cpu", False), ("full", "cuda", False)]
)
def test_full_budget_on_the_cpu_is_warned_about(
    budget: str, device: str, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    from automl_seg.engine.pipeline import warn_gpu_budget_on_cpu

    with caplog.at_level("WARNING", logger="automl_seg.engine.pipeline"):
        warn_gpu_budget_on_cpu(budget, torch.device(device))
    assert ("runs for days; use --budget quick" in caplog.text) is warned


class RunObserver:
    """An observer plugin that keeps what the run hooks were told."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.runs: list = []
        self.ended: list[dict] = []
        self.registered: list[tuple[str, list[str], list[str]]] = []

    @hookimpl
    def on_run_started(self, run) -> None:
        self.started.append(run.kind)
        self.runs.append(run)

    @hookimpl
    def on_model_registered(self, record, files, aliases) -> None:
        assert all(path.is_file() for path in files.values())
        self.registered.append((record.ref, sorted(files), aliases))

    @hookimpl
    def on_run_ended(self, run, result) -> None:
        self.ended.append(dict(result))


class ApiOneObserver:
    """An observer written for plugin API 1: it implements the old name of the end hook."""

    AUTOML_SEG_API = 1

    def __init__(self) -> None:
        self.ended: list[dict] = []

    @hookimpl
    def on_search_ended(self, run, result) -> None:
        self.ended.append(dict(result))


def test_observers_hear_each_run_start_and_its_registered_refs(
    tiny_data_root: Path, tiny_train, tmp_path: Path
) -> None:
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.engine.pipeline import retrain, run_search
    from automl_seg.engine.settings import RunSettings, SearchRunSettings
    from automl_seg.plugins import load_plugins

    observer, old = RunObserver(), ApiOneObserver()
    with pytest.warns(DeprecationWarning, match="on_search_ended"):
        host = load_plugins(extra=[("observer", observer), ("api-one", old)])
    data = DataSettings(dataset="Task99_Synthetic", data_root=tiny_data_root, patch_size=(16, 16, 16))
    run = SearchRunSettings(strategy="fixed", device="cpu", workdir=tmp_path / "search", progress=False)
    with Registry.open(tmp_path / "registry") as registry:
        searched = run_search(run, data, tiny_train(), {}, registry=registry, host=host)
        again = retrain(
            searched.architecture.ref, RunSettings(device="cpu", workdir=tmp_path / "train", progress=False),
            tiny_train(), registry=registry, host=host, data_options={"data_root": tiny_data_root},
        )  # fmt: skip
    assert searched.trained is not None
    assert observer.started == ["search", "train"]
    assert observer.ended == [
        {
            "status": "finished",
            "architecture": searched.architecture.ref,
            "trained": searched.trained.record.ref,
            "dice_mean": searched.trained.evaluation.dice_mean,
            "promoted": True,
        },
        {
            "status": "finished",
            "trained": again.record.ref,
            "dice_mean": again.evaluation.dice_mean,
            "promoted": again.promoted,
        },
    ]
    assert old.ended == observer.ended  # API 1's end hook still fires
    first, second = observer.runs
    assert first.run_id != second.run_id and first.settings_key and first.settings_key != first.run_id
    assert searched.architecture.provenance["run"] == first.run_id
    trained_files = ["evaluation", "train_curves", "train_history", "weights"]
    assert observer.registered[0][0] == searched.architecture.ref and "weights" not in observer.registered[0][1]
    assert observer.registered[1] == (searched.trained.record.ref, trained_files, ["best", "latest"])
    assert observer.registered[2][:2] == (again.record.ref, trained_files)
    assert isinstance(again.promoted, bool)
    assert again.record.parent == searched.architecture.ref


@pytest.mark.parametrize(
    ("requested", "device", "cores", "expected"),
    [(None, "cpu", 16, 0), (None, "cuda", 16, 8), (None, "cuda", 4, 3), (None, "cuda", 1, 0), (2, "cpu", 16, 2),
     (0, "cuda", 16, 0)],
)  # fmt: skip
def test_loader_workers_auto_is_none_on_the_cpu_and_one_per_spare_core_on_cuda(
    requested: int | None, device: str, cores: int, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from automl_seg.engine import devices

    monkeypatch.setattr(devices.os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert devices.loader_workers(requested, torch.device(device)) == expected


def test_the_runs_worker_count_reaches_the_training_loaders(
    tiny_data_root: Path, tiny_train, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.data.prepared import PreparedData
    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings
    from automl_seg.plugins import load_plugins

    counts: list[int] = []
    original = PreparedData.train_loader

    def train_loader(self: PreparedData, *args, **kwargs):  # noqa: ANN202 - a spy
        loader = original(self, *args, **kwargs)
        counts.append(loader.num_workers)
        return loader

    monkeypatch.setattr(PreparedData, "train_loader", train_loader)
    data = DataSettings(dataset="Task99_Synthetic", data_root=tiny_data_root, patch_size=(16, 16, 16))
    run = SearchRunSettings(strategy="fixed", device="cpu", workers=1, workdir=tmp_path / "w", progress=False)
    with Registry.open(tmp_path / "registry") as registry:
        result = run_search(run, data, tiny_train(), {}, registry=registry, host=load_plugins())
    assert result.trained is not None
    assert counts and set(counts) == {1}


def test_trained_record_keeps_the_parents_architecture_and_adds_this_runs_facts(tmp_path: Path) -> None:
    import torch
    from automl_seg_registry import ArchitectureRecord, Metrics, Registry
    from automl_seg_registry.schema import DatasetRef, SpaceRef, StrategyRef

    from automl_seg.engine.pipeline import trained_record
    from automl_seg.engine.settings import train_settings
    from automl_seg.interfaces import RunInfo
    from automl_seg.plugins import load_plugins

    searched = ArchitectureRecord(
        name="dints-Task99_Synthetic",
        space=SpaceRef(name="dints", version="1", args={"num_blocks": 4}),
        arch={"arch_code_c": [1, 2, 0, 1]},
        strategy=StrategyRef(name="dints", settings={"epochs": 2}),
        dataset=DatasetRef(name="Task99_Synthetic", fingerprint_hash="f" * 16, plan={}, split={"val": ["a"]}),
        seed=3,
        metrics=Metrics(search_time_s=12.0),
        provenance={"run": "search-run", "budget": "quick"},
    )
    with Registry.open(tmp_path / "registry") as registry:
        parent = registry.register(searched, files={})
    train = train_settings("quick")
    common = {"seed": 5, "host": load_plugins(), "info": RunInfo(run_id="train-run", kind="train"), "train": train}
    metrics = Metrics(dice_mean=0.8)

    record = trained_record(parent, metrics, **common, device=torch.device("cpu"), provenance={"folds": 2})
    assert (record.parent, record.version, record.arch, record.space) == (parent.ref, None, parent.arch, parent.space)
    assert (record.seed, record.metrics.dice_mean, record.dataset.split) == (5, 0.8, {"val": ["a"]})
    assert record.provenance == {
        "run": "train-run", "budget": "quick", "train": train.model_dump(mode="json"), "device": "cpu", "folds": 2,
    }  # fmt: skip
    assert "automl-seg" in record.versions
    moved = trained_record(parent, metrics, **common, device=torch.device("cpu"), split={"val": ["b"]})
    assert moved.dataset.split == {"val": ["b"]} and parent.dataset.split == {"val": ["a"]}


def test_mirror_axes_reach_the_record_and_retraining_keeps_them_unless_told(
    tiny_data_root: Path, tiny_train, tmp_path: Path
) -> None:
    from automl_seg_registry import Registry

    from automl_seg.config import DataSettings
    from automl_seg.engine.pipeline import retrain, run_search
    from automl_seg.engine.settings import RunSettings, SearchRunSettings
    from automl_seg.plugins import load_plugins

    host = load_plugins()
    data = DataSettings(dataset="Task99_Synthetic", data_root=tiny_data_root, patch_size=(16, 16, 16), mirror_axes=(1,))
    run = SearchRunSettings(strategy="fixed", device="cpu", workdir=tmp_path / "search", progress=False)

    def retrained(options: dict, folder: str) -> list[int]:
        result = retrain(
            searched.architecture.ref, RunSettings(device="cpu", workdir=tmp_path / folder, progress=False),
            tiny_train(), registry=registry, host=host, data_options={"data_root": tiny_data_root, **options},
        )  # fmt: skip
        return list(registry.get(result.record.ref).dataset.plan["mirror_axes"])

    with Registry.open(tmp_path / "registry") as registry:
        searched = run_search(run, data, tiny_train(), {}, registry=registry, host=host)
        assert searched.trained is not None
        assert list(registry.get(searched.trained.record.ref).dataset.plan["mirror_axes"]) == [1]
        assert retrained({}, "kept") == [1]
        assert retrained({"mirror_axes": (0, 2)}, "told") == [0, 2]
