"""The search pipeline: data -> plan -> strategy search -> register the architecture -> retrain ->
evaluate -> register the trained model -> promote ``best``. Also ``retrain`` of a registered record.

Registry layout (one name per strategy and dataset, f"{strategy}-{dataset}"): the searched
architecture is a version without weights; the trained model is the next version, whose parent is
the architecture, with weights, history (JSON + PNG) and metrics. A failed run registers nothing
beyond what it completed, and never changes existing versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from pydantic import BaseModel

from automl_seg.compute import Spent, Stopwatch
from automl_seg.config import SPLIT_KEYS, DataSettings, build_settings
from automl_seg.engine.budgets import check_budget
from automl_seg.engine.devices import loader_workers, resolve_device
from automl_seg.engine.distributed import Distributed
from automl_seg.engine.evaluate import EvalReport, evaluate_cases
from automl_seg.engine.folds import CrossValResult, check_folds, cross_validate
from automl_seg.engine.history import plot_history, save_history_json
from automl_seg.engine.model import (
    WEIGHTS_ARTIFACT,
    WEIGHTS_FILE,
    WEIGHTS_KIND,
    fresh_network,
    record_plan,
    save_weights,
)
from automl_seg.engine.options import chosen_strategy, strategy_settings
from automl_seg.engine.precision import mixed_precision
from automl_seg.engine.settings import RunSettings, SearchRunSettings, TrainSettings, plan_limits
from automl_seg.engine.train import TrainResult, train_network
from automl_seg.errors import ConfigError, RegistryError, RunStopped, UserError
from automl_seg.interfaces import RunInfo, SearchContext, SearchOutcome, new_run_id
from automl_seg.paths import work_folder

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, Metrics, PhaseCompute, Registry

    from automl_seg.data.models import Plan
    from automl_seg.data.prepared import PreparedData
    from automl_seg.plugins import PluginHost

log = logging.getLogger(__name__)

ARCH_MARKER = "architecture.json"


@dataclass
class TrainRunResult:
    record: ArchitectureRecord
    evaluation: EvalReport
    train: TrainResult
    promoted: bool


@dataclass
class SearchRunResult:
    architecture: ArchitectureRecord
    trained: TrainRunResult | None
    workdir: Path
    cross_validated: CrossValResult | None = None


# -- small pieces ---------------------------------------------------------------------------------


def run_key(**parts: Any) -> str:
    """A short deterministic key for a run's settings (same settings, same workdir)."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_workdir(key: str) -> Path:
    from platformdirs import user_cache_path

    return user_cache_path("automl-seg") / "runs" / key


def record_name(strategy: str, dataset: str) -> str:
    return f"{strategy}-{dataset}"


def package_versions(host: PluginHost) -> dict[str, str]:
    import monai

    from automl_seg import __version__

    versions = {"automl-seg": __version__, "torch": torch.__version__, "monai": monai.__version__}
    versions.update({f"plugin:{name}": info.version for name, info in sorted(host.plugins.items())})
    return versions


def artifact_kind(path: Path, name: str) -> str:
    if path.suffix == ".png":
        return "figure"
    if path.suffix == ".json":
        return "history" if "history" in name else "report"
    return "report"


def prepare(
    data_settings: DataSettings, run: RunSettings, device: torch.device, plan: Plan | None = None
) -> PreparedData:
    """The run's data, planned within the run's budget (or with a trained model's ``plan``), its training
    batches prepared by the run's worker processes."""
    from automl_seg.data import prepare_data

    data = prepare_data(data_settings, progress=run.progress, limits=plan_limits(run.budget), plan=plan)
    workers = loader_workers(run.workers, device)
    if workers:
        log.info("training batches prepared by %d worker process(es)", workers)
    return dataclasses.replace(data, loader_workers=workers)


def warn_gpu_budget_on_cpu(budget: str, device: torch.device) -> None:
    """``full`` is sized for a GPU: on the CPU it runs for days, which a user should hear before, not after."""
    if budget == "full" and device.type == "cpu":
        log.warning(
            "the full budget is sized for a GPU (a paper-length search, nnU-Net-length training): on the CPU it "
            "runs for days; use --budget quick here, or --device cuda on a GPU machine"
        )


