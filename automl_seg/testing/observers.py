"""``ObserverContract``: what every lifecycle observer (a tracking plugin) must do, as a pytest class.

Override the ``observer`` fixture with the plugin object (a module or an instance with ``@hookimpl``
methods)::

    class TestMyObserver(ObserverContract):
        @pytest.fixture
        def observer(self, tmp_path):
            return CsvObserver(tmp_path / "runs.csv")

The contract loads it into a plugin host as the engine does, then plays it a search run (the
strategy's epochs, then the retraining's, then the end) and a standalone ``train`` run, with the
hook arguments and ``result`` keys documented in ``automl_seg.hookspecs``. An observer passes when
the host admits it and it follows both runs without raising (``RunStopped`` from ``on_epoch_ended``
is allowed: it is how an observer ends a run). Check what it wrote in your own tests, after calling
``play_run`` yourself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_seg.testing import checks


class ObserverContract:
    """Subclass and override the ``observer`` fixture; every ``test_*`` here then runs on it."""

    @pytest.fixture
    def observer(self) -> object:
        pytest.fail("override the `observer` fixture to return the observer plugin under test")

    def test_host_admits_observer(self, observer: object) -> None:
        checks.check_observer_loads(observer)

    def test_follows_a_search_run(self, observer: object, tmp_path: Path) -> None:
        checks.play_run(observer, kind="search", workdir=tmp_path)

    def test_follows_a_train_run(self, observer: object, tmp_path: Path) -> None:
        checks.play_run(observer, kind="train", workdir=tmp_path)

    def test_tells_two_runs_apart(self, observer: object, tmp_path: Path) -> None:
        """Two runs of the same settings get different ``run_id`` and the same ``settings_key``."""
        first = checks.play_run(observer, kind="search", workdir=tmp_path)
        second = checks.play_run(observer, kind="search", workdir=tmp_path)
        assert first.run_id != second.run_id and first.settings_key == second.settings_key
