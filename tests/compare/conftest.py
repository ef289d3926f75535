"""Comparison fixtures: a tiny synthetic task, tiny settings, and a ``timed`` strategy that takes a time budget."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from automl_seg.compute import Stopwatch
from automl_seg.config import DataSettings, build_settings
from automl_seg.data.synthetic import make_synthetic_msd
from automl_seg.engine.settings import train_settings
from automl_seg.hookspecs import hookimpl
from automl_seg.interfaces import SearchContext, SearchOutcome

DATASET = "Task99_Synthetic"
#: DiNTS in seconds: two epochs (one warm-up) of one step, no memory measurement
TINY_DINTS = {"epochs": 2, "warmup_epochs": 1, "max_steps_per_epoch": 1, "batch_size": 1, "measure_memory": False}
TINY_TRAIN = {"epochs": 1, "iterations": 2, "val_every": 10, "val_cases": 1}


class TimedSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    time_budget_s: float | None = None


class TimedStrategy:
    """Searches the fixed space by spending exactly its time budget (device seconds) and nothing else."""

    name = "timed"
    space = "fixed"
    budgets = ("quick",)

    def settings(self, budget: str, overrides: Mapping[str, Any]) -> TimedSettings:
        return build_settings(TimedSettings, overrides=overrides, source="timed strategy settings")

    def search(self, ctx: SearchContext) -> SearchOutcome:
        clock = Stopwatch(ctx.device)
        while clock.device_seconds() < (ctx.settings.time_budget_s or 0.0):
            sum(range(10_000))
        return SearchOutcome(arch={}, space_args=dict(ctx.space_args))


class TimedPlugin:
    @hookimpl
    def register_search_strategies(self, register: Callable[[Any], None]) -> None:
        register(TimedStrategy())


@pytest.fixture(scope="module")
def compare_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compare-data")
    make_synthetic_msd(root, num_cases=8, shape=(14, 14, 14))
    return root


@pytest.fixture
def tiny_data(compare_data_root: Path) -> DataSettings:
    return DataSettings(dataset=DATASET, data_root=compare_data_root, patch_size=(16, 16, 16), holdout_fraction=0.25)


@pytest.fixture
def tiny_train():
    return train_settings("quick", overrides=TINY_TRAIN)


@pytest.fixture
def tiny_dints() -> dict[str, Any]:
    return dict(TINY_DINTS)


@pytest.fixture
def host():
    from automl_seg.plugins import load_plugins

    return load_plugins(extra=[("timed", TimedPlugin())])


@pytest.fixture(autouse=True)
def _single_thread():
    """One torch thread per test: the CI machine's 2 cores are shared, and oversubscribed OpenMP spins."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
