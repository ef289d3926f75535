"""Settings of the random strategy, with a preset per budget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from automl_seg.api import build_settings
from automl_seg.errors import ConfigError


class RandomSettings(BaseModel):
    """Draw ``trials`` architectures (or as many as ``time_budget_s`` pays for) within the memory budget, train each
    briefly, keep the best."""

    model_config = ConfigDict(extra="forbid")

    trials: int = Field(gt=0, description="architectures drawn, trained and scored (without a time budget)")
    time_budget_s: float | None = Field(
        default=None,
        gt=0,
        description="device seconds of the whole search (automl_seg.compute): with it, candidates are drawn while "
        "one more brings the total nearer to the budget than stopping, and `trials` is not used",
    )
    epochs: int = Field(gt=0, description="training epochs per candidate")
    iterations: int = Field(gt=0, description="optimizer steps per candidate epoch")
    memory_budget: float = Field(gt=0, le=1, description="max estimated memory, a fraction of the full supernet")
    lr: float = Field(default=3e-3, gt=0, description="AdamW learning rate of the candidates")
    batch_size: int | None = Field(default=None, gt=0, description="default: the plan's batch size")
    score_cases: int | None = Field(default=None, gt=0, description="score on at most N held-out training cases")
    max_draws: int = Field(default=200, gt=0, description="draws per trial before the budget is declared too small")


PRESETS: dict[str, dict[str, Any]] = {
    # 2-core CPU: a handful of candidates, each trained for a minute or so on Task04_Hippocampus
    "quick": {"trials": 4, "epochs": 1, "iterations": 30, "memory_budget": 0.5, "score_cases": 10},
    # 2-core CPU, within the standard budget's hour: more and longer-trained candidates
    "standard": {"trials": 6, "epochs": 2, "iterations": 40, "memory_budget": 0.5, "score_cases": 20},
    # GPU: enough candidates for random search to be the honest baseline DiNTS must beat
    "full": {"trials": 30, "epochs": 10, "iterations": 100, "memory_budget": 0.8},
}


def random_settings(budget: str, overrides: Mapping[str, Any]) -> RandomSettings:
    if budget not in PRESETS:
        raise ConfigError(f"unknown budget '{budget}' for the random strategy; use one of: {', '.join(PRESETS)}")
    return build_settings(RandomSettings, overrides=overrides, base=PRESETS[budget], source="random strategy settings")
