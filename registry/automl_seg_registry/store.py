"""The registry store: typed records in an index, their files in one directory per version.

Layout of a registry folder::

    index.sqlite                    the index (unless a server database URL holds it)
    records/<name>/<version>/       record.json (a mirror of the index payload) and files/<artifact>
    records/<name>/.pending-<v>/    a version whose index commit is in flight
    tmp/                            private staging directories of writers in progress

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

import json
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, and_, delete, select, update

from automl_seg.errors import RegistryError
from automl_seg.paths import registry_root
from automl_seg_registry import files as fs
from automl_seg_registry.card import render_card
from automl_seg_registry.index import Index, aliases, artifacts, describe_url, names, records
from automl_seg_registry.refs import LATEST, Ref, check_alias, check_name, check_record_name, parse_ref
from automl_seg_registry.schema import SCHEMA_VERSION, ArchitectureRecord, Artifact, load_record

log = logging.getLogger(__name__)

INDEX_ENV = "AUTOML_SEG_REGISTRY_INDEX"
INDEX_FILE = "index.sqlite"
RECORD_FILE = "record.json"
FILES_DIR = "files"
#: A stored artifact keeps its source's extension (``.pt``, ``.onnx``) when it is this plain.
SAFE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,16}")


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong: an artifact that is missing or altered, or an unreadable record."""

    ref: str
    artifact: str | None
    kind: Literal["missing", "altered", "unreadable", "unindexed"]
    path: Path

    def as_dict(self) -> dict[str, str | None]:
        return {"ref": self.ref, "artifact": self.artifact, "kind": self.kind, "path": str(self.path)}

    def __str__(self) -> str:
        what = f"artifact {self.artifact!r} of {self.ref}" if self.artifact else f"record {self.ref}"
        return f"{what} is {self.kind}: {self.path}"


PENDING_PREFIX = ".pending-"


