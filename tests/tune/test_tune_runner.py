"""The engine's trial runner refuses, before any trial, ranges that the strategy's settings reject."""

from __future__ import annotations

import pytest

from automl_seg.errors import ConfigError
from automl_seg.plugins import PluginHost, load_plugins
from automl_seg.tune.params import ParameterSpec
from automl_seg.tune.run import TuneRequest, tuning_space
from automl_seg.tune.runner import EngineTrialRunner, EngineTrialSettings


def dints_runner(**settings: object) -> tuple[EngineTrialRunner, PluginHost, list[ParameterSpec]]:
    host = load_plugins()
    specs = tuning_space(host, TuneRequest(strategy="dints", dataset="Task04_Hippocampus", trials=1))[1]
    trial_settings = EngineTrialSettings(strategy="dints", dataset="Task04_Hippocampus", study="s", **settings)
    return EngineTrialRunner(trial_settings), host, specs


def test_dints_warmup_range_must_fit_the_search_epochs() -> None:
    runner, host, specs = dints_runner(strategy_section={"epochs": 3})
    refused = r"tuning warmup_epochs = 4 \(range \[0, 4\]\) cannot run: .*smaller than epochs"
    with pytest.raises(ConfigError, match=refused):
        runner.check(host, specs)
    runner, host, specs = dints_runner()  # the quick preset's 6 search epochs fit the range
    runner.check(host, specs)


def test_settings_every_trial_starts_from_must_be_valid_first() -> None:
    invalid = r"the strategy settings every trial starts from are invalid: warmup_epochs \(2\) .* epochs \(1\)"
    runner, host, specs = dints_runner(strategy_section={"epochs": 1})  # from the config or --set epochs=1
    with pytest.raises(ConfigError, match=invalid):
        runner.check(host, specs)
