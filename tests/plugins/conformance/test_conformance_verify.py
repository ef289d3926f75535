"""``automl_seg.verify`` and ``automl-seg plugins list --verify``: pass/fail per plugin, with reasons."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

from automl_seg.hookspecs import hookimpl
from automl_seg.plugins import load_plugins
from automl_seg.verify import verify_plugins

#: A space whose network forgets the background class: output channels != the plan's classes.
BAD_SPACE = """
from torch import nn
from automl_seg.hookspecs import hookimpl

AUTOML_SEG_API = 1

class OneShort:
    name, version = "oneshort", "1"
    def default_args(self, plan, budget):
        return {"in_channels": plan.in_channels, "classes": plan.num_classes - 1}
    def build_network(self, args, arch):
        return nn.Conv3d(args["in_channels"], args["classes"], 3, padding=1)

@hookimpl
def register_search_spaces(register):
    register(OneShort())
"""


def fake_dist(site: Path, name: str, source: str) -> None:
    """An installed distribution ``name`` whose module is an ``automl_seg`` entry point."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(source))
    dist = site / f"{name}-0.0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text(f"[automl_seg]\n{name} = {name}\n")


class _Strategy:
    name, space = "lost", "nowhere"

    def settings(self, budget, overrides):
        return dict(overrides)  # not a pydantic model, accepts anything

    def search(self, ctx):
        raise AssertionError("verify never searches")


class _RegistersStrategy:
    @hookimpl
    def register_search_strategies(self, register):
        register(_Strategy())


class _Raises:
    @hookimpl
    def register_exporters(self, register):
        raise RuntimeError("exporter hook exploded")


class _FromTheFuture(_RegistersStrategy):
    AUTOML_SEG_API = 3


def test_verify_reports_each_plugin_with_reasons():
    host = load_plugins(
        extra=[("lost", _RegistersStrategy()), ("raises", _Raises()), ("future", _FromTheFuture())],
        disabled={"dints", "export"},
    )
    results = {r.plugin: r for r in verify_plugins(host)}
    assert results["fixed"].ok, results["fixed"].failures
    assert not results["lost"].ok
    failures = "\n".join(results["lost"].failures)
    assert "must return a pydantic model" in failures
    assert "searches space 'nowhere', which no installed plugin provides" in failures
    assert results["raises"].failures == ["loads and registers: RuntimeError: exporter hook exploded"]
    assert "written for plugin API 3, this automl-seg provides API 2" in results["future"].failures[0]
    assert len(results["future"].checks) == 1  # nothing of it was registered, so nothing else to check


def test_cli_verify_flags_the_broken_plugin_and_passes_the_others(cli, tmp_path: Path):
    site = tmp_path / "site"
    fake_dist(site, "oneshort", BAD_SPACE)
    env = {"PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "AUTOML_SEG_DISABLE_PLUGINS": "dints"}
    result = cli("plugins", "list", "--verify", "--json", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["oneshort"]["ok"]  # it loads fine: only the conformance check catches it
    failed = [c for c in rows["oneshort"]["verify"]["checks"] if not c["ok"]]
    assert len(failed) == 1 and "network output shape (2, 2, 16, 16, 16)" in failed[0]["detail"]
    assert rows["fixed"]["verify"]["ok"] and rows["export"]["verify"]["ok"]
    assert "plugin 'oneshort' fails space 'oneshort'" in result.stderr