class Registry:
    """A registry folder plus its index. Open with :meth:`Registry.open`; safe across processes."""

    def __init__(self, root: Path, index: Index) -> None:
        self.root = root
        self.index = index

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, root: Path | None = None, index_url: str | None = None) -> Registry:
        """Open (creating if needed) the registry at ``root`` (default: ``--registry``/env/user dir).

        The index is ``index_url``, else ``$AUTOML_SEG_REGISTRY_INDEX``, else ``<root>/index.sqlite``.
        """
        folder = registry_root(root).resolve()
        try:
            (folder / "records").mkdir(parents=True, exist_ok=True)
            (folder / "tmp").mkdir(exist_ok=True)
        except OSError as exc:
            raise RegistryError(
                f"cannot create registry folder {folder} ({exc.strerror}); pass a writable --registry"
            ) from exc
        url = index_url or os.environ.get(INDEX_ENV) or f"sqlite:///{folder / INDEX_FILE}"
        registry = cls(folder, Index(url))
        fs.sweep_staging(folder / "tmp")
        log.debug("opened registry %s (index %s)", folder, describe_url(url))
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
        staging = fs.new_staging_dir(self.root / "tmp", "add")
        try:
            (staging / FILES_DIR).mkdir()
            stored_artifacts = [
                self._stage_file(staging, artifact_name, Path(source), kind)
                for artifact_name, (source, kind) in sorted(files.items())
            ]
            fs.fsync_dir(staging / FILES_DIR)
            template = record.model_copy(
                update={"artifacts": stored_artifacts, "parent": parent, "schema_version": SCHEMA_VERSION}
            )
            stored = self.index.write(lambda conn: self._publish(conn, template, staging, alias_list))
        finally:
            fs.remove_tree(staging)
        self._record_dir(stored)  # committed: the pending directory takes its final name
        log.info("registered %s (%d artifact(s))", stored.ref, len(stored.artifacts))
        return stored

    def attach(self, ref: str, name: str, path: Path, kind: str) -> ArchitectureRecord:
        """Add an artifact (e.g. an ONNX export) to an existing version; existing artifacts never change."""
        check_name(name, "artifact name")
        check_name(kind, "artifact kind")
        exact = self.resolve(ref)
        if any(artifact.name == name for artifact in self.get(exact).artifacts):
            raise RegistryError(_exists_message(exact, name))
        staging = fs.new_staging_dir(self.root / "tmp", "attach")
        try:
            artifact = self._stage_file(staging, name, Path(path), kind)
            updated = self.index.write(lambda conn: self._attach_staged(conn, exact, artifact, staging))
        finally:
            fs.remove_tree(staging)
        self._refresh_mirror(self.get(exact))  # from the index: a concurrent attach may have added more
        log.info("attached %r (%s) to %s", name, kind, exact)
        return updated

    def tag(self, ref: str, alias: str) -> None:
        """Point ``name@alias`` at the record ``ref`` names (moving it if it pointed elsewhere)."""
        check_alias(alias)

        def work(conn: Connection) -> None:
            name, version = self._resolve(conn, parse_ref(ref))
            _set_alias(conn, name, alias, version)

        self.index.write(work)

    def promote(self, ref: str, alias: str = "best", metric: str = "dice_mean", higher_is_better: bool = True) -> bool:
        """Move ``name@alias`` to ``ref`` if its ``metric`` beats the current target's (or there is none).

        Returns whether the alias moved. Read, compare and move happen in one write transaction, so
        concurrent promotions cannot both win.
        """
        check_alias(alias)

        def work(conn: Connection) -> bool:
            name, version = self._resolve(conn, parse_ref(ref))
            candidate = _metric(self._load(conn, name, version), metric)
            if candidate is None:
                raise RegistryError(f"record {name}:{version} has no metric {metric!r}; cannot promote it by it")
            current = conn.execute(
                select(aliases.c.version).where(and_(aliases.c.name == name, aliases.c.alias == alias))
            ).scalar()
            if current == version:
                return False
            if current is not None:
                incumbent = _metric(self._load(conn, name, current), metric)
                if incumbent is not None and not (candidate > incumbent if higher_is_better else candidate < incumbent):
                    return False
            _set_alias(conn, name, alias, version)
            return True

        moved = self.index.write(work)
        log.info("%s@%s %s", ref, alias, "moved" if moved else "unchanged")
        return moved

    def remove(self, ref: str) -> str:
        """Delete a record version, its aliases and its files. Returns the exact ref removed."""

        def work(conn: Connection) -> tuple[str, int]:
            name, version = self._resolve(conn, parse_ref(ref))
            record_id = _record_id(conn, name, version)
            conn.execute(delete(artifacts).where(artifacts.c.record_id == record_id))
            conn.execute(delete(aliases).where(and_(aliases.c.name == name, aliases.c.version == version)))
            conn.execute(delete(records).where(records.c.id == record_id))
            return name, version

        name, version = self.index.write(work)
        self._discard_dir(self.root / "records" / name / str(version))
        log.info("removed %s:%d", name, version)
        return f"{name}:{version}"

    # ----------------------------------------------------------------- reading

    def resolve(self, ref: str) -> str:
        """The exact ``name:version`` a reference points at now."""
        with self.index.read() as conn:
            name, version = self._resolve(conn, parse_ref(ref))
        return f"{name}:{version}"

    def get(self, ref: str) -> ArchitectureRecord:
        """The record ``ref`` points at (RegistryError naming the ref if there is none)."""
        with self.index.read() as conn:
            name, version = self._resolve(conn, parse_ref(ref))
            return self._load(conn, name, version)

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

    def aliases(self) -> dict[str, list[str]]:
        """Exact ref -> its aliases, ``latest`` included (per name, and ``latest`` overall separately)."""
        found: dict[str, list[str]] = {}
        with self.index.read() as conn:
            for name, alias, version in conn.execute(select(aliases.c.name, aliases.c.alias, aliases.c.version)):
                found.setdefault(f"{name}:{version}", []).append(alias)
            for name in conn.execute(select(names.c.name)).scalars():
                newest = self._newest(conn, name)
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
        path = self._artifact_file(record, artifact)
        problem = _check_artifact(artifact, path, full=verify)
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
        return self._record_dir(self.get(ref))

    def card(self, ref: str) -> str:
        """The record's model card (Markdown with YAML front matter)."""
        record = self.get(ref)
        return render_card(record, self.aliases().get(record.ref, []))

    # ----------------------------------------------------------------- checking

    def verify(self) -> list[Problem]:
        """Check every artifact's presence and sha256; sweep leftovers of interrupted writes first.

        Record directories this index does not know are reported (kind ``unindexed``), never removed."""
        self.cleanup()
        problems = [Problem(f"{d.parent.name}:{d.name}", None, "unindexed", d) for d in self.unindexed()]
        with self.index.read() as conn:
            rows = conn.execute(select(records.c.name, records.c.version, records.c.payload)).all()
        for name, version, payload in rows:
            ref = f"{name}:{version}"
            try:
                record = load_record(json.loads(payload))
            except (RegistryError, ValueError):
                problems.append(Problem(ref, None, "unreadable", self.root / "records" / name / str(version)))
                continue
            for artifact in record.artifacts:
                path = self._artifact_file(record, artifact)
                kind = _check_artifact(artifact, path, full=True)
                if kind is not None:
                    problems.append(Problem(ref, artifact.name, kind, path))
            self._refresh_mirror(record)
        still_there = {record.ref for record in self.list()}  # removed meanwhile: no longer a problem
        return [problem for problem in problems if problem.kind == "unindexed" or problem.ref in still_there]

    def cleanup(self) -> list[Path]:
        """Remove what interrupted writes left behind: staging dirs, uncommitted pending record dirs and
        unindexed files inside indexed records (interrupted attaches)."""
        removed = fs.sweep_staging(self.root / "tmp")
        removed += self.index.write(self._sweep_records)
        return removed

    def unindexed(self) -> list[Path]:
        """Committed record directories this index has no row for (its index was lost, or is another one)."""
        with self.index.read() as conn:
            known = {(name, str(version)) for name, version in conn.execute(select(records.c.name, records.c.version))}
        return [d for d in self._version_dirs() if (d.parent.name, d.name) not in known]

    def reindex(self) -> list[str]:
        """Add every unindexed record directory back to the index from its ``record.json`` (aliases other
        than ``latest`` are not recoverable). Returns the refs added; an unreadable one is an error."""

        def work(conn: Connection) -> list[str]:
            added = []
            for folder in self.unindexed():
                try:
                    record = load_record(json.loads((folder / RECORD_FILE).read_text()))
                except (OSError, ValueError, RegistryError) as exc:
                    raise RegistryError(f"cannot re-index {folder}: its {RECORD_FILE} is unreadable ({exc})") from exc
                if (record.name, str(record.version)) != (folder.parent.name, folder.name):
                    raise RegistryError(f"cannot re-index {folder}: its {RECORD_FILE} names {record.ref}")
                _reserve_version(conn, record.name, record.version)
                self._insert(conn, record)
                added.append(record.ref)
            return added

        added = self.index.write(work)
        log.info("re-indexed %d record(s)", len(added))
        return added

    # ----------------------------------------------------------------- internals

    def _stage_file(self, staging: Path, name: str, source: Path, kind: str) -> Artifact:
        suffix = source.suffix if SAFE_SUFFIX.fullmatch(source.suffix) else ""
        relative = f"{FILES_DIR}/{name}{suffix}"
        (staging / FILES_DIR).mkdir(exist_ok=True)
        size, sha256 = fs.copy_and_hash(source, staging / relative)
        return Artifact(name=name, path=relative, kind=kind, size=size, sha256=sha256)

    def _resolve_parent(self, parent: str) -> str:
        """The parent pinned to an exact ``name:version`` (an alias would move; lineage must not)."""
        try:
            return self.resolve(parent)
        except RegistryError as exc:
            raise RegistryError(f"parent {parent!r} cannot be used: {exc}") from None

    def _publish(
        self, conn: Connection, template: ArchitectureRecord, staging: Path, alias_list: list[str]
    ) -> ArchitectureRecord:
        """Inside the write transaction: allocate the version, move the files into place, index them."""
        if not staging.is_dir():
            raise RegistryError(f"registering {template.name!r} was interrupted mid-commit; register it again")
        version = _next_version(conn, template.name, self._disk_versions(template.name))
        stored = template.model_copy(update={"version": version})
        fs.write_json(staging / RECORD_FILE, stored.model_dump(mode="json"))
        target = self._pending_dir(stored.name, version)
        if target.exists():  # left by a writer killed after its rename, before its commit
            fs.remove_tree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, target)
        try:
            fs.fsync_dir(target.parent)
            self._insert(conn, stored)
            for alias in alias_list:
                _set_alias(conn, stored.name, alias, version)
        except BaseException:
            os.rename(target, staging)  # the transaction rolls back: so do the files
            raise
        return stored

    def _insert(self, conn: Connection, record: ArchitectureRecord) -> None:
        created = record.created if record.created.tzinfo else record.created.replace(tzinfo=UTC)
        record_id = conn.execute(
            records.insert().values(
                name=record.name,
                version=record.version,
                created_ts=created.timestamp(),
                dataset=record.dataset.name,
                strategy=record.strategy.name,
                space=record.space.name,
                dice_mean=_finite(record.metrics.dice_mean),
                params=record.metrics.params,
                peak_memory_mb=_finite(record.metrics.peak_memory_mb),
                schema_version=record.schema_version,
                payload=json.dumps(record.model_dump(mode="json"), sort_keys=True),
            )
        ).inserted_primary_key[0]
        for artifact in record.artifacts:
            conn.execute(artifacts.insert().values(record_id=record_id, **artifact.model_dump()))

    def _attach_staged(self, conn: Connection, exact: str, artifact: Artifact, staging: Path) -> ArchitectureRecord:
        name, version = self._resolve(conn, parse_ref(exact))
        record = self._load(conn, name, version)
        if any(existing.name == artifact.name for existing in record.artifacts):
            raise RegistryError(_exists_message(exact, artifact.name))
        updated = record.model_copy(update={"artifacts": [*record.artifacts, artifact]})
        target = self._record_dir(record) / artifact.path
        target.parent.mkdir(exist_ok=True)
        if target.exists():  # an unindexed leftover of an interrupted attach
            fs.remove_tree(target)
        os.rename(staging / artifact.path, target)
        try:
            fs.fsync_dir(target.parent)
            record_id = _record_id(conn, name, version)
            conn.execute(artifacts.insert().values(record_id=record_id, **artifact.model_dump()))
            conn.execute(
                update(records)
                .where(records.c.id == record_id)
                .values(payload=json.dumps(updated.model_dump(mode="json"), sort_keys=True))
            )
        except BaseException:
            os.rename(target, staging / artifact.path)
            raise
        return updated

    def _sweep_records(self, conn: Connection) -> list[Path]:
        """Under the write lock: finish or delete pending record dirs, delete files no index row owns."""
        owned: dict[tuple[str, str], set[str]] = {}
        for name, version, payload in conn.execute(select(records.c.name, records.c.version, records.c.payload)):
            paths = {item["path"] for item in json.loads(payload).get("artifacts", [])}
            owned[(name, str(version))] = paths
        removed: list[Path] = []
        for name_dir in sorted((self.root / "records").iterdir()):
            for version_dir in sorted(name_dir.iterdir()) if name_dir.is_dir() else []:
                if version_dir.name.startswith(PENDING_PREFIX):
                    version = version_dir.name.removeprefix(PENDING_PREFIX)
                    if (name_dir.name, version) in owned:  # committed; its writer died before the rename
                        version_dir = self._finish_pending(name_dir.name, version)
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

    def _version_dirs(self) -> list[Path]:
        """Every committed record directory on disk (``records/<name>/<version>``)."""
        return [
            version_dir
            for name_dir in sorted((self.root / "records").iterdir()) if name_dir.is_dir()
            for version_dir in sorted(name_dir.iterdir(), key=lambda d: (len(d.name), d.name))
            if version_dir.is_dir() and version_dir.name.isdigit()
        ]  # fmt: skip

    def _disk_versions(self, name: str) -> list[int]:
        """Versions of ``name`` with a directory on disk, committed or pending."""
        folder = self.root / "records" / name
        found = [d.name.removeprefix(PENDING_PREFIX) for d in folder.iterdir()] if folder.is_dir() else []
        return [int(v) for v in found if v.isdigit()]

    def _pending_dir(self, name: str, version: int | str) -> Path:
        return self.root / "records" / name / f"{PENDING_PREFIX}{version}"

    def _finish_pending(self, name: str, version: int | str) -> Path:
        """Give a committed record's pending directory its final name (idempotent, race-safe)."""
        final = self.root / "records" / name / str(version)
        try:
            os.rename(self._pending_dir(name, version), final)
        except FileNotFoundError:
            pass  # another process finished it, or it was never pending
        return final

    def _discard_dir(self, path: Path) -> None:
        """Move a removed record's directory out of ``records/`` at once, then delete it."""
        trash = fs.new_staging_dir(self.root / "tmp", "rm")
        try:
            os.rename(path, trash / "record")
        except FileNotFoundError:
            pass  # already swept by a concurrent cleanup
        fs.remove_tree(trash)

    def _refresh_mirror(self, record: ArchitectureRecord) -> None:
        """Rewrite record.json where an interrupted attach left it behind the index."""
        mirror = self._record_dir(record) / RECORD_FILE
        expected = record.model_dump(mode="json")
        try:
            current = json.loads(mirror.read_text())
        except (OSError, ValueError):
            current = None
        if current != expected and mirror.parent.is_dir():
            fs.write_json(mirror, expected)
            log.info("refreshed %s", mirror)

    def _record_dir(self, record: ArchitectureRecord) -> Path:
        """The committed record's directory (finishing its publication if its writer died just after the commit)."""
        final = self.root / "records" / record.name / str(record.version)
        if not final.exists() and self._pending_dir(record.name, record.version).exists():
            self._finish_pending(record.name, record.version)
        return final

    def _artifact_file(self, record: ArchitectureRecord, artifact: Artifact) -> Path:
        base = self._record_dir(record).resolve()
        path = (base / artifact.path).resolve()
        if not path.is_relative_to(base):
            raise RegistryError(f"artifact {artifact.name!r} of {record.ref} points outside its record; remove it")
        return path

    def _resolve(self, conn: Connection, ref: Ref) -> tuple[str, int]:
        if ref.name is None:
            row = conn.execute(
                select(records.c.name, records.c.version)
                .order_by(records.c.created_ts.desc(), records.c.id.desc())
                .limit(1)
            ).first()
            if row is None:
                raise RegistryError(f"the registry at {self.root} is empty; register a model first")
            return row[0], row[1]
        if ref.version is not None:
            version: int | None = ref.version
            exists = conn.execute(
                select(records.c.id).where(and_(records.c.name == ref.name, records.c.version == ref.version))
            ).first()
            if exists is None:
                version = None
        elif ref.alias == LATEST:
            version = self._newest(conn, ref.name)
        else:
            version = conn.execute(
                select(aliases.c.version).where(and_(aliases.c.name == ref.name, aliases.c.alias == ref.alias))
            ).scalar()
        if version is None:
            raise RegistryError(f"no record matches {str(ref)!r}; run `automl-seg registry list` to see what exists")
        return ref.name, version

    def _newest(self, conn: Connection, name: str) -> int | None:
        return conn.execute(
            select(records.c.version)
            .where(records.c.name == name)
            .order_by(records.c.created_ts.desc(), records.c.version.desc())
            .limit(1)
        ).scalar()

    def _load(self, conn: Connection, name: str, version: int) -> ArchitectureRecord:
        payload = conn.execute(
            select(records.c.payload).where(and_(records.c.name == name, records.c.version == version))
        ).scalar()
        if payload is None:
            raise RegistryError(f"no record matches '{name}:{version}'; run `automl-seg registry list`")
        return load_record(json.loads(payload))


