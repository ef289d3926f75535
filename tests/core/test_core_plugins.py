"""The plugin host: loading, validation, collisions, API versions, observers."""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace

import pytest

from automl_seg.errors import PluginError
from automl_seg.hookspecs import hookimpl
from automl_seg.plugins import load_plugins

GOOD_STRATEGY = """
from automl_seg.hookspecs import hookimpl

class Strategy:
    name = "{name}"
    space = "fixed"
    def settings(self, budget, overrides): ...
    def search(self, ctx): ...

@hookimpl
def register_search_strategies(register):
    register(Strategy())
"""


def _strategy(name: str) -> object:
    return SimpleNamespace(name=name, space="fixed", settings=lambda b, o: None, search=lambda ctx: None)


class _Plugin:
    def __init__(self, *strategies: object) -> None:
        self.strategies = strategies

    @hookimpl
    def register_search_strategies(self, register):
        for s in self.strategies:
            register(s)


def test_builtin_plugins_load_through_entry_points():
    host = load_plugins()
    assert {"fixed", "dints", "export"} <= set(host.plugins)
    assert host.problems == []


def test_extra_plugin_registers_a_strategy():
    host = load_plugins(extra=[("mine", _Plugin(_strategy("mine")))], use_entry_points=False)
    assert host.strategy("mine").name == "mine"
    assert host.plugins["mine"].registered == {"strategy": ["mine"]}
    assert host.plugins["mine"].hooks == ["register_search_strategies"]


def test_unknown_strategy_lists_installed_ones():
    host = load_plugins(extra=[("mine", _Plugin(_strategy("mine")))], use_entry_points=False)
    with pytest.raises(PluginError, match="unknown strategy 'nope'; installed: mine"):
        host.strategy("nope")


def test_duplicate_names_are_rejected_and_reported_with_both_plugins():
    host = load_plugins(
        extra=[("a", _Plugin(_strategy("same"))), ("b", _Plugin(_strategy("same"), _strategy("other")))],
        use_entry_points=False,
    )
    assert "already registered by plugin 'a'" in host.plugins["b"].errors[0]
    with pytest.raises(PluginError, match=r"registered by several plugins \(a and b\)"):
        host.strategy("same")
    # the rest of plugin b still works
    assert host.strategy("other").name == "other"


def test_non_conforming_object_is_reported():
    bad = SimpleNamespace(name="bad", space="fixed")  # no settings/search
    host = load_plugins(extra=[("p", _Plugin(bad))], use_entry_points=False)
    assert "does not follow the SearchStrategy interface" in host.plugins["p"].errors[0]
    assert "bad" not in host.registered["strategy"]


def test_invalid_name_is_reported():
    host = load_plugins(extra=[("p", _Plugin(_strategy("Bad Name")))], use_entry_points=False)
    assert "invalid name" in host.plugins["p"].errors[0]


def test_incompatible_api_version_is_refused():
    plugin = _Plugin(_strategy("future"))
    plugin.AUTOML_SEG_API = 99
    host = load_plugins(extra=[("future", plugin)], use_entry_points=False)
    assert "plugin API 99" in host.plugins["future"].errors[0]
    assert "future" not in host.registered["strategy"]


def test_misspelled_hook_fails_check_pending():
    class Typo:
        @hookimpl
        def register_search_strategys(self, register):  # misspelled on purpose
            pass

    host = load_plugins(extra=[("typo", Typo())], use_entry_points=False)
    assert "invalid hooks" in host.plugins["typo"].errors[0]


def test_hook_that_raises_is_reported_and_others_survive():
    class Raises:
        @hookimpl
        def register_search_strategies(self, register):
            raise RuntimeError("boom")

    host = load_plugins(extra=[("raises", Raises()), ("ok", _Plugin(_strategy("ok")))], use_entry_points=False)
    assert host.plugins["raises"].errors == ["RuntimeError: boom"]
    assert host.strategy("ok").name == "ok"


def test_failing_observer_does_not_break_the_run(caplog):
    seen = []

    class Observer:
        @hookimpl
        def on_epoch_ended(self, run, phase, epoch, metrics):
            seen.append((phase, epoch, dict(metrics)))

    class Broken:
        @hookimpl
        def on_epoch_ended(self, run):
            raise ValueError("observer bug")

    host = load_plugins(extra=[("obs", Observer()), ("broken", Broken())], use_entry_points=False)
    host.notify("on_epoch_ended", run=None, phase="train", epoch=1, metrics={"loss": 0.5})
    assert seen == [("train", 1, {"loss": 0.5})]
    assert "observer bug" in caplog.text


