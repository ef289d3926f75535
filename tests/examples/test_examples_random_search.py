"""CI for the example third-party plugin: pip-install it, see it in `plugins list`, search with it,
and run its own tests (which use the conformance kit).

It is installed into a temporary folder put on PYTHONPATH for the subprocesses only, not into the
running environment: several test runs (and people) share that environment, an editable install
would make `random` appear in their `plugins list` mid-run, and a killed run could not uninstall it.
Entry points are found on PYTHONPATH exactly as in site-packages, so this is the same discovery path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automl_seg.plugins import load_plugins
from automl_seg.testing.fixtures import install_plugin, plugin_env

EXAMPLE = Path(__file__).parents[2] / "examples" / "automl-seg-random-search"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugin(EXAMPLE, tmp_path_factory.mktemp("random-search-site"))


def test_installed_example_shows_in_plugins_list(site: Path, cli):
    result = cli("plugins", "list", "--json", env=plugin_env(site))
    assert "Traceback" not in result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["random"]["ok"], rows["random"]["errors"]
    assert rows["random"]["version"] == "0.1.0"
    assert rows["random"]["registered"] == {"strategy": ["random"]}
    assert rows["random"]["hooks"] == ["register_search_strategies"]


def test_example_is_not_installed_in_the_environment():
    assert "random" not in load_plugins().plugins


def test_search_with_the_random_strategy_on_synthetic_data(site: Path, cli, synthetic_root: Path, tmp_path: Path):
    config = tmp_path / "tiny.toml"
    config.write_text(
        "[strategy]\ntrials = 2\niterations = 1\nbatch_size = 1\n\n[train]\niterations = 2\nval_cases = 1\n"
    )
    result = cli(
        "search", "--strategy", "random", "--dataset", "Task99_Synthetic", "--data-root", synthetic_root,
        "--registry", tmp_path / "registry", "--config", config, "--set", "epochs=1", "--set", "memory_budget=0.6",
        "--train-epochs", "1", "--patch-size", "16x16x16", "--workdir", tmp_path / "work", "--no-progress", "--json",
        env=plugin_env(site),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["architecture"] == "random-Task99_Synthetic:1"
    assert summary["trained"] is not None
    shown = cli("registry", "show", "random-Task99_Synthetic:1", "--json", "--registry", tmp_path / "registry")
    assert shown.returncode == 0, shown.stderr
    memory = json.loads(shown.stdout)["metrics"]["memory"]  # the budget the strategy promised to respect
    assert memory["estimated"] <= memory["requested"] == 0.6


def test_example_own_tests_pass(site: Path, tmp_path: Path):
    """The example's tests (the conformance kit on `random`) run against the installed copy."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(EXAMPLE),
         "--basetemp", str(tmp_path / "pytest"), str(EXAMPLE / "tests")],
        capture_output=True, text=True, env={**os.environ, **plugin_env(site)}, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout
