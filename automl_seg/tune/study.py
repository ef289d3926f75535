"""Creating and resuming studies; a study remembers what it tunes and refuses to be mixed.

The study's user attribute ``automl_seg`` holds its identity (strategy, space, dataset, objective);
a run with ``--study NAME`` resumes that study only when its identity is the same.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from automl_seg.errors import ConfigError

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

IDENTITY_ATTR = "automl_seg"
#: Optuna stores a study's user attributes after creating it, so a worker that finds a study another
#: worker created a moment ago may see it without an identity yet: an empty study is re-read this long
#: before it is refused as not ours.
IDENTITY_WAIT_S = 5.0
Objective = Literal["dice", "dice-per-mb", "pareto"]
SamplerName = Literal["tpe", "random", "cmaes"]
PrunerName = Literal["median", "hyperband", "none"]
Direction = Literal["maximize", "minimize"]  #: an objective value's, as Optuna spells it


class StudyIdentity(BaseModel):
    """What a study tunes; stored with the study so workers and reruns cannot mix studies."""

    model_config = ConfigDict(extra="forbid")

    strategy: str
    space: str
    dataset: str
    objective: Objective

    @property
    def directions(self) -> list[Direction]:
        """Dice (or Dice per MB) is maximised; with ``pareto`` measured memory is minimised too."""
        return ["maximize", "minimize"] if self.objective == "pareto" else ["maximize"]


def default_study_name(strategy: str, dataset: str) -> str:
    return f"tune-{strategy}-{dataset}"


def worker_seed(seed: int, trials_before: int) -> int:
    """The sampler seed of a worker that finds ``trials_before`` trials in its study: ``seed`` itself for
    a new study; mixed with the count otherwise, so rerunning a command to resume a study proposes new
    points instead of replaying the first run's (a sampler's own random stream restarts with a process)."""
    return seed if trials_before == 0 else (seed * 1_000_003 + trials_before) % 2**32


def trial_count(storage: optuna.storages.BaseStorage, name: str) -> int:
    """Trials study ``name`` holds (0 when it does not exist yet)."""
    study = _find(storage, name)
    return 0 if study is None else len(study.trials)


def make_sampler(name: SamplerName, seed: int) -> optuna.samplers.BaseSampler:
    """Seeded sampler. Workers sharing one study should use different seeds (else they propose alike)."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise ConfigError(f"unknown sampler {name!r}; use tpe, random or cmaes")


def make_pruner(name: PrunerName | None, objective: Objective, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner; ``None`` picks median for one objective, none for ``pareto``.

    Optuna cannot prune multi-objective studies, so an explicit pruner with ``pareto`` is refused."""
    import optuna

    if name is None:
        name = "none" if objective == "pareto" else "median"
    if name != "none" and objective == "pareto":
        raise ConfigError(
            f"--pruner {name} cannot be used with --objective pareto (Optuna prunes one objective); use --pruner none"
        )
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, max_epochs), reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"unknown pruner {name!r}; use median, hyperband or none")


def open_study(
    storage: optuna.storages.BaseStorage,
    name: str,
    identity: StudyIdentity,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create study ``name`` or resume it; refuse one that tunes something else."""
    import optuna

    existing = _find(storage, name)
    if existing is not None:
        _wait_for_identity(existing)
        _check_identity(existing, name, identity)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=identity.directions,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    if existing is None:
        recorded = study.user_attrs.get(IDENTITY_ATTR)
        if recorded is None:
            study.set_user_attr(IDENTITY_ATTR, identity.model_dump())
        _check_identity(study, name, identity)  # re-read: another worker may have created it a moment ago
        log.info("created study '%s'", name)
    else:
        log.info("resuming study '%s' (%d trials so far)", name, len(study.trials))
    return study


def load_study(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    """An existing study, for ``tune show``; a clear error listing the known ones otherwise."""
    import optuna

    if _find(storage, name) is None:
        known = ", ".join(sorted(s.study_name for s in optuna.get_all_study_summaries(storage))) or "none"
        raise ConfigError(f"no study named '{name}' in this storage; studies there: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def study_identity(study: optuna.Study) -> StudyIdentity | None:
    raw = study.user_attrs.get(IDENTITY_ATTR)
    return StudyIdentity.model_validate(raw) if raw else None


def _find(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study | None:
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def _wait_for_identity(study: optuna.Study) -> None:
    """Until the study holds an identity, has trials (then it never will), or ``IDENTITY_WAIT_S`` passed.
    ``user_attrs`` and ``trials`` read the storage afresh on each access."""
    deadline = time.monotonic() + IDENTITY_WAIT_S
    while IDENTITY_ATTR not in study.user_attrs and not study.trials and time.monotonic() < deadline:
        time.sleep(0.05)


def _check_identity(study: optuna.Study, name: str, wanted: StudyIdentity) -> None:
    raw = study.user_attrs.get(IDENTITY_ATTR)
    if raw is None:
        raise ConfigError(f"study '{name}' was not created by automl-seg tune; choose another --study name")
    found = StudyIdentity.model_validate(raw)
    differences = [
        f"{field} '{getattr(found, field)}' (asked: '{getattr(wanted, field)}')"
        for field in StudyIdentity.model_fields
        if getattr(found, field) != getattr(wanted, field)
    ]
    if differences:
        raise ConfigError(
            f"study '{name}' tunes {', '.join(differences)}; a study cannot mix them: "
            "use the same settings to resume it, or pick a new --study name"
        )
