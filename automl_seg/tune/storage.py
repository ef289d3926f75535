"""Where studies live: Optuna's own RDB storage, an SQLite file in the registry folder by default.

Several ``automl-seg tune`` processes on several machines share one study by pointing ``--storage``
at the same server database (``postgresql://...``); Optuna's storage does the coordination. The
storage is plain Optuna, so ``optuna-dashboard <url>`` shows it unchanged.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from automl_seg.databases import with_installed_driver
from automl_seg.errors import ConfigError

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

STUDY_FILE = "tune-studies.db"
#: seconds between a running trial's heartbeats; a worker silent for ``GRACE_S`` is dead and its
#: trial is marked failed (so a killed machine loses no trial silently: it shows as FAIL).
HEARTBEAT_S = 30
GRACE_S = 120
CREATE_ATTEMPTS = 5


def default_storage_url(registry_root: Path) -> str:
    """The SQLite study file inside the registry folder (created where missing, as opening the registry
    does: only this default storage's folder is ever created, never one a ``--storage`` URL names)."""
    folder = Path(registry_root).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create registry folder {folder} for the study file ({exc.strerror or type(exc).__name__}); "
            "pass a writable --registry or a --storage URL"
        ) from exc
    return f"sqlite:///{(folder / STUDY_FILE).resolve()}"


def safe_url(url: str) -> str:
    """``url`` with any password hidden, for messages and tables."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage for ``url``; a bad or unreachable URL is one ``ConfigError`` line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    shown = safe_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"storage URL {url!r} is not a database URL; use sqlite:///path/to/file.db or "
            "postgresql://user@host:5432/db"
        ) from exc
    parsed = with_installed_driver(parsed)
    url = parsed.render_as_string(hide_password=False)
    engine_kwargs: dict[str, object] = {"pool_pre_ping": True}
    sqlite = parsed.get_backend_name() == "sqlite"
    engine_kwargs["connect_args"] = {"timeout": 60} if sqlite else {"connect_timeout": 10}
    if sqlite and parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        folder = Path(parsed.database).expanduser().parent
        if not folder.is_dir():
            blocker = next((p for p in (folder, *folder.parents) if p.exists()), folder)
            what = "does not exist" if blocker.is_dir() else f"is not a folder ({blocker} is a file)"
            raise ConfigError(
                f"tuning storage {shown}: its folder {folder} {what}; create the folder first or pass another --storage"
            )
    try:
        return _create(url, engine_kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        reason = _first_line(exc.__cause__ or exc)
        raise ConfigError(
            f"storage {shown}: no database driver for '{parsed.drivername}' ({reason}); for PostgreSQL "
            "install automl-seg[postgres]"
        ) from exc
    except (SQLAlchemyError, OSError) as exc:
        reason = _first_line(getattr(exc, "orig", None) or exc)
        raise ConfigError(
            f"cannot reach tuning storage {shown}: {reason}; check the URL and that the database server is running"
        ) from exc


def _create(url: str, engine_kwargs: dict[str, object]) -> optuna.storages.RDBStorage:
    """Optuna's storage; retried when workers starting together race to create its tables in a fresh
    database (PostgreSQL answers the loser with a duplicate-key or already-exists error)."""
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna, and what we need
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S
                )
        except (IntegrityError, ProgrammingError) as exc:
            if attempt + 1 == CREATE_ATTEMPTS:
                raise
            log.debug("storage tables being created by another worker (%s); retrying", _first_line(exc))
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
