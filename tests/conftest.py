"""Fixtures shared by every test module: tiny synthetic MSD tasks, temporary registries, seeds."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from automl_seg.data.synthetic import make_synthetic_msd

REAL_DATA_ROOT = Path(os.environ.get("AUTOML_SEG_DATA", Path(__file__).parents[2] / "shared" / "data"))


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    """A data root holding ``Task99_Synthetic``: 6 cases of about 24^3 voxels, labels {0,1,2}."""
    make_synthetic_msd(tmp_path / "data")
    return tmp_path / "data"


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
def cli(request: pytest.FixtureRequest):
    """Run the real ``automl-seg`` CLI: ``cli("data", "check", ...)`` gives a ``CompletedProcess``; fails
    the test on the CLI's "internal error" line (an exception nobody turned into a clear message).

    A subprocess by default (the console-script path; plugins found through an ``env`` PYTHONPATH;
    ``COLUMNS`` read at start); modules marked ``cli_in_process`` call the entry point in this process,
    which spares a Python and torch start per call in tests that make many."""
    if request.node.get_closest_marker("cli_in_process"):
        return request.getfixturevalue("_cli_in_process")
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
        return _no_catch_all(result)

    return run


def _no_catch_all(result):  # noqa: ANN001, ANN202 - a CompletedProcess either way
    # every failure a test provokes is bad input: it must get its own message, never the catch-all
    assert "error: internal error:" not in result.stderr, result.stderr
    return result


@pytest.fixture
def _cli_in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """``cli`` for modules marked ``cli_in_process``: the same contract through the CLI's entry point in
    this process, with the test's captured streams; the logging set-up each call makes is undone."""
    import logging
    import subprocess

    from automl_seg.cli.main import run as entry_point

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        capsys.readouterr()  # what the test printed before is not this call's output
        code = 0
        with monkeypatch.context() as patch:
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            try:
                entry_point([str(arg) for arg in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            finally:
                root.handlers[:] = handlers
                root.setLevel(level)
        out, err = capsys.readouterr()
        return _no_catch_all(subprocess.CompletedProcess(list(args), code, out, err))

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


def _assert_same_training(
    ours: torch.nn.Module,
    reference: torch.nn.Module,
    x: torch.Tensor,
    rtol: float = 1e-4,
    atol: float = 1e-6,
    output_atol: float = 1e-5,
) -> None:
    """``ours`` computes ``reference``'s function: same output on ``x`` (in the standard layout) and,
    after a square-mean loss, the same gradient for every parameter (matched by name)."""
    a, b = ours(x), reference(x)
    assert a.is_contiguous()
    torch.testing.assert_close(a, b, rtol=rtol, atol=output_atol)
    a.square().mean().backward()
    b.square().mean().backward()
    gradients = dict(reference.named_parameters())
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, gradients[name].grad, rtol=rtol, atol=atol, msg=name)


@pytest.fixture
def assert_same_training() -> Callable[..., None]:
    return _assert_same_training
