"""Reliability fixtures: a registry with records to attack, and the records the registry tests use."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

WRITER_SCRIPT = Path(__file__).parents[1] / "registry" / "registry_writer.py"


def _load_sample_record() -> Callable:
    spec = importlib.util.spec_from_file_location("automl_seg_reliability_writer", WRITER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.sample_record


sample_record = _load_sample_record()


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "weights.pt"
    path.write_bytes(b"weights-" * 1000)
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the registry holding someone else's files (an attack must leave them alone)."""
    folder = tmp_path / "elsewhere"
    (folder / "files").mkdir(parents=True)
    (folder / "precious.txt").write_text("not the registry's")
    (folder / "files" / "notes.txt").write_text("not the registry's either")
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, bytes]]:
    """Every file under a folder (relative path -> bytes), to show an attack changed nothing there."""
    return _snapshot


@pytest.fixture(name="sample_record")
def sample_record_fixture() -> Callable:
    return sample_record
