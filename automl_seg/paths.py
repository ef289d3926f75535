"""Where things live on disk: data root and registry folder, by flag, environment or per-user dir."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_path, user_data_path

from automl_seg.errors import ConfigError

DATA_ENV = "AUTOML_SEG_DATA"
REGISTRY_ENV = "AUTOML_SEG_REGISTRY"


def data_root(explicit: Path | None = None) -> Path:
    """``--data-root``, else ``$AUTOML_SEG_DATA``, else the per-user cache (where downloads go)."""
    if explicit is not None:
        return Path(explicit).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return user_cache_path("automl-seg") / "data"


def registry_root(explicit: Path | None = None) -> Path:
    """``--registry``, else ``$AUTOML_SEG_REGISTRY``, else the per-user data dir."""
    if explicit is not None:
        return Path(explicit).expanduser()
    if os.environ.get(REGISTRY_ENV):
        return Path(os.environ[REGISTRY_ENV]).expanduser()
    return user_data_path("automl-seg") / "registry"


def output_file(target: Path, overwrite: bool, flag: str = "--output") -> Path:
    """``target`` checked as a file the user asked us to write: its folder exists and is writable, it
    is not a folder, and it does not exist yet unless ``overwrite`` (a clear ConfigError otherwise)."""
    target = Path(target).expanduser()
    folder = target.parent
    if target.is_dir():
        raise ConfigError(f"{flag} {target} is a folder; give a file name inside it")
    if not folder.is_dir():
        raise ConfigError(f"output folder {folder} does not exist; create it or pass {flag} in an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"cannot write {target}: permission denied; pass {flag} somewhere writable")
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} already exists; pass --overwrite to replace it, or choose another {flag}")
    return target


def work_folder(path: Path, flag: str = "--workdir") -> Path:
    """``path`` as a folder to write into: created when missing, a clear ConfigError when it cannot be
    (a file there, no permission)."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{flag} {path} cannot be a folder ({reason}); pass a folder you can write to") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path} is not writable; pass a folder you can write to")
    return path
