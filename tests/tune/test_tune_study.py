"""Storage location and errors, study identity (resume, refusal), trials with failures and pruning."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from automl_seg.errors import ConfigError, Terminated, UserError
from automl_seg.hookspecs import hookimpl
from automl_seg.interfaces import RunInfo
from automl_seg.tune.run import TuneRequest, run_tune
from automl_seg.tune.storage import STUDY_FILE, default_storage_url, open_storage
from automl_seg.tune.study import StudyIdentity, load_study, make_pruner, open_study

from .conftest import FakeRunner


def request(registry: Path, **kw) -> TuneRequest:
    base = dict(strategy="fake", dataset="Task99_Synthetic", trials=3, registry=registry, pruner="none",
                sampler="random")  # fmt: skip
    return TuneRequest(**{**base, **kw})


def test_default_storage_is_an_sqlite_file_in_the_registry(tmp_path: Path, host) -> None:
    result = run_tune(request(tmp_path / "reg", trials=2), host, FakeRunner())
    assert (tmp_path / "reg" / STUDY_FILE).is_file()
    assert result.storage == default_storage_url(tmp_path / "reg")
    assert result.counts == {"COMPLETE": 2}


def test_observers_see_the_tuning_run_start(tmp_path: Path, host) -> None:
    started = []

    class Observer:
        @hookimpl
        def on_run_started(self, run: RunInfo) -> None:
            started.append(run)

    host.add(Observer(), "observer")
    run_tune(request(tmp_path / "reg", trials=1, study="seen"), host, FakeRunner())
    run_tune(request(tmp_path / "reg", trials=1, study="seen"), host, FakeRunner(), run_id="worker-2")
    assert [(r.kind, r.settings_key, r.strategy) for r in started] == [("tune", "seen", "fake")] * 2
    # every worker (and every resumption) of one study is a run of its own
    assert started[0].run_id.startswith("tune-") and started[1].run_id == "worker-2"


def test_unreachable_storage_is_one_clear_line() -> None:
    with pytest.raises(ConfigError, match=r"cannot reach tuning storage postgresql://u:\*\*\*@127.0.0.1:1/db"):
        open_storage("postgresql://u:secret@127.0.0.1:1/db")
    with pytest.raises(ConfigError, match="not a database URL"):
        open_storage("not a url")


def test_zero_trials_refused(tmp_path: Path, host) -> None:
    with pytest.raises(ConfigError, match="--trials must be at least 1"):
        run_tune(request(tmp_path, trials=0), host, FakeRunner())


def test_resume_and_refuse_another_strategy_or_dataset(tmp_path: Path, host) -> None:
    run_tune(request(tmp_path, trials=2, study="s1"), host, FakeRunner())
    again = run_tune(request(tmp_path, trials=1, study="s1"), host, FakeRunner())
    assert len(again.trials) == 3  # resumed, not restarted
    with pytest.raises(ConfigError, match="study 's1' tunes dataset 'Task99_Synthetic' \\(asked: 'Other'\\)"):
        run_tune(request(tmp_path, trials=1, study="s1", dataset="Other"), host, FakeRunner())
    with pytest.raises(ConfigError, match="objective 'dice' \\(asked: 'pareto'\\)"):
        run_tune(request(tmp_path, trials=1, study="s1", objective="pareto"), host, FakeRunner())


def test_a_resumed_study_gets_new_points_and_a_new_one_is_reproducible(tmp_path: Path, host) -> None:
    """QA: rerunning the same command to resume replayed the first run's parameters (same seed, new process)."""
    first = run_tune(request(tmp_path, trials=2, study="r"), host, FakeRunner())
    resumed = run_tune(request(tmp_path, trials=2, study="r"), host, FakeRunner())
    fresh = run_tune(request(tmp_path, trials=2, study="f"), host, FakeRunner())
    params = [t.params for t in resumed.trials]
    assert len(params) == 4 and params[2] not in params[:2] and params[3] not in params[:2]
    assert [t.params for t in fresh.trials] == [t.params for t in first.trials[:2]]  # same seed, new study


def test_foreign_study_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from automl_seg.tune import study as study_module

    monkeypatch.setattr(study_module, "IDENTITY_WAIT_S", 0.2)
    storage = open_storage(default_storage_url(tmp_path))
    optuna.create_study(storage=storage, study_name="plain")
    identity = StudyIdentity(strategy="fake", space="fake", dataset="d", objective="dice")
    with pytest.raises(ConfigError, match="not created by automl-seg tune"):
        open_study(storage, "plain", identity)
    with pytest.raises(ConfigError, match="no study named 'nope'.*plain"):
        load_study(storage, "nope")


