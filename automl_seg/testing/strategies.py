"""``SearchStrategyContract``: what every search strategy must do, as a pytest class to subclass.

Override the ``strategy`` fixture, and ``overrides`` to keep the search tiny::

    class TestMyStrategy(SearchStrategyContract):
        @pytest.fixture
        def strategy(self):
            return MyStrategy()

        @pytest.fixture
        def overrides(self):
            return {"epochs": 2}

The search space defaults to the installed one the strategy names (``strategy.space``); override
the ``space`` fixture to test against another object. The settings are fixtures too, tailored the
same way: ``space_args``, ``budget``, ``patch_size``, ``seed``, ``epochs_setting`` (the settings field
bounding ``ctx.epoch_ended`` calls) and ``hard_memory_budget`` (True for a strategy that promises to
stay within its memory budget). Searches run on CPU on a small synthetic MSD task
(``automl_seg.testing.fixtures``) and register into a temporary registry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automl_seg.data.prepared import PreparedData
from automl_seg.interfaces import Budget, SearchContext, SearchOutcome, SearchSpace, SearchStrategy
from automl_seg.testing import checks
from automl_seg.testing.fixtures import (
    register_outcome,
    search_context,
    temporary_registry,
    tiny_dataset,
    tiny_prepared_data,
)
from automl_seg.testing.tiny_task import TinyTaskSettings

#: what one search leaves for the tests: its checked outcome, the context it ran in, its epoch reports
SearchRun = tuple[SearchOutcome, SearchContext, checks.EpochRecorder]


class SearchStrategyContract(TinyTaskSettings):
    """Subclass and override the ``strategy`` fixture; every ``test_*`` here then runs on it."""

    @pytest.fixture
    def strategy(self) -> SearchStrategy:
        pytest.fail("override the `strategy` fixture to return the search strategy under test")

    @pytest.fixture
    def space(self, strategy: SearchStrategy) -> SearchSpace:
        from automl_seg.plugins import load_plugins

        return load_plugins().space(strategy.space)

    @pytest.fixture
    def overrides(self) -> dict[str, Any]:
        """Settings overrides for the searches: make them tiny (few epochs/steps)."""
        return {}

    @pytest.fixture
    def space_args(self, space: SearchSpace, data: PreparedData, budget: Budget) -> dict[str, Any]:
        """Space constructor args for the searches; override to shrink a large space."""
        return space.default_args(data.plan, budget)

    @pytest.fixture
    def seed(self) -> int:
        """Seed of the searches; the same-seed test searches twice with it."""
        return 0

    @pytest.fixture
    def epochs_setting(self) -> str:
        """Settings field bounding how many times ``ctx.epoch_ended`` may be called (skipped when absent)."""
        return "epochs"

    @pytest.fixture
    def hard_memory_budget(self) -> bool:
        """True when the strategy promises ``memory.estimated <= memory.requested`` (a hard budget);
        soft budgets (DiNTS' loss term) leave it False."""
        return False

    @pytest.fixture
    def reports_epochs(self) -> bool:
        """Whether the search reports at least one epoch through ``ctx.epoch_ended`` (observers and
        tune's pruner see nothing otherwise); only a strategy that does not search (``fixed``) says False."""
        return True

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_data_root(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """The tiny synthetic task, written once per contract class."""
        return tiny_dataset(tmp_path_factory.mktemp("conformance-data"))

    @pytest.fixture
    def data(self, conformance_data_root: Path, patch_size: tuple[int, int, int]) -> PreparedData:
        return tiny_prepared_data(conformance_data_root, patch_size=patch_size)

    @pytest.fixture(scope="class")
    @classmethod
    def search_cache(cls) -> dict[str, SearchRun]:
        """Searches already run in this class, so each test does not search again."""
        return {}

    @pytest.fixture
    def run_search(
        self,
        strategy: SearchStrategy,
        space: SearchSpace,
        data: PreparedData,
        overrides: dict[str, Any],
        space_args: dict[str, Any],
        seed: int,
        budget: Budget,
    ) -> Callable[[Path], SearchRun]:
        """``run_search(workdir)``: one search on the tiny data (CPU, the fixtures' settings), its
        outcome checked. A function, so that a test can search more than once."""

        def run(workdir: Path) -> SearchRun:
            recorder = checks.EpochRecorder()
            ctx = search_context(
                strategy, space, data, workdir, seed=seed, budget=budget, overrides=overrides,
                space_args=space_args, epoch_ended=recorder,
            )  # fmt: skip
            return checks.check_outcome(strategy.search(ctx)), ctx, recorder

        return run

    @pytest.fixture
    def searched(
        self,
        strategy: SearchStrategy,
        run_search: Callable[[Path], SearchRun],
        search_cache: dict[str, SearchRun],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> SearchRun:
        """The class's first search (run once, then shared by the tests that only inspect it)."""
        if "first" not in search_cache:
            search_cache["first"] = run_search(tmp_path_factory.mktemp(f"search-{strategy.name}"))
        return search_cache["first"]

    def test_host_admits_strategy(self, strategy: SearchStrategy) -> None:
        checks.check_identity("strategy", strategy)

    def test_settings_presets_validate_and_refuse_unknown_keys(self, strategy: SearchStrategy) -> None:
        checks.check_strategy_settings(strategy)

    def test_epochs_reported_within_budget(
        self, searched: SearchRun, epochs_setting: str, hard_memory_budget: bool, reports_epochs: bool
    ) -> None:
        outcome, ctx, recorder = searched
        checks.check_epoch_reports(recorder, ctx.settings, epochs_setting, require_any=reports_epochs)
        if hard_memory_budget:
            checks.check_memory_budget(outcome)

    def test_outcome_registers_and_rebuilds(
        self,
        strategy: SearchStrategy,
        space: SearchSpace,
        searched: SearchRun,
        tmp_path: Path,
    ) -> None:
        """The registry accepts the search's record; the stored record rebuilds a network whose output
        matches the labels."""
        outcome, ctx, _ = searched
        with temporary_registry(tmp_path / "registry") as registry:
            stored = register_outcome(registry, outcome, strategy, space, ctx)
            again = registry.get(stored.ref)
        assert again.arch == outcome.arch and again.space.args == outcome.space_args
        checks.check_record_network(space, again.space.args, again.arch, ctx)

    def test_same_seed_same_architecture(
        self, run_search: Callable[[Path], SearchRun], searched: SearchRun, seed: int, tmp_path: Path
    ) -> None:
        second, _, _ = run_search(tmp_path / "again")
        checks.check_same_arch(searched[0], second, seed)
