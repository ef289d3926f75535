"""The layer contracts (import-linter, pyproject.toml) hold, and name every private module."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import automl_seg

ROOT = Path(__file__).parents[2]
PUBLIC = {"automl_seg.api", "automl_seg.hookspecs", "automl_seg.interfaces", "automl_seg.errors"}


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_import_linter_contracts_are_kept():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "examples" / "automl-seg-random-search"), *sys.path]),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


def test_plugin_contract_forbids_every_private_module():
    """A module added to automl_seg is private until api.py exposes what plugins need of it."""
    plugins_contract = next(c for c in _contracts() if c["source_modules"][0] == "automl_seg_dints")
    modules = {f"automl_seg.{m.name}" for m in pkgutil.iter_modules(automl_seg.__path__)}
    assert modules - PUBLIC == set(plugins_contract["forbidden_modules"])
