"""Database URLs shared by the registry index and tuning storage."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


def with_installed_driver(parsed: URL) -> URL:
    """``postgresql://`` means SQLAlchemy's default driver (psycopg 3 since SQLAlchemy 2.1); fall back
    to psycopg2, which ``automl-seg[postgres]`` installs, when that is the one available."""
    if parsed.drivername != "postgresql" or importlib.util.find_spec("psycopg") is not None:
        return parsed
    if importlib.util.find_spec("psycopg2") is not None:
        return parsed.set(drivername="postgresql+psycopg2")
    return parsed
