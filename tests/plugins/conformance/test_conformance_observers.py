"""The observer contract: a tracking plugin that follows runs passes, a broken one is named."""

from __future__ import annotations

import pytest

from automl_seg.errors import RunStopped
from automl_seg.hookspecs import hookimpl
from automl_seg.testing import ContractViolation, ObserverContract
from automl_seg.testing.checks import check_observer_loads, play_run


class Recorder:
    """Keeps every call: what a CSV or MLflow observer would write."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    @hookimpl
    def on_run_started(self, run) -> None:
        self.rows.append(("started", run.run_id, run.kind))

    @hookimpl
    def on_epoch_ended(self, run, phase, epoch, metrics) -> None:
        self.rows.append((phase, epoch, metrics["loss"]))

    @hookimpl
    def on_run_ended(self, run, result) -> None:
        self.rows.append(("ended", result["trained"], result["promoted"]))


class TestRecorder(ObserverContract):
    @pytest.fixture
    def observer(self) -> Recorder:
        return Recorder()


def test_play_run_reports_both_phases_of_a_search_and_one_of_a_train():
    recorder = Recorder()
    search = play_run(recorder, kind="search")
    assert [r[0] for r in recorder.rows] == ["started", "search", "search", "train", "train", "ended"]
    assert recorder.rows[0] == ("started", search.run_id, "search")
    recorder.rows.clear()
    play_run(recorder, kind="train")
    assert [r[0] for r in recorder.rows] == ["started", "train", "train", "ended"]


def test_an_observer_that_raises_is_named():
    class Broken:
        @hookimpl
        def on_epoch_ended(self, metrics) -> None:
            raise KeyError("val_dice")

    with pytest.raises(ContractViolation, match="on_epoch_ended raised KeyError"):
        play_run(Broken(), kind="search")


def test_an_observer_may_stop_a_run_from_an_epoch_only():
    class Pruner:
        ended = False

        @hookimpl
        def on_epoch_ended(self, epoch) -> None:
            raise RunStopped("pruned")

        @hookimpl
        def on_run_ended(self) -> None:
            self.ended = True

    pruner = Pruner()
    play_run(pruner)
    assert not pruner.ended

    class Late:
        @hookimpl
        def on_run_ended(self) -> None:
            raise RunStopped("too late")

    with pytest.raises(ContractViolation, match="only on_epoch_ended may end a run"):
        play_run(Late())


def test_misspelled_hooks_and_non_observers_are_refused():
    class Misspelled:
        @hookimpl
        def on_epoch_end(self, run) -> None: ...

    with pytest.raises(ContractViolation, match="on_epoch_end"):
        check_observer_loads(Misspelled())

    class NoHooks:
        pass

    with pytest.raises(ContractViolation, match="implements no lifecycle hook"):
        check_observer_loads(NoHooks())


def test_an_api_one_observer_still_follows_runs():
    class Old:
        AUTOML_SEG_API = 1
        results: list = []

        @hookimpl
        def on_search_ended(self, run, result) -> None:
            self.results.append(result)

    old = Old()
    with pytest.warns(DeprecationWarning, match="on_run_ended"):
        play_run(old)
    assert old.results and old.results[0]["architecture"] == "fixed-Task99_Synthetic:1"
