"""Datasets and loaders over cached preprocessed volumes (imported lazily: it pulls in torch/MONAI)."""

from __future__ import annotations

import copy
from typing import Any

import torch
from monai.data import DataLoader, list_data_collate
from monai.transforms import Compose
from torch.utils.data import Dataset


class CachedVolumes(Dataset):
    """Items are ``transform(copy of a cached volume)``; the cache itself is never modified."""

    def __init__(self, volumes: list[dict[str, Any]], transform: Compose) -> None:
        self.volumes = volumes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.volumes)

    def __getitem__(self, index: int) -> Any:
        return self.transform(copy.deepcopy(self.volumes[index]))


def seeded_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0) -> DataLoader:
    """A MONAI DataLoader whose order and augmentation depend only on ``seed``.

    MONAI's loader seeds the dataset's random transforms from ``generator`` (in the main process
    and in every worker); ``list_data_collate`` flattens the lists of patches a cropping
    transform returns."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=list_data_collate,
        generator=torch.Generator().manual_seed(seed),
    )
