"""Strategy options: KEY=VALUE assignments and the strategy's own settings as the list of keys."""

from __future__ import annotations

import pytest

from automl_seg.engine.options import parse_assignments, setting_rows, strategy_settings
from automl_seg.errors import ConfigError
from automl_seg.testing.fixtures import installed


def test_assignments_read_yaml_scalars():
    values = parse_assignments(["epochs=3", "memory_budget=900MB", "amp=false", "lr=1e-3", "name=", "decode=a=b"])
    assert values == {"epochs": 3, "memory_budget": "900MB", "amp": False, "lr": 1e-3, "name": "", "decode": "a=b"}
    assert parse_assignments(["x=[1, 2]"]) == {"x": "[1, 2]"}  # a setting is a scalar: lists stay text


@pytest.mark.parametrize("item", ["epochs", "=3", " =3"])
def test_an_assignment_without_a_key_is_refused(item):
    with pytest.raises(ConfigError, match="is not KEY=VALUE"):
        parse_assignments([item])


def test_unknown_keys_list_the_strategys_keys_and_bad_values_keep_pydantics_words():
    dints = installed("strategy", "dints")
    with pytest.raises(ConfigError, match=r"has no setting bogus, warmup; its settings: epochs, warmup_epochs"):
        strategy_settings(dints, "quick", {"bogus": 1, "warmup": 2, "epochs": 3})
    with pytest.raises(ConfigError, match="epochs"):
        strategy_settings(dints, "quick", {"epochs": -1})
    assert strategy_settings(dints, "quick", {"epochs": 4, "warmup_epochs": None}).epochs == 4


def test_setting_rows_hold_each_budgets_default():
    rows = {r["key"]: r for r in setting_rows(installed("strategy", "dints"), ["quick", "full", "nope"])}
    assert rows["epochs"]["defaults"] == {"quick": 6, "full": 200} and rows["epochs"]["type"] == "int"
    (fixed,) = setting_rows(installed("strategy", "fixed"), ["quick"])
    assert fixed["key"] == "deep_supervision" and fixed["defaults"] == {"quick": None}  # None: the budget's
