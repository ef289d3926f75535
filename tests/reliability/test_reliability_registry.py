"""Attacks on a temporary registry folder: symbolic links, edited mirrors, a lost index, reused versions,
a read-only folder. The registry must never follow, delete or reuse what it does not own."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from automl_seg_registry import Registry

from automl_seg.errors import RegistryError

pytestmark = [pytest.mark.timeout(120), pytest.mark.cli_in_process]


@pytest.fixture
def reg(registry_dir: Path) -> Iterator[Registry]:
    with Registry.open(registry_dir) as registry:
        yield registry


def _kinds(problems) -> set[tuple[str, str]]:  # noqa: ANN001 - a list of Problem
    return {(p.ref, p.kind) for p in problems}


# ----------------------------------------------------------------------------- symbolic links


def test_a_symlinked_version_folder_is_reported_and_its_target_untouched(
    reg: Registry, sample_record, weights: Path, outside: Path, snapshot
) -> None:
    reg.register(sample_record("a"), {"weights": (weights, "weights")})
    second = reg.register(sample_record("a", seed=1), {"weights": (weights, "weights")})
    version_dir = reg.record_dir(second.ref)
    shutil.copy(version_dir / "files" / "weights.pt", outside / "files" / "weights.pt")  # the same bytes
    shutil.rmtree(version_dir)
    version_dir.symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    problems = reg.verify()
    assert ("a:2", "symlink") in _kinds(problems) and ("a:2", "unsafe") in _kinds(problems)
    assert snapshot(outside) == before  # nothing read as the registry's, nothing deleted
    with pytest.raises(RegistryError, match="symbolic link"):
        reg.artifact_path("a:2", "weights")
    with pytest.raises(RegistryError, match="symbolic link"):
        reg.attach("a:2", "onnx", weights, "export")  # nothing written through the link either
    assert snapshot(outside) == before
    assert reg.artifact_path("a:1", "weights").is_file()  # the other record is fine


def test_a_symlinked_artifact_file_is_refused(reg: Registry, sample_record, weights: Path, outside: Path) -> None:
    stored = reg.register(sample_record("a"), {"weights": (weights, "weights")})
    target = outside / "files" / "weights.pt"
    shutil.copy(weights, target)
    stored_file = reg.record_dir(stored.ref) / "files" / "weights.pt"
    stored_file.unlink()
    stored_file.symlink_to(target)
    assert {("a:1", "symlink"), ("a:1", "unsafe")} <= _kinds(reg.verify())
    with pytest.raises(RegistryError, match="symbolic link"):
        reg.artifact_path(stored.ref, "weights")
    assert target.read_bytes() == weights.read_bytes()


def test_a_symlinked_files_folder_keeps_its_targets_files(
    reg: Registry, sample_record, weights: Path, outside: Path, snapshot
) -> None:
    """Unlisted files under files/ are swept; through a link they would be someone else's."""
    stored = reg.register(sample_record("a"), {"weights": (weights, "weights")})
    files = reg.record_dir(stored.ref) / "files"
    shutil.copy(files / "weights.pt", outside / "files" / "weights.pt")
    shutil.rmtree(files)
    files.symlink_to(outside / "files", target_is_directory=True)
    before = snapshot(outside)
    assert ("a:1", "symlink") in _kinds(reg.verify())
    assert snapshot(outside) == before


def test_a_symlinked_record_name_is_neither_swept_nor_reindexed(
    reg: Registry, sample_record, weights: Path, tmp_path: Path, snapshot
) -> None:
    with Registry.open(tmp_path / "other") as other:  # a genuine record folder, elsewhere
        other.register(sample_record("b"), {"weights": (weights, "weights")})
    (tmp_path / "other" / "records" / "b" / ".pending-9").mkdir()
    before = snapshot(tmp_path / "other" / "records")
    (reg.root / "records" / "b").symlink_to(tmp_path / "other" / "records" / "b", target_is_directory=True)
    assert ("b", "symlink") in _kinds(reg.verify())
    assert reg.reindex().added == [] and reg.list() == []
    assert snapshot(tmp_path / "other" / "records") == before
    assert (tmp_path / "other" / "records" / "b" / ".pending-9").is_dir()


def test_a_symlinked_mirror_is_not_written_through(reg: Registry, sample_record, outside: Path) -> None:
    stored = reg.register(sample_record("a"))
    mirror = reg.record_dir(stored.ref) / "record.json"
    mirror.unlink()
    mirror.symlink_to(outside / "precious.txt")
    assert ("a:1", "symlink") in _kinds(reg.verify())
    assert (outside / "precious.txt").read_text() == "not the registry's"


def test_a_symlinked_records_folder_is_refused(registry_dir: Path, outside: Path) -> None:
    registry_dir.mkdir()
    (registry_dir / "records").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RegistryError, match="symbolic link"):
        Registry.open(registry_dir)


# ----------------------------------------------------------------------------- staging: only what it wrote


