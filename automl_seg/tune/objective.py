"""One Optuna trial: pick values, run them (a short engine run), turn the outcome into objective values.

Validation Dice reported per epoch goes to Optuna through an in-process observer plugin, so the
pruner can stop a bad trial early (the observer raises ``TrialStopped``, a ``RunStopped``). Any
failure inside the run (NaN, out of memory, a plugin's exception) marks that trial failed with its
reason in the trial's user attribute ``fail_reason``; the study goes on with the next trial.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from automl_seg.errors import RunStopped, Terminated
from automl_seg.hookspecs import hookimpl
from automl_seg.tune.params import ParameterSpec, Target, suggest
from automl_seg.tune.study import Objective

if TYPE_CHECKING:
    import optuna

    from automl_seg.interfaces import RunInfo

log = logging.getLogger(__name__)

OBSERVER_NAME = "optuna-trial"
#: metric names, in order of preference, under which the engine reports validation Dice per epoch
VAL_DICE_KEYS = ("val_dice", "val_dice_mean", "dice_mean", "dice")
#: user attributes of a trial, read by ``report`` and ``tune show``
FAIL_REASON = "fail_reason"
REF = "ref"
DICE = "dice"
MEMORY_MB = "memory_mb"
VALUES = "values"


class TrialStopped(RunStopped):
    """The pruner ended this trial's run early."""


class TrialFailed(Exception):
    """The trial's run finished but its result cannot be used (NaN Dice, no memory reading)."""


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial's run produced: validation Dice, measured memory and its registry record."""

    dice: float
    memory_mb: float | None = None
    ref: str | None = None


class TrialRunner(Protocol):
    """Runs one trial with the picked ``values`` (per target); ``observer`` must be added to the run's
    plugins (``load_plugins(extra=[(OBSERVER_NAME, observer)])``) so pruning sees each epoch."""

    def __call__(
        self, trial_number: int, values: Mapping[Target, Mapping[str, Any]], observer: object
    ) -> TrialOutcome: ...


class PruningObserver:
    """A lifecycle plugin for one trial: reports validation Dice per training epoch, asks the pruner."""

    def __init__(self, trial: optuna.Trial, phase: str = "train", prune: bool = True) -> None:
        self.trial = trial
        self.phase = phase
        self.prune = prune
        self.reported: dict[int, float] = {}

    @hookimpl
    def on_epoch_ended(self, run: RunInfo, phase: str, epoch: int, metrics: Mapping[str, float]) -> None:
        if phase != self.phase:
            return
        dice = next((float(metrics[k]) for k in VAL_DICE_KEYS if k in metrics), None)
        if dice is None or not math.isfinite(dice):
            return
        self.reported[epoch] = dice
        if not self.prune:
            return
        self.trial.report(dice, step=epoch)
        if self.trial.should_prune():
            raise TrialStopped(f"pruned at epoch {epoch} (validation Dice {dice:.4f})")


def failure_reason(exc: BaseException) -> str:
    """One line naming what went wrong inside a trial."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    oom = isinstance(exc, MemoryError) or "out of memory" in text.lower()
    prefix = "out of memory" if oom else type(exc).__name__
    return f"{prefix}: {text}" if text else prefix


class TuneObjective:
    """The callable handed to ``study.optimize``."""

    def __init__(self, specs: list[ParameterSpec], runner: TrialRunner, objective: Objective, prune: bool) -> None:
        self.specs = specs
        self.runner = runner
        self.objective = objective
        self.prune = prune

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, float]:
        import optuna

        values = suggest(trial, self.specs)
        trial.set_user_attr(VALUES, {k: dict(v) for k, v in values.items() if v})
        observer = PruningObserver(trial, prune=self.prune)
        try:
            outcome = self.runner(trial.number, values, observer)
            result = self._values(outcome)
        except TrialStopped as exc:
            log.info("trial %d %s", trial.number, exc)
            raise optuna.TrialPruned(str(exc)) from exc
        except KeyboardInterrupt as exc:  # Optuna stores the trial as failed; say why in the study
            how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
            trial.set_user_attr(FAIL_REASON, f"{how}; the worker stopped")
            raise
        except Exception as exc:
            reason = failure_reason(exc)
            trial.set_user_attr(FAIL_REASON, reason)
            log.warning("trial %d failed: %s", trial.number, reason)
            raise
        trial.set_user_attr(DICE, outcome.dice)
        trial.set_user_attr(MEMORY_MB, outcome.memory_mb)
        trial.set_user_attr(REF, outcome.ref)
        return result

    def _values(self, outcome: TrialOutcome) -> float | tuple[float, float]:
        if not math.isfinite(outcome.dice):
            raise TrialFailed(f"validation Dice is {outcome.dice} (the loss diverged?)")
        if self.objective == "dice":
            return outcome.dice
        if outcome.memory_mb is None or not outcome.memory_mb > 0:
            raise TrialFailed(f"objective '{self.objective}' needs a measured memory, the run gave {outcome.memory_mb}")
        if self.objective == "dice-per-mb":
            return outcome.dice / outcome.memory_mb
        return outcome.dice, outcome.memory_mb
