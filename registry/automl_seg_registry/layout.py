"""Where a registry folder keeps what, and the few file moves the store makes inside it.

Layout of a registry folder::

    records/<name>/<version>/       record.json (a mirror of the index payload) and files/<artifact>
    records/<name>/.pending-<v>/    a version whose index commit is in flight
    tmp/                            private staging directories of writers in progress

This module knows paths and files only; which directory belongs to a committed record is the
index's to say (see :mod:`automl_seg_registry.store` and :mod:`automl_seg_registry.maintenance`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Literal

from automl_seg.errors import RegistryError
from automl_seg_registry import files as fs
from automl_seg_registry.schema import ArchitectureRecord, Artifact, load_record

log = logging.getLogger(__name__)

RECORD_FILE = "record.json"
FILES_DIR = "files"
PENDING_PREFIX = ".pending-"
#: A stored artifact keeps its source's extension (``.pt``, ``.onnx``) when it is this plain.
SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,16}")


class Layout:
    """The paths of one registry folder: record, pending and staging directories, artifact files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records = root / "records"
        self.tmp = root / "tmp"

    def create(self) -> None:
        """Make the folder's ``records/`` and ``tmp/`` (a RegistryError where it cannot be written)."""
        try:
            self.records.mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(exist_ok=True)
        except OSError as exc:
            raise RegistryError(
                f"cannot create registry folder {self.root} ({exc.strerror}); pass a writable --registry"
            ) from exc

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
        final = self.version_dir(record.name, record.version)
        if not final.exists() and self.pending_dir(record.name, record.version).exists():
            self.finish_pending(record.name, record.version)
        return final

    def artifact_file(self, record: ArchitectureRecord, artifact: Artifact) -> Path:
        """Where ``artifact`` of the committed ``record`` is; refuses a path that leaves the record's directory."""
        base = self.record_dir(record).resolve()
        path = (base / artifact.path).resolve()
        if not path.is_relative_to(base):
            raise RegistryError(f"artifact {artifact.name!r} of {record.ref} points outside its record; remove it")
        return path

    def disk_versions(self, name: str) -> list[int]:
        """Versions of ``name`` with a directory on disk, committed or pending."""
        folder = self.records / name
        found = [d.name.removeprefix(PENDING_PREFIX) for d in folder.iterdir()] if folder.is_dir() else []
        return [int(v) for v in found if v.isdigit()]

    def version_dirs(self) -> list[Path]:
        """Every committed record directory on disk (``records/<name>/<version>``)."""
        return [
            version_dir
            for name_dir in sorted(self.records.iterdir()) if name_dir.is_dir()
            for version_dir in sorted(name_dir.iterdir(), key=lambda d: (len(d.name), d.name))
            if version_dir.is_dir() and version_dir.name.isdigit()
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
