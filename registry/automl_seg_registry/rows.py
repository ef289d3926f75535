"""One record's rows in the index tables: look-ups and writes made inside a caller's transaction.

Every function takes the open connection, so the store and maintenance compose them into one
transaction (a write under the index's write lock, or a consistent read snapshot).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, and_, delete, select, update

from automl_seg.errors import RegistryError
from automl_seg_registry.index import aliases, artifacts, names, records
from automl_seg_registry.refs import LATEST, Ref
from automl_seg_registry.schema import ArchitectureRecord, Artifact, load_record


def resolve(conn: Connection, ref: Ref, root: Path) -> tuple[str, int]:
    """The ``(name, version)`` ``ref`` points at now (``root`` only names the registry in the error)."""
    if ref.name is None:
        row = conn.execute(
            select(records.c.name, records.c.version)
            .order_by(records.c.created_ts.desc(), records.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            raise RegistryError(f"the registry at {root} is empty; register a model first")
        return row[0], row[1]
    version: int | None = None
    if ref.version is not None:
        if _column(conn, records.c.id, ref.name, ref.version) is not None:
            version = ref.version
    elif ref.alias == LATEST:
        version = newest(conn, ref.name)
    elif ref.alias is not None:
        version = alias_target(conn, ref.name, ref.alias)
    if version is None:
        raise RegistryError(f"no record matches {str(ref)!r}; run `automl-seg registry list` to see what exists")
    return ref.name, version


def newest(conn: Connection, name: str) -> int | None:
    """The version ``name@latest`` means: the most recently created one."""
    return conn.execute(
        select(records.c.version)
        .where(records.c.name == name)
        .order_by(records.c.created_ts.desc(), records.c.version.desc())
        .limit(1)
    ).scalar()


def alias_target(conn: Connection, name: str, alias: str) -> int | None:
    return conn.execute(
        select(aliases.c.version).where(and_(aliases.c.name == name, aliases.c.alias == alias))
    ).scalar()


def load(conn: Connection, name: str, version: int) -> ArchitectureRecord:
    payload = _column(conn, records.c.payload, name, version)
    if payload is None:
        raise RegistryError(f"no record matches '{name}:{version}'; run `automl-seg registry list`")
    return load_record(json.loads(payload))


def record_id(conn: Connection, name: str, version: int) -> int:
    found = _column(conn, records.c.id, name, version)
    if found is None:
        raise RegistryError(f"no record matches '{name}:{version}'; it was removed meanwhile")
    return found


def indexed(conn: Connection) -> list[tuple[str, int, str]]:
    """``(name, version, payload)`` of every record in the index."""
    return [tuple(row) for row in conn.execute(select(records.c.name, records.c.version, records.c.payload))]


def versions(conn: Connection) -> set[tuple[str, str]]:
    """``(name, version)`` of every record in the index, the version as its directory spells it."""
    return {(name, str(version)) for name, version in conn.execute(select(records.c.name, records.c.version))}


def insert(conn: Connection, record: ArchitectureRecord) -> None:
    """Add ``record``'s row and its artifacts' rows (the version is the caller's to have reserved)."""
    created = record.created if record.created.tzinfo else record.created.replace(tzinfo=UTC)
    inserted = conn.execute(
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
            payload=payload_json(record),
        )
    ).inserted_primary_key
    if inserted is None:  # SQLAlchemy types it optional; a single-row insert always has its key
        raise RegistryError(f"indexing {record.ref} returned no row id")
    for artifact in record.artifacts:
        conn.execute(artifacts.insert().values(record_id=inserted[0], **artifact.model_dump()))


def add_artifact(conn: Connection, updated: ArchitectureRecord, artifact: Artifact) -> None:
    """Index ``artifact`` as one more of the record ``updated`` (which already lists it)."""
    found = record_id(conn, updated.name, updated.stored_version)
    conn.execute(artifacts.insert().values(record_id=found, **artifact.model_dump()))
    conn.execute(update(records).where(records.c.id == found).values(payload=payload_json(updated)))


def delete_record(conn: Connection, name: str, version: int) -> None:
    """Remove ``name:version``'s row, its artifacts' rows and the aliases pointing at it."""
    found = record_id(conn, name, version)
    conn.execute(delete(artifacts).where(artifacts.c.record_id == found))
    conn.execute(delete(aliases).where(and_(aliases.c.name == name, aliases.c.version == version)))
    conn.execute(delete(records).where(records.c.id == found))


def payload_json(record: ArchitectureRecord) -> str:
    """The record as the index's ``payload`` column holds it."""
    return json.dumps(record.model_dump(mode="json"), sort_keys=True)


def next_version(conn: Connection, name: str, on_disk: Iterable[int] = ()) -> int:
    """One above the index's last version of ``name`` and above every directory on disk (so a lost or
    another index never makes a new version overwrite a stored one)."""
    last = conn.execute(select(names.c.last_version).where(names.c.name == name)).scalar()
    version = max([last or 0, *on_disk]) + 1
    reserve_version(conn, name, version)
    return version


def reserve_version(conn: Connection, name: str, version: int) -> None:
    """Make the index's last version of ``name`` at least ``version``."""
    last = conn.execute(select(names.c.last_version).where(names.c.name == name)).scalar()
    if last is None:
        conn.execute(names.insert().values(name=name, last_version=version))
    elif last < version:
        conn.execute(update(names).where(names.c.name == name).values(last_version=version))


def set_alias(conn: Connection, name: str, alias: str, version: int) -> None:
    conn.execute(delete(aliases).where(and_(aliases.c.name == name, aliases.c.alias == alias)))
    conn.execute(aliases.insert().values(name=name, alias=alias, version=version))


def _column(conn: Connection, column: Column[Any], name: str, version: int) -> Any:
    """``column`` of the row of ``name:version`` (None where there is none)."""
    return conn.execute(select(column).where(and_(records.c.name == name, records.c.version == version))).scalar()


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
