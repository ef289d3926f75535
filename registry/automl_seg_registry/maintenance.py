"""Checking and repairing a registry folder against its index: verify, cleanup, unindexed, reindex.

The index is authoritative. What interrupted writes leave (staging directories, pending directories
whose commit never happened, files no index row lists) is garbage and is swept under the write
lock. A committed ``records/<name>/<version>/`` directory the index does not know belongs to a lost
or another index: it is reported, never deleted, and :func:`reindex` adds it back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection

from automl_seg.errors import RegistryError
from automl_seg_registry import files as fs
from automl_seg_registry import rows
from automl_seg_registry.index import Index
from automl_seg_registry.layout import FILES_DIR, PENDING_PREFIX, RECORD_FILE, Layout, check_artifact
from automl_seg_registry.schema import ArchitectureRecord, load_record

log = logging.getLogger(__name__)

ProblemKind = Literal["missing", "altered", "unreadable", "unindexed", "mirror-rewritten"]

_DESCRIPTIONS: dict[str, str] = {
    "mirror-rewritten": f"had a {RECORD_FILE} that differed from the index; it was rewritten from the index",
}


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong: an artifact that is missing or altered, an unreadable record,
    a record directory the index does not know, or a ``record.json`` mirror it had to rewrite."""

    ref: str
    artifact: str | None
    kind: ProblemKind
    path: Path

    def as_dict(self) -> dict[str, str | None]:
        return {"ref": self.ref, "artifact": self.artifact, "kind": self.kind, "path": str(self.path)}

    def __str__(self) -> str:
        what = f"artifact {self.artifact!r} of {self.ref}" if self.artifact else f"record {self.ref}"
        return f"{what} {_DESCRIPTIONS.get(self.kind, f'is {self.kind}')}: {self.path}"


def verify(index: Index, layout: Layout) -> list[Problem]:
    """Check every artifact's presence and sha256; sweep leftovers of interrupted writes first.

    Reported, each as a :class:`Problem`: artifacts ``missing`` or ``altered``, records whose index
    payload is ``unreadable``, record directories the index does not know (``unindexed``; never
    removed), and ``record.json`` mirrors that differed from the index (``mirror-rewritten``: an
    attach killed after its commit, or a damaged or edited file). Those mirrors are already repaired
    from the index when this returns (the index is authoritative; ``reindex`` reads the mirrors, so
    they must not stay wrong), but the damage is still reported: the CLI exits non-zero on any
    problem, and a second ``verify`` is clean. Sweeping leftovers is routine and not reported.
    """
    cleanup(index, layout)
    problems = [Problem(f"{d.parent.name}:{d.name}", None, "unindexed", d) for d in unindexed(index, layout)]
    with index.read() as conn:
        indexed = rows.indexed(conn)
    for name, version, payload in indexed:  # hashing happens outside any lock
        record = _loaded(payload)
        if record is None:
            problems.append(Problem(f"{name}:{version}", None, "unreadable", layout.version_dir(name, version)))
            continue
        for artifact in record.artifacts:
            path = layout.artifact_file(record, artifact)
            kind = check_artifact(artifact, path, full=True)
            if kind is not None:
                problems.append(Problem(record.ref, artifact.name, kind, path))
    problems += _restore_mirrors(index, layout)
    with index.read() as conn:
        still_there = {f"{name}:{version}" for name, version in rows.versions(conn)}  # removed meanwhile: no problem
    return [problem for problem in problems if problem.kind == "unindexed" or problem.ref in still_there]


def cleanup(index: Index, layout: Layout) -> list[Path]:
    """Remove what interrupted writes left behind: staging dirs, uncommitted pending record dirs and
    unindexed files inside indexed records (interrupted attaches)."""
    removed = layout.sweep_staging()
    removed += index.write(lambda conn: _sweep_records(conn, layout))
    return removed


