"""Which trials of a study are the best: by its objective, and among those with a registered model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl_seg.tune.objective import REF
from automl_seg.tune.study import StudyIdentity

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


def completed(study: optuna.Study) -> list[FrozenTrial]:
    from optuna.trial import TrialState

    return list(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def best_trials(study: optuna.Study, identity: StudyIdentity) -> list[FrozenTrial]:
    """The best trial (one objective) or the Pareto front sorted by Dice, highest first (``pareto``)."""
    if not completed(study):
        return []
    if identity.objective == "pareto":
        return sorted(study.best_trials, key=lambda t: -t.values[0])
    return [study.best_trial]


def best_with_record(study: optuna.Study, identity: StudyIdentity) -> FrozenTrial | None:
    """The trial alias ``best`` points at: the best by the objective (``pareto``: the front's highest
    Dice), among trials whose model was registered."""
    for trial in best_trials(study, identity):
        if trial.user_attrs.get(REF):
            return trial
    return None
