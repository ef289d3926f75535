"""Fixtures shared by every test module: tiny synthetic MSD tasks, temporary registries, seeds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automl_seg.data.synthetic import make_synthetic_msd

REAL_DATA_ROOT = Path(os.environ.get("AUTOML_SEG_DATA", Path(__file__).parents[2] / "shared" / "data"))


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    """A data root holding ``Task99_Synthetic``: 6 cases of about 24^3 voxels, labels {0,1,2}."""
    make_synthetic_msd(tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's real registry or cache from a test."""
    monkeypatch.setenv("AUTOML_SEG_REGISTRY", str(tmp_path / "default-registry"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def real_data_root() -> Path:
    """The real Hippocampus data root; tests using it are skipped where it is absent."""
    if not (REAL_DATA_ROOT / "Task04_Hippocampus" / "dataset.json").is_file():
        pytest.skip(f"real Task04_Hippocampus not found under {REAL_DATA_ROOT} (set AUTOML_SEG_DATA)")
    return REAL_DATA_ROOT


@pytest.fixture
def cli():
    """Run the real ``automl-seg`` CLI in a subprocess: ``cli("data", "check", ...)``."""
    import subprocess
    import sys

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "automl_seg.cli.main", *map(str, args)],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )

    return run
