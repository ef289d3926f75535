"""Settings of the DiNTS strategy and its budget presets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from automl_seg.api import build_settings
from automl_seg.errors import ConfigError
from automl_seg_dints.budget import MemoryBudget, parse_memory_budget


class DintsSettings(BaseModel):
    """Bi-level search settings (weights: SGD on one half of the training cases; architecture: Adam on the other)."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(gt=0, description="search epochs, warm-up included")
    warmup_epochs: int = Field(ge=0, description="weight-only epochs before architecture updates start")
    memory_budget: float | str = Field(
        description="fraction of the full supernet in (0, 1], or training memory, e.g. '900MB' (calibrated)"
    )
    weight_lr: float = Field(gt=0, description="SGD learning rate of the network weights")
    arch_lr: float = Field(gt=0, description="Adam learning rate of the architecture parameters")
    topology_loss_weight: float = Field(ge=0, description="weight of the topology loss inside the ramped terms")
    batch_size: int | None = Field(default=None, gt=0, description="default: the plan's batch size")
    max_steps_per_epoch: int | None = Field(default=None, gt=0, description="cap on batches per epoch")
    amp: bool = Field(
        default=True,
        description="mixed precision in both steps: float16 with gradient scaling on CUDA; the CPU stays float32",
    )
    measure_memory: bool = Field(default=True, description="measure the decoded network's real training memory")
    decode: Literal["probability", "budget"] = Field(
        default="probability",
        description="'probability': DiNTS' (MONAI's) decode, the most probable topology; 'budget': the most "
        "probable topology whose estimated memory lies within budget_tolerance below the budget",
    )
    budget_tolerance: float = Field(default=0.1, gt=0, le=1, description="band width of decode 'budget'")

    @field_validator("memory_budget")
    @classmethod
    def _check_budget(cls, value: float | str) -> float | str:
        parse_memory_budget(value)
        return value

    @model_validator(mode="after")
    def _check_warmup(self) -> DintsSettings:
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(
                f"warmup_epochs ({self.warmup_epochs}) must be smaller than epochs ({self.epochs}) "
                "so that the architecture is searched at all"
            )
        return self

    @property
    def budget(self) -> MemoryBudget:
        return parse_memory_budget(self.memory_budget)


PRESETS: dict[str, dict[str, Any]] = {
    # sized for 2 CPU cores: a few minutes on Task04_Hippocampus
    "quick": {
        "epochs": 6,
        "warmup_epochs": 2,
        "memory_budget": 0.5,
        "weight_lr": 0.05,
        "arch_lr": 0.01,
        "topology_loss_weight": 0.001,
        "max_steps_per_epoch": 12,
    },
    # 2 CPU cores, about 8 of the standard budget's 60 minutes: the standard budget searches on the
    # plan's whole patch (4.5x the quick patch's voxels), so the quick search's 72 steps already cost
    # 4.5x; 8 epochs of 10 steps keep it there (automl_seg.engine.settings: the whole budget's arithmetic)
    "standard": {
        "epochs": 8,
        "warmup_epochs": 3,
        "memory_budget": 0.5,
        "weight_lr": 0.05,
        "arch_lr": 0.01,
        "topology_loss_weight": 0.001,
        "max_steps_per_epoch": 10,
    },
    # paper-like, for a GPU (DiNTS tutorial: equal warm-up and search halves)
    "full": {
        "epochs": 200,
        "warmup_epochs": 100,
        "memory_budget": 0.8,
        "weight_lr": 0.025,
        "arch_lr": 0.001,
        "topology_loss_weight": 0.001,
    },
}


def dints_settings(budget: str, overrides: Mapping[str, Any]) -> DintsSettings:
    if budget not in PRESETS:
        raise ConfigError(f"unknown budget '{budget}' for the dints strategy; use one of: {', '.join(PRESETS)}")
    return build_settings(DintsSettings, overrides=overrides, base=PRESETS[budget], source="dints strategy settings")
