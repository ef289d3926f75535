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


@pytest.fixture
def small_unet():
    """``small_unet()``: a seeded small MONAI DynUNet with instance norms (a new one at each call)."""
    import torch
    from monai.networks.nets import DynUNet

    def make() -> torch.nn.Module:
        torch.manual_seed(0)
        return DynUNet(3, 1, 3, [3, 3, 3], [1, 2, 2], [2, 2], filters=[4, 8, 16], norm_name="instance")

    return make