def test_staging_entries_without_the_marker_are_left_alone(registry_dir: Path, outside: Path, snapshot) -> None:
    Registry.open(registry_dir).close()
    tmp = registry_dir / "tmp"
    planted = tmp / "add-otherhost_1_feedface"  # named like a dead writer's, but not written by the registry
    planted.mkdir()
    (planted / "keep.txt").write_text("mine")
    link = tmp / "add-otherhost_2_feedface"
    link.symlink_to(outside, target_is_directory=True)
    empty = tmp / "add-otherhost_3_feedface"
    empty.mkdir()
    for path in (planted, link, empty):
        os.utime(path, (0, 0), follow_symlinks=False)  # a day old: counts as a dead foreign writer's
    before = snapshot(outside)
    Registry.open(registry_dir).close()
    assert (planted / "keep.txt").read_text() == "mine" and link.is_symlink() and snapshot(outside) == before
    assert not empty.exists()  # an empty folder holds nothing to lose


def test_a_marked_staging_folder_of_a_dead_writer_is_swept(registry_dir: Path) -> None:
    from automl_seg_registry import files

    Registry.open(registry_dir).close()
    staging = files.new_staging_dir(registry_dir / "tmp", "add")
    (staging / "half.pt").write_bytes(b"half")
    dead = staging.with_name("add-otherhost_1_" + "0" * 12)
    staging.rename(dead)
    os.utime(dead, (0, 0))
    Registry.open(registry_dir).close()
    assert not dead.exists()


def test_a_pending_folder_without_the_marker_is_quarantined_not_deleted(reg: Registry, sample_record) -> None:
    reg.register(sample_record("a"))
    planted = reg.root / "records" / "a" / ".pending-7"
    planted.mkdir()
    (planted / "keep.txt").write_text("mine")
    assert reg.verify() == []
    kept = list((reg.root / "quarantine").rglob("keep.txt"))
    assert not planted.exists() and [p.read_text() for p in kept] == ["mine"]


def test_an_unlisted_file_in_a_record_is_quarantined_not_deleted(reg: Registry, sample_record, weights) -> None:
    stored = reg.register(sample_record("a"), {"weights": (weights, "weights")})
    stray = reg.record_dir(stored.ref) / "files" / "notes.txt"
    stray.write_text("mine")
    assert reg.verify() == []
    assert not stray.exists() and [p.read_text() for p in (reg.root / "quarantine").rglob("notes.txt")] == ["mine"]


# ----------------------------------------------------------------------------- edited mirror + lost index


def test_reindex_refuses_an_edited_mirror_and_goes_on(
    registry_dir: Path, sample_record, weights: Path, outside: Path
) -> None:
    with Registry.open(registry_dir) as reg:
        edited = reg.register(sample_record("a"), {"weights": (weights, "weights")})
        reg.register(sample_record("b"), {"weights": (weights, "weights")})
    victim = outside / "precious.txt"
    mirror = registry_dir / "records" / "a" / "1" / "record.json"
    payload = json.loads(mirror.read_text())
    payload["artifacts"][0].update(
        path="../../../../elsewhere/precious.txt",
        size=victim.stat().st_size,
        sha256=hashlib.sha256(victim.read_bytes()).hexdigest(),
    )
    mirror.write_text(json.dumps(payload))
    (registry_dir / "index.sqlite").unlink()
    with Registry.open(registry_dir) as reg:
        result = reg.reindex()
        assert result.added == ["b:1"]
        assert [(p.ref, p.kind) for p in result.refused] == [("a:1", "not-reindexed")]
        assert "outside its record" in result.refused[0].detail
        moved = result.refused[0].path
        assert (moved / "files" / "weights.pt").read_bytes() == weights.read_bytes()  # quarantined, not deleted
        assert reg.verify() == [] and victim.read_text() == "not the registry's"
        assert reg.register(sample_record("a")).version == 2  # the refused version's number is not reused
    assert edited.version == 1


def test_reindex_refuses_a_mirror_whose_checksum_does_not_match(
    registry_dir: Path, sample_record, weights: Path
) -> None:
    with Registry.open(registry_dir) as reg:
        stored = reg.register(sample_record("a"), {"weights": (weights, "weights")})
        (reg.record_dir(stored.ref) / "files" / "weights.pt").write_bytes(b"W" * weights.stat().st_size)
    (registry_dir / "index.sqlite").unlink()
    with Registry.open(registry_dir) as reg:
        result = reg.reindex()
    assert result.added == [] and "altered" in result.refused[0].detail


def test_an_escaping_path_in_the_index_is_reported_and_the_sweep_goes_on(
    reg: Registry, sample_record, weights: Path
) -> None:
    from automl_seg_registry.index import records
    from sqlalchemy import update

    bad = reg.register(sample_record("a"), {"weights": (weights, "weights")})
    good = reg.register(sample_record("b"), {"weights": (weights, "weights")})
    payload = bad.model_dump(mode="json")
    payload["artifacts"][0]["path"] = "../../../../etc/hostname"
    reg.index.write(
        lambda conn: conn.execute(update(records).where(records.c.name == "a").values(payload=json.dumps(payload)))
    )
    (reg.record_dir(good.ref) / "files" / "weights.pt").write_bytes(b"x")
    assert {("a:1", "unsafe"), ("b:1", "altered")} <= _kinds(reg.verify())  # b checked after a's refusal
    assert (reg.root / "records" / "a" / "1" / "files" / "weights.pt").is_file()  # not swept as a leftover


