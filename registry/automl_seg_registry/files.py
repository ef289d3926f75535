"""Durable file operations for the record store: hashed copies, fsync, atomic renames, staging dirs.

A record's files are written into a private staging directory under ``<root>/tmp``, flushed to disk,
then renamed into place in one step, so a reader never sees half a record. Staging directories
carry the writer's host and pid in their name: one whose writer is gone is garbage. Each also holds
a marker file written when it was made: only a directory with that marker (or an empty one) is ever
deleted by a sweep, so nothing the registry did not write is removed, and symbolic links are never
followed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from automl_seg.errors import RegistryError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
#: Staging directories of writers on *other* hosts (shared file store) are only removed this old.
#: Same-host ones go as soon as their writer's pid is gone.
FOREIGN_STAGING_MAX_AGE_S = 24 * 3600
#: Written into every staging directory as it is made: proof that the registry wrote the directory.
STAGING_MARKER = ".automl-seg-staging"
_MARKER_TEXT = "written by the automl-seg registry; this directory may be deleted by its sweeps\n"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_and_hash(source: Path, target: Path) -> tuple[int, str]:
    """Copy ``source`` to ``target`` (flushed to disk), returning the copy's size and sha256."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(source, "rb") as src, open(target, "xb") as dst:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                size += len(chunk)
            dst.flush()
            os.fsync(dst.fileno())
    except FileNotFoundError as exc:
        if not Path(source).is_file():
            raise RegistryError(f"artifact file {source} does not exist; pass an existing file") from exc
        raise
    except IsADirectoryError as exc:
        raise RegistryError(f"artifact {source} is a directory; pass a single file") from exc
    return size, digest.hexdigest()


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (see :func:`write_text`)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str))


def write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically: a flushed temporary sibling renamed over ``path`` (a link there is
    replaced, never written through)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "x", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or file creation inside ``path`` durable (a no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _host_tag() -> str:
    return "".join(c if c.isalnum() else "-" for c in socket.gethostname())[:40] or "host"


def new_staging_dir(tmp_root: Path, purpose: str) -> Path:
    """A fresh private directory ``<tmp_root>/<purpose>-<host>_<pid>_<random>``."""
    tmp_root.mkdir(parents=True, exist_ok=True)
    path = tmp_root / f"{purpose}-{_host_tag()}_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    path.mkdir()
    with open(path / STAGING_MARKER, "x", encoding="utf-8") as handle:
        handle.write(_MARKER_TEXT)
    return path


def is_own_staging(path: Path) -> bool:
    """Whether ``path`` is a real directory (no link) holding the registry's staging marker."""
    marker = path / STAGING_MARKER
    try:
        return (
            not path.is_symlink()
            and path.is_dir()
            and not marker.is_symlink()
            and marker.is_file()
            and marker.read_text(encoding="utf-8") == _MARKER_TEXT
        )
    except (OSError, UnicodeDecodeError):
        return False


def remove_own(path: Path) -> bool:
    """Delete ``path`` only where the registry can prove it wrote it: a staging directory with its
    marker, or an empty real directory (``rmdir`` removes nothing else). Returns whether it went."""
    if is_own_staging(path):
        remove_tree(path)
        return True
    if path.is_dir() and not path.is_symlink():
        with contextlib.suppress(OSError):
            path.rmdir()
            return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _staging_is_stale(path: Path, host: str, now: float) -> bool:
    try:
        writer_host, pid, _ = path.name.split("-", 1)[1].rsplit("_", 2)
        pid_number = int(pid)
    except ValueError:
        return now - path.lstat().st_mtime > FOREIGN_STAGING_MAX_AGE_S
    too_old = now - path.lstat().st_mtime > FOREIGN_STAGING_MAX_AGE_S  # also covers a dead writer's reused pid
    if writer_host == host and pid_number != os.getpid():
        return too_old or not _pid_alive(pid_number)
    return too_old


def sweep_staging(tmp_root: Path) -> list[Path]:
    """Remove staging directories whose writer died (killed mid-write); return what was removed."""
    if not tmp_root.is_dir():
        return []
    host, now, removed = _host_tag(), time.time(), []
    for path in sorted(tmp_root.iterdir()):
        with contextlib.suppress(FileNotFoundError):
            if _staging_is_stale(path, host, now):
                if remove_own(path):
                    removed.append(path)
                else:
                    log.warning("left %s alone: the registry did not write it (no staging marker)", path)
    if removed:
        log.info("removed %d incomplete write(s) left by stopped writers", len(removed))
    return removed


def remove_tree(path: Path) -> None:
    """Delete a file or directory tree; a missing path is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
