"""Fake installed plugin distributions, made real: a dist-info folder on sys.path with entry points."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


@pytest.fixture
def fake_dist(tmp_path: Path):
    """``fake_dist(name, source)`` installs module ``name`` as an ``automl_seg`` entry point.

    Returns the folder to put on ``PYTHONPATH`` (subprocess) or ``sys.path`` (in process)."""
    site = tmp_path / "site"
    site.mkdir()

    def make(name: str, source: str, version: str = "1.2.3") -> Path:
        (site / f"{name}.py").write_text(textwrap.dedent(source))
        dist = site / f"{name}-{version}.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (dist / "entry_points.txt").write_text(f"[automl_seg]\n{name} = {name}\n")
        return site

    return make