def test_verify_reindex_cli_reports_a_refused_record(cli, registry_dir: Path, sample_record, weights: Path) -> None:
    with Registry.open(registry_dir) as reg:
        reg.register(sample_record("a"), {"weights": (weights, "weights")})
    mirror = registry_dir / "records" / "a" / "1" / "record.json"
    mirror.write_text(mirror.read_text().replace('"files/weights.pt"', '"../../../x"'))
    (registry_dir / "index.sqlite").unlink()
    result = cli("registry", "verify", "--registry", registry_dir, "--reindex", env={"COLUMNS": "300"})
    assert result.returncode == 1 and "not-reindexed" in result.stderr and "a:1" in result.stderr


# ----------------------------------------------------------------------------- versions are never reused


def test_a_removed_version_is_not_reused_after_the_index_is_lost(
    registry_dir: Path, sample_record, weights: Path
) -> None:
    with Registry.open(registry_dir) as reg:
        reg.register(sample_record("a"), {"weights": (weights, "weights")})
        reg.register(sample_record("a", seed=1), {"weights": (weights, "weights")})
        reg.remove("a:2")
    (registry_dir / "index.sqlite").unlink()
    with Registry.open(registry_dir) as reg:
        assert reg.register(sample_record("a", seed=2)).version == 3


def test_the_last_version_of_a_name_removed_keeps_its_mark(registry_dir: Path, sample_record) -> None:
    with Registry.open(registry_dir) as reg:
        reg.register(sample_record("a"))
        reg.remove("a:1")
        reg.verify()  # sweeps empty name folders: the mark keeps this one
    (registry_dir / "index.sqlite").unlink()
    with Registry.open(registry_dir) as reg:
        assert reg.register(sample_record("a")).version == 2


# ----------------------------------------------------------------------------- lost index, read-only folder


def test_list_with_a_lost_index_says_how_to_recover(cli, registry_dir: Path, sample_record) -> None:
    with Registry.open(registry_dir) as reg:
        reg.register(sample_record("a"))
        reg.register(sample_record("b"))
    (registry_dir / "index.sqlite").unlink()
    result = cli("registry", "list", "--registry", registry_dir, env={"COLUMNS": "300"})
    assert result.returncode == 0
    assert "2 record folder(s)" in result.stderr and "registry verify --reindex" in result.stderr


@pytest.fixture
def shared_registry(registry_dir: Path, sample_record, weights: Path) -> Iterator[Path]:
    """A registry whose folder, index and files are read-only (another user's, a mounted share)."""
    with Registry.open(registry_dir) as reg:
        reg.register(sample_record("a"), {"weights": (weights, "weights")}, aliases=["best"])
    everything = [registry_dir, *registry_dir.rglob("*")]
    for path in everything:
        path.chmod(0o555 if path.is_dir() else 0o444)
    yield registry_dir
    for path in everything:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _without_root_file_powers() -> None:
    """In the child before exec: drop the capabilities that let root ignore file permissions (from the
    bounding set, so the exec'd CLI cannot regain them), as a user without write access would be."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _without_write_access(*args: str) -> subprocess.CompletedProcess:
    """The CLI in a process that the registry's permissions really apply to (root included)."""
    if os.geteuid() == 0:
        try:
            subprocess.run(["true"], preexec_fn=_without_root_file_powers, check=True)  # noqa: PLW1509
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"cannot drop root's file capabilities here ({exc}): file permissions do not bind root")
    return subprocess.run(
        [sys.executable, "-m", "automl_seg.cli.main", *args],
        capture_output=True,
        text=True,
        preexec_fn=_without_root_file_powers if os.geteuid() == 0 else None,  # noqa: PLW1509 - no threads here
        timeout=120,
    )


def test_a_read_only_registry_lists_and_shows(shared_registry: Path) -> None:
    listed = _without_write_access("registry", "list", "--registry", str(shared_registry), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["name"] for r in json.loads(listed.stdout)] == ["a"]
    shown = _without_write_access("registry", "show", "a@best", "--registry", str(shared_registry))
    assert shown.returncode == 0 and "a:1" in shown.stdout, shown.stderr
    card = _without_write_access("registry", "card", "a:1", "--registry", str(shared_registry))
    assert card.returncode == 0 and "a:1" in card.stdout, card.stderr
    for change in (["tag", "a:1", "mine"], ["verify"], ["rm", "a:1", "--yes"]):
        refused = _without_write_access("registry", *change, "--registry", str(shared_registry))
        assert refused.returncode == 2 and "read-only" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and "internal error" not in refused.stderr
    assert sorted(p.name for p in shared_registry.iterdir()) == ["index.sqlite", "records", "tmp"]
