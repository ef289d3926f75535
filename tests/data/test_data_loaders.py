"""Datasets and loaders: shapes, padding, in-memory caching (each file read once), seeded batches."""

from __future__ import annotations

import signal
from collections import Counter

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import Randomizable

from automl_seg.config import DataSettings
from automl_seg.data import prepare_data
from automl_seg.data.loaders import seeded_loader
from automl_seg.data.synthetic import make_synthetic_msd
from automl_seg.errors import DataError


@pytest.fixture
def data(settings):
    return prepare_data(settings(), progress=False)


def test_train_items_are_lists_of_patches(data):
    item = data.train_dataset()[0]
    assert len(item) == data.plan.samples_per_image
    for patch in item:
        assert patch["image"].shape == (1, *data.plan.patch_size)
        assert patch["label"].shape == (1, *data.plan.patch_size)
        assert patch["image"].dtype == torch.float32
        assert set(torch.unique(patch["label"]).tolist()) <= {0.0, 1.0, 2.0}


def test_train_loader_flattens_patches_into_batches(data):
    batch = next(iter(data.train_loader(batch_size=2)))
    assert batch["image"].shape == (2 * data.plan.samples_per_image, 1, *data.plan.patch_size)
    assert batch["label"].shape == (2 * data.plan.samples_per_image, 1, *data.plan.patch_size)


def test_volumes_smaller_than_the_patch_are_padded(settings):
    data = prepare_data(settings(patch_size=(48, 48, 32)), progress=False)
    for patch in data.train_dataset()[0]:
        assert patch["image"].shape == (1, 48, 48, 32)


def test_val_items_are_whole_normalised_volumes(data, task):
    for item in data.val_dataset([c.id for c in data.info.cases[:2]]):
        raw_shape = nib.load(task / "imagesTr" / f"{item['case']}.nii.gz").shape
        assert item["image"].shape[0] == 1 and item["label"].shape[0] == 1
        assert item["image"].shape[1:] == item["label"].shape[1:]
        assert tuple(item["image"].shape[1:]) == raw_shape  # unpadded: padding would be scored as background
        nonzero = item["image"][item["image"] != 0]
        assert abs(float(nonzero.mean())) < 0.1 and abs(float(nonzero.std()) - 1) < 0.1
    batch = next(iter(data.val_loader()))
    assert batch["image"].shape[0] == 1 and batch["case"] == [data.val_cases[0]]


def test_each_file_is_read_once_across_datasets_epochs_and_subsets(data, monkeypatch):
    reads: Counter[str] = Counter()
    original = nib.load

    def counting_load(filename, *args, **kwargs):
        reads[str(filename)] += 1
        return original(filename, *args, **kwargs)

    monkeypatch.setattr(nib, "load", counting_load)
    train, val = data.train_cases, data.val_cases
    for _ in range(2):  # two "epochs"
        for _batch in data.train_loader(train[:2]):
            pass
        for _batch in data.val_loader():
            pass
    for _batch in data.train_loader():  # all training cases: only the new ones are read
        pass
    data.val_dataset(train[:1])[0]
    assert len(reads) == 2 * len(train + val) and set(reads.values()) == {1}
    assert data.num_cached == len(train + val)


def test_cached_volumes_are_not_modified_by_augmentation(data):
    case = data.train_cases[0]
    before = data.preprocessed([case])[0]["image"].clone()
    for _ in range(3):
        data.train_dataset([case])[0]
    after = data.preprocessed([case])[0]["image"]
    assert torch.equal(before, after) and len(after.applied_operations) == len(before.applied_operations)


def test_same_seed_same_batches_other_seed_other_batches(data):
    def batches(seed: int) -> list[torch.Tensor]:
        return [b["image"].as_tensor() for b in data.train_loader(seed=seed)]

    first, again, other = batches(5), batches(5), batches(6)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_pos_neg_crops_contain_foreground(data):
    patches = [p for item in (data.train_dataset(seed=s)[0] for s in range(4)) for p in item]
    assert sum(bool((p["label"] > 0).any()) for p in patches) >= len(patches) // 2


def test_unknown_case_id(data):
    with pytest.raises(DataError, match="case\\(s\\) nope are not in Task99_Synthetic"):
        data.train_dataset(["nope"])


def test_multichannel_images(tmp_path):
    task = make_synthetic_msd(tmp_path / "data", num_cases=3, shape=(16, 16, 16))
    for path in (task / "imagesTr").iterdir():
        image = nib.load(path)
        data = np.asanyarray(image.dataobj)
        nib.save(nib.Nifti1Image(np.stack([data, 2 * data], -1), image.affine), path)
    meta = (task / "dataset.json").read_text().replace('"0": "MRI"', '"0": "T2", "1": "ADC"')
    (task / "dataset.json").write_text(meta)
    prepared = prepare_data(DataSettings(dataset=task.name, data_root=tmp_path / "data"), progress=False)
    assert prepared.plan.in_channels == 2 and len(prepared.fingerprint.intensity) == 2
    assert prepared.train_dataset()[0][0]["image"].shape == (2, *prepared.plan.patch_size)


def test_worker_processes_give_the_same_batches_for_the_same_seed(data):
    """Batches depend on (seed, worker count) only: a run with workers is as reproducible as one without."""
    import dataclasses

    served = dataclasses.replace(data, loader_workers=2)

    def batches(seed: int) -> list[torch.Tensor]:
        loader = served.train_loader(seed=seed)
        assert loader.num_workers == 2  # the data's worker count is the default
        return [b["image"].as_tensor() for b in loader]

    first, again = batches(5), batches(5)
    assert len(first) == len(data.train_loader(seed=5)) and len(first) > 1
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert data.train_loader(seed=5, num_workers=1).num_workers == 1  # an explicit count wins


class _WorkerProbe(torch.utils.data.Dataset, Randomizable):
    """Reports, from inside a loader worker, whether SIGTERM is ignored and a draw of its random state."""

    def __len__(self) -> int:
        return 2

    def randomize(self, data: object = None) -> None:
        pass

    def __getitem__(self, index: int) -> torch.Tensor:
        ignored = signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
        return torch.tensor([float(ignored), float(self.R.randint(10**6))])


def test_workers_are_seeded_by_monai_and_leave_sigterm_to_the_main_process():
    def draws(seed: int) -> torch.Tensor:
        return torch.cat(list(seeded_loader(_WorkerProbe(), batch_size=1, shuffle=False, seed=seed, num_workers=1)))

    first, again, other = draws(5), draws(5), draws(6)
    assert first[:, 0].tolist() == [1.0, 1.0]  # ignored in the worker ...
    assert signal.getsignal(signal.SIGTERM) != signal.SIG_IGN  # ... not here
    assert torch.equal(first, again) and not torch.equal(first[:, 1], other[:, 1])
