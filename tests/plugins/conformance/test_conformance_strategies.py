"""The conformance kit on the built-in search strategies (tiny budgets), loaded through their entry points."""

from __future__ import annotations

from typing import Any

import pytest

from automl_seg.interfaces import SearchStrategy
from automl_seg.plugins import load_plugins
from automl_seg.testing import SearchStrategyContract


class TestFixedStrategy(SearchStrategyContract):
    @pytest.fixture
    def strategy(self) -> SearchStrategy:
        return load_plugins(disabled=set()).strategy("fixed")

    @pytest.fixture
    def reports_epochs(self) -> bool:
        return False  # fixed does not search


class TestDintsStrategy(SearchStrategyContract):
    @pytest.fixture
    def strategy(self) -> SearchStrategy:
        return load_plugins(disabled=set()).strategy("dints")

    @pytest.fixture
    def overrides(self) -> dict[str, Any]:
        return {"epochs": 2, "warmup_epochs": 1, "max_steps_per_epoch": 1, "batch_size": 1, "measure_memory": False}

    @pytest.fixture
    def space_args(self, space, data, budget) -> dict[str, Any]:
        return {**space.default_args(data.plan, budget), "num_blocks": 2, "num_depths": 2}
