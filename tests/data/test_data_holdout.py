"""Held-out cases (``DataSettings.holdout_fraction``): set aside before the fingerprint, plan and split."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_seg.config import DataSettings
from automl_seg.data import prepare_data
from automl_seg.data.split import holdout_cases
from automl_seg.errors import DataError


def test_holdout_is_seeded_sized_and_apart_from_the_split() -> None:
    ids = [f"case_{i:03d}" for i in range(20)]
    held = holdout_cases(ids, 0.2, seed=0)
    assert len(held) == 4 and held == holdout_cases(list(reversed(ids)), 0.2, seed=0)
    assert held != holdout_cases(ids, 0.2, seed=1)
    assert holdout_cases(ids, 0.0, seed=0) == []
    assert len(holdout_cases(ids, 0.01, seed=0)) == 1  # at least one
    with pytest.raises(DataError, match="leaves 1 for training and validation"):
        holdout_cases(ids[:3], 0.5, seed=0)


def test_prepared_data_never_shows_held_out_cases_to_training(synthetic_root: Path) -> None:
    settings = DataSettings(dataset="Task99_Synthetic", data_root=synthetic_root, holdout_fraction=0.34)
    data = prepare_data(settings, progress=False, use_cache=False)
    assert len(data.test_cases) == 2
    assert not set(data.test_cases) & set(data.train_cases + data.val_cases)
    assert data.fingerprint.num_cases == 4  # the plan is derived without them
    assert [volume["case"] for volume in data.preprocessed(data.test_cases)] == data.test_cases
    plain = prepare_data(settings.model_copy(update={"holdout_fraction": 0.0}), progress=False, use_cache=False)
    assert plain.test_cases == [] and plain.fingerprint.num_cases == 6
