"""The minimal plugin of docs/writing-plugins.md, extracted, pip-installed and run: it must stay true."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automl_seg.interfaces import SearchSpace, SearchStrategy
from automl_seg.plugins import load_plugins
from automl_seg.testing import SearchSpaceContract, SearchStrategyContract
from automl_seg.testing.fixtures import install_plugin, plugin_env

DOC = Path(__file__).parents[3] / "docs" / "writing-plugins.md"
BLOCK = re.compile(r"<!-- minimal-plugin: (?P<file>\S+) -->\n```\w+\n(?P<code>.*?)```", re.S)


def doc_files() -> dict[str, str]:
    """File name -> content of every block marked ``<!-- minimal-plugin: NAME -->`` in the docs."""
    return {m["file"]: m["code"] for m in BLOCK.finditer(DOC.read_text())}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The docs' plugin, built from the docs' own pyproject.toml, installed into a private folder
    that is put on sys.path for this module (and PYTHONPATH for its CLI runs)."""
    project = tmp_path_factory.mktemp("tinyunet-project")
    for name, code in doc_files().items():
        (project / name).write_text(code)
    target = install_plugin(project, tmp_path_factory.mktemp("tinyunet-site"))
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(target))
        yield target
    sys.modules.pop("automl_seg_tinyunet", None)


def test_docs_hold_a_minimal_plugin_under_40_lines():
    files = doc_files()
    assert set(files) == {"automl_seg_tinyunet.py", "pyproject.toml"}
    assert len(files["automl_seg_tinyunet.py"].splitlines()) < 40
    assert 'tinyunet = "automl_seg_tinyunet"' in files["pyproject.toml"]


def test_installed_docs_plugin_loads_through_its_entry_point(site: Path):
    host = load_plugins(disabled=set())
    info = host.plugins["tinyunet"]
    assert info.ok, info.errors
    assert info.version == "0.1.0"
    assert info.registered == {"space": ["tinyunet"], "strategy": ["tinyunet"]}


class TestDocsPluginSpace(SearchSpaceContract):
    @pytest.fixture
    def space(self, site: Path) -> SearchSpace:
        return load_plugins(disabled=set()).space("tinyunet")


class TestDocsPluginStrategy(SearchStrategyContract):
    @pytest.fixture
    def strategy(self, site: Path) -> SearchStrategy:
        return load_plugins(disabled=set()).strategy("tinyunet")


def test_docs_plugin_passes_verify_and_searches_through_the_cli(site: Path, cli, synthetic_root: Path, tmp_path: Path):
    env = {**plugin_env(site), "AUTOML_SEG_DISABLE_PLUGINS": "dints"}
    listing = cli("plugins", "list", "--verify", "--json", env=env)
    rows: dict[str, Any] = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["tinyunet"]["verify"]["ok"], rows["tinyunet"]["verify"]
    assert "Traceback" not in listing.stderr

    config = tmp_path / "tiny.toml"
    config.write_text("[train]\niterations = 2\nval_cases = 1\n")
    result = cli(
        "search", "--strategy", "tinyunet", "--dataset", "Task99_Synthetic", "--data-root", synthetic_root,
        "--registry", tmp_path / "registry", "--config", config, "--train-epochs", "1",
        "--patch-size", "16x16x16", "--workdir", tmp_path / "work", "--no-progress", "--json",
        env=plugin_env(site),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["architecture"] == "tinyunet-Task99_Synthetic:1"
    assert summary["trained"] is not None
