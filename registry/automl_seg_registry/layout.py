"""Where a registry folder keeps what, and the few file moves the store makes inside it.

Layout of a registry folder::

    records/<name>/<version>/       record.json (a mirror of the index payload) and files/<artifact>
    records/<name>/.pending-<v>/    a version whose index commit is in flight
    records/<name>/.last-version    the highest version ever given to the name (survives a lost index)
    tmp/                            private staging directories of writers in progress
    quarantine/                     files found where the index lists none, moved aside (never deleted)

This module knows paths and files only; which directory belongs to a committed record is the
index's to say (see :mod:`automl_seg_registry.store` and :mod:`automl_seg_registry.maintenance`).

The registry never follows a symbolic link inside its folder: every path it reads or writes is
resolved and must be the path it names under the (resolved) root; links are reported, not used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Literal

from automl_seg.errors import RegistryError
from automl_seg_registry import files as fs
from automl_seg_registry.schema import ArchitectureRecord, Artifact, load_record

log = logging.getLogger(__name__)

RECORD_FILE = "record.json"
FILES_DIR = "files"
PENDING_PREFIX = ".pending-"
HIGH_WATER_FILE = ".last-version"
QUARANTINE_DIR = "quarantine"
#: A stored artifact keeps its source's extension (``.pt``, ``.onnx``) when it is this plain.
SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,16}")
#: The only artifact paths a record may hold: a plain file name inside its ``files/`` folder.
ARTIFACT_PATH = re.compile(rf"{FILES_DIR}/[A-Za-z0-9][A-Za-z0-9._-]{{0,200}}")


class Layout:
    """The paths of one registry folder: record, pending and staging directories, artifact files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()  # the user's own links up to the root are theirs; none below it
        self.records = self.root / "records"
        self.tmp = self.root / "tmp"
        self.quarantine = self.root / QUARANTINE_DIR

    def create(self) -> None:
        """Make the folder's ``records/`` and ``tmp/`` (a RegistryError where it cannot be written)."""
        try:
            self.records.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(exist_ok=True)
        except OSError as exc:
            raise RegistryError(
                f"cannot create registry folder {self.root} ({exc.strerror}); pass a writable --registry"
            ) from exc
        self.check_own_folders()

    def check_own_folders(self) -> None:
        """Refuse a registry whose ``records/`` or ``tmp/`` is a symbolic link (it would write elsewhere)."""
        for folder in (self.records, self.tmp):
            if folder.is_symlink():
                raise RegistryError(
                    f"{folder} is a symbolic link; the registry never follows links out of its folder: "
                    "replace it with a real folder"
                )

    # ----------------------------------------------------------------- links and escapes

    def unsafe_reason(self, path: Path) -> str | None:
        """Why ``path`` (under the root) must not be used: it leaves the root, or reaches through a link."""
        lexical = Path(os.path.normpath(path))
        if not lexical.is_relative_to(self.root):
            return "points outside the registry folder"
        for part in (lexical, *lexical.parents):
            if part == self.root:
                return None
            if part.is_symlink():
                return f"{part} is a symbolic link (the registry never follows links)"
        return "points outside the registry folder"

    def symlinks(self) -> list[Path]:
        """Every symbolic link where the registry keeps entries: record names, versions, their
        ``files/`` folders and files, ``record.json``, and staging entries (reported, never followed)."""
        found: list[Path] = []

        def scan(folder: Path, depth: int) -> None:
            if folder.is_symlink():
                found.append(folder)
                return
            if depth == 0 or not folder.is_dir():
                return
            for entry in sorted(folder.iterdir()):
                scan(entry, depth - 1)

        if self.records.is_dir() and not self.records.is_symlink():
            for name_dir in sorted(self.records.iterdir()):
                scan(name_dir, 4)  # <name>/<version>/files/<file>
        if self.tmp.is_dir() and not self.tmp.is_symlink():
            found += [entry for entry in sorted(self.tmp.iterdir()) if entry.is_symlink()]
        return found

    # ----------------------------------------------------------------- quarantine

    def quarantine_path(self, path: Path) -> Path:
        """Move ``path`` (a file or folder the registry cannot account for) into ``quarantine/``; return
        where it went. Nothing is deleted: the user looks at it and decides."""
        relative = Path(os.path.normpath(path)).relative_to(self.root)
        target = self.quarantine / time.strftime("%Y%m%d-%H%M%S") / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        while target.exists() or target.is_symlink():
            target = target.with_name(target.name + "~")
        os.rename(path, target)
        log.warning("moved %s, which the index does not account for, to %s", path, target)
        return target

    # ----------------------------------------------------------------- staging

    def new_staging(self, purpose: str) -> Path:
        """A fresh private directory under ``tmp/`` for one write in progress."""
        return fs.new_staging_dir(self.tmp, purpose)

    def sweep_staging(self) -> list[Path]:
        """Remove the staging directories of writers that died; return what was removed."""
        return fs.sweep_staging(self.tmp)

    def stage_file(self, staging: Path, name: str, source: Path, kind: str) -> Artifact:
        """Copy ``source`` into ``staging`` where artifact ``name`` will live in its record; return its entry."""
        suffix = source.suffix if SAFE_SUFFIX.fullmatch(source.suffix) else ""
        relative = f"{FILES_DIR}/{name}{suffix}"
        (staging / FILES_DIR).mkdir(exist_ok=True)
        size, sha256 = fs.copy_and_hash(source, staging / relative)
        return Artifact(name=name, path=relative, kind=kind, size=size, sha256=sha256)

    # ----------------------------------------------------------------- record directories

    def version_dir(self, name: str, version: int | str) -> Path:
        """The final directory of ``name:version`` (whether or not it exists)."""
        return self.records / name / str(version)

    def pending_dir(self, name: str, version: int | str) -> Path:
        """The directory of ``name:version`` while its index commit is in flight."""
        return self.records / name / f"{PENDING_PREFIX}{version}"

    def finish_pending(self, name: str, version: int | str) -> Path:
        """Give a committed record's pending directory its final name (idempotent, race-safe)."""
        final = self.version_dir(name, version)
        try:
            os.rename(self.pending_dir(name, version), final)
        except FileNotFoundError:
            pass  # another process finished it, or it was never pending
        return final

    def record_dir(self, record: ArchitectureRecord) -> Path:
        """The committed record's directory (finishing its publication if its writer died just after the commit)."""
        final = self.version_dir(record.name, record.stored_version)
        if not final.exists() and self.pending_dir(record.name, record.stored_version).exists():
            self.finish_pending(record.name, record.stored_version)
        return final

    def artifact_file(self, record: ArchitectureRecord, artifact: Artifact) -> Path:
        """Where ``artifact`` of the committed ``record`` is; refuses a path that leaves the record's
        directory or reaches through a symbolic link."""
        base = self.record_dir(record)
        path = Path(os.path.normpath(base / artifact.path))
        if not ARTIFACT_PATH.fullmatch(artifact.path) or not path.is_relative_to(base):
            raise RegistryError(
                f"artifact {artifact.name!r} of {record.ref} points outside its record ({artifact.path}); remove it"
            )
        reason = self.unsafe_reason(path)
        if reason is not None:
            raise RegistryError(f"artifact {artifact.name!r} of {record.ref} cannot be used: {reason}")
        return path

    def disk_versions(self, name: str) -> list[int]:
        """Versions of ``name`` with a directory (or link) on disk, committed or pending."""
        folder = self.records / name
        found = [d.name.removeprefix(PENDING_PREFIX) for d in folder.iterdir()] if folder.is_dir() else []
        return [int(v) for v in found if v.isascii() and v.isdigit()]

    def high_water(self, name: str) -> int:
        """The highest version ever given to ``name`` by this folder (0 where none is recorded)."""
        mark = self.records / name / HIGH_WATER_FILE
        try:
            text = mark.read_text(encoding="ascii").strip() if not mark.is_symlink() else ""
        except (OSError, UnicodeDecodeError):
            return 0
        return int(text) if text.isascii() and text.isdigit() else 0

    def raise_high_water(self, name: str, version: int) -> None:
        """Record that ``version`` of ``name`` was given out (atomically; never lowered). Kept in the
        name's folder, so a lost index cannot make a removed version number come back."""
        if self.high_water(name) >= version:
            return
        folder = self.records / name
        folder.mkdir(parents=True, exist_ok=True)
        fs.write_text(folder / HIGH_WATER_FILE, f"{version}\n")

    def version_dirs(self) -> list[Path]:
        """Every committed record directory on disk (``records/<name>/<version>``); symbolic links are
        not record directories (see :meth:`symlinks`)."""
        return [
            version_dir
            for name_dir in sorted(self.records.iterdir()) if name_dir.is_dir() and not name_dir.is_symlink()
            for version_dir in sorted(name_dir.iterdir(), key=lambda d: (len(d.name), d.name))
            if version_dir.is_dir() and not version_dir.is_symlink() and version_dir.name.isdigit()
        ]  # fmt: skip

    def discard(self, path: Path) -> None:
        """Move a removed record's directory out of ``records/`` at once, then delete it."""
        trash = self.new_staging("rm")
        try:
            os.rename(path, trash / "record")
        except FileNotFoundError:
            pass  # already swept by a concurrent cleanup
        fs.remove_tree(trash)

    # ----------------------------------------------------------------- the record.json mirror

    def mirror_file(self, record: ArchitectureRecord) -> Path:
        return self.record_dir(record) / RECORD_FILE

    def refresh_mirror(self, record: ArchitectureRecord) -> bool:
        """Rewrite record.json from ``record`` (the index's copy) where it differs; return whether what it
        said was a different record (missing, unreadable, or other content).

        A mirror that only reads differently (an older schema version of the same record) is rewritten
        without counting as a difference. A directory that is gone is left alone: its artifacts are
        missing, which ``verify`` reports.
        """
        mirror = self.mirror_file(record)
        if self.unsafe_reason(mirror) is not None:
            return False  # a link: never written through (verify reports it)
        expected = record.model_dump(mode="json")
        try:
            current = json.loads(mirror.read_text())
        except (OSError, ValueError):
            current = None
        if current == expected or not mirror.parent.is_dir():
            return False
        fs.write_json(mirror, expected)
        log.info("refreshed %s", mirror)
        return not _same_record(current, record)


def _same_record(payload: object, record: ArchitectureRecord) -> bool:
    """Whether a stored payload (any schema version) reads as ``record``."""
    if not isinstance(payload, dict):
        return False
    try:
        return load_record(payload) == record
    except RegistryError:
        return False


def check_artifact(artifact: Artifact, path: Path, full: bool) -> Literal["missing", "altered"] | None:
    """What is wrong with the file at ``path`` as ``artifact``'s copy; ``full`` also compares its sha256."""
    if not path.is_file():
        return "missing"
    if path.stat().st_size != artifact.size:
        return "altered"
    if full and fs.sha256_file(path) != artifact.sha256:
        return "altered"
    return None
