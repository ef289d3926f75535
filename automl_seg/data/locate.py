"""Finding an MSD task under a data root, downloading known Decathlon tasks that are missing.

The root is ``--data-root``, else ``$AUTOML_SEG_DATA``, else a per-user cache folder. A root the
user named must exist; the default cache root is created on demand, because downloads go there.
Downloads use MONAI's decathlon tables (URL and md5) and the two steps of
``monai.apps.download_and_extract``: ``download_url`` (skipped when a verified archive is already
in place) and ``extractall``, both checking the md5. They are called directly because
``download_and_extract`` in MONAI 1.6 first asks the server for the file name with ``requests``,
which fails offline (and without the optional ``requests`` package) even when the archive exists.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from automl_seg import paths
from automl_seg.errors import DataError

log = logging.getLogger(__name__)


def msd_resources() -> tuple[dict[str, str], dict[str, str]]:
    """MONAI's Decathlon tables: task name -> archive URL, task name -> archive md5."""
    from monai.apps import DecathlonDataset

    return DecathlonDataset.resource, DecathlonDataset.md5


def resolve_root(data_root: Path | None) -> Path:
    """The data root to use; one clear error when a root the user named does not exist."""
    named = data_root is not None or bool(os.environ.get(paths.DATA_ENV))
    root = paths.data_root(data_root)
    if named and not root.is_dir():
        source = "--data-root" if data_root is not None else f"${paths.DATA_ENV}"
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataError(f"data root {root} (from {source}) {what}; pass the folder that holds the MSD tasks")
    return root


def _listing(root: Path) -> str:
    if not root.is_dir():
        return "nothing (the folder does not exist yet)"
    found = sorted(p.name for p in root.iterdir() if (p / "dataset.json").is_file())
    return ", ".join(found) or "no task folders"


def find_task(name: str, data_root: Path | None, *, download: bool = False, progress: bool = True) -> Path:
    """The folder of task ``name`` under the data root, downloading a missing MSD task if allowed."""
    root = resolve_root(data_root)
    task = root / name
    if task.is_dir():
        return task
    resources, _ = msd_resources()
    if name not in resources:
        raise DataError(
            f"unknown dataset '{name}': not under {root} (which holds {_listing(root)}) and not an MSD task "
            f"({', '.join(sorted(resources))})"
        )
    if not download:
        raise DataError(
            f"dataset {name} is not under {root}; run 'automl-seg data check {name} --data-root {root}' to download it"
        )
    return download_task(name, root, progress=progress)


def download_task(name: str, root: Path, *, progress: bool = True) -> Path:
    """Download and extract MSD task ``name`` into ``root``; the archive's md5 is checked first.

    An archive already at ``root/<name>.tar`` is verified and used without a download (this is also
    how a machine without network gets the data: copy the archive there). The archive is removed
    after a successful extraction."""
    from monai.apps import download_url, extractall

    resources, md5s = msd_resources()
    archive = root / f"{name}.tar"
    try:
        root.mkdir(parents=True, exist_ok=True)
        log.info("downloading %s from %s into %s", name, resources[name], root)
        download_url(resources[name], filepath=archive, hash_val=md5s.get(name), hash_type="md5", progress=progress)
        extractall(archive, output_dir=root, hash_val=md5s.get(name), hash_type="md5", has_base=True)
    except Exception as exc:  # network, permission, checksum: all end in the same advice
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"could not download {name} ({type(exc).__name__}: {reason}); download {resources[name]} yourself and "
            f"extract it so that {root / name / 'dataset.json'} exists, or put the archive at {archive}"
        ) from exc
    task = root / name
    if not (task / "dataset.json").is_file():
        raise DataError(f"the {name} archive did not contain {name}/dataset.json; remove {archive} and retry")
    archive.unlink(missing_ok=True)
    return task