def unindexed(index: Index, layout: Layout) -> list[Path]:
    """Committed record directories this index has no row for (its index was lost, or is another one)."""
    with index.read() as conn:
        return _unindexed(conn, layout)


def reindex(index: Index, layout: Layout) -> list[str]:
    """Add every unindexed record directory back to the index from its ``record.json`` (aliases other
    than ``latest`` are not recoverable). Returns the refs added; an unreadable one is an error."""

    def work(conn: Connection) -> list[str]:
        added = []
        for folder in _unindexed(conn, layout):
            try:
                record = load_record(json.loads((folder / RECORD_FILE).read_text()))
            except (OSError, ValueError, RegistryError) as exc:
                raise RegistryError(f"cannot re-index {folder}: its {RECORD_FILE} is unreadable ({exc})") from exc
            if (record.name, str(record.version)) != (folder.parent.name, folder.name):
                raise RegistryError(f"cannot re-index {folder}: its {RECORD_FILE} names {record.ref}")
            rows.reserve_version(conn, record.name, record.version)
            rows.insert(conn, record)
            added.append(record.ref)
        return added

    added = index.write(work)
    log.info("re-indexed %d record(s)", len(added))
    return added


def _unindexed(conn: Connection, layout: Layout) -> list[Path]:
    known = rows.versions(conn)
    return [d for d in layout.version_dirs() if (d.parent.name, d.name) not in known]


def _loaded(payload: str) -> ArchitectureRecord | None:
    """The record an index payload holds, or None where it cannot be read (``verify`` reports it)."""
    try:
        return load_record(json.loads(payload))
    except (RegistryError, ValueError):
        return None


def _restore_mirrors(index: Index, layout: Layout) -> list[Problem]:
    """Rewrite every ``record.json`` that differs from its index row; a problem for each one rewritten.

    Under the write lock, from rows read there: no attach commits meanwhile, so a mirror is never
    rewritten from a stale snapshot. The write may be retried, so what was rewritten is kept outside it.
    """
    rewritten: dict[str, Path] = {}

    def work(conn: Connection) -> None:
        for _name, _version, payload in rows.indexed(conn):
            record = _loaded(payload)
            if record is not None and layout.refresh_mirror(record):
                rewritten[record.ref] = layout.mirror_file(record)

    index.write(work)
    return [Problem(ref, None, "mirror-rewritten", path) for ref, path in rewritten.items()]


def _sweep_records(conn: Connection, layout: Layout) -> list[Path]:
    """Under the write lock: finish or delete pending record dirs, delete files no index row owns."""
    owned: dict[tuple[str, str], set[str]] = {}
    for name, version, payload in rows.indexed(conn):
        paths = {item["path"] for item in json.loads(payload).get("artifacts", [])}
        owned[(name, str(version))] = paths
    removed: list[Path] = []
    for name_dir in sorted(layout.records.iterdir()):
        for version_dir in sorted(name_dir.iterdir()) if name_dir.is_dir() else []:
            if version_dir.name.startswith(PENDING_PREFIX):
                version = version_dir.name.removeprefix(PENDING_PREFIX)
                if (name_dir.name, version) in owned:  # committed; its writer died before the rename
                    version_dir = layout.finish_pending(name_dir.name, version)
                else:
                    fs.remove_tree(version_dir)
                    removed.append(version_dir)
                    continue
            paths = owned.get((name_dir.name, version_dir.name))
            if paths is None:  # committed in another (or a lost) index: verify reports it
                continue
            files_dir = version_dir / FILES_DIR
            for file in sorted(files_dir.iterdir()) if files_dir.is_dir() else []:
                if f"{FILES_DIR}/{file.name}" not in paths:
                    fs.remove_tree(file)
                    removed.append(file)
        if name_dir.is_dir() and not any(name_dir.iterdir()):
            name_dir.rmdir()
    if removed:
        log.info("removed %d unindexed leftover(s) of interrupted writes", len(removed))
    return removed