def test_a_study_created_a_moment_ago_by_another_worker_is_joined(tmp_path: Path) -> None:
    """The other worker has created the study but not yet stored its identity (QA: 2 of 20 paired starts)."""
    import threading

    storage = open_storage(default_storage_url(tmp_path))
    identity = StudyIdentity(strategy="fake", space="fake", dataset="d", objective="dice")
    other = optuna.create_study(storage=storage, study_name="shared")  # created, identity not stored yet
    later = threading.Timer(0.3, lambda: other.set_user_attr("automl_seg", identity.model_dump()))
    later.start()
    try:
        joined = open_study(storage, "shared", identity)
    finally:
        later.join()
    assert joined.user_attrs["automl_seg"] == identity.model_dump()


def test_pruner_with_pareto_refused() -> None:
    with pytest.raises(ConfigError, match="--pruner median cannot be used with --objective pareto"):
        make_pruner("median", "pareto", 3)
    assert isinstance(make_pruner(None, "pareto", 3), optuna.pruners.NopPruner)


def test_failures_are_recorded_and_the_study_goes_on(tmp_path: Path, host) -> None:
    runner = FakeRunner(fail_on=(1,), nan_on=(2,), registry=tmp_path / "reg")
    result = run_tune(request(tmp_path / "reg", trials=4), host, runner)
    rows = {r.number: r for r in result.trials}
    assert [rows[i].state for i in range(4)] == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    assert rows[1].reason == "RuntimeError: plugin exploded in trial 1"
    assert "validation Dice is nan" in rows[2].reason
    assert len(runner.calls) == 4


@pytest.mark.parametrize(
    ("interrupt", "reason"), [(KeyboardInterrupt, "interrupted (Ctrl-C)"), (Terminated, "terminated (SIGTERM)")]
)
def test_an_interrupted_trial_is_failed_with_its_reason(tmp_path: Path, host, interrupt, reason) -> None:
    class Interrupted(FakeRunner):
        def __call__(self, trial_number, values, observer):  # noqa: ANN001, ANN204
            if trial_number == 1:
                raise interrupt
            return super().__call__(trial_number, values, observer)

    with pytest.raises(KeyboardInterrupt):
        run_tune(request(tmp_path, trials=3, study="ctrl-c"), host, Interrupted())
    study = load_study(open_storage(default_storage_url(tmp_path)), "ctrl-c")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert study.trials[1].user_attrs["fail_reason"].startswith(reason)


def test_worker_whose_every_trial_failed_is_an_error(tmp_path: Path, host) -> None:
    with pytest.raises(UserError, match=r"all 2 trial\(s\) of this worker failed; trial 0: RuntimeError: plugin explo"):
        run_tune(request(tmp_path, trials=2, study="s2"), host, FakeRunner(fail_on=(0, 1)))
    study = load_study(open_storage(default_storage_url(tmp_path)), "s2")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]  # kept in the study


def test_best_alias_follows_the_objective(tmp_path: Path, host) -> None:
    from automl_seg_registry import Registry

    result = run_tune(request(tmp_path / "reg", trials=4, seed=3), host, FakeRunner(registry=tmp_path / "reg"))
    best = max((r for r in result.trials if r.state == "COMPLETE"), key=lambda r: r.dice)
    assert result.best_ref == best.ref == result.best[0].ref
    with Registry.open(tmp_path / "reg") as registry:
        assert registry.get("tune-fake@best").ref == best.ref


def test_dice_per_mb_and_pareto(tmp_path: Path, host) -> None:
    per_mb = run_tune(request(tmp_path / "a", trials=3, objective="dice-per-mb"), host, FakeRunner())
    for row in per_mb.trials:
        assert row.values[0] == pytest.approx(row.dice / row.memory_mb)
    pareto = run_tune(request(tmp_path / "b", trials=4, objective="pareto"), host, FakeRunner())
    assert pareto.directions == ["maximize", "minimize"]
    assert pareto.pareto_png is not None and pareto.pareto_png.stat().st_size > 1000
    front = [r.dice for r in pareto.best]
    assert front == sorted(front, reverse=True)


def test_pruning_through_the_observer(tmp_path: Path, host) -> None:
    # the median pruner stops a trial whose reported Dice falls below earlier trials' median
    result = run_tune(
        request(tmp_path, trials=8, pruner="median", sampler="random", seed=0,
                params={"alpha": {"low": 0.0, "high": 1.0}}),
        host, FakeRunner(epochs=4),
    )  # fmt: skip
    study = load_study(open_storage(result.storage), result.study)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, "no trial was pruned"
    assert all(len(t.intermediate_values) < 4 for t in pruned)


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_every_sampler_runs(tmp_path: Path, host, sampler: str) -> None:
    result = run_tune(request(tmp_path, trials=3, sampler=sampler, params={"alpha": {"low": 0.1, "high": 0.9}}),
                      host, FakeRunner(epochs=1))  # fmt: skip
    assert result.counts == {"COMPLETE": 3}
