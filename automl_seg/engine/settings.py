"""Typed settings of the engine: training (with quick/full presets) and one search run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt

from automl_seg.config import Budget, Device, Seed, Settings, build_settings

Schedule = Literal["poly", "cosine", "constant"]


class TrainSettings(Settings):
    """How a network is trained from scratch. An epoch is ``iterations`` optimizer steps (or one pass
    over the training patches when ``iterations`` is None), so budgets do not scale with case count."""

    epochs: PositiveInt = 50
    iterations: PositiveInt | None = Field(default=None, description="optimizer steps per epoch; None = one pass")
    batch_size: PositiveInt | None = Field(default=None, description="None = the plan's batch size")
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = Field(default=0.01, gt=0)
    momentum: float = Field(default=0.99, ge=0, lt=1)
    weight_decay: float = Field(default=3e-5, ge=0)
    schedule: Schedule = "poly"
    grad_clip: float | None = Field(default=12.0, gt=0, description="max gradient norm; None = no clipping")
    val_every: PositiveInt = Field(default=1, description="validate every N epochs (and always after the last)")
    val_cases: PositiveInt | None = Field(default=None, description="validate on the first N validation cases only")
    amp: bool = Field(default=True, description="mixed precision: float16 on CUDA; the CPU stays float32")
    sw_batch_size: PositiveInt = 4


#: Presets per budget. ``quick`` fits a 2-core CPU on small tasks (Hippocampus in minutes): 4000 steps of
#: one volume's two patches (capped at ``QUICK_MAX_PATCH_SIDE``) with AdamW, which converges faster than
#: SGD when steps are few. ``full`` is nnU-Net-like for a GPU (75k steps of poly SGD, the plan's patch).
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "epochs": 40,
        "iterations": 100,
        "batch_size": 1,
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 1e-5,
        "schedule": "cosine",
        "val_every": 20,
        "val_cases": 10,
    },
    "full": {
        "epochs": 300,
        "iterations": 250,
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.99,
        "schedule": "poly",
        "val_every": 10,
    },
}


#: The quick budget caps the plan's patch sides at this (unless a patch size is given explicitly):
#: a 32^3 patch costs about a quarter of Hippocampus' 48x64x48 per step on a CPU.
QUICK_MAX_PATCH_SIDE = 32


def budget_patch(patch: tuple[int, int, int], budget: Budget, divisor: int) -> tuple[int, int, int]:
    """The training patch a budget uses for a plan's patch: ``quick`` caps each side, ``full`` keeps it."""
    if budget != "quick":
        return patch
    cap = max(divisor, QUICK_MAX_PATCH_SIDE // divisor * divisor)
    return tuple(min(side, cap) for side in patch)  # type: ignore[return-value]


def train_settings(
    budget: Budget, file_section: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainSettings:
    """The budget's preset < the config file's ``train`` section < flags."""
    return build_settings(TrainSettings, file_section, overrides, source="train settings", base=TRAIN_PRESETS[budget])


class RunSettings(Settings):
    """What one search/train run is: its budget, seed, device and where its checkpoints live."""

    budget: Budget = "quick"
    seed: Seed = 0
    device: Device = "auto"
    workers: NonNegativeInt | None = Field(
        default=None,
        description="processes preparing training batches; None = auto: none on the CPU (they would take its "
        "cores from the network), on CUDA one per free CPU core up to 8",
    )
    workdir: Path | None = Field(default=None, description="checkpoints for --resume; default: per-user cache")
    resume: bool = False
    progress: bool = True


class SearchRunSettings(RunSettings):
    """A search run: the strategy, and whether to retrain the found architecture."""

    strategy: str = "dints"
    no_train: bool = False
