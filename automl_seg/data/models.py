"""Typed descriptions of a dataset: what it holds (fingerprint) and how to train on it (plan)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from automl_seg.config import MirrorAxes

Triple = tuple[int, int, int]
#: spacings within this relative difference count as the same grid
SPACING_TOLERANCE = 1e-3


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
    native_spacing: tuple[float, float, float] | None = Field(
        default=None, description="the data's own (median) spacing; `spacing` is coarser in a low-resolution plan"
    )
    crop_nonzero: bool = Field(default=False, description="crop every image to its nonzero region first")
    foreground_ratio: float = Field(default=0.5, ge=0, le=1, description="share of patches centred on foreground")
    mirror_axes: MirrorAxes = Field(
        default=(0, 1, 2),
        description="RAS axes that training flips along and test-time mirroring averages over; an axis along "
        "which the classes lie in a fixed order (anterior before posterior) is left out: a flip swaps them",
    )
    rationale: str = Field(default="", description="why the planner chose this spacing and patch")

    @property
    def resamples_coarser(self) -> bool:
        """True when the plan trains on a coarser grid than the data's own (a low-resolution plan)."""
        if self.native_spacing is None:
            return False
        return any(t > n * (1 + SPACING_TOLERANCE) for t, n in zip(self.spacing, self.native_spacing, strict=True))

    @property
    def maps_back(self) -> bool:
        """True when predictions must be resampled onto the input's grid as logits (linearly), not labels:
        the plan is low-resolution or crops to the nonzero region."""
        return self.resamples_coarser or self.crop_nonzero


class PlanLimits(BaseModel):
    """What a budget allows one training patch (its cost per step grows with the voxels): the planner
    coarsens the spacing rather than shrink the patch's field of view below the foreground's extent.

    A memory limit is a voxel limit in other units: the training memory of one patch is estimated as
    its voxels times ``memory_kb_per_voxel``, what the budget's networks keep for the backward pass per
    voxel of input (a property of their width and depth, so the budget that sizes them declares it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_patch_voxels: int = Field(gt=0, description="voxels in one training patch, at most")
    max_patch_side: int = Field(default=128, gt=0, description="voxels along one patch side, at most")
    max_patch_memory_mb: float | None = Field(
        default=None, gt=0, description="estimated training memory of one patch (MB), at most; None: no limit"
    )
    memory_kb_per_voxel: float | None = Field(
        default=None, gt=0, description="training memory (KB) per patch voxel of the budget's networks"
    )

    @model_validator(mode="after")
    def _memory_limit_has_its_rate(self) -> PlanLimits:
        if (self.max_patch_memory_mb is None) != (self.memory_kb_per_voxel is None):
            raise ValueError("max_patch_memory_mb and memory_kb_per_voxel go together: give both or neither")
        return self

    @property
    def voxel_limit(self) -> int:
        """``max_patch_voxels``, lowered to what the memory limit allows."""
        if self.max_patch_memory_mb is None or self.memory_kb_per_voxel is None:
            return self.max_patch_voxels
        return min(self.max_patch_voxels, int(self.max_patch_memory_mb * 1024 / self.memory_kb_per_voxel))

    def patch_memory_mb(self, voxels: int) -> float | None:
        """The estimated training memory (MB) of a patch of ``voxels`` (None without a memory rate)."""
        return None if self.memory_kb_per_voxel is None else voxels * self.memory_kb_per_voxel / 1024


class Augmentation(BaseModel):
    """How training patches are drawn and augmented (``transforms.training_transforms``); the defaults
    are the light recipe (the plan's share of patches on foreground, flips, intensity scale and shift).

    Probabilities are per patch. The spatial and intensity ranges are nnU-Net's: rotation up to 30
    degrees about every axis, scaling 0.7-1.4, gamma 0.7-1.5, noise sd 0.1, blur sigma 0.5-1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    foreground_ratio: float | None = Field(
        default=None, ge=0, le=1, description="share of patches centred on foreground; None = the plan's"
    )
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


class CaseFacts(BaseModel):
    """What the planner needs to know of one case (RAS axis order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    shape: Triple
    spacing: tuple[float, float, float]
    foreground_extent: Triple | None = Field(description="sides of the label > 0 bounding box in voxels; None: none")
    nonzero_extent: Triple | None = Field(description="sides of the image != 0 bounding box in voxels; None: none")
    classes: list[int] = Field(description="label values present")
    class_centroids: dict[int, tuple[float, float, float]] = Field(
        default_factory=dict, description="each foreground class's centroid in world RAS mm"
    )


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
    cases: list[CaseFacts] = Field(default_factory=list, description="per-case shape, spacing and extents")
    split: Split | None = None
