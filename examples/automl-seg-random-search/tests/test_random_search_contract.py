"""The random strategy against automl-seg's conformance kit, plus what is particular to it.

Run after installing the plugin: ``pip install -e examples/automl-seg-random-search`` then
``pytest examples/automl-seg-random-search/tests``.
"""

from __future__ import annotations

from typing import Any

import pytest
from automl_seg_random_search.settings import random_settings
from automl_seg_random_search.strategy import SPACE_METHODS, RandomSearch, another_trial, split_training_cases

from automl_seg.errors import PluginError
from automl_seg.interfaces import SearchSpace, SearchStrategy
from automl_seg.testing import SearchStrategyContract
from automl_seg.testing.fixtures import installed, search_context, tiny_dataset, tiny_prepared_data

TINY = {"trials": 2, "epochs": 1, "iterations": 1, "batch_size": 1, "memory_budget": 0.6}


def dints_space() -> SearchSpace:
    space = installed("space", "dints")
    missing = [m for m in SPACE_METHODS if not hasattr(space, m)]
    if missing:
        pytest.skip(f"the installed dints space lacks {', '.join(missing)}")
    return space


class TestRandomSearchContract(SearchStrategyContract):
    @pytest.fixture
    def strategy(self) -> SearchStrategy:
        return RandomSearch()

    @pytest.fixture
    def epochs_setting(self) -> str:
        return "trials"  # one epoch_ended report per trained candidate

    @pytest.fixture
    def hard_memory_budget(self) -> bool:
        return True  # every candidate is drawn within the budget

    @pytest.fixture
    def space(self, strategy: SearchStrategy) -> SearchSpace:
        return dints_space()

    @pytest.fixture
    def overrides(self) -> dict[str, Any]:
        return dict(TINY)

    @pytest.fixture
    def space_args(self, space: SearchSpace, data, budget) -> dict[str, Any]:
        return {**space.default_args(data.plan, budget), "num_blocks": 2, "num_depths": 2}


def test_registered_through_the_entry_point_only():
    assert isinstance(installed("strategy", "random"), RandomSearch)
    assert installed("strategy", "random").space == "dints"


def test_training_cases_split_in_disjoint_seeded_halves():
    cases = [f"c{i}" for i in range(7)]
    fit, score = split_training_cases(cases, seed=1)
    assert sorted(fit + score) == sorted(cases) and not set(fit) & set(score)
    assert (fit, score) == split_training_cases(list(reversed(cases)), seed=1)
    assert len(score) == 3


def test_a_space_without_sampling_is_refused_by_name(tmp_path):
    data = tiny_prepared_data(tiny_dataset(tmp_path / "data"))
    fixed = installed("space", "fixed")
    ctx = search_context(RandomSearch(), fixed, data, tmp_path / "run", overrides=TINY)
    with pytest.raises(PluginError, match="space 'fixed' lacks sample_arch"):
        RandomSearch().search(ctx)


def test_budget_below_every_architecture_is_a_clear_error(tmp_path):
    from automl_seg.errors import UserError

    space = dints_space()
    data = tiny_prepared_data(tiny_dataset(tmp_path / "data"))
    ctx = search_context(
        RandomSearch(), space, data, tmp_path / "run", overrides={**TINY, "memory_budget": 1e-6, "max_draws": 5}
    )
    with pytest.raises(UserError, match="admits none of 5 random architectures"):
        RandomSearch().search(ctx)


def test_resume_skips_finished_trials_and_finds_the_same_architecture(tmp_path):
    space = dints_space()
    data = tiny_prepared_data(tiny_dataset(tmp_path / "data"))
    args = {**space.default_args(data.plan, "quick"), "num_blocks": 2, "num_depths": 2}
    first = RandomSearch().search(
        search_context(RandomSearch(), space, data, tmp_path / "run", overrides=TINY, space_args=args)
    )
    ctx = search_context(RandomSearch(), space, data, tmp_path / "run", overrides=TINY, space_args=args)
    ctx.resume = True
    for trial in range(TINY["trials"]):  # a resumed run must not train a finished trial again
        (tmp_path / "run" / f"trial_{trial}").rename(tmp_path / f"moved_{trial}")
    resumed = RandomSearch().search(ctx)
    assert resumed.arch == first.arch and resumed.history == first.history
    assert not (tmp_path / "run" / "trial_0").exists()


@pytest.mark.parametrize(
    ("budget", "spent", "more"),
    [
        (None, [1.0], True),
        (None, [1.0, 1.0], False),
        (2.6, [1.0, 1.0], True),
        (2.4, [1.0, 1.0], False),
        (0.1, [], True),
    ],
)
def test_a_time_budget_replaces_the_trial_count(budget, spent, more):
    """Another candidate while the expected total after it lies nearer the budget than the total now."""
    settings = random_settings("quick", {**TINY, "time_budget_s": budget})
    assert another_trial(settings, [{"device_s": s} for s in spent]) is more


def test_a_tiny_time_budget_trains_one_candidate(tmp_path):
    space = dints_space()
    data = tiny_prepared_data(tiny_dataset(tmp_path / "data"))
    args = {**space.default_args(data.plan, "quick"), "num_blocks": 2, "num_depths": 2}
    overrides = {**TINY, "trials": 5, "time_budget_s": 1e-3}
    outcome = RandomSearch().search(
        search_context(RandomSearch(), space, data, tmp_path / "run", overrides=overrides, space_args=args)
    )
    assert len(outcome.history) == 1 and outcome.history[0]["device_s"] > 0
    assert outcome.metrics["search_trials_device_s"] == outcome.history[0]["device_s"]


def test_declares_the_budgets_it_has_presets_for() -> None:
    assert RandomSearch.budgets == ("quick", "standard", "full")
    assert random_settings("standard", {}).trials > random_settings("quick", {}).trials