def _revalidated(record: ArchitectureRecord) -> ArchitectureRecord:
    """The record re-checked as it will be stored: JSON-serialisable and valid (model_copy skips validation)."""
    try:
        return ArchitectureRecord.model_validate(json.loads(json.dumps(record.model_dump(mode="json"))))
    except (ValueError, TypeError) as exc:  # pydantic's errors are ValueErrors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(
            f"record {record.name!r} cannot be stored ({first}); keep arch, settings and plan to plain JSON values"
        ) from exc


def _next_version(conn: Connection, name: str, on_disk: Iterable[int] = ()) -> int:
    """One above the index's last version of ``name`` and above every directory on disk (so a lost or
    another index never makes a new version overwrite a stored one)."""
    last = conn.execute(select(names.c.last_version).where(names.c.name == name)).scalar()
    version = max([last or 0, *on_disk]) + 1
    _reserve_version(conn, name, version)
    return version


def _reserve_version(conn: Connection, name: str, version: int) -> None:
    """Make the index's last version of ``name`` at least ``version``."""
    last = conn.execute(select(names.c.last_version).where(names.c.name == name)).scalar()
    if last is None:
        conn.execute(names.insert().values(name=name, last_version=version))
    elif last < version:
        conn.execute(update(names).where(names.c.name == name).values(last_version=version))


