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


def holdout_cases(case_ids: list[str], fraction: float, seed: int) -> list[str]:
    """The ``round(n * fraction)`` cases (at least one when ``fraction > 0``) set aside before the train/validation
    split, drawn with a stream of ``seed`` apart from the split's; none when ``fraction`` is 0."""
    if fraction <= 0:
        return []
    ids = sorted(case_ids)
    count = max(1, round(len(ids) * fraction))
    if len(ids) - count < 2:
        raise DataError(
            f"holding out {count} of {len(ids)} cases leaves {len(ids) - count} for training and validation "
            "(at least 2 needed); use more cases (--max-cases) or a smaller held-out fraction"
        )
    order = np.random.default_rng([seed, 1]).permutation(len(ids))
    return sorted(ids[i] for i in order[:count])
