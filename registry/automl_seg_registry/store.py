"""The registry store: the record lifecycle (register, attach, tag, promote, remove, read).

Records live in an index (:mod:`automl_seg_registry.index`, rows via :mod:`automl_seg_registry.rows`),
their files in one directory per version (:mod:`automl_seg_registry.layout`); checking and repairing
the two against each other is :mod:`automl_seg_registry.maintenance`.

Registration stages every file under ``tmp/`` (copied, hashed, flushed), then, inside one serialised
index transaction, allocates the version, renames the staged directory to ``.pending-<version>``
and inserts the index rows; after the commit the directory takes its final name. A writer killed
at any point leaves either no trace in the index (its staging or pending directory is garbage,
swept by ``verify``) or the complete record (a pending directory whose row exists is renamed by
the next reader). So a ``records/<name>/<version>/`` directory always belonged to a committed
record: one missing from the index (a lost or another index) is reported, never deleted, and
``reindex`` adds it back. Versions are allocated above every directory on disk as well.
"""

from __future__ import annotations

import builtins  # Registry.list shadows the builtin in the annotations of the methods after it
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from automl_seg.errors import RegistryError
from automl_seg.paths import registry_root
from automl_seg_registry import files as fs
from automl_seg_registry import maintenance, rows
from automl_seg_registry.card import render_card
from automl_seg_registry.index import Index, aliases, describe_url, names, records, sqlite_url
from automl_seg_registry.layout import FILES_DIR, RECORD_FILE, Layout, check_artifact
from automl_seg_registry.maintenance import Problem, Reindexed
from automl_seg_registry.refs import LATEST, check_alias, check_name, check_record_name, parse_ref
from automl_seg_registry.schema import SCHEMA_VERSION, ArchitectureRecord, Artifact, load_record

log = logging.getLogger(__name__)

INDEX_ENV = "AUTOML_SEG_REGISTRY_INDEX"
INDEX_FILE = "index.sqlite"


