"""Engine fixtures: a tiny prepared synthetic dataset, tiny training settings, a trained registry."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from automl_seg.config import DataSettings
from automl_seg.data.synthetic import make_synthetic_msd
from automl_seg.engine.settings import TrainSettings, train_settings

DATASET = "Task99_Synthetic"
PATCH = (16, 16, 16)
#: cases of 12-16 voxels a side pad to one 16^3 window: validation is a single forward pass per case
TINY_SHAPE = (14, 14, 14)


def make_tiny_train(**overrides: object) -> TrainSettings:
    """Two epochs of two steps: enough to exercise every code path in about a second."""
    values = {"epochs": 2, "iterations": 2, "val_every": 10, "val_cases": 1, "lr": 3e-3}
    values.update(overrides)
    return train_settings("quick", overrides=values)


#: the trained registry's split: evaluate and train must take it from the record, not from the defaults
NON_DEFAULT_SPLIT = {"val_fraction": 0.34, "split_seed": 3}


def tiny_data_settings(root: Path) -> DataSettings:
    return DataSettings(dataset=DATASET, data_root=root, patch_size=PATCH)


@pytest.fixture
def tiny_train():
    """``tiny_train(**overrides)``: tiny training settings (conftest helpers cannot be imported)."""
    return make_tiny_train


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("engine-data")
    make_synthetic_msd(root, num_cases=5, shape=TINY_SHAPE)
    return root


@pytest.fixture
def tiny_data_root(tmp_path: Path) -> Path:
    """A data root of this test's own (the CLI tests may damage or extend it)."""
    make_synthetic_msd(tmp_path / "tiny-data", num_cases=5, shape=TINY_SHAPE)
    return tmp_path / "tiny-data"


@pytest.fixture(scope="module")
def prepared(data_root: Path):
    from automl_seg.data import prepare_data

    return prepare_data(tiny_data_settings(data_root), progress=False, use_cache=False)


@dataclass
class TrainedRegistry:
    root: Path
    data_root: Path
    architecture: str
    trained: str


@pytest.fixture(scope="module")
def trained_registry(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedRegistry:
    """A registry holding the fixed baseline's architecture (v1) and a trained model (v2)."""
    from automl_seg_registry import Registry

    from automl_seg.engine.pipeline import run_search
    from automl_seg.engine.settings import SearchRunSettings
    from automl_seg.plugins import load_plugins

    root = tmp_path_factory.mktemp("engine-registry")
    run = SearchRunSettings(strategy="fixed", device="cpu", workdir=root / "work", progress=False)
    with Registry.open(root / "registry") as registry:
        result = run_search(
            run,
            tiny_data_settings(data_root).model_copy(update=NON_DEFAULT_SPLIT),
            make_tiny_train(),
            {},
            registry=registry,
            host=load_plugins(),
        )
    assert result.trained is not None
    return TrainedRegistry(root / "registry", data_root, result.architecture.ref, result.trained.record.ref)


@pytest.fixture
def broken_registry(trained_registry, tmp_path: Path) -> Path:
    """A copy of the trained registry that a test may damage."""
    copy = tmp_path / "registry"
    shutil.copytree(trained_registry.root, copy)
    return copy
