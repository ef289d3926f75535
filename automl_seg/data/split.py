"""The deterministic split: the same seed and case ids always give the same split.

An optional test set is held out first (its own seeded draw), so no training or validation run ever
sees it; the train/validation split of the remaining cases is the one the seed gave before test sets
existed when ``test_fraction`` is 0.
"""

from __future__ import annotations

import numpy as np

from automl_seg.data.models import Split
from automl_seg.errors import DataError

TEST_STREAM = 7  #: mixed into the seed of the test set's draw, so it is not the validation draw


def split_cases(case_ids: list[str], val_fraction: float, seed: int, test_fraction: float = 0.0) -> Split:
    """Hold out ``round(n * test_fraction)`` test cases (none when 0), then shuffle the sorted remaining
    ids with ``seed`` and hold out ``round(m * val_fraction)`` (at least one each) for validation."""
    ids = sorted(case_ids)
    test: list[str] = []
    if test_fraction > 0:
        num_test = max(1, round(len(ids) * test_fraction))
        if len(ids) - num_test < 2:
            raise DataError(
                f"a test fraction of {test_fraction:g} leaves {len(ids) - num_test} of {len(ids)} cases for "
                "training and validation (2 needed); lower test_fraction or add cases"
            )
        order = np.random.default_rng([seed, TEST_STREAM]).permutation(len(ids))
        test = sorted(ids[i] for i in order[:num_test])
        ids = sorted(ids[i] for i in order[num_test:])
    if len(ids) < 2:
        raise DataError(
            f"a train/validation split needs at least 2 cases, got {len(ids)}; raise --max-cases or add cases"
        )
    num_val = min(max(1, round(len(ids) * val_fraction)), len(ids) - 1)
    order = np.random.default_rng(seed).permutation(len(ids))
    val = sorted(ids[i] for i in order[:num_val])
    train = sorted(ids[i] for i in order[num_val:])
    return Split(seed=seed, val_fraction=val_fraction, train=train, val=val, test_fraction=test_fraction, test=test)
