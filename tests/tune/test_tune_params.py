"""Tunable parameters: collected through the hook, narrowed or fixed by the user, suggested per trial."""

from __future__ import annotations

import optuna
import pytest

from automl_seg.config import DataSettings
from automl_seg.errors import ConfigError, PluginError
from automl_seg.hookspecs import hookimpl
from automl_seg.interfaces import TunableParameter
from automl_seg.plugins import load_plugins
from automl_seg.tune.engine_params import engine_parameters
from automl_seg.tune.params import build_space, check_extremes, collect_parameters, suggest

from .conftest import FakeStrategy


def test_collects_plugin_and_engine_parameters(host) -> None:
    declared = collect_parameters(host, "fake", "fake", defaults=engine_parameters())
    names = {(owner, p.name, p.target) for owner, p in declared}
    assert ("fakeplugin", "alpha", "strategy") in names
    assert ("engine", "lr", "train") in names and ("engine", "patch_size", "data") in names
    assert collect_parameters(host, "other", "other") == []


def test_engine_parameters_name_real_settings() -> None:
    from automl_seg.engine.settings import TrainSettings

    fields = {"train": set(TrainSettings.model_fields), "data": set(DataSettings.model_fields)}
    for _owner, param in engine_parameters():
        assert param.name in fields[param.target], param.name


def test_plugin_declaration_replaces_engine_default() -> None:
    class Narrow:
        @hookimpl
        def tunable_parameters(self, strategy: str, space: str) -> list[TunableParameter]:
            return [TunableParameter(name="patch_size", target="data", kind="categorical", choices=[[32, 32, 32]])]

    host = load_plugins(extra=[("narrow", Narrow())], use_entry_points=False)
    declared = dict((p.name, (owner, p)) for owner, p in collect_parameters(host, "x", "x", engine_parameters()))
    assert declared["patch_size"][0] == "narrow"
    assert declared["patch_size"][1].choices == [[32, 32, 32]]


def test_two_plugins_declaring_one_name_is_an_error(host) -> None:
    class Again:
        @hookimpl
        def tunable_parameters(self, strategy: str, space: str) -> list[TunableParameter]:
            return [TunableParameter(name="alpha", target="train", kind="float", low=0, high=1)]

    host.add(Again(), "again")
    with pytest.raises(PluginError, match="'alpha' is declared by plugins"):
        collect_parameters(host, "fake", "fake")


class BadDeclaration:
    """Registers strategy ``bad`` and declares an invalid parameter for every strategy."""

    @hookimpl
    def register_search_strategies(self, register) -> None:
        strategy = FakeStrategy()
        strategy.name = "bad"
        register(strategy)

    @hookimpl
    def tunable_parameters(self) -> list[TunableParameter]:
        return [TunableParameter(name="lr", target="train", kind="float", low=0.0, high=1.0, log=True)]


def test_invalid_declaration_stops_tuning_its_own_strategy() -> None:
    host = load_plugins(extra=[("bad", BadDeclaration())], use_entry_points=False)
    with pytest.raises(PluginError, match="plugin 'bad'.*low > 0.*fix the plugin"):
        collect_parameters(host, "bad", "x")


def test_invalid_declaration_of_another_plugin_is_left_out(host, caplog) -> None:
    host.add(BadDeclaration(), "bad")
    declared = collect_parameters(host, "fake", "fake")
    assert [(owner, p.name) for owner, p in declared] == [("fakeplugin", "alpha"), ("fakeplugin", "width")]
    assert "plugin 'bad'" in caplog.text and "AUTOML_SEG_DISABLE_PLUGINS=bad" in caplog.text


def test_implementation_may_leave_out_hook_arguments() -> None:
    class StrategyOnly:
        @hookimpl
        def tunable_parameters(self, strategy: str) -> list[TunableParameter]:
            return [TunableParameter(name=f"{strategy}_rate", target="strategy", kind="float", low=0.1, high=1.0)]

    host = load_plugins(extra=[("only", StrategyOnly())], use_entry_points=False)
    assert [p.name for _, p in collect_parameters(host, "x", "y")] == ["x_rate"]


def test_narrow_fix_and_unknown_name(host) -> None:
    declared = collect_parameters(host, "fake", "fake", defaults=engine_parameters())
    specs = {
        s.param.name: s
        for s in build_space(
            declared, {"alpha": {"low": 0.2, "high": 0.4}, "lr": 0.01, "patch_size": {"choices": [[32, 32, 32]]}}
        )
    }
    assert (specs["alpha"].param.low, specs["alpha"].param.high) == (0.2, 0.4)
    assert specs["lr"].is_fixed and specs["lr"].fixed == 0.01
    assert specs["patch_size"].param.choices == [[32, 32, 32]]
    with pytest.raises(ConfigError, match=r"unknown tunable parameter\(s\) alhpa; known: .*alpha"):
        build_space(declared, {"alhpa": 0.3})
    with pytest.raises(ConfigError, match="leaves the declared"):
        build_space(declared, {"alpha": {"high": 2.0}})
    with pytest.raises(ConfigError, match="not among the declared"):
        build_space(declared, {"width": {"choices": [64]}})
    with pytest.raises(ConfigError, match="unknown setting"):
        build_space(declared, {"alpha": {"hi": 0.3}})


