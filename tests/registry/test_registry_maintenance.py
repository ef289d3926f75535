"""Checking a registry folder against its index: verify, cleanup, unindexed, reindex (``maintenance``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from automl_seg_registry import Problem, Registry


def test_leftovers_of_interrupted_writes_are_swept(sqlite_registry: Registry, sample_record, weights: Path) -> None:
    stored = sqlite_registry.register(sample_record("a"), {"weights": (weights, "weights")})
    orphan_record = sqlite_registry.root / "records" / "a" / ".pending-7"  # killed before its index commit
    orphan_record.mkdir(parents=True)
    (orphan_record / "record.json").write_text("{}")
    stray_file = sqlite_registry.record_dir(stored.ref) / "files" / "onnx.onnx"
    stray_file.write_bytes(b"half")
    dead_staging = sqlite_registry.root / "tmp" / "add-otherhost_1_deadbeef"
    dead_staging.mkdir()
    os.utime(dead_staging, (0, 0))  # a foreign host's staging dir counts as dead once it is a day old
    assert sqlite_registry.verify() == []
    assert not orphan_record.exists() and not stray_file.exists() and not dead_staging.exists()
    assert sqlite_registry.artifact_path(stored.ref, "weights").is_file()


def test_lost_index_loses_nothing_and_reindex_recovers(registry_dir: Path, sample_record, weights: Path) -> None:
    with Registry.open(registry_dir) as registry:
        first = registry.register(sample_record("a"), {"weights": (weights, "weights")})
        registry.register(sample_record("a", seed=1))
    (registry_dir / "index.sqlite").unlink()  # the index is lost (or another one is configured)
    with Registry.open(registry_dir) as registry:
        problems = registry.verify()
        assert sorted((p.ref, p.kind) for p in problems) == [("a:1", "unindexed"), ("a:2", "unindexed")]
        assert (registry_dir / "records" / "a" / "1" / "files").is_dir()  # reported, not swept
        third = registry.register(sample_record("a", seed=2))
        assert third.version == 3  # above the folders on disk: nothing overwritten
        assert sorted(registry.reindex().added) == ["a:1", "a:2"]
        assert registry.verify() == []
        assert registry.artifact_path(first.ref, "weights").read_bytes() == weights.read_bytes()
        assert registry.register(sample_record("a", seed=3)).version == 4


def test_a_damaged_mirror_is_rewritten_from_the_index_and_reported(
    registry: Registry, sample_record, weights: Path
) -> None:
    stored = registry.register(sample_record("a"), {"weights": (weights, "weights")})
    mirror = registry.record_dir(stored.ref) / "record.json"
    mirror.write_text(json.dumps(json.loads(mirror.read_text()) | {"seed": 99, "artifacts": []}))
    problems = registry.verify()
    assert problems == [Problem("a:1", None, "mirror-rewritten", mirror)]
    assert "record a:1 had a record.json that differed from the index" in str(problems[0])
    assert json.loads(mirror.read_text()) == stored.model_dump(mode="json")  # the index is authoritative
    assert registry.verify() == []  # repaired: a second run is clean


@pytest.mark.parametrize("damage", ["delete", "garble"])
def test_a_missing_or_unreadable_mirror_is_restored_and_reported(sqlite_registry: Registry, sample_record, damage):
    stored = sqlite_registry.register(sample_record("a"))
    mirror = sqlite_registry.record_dir(stored.ref) / "record.json"
    if damage == "delete":
        mirror.unlink()
    else:
        mirror.write_text("{not json")
    assert [p.kind for p in sqlite_registry.verify()] == ["mirror-rewritten"]
    assert json.loads(mirror.read_text()) == stored.model_dump(mode="json")


def test_a_record_folder_that_is_gone_reports_its_artifacts_not_its_mirror(
    sqlite_registry: Registry, sample_record, weights: Path
) -> None:
    stored = sqlite_registry.register(sample_record("a"), {"weights": (weights, "weights")})
    folder = sqlite_registry.record_dir(stored.ref)
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    folder.rmdir()
    assert [(p.artifact, p.kind) for p in sqlite_registry.verify()] == [("weights", "missing")]
    assert not folder.exists()  # nothing recreated: there is nothing to mirror into


def test_cleanup_and_unindexed_on_their_own(sqlite_registry: Registry, sample_record) -> None:
    stored = sqlite_registry.register(sample_record("a"))
    orphan = sqlite_registry.root / "records" / "a" / ".pending-5"
    orphan.mkdir()
    assert sqlite_registry.cleanup() == [orphan]
    foreign = sqlite_registry.root / "records" / "b" / "3"
    foreign.mkdir(parents=True)
    assert sqlite_registry.unindexed() == [foreign]
    assert sqlite_registry.record_dir(stored.ref) not in sqlite_registry.unindexed()


def test_a_verify_between_an_attachs_index_writes_finds_nothing(
    sqlite_registry: Registry, sample_record, weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's verify may take the write lock whenever an attach releases it: the attach's
    row and its record.json mirror must never disagree at such a moment."""
    stored = sqlite_registry.register(sample_record("a"))
    export = tmp_path / "model.onnx"
    export.write_bytes(b"onnx")
    index = sqlite_registry.index
    write = index.write
    seen: list[list[Problem]] = []

    def write_then_verify(work):  # wraps Index.write
        result = write(work)
        with Registry.open(sqlite_registry.root) as other:
            seen.append(other.verify())
        return result

    monkeypatch.setattr(index, "write", write_then_verify)
    sqlite_registry.attach(stored.ref, "onnx", export, "export")
    assert seen and all(problems == [] for problems in seen)
