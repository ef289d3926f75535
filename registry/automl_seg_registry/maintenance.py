"""Checking and repairing a registry folder against its index: verify, cleanup, unindexed, reindex.

The index is authoritative. What interrupted writes leave is swept under the write lock, but only
what the registry can prove it wrote is deleted (a staging or pending directory holding its staging
marker, or an empty one); anything else it cannot account for (a file no index row lists, a pending
directory without the marker) is moved to ``quarantine/``, never deleted. Symbolic links are reported
and never followed. A committed ``records/<name>/<version>/`` directory the index does not know belongs
to a lost or another index: it is reported, never deleted, and :func:`reindex` adds it back once its
artifacts' paths and checksums check out (a folder that does not is quarantined and reported; the
sweep goes on).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection

from automl_seg.errors import RegistryError
from automl_seg_registry import files as fs
from automl_seg_registry import rows
from automl_seg_registry.index import Index
from automl_seg_registry.layout import (
    ARTIFACT_PATH,
    FILES_DIR,
    PENDING_PREFIX,
    RECORD_FILE,
    Layout,
    check_artifact,
)
from automl_seg_registry.schema import ArchitectureRecord, load_record

log = logging.getLogger(__name__)

ProblemKind = Literal[
    "missing", "altered", "unreadable", "unindexed", "mirror-rewritten", "symlink", "unsafe", "not-reindexed"
]

_DESCRIPTIONS: dict[str, str] = {
    "mirror-rewritten": f"had a {RECORD_FILE} that differed from the index; it was rewritten from the index",
    "symlink": "is a symbolic link, which the registry never follows",
    "unsafe": "cannot be used",
    "not-reindexed": "was not re-indexed and was moved to quarantine",
}


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` (or ``reindex``) found wrong: an artifact that is missing, altered or unsafe
    (a path out of its record, through a link), an unreadable record, a record directory the index
    does not know, a ``record.json`` mirror it had to rewrite, a symbolic link, or a record folder
    ``reindex`` refused; ``detail`` says why where the kind alone does not."""

    ref: str
    artifact: str | None
    kind: ProblemKind
    path: Path
    detail: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        found = {"ref": self.ref, "artifact": self.artifact, "kind": self.kind, "path": str(self.path)}
        return found | ({"detail": self.detail} if self.detail else {})

    def __str__(self) -> str:
        what = f"artifact {self.artifact!r} of {self.ref}" if self.artifact else f"record {self.ref}"
        reason = f" ({self.detail})" if self.detail else ""
        return f"{what} {_DESCRIPTIONS.get(self.kind, f'is {self.kind}')}{reason}: {self.path}"


@dataclass
class Reindexed:
    """What :func:`reindex` did: the refs it added back, and the folders it refused (quarantined)."""

    added: list[str] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)


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
    problems += [Problem(_ref_of(link, layout), None, "symlink", link) for link in layout.symlinks()]
    with index.read() as conn:
        indexed = rows.indexed(conn)
    for name, version, payload in indexed:  # hashing happens outside any lock
        record = _loaded(payload)
        if record is None:
            problems.append(Problem(f"{name}:{version}", None, "unreadable", layout.version_dir(name, version)))
            continue
        for artifact in record.artifacts:
            try:
                path = layout.artifact_file(record, artifact)
            except RegistryError as exc:  # one bad record never stops the sweep
                folder = layout.version_dir(name, version)
                problems.append(Problem(record.ref, artifact.name, "unsafe", folder, str(exc)))
                continue
            kind = check_artifact(artifact, path, full=True)
            if kind is not None:
                problems.append(Problem(record.ref, artifact.name, kind, path))
    problems += _restore_mirrors(index, layout)
    with index.read() as conn:
        still_there = {f"{name}:{version}" for name, version in rows.versions(conn)}  # removed meanwhile: no problem
    return [p for p in problems if p.kind in ("unindexed", "symlink") or p.ref in still_there]


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