def _ended_summary(
    trained: TrainRunResult | None,
    architecture: ArchitectureRecord | None = None,
    cross_validated: CrossValResult | None = None,
) -> dict[str, Any]:
    """The end hook's summary: the run's refs (a retrain has no new architecture) and the trained model's Dice."""
    summary: dict[str, Any] = {} if architecture is None else {"architecture": architecture.ref}
    summary.update(
        trained=trained.record.ref if trained else None,
        dice_mean=trained.evaluation.dice_mean if trained else None,
        promoted=trained.promoted if trained else False,
    )
    if cross_validated is not None and cross_validated.record is not None:
        summary.update(trained=cross_validated.record.ref, dice_mean=cross_validated.record.metrics.dice_mean)
    return summary


def notify_registered(host: PluginHost, info: RunInfo, registry: Registry, record: ArchitectureRecord) -> None:
    """``on_model_registered`` with the record's stored files and its aliases."""
    folder = registry.record_dir(record.ref)
    files = {artifact.name: folder / artifact.path for artifact in record.artifacts}
    aliases = registry.aliases().get(record.ref, [])
    host.notify("on_model_registered", run=info, record=record, files=files, aliases=aliases)


def _json_settings(**sections: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's settings for observers: each section as JSON-able data (the data root left out)."""
    out: dict[str, Any] = {}
    for name, value in sections.items():
        if isinstance(value, BaseModel):
            out[name] = value.model_dump(mode="json", exclude={"data_root"} & set(type(value).model_fields))
        elif value:
            out[name] = json.loads(json.dumps(dict(value), default=str))
    return out


def _notify_epoch(host: PluginHost, info: RunInfo, phase: str, dist: Distributed):  # noqa: ANN202 - a callback
    """``on_epoch_ended`` (observed on rank 0 only); an observer's ``RunStopped`` stops every rank."""

    def callback(epoch: int, metrics: Mapping[str, float]) -> None:
        stopped: RunStopped | None = None
        try:
            host.notify("on_epoch_ended", run=info, phase=phase, epoch=epoch, metrics=dict(metrics))
        except RunStopped as exc:
            stopped = exc
        if dist.enabled:
            reason = dist.broadcast(None if stopped is None else str(stopped))
            stopped = stopped or (RunStopped(reason) if reason is not None else None)
        if stopped is not None:
            raise stopped

    return callback


RunT = TypeVar("RunT", bound=RunSettings)


def _rank_view(host: PluginHost, run: RunT, dist: Distributed) -> tuple[PluginHost, RunT]:
    """What a rank other than 0 works with: no observers notified, no progress shown (rank 0 alone
    reports a run)."""
    if dist.is_main:
        return host, run
    return dataclasses.replace(host, observing=False), run.model_copy(update={"progress": False})


# -- search -----------------------------------------------------------------------------------------


def run_search(
    run: SearchRunSettings,
    data_settings: DataSettings,
    train: TrainSettings,
    strategy_overrides: Mapping[str, Any],
    *,
    registry: Registry,
    host: PluginHost,
    space_overrides: Mapping[str, Any] | None = None,
    record_overrides: Mapping[str, Any] | None = None,
    promote: bool = True,
    dist: Distributed | None = None,
    parent_run: str | None = None,
) -> SearchRunResult:
    """Search with ``run.strategy``, register the architecture, then (unless ``no_train``) retrain,
    evaluate, register the trained model and promote it to ``best`` when it beats the previous best.

    For tuning: ``space_overrides`` update the space's default arguments; ``record_overrides`` set
    the records' ``name``/``tags`` and add to their ``provenance``; ``promote=False`` leaves ``best``;
    ``parent_run`` is the ``run_id`` of the run this one is part of (a tuning study's).
    In a DDP job (``dist``) every rank searches and trains; rank 0 alone registers, and the others
    get its records."""
    dist = dist or Distributed()
    host, run = _rank_view(host, run, dist)
    strategy = chosen_strategy(host, run.strategy)
    space = host.space(strategy.space)
    check_budget(run.budget, strategy=strategy, space=space)
    settings = strategy_settings(strategy, run.budget, strategy_overrides)
    device = dist.device(resolve_device(run.device))
    warn_gpu_budget_on_cpu(run.budget, device)
    key = run_key(
        kind="search", strategy=strategy.name, seed=run.seed, budget=run.budget,
        data=data_settings.model_dump(mode="json", exclude={"data_root"}),
        strategy_settings=settings.model_dump(mode="json"), train=train.model_dump(mode="json"),
        **({"folds": run.folds} if run.folds else {}),
    )  # fmt: skip
    workdir = _search_workdir(run, key)
    with dist.main_first():  # rank 0 fills the fingerprint cache the others read
        data = prepare(data_settings, run, device)
    check_run_folds(run, data, dist)
    info = RunInfo(
        run_id=dist.broadcast(new_run_id("search")), kind="search", dataset=data.plan.dataset,
        strategy=strategy.name, workdir=workdir, settings_key=key, parent=parent_run, settings=_json_settings(
            run=run, data=data_settings, train=train, strategy=settings, space=space_overrides, record=record_overrides
        ),
    )  # fmt: skip
    with host.observed(info) as summary:
        architecture = _resumed_architecture(registry, workdir) if run.resume and dist.is_main else None
        architecture = dist.broadcast(architecture)
        if architecture is None:
            space_args = {**space.default_args(data.plan, run.budget), **(space_overrides or {})}
            ctx = SearchContext(
                space=space, space_args=space_args, data=data, settings=settings, seed=run.seed, device=device,
                workdir=workdir / "search", resume=run.resume, run=info,
                epoch_ended=_notify_epoch(host, info, "search", dist), progress=run.progress, dist=dist,
                budget=run.budget,
            )  # fmt: skip
            ctx.workdir.mkdir(parents=True, exist_ok=True)
            preprocess_all(data)
            clock = Stopwatch(device)
            outcome = strategy.search(ctx)
            if dist.is_main:
                record = architecture_record(
                    outcome, ctx, split=data_settings.model_dump(mode="json", include=set(SPLIT_KEYS)),
                    versions=package_versions(host), spent=clock.spent(),
                )  # fmt: skip
                record = _with_overrides(record, record_overrides)
                architecture = registry.register(record, files=_outcome_files(outcome, workdir))
                (workdir / ARCH_MARKER).write_text(json.dumps({"ref": architecture.ref}))
                log.info("registered architecture %s", architecture.ref)
                notify_registered(host, info, registry, architecture)
            architecture = dist.broadcast(architecture)
        if architecture is None:  # every rank got rank 0's record above
            raise RuntimeError("the searched architecture did not reach this rank")

        trained, cross_validated = None, None
        if not run.no_train and run.folds is not None:
            cross_validated = cross_validate(
                architecture, data, train, run, registry=registry, host=host, device=device,
                workdir=workdir / "train", folds=run.folds, fold=run.fold, info=info,
                split=data_settings.model_dump(mode="json", include=set(SPLIT_KEYS)),
            )  # fmt: skip
        elif not run.no_train:
            resume_training = dist.broadcast(run.resume and (workdir / "train").is_dir())
            trained = _train_and_register(
                architecture, data, train, run, registry=registry, host=host, device=device,
                workdir=workdir / "train", resume=resume_training, info=info, promote=promote, dist=dist,
            )  # fmt: skip
        summary.update(_ended_summary(trained, architecture, cross_validated))
    return SearchRunResult(architecture=architecture, trained=trained, workdir=workdir, cross_validated=cross_validated)


#: In a search's folder: the settings key of the run whose checkpoints it holds, so that ``--resume``
#: never continues checkpoints made with other settings (a ``--workdir`` reused with another ``--set``).
SETTINGS_KEY_FILE = "settings-key"


def holds_run(workdir: Path) -> bool:
    """Whether ``workdir`` holds what a run left (checkpoints, records), not just its settings key."""
    return workdir.is_dir() and any(not p.name.startswith(SETTINGS_KEY_FILE) for p in workdir.iterdir())


def _search_workdir(run: SearchRunSettings, key: str) -> Path:
    """The run's folder (``--workdir`` or one keyed on its settings); ``--resume`` needs one that holds a run
    of the same settings (folders from before the key was written are trusted)."""
    workdir = Path(run.workdir).expanduser() if run.workdir else default_workdir(key)
    stored = workdir / SETTINGS_KEY_FILE
    previous = stored.read_text().strip() if stored.is_file() else None
    if run.resume:
        if not holds_run(workdir):
            raise UserError(f"--resume: no checkpoint of this run in {workdir}; run without --resume to start it")
        if previous not in (None, key):
            raise UserError(
                f"--resume: the checkpoints in {workdir} are of a run with other settings (key {previous}, this "
                f"run's {key}); resume with the settings it started with, or start afresh without --resume or "
                "in another --workdir"
            )
    folder = work_folder(workdir)
    if previous != key:
        partial = folder / f"{SETTINGS_KEY_FILE}.{os.getpid()}"  # the ranks of a DDP job share the folder:
        partial.write_text(key)  # a reader never sees a half-written key
        os.replace(partial, folder / SETTINGS_KEY_FILE)
    return folder


def architecture_record(
    outcome: SearchOutcome,
    ctx: SearchContext,
    *,
    split: Mapping[str, Any] | None = None,
    versions: Mapping[str, str] | None = None,
    spent: Spent | None = None,
) -> ArchitectureRecord:
    """The record of a searched architecture: what was searched, on which data, how, and its search
    metrics (memory figures from ``outcome.memory``; compute from ``spent``). The one record builder
    of ``search`` and the conformance kit's ``register_outcome``."""
    from automl_seg_registry import ArchitectureRecord, Compute, DatasetRef, Metrics, SpaceRef, StrategyRef

    plan, info = ctx.data.plan, ctx.run
    strategy = info.strategy or ""
    return ArchitectureRecord(
        name=record_name(strategy, plan.dataset),
        space=SpaceRef(name=ctx.space.name, version=str(ctx.space.version), args=outcome.space_args),
        arch=outcome.arch,
        strategy=StrategyRef(name=strategy, settings=ctx.settings.model_dump(mode="json")),
        dataset=DatasetRef(
            name=plan.dataset,
            fingerprint_hash=ctx.data.fingerprint.content_hash,
            plan=plan.model_dump(mode="json"),
            split=dict(split or {}),
        ),
        seed=ctx.seed,
        versions=dict(versions or {}),
        metrics=Metrics(
            search_time_s=spent.wall_s if spent else None,
            memory=outcome.memory.figures(),
            extra={k: float(v) for k, v in outcome.metrics.items()},
            compute=Compute(search=phase_compute(spent)) if spent else Compute(),
        ),
        provenance={"run": info.run_id, "budget": ctx.budget, "device": ctx.device.type},
    )


def trained_record(
    parent: ArchitectureRecord,
    metrics: Metrics,
    *,
    seed: int,
    host: PluginHost,
    info: RunInfo,
    train: TrainSettings,
    device: torch.device,
    split: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
    plan: Plan | None = None,
) -> ArchitectureRecord:
    """The record of ``parent``'s architecture trained from scratch (one model or a cross-validated set):
    the parent's space, arch, strategy and dataset (with ``split`` where it was trained on other cases,
    and ``plan``, the one it was trained with, where that differs: other mirror axes),
    its own metrics, seed and package versions, and the parent's provenance with this run's (the run,
    training settings, device) and ``provenance``. The one builder of ``train`` and ``train --folds``."""
    payload = parent.model_dump(exclude={"version", "artifacts", "created"})
    if split is not None:
        payload["dataset"]["split"] = dict(split)
    if plan is not None:
        payload["dataset"]["plan"] = plan.model_dump(mode="json")
    payload.update(
        parent=parent.ref,
        metrics=metrics.model_dump(),
        seed=seed,
        versions=package_versions(host),
        provenance={
            **parent.provenance,
            "run": info.run_id,
            "train": train.model_dump(mode="json"),
            "device": device.type,
            **(provenance or {}),
        },
    )
    return type(parent).model_validate(payload)


def _with_overrides(record: ArchitectureRecord, overrides: Mapping[str, Any] | None) -> ArchitectureRecord:
    """``record`` with another ``name``/``tags`` and more ``provenance`` (e.g. a tuning study's trial)."""
    if not overrides:
        return record
    unknown = set(overrides) - {"name", "tags", "provenance"}
    if unknown:
        raise ValueError(f"record_overrides accepts name, tags and provenance, not {sorted(unknown)}")
    update = {k: v for k, v in overrides.items() if k != "provenance"}
    update["provenance"] = {**record.provenance, **overrides.get("provenance", {})}
    return record.model_copy(update=update, deep=True)


def _resumed_architecture(registry: Registry, workdir: Path) -> ArchitectureRecord | None:
    """The architecture this run already registered (resume skips the finished search)."""
    marker = workdir / ARCH_MARKER
    if not marker.is_file():
        return None
    try:
        return registry.get(json.loads(marker.read_text())["ref"])
    except (UserError, KeyError, ValueError):
        return None


def _outcome_files(outcome: SearchOutcome, workdir: Path) -> dict[str, tuple[Path, str]]:
    files = {name: (Path(path), artifact_kind(Path(path), name)) for name, path in outcome.artifacts.items()}
    if outcome.history and not any(kind == "history" for _, kind in files.values()):
        path = save_history_json(outcome.history, workdir / "search_history.json")
        files["search_history"] = (path, "history")
    return files


# -- training a registered architecture -------------------------------------------------------------


def retraining_plan(record: ArchitectureRecord, data: DataSettings) -> Plan:
    """The record's plan, with the mirror axes ``data`` overrides (``data.mirror_axes``)."""
    plan = record_plan(record)
    if data.mirror_axes is None:
        return plan
    return plan.model_copy(update={"mirror_axes": data.mirror_axes})  # validated and sorted by DataSettings


def retrain(
    ref: str,
    run: RunSettings,
    train: TrainSettings,
    *,
    registry: Registry,
    host: PluginHost,
    data_options: Mapping[str, Any] | None = None,
    dist: Distributed | None = None,
) -> TrainRunResult | CrossValResult:
    """Train the architecture of ``ref`` from scratch on its dataset (with its plan's patch size) and
    register the result as the next version of its name, with ``ref`` as parent. ``data_options``
    are the other ``DataSettings`` (data root, split, ``max_cases``). With ``run.folds``: cross-validate
    (``automl_seg.engine.folds``), the record is registered once every fold is done. In a DDP job
    (``dist``) every rank trains; rank 0 alone registers."""
    dist = dist or Distributed()
    host, run = _rank_view(host, run, dist)
    record = registry.get(ref)
    device = dist.device(resolve_device(run.device))
    warn_gpu_budget_on_cpu(run.budget, device)
    plan = record.dataset.plan
    data_settings = build_settings(
        DataSettings, {**record_split(record), **(data_options or {})},  # the search's cases unless told otherwise
        {"dataset": record.dataset.name, "patch_size": tuple(plan["patch_size"]) if plan.get("patch_size") else None},
        source="data settings",
    )  # fmt: skip
    key = run_key(
        kind="train", ref=record.ref, seed=run.seed, train=train.model_dump(mode="json"),
        data=data_settings.model_dump(mode="json", exclude={"data_root"}),
        **({"folds": run.folds} if run.folds else {}),
    )  # fmt: skip
    workdir = work_folder(Path(run.workdir) if run.workdir else default_workdir(key))
    with dist.main_first():
        data = prepare(data_settings, run, device, plan=retraining_plan(record, data_settings))
    check_run_folds(run, data, dist)
    if data.fingerprint.content_hash != record.dataset.fingerprint_hash:
        log.warning("%s was searched on other data than %s holds now (fingerprints differ)", record.ref, data.info.name)
    info = RunInfo(
        run_id=dist.broadcast(new_run_id("train")), kind="train", dataset=record.dataset.name,
        strategy=record.strategy.name, workdir=workdir, settings_key=key,
        settings=_json_settings(architecture={"ref": record.ref}, run=run, data=data_settings, train=train),
    )  # fmt: skip
    split = data_settings.model_dump(mode="json", include=set(SPLIT_KEYS))
    with host.observed(info) as summary:
        if run.folds is not None:
            folds = cross_validate(
                record, data, train, run, registry=registry, host=host, device=device, workdir=workdir,
                folds=run.folds, fold=run.fold, info=info, split=split,
            )  # fmt: skip
            summary.update(_ended_summary(None, cross_validated=folds))
            return folds
        result = _train_and_register(
            record, data, train, run, registry=registry, host=host, device=device,
            workdir=workdir, resume=run.resume, info=info, split=split, dist=dist,
        )  # fmt: skip
        summary.update(_ended_summary(result))
    return result


def record_split(record: ArchitectureRecord) -> dict[str, Any]:
    """The data settings that chose ``record``'s cases (a cross-validated record also names its fold count)."""
    return {k: v for k, v in record.dataset.split.items() if k in SPLIT_KEYS}


def check_run_folds(run: RunSettings, data: PreparedData, dist: Distributed) -> None:
    """``--folds``/``--fold`` against the cases there are to split: one error line before any work.
    Folds train one process each (spread them with ``--fold K``), not in a DDP job."""
    if run.folds is not None:
        check_folds(run.folds, run.fold, len(set(data.train_cases) | set(data.val_cases)))
        if dist.enabled:
            raise ConfigError("--folds trains each fold in one process: spread folds with --fold K, not --nproc")


def _train_and_register(
    parent: ArchitectureRecord,
    data: PreparedData,
    train: TrainSettings,
    run: RunSettings,
    *,
    registry: Registry,
    host: PluginHost,
    device: torch.device,
    workdir: Path,
    resume: bool,
    info: RunInfo,
    promote: bool = True,
    split: Mapping[str, Any] | None = None,
    dist: Distributed | None = None,
) -> TrainRunResult:
    """Train ``parent``'s architecture from scratch, evaluate it on the validation cases and register it
    (weights, history, curves, evaluation) as the next version of its name; promote it when asked.
    In a DDP job rank 0 alone registers; the others return its record."""
    dist = dist or Distributed()
    network = fresh_network(parent, host, run.seed)
    preprocess_all(data)
    clock = Stopwatch(device)
    result = train_network(
        network, data, train, device=device, seed=run.seed, workdir=workdir, resume=resume,
        epoch_ended=_notify_epoch(host, info, "train", dist), progress=run.progress, dist=dist,
    )  # fmt: skip
    spent = clock.spent()
    network.eval()
    with mixed_precision(device, train.amp):
        evaluation = evaluate_cases(network, data, device, train.sw_batch_size, dist=dist)
    if not dist.is_main:
        received: tuple[ArchitectureRecord, bool] | None = dist.broadcast(None)  # rank 0's (record, promoted)
        if received is None:
            raise RuntimeError("rank 0 sent no trained record")
        stored, promoted = received
        return TrainRunResult(record=stored, evaluation=evaluation, train=result, promoted=promoted)
    metrics = _trained_metrics(parent, evaluation, result, train, val_cases=len(data.val_cases), spent=spent)
    record = trained_record(
        parent, metrics, seed=run.seed, host=host, info=info, train=train, device=device,
        split=split, plan=data.plan,  # retrained on other cases than the parent's, perhaps with other flips
        provenance={
            "val_cases": list(data.val_cases),
            **({"processes": dist.world_size} if dist.enabled else {}),
        },
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="artifacts-", dir=workdir) as tmp:
        files = _trained_artifacts(result, evaluation, Path(tmp), title=parent.name)
        stored = registry.register(record, files=files)
    promoted = promote_if_comparable(registry, stored) if promote else False
    notify_registered(host, info, registry, stored)
    log.info("registered %s (val Dice %.3f)%s", stored.ref, evaluation.dice_mean, ", now best" if promoted else "")
    dist.broadcast((stored, promoted))
    return TrainRunResult(record=stored, evaluation=evaluation, train=result, promoted=promoted)


def preprocess_all(data: PreparedData) -> None:
    """Preprocess the training and validation cases now (a no-op for cached ones), so that the search's and the
    retraining's compute count their own work, not the one-off data preparation of whichever phase reads first."""
    data.preprocessed(list(dict.fromkeys([*data.train_cases, *data.val_cases])))


def phase_compute(spent: Spent) -> PhaseCompute:
    """A phase's measured cost as the registry stores it."""
    from automl_seg_registry import PhaseCompute

    return PhaseCompute(wall_s=spent.wall_s, device_s=spent.device_s, device=spent.device)


def _trained_metrics(
    parent: ArchitectureRecord,
    evaluation: EvalReport,
    result: TrainResult,
    train: TrainSettings,
    *,
    val_cases: int,
    spent: Spent,
) -> Metrics:
    """The trained model's metrics: its validation scores and training cost, with the parent's search metrics.

    The retraining's compute is measured around the training alone (not the evaluation after it); a
    resumed training counts the process that finished it."""
    from automl_seg_registry import Compute, Metrics

    return Metrics(
        dice_per_class=evaluation.dice_per_class,
        dice_mean=evaluation.dice_mean,
        hd95_per_class={k: v for k, v in evaluation.hd95_per_class.items() if v is not None},
        hd95_mean=evaluation.hd95_mean,
        search_time_s=parent.metrics.search_time_s,
        train_time_s=result.train_time_s,
        peak_memory_mb=result.peak_memory_mb,
        params=result.params,
        memory=dict(parent.metrics.memory),
        extra={**parent.metrics.extra, "train_epochs": float(train.epochs), "val_cases": float(val_cases)},
        compute=Compute(search=parent.metrics.compute.search, retrain=phase_compute(spent)),
    )


def _trained_artifacts(
    result: TrainResult, evaluation: EvalReport, folder: Path, *, title: str
) -> dict[str, tuple[Path, str]]:
    """The trained model's files, written into ``folder``: weights, history, curves and evaluation."""
    return {
        WEIGHTS_ARTIFACT: (save_weights(result.state_dict, folder / WEIGHTS_FILE), WEIGHTS_KIND),
        "train_history": (save_history_json(result.history, folder / "train_history.json"), "history"),
        "train_curves": (plot_history(result.history, folder / "train_curves.png", title=title), "figure"),
        "evaluation": (_write_json(evaluation.model_dump(mode="json"), folder / "evaluation.json"), "report"),
    }


def promote_if_comparable(registry: Registry, stored: ArchitectureRecord) -> bool:
    """Move ``<name>@best`` to ``stored`` when its validation Dice beats the incumbent's on the same
    validation cases; a Dice on other cases (a ``--max-cases`` run, another split) is not comparable."""
    try:
        incumbent = registry.get(f"{stored.name}@best")
    except RegistryError:  # no best yet
        incumbent = None
    if incumbent is not None and incumbent.provenance.get("val_cases") != stored.provenance.get("val_cases"):
        log.info(
            "%s was validated on other cases than %s (the best): not compared; `automl-seg registry tag %s best` "
            "moves the alias by hand", stored.ref, incumbent.ref, stored.ref,
        )  # fmt: skip
        return False
    return registry.promote(stored.ref, "best", metric="dice_mean")


def _write_json(data: Any, path: Path) -> Path:
    path.write_text(json.dumps(data, indent=2))
    return path
