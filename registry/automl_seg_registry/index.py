"""The registry index: SQLAlchemy tables and transactions, on SQLite (default) or a server database.

Writers are serialised: on SQLite a write transaction starts with ``BEGIN IMMEDIATE`` (the database
write lock is taken before anything is read, so two writers can never allocate the same version),
on PostgreSQL it takes a transaction-scoped advisory lock. Readers never block (WAL on SQLite).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    make_url,
    select,
)
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError

from automl_seg.databases import with_installed_driver
from automl_seg.errors import RegistryError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Layout of the index tables. Bump with a migration step when tables change.
INDEX_SCHEMA_VERSION = 1
#: Seconds a writer waits for the SQLite write lock before a retry.
SQLITE_BUSY_TIMEOUT_S = 30.0
WRITE_ATTEMPTS = 5
#: Arbitrary constant key of the PostgreSQL advisory lock that serialises registry writers.
PG_WRITE_LOCK_KEY = 0x6175746F6D6C  # "automl"
_WRITE_OPTION = "automl_seg_registry_write"

metadata = MetaData()

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", String(256)))
names = Table(
    "names",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("last_version", Integer, nullable=False),
    comment="highest version ever given to a name: removed versions are never reused",
)
records = Table(
    "records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("created_ts", Float, nullable=False, index=True),
    Column("dataset", String(256), nullable=False, index=True),
    Column("strategy", String(256), nullable=False, index=True),
    Column("space", String(256), nullable=False),
    Column("dice_mean", Float),
    Column("params", BigInteger),
    Column("peak_memory_mb", Float),
    Column("schema_version", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    UniqueConstraint("name", "version", name="uq_records_name_version"),
)
aliases = Table(
    "aliases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("version", Integer, nullable=False),
)
artifacts = Table(
    "artifacts",
    metadata,
    Column("record_id", Integer, ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("path", String(512), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
)


def describe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid URL>"


def sqlite_url(path: Path, read_only: bool = False) -> str:
    """The URL of the SQLite index file ``path``; ``read_only`` opens it read-only and immutable (no
    lock or WAL files are made: for a folder this process cannot write to)."""
    if not read_only:
        return f"sqlite:///{path}"
    return f"sqlite:///file:{quote(str(path))}?mode=ro&immutable=1&uri=true"


class Index:
    """One registry index database; ``read()`` and ``write(fn)`` give transactions. A ``read_only``
    index refuses writes with a RegistryError (its folder cannot be written to)."""

    def __init__(self, url: str, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        self.engine = _create_engine(url, read_only)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._ensure_schema()

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction: one consistent snapshot, never blocks writers."""
        with self._connect() as conn, conn.begin():
            yield conn

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a serialised write transaction, retrying when the lock stays busy.

        ``work`` may run more than once, so it must undo its own side effects on failure.
        """
        if self.read_only:
            raise RegistryError(
                f"the registry index {describe_url(self.url)} is read-only here (no write permission on its "
                "folder): reading works; pass a --registry you can write to for changes"
            )
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self._connect() as conn:
                    conn.execution_options(**{_WRITE_OPTION: True})
                    with conn.begin():
                        if not self.is_sqlite:
                            conn.execute(select(func.pg_advisory_xact_lock(PG_WRITE_LOCK_KEY)))
                        return work(conn)
            except DBAPIError as exc:
                if attempt == WRITE_ATTEMPTS or not (isinstance(exc, OperationalError) and _is_busy(exc)):
                    raise RegistryError(
                        f"registry index {describe_url(self.url)} is busy or unavailable ({_first_line(exc)}); "
                        "retry, or check the database"
                    ) from exc
                delay = 0.05 * 2**attempt * (1 + random.random())
                log.debug("registry index busy (attempt %d), retrying in %.2fs", attempt, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except DBAPIError as exc:
            raise RegistryError(
                f"cannot open registry index {describe_url(self.url)} ({_first_line(exc)}); "
                "check the index URL (AUTOML_SEG_REGISTRY_INDEX) and that the database is reachable"
            ) from exc

    def _ensure_schema(self) -> None:
        """Create the tables on first use; refuse an index written by a newer release."""
        try:
            with self.read() as conn:
                found = conn.execute(select(meta.c.value).where(meta.c.key == "index_schema")).scalar()
        except RegistryError:
            raise
        except DBAPIError:
            found = None  # no tables yet
        if found is None and self.read_only:
            raise RegistryError(
                f"the registry index {describe_url(self.url)} is missing or empty and its folder is read-only; "
                "pass a --registry you can write to"
            )
        if found is None:
            found = self.write(_create_schema)
        if int(found) > INDEX_SCHEMA_VERSION:
            raise RegistryError(
                f"registry index {describe_url(self.url)} has schema {found}, newer than this automl-seg "
                f"understands ({INDEX_SCHEMA_VERSION}); upgrade automl-seg"
            )


def _create_schema(conn: Connection) -> str:
    metadata.create_all(conn)
    found = conn.execute(select(meta.c.value).where(meta.c.key == "index_schema")).scalar()
    if found is None:
        found = str(INDEX_SCHEMA_VERSION)
        conn.execute(meta.insert().values(key="index_schema", value=found))
    return found


def _create_engine(url: str, read_only: bool = False) -> Engine:
    try:
        parsed = with_installed_driver(make_url(url))
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
            _configure_sqlite(engine, read_only)
            return engine
        return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise RegistryError(
            f"registry index URL {describe_url(url)} cannot be used ({_first_line(exc)}); pass a SQLAlchemy URL "
            "such as postgresql://user@host/db (pip install 'automl-seg[postgres]')"
        ) from exc


def _configure_sqlite(engine: Engine, read_only: bool = False) -> None:
    """Take over transaction control from pysqlite so writes can start with BEGIN IMMEDIATE (a
    read-only index sets no journal mode: that would be a write)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # noqa: ANN001 - DBAPI objects
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if not read_only:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "BEGIN")


def _is_busy(exc: OperationalError) -> bool:
    message = str(exc.orig).lower()
    return any(word in message for word in ("locked", "busy", "deadlock", "could not serialize"))


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__
