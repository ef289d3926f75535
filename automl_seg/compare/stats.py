"""The comparison's numbers: per-strategy means and spreads over seeds, and paired per-case tests."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Stat(_Model):
    """Mean and sample standard deviation over seeds (``sd`` None for a single run)."""

    mean: float
    sd: float | None


class RunRow(_Model):
    """One strategy x seed run: its trained model, its held-out scores and what it cost."""

    strategy: str
    seed: int
    ref: str = Field(description="the trained model's registry ref")
    reused: bool = Field(description="taken from the registry instead of run again")
    dice_per_class: dict[str, float]
    dice_mean: float
    case_dice: dict[str, float] = Field(description="held-out case -> its mean Dice over the classes")
    search_wall_s: float
    search_device_s: float
    retrain_wall_s: float
    retrain_device_s: float
    peak_memory_mb: float | None
    params: int | None
    time_budget_s: float | None = Field(description="search device seconds the strategy was given, if it takes any")


class StrategySummary(_Model):
    strategy: str
    runs: int
    dice_per_class: dict[str, Stat]
    dice_mean: Stat
    search_wall_s: Stat
    retrain_wall_s: Stat
    search_device_s: Stat
    retrain_device_s: Stat
    peak_memory_mb: Stat | None
    params: Stat | None


class PairedTest(_Model):
    """Wilcoxon signed-rank test over held-out cases (each case's Dice averaged over seeds), best vs other."""

    best: str
    other: str
    cases: int
    median_difference: float = Field(description="median over cases of best minus other")
    statistic: float | None
    p_value: float


def stat(values: Sequence[float]) -> Stat:
    array = np.asarray(values, dtype=float)
    return Stat(mean=float(array.mean()), sd=float(array.std(ddof=1)) if len(array) > 1 else None)


def _optional_stat(values: Sequence[float | None]) -> Stat | None:
    known = [v for v in values if v is not None]
    return stat(known) if known else None


def summarise(strategy: str, runs: Sequence[RunRow]) -> StrategySummary:
    classes = list(runs[0].dice_per_class)
    return StrategySummary(
        strategy=strategy,
        runs=len(runs),
        dice_per_class={c: stat([r.dice_per_class[c] for r in runs]) for c in classes},
        dice_mean=stat([r.dice_mean for r in runs]),
        search_wall_s=stat([r.search_wall_s for r in runs]),
        retrain_wall_s=stat([r.retrain_wall_s for r in runs]),
        search_device_s=stat([r.search_device_s for r in runs]),
        retrain_device_s=stat([r.retrain_device_s for r in runs]),
        peak_memory_mb=_optional_stat([r.peak_memory_mb for r in runs]),
        params=_optional_stat([r.params for r in runs]),
    )


def case_means(runs: Sequence[RunRow]) -> dict[str, float]:
    """Each held-out case's Dice averaged over the runs (seeds) of one strategy."""
    cases = runs[0].case_dice
    return {case: float(np.mean([r.case_dice[case] for r in runs])) for case in cases}


def paired_test(best: str, best_runs: Sequence[RunRow], other: str, other_runs: Sequence[RunRow]) -> PairedTest:
    """Two-sided Wilcoxon signed-rank test (scipy) of the per-case differences; p = 1 when none differ."""
    from scipy.stats import wilcoxon

    ours, theirs = case_means(best_runs), case_means(other_runs)
    if ours.keys() != theirs.keys():
        raise ValueError(f"{best} and {other} were scored on different cases")
    differences = np.array([ours[case] - theirs[case] for case in ours])
    statistic: float | None = None
    p_value = 1.0
    if np.any(differences != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns about ties and small samples; the p-value says enough
            result = wilcoxon(differences)
        statistic = float(result.statistic)
        p_value = float(result.pvalue) if math.isfinite(result.pvalue) else 1.0
    return PairedTest(
        best=best,
        other=other,
        cases=len(differences),
        median_difference=float(np.median(differences)),
        statistic=statistic,
        p_value=p_value,
    )


def rank(summaries: Sequence[StrategySummary]) -> list[StrategySummary]:
    """Best first, by mean held-out Dice."""
    return sorted(summaries, key=lambda s: s.dice_mean.mean, reverse=True)
