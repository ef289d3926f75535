"""What a comparison is: the strategies, seeds, budget and the equal-compute rule, checked before any run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, PositiveInt, field_validator

from automl_seg.config import Budget, DataSettings, Device, Settings
from automl_seg.errors import ConfigError

if TYPE_CHECKING:
    from automl_seg.interfaces import SearchStrategy
    from automl_seg.plugins import PluginHost

#: A strategy whose settings have this field can stop at a search budget in device seconds
#: (``automl_seg.compute``); ``compare`` sets it so that it spends what the other searches spent.
TIME_BUDGET_KEY = "time_budget_s"
#: The held-out fraction a comparison uses when the data settings set none.
DEFAULT_HOLDOUT = 0.2


class CompareSettings(Settings):
    """Strategies x seeds on one split, scored on cases no run sees.

    Equal compute: retraining is the budget's training preset for every strategy, and a strategy that
    declares ``time_budget_s`` searches for ``search_seconds`` device seconds, by default (per seed) the
    longest search device time of the strategies that declare none (DiNTS' among dints, random, fixed)."""

    strategies: list[str] = Field(description="installed strategy names, at least two")
    seeds: PositiveInt = Field(default=3, description="runs per strategy, seeds 0..seeds-1")
    budget: Budget = "quick"
    device: Device = "auto"
    search_seconds: float | None = Field(
        default=None, gt=0, description="search device seconds for time-budgeted strategies; None = as described"
    )
    name: str | None = Field(
        default=None, description="the comparison's record name; default compare-<dataset>-<budget>"
    )
    workdir: Path | None = Field(default=None, description="checkpoints of the runs; default: per-user cache")
    progress: bool = True

    @field_validator("strategies")
    @classmethod
    def _two_distinct(cls, value: list[str]) -> list[str]:
        names = [name.strip() for name in value if name.strip()]
        if len(set(names)) != len(names):
            raise ValueError(f"a strategy is named twice in {','.join(names)}; name each once")
        if len(names) < 2:
            raise ValueError(
                f"a comparison needs at least two strategies, got {','.join(names) or 'none'}; "
                "add one, e.g. --strategies dints,fixed"
            )
        return names


def record_name_of(settings: CompareSettings, data: DataSettings) -> str:
    return settings.name or f"compare-{data.dataset}-{settings.budget}"


def with_holdout(data: DataSettings) -> DataSettings:
    """``data`` holding out ``DEFAULT_HOLDOUT`` of the cases unless it already holds some out."""
    return data if data.holdout_fraction > 0 else data.model_copy(update={"holdout_fraction": DEFAULT_HOLDOUT})


def has_time_budget(settings: BaseModel) -> bool:
    return TIME_BUDGET_KEY in type(settings).model_fields


def check_strategies(
    settings: CompareSettings, overrides: Mapping[str, Mapping[str, Any]], host: PluginHost
) -> dict[str, SearchStrategy]:
    """Every named strategy installed, it and its space declaring the budget, accepting its overrides (one clear
    error otherwise); someone must say how long time-budgeted strategies search."""
    from automl_seg.engine.budgets import check_search_budget
    from automl_seg.engine.pipeline import strategy_settings

    unknown = sorted(set(overrides) - set(settings.strategies))
    if unknown:
        raise ConfigError(f"settings given for {', '.join(unknown)}, which the comparison does not run")
    strategies = {name: host.strategy(name) for name in settings.strategies}
    for name in strategies:
        check_search_budget(host, settings.budget, name)
    budgeted = [
        name
        for name, strategy in strategies.items()
        if has_time_budget(strategy_settings(strategy, settings.budget, overrides.get(name, {})))
    ]
    if settings.search_seconds is None and len(budgeted) == len(strategies):
        raise ConfigError(
            f"every strategy ({', '.join(budgeted)}) takes a time budget, so none sets it; "
            "give --search-seconds or add a strategy without one (e.g. dints)"
        )
    return strategies
