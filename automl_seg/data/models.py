"""Typed descriptions of a dataset: what it holds (fingerprint) and how to train on it (plan)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Triple = tuple[int, int, int]


class Plan(BaseModel):
    """How a dataset is preprocessed and fed to a network, derived from its fingerprint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    modality: str = Field(description="e.g. 'MRI' or 'CT'; decides the normalisation")
    in_channels: int = Field(gt=0)
    num_classes: int = Field(gt=1, description="output channels, background included")
    labels: dict[int, str]
    spacing: tuple[float, float, float] = Field(description="target voxel spacing in mm")
    orientation: str = "RAS"
    normalization: Literal["zscore", "ct"] = "zscore"
    ct_clip: tuple[float, float] | None = Field(
        default=None, description="CT only: intensity window (0.5/99.5 percentiles of foreground)"
    )
    patch_size: Triple = Field(description="training patch, each side a multiple of `divisor`")
    divisor: int = Field(default=16, gt=0, description="every patch/input side is a multiple of this")
    batch_size: int = Field(default=2, gt=0)
    samples_per_image: int = Field(default=2, gt=0, description="random crops drawn per cached image")
    sw_overlap: float = Field(default=0.5, ge=0, lt=1, description="sliding-window overlap at inference")