def test_disabled_plugins_are_not_loaded(monkeypatch, caplog):
    monkeypatch.setenv("AUTOML_SEG_DISABLE_PLUGINS", "dints, export, dintz")
    host = load_plugins()
    assert "dints" not in host.plugins and "export" not in host.plugins
    assert "fixed" in host.plugins
    assert "AUTOML_SEG_DISABLE_PLUGINS names no installed plugin: dintz" in caplog.text  # a typo is said


def test_entry_point_plugin_raising_on_import(fake_dist, monkeypatch):
    site = fake_dist("broken_plugin", "raise ImportError('missing dependency xyz')")
    monkeypatch.syspath_prepend(str(site))
    host = load_plugins()
    info = host.plugins["broken_plugin"]
    assert info.version == "1.2.3"
    assert "failed to import broken_plugin: ImportError: missing dependency xyz" in info.errors[0]
    assert "fixed" in host.plugins and host.plugins["fixed"].ok


def test_cli_plugins_list_reports_broken_and_colliding_plugins(fake_dist, cli):
    site = fake_dist("broken_plugin", "raise ImportError('missing dependency xyz')")
    fake_dist("first_plugin", GOOD_STRATEGY.format(name="twin"))
    fake_dist("second_plugin", GOOD_STRATEGY.format(name="twin"))
    env = {"PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    result = cli("plugins", "list", "--json", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["first_plugin"]["registered"] == {"strategy": ["twin"]}
    assert "already registered by plugin 'first_plugin'" in rows["second_plugin"]["errors"][0]
    assert "missing dependency xyz" in rows["broken_plugin"]["errors"][0]
    assert "plugin 'broken_plugin': failed to import" in result.stderr
    assert rows["fixed"]["ok"]


def test_cli_plugins_list_table(cli):
    result = cli("plugins", "list")
    assert result.returncode == 0, result.stderr
    for name in ("fixed", "dints", "export"):
        assert name in result.stdout


def test_observer_can_stop_a_run_on_purpose():
    from automl_seg.errors import RunStopped

    class Pruner:
        @hookimpl
        def on_epoch_ended(self, epoch):
            if epoch >= 2:
                raise RunStopped("pruned at epoch 2")

    host = load_plugins(extra=[("pruner", Pruner())], use_entry_points=False)
    host.notify("on_epoch_ended", run=None, phase="train", epoch=1, metrics={})
    with pytest.raises(RunStopped, match="pruned"):
        host.notify("on_epoch_ended", run=None, phase="train", epoch=2, metrics={})


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    @hookimpl
    def on_run_started(self, run):
        self.calls.append(("started", {}))

    @hookimpl
    def on_run_ended(self, run, result):
        self.calls.append(("ended", dict(result)))


@pytest.mark.parametrize(
    ("error", "ended"),
    [
        (None, {"status": "finished", "trained": "m:2"}),
        (ValueError("boom\ndetails"), {"status": "failed", "error": "boom"}),
        (KeyboardInterrupt(), {"status": "interrupted", "error": "KeyboardInterrupt"}),
    ],
)
def test_observed_run_ends_once_with_its_status(error, ended):
    from contextlib import nullcontext

    from automl_seg.interfaces import RunInfo

    recorder = _Recorder()
    host = load_plugins(extra=[("recorder", recorder)], use_entry_points=False)
    with pytest.raises(type(error)) if error else nullcontext():
        with host.observed(RunInfo(run_id="r", kind="search")) as summary:
            summary["trained"] = "m:2"
            if error:
                raise error
    assert recorder.calls == [("started", {}), ("ended", ended)]


def test_observed_run_stopped_by_an_observer_says_so():
    from automl_seg.errors import RunStopped
    from automl_seg.interfaces import RunInfo

    recorder = _Recorder()
    host = load_plugins(extra=[("recorder", recorder)], use_entry_points=False)
    with pytest.raises(RunStopped), host.observed(RunInfo(run_id="r", kind="train")):
        raise RunStopped("pruned at epoch 3")
    assert recorder.calls[-1] == ("ended", {"status": "stopped", "error": "pruned at epoch 3"})


def test_entry_point_naming_a_class_gets_one_instance_per_host():
    first, second = load_plugins(), load_plugins()
    observer = first.pm.get_plugin("mlflow")
    assert type(observer).__name__ == "MlflowObserver" and first.plugins["mlflow"].ok
    assert observer is not second.pm.get_plugin("mlflow")
