"""Typed settings of the engine: training (with a preset per budget) and one search run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from automl_seg.config import Budget, Device, Seed, Settings, build_settings
from automl_seg.data.models import Augmentation, PlanLimits
from automl_seg.data.plan import MAX_PATCH_SIDE, MAX_PATCH_VOXELS
from automl_seg.errors import ConfigError

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
    warmup_steps: NonNegativeInt = Field(
        default=0, description="optimizer steps of linear learning-rate warm-up before the schedule"
    )
    grad_clip: float | None = Field(default=12.0, gt=0, description="max gradient norm; None = no clipping")
    val_every: PositiveInt = Field(default=1, description="validate every N epochs (and always after the last)")
    val_cases: PositiveInt | None = Field(default=None, description="validate on the first N validation cases only")
    amp: bool = Field(default=True, description="mixed precision: float16 on CUDA; the CPU stays float32")
    sw_batch_size: PositiveInt = 4
    foreground_ratio: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of patches centred on a foreground voxel (nnU-Net: 0.33); None = the plan's "
        "(0.5, or 2/3 where the foreground is small)",
    )
    mirror: bool = Field(default=True, description="random flips along the plan's mirror axes")
    spatial_aug: float = Field(
        default=0.0, ge=0, le=1, description="probability of a random rotation (up to 30 degrees) and scaling per patch"
    )
    gamma_aug: float = Field(default=0.0, ge=0, le=1, description="probability of a random gamma (0.7-1.5) per patch")
    noise_blur_aug: float = Field(
        default=0.0, ge=0, le=1, description="probability of Gaussian noise and, independently, of blur per patch"
    )

    def augmentation(self) -> Augmentation:
        """The training patches' sampling and augmentation, for ``PreparedData.train_loader``."""
        return Augmentation(
            foreground_ratio=self.foreground_ratio,
            mirror=self.mirror,
            spatial=self.spatial_aug,
            gamma=self.gamma_aug,
            noise_blur=self.noise_blur_aug,
        )


#: Presets per budget (the engine's budgets are these keys; ``automl_seg.engine.budgets``).
#:
#: ``quick`` fits a 2-core CPU on small tasks (Hippocampus in minutes): 4000 steps of one volume's two
#: patches (within ``PLAN_LIMITS``) with AdamW, which converges faster than SGD when steps
#: are few.
#:
#: ``standard`` is sized for the whole ``search --strategy dints --budget standard`` on Hippocampus within
#: an hour on a 2-core CPU. Arithmetic, from per-step timings: the quick preset trains 4000 steps of two
#: 32^3 patches (65k voxels) in about 5.5 minutes, 0.08 s a step. ``standard`` trains on the plan's patch
#: (48x64x48, which holds a whole Hippocampus case: nnU-Net's context), two patches a step (295k voxels):
#: 4.5x the voxels, and a step of the same network measured 4.5-6x slower, so about 0.37 s. 40 epochs of
#: 160 steps = 6400 steps = about 40 minutes, plus the spatial and intensity augmentation (rotation
#: and scaling cost about 20 ms a patch: up to 4 minutes), the search (about 8 minutes at this patch,
#: ``automl_seg_dints.settings``), preprocessing and evaluation (about 2 minutes): 54 minutes. The
#: recipe is nnU-Net's: a third of the patches on foreground, rotation/scaling, gamma, noise/blur, a
#: warm-up, then cosine decay. ``benchmarks/bench_quality.py --table ablation`` measures each
#: ingredient; at the quick budget none helped and rotation/scaling cost 0.010 held-out Dice, so quick
#: trains without them. At the standard budget they help: without rotation/scaling and noise/blur the
#: same DiNTS architecture overfitted its 6400 whole-case steps and scored 0.0085 held-out Dice below
#: the preset (there with a random translation that on its own gained nothing; ``benchmarks/RESULTS.md``),
#: so standard keeps nnU-Net's recipe. Flips follow the plan's mirror axes
#: in every preset.
#:
#: ``full`` is nnU-Net-like for a GPU (75k steps of poly SGD, the plan's patch).
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
    "standard": {
        "epochs": 40,
        "iterations": 160,
        "batch_size": 1,
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 1e-5,
        "schedule": "cosine",
        "warmup_steps": 200,
        "val_every": 10,
        "val_cases": 20,
        "foreground_ratio": 0.33,
        "spatial_aug": 0.2,
        "gamma_aug": 0.3,
        "noise_blur_aug": 0.1,
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


#: What each budget allows one training patch; the planner (``automl_seg.data.plan``) chooses the
#: spacing and patch within it, coarsening the spacing rather than cutting the field of view below the
#: foreground's extent. ``quick``'s 32^3 voxels cost about a quarter of Hippocampus' 48x64x48 per step on
#: a CPU. ``standard`` keeps the planner's voxel limit and adds a memory limit for a CPU machine's RAM:
#: 512 MB a patch at 0.75 KB a voxel (what its networks keep for backward, at most 0.73 KB for the
#: densest DiNTS architecture; ``tests/engine/test_engine_plans.py`` checks the rate), about 88^3 voxels;
#: Hippocampus' whole-case patch (48x64x48) is far below it. A budget not named here plans without limits
#: beyond the planner's defaults.
PLAN_LIMITS: dict[str, PlanLimits] = {
    "quick": PlanLimits(max_patch_voxels=32**3, max_patch_side=64),
    "standard": PlanLimits(
        max_patch_voxels=MAX_PATCH_VOXELS,
        max_patch_side=MAX_PATCH_SIDE,
        max_patch_memory_mb=512,
        memory_kb_per_voxel=0.75,
    ),
}


def plan_limits(budget: Budget) -> PlanLimits | None:
    """The patch limits ``budget`` declares (None: the planner's defaults)."""
    return PLAN_LIMITS.get(budget)


def train_settings(
    budget: Budget, file_section: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainSettings:
    """The budget's preset < the config file's ``train`` section < flags."""
    if budget not in TRAIN_PRESETS:
        raise ConfigError(f"unknown budget '{budget}'; known: {', '.join(TRAIN_PRESETS)}")
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
    folds: PositiveInt | None = Field(
        default=None, description="cross-validation: train one model per fold, registered as one record"
    )
    fold: NonNegativeInt | None = Field(default=None, description="train only this fold of --folds (0-based)")

    @model_validator(mode="after")
    def _fold_needs_folds(self) -> RunSettings:
        if self.fold is not None and self.folds is None:
            raise ConfigError(f"--fold {self.fold} needs --folds N (the number of folds it is one of)")
        return self


class SearchRunSettings(RunSettings):
    """A search run: the strategy, and whether to retrain the found architecture."""

    strategy: str | None = Field(default=None, description="the search strategy (``--strategy``); required")
    no_train: bool = False
