"""The real trial runner: one trial = one short engine run (search -> register -> retrain -> evaluate).

Every trial's models are registered under the study's name (so the name's ``best`` alias is the
study's best by its objective, set by ``run_tune``), tagged ``tune:<study>``, with the study, trial
number and parameters in the record's provenance. The engine's own ``best`` promotion is off.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from automl_seg.config import Budget, DataSettings, Device, Seed, build_settings
from automl_seg.errors import RunStopped, UserError
from automl_seg.interfaces import MemoryFigures
from automl_seg.plugins import PluginHost
from automl_seg.tune.objective import OBSERVER_NAME, TrialOutcome
from automl_seg.tune.params import ParameterSpec, Target, check_extremes

if TYPE_CHECKING:
    from automl_seg.engine.distributed import Distributed
    from automl_seg.engine.settings import TrainSettings

log = logging.getLogger(__name__)


class EngineTrialSettings(BaseModel):
    """What every trial of this worker shares: data, budget, device, config sections, flags."""

    model_config = ConfigDict(extra="forbid")

    strategy: str
    dataset: str
    study: str
    data_root: Path | None = None
    max_cases: int | None = Field(default=None, gt=0)
    budget: Budget = "quick"
    device: Device = "auto"
    seed: Seed = 0
    train_epochs: int | None = Field(default=None, gt=0)
    registry: Path | None = None
    registry_index: str | None = None
    data_section: dict[str, Any] = Field(default_factory=dict)
    train_section: dict[str, Any] = Field(default_factory=dict)
    strategy_section: dict[str, Any] = Field(
        default_factory=dict, description="every trial's strategy settings before its own (config, then --set)"
    )
    progress: bool = False
    parent_run: str | None = Field(default=None, description="the tune worker's run_id: its trials' runs' parent")

    def train_settings(self, values: Mapping[str, Any] | None = None) -> TrainSettings:
        """A trial's retraining: the budget's preset < the config's section < ``--train-epochs`` < ``values``."""
        from automl_seg.engine.settings import train_settings

        return train_settings(self.budget, self.train_section, {"epochs": self.train_epochs, **(values or {})})

    @property
    def max_train_epochs(self) -> int:
        """The epochs a trial's retraining runs (the pruner's resource), without any trial's values."""
        return self.train_settings().epochs


class EngineTrialRunner:
    """``TrialRunner`` running the engine's search pipeline with one trial's values.

    In a DDP job (``dist``: the worker started with ``--nproc N`` or under torchrun) every trial is a
    DDP run: rank 0 runs the study and hands each trial's number and values to the other ranks, which
    ``follow`` until rank 0 ``release``s them; the pruner's decision reaches every rank through the
    engine's epoch callback."""

    def __init__(self, settings: EngineTrialSettings, dist: Distributed | None = None) -> None:
        from automl_seg.engine.distributed import Distributed

        self.settings = settings
        self.dist = dist or Distributed()

    def check(self, host: PluginHost, specs: list[ParameterSpec]) -> None:
        """Refuse a study whose ranges the strategy or training settings reject at an end (``check_extremes``)."""
        from automl_seg.engine.budgets import check_search_budget
        from automl_seg.engine.options import strategy_settings

        s = self.settings
        check_search_budget(host, s.budget, s.strategy)
        strategy = host.strategy(s.strategy)

        def settings_with(values: dict[str, Any]) -> object:
            return strategy_settings(strategy, s.budget, {**s.strategy_section, **values})

        check_extremes(specs, "strategy", settings_with)
        check_extremes(specs, "train", s.train_settings)

    def __call__(self, trial_number: int, values: Mapping[Target, Mapping[str, Any]], observer: object) -> TrialOutcome:
        """Rank 0's trial (the other ranks run it too when they ``follow``)."""
        if self.dist.enabled:
            self.dist.broadcast((trial_number, _plain(values)))
        outcome = self._run(trial_number, values, observer)
        assert outcome is not None  # rank 0 always has one
        return outcome

    def follow(self) -> None:
        """On a rank other than 0: run every trial rank 0 hands over, until it ``release``s this rank."""
        while (job := self.dist.broadcast(None)) is not None:
            number, values = job
            try:
                self._run(number, values, None)
            except RunStopped:  # pruned: rank 0's study goes on with the next trial
                continue

    def release(self) -> None:
        """On rank 0, when the study is done: let the other ranks' ``follow`` return."""
        if self.dist.enabled and self.dist.is_main:
            self.dist.broadcast(None)

    def _run(
        self, trial_number: int, values: Mapping[Target, Mapping[str, Any]], observer: object | None
    ) -> TrialOutcome | None:
        from automl_seg_registry import Registry

        from automl_seg.engine.pipeline import run_search
        from automl_seg.engine.settings import SearchRunSettings
        from automl_seg.plugins import load_plugins

        s = self.settings
        data = build_settings(
            DataSettings, s.data_section,
            {"dataset": s.dataset, "data_root": s.data_root, "max_cases": s.max_cases, **values.get("data", {})},
            source="tune data settings",
        )  # fmt: skip
        train = s.train_settings(values.get("train", {}))
        strategy_overrides = {**s.strategy_section, **values.get("strategy", {})}
        host = load_plugins(extra=[(OBSERVER_NAME, observer)] if observer is not None else [])
        provenance = {"study": s.study, "trial": trial_number, "params": _plain(values)}
        with _shared_workdir(self.dist, trial_number) as workdir:
            run = SearchRunSettings(
                strategy=s.strategy, budget=s.budget, seed=s.seed, device=s.device, workdir=Path(workdir),
                progress=s.progress,
            )  # fmt: skip
            with Registry.open(s.registry, s.registry_index) as registry:
                result = run_search(
                    run, data, train, strategy_overrides,
                    registry=registry, host=host, space_overrides=dict(values.get("space", {})),
                    record_overrides={"name": s.study, "tags": [f"tune:{s.study}"], "provenance": provenance},
                    promote=False, dist=self.dist, parent_run=s.parent_run,
                )  # fmt: skip
        if not self.dist.is_main:
            return None
        if result.trained is None:
            raise UserError("the search run trained no model; tuning needs the retrain step")
        record = result.trained.record
        measured = MemoryFigures.from_record(record.metrics.memory).measured_mb
        memory = measured if measured is not None else record.metrics.peak_memory_mb
        return TrialOutcome(dice=float(result.trained.evaluation.dice_mean), memory_mb=memory, ref=record.ref)


@contextmanager
def _shared_workdir(dist: Distributed, trial_number: int) -> Iterator[str]:
    """A trial's temporary workdir: rank 0 makes it (and removes it after) and tells the other ranks."""
    if dist.is_main:
        with tempfile.TemporaryDirectory(prefix=f"tune-{trial_number}-") as workdir:
            yield dist.broadcast(workdir)
    else:
        received: str | None = dist.broadcast(None)  # rank 0's folder
        if received is None:
            raise RuntimeError("rank 0 sent no trial workdir")
        yield received


def _plain(values: Mapping[Target, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {target: dict(v) for target, v in values.items() if v}
