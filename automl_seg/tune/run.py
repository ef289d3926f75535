"""``run_tune``: open (or resume) a study, run trials with a runner, keep the registry's ``best`` alias
on the best trial by the study's objective. Engine-agnostic: the runner does the real work."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from automl_seg.config import Seed
from automl_seg.errors import ConfigError, UserError
from automl_seg.interfaces import RunInfo, new_run_id
from automl_seg.paths import registry_root
from automl_seg.tune.best import best_with_record
from automl_seg.tune.engine_params import engine_parameters
from automl_seg.tune.objective import FAIL_REASON, TrialRunner, TuneObjective
from automl_seg.tune.params import ParameterSpec, build_space, collect_parameters
from automl_seg.tune.pareto import pareto_png
from automl_seg.tune.report import StudyReport
from automl_seg.tune.storage import default_storage_url, open_storage, safe_url
from automl_seg.tune.study import (
    Objective,
    PrunerName,
    SamplerName,
    StudyIdentity,
    default_study_name,
    make_pruner,
    make_sampler,
    open_study,
    trial_count,
    worker_seed,
)

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from automl_seg.plugins import PluginHost

log = logging.getLogger(__name__)

BEST_ALIAS = "best"
#: the study's name is also its models' registry record name
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class TuneRequest(BaseModel):
    """One ``automl-seg tune`` invocation (one worker of a possibly shared study)."""

    model_config = ConfigDict(extra="forbid")

    strategy: str
    dataset: str
    trials: int = Field(description="trials this process runs (each worker of a shared study runs its own)")
    timeout_s: float | None = None
    storage: str | None = Field(default=None, description="database URL; default: SQLite file in the registry")
    study: str | None = None
    sampler: SamplerName = "tpe"
    pruner: PrunerName | None = None
    objective: Objective = "dice"
    seed: Seed = 0
    registry: Path | None = None
    registry_index: str | None = None
    params: dict[str, Any] = Field(default_factory=dict, description="the config file's tune.params section")
    params_source: str = "config"

    def check(self) -> None:
        """Bad numbers are one line before anything starts."""
        if self.trials < 1:
            raise ConfigError(f"--trials must be at least 1 (got {self.trials})")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"--timeout must be positive seconds (got {self.timeout_s})")
        if not _STUDY_NAME.match(self.study_name):
            raise ConfigError(
                f"study name {self.study_name!r} cannot name registry records; use letters, digits, '.', '_', '-'"
            )

    @property
    def study_name(self) -> str:
        return self.study or default_study_name(self.strategy, self.dataset)

    @property
    def storage_url(self) -> str:
        return self.storage or default_storage_url(registry_root(self.registry))


class TuneResult(StudyReport):
    """What ``automl-seg tune`` answers: the study's report after this worker's trials."""

    best_ref: str | None = Field(
        default=None, description="the record this worker pointed the alias best at (None: no model registered)"
    )


def tuning_space(host: PluginHost, request: TuneRequest) -> tuple[str, list[ParameterSpec]]:
    """The strategy's search-space name and the study's parameters (declared, then narrowed by the user)."""
    space = host.strategy(request.strategy).space
    declared = collect_parameters(host, request.strategy, space, defaults=engine_parameters())
    return space, build_space(declared, request.params, source=request.params_source)


def run_tune(
    request: TuneRequest,
    host: PluginHost,
    runner: TrialRunner,
    max_epochs: int = 1,
    on_trial: Callable[[FrozenTrial], None] | None = None,
    storage: optuna.storages.BaseStorage | None = None,
    run_id: str | None = None,
) -> TuneResult:
    """Run ``request.trials`` trials of the (created or resumed) study; returns its report.

    ``storage``: ``request.storage_url`` already opened by the caller (who checked it before other work).
    ``run_id``: this worker's run, the ``parent`` of its trials' runs (default: a new one); every worker
    and every resumption is a run of its own, with the study's name as its ``settings_key``."""
    import optuna

    request.check()
    space, specs = tuning_space(host, request)
    url = request.storage_url
    storage = storage or open_storage(url)
    identity = StudyIdentity(
        strategy=request.strategy, space=space, dataset=request.dataset, objective=request.objective
    )
    pruner = make_pruner(request.pruner, request.objective, max_epochs)
    sampler = make_sampler(request.sampler, worker_seed(request.seed, trial_count(storage, request.study_name)))
    study = open_study(storage, request.study_name, identity, sampler, pruner)
    best = BestAlias(request, identity)
    finished: list[FrozenTrial] = []
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [
        _log_trial,
        best,
        lambda _study, trial: finished.append(trial),
    ]
    callbacks += [lambda _study, trial: on_trial(trial)] if on_trial else []
    objective = TuneObjective(specs, runner, request.objective, prune=not isinstance(pruner, optuna.pruners.NopPruner))
    log.info("study '%s' in %s: %d trial(s) on this worker", request.study_name, safe_url(url), request.trials)
    run = RunInfo(
        run_id=run_id or new_run_id("tune"), settings_key=request.study_name, kind="tune", dataset=request.dataset,
        strategy=request.strategy,
        workdir=study_folder(request), settings={"tune": _public_settings(request, url)},
    )  # fmt: skip
    with host.observed(run) as summary:
        study.optimize(
            objective, n_trials=request.trials, timeout=request.timeout_s, catch=(Exception,), callbacks=callbacks
        )
        best(study, None)  # trials of other workers may have finished meanwhile
        _refuse_all_failed(finished, request.study_name)
        summary.update(best=best.tagged, trials=len(finished))
    png = None
    if request.objective == "pareto":
        png = pareto_png(study, study_folder(request) / "pareto.png")
    return TuneResult(**dict(StudyReport.of(study, safe_url(url), png)), best_ref=best.tagged)


