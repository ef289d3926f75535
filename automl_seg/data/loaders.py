"""Datasets and loaders over cached preprocessed volumes (imported lazily: it pulls in torch/MONAI)."""

from __future__ import annotations

import copy
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from monai.data import DataLoader, list_data_collate
from monai.data.utils import worker_init_fn as seed_worker_transforms
from monai.transforms import Compose
from torch.utils.data import Dataset


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the previous count.

    Transforms on small volumes gain nothing from threads, and on a busy CPU OpenMP's spinning
    threads made them 20-50x slower (measured: 0.55 s instead of 0.025 s per Hippocampus volume)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class CachedVolumes(Dataset):
    """Items are ``transform(copy of a cached volume)``; the cache itself is never modified."""

    def __init__(self, volumes: list[dict[str, Any]], transform: Compose) -> None:
        self.volumes = volumes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, index: int) -> Any:
        with single_threaded():
            return self.transform(copy.deepcopy(self.volumes[index]))


def collate(batch: list[Any]) -> Any:
    """``list_data_collate`` (flattens lists of patches), single-threaded for the same reason."""
    with single_threaded():
        return list_data_collate(batch)


def init_worker(worker_id: int) -> None:
    """MONAI's worker seeding, and SIGTERM ignored: the main process unwinds on it (``automl_seg.cli``)
    and shuts its workers down itself. Killed by a SIGTERM sent to the whole process group instead,
    the workers made PyTorch print "DataLoader worker ... is killed by signal: Terminated" with a
    traceback while the main process unwound. Orphaned workers still exit: PyTorch's workers watch
    their parent."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed_worker_transforms(worker_id)


def seeded_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0) -> DataLoader:
    """A MONAI DataLoader whose order and augmentation depend only on ``seed``.

    MONAI's loader seeds the dataset's random transforms from ``generator`` (in the main process
    and in every worker, ``init_worker``); ``list_data_collate`` flattens the lists of patches a
    cropping transform returns."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate,
        worker_init_fn=init_worker,
        generator=torch.Generator().manual_seed(seed),
    )
