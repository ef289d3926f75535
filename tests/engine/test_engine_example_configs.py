"""The config files in ``examples/configs`` are valid, and ``quick-search.yaml`` is the quick preset."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_seg.cli.engine_cmd import load_config
from automl_seg.config import DataSettings, build_settings, section
from automl_seg.engine.settings import SearchRunSettings, train_settings
from automl_seg.plugins import load_plugins

CONFIGS = Path(__file__).parents[2] / "examples" / "configs"


def settings_of(path: Path) -> tuple[SearchRunSettings, DataSettings, object, object]:
    config = load_config(path)
    run = build_settings(SearchRunSettings, section(config, "search"))
    data = build_settings(DataSettings, section(config, "data"))
    strategy = load_plugins().strategy(run.strategy).settings(run.budget, section(config, "strategy"))
    return run, data, strategy, train_settings(run.budget, section(config, "train"))


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_config_is_valid(path: Path) -> None:
    settings_of(path)


def test_quick_search_config_is_the_quick_preset() -> None:
    run, data, strategy, train = settings_of(CONFIGS / "quick-search.yaml")
    assert run == SearchRunSettings(strategy="dints")
    assert data == DataSettings(dataset="Task04_Hippocampus")
    assert strategy == load_plugins().strategy("dints").settings("quick", {})
    assert train == train_settings("quick")


def test_budget_decode_config_decodes_within_the_budget() -> None:
    _, _, strategy, _ = settings_of(CONFIGS / "budget-decode.yaml")
    assert strategy.decode == "budget" and strategy.memory_budget == 0.2