class Registry:
    """A registry folder plus its index. Open with :meth:`Registry.open`; safe across processes."""

    def __init__(self, root: Path, index: Index) -> None:
        self.root = root
        self.index = index
        self.layout = Layout(root)

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, root: Path | None = None, index_url: str | None = None) -> Registry:
        """Open (creating if needed) the registry at ``root`` (default: ``--registry``/env/user dir).

        The index is ``index_url``, else ``$AUTOML_SEG_REGISTRY_INDEX``, else ``<root>/index.sqlite``.
        An existing folder this process cannot write to (another user's, a read-only share) opens for
        reading only: nothing is created or swept, the SQLite index is opened read-only and immutable,
        and any change is a RegistryError saying so.
        """
        folder = registry_root(root).resolve()
        if folder.exists() and not folder.is_dir():
            raise RegistryError(f"registry folder {folder} is a file; pass a folder as --registry")
        read_only = folder.is_dir() and not _writable(folder)
        layout = Layout(folder)
        if read_only:
            layout.check_own_folders()
        else:
            layout.create()
        url = index_url or os.environ.get(INDEX_ENV) or sqlite_url(folder / INDEX_FILE, read_only)
        registry = cls(folder, Index(url, read_only=read_only))
        if not read_only:
            registry.layout.sweep_staging()
        log.debug("opened registry %s (index %s%s)", folder, describe_url(url), ", read-only" if read_only else "")
        return registry

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- writing

    def register(
        self,
        record: ArchitectureRecord,
        files: Mapping[str, tuple[Path, str]] | None = None,
        aliases: Iterable[str] = (),
    ) -> ArchitectureRecord:
        """Store ``record`` with ``files`` (artifact name -> (source file, kind)) as the next version of its name.

        Returns the stored record (version, artifacts with size and sha256 filled in). ``aliases``
        (e.g. ``["best"]``) are pointed at the new version in the same transaction.
        """
        check_record_name(record.name)
        record = _revalidated(record)
        alias_list = [check_alias(alias) for alias in aliases]
        files = dict(files or {})
        for artifact_name, (_source, kind) in files.items():
            check_name(artifact_name, "artifact name")
            check_name(kind, "artifact kind")
        if record.artifacts:
            raise RegistryError(
                f"record {record.name!r} already lists artifacts; the registry fills them in: pass the files "
                "as register(record, files={name: (path, kind)}) and leave record.artifacts empty"
            )
        parent = self._resolve_parent(record.parent) if record.parent else None
        staging = self.layout.new_staging("add")
        try:
            (staging / FILES_DIR).mkdir()
            stored_artifacts = [
                self.layout.stage_file(staging, artifact_name, Path(source), kind)
                for artifact_name, (source, kind) in sorted(files.items())
            ]
            fs.fsync_dir(staging / FILES_DIR)
            template = record.model_copy(
                update={"artifacts": stored_artifacts, "parent": parent, "schema_version": SCHEMA_VERSION}
            )
            stored = self.index.write(lambda conn: self._publish(conn, template, staging, alias_list))
        finally:
            fs.remove_tree(staging)
        self.layout.record_dir(stored)  # committed: the pending directory takes its final name
        log.info("registered %s (%d artifact(s))", stored.ref, len(stored.artifacts))
        return stored

    def attach(self, ref: str, name: str, path: Path, kind: str) -> ArchitectureRecord:
        """Add an artifact (e.g. an ONNX export) to an existing version; existing artifacts never change."""
        check_name(name, "artifact name")
        check_name(kind, "artifact kind")
        exact = self.resolve(ref)
        if any(artifact.name == name for artifact in self.get(exact).artifacts):
            raise RegistryError(_exists_message(exact, name))
        staging = self.layout.new_staging("attach")
        try:
            artifact = self.layout.stage_file(staging, name, Path(path), kind)
            updated = self.index.write(lambda conn: self._attach_staged(conn, exact, artifact, staging))
        finally:
            fs.remove_tree(staging)
        log.info("attached %r (%s) to %s", name, kind, exact)
        return updated

    def tag(self, ref: str, alias: str) -> None:
        """Point ``name@alias`` at the record ``ref`` names (moving it if it pointed elsewhere)."""
        check_alias(alias)

        def work(conn: Connection) -> None:
            name, version = self._resolve(conn, ref)
            rows.set_alias(conn, name, alias, version)

        self.index.write(work)

    def promote(self, ref: str, alias: str = "best", metric: str = "dice_mean", higher_is_better: bool = True) -> bool:
        """Move ``name@alias`` to ``ref`` if its ``metric`` beats the current target's (or there is none).

        Returns whether the alias moved. Read, compare and move happen in one write transaction, so
        concurrent promotions cannot both win.
        """
        check_alias(alias)

        def work(conn: Connection) -> bool:
            name, version = self._resolve(conn, ref)
            candidate = _metric(rows.load(conn, name, version), metric)
            if candidate is None:
                raise RegistryError(f"record {name}:{version} has no metric {metric!r}; cannot promote it by it")
            current = rows.alias_target(conn, name, alias)
            if current == version:
                return False
            if current is not None:
                incumbent = _metric(rows.load(conn, name, current), metric)
                if incumbent is not None and not (candidate > incumbent if higher_is_better else candidate < incumbent):
                    return False
            rows.set_alias(conn, name, alias, version)
            return True

        moved = self.index.write(work)
        log.info("%s@%s %s", ref, alias, "moved" if moved else "unchanged")
        return moved

    def remove(self, ref: str) -> str:
        """Delete a record version, its aliases and its files. Returns the exact ref removed."""

        def work(conn: Connection) -> tuple[str, int]:
            name, version = self._resolve(conn, ref)
            rows.delete_record(conn, name, version)
            self.layout.raise_high_water(name, version)  # records older than the mark get one before they go
            return name, version

        name, version = self.index.write(work)
        self.layout.discard(self.layout.version_dir(name, version))
        log.info("removed %s:%d", name, version)
        return f"{name}:{version}"

    # ----------------------------------------------------------------- reading

    def resolve(self, ref: str) -> str:
        """The exact ``name:version`` a reference points at now."""
        with self.index.read() as conn:
            name, version = self._resolve(conn, ref)
        return f"{name}:{version}"

    def get(self, ref: str) -> ArchitectureRecord:
        """The record ``ref`` points at (RegistryError naming the ref if there is none)."""
        with self.index.read() as conn:
            name, version = self._resolve(conn, ref)
            return rows.load(conn, name, version)

    def list(
        self, dataset: str | None = None, strategy: str | None = None, name: str | None = None
    ) -> list[ArchitectureRecord]:
        """Every record (optionally filtered), ordered by name then version."""
        query = select(records.c.payload).order_by(records.c.name, records.c.version)
        for column, value in ((records.c.dataset, dataset), (records.c.strategy, strategy), (records.c.name, name)):
            if value is not None:
                query = query.where(column == value)
        with self.index.read() as conn:
            return [load_record(json.loads(payload)) for payload in conn.execute(query).scalars()]

    def aliases(self) -> dict[str, builtins.list[str]]:
        """Exact ref -> its aliases, ``latest`` included (per name, and ``latest`` overall separately)."""
        found: dict[str, list[str]] = {}
        with self.index.read() as conn:
            for name, alias, version in conn.execute(select(aliases.c.name, aliases.c.alias, aliases.c.version)):
                found.setdefault(f"{name}:{version}", []).append(alias)
            for name in conn.execute(select(names.c.name)).scalars():
                newest = rows.newest(conn, name)
                if newest is not None:
                    found.setdefault(f"{name}:{newest}", []).append(LATEST)
        return {ref: sorted(values) for ref, values in found.items()}

    def artifact_path(self, ref: str, name: str, verify: bool = True) -> Path:
        """Where artifact ``name`` of ``ref`` is on disk; checks it is present (and, if ``verify``, unaltered)."""
        record = self.get(ref)
        artifact = next((item for item in record.artifacts if item.name == name), None)
        if artifact is None:
            known = ", ".join(item.name for item in record.artifacts) or "none"
            raise RegistryError(f"record {record.ref} has no artifact {name!r} (it has: {known})")
        path = self.layout.artifact_file(record, artifact)
        problem = check_artifact(artifact, path, full=verify)
        if problem == "missing":
            raise RegistryError(
                f"artifact {name!r} of {record.ref} is missing ({path}); re-create it or remove the record"
            )
        if problem == "altered":
            raise RegistryError(
                f"artifact {name!r} of {record.ref} is corrupt: sha256 mismatch ({path}); "
                "re-create it or remove the record"
            )
        return path

    def record_dir(self, ref: str) -> Path:
        """The directory holding a record's files (read-only: never write into it)."""
        return self.layout.record_dir(self.get(ref))

    def card(self, ref: str) -> str:
        """The record's model card (Markdown with YAML front matter)."""
        record = self.get(ref)
        return render_card(record, self.aliases().get(record.ref, []))

    # ----------------------------------------------------------------- checking (see maintenance)

    def verify(self) -> builtins.list[Problem]:
        """What is wrong with the folder against the index (see :func:`automl_seg_registry.maintenance.verify`).

        A record.json that differs from the index is rewritten from it and still reported (``mirror-rewritten``).
        """
        return maintenance.verify(self.index, self.layout)

    def cleanup(self) -> builtins.list[Path]:
        """See :func:`automl_seg_registry.maintenance.cleanup`."""
        return maintenance.cleanup(self.index, self.layout)

    def unindexed(self) -> builtins.list[Path]:
        """See :func:`automl_seg_registry.maintenance.unindexed`."""
        return maintenance.unindexed(self.index, self.layout)

    def reindex(self) -> Reindexed:
        """See :func:`automl_seg_registry.maintenance.reindex`."""
        return maintenance.reindex(self.index, self.layout)

    # ----------------------------------------------------------------- internals

    def _resolve(self, conn: Connection, ref: str) -> tuple[str, int]:
        return rows.resolve(conn, parse_ref(ref), self.root)

    def _resolve_parent(self, parent: str) -> str:
        """The parent pinned to an exact ``name:version`` (an alias would move; lineage must not)."""
        try:
            return self.resolve(parent)
        except RegistryError as exc:
            raise RegistryError(f"parent {parent!r} cannot be used: {exc}") from None

    def _publish(
        self, conn: Connection, template: ArchitectureRecord, staging: Path, alias_list: builtins.list[str]
    ) -> ArchitectureRecord:
        """Inside the write transaction: allocate the version, move the files into place, index them."""
        if not staging.is_dir():
            raise RegistryError(f"registering {template.name!r} was interrupted mid-commit; register it again")
        on_disk = [*self.layout.disk_versions(template.name), self.layout.high_water(template.name)]
        version = rows.next_version(conn, template.name, on_disk)
        stored = template.model_copy(update={"version": version})
        fs.write_json(staging / RECORD_FILE, stored.model_dump(mode="json"))
        target = self.layout.pending_dir(stored.name, version)
        if target.exists():  # left by a writer killed after its rename, before its commit
            fs.remove_tree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, target)
        try:
            fs.fsync_dir(target.parent)
            rows.insert(conn, stored)
            for alias in alias_list:
                rows.set_alias(conn, stored.name, alias, version)
            # under the write lock (never lowered by a racing writer); a number burnt by a failed commit
            # leaves a gap, which is fine: a version is never given out twice
            self.layout.raise_high_water(stored.name, version)
        except BaseException:
            os.rename(target, staging)  # the transaction rolls back: so do the files
            raise
        return stored

    def _attach_staged(self, conn: Connection, exact: str, artifact: Artifact, staging: Path) -> ArchitectureRecord:
        name, version = self._resolve(conn, exact)
        record = rows.load(conn, name, version)
        if any(existing.name == artifact.name for existing in record.artifacts):
            raise RegistryError(_exists_message(exact, artifact.name))
        updated = record.model_copy(update={"artifacts": [*record.artifacts, artifact]})
        target = self.layout.artifact_file(record, artifact)  # refuses a record folder reached through a link
        target.parent.mkdir(exist_ok=True)
        if target.exists():  # an unindexed leftover of an interrupted attach
            fs.remove_tree(target)
        os.rename(staging / artifact.path, target)
        try:
            fs.fsync_dir(target.parent)
            rows.add_artifact(conn, updated, artifact)
        except BaseException:
            os.rename(target, staging / artifact.path)
            raise
        # under the same write lock as the row, so a concurrent verify never sees the two disagree (a
        # failed commit leaves the mirror ahead of the index: verify rewrites and reports it)
        self.layout.refresh_mirror(updated)
        return updated


def _writable(folder: Path) -> bool:
    """Whether this process may create and delete entries in ``folder`` (and its index, if present)."""
    index = folder / INDEX_FILE
    return os.access(folder, os.W_OK | os.X_OK) and (not index.exists() or os.access(index, os.W_OK))


def _revalidated(record: ArchitectureRecord) -> ArchitectureRecord:
    """The record re-checked as it will be stored: JSON-serialisable and valid (model_copy skips validation)."""
    try:
        return ArchitectureRecord.model_validate(json.loads(json.dumps(record.model_dump(mode="json"))))
    except (ValueError, TypeError) as exc:  # pydantic's errors are ValueErrors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(
            f"record {record.name!r} cannot be stored ({first}); keep arch, settings and plan to plain JSON values"
        ) from exc


def _metric(record: ArchitectureRecord, metric: str) -> float | None:
    """A named metric: a Metrics field, else a key of ``metrics.extra`` or ``metrics.memory``."""
    value: Any = getattr(record.metrics, metric, None)
    if value is None:
        value = record.metrics.extra.get(metric, record.metrics.memory.get(metric))
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _exists_message(ref: str, name: str) -> str:
    return f"record {ref} already has an artifact {name!r}; artifacts never change: attach under another name"
