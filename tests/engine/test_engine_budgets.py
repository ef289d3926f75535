"""Budgets are an open set: the engine's training presets and each strategy's and space's own."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from automl_seg.engine.budgets import budget_declaration_problem, check_budget, known_budgets
from automl_seg.engine.settings import TRAIN_PRESETS, train_settings
from automl_seg.errors import ConfigError
from automl_seg.plugins import load_plugins

pytestmark = pytest.mark.cli_in_process


def _part(name: str, budgets: tuple[str, ...] | None) -> SimpleNamespace:
    return SimpleNamespace(name=name, budgets=budgets)


def test_every_builtin_declares_quick_standard_full() -> None:
    host = load_plugins()
    assert list(TRAIN_PRESETS) == ["quick", "standard", "full"]
    for kind, name in [("strategy", "dints"), ("space", "dints"), ("space", "fixed")]:
        assert host.get(kind, name).budgets == ("quick", "standard", "full"), (kind, name)
        assert known_budgets(**{kind: host.get(kind, name)}) == ["quick", "standard", "full"]
    for budget in TRAIN_PRESETS:
        assert train_settings(budget).epochs > 0


def test_known_budgets_are_the_intersection_in_the_engine_order() -> None:
    strategy = _part("mine", ("full", "quick", "tiny"))
    assert known_budgets(strategy=strategy, space=_part("open", None)) == ["quick", "full"]
    assert known_budgets(strategy=strategy, space=_part("narrow", ("full",))) == ["full"]
    assert known_budgets() == list(TRAIN_PRESETS)


def test_unknown_budget_lists_the_known_ones() -> None:
    strategy, space = _part("mine", ("quick", "full")), _part("fixed", None)
    with pytest.raises(ConfigError, match=r"^unknown budget 'medium'; known for strategy 'mine' on space 'fixed': "
                       r"quick, full$"):  # fmt: skip
        check_budget("medium", strategy=strategy, space=space)
    with pytest.raises(ConfigError, match=r"^budget 'standard' is not offered by strategy 'mine'; known .*quick, full"):
        check_budget("standard", strategy=strategy, space=space)
    with pytest.raises(ConfigError, match="not offered by the engine's training presets"):
        check_budget("tiny", strategy=_part("mine", ("tiny",)))
    with pytest.raises(ConfigError, match=r"^unknown budget 'medium'; known: quick, standard, full$"):
        train_settings("medium")
    check_budget("standard", strategy=_part("open", None))


def test_a_plugin_declaring_bad_budgets_is_rejected() -> None:
    assert budget_declaration_problem(_part("a", None)) is None
    assert budget_declaration_problem(_part("a", ("quick", "x-2"))) is None
    assert "sequence of names" in str(budget_declaration_problem(SimpleNamespace(budgets="quick")))
    assert "'Quick'" in str(budget_declaration_problem(_part("a", ("Quick",))))

    from automl_seg.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def register_search_strategies(self, register):  # noqa: ANN001, ANN202
            register(SimpleNamespace(name="bad", space="fixed", budgets=(1,), settings=print, search=print))

    host = load_plugins(extra=[("bad", Plugin())], use_entry_points=False)
    assert "strategy 'bad': budgets holds invalid name(s) 1" in host.problems[0]


def test_cli_unknown_budget_is_one_line_and_registers_nothing(cli, tiny_data_root: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    result = cli("search", "--strategy", "dints", "--dataset", "Task99_Synthetic", "--data-root", tiny_data_root,
                 "--budget", "medium", "--registry", registry)  # fmt: skip
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    expected = "error: unknown budget 'medium'; known for strategy 'dints' on space 'dints': quick, standard, full"
    assert errors == [expected]
    assert not (registry / "records").exists() or not any((registry / "records").iterdir())
