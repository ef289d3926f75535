"""The dataset fingerprint: one validating pass over every case, summarised and cached.

The summary (shapes, spacings, foreground intensity percentiles, class voxel fractions, a sha256
over the files' bytes, and per case its shape, spacing, foreground and nonzero bounding boxes, classes
and class centroids, which the planner and its warnings need) is cached in the per-user cache folder, keyed by
the dataset.json bytes and every case file's path, size and modification time, so an unchanged
dataset is not re-read. The data root itself is never written to (it may be read-only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from platformdirs import user_cache_path
from pydantic import ValidationError

from automl_seg.data.models import CaseFacts, Fingerprint, IntensityStats, ShapeSummary
from automl_seg.data.msd import DatasetInfo
from automl_seg.data.scan import CaseStats, scan_case
from automl_seg.errors import DataError
from automl_seg.progress import track

log = logging.getLogger(__name__)

#: bump when the fingerprint's content or computation changes, so old cache entries are ignored
FINGERPRINT_VERSION = 3


def cache_dir() -> Path:
    return user_cache_path("automl-seg") / "fingerprints"


def cache_key(info: DatasetInfo) -> str:
    """Changes when dataset.json or any case file's size or modification time changes."""
    entries = []
    for case in info.cases:
        for file in (case.image, case.label):
            st = file.stat()
            entries.append([case.id, str(file), st.st_size, st.st_mtime_ns])
    payload = {
        "version": FINGERPRINT_VERSION,
        "dataset_json": hashlib.sha256(info.dataset_json.read_bytes()).hexdigest(),
        "files": entries,
    }
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()


def _read_cached(key: str) -> Fingerprint | None:
    path = cache_dir() / f"{key}.json"
    try:
        return Fingerprint.model_validate_json(path.read_text())
    except (OSError, ValidationError, ValueError):
        return None


def _write_cached(key: str, fingerprint: Fingerprint) -> None:
    """Atomic write; a cache that cannot be written only costs a re-scan next time."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as tmp:
            tmp.write(fingerprint.model_dump_json())
        os.replace(tmp.name, folder / f"{key}.json")
    except OSError as exc:
        log.warning("could not cache the fingerprint in %s: %s", folder, exc)


def _summary(values: list[tuple[float, float, float]]) -> ShapeSummary:
    array = np.asarray(values, dtype=np.float64)
    return ShapeSummary(
        min=tuple(array.min(0).tolist()), median=tuple(np.median(array, 0).tolist()), max=tuple(array.max(0).tolist())
    )


def summarise(info: DatasetInfo, stats: list[CaseStats], content_hash: str) -> Fingerprint:
    """Aggregate per-case measurements into the dataset's fingerprint (no split yet)."""
    intensity = []
    for channel, modality in info.modality.items():
        values = np.concatenate([s.foreground_samples[channel] for s in stats])
        if values.size == 0:
            raise DataError(f"no case of {info.dataset_json.parent} has any foreground label; check the labels")
        p00_5, p50, p99_5 = np.percentile(values, [0.5, 50, 99.5]).tolist()
        intensity.append(
            IntensityStats(
                channel=modality, p00_5=p00_5, p50=p50, p99_5=p99_5, mean=float(values.mean()), std=float(values.std())
            )
        )
    totals = {label: sum(s.label_counts.get(label, 0) for s in stats) for label in info.labels}
    voxels = sum(totals.values())
    return Fingerprint(
        dataset=info.name,
        num_cases=len(stats),
        num_channels=info.num_channels,
        modality=info.modality,
        labels=info.labels,
        shapes=_summary([s.shape for s in stats]),
        spacings=_summary([s.spacing for s in stats]),
        intensity=intensity,
        class_fractions={label: count / voxels for label, count in totals.items()},
        content_hash=content_hash,
        cases=[
            CaseFacts(
                id=s.id,
                shape=s.shape,
                spacing=s.spacing,
                foreground_extent=s.foreground_extent,
                nonzero_extent=s.nonzero_extent,
                classes=sorted(label for label, count in s.label_counts.items() if count),
                class_centroids=s.class_centroids or {},
            )
            for s in stats
        ],
    )


def fingerprint_dataset(info: DatasetInfo, *, progress: bool = True, use_cache: bool = True) -> Fingerprint:
    """Validate every case and fingerprint the dataset (from the cache when nothing changed)."""
    key = cache_key(info)
    if use_cache and (cached := _read_cached(key)) is not None:
        log.debug("fingerprint of %s from cache %s", info.name, key[:12])
        return cached
    hasher = hashlib.sha256(json.dumps({"labels": info.labels, "modality": info.modality}, sort_keys=True).encode())
    cases = sorted(info.cases, key=lambda c: c.id)
    stats = [
        scan_case(case, info, hasher, seed=index)
        for index, case in track(enumerate(cases), f"checking {info.name}", total=len(cases), enabled=progress)
    ]
    fingerprint = summarise(info, stats, hasher.hexdigest())
    _write_cached(key, fingerprint)
    return fingerprint
