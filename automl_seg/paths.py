"""Where things live on disk: data root and registry folder, by flag, environment or per-user dir."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_path, user_data_path

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
