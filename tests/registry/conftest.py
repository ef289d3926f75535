"""Registry test fixtures: a registry on each index backend and the out-of-process writer."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

WRITER_SCRIPT = Path(__file__).with_name("registry_writer.py")


def _load_writer():
    spec = importlib.util.spec_from_file_location("automl_seg_registry_test_writer", WRITER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


writer = _load_writer()


@pytest.fixture
def sample_record():
    """``sample_record(name=..., seed=..., dice=..., **field_updates)`` -> an unregistered record."""
    return writer.sample_record


@pytest.fixture(params=["sqlite", "postgres"])
def index_url(request: pytest.FixtureRequest) -> str | None:
    """None (the embedded SQLite index) or a fresh PostgreSQL database URL."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def registry(registry_dir: Path, index_url: str | None) -> Iterator:
    from automl_seg_registry import Registry

    reg = Registry.open(registry_dir, index_url)
    yield reg
    reg.close()


@pytest.fixture
def sqlite_registry(registry_dir: Path) -> Iterator:
    from automl_seg_registry import Registry

    reg = Registry.open(registry_dir)
    yield reg
    reg.close()


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "weights.pt"
    path.write_bytes(b"weights-" * 1000)
    return path
