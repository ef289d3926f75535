"""What a study found, as typed records: the rows ``tune show`` prints and its ``--json`` answer."""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from automl_seg.tune.best import best_trials, completed
from automl_seg.tune.objective import DICE, FAIL_REASON, MEMORY_MB, REF, VALUES
from automl_seg.tune.params import ParamValue, Target
from automl_seg.tune.study import Direction, StudyIdentity, study_identity

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)

#: Optuna's ``TrialState`` names
TrialStateName = Literal["RUNNING", "WAITING", "COMPLETE", "PRUNED", "FAIL"]


class TrialRow(BaseModel):
    """One trial of a study: its state, objective values, Dice, memory, parameters, record or failure."""

    model_config = ConfigDict(extra="forbid")

    number: int
    state: TrialStateName
    values: list[float] | None = Field(
        description="objective values (Dice, Dice per MB, or Dice and MB for pareto); None unless complete"
    )
    dice: float | None = Field(description="validation Dice of the trial's model")
    memory_mb: float | None = Field(description="peak memory the trial's run measured (MB)")
    params: dict[str, ParamValue] = Field(
        description="searched values as Optuna stores them (a list choice as its label, e.g. 32x32x32)"
    )
    applied: dict[Target, dict[str, Any]] = Field(description="values the run applied, searched and fixed, per target")
    last_epoch: int | None = Field(description="last epoch whose validation Dice was reported to the pruner")
    duration_s: float | None
    ref: str | None = Field(description="registry record of the trial's model")
    reason: str | None = Field(description="why the trial failed")

    @classmethod
    def of(cls, trial: FrozenTrial, ours: bool = True) -> Self:
        """The row of ``trial``; ``ours=False`` (a study automl-seg did not create) leaves out the user
        attributes automl-seg writes, which another tool may have set to anything."""
        attrs = trial.user_attrs if ours else {}
        return cls(
            number=trial.number, state=trial.state.name, values=trial.values,
            dice=attrs.get(DICE), memory_mb=attrs.get(MEMORY_MB), params=trial.params, applied=attrs.get(VALUES, {}),
            last_epoch=max(trial.intermediate_values) if trial.intermediate_values else None,
            duration_s=trial.duration.total_seconds() if trial.duration is not None else None,
            ref=attrs.get(REF), reason=attrs.get(FAIL_REASON),
        )  # fmt: skip


class StudyReport(BaseModel):
    """Everything ``tune show`` prints: where the study is, what it tunes, its trials and best trial(s)."""

    model_config = ConfigDict(extra="forbid")

    study: str
    storage: str = Field(description="the study's storage URL, password masked")
    pareto_png: Path | None = Field(description="the Pareto-front PNG written (pareto studies), if any")
    identity: StudyIdentity | None = Field(description="what the study tunes; None if automl-seg did not create it")
    directions: list[Direction]
    counts: dict[TrialStateName, int] = Field(description="number of trials in each state")
    best: list[TrialRow] = Field(description="the best trial, or the Pareto front by Dice, highest first (pareto)")
    importances: dict[str, float] = Field(
        description="each searched parameter's importance for Dice (empty while too few trials completed)"
    )
    trials: list[TrialRow]

    @classmethod
    def of(cls, study: optuna.Study, storage: str, pareto_png: Path | None = None) -> Self:
        identity = study_identity(study)
        trials = study.get_trials(deepcopy=False)
        return cls(
            study=study.study_name, storage=storage, pareto_png=pareto_png, identity=identity,
            directions=[d.name.lower() for d in study.directions],
            counts=Counter(t.state.name for t in trials),
            best=[TrialRow.of(t) for t in (best_trials(study, identity) if identity else [])],
            importances=importances(study), trials=[TrialRow.of(t, ours=identity is not None) for t in trials],
        )  # fmt: skip


def importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances for Dice (empty while too few trials completed to tell)."""
    import optuna

    done = completed(study)
    if len(done) < 2 or not any(t.params for t in done):
        return {}
    sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    try:
        with warnings.catch_warnings():  # PED-ANOVA warns that it rates params for *low* targets: hence sign
            warnings.simplefilter("ignore", UserWarning)
            return dict(optuna.importance.get_param_importances(study, target=lambda t: sign * t.values[0]))
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        log.debug("no importances yet: %s", exc)
        return {}
