"""The deterministic train/validation split: the same seed and case ids always give the same split."""

from __future__ import annotations

import numpy as np

from automl_seg.data.models import Split
from automl_seg.errors import DataError


def split_cases(case_ids: list[str], val_fraction: float, seed: int) -> Split:
    """Shuffle the sorted ids with ``seed`` and hold out ``round(n * val_fraction)`` (at least one each)."""
    ids = sorted(case_ids)
    if len(ids) < 2:
        raise DataError(
            f"a train/validation split needs at least 2 cases, got {len(ids)}; raise --max-cases or add cases"
        )
    num_val = min(max(1, round(len(ids) * val_fraction)), len(ids) - 1)
    order = np.random.default_rng(seed).permutation(len(ids))
    val = sorted(ids[i] for i in order[:num_val])
    train = sorted(ids[i] for i in order[num_val:])
    return Split(seed=seed, val_fraction=val_fraction, train=train, val=val)
