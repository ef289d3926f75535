"""What a study found, as plain data (for tables and ``--json``) and as a Pareto-front PNG."""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_seg.tune.objective import DICE, FAIL_REASON, MEMORY_MB, REF, VALUES
from automl_seg.tune.study import StudyIdentity, study_identity

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """One trial as a JSON-able row: state, objective values, Dice, memory, params, reason, record."""
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    last_epoch = max(trial.intermediate_values) if trial.intermediate_values else None
    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": trial.values,
        "dice": trial.user_attrs.get(DICE),
        "memory_mb": trial.user_attrs.get(MEMORY_MB),
        "params": trial.params,
        "applied": trial.user_attrs.get(VALUES, {}),
        "last_epoch": last_epoch,
        "duration_s": duration,
        "ref": trial.user_attrs.get(REF),
        "reason": trial.user_attrs.get(FAIL_REASON),
    }


def completed(study: optuna.Study) -> list[FrozenTrial]:
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


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


def summary(study: optuna.Study) -> dict[str, Any]:
    """Everything ``tune show`` prints, JSON-able."""
    identity = study_identity(study)
    trials = study.get_trials(deepcopy=False)
    best = best_trials(study, identity) if identity else []
    return {
        "study": study.study_name,
        "identity": identity.model_dump() if identity else None,
        "directions": [d.name.lower() for d in study.directions],
        "counts": dict(Counter(t.state.name for t in trials)),
        "best": [trial_row(t) for t in best],
        "importances": importances(study),
        "trials": [trial_row(t) for t in trials],
    }


def pareto_png(study: optuna.Study, path: Path) -> Path | None:
    """Dice vs measured memory of every completed trial, the Pareto front drawn as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(t.values[1], t.values[0], t.number) for t in completed(study) if len(t.values) == 2]
    points = [p for p in points if all(math.isfinite(v) for v in p[:2])]
    if not points:
        return None
    front = sorted((t.values[1], t.values[0], t.number) for t in study.best_trials)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="0.6", label="trials")
    ax.plot([p[0] for p in front], [p[1] for p in front], "o-", color="tab:red", label="Pareto front")
    for mem, dice, number in front:
        ax.annotate(f"#{number}", (mem, dice), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("measured memory (MB)")
    ax.set_ylabel("validation Dice")
    ax.set_title(f"study {study.study_name}")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