def test_suggest_groups_values_by_target(host) -> None:
    declared = collect_parameters(host, "fake", "fake", defaults=engine_parameters())
    specs = build_space(declared, {"lr": 0.02, "patch_size": {"choices": [[32, 32, 32], [48, 48, 48]]}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    values = suggest(trial, specs)
    assert 0.0 <= values["strategy"]["alpha"] <= 1.0
    assert values["space"]["width"] in (8, 16, 32)
    assert values["train"]["lr"] == 0.02 and "lr" not in trial.params  # fixed: applied, not searched
    assert values["data"]["patch_size"] in ([32, 32, 32], [48, 48, 48])
    assert trial.params["patch_size"] in ("32x32x32", "48x48x48")
    DataSettings(patch_size=values["data"]["patch_size"])  # the value fits the setting it targets


def test_dints_declarations_name_real_settings() -> None:
    import automl_seg_dints.tunable as dints_tunable
    from automl_seg_dints.settings import DintsSettings
    from automl_seg_dints.space import DintsSpaceArgs

    host = load_plugins(extra=[("dints-tunable", dints_tunable)], use_entry_points=False)
    declared = collect_parameters(host, "dints", "dints")
    assert {p.name for _, p in declared} >= {"weight_lr", "arch_lr", "memory_budget", "channel_mul"}
    models = {"strategy": DintsSettings, "space": DintsSpaceArgs}
    for _owner, param in declared:
        assert param.name in models[param.target].model_fields, param.name
    assert collect_parameters(host, "fixed", "fixed") == []


def test_range_end_the_settings_reject_is_refused_before_any_trial(host) -> None:
    declared = collect_parameters(host, "fake", "fake", defaults=engine_parameters())
    specs = build_space(declared, {})

    def settings(values: dict) -> None:
        if values.get("alpha", 0.0) > 0.9:
            raise ConfigError("alpha must stay below 0.9 with 3 epochs")

    refused = r"tuning alpha = 1.0 \(range \[0, 1\]\) cannot run: alpha must stay below .*tune.params"
    with pytest.raises(ConfigError, match=refused):
        check_extremes(specs, "strategy", settings)
    check_extremes(build_space(declared, {"alpha": {"high": 0.8}}), "strategy", settings)  # narrowed: accepted
    check_extremes(specs, "train", settings)  # other targets are not this validator's


def test_values_fixed_in_tune_params_are_part_of_every_trials_base(host) -> None:
    """QA: warmup_epochs fixed to 0 under tune.params was ignored, and the preset's 2 refused with --epochs 1."""
    declared = collect_parameters(host, "fake", "fake", defaults=engine_parameters())

    def settings(values: dict) -> None:
        if values.get("alpha", 0.95) > 0.9:  # the preset's alpha does not suit this run
            raise ConfigError("alpha must stay below 0.9")

    with pytest.raises(ConfigError, match="strategy settings every trial starts from are invalid: alpha must"):
        check_extremes(build_space(declared, {"alpha": {"high": 0.8}}), "strategy", settings)
    check_extremes(build_space(declared, {"alpha": 0.5}), "strategy", settings)  # fixed: every trial has 0.5
    with pytest.raises(ConfigError, match=r"starts from \(fixed in tune.params: alpha = 0.95\) are invalid"):
        check_extremes(build_space(declared, {"alpha": 0.95}), "strategy", settings)


def test_list_choices_may_be_written_as_the_labels_the_tables_print() -> None:
    """QA: the table prints `one of 32x32x32, 48x48x48` but `choices: ["32x32x32"]` was refused."""
    declared = engine_parameters()
    (narrowed,) = [
        s for s in build_space(declared, {"patch_size": {"choices": ["32x32x32"]}}) if s.param.name == "patch_size"
    ]
    assert narrowed.param.choices == [[32, 32, 32]] and narrowed.scope == "one of 32x32x32"
    (fixed,) = [s for s in build_space(declared, {"patch_size": "32x32x32"}) if s.param.name == "patch_size"]
    assert fixed.fixed == [32, 32, 32]
    with pytest.raises(ConfigError, match=r"choices \['31x31x31'\] are not among the declared"):
        build_space(declared, {"patch_size": {"choices": ["31x31x31"]}})
