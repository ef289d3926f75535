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


class Augmentation(BaseModel):
    """How training patches are drawn and augmented (``transforms.training_transforms``); the defaults
    are the light recipe (half the patches on foreground, flips, intensity scale and shift).

    Probabilities are per patch. The spatial and intensity ranges are nnU-Net's: rotation up to 30
    degrees about every axis, scaling 0.7-1.4, gamma 0.7-1.5, noise sd 0.1, blur sigma 0.5-1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    foreground_ratio: float = Field(default=0.5, ge=0, le=1, description="share of patches centred on foreground")
    mirror: bool = True
    spatial: float = Field(default=0.0, ge=0, le=1, description="probability of rotation and scaling")
    gamma: float = Field(default=0.0, ge=0, le=1, description="probability of a gamma change")
    noise_blur: float = Field(default=0.0, ge=0, le=1, description="probability of noise, and of blur")


class ShapeSummary(BaseModel):
    """Per-axis minimum, median and maximum over the cases (in the plan's RAS orientation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: tuple[float, float, float]
    median: tuple[float, float, float]
    max: tuple[float, float, float]


class IntensityStats(BaseModel):
    """Intensity of one image channel over the foreground (label > 0) voxels of all cases."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: str
    p00_5: float
    p50: float
    p99_5: float
    mean: float
    std: float


class Split(BaseModel):
    """A deterministic train/validation split of the case ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    val_fraction: float
    train: list[str]
    val: list[str]


class Fingerprint(BaseModel):
    """What a dataset holds, measured in one validating pass over every case (nnU-Net style)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    num_cases: int = Field(gt=0)
    num_channels: int = Field(gt=0)
    modality: dict[int, str]
    labels: dict[int, str]
    shapes: ShapeSummary = Field(description="voxel counts per axis")
    spacings: ShapeSummary = Field(description="voxel spacing per axis in mm")
    intensity: list[IntensityStats] = Field(description="one entry per channel, foreground voxels only")
    class_fractions: dict[int, float] = Field(description="fraction of all voxels carrying each label")
    content_hash: str = Field(description="sha256 over the case files' bytes in case-id order")
    split: Split | None = None