def reindex(index: Index, layout: Layout) -> Reindexed:
    """Add every unindexed record directory back to the index from its ``record.json`` (aliases other
    than ``latest`` are not recoverable), once every artifact path stays inside the record, reaches
    through no link, and the file there has the size and sha256 the record states.

    A folder that fails any check is moved to ``quarantine/`` (never deleted; its version number is
    never given out again) and reported in :attr:`Reindexed.refused`; the others are still added."""
    with index.read() as conn:
        folders = _unindexed(conn, layout)
    result, accepted = Reindexed(), []
    for folder in folders:  # hashing happens outside any lock
        try:
            accepted.append(_checked_record(layout, folder))
        except RegistryError as exc:
            layout.raise_high_water(folder.parent.name, int(folder.name))
            moved = layout.quarantine_path(folder)
            ref = f"{folder.parent.name}:{folder.name}"
            result.refused.append(Problem(ref, None, "not-reindexed", moved, str(exc)))

    def work(conn: Connection) -> list[str]:
        known, added = rows.versions(conn), []
        for record in accepted:
            if (record.name, str(record.version)) not in known:  # another reindex may have added it meanwhile
                rows.reserve_version(conn, record.name, record.stored_version)
                rows.insert(conn, record)
                added.append(record.ref)
        return added

    result.added = index.write(work)
    for record in accepted:
        layout.raise_high_water(record.name, record.stored_version)
    log.info("re-indexed %d record(s), refused %d", len(result.added), len(result.refused))
    return result


def _checked_record(layout: Layout, folder: Path) -> ArchitectureRecord:
    """The record ``folder`` holds, once its ``record.json`` and every artifact check out (else a
    RegistryError saying what is wrong)."""
    mirror = folder / RECORD_FILE
    reason = layout.unsafe_reason(mirror)
    if reason is not None:
        raise RegistryError(f"its {RECORD_FILE} cannot be used: {reason}")
    try:
        record = load_record(json.loads(mirror.read_text()))
    except (OSError, ValueError, RegistryError) as exc:
        raise RegistryError(f"its {RECORD_FILE} is unreadable ({exc})") from exc
    if (record.name, str(record.version)) != (folder.parent.name, folder.name):
        raise RegistryError(f"its {RECORD_FILE} names {record.ref}")
    for artifact in record.artifacts:
        path = layout.artifact_file(record, artifact)
        problem = check_artifact(artifact, path, full=True)
        if problem is not None:
            raise RegistryError(f"its artifact {artifact.name!r} is {problem} ({path})")
    return record


def _artifact_entries(payload: str) -> list[dict]:
    """The artifact entries of an index payload (none where it cannot be read: verify reports that)."""
    try:
        entries = json.loads(payload).get("artifacts", [])
    except (ValueError, AttributeError):
        return []
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def _ref_of(path: Path, layout: Layout) -> str:
    """``name:version`` (or ``name``) of an entry under ``records/``; the folder's name elsewhere."""
    if not path.is_relative_to(layout.records):
        return path.parent.name
    parts = path.relative_to(layout.records).parts
    return f"{parts[0]}:{parts[1]}" if len(parts) > 1 else parts[0]


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
    unclear: set[tuple[str, str]] = set()  # a record listing an unsafe path: its folder is left as it is
    for name, version, payload in rows.indexed(conn):
        paths = {str(item.get("path")) for item in _artifact_entries(payload)}
        owned[(name, str(version))] = paths
        if not all(ARTIFACT_PATH.fullmatch(path) for path in paths):
            unclear.add((name, str(version)))
    removed: list[Path] = []
    for name_dir in sorted(layout.records.iterdir()):
        if name_dir.is_symlink() or not name_dir.is_dir():  # links: verify reports them
            continue
        for version_dir in sorted(name_dir.iterdir()):
            if version_dir.is_symlink():
                continue
            if version_dir.name.startswith(PENDING_PREFIX):
                pending = version_dir.name.removeprefix(PENDING_PREFIX)
                if (name_dir.name, pending) in owned:  # committed; its writer died before the rename
                    version_dir = layout.finish_pending(name_dir.name, pending)
                else:
                    if not fs.remove_own(version_dir):  # not provably the registry's: set aside
                        layout.quarantine_path(version_dir)
                    removed.append(version_dir)
                    continue
            listed = owned.get((name_dir.name, version_dir.name))
            files_dir = version_dir / FILES_DIR
            if listed is None or files_dir.is_symlink() or (name_dir.name, version_dir.name) in unclear:
                continue  # another (or a lost) index's record, a link, or a record verify reports as unsafe
            for file in sorted(files_dir.iterdir()) if files_dir.is_dir() else []:
                if f"{FILES_DIR}/{file.name}" not in listed and not file.is_symlink():
                    layout.quarantine_path(file)  # an interrupted attach's, or not ours: never deleted
                    removed.append(file)
        if not any(name_dir.iterdir()):
            name_dir.rmdir()
    if removed:
        log.info("swept %d unindexed leftover(s) of interrupted writes", len(removed))
    return removed
