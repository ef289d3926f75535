"""Paths of a registry folder and the file moves inside it (``layout``), without an index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from automl_seg_registry.layout import Layout, check_artifact

from automl_seg.errors import RegistryError


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    made = Layout(tmp_path / "registry")
    made.create()
    return made


def _stored(layout: Layout, sample_record, source: Path, version: int = 1):
    """A record with one artifact, its files put where a committed version's are."""
    staging = layout.new_staging("add")
    artifact = layout.stage_file(staging, "weights", source, "weights")
    record = sample_record("a").model_copy(update={"version": version, "artifacts": [artifact]})
    layout.version_dir("a", version).parent.mkdir(parents=True, exist_ok=True)
    staging.rename(layout.version_dir("a", version))
    return record


def test_create_refuses_an_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RegistryError, match="cannot create registry folder"):
        Layout(blocker / "registry").create()


def test_stage_file_keeps_only_a_plain_suffix(layout: Layout, tmp_path: Path) -> None:
    staging = layout.new_staging("add")
    plain, odd = tmp_path / "w.pt", tmp_path / "w.p t"
    for source in (plain, odd):
        source.write_bytes(b"abc")
    assert layout.stage_file(staging, "weights", plain, "weights").path == "files/weights.pt"
    artifact = layout.stage_file(staging, "other", odd, "weights")
    assert (artifact.path, artifact.size) == ("files/other", 3)
    assert check_artifact(artifact, staging / artifact.path, full=True) is None


def test_versions_on_disk_count_pending_ones_and_version_dirs_do_not(layout: Layout) -> None:
    for folder in ("1", "10", "2", ".pending-11", "notes"):
        (layout.records / "a" / folder).mkdir(parents=True)
    assert sorted(layout.disk_versions("a")) == [1, 2, 10, 11]
    assert layout.disk_versions("missing") == []
    assert [d.name for d in layout.version_dirs()] == ["1", "2", "10"]


def test_record_dir_finishes_a_committed_pending_directory(layout: Layout, sample_record, weights: Path) -> None:
    record = _stored(layout, sample_record, weights)
    layout.version_dir("a", 1).rename(layout.pending_dir("a", 1))
    assert layout.record_dir(record) == layout.version_dir("a", 1) and layout.version_dir("a", 1).is_dir()
    assert layout.finish_pending("a", 1) == layout.version_dir("a", 1)  # nothing pending: a no-op


def test_artifact_file_stays_inside_its_record(layout: Layout, sample_record, weights: Path) -> None:
    record = _stored(layout, sample_record, weights)
    assert layout.artifact_file(record, record.artifacts[0]).read_bytes() == weights.read_bytes()
    escaping = record.artifacts[0].model_copy(update={"path": "../../elsewhere"})
    with pytest.raises(RegistryError, match="points outside its record"):
        layout.artifact_file(record, escaping)


def test_check_artifact_names_missing_and_altered_files(layout: Layout, sample_record, weights: Path) -> None:
    record = _stored(layout, sample_record, weights)
    artifact = record.artifacts[0]
    path = layout.artifact_file(record, artifact)
    path.write_bytes(bytes(reversed(path.read_bytes())))
    assert check_artifact(artifact, path, full=False) is None  # same size: only the sha256 tells
    assert check_artifact(artifact, path, full=True) == "altered"
    path.write_bytes(b"short")
    assert check_artifact(artifact, path, full=False) == "altered"
    path.unlink()
    assert check_artifact(artifact, path, full=False) == "missing"


def test_refresh_mirror_says_whether_it_rewrote(layout: Layout, sample_record, weights: Path) -> None:
    record = _stored(layout, sample_record, weights)
    mirror = layout.mirror_file(record)
    assert layout.refresh_mirror(record) is True  # staged without a record.json
    assert json.loads(mirror.read_text()) == record.model_dump(mode="json")
    assert layout.refresh_mirror(record) is False
    gone = record.model_copy(update={"version": 9})
    assert layout.refresh_mirror(gone) is False and not layout.version_dir("a", 9).exists()


def test_a_mirror_of_the_same_record_in_other_words_is_rewritten_but_not_a_difference(
    layout: Layout, sample_record, weights: Path
) -> None:
    """An older writer left out a defaulted field: the same record, so nothing to report (a schema upgrade
    must not make every record a verify problem); the file still takes today's form."""
    record = _stored(layout, sample_record, weights)
    mirror = layout.mirror_file(record)
    layout.refresh_mirror(record)
    older = {k: v for k, v in record.model_dump(mode="json").items() if k != "parent"}  # default None
    mirror.write_text(json.dumps(older))
    assert layout.refresh_mirror(record) is False
    assert json.loads(mirror.read_text()) == record.model_dump(mode="json")
    mirror.write_text(json.dumps({**older, "tags": ["edited"]}))
    assert layout.refresh_mirror(record) is True


def test_discard_removes_a_record_directory_and_tolerates_it_gone(layout: Layout, sample_record, weights: Path) -> None:
    _stored(layout, sample_record, weights)
    layout.discard(layout.version_dir("a", 1))
    assert not layout.version_dir("a", 1).exists() and list(layout.tmp.iterdir()) == []
    layout.discard(layout.version_dir("a", 1))
