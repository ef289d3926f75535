"""Fixtures for the data tests: a synthetic task to break in specific ways."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_seg.config import DataSettings

TASK = "Task99_Synthetic"


@pytest.fixture
def task(synthetic_root: Path) -> Path:
    """The folder of the 6-case synthetic task inside ``synthetic_root``."""
    return synthetic_root / TASK


@pytest.fixture
def settings(synthetic_root: Path):
    """``settings(**overrides)``: DataSettings for the synthetic task."""

    def make(**overrides) -> DataSettings:
        return DataSettings(**{"dataset": TASK, "data_root": synthetic_root, **overrides})

    return make