def _public_settings(request: TuneRequest, url: str) -> dict[str, Any]:
    """The request for observers, database passwords masked."""
    settings = request.model_dump(mode="json", exclude={"params_source", "storage", "registry_index"})
    settings["storage"] = safe_url(url)
    if request.registry_index:
        settings["registry_index"] = safe_url(request.registry_index)
    return settings


def _refuse_all_failed(trials: list[FrozenTrial], study: str) -> None:
    """A worker whose every trial failed ends with an error (the failed trials stay in the study)."""
    from optuna.trial import TrialState

    if not trials or any(t.state != TrialState.FAIL for t in trials):
        return
    reason = trials[0].user_attrs.get(FAIL_REASON, "see the log")
    raise UserError(
        f"all {len(trials)} trial(s) of this worker failed; trial {trials[0].number}: {reason} "
        f"(`automl-seg tune show --study {study}` lists them)"
    )


def _log_trial(_study: optuna.Study, trial: FrozenTrial) -> None:
    values = ", ".join(f"{v:.4g}" for v in trial.values) if trial.values else "-"
    log.info("trial %d %s: value %s, params %s", trial.number, trial.state.name.lower(), values, trial.params)


def study_folder(request: TuneRequest) -> Path:
    """Where a study's figures go: ``<registry>/tune/<study>/``."""
    return registry_root(request.registry) / "tune" / request.study_name


class BestAlias:
    """Study callback: points the registry alias ``best`` at the best trial's model by the objective."""

    def __init__(self, request: TuneRequest, identity: StudyIdentity) -> None:
        self.request = request
        self.identity = identity
        self.tagged: str | None = None

    def __call__(self, study: optuna.Study, _trial: FrozenTrial | None) -> None:
        best = best_with_record(study, self.identity)
        ref = best.user_attrs["ref"] if best is not None else None
        if best is None or ref is None or ref == self.tagged:
            return
        from automl_seg_registry import Registry

        with Registry.open(self.request.registry, self.request.registry_index) as registry:
            registry.tag(ref, BEST_ALIAS)
        self.tagged = ref
        log.info("alias '%s' -> %s (trial %d)", BEST_ALIAS, ref, best.number)