def _record_id(conn: Connection, name: str, version: int) -> int:
    record_id = conn.execute(
        select(records.c.id).where(and_(records.c.name == name, records.c.version == version))
    ).scalar()
    if record_id is None:
        raise RegistryError(f"no record matches '{name}:{version}'; it was removed meanwhile")
    return record_id


def _set_alias(conn: Connection, name: str, alias: str, version: int) -> None:
    conn.execute(delete(aliases).where(and_(aliases.c.name == name, aliases.c.alias == alias)))
    conn.execute(aliases.insert().values(name=name, alias=alias, version=version))


def _metric(record: ArchitectureRecord, metric: str) -> float | None:
    """A named metric: a Metrics field, else a key of ``metrics.extra`` or ``metrics.memory``."""
    value: Any = getattr(record.metrics, metric, None)
    if value is None:
        value = record.metrics.extra.get(metric, record.metrics.memory.get(metric))
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _check_artifact(artifact: Artifact, path: Path, full: bool) -> Literal["missing", "altered"] | None:
    if not path.is_file():
        return "missing"
    if path.stat().st_size != artifact.size:
        return "altered"
    if full and fs.sha256_file(path) != artifact.sha256:
        return "altered"
    return None


def _exists_message(ref: str, name: str) -> str:
    return f"record {ref} already has an artifact {name!r}; artifacts never change: attach under another name"
