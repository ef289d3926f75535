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
    """Run the real ``automl-seg`` CLI in a subprocess: ``cli("data", "check", ...)``; fails the test on
    the CLI's "internal error" line (an exception nobody turned into a clear message)."""
    import subprocess
    import sys

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        full_env = {**os.environ, **(env or {})}
        result = subprocess.run(
            [sys.executable, "-m", "automl_seg.cli.main", *map(str, args)],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
        )
        # every failure a test provokes is bad input: it must get its own message, never the catch-all
        assert "error: internal error:" not in result.stderr, result.stderr
        return result

    return run


POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url():
    """A fresh, uniquely named PostgreSQL database on 127.0.0.1:5432; yields its URL, drops it afterwards.

    Skips (with the reason) where no server answers, except when CI=true: there it fails loudly.
    """
    import shutil
    import subprocess
    import uuid

    def unavailable(reason: str) -> None:
        message = f"PostgreSQL on 127.0.0.1:5432 unavailable: {reason}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (CI=true requires it)")
        pytest.skip(message)

    if shutil.which("pg_isready"):
        probe = subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "3"], capture_output=True, text=True
        )
        if probe.returncode != 0:
            unavailable((probe.stdout or probe.stderr).strip() or f"pg_isready exit {probe.returncode}")
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # no driver, no server, no trust auth: all mean "cannot test here"
        unavailable(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    database = f"automl_seg_test_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _no_registry_index_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never write test records into a team's server index named by the user's environment."""
    monkeypatch.delenv("AUTOML_SEG_REGISTRY_INDEX", raising=False)
