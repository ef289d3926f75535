"""One strategy x seed run of a comparison: found in the registry when it completed before, else searched,
retrained and registered through the engine; then scored on the held-out cases (that score is attached
to the trained record, so a resumed comparison reads it instead of scoring again)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_seg.compare.settings import TIME_BUDGET_KEY
from automl_seg.compare.stats import RunRow
from automl_seg.engine.evaluate import EvalReport, evaluate_loader
from automl_seg.engine.model import WEIGHTS_ARTIFACT, load_trained_model, record_plan

if TYPE_CHECKING:
    import torch
    from automl_seg_registry import ArchitectureRecord, Registry

    from automl_seg.config import DataSettings
    from automl_seg.data.prepared import PreparedData
    from automl_seg.engine.settings import TrainSettings
    from automl_seg.plugins import PluginHost

log = logging.getLogger(__name__)

HELDOUT_ARTIFACT = "heldout_evaluation"
#: provenance keys of a comparison's run records
COMPARE_KEY, COMPARE_NAME = "compare_key", "compare"


@dataclass(frozen=True)
class RunSpec:
    """What one run is: the comparison's name and key (same settings, same key), strategy, seed, overrides."""

    comparison: str
    key: str
    strategy: str
    seed: int
    overrides: Mapping[str, Any]
    time_budget_s: float | None = None

    @property
    def record_name(self) -> str:
        return f"{self.comparison}-{self.strategy}"


def completed_run(registry: Registry, spec: RunSpec) -> ArchitectureRecord | None:
    """The newest trained record this comparison registered for ``spec``'s strategy and seed (and time budget:
    a time-budgeted run searched for what the other searches spent then), if any."""
    found = [
        record
        for record in registry.list(name=spec.record_name)
        if record.provenance.get(COMPARE_KEY) == spec.key
        and record.seed == spec.seed
        and record.strategy.settings.get(TIME_BUDGET_KEY) == spec.time_budget_s
        and any(artifact.name == WEIGHTS_ARTIFACT for artifact in record.artifacts)
    ]
    return max(found, key=lambda record: record.version or 0) if found else None


def execute_run(
    spec: RunSpec,
    data_settings: DataSettings,
    train: TrainSettings,
    *,
    budget: str,
    device: str,
    workdir: Path,
    registry: Registry,
    host: PluginHost,
) -> ArchitectureRecord:
    """Search and retrain through the engine in a folder of ``workdir`` keyed by the strategy's settings
    (continuing the checkpoints an earlier attempt of the same settings left); the trained record carries the
    comparison's tag and key."""
    from automl_seg.engine.pipeline import holds_run, run_key, run_search
    from automl_seg.engine.settings import SearchRunSettings

    overrides = dict(spec.overrides)
    if spec.time_budget_s is not None:
        overrides[TIME_BUDGET_KEY] = spec.time_budget_s
    workdir = workdir / run_key(overrides=overrides)  # other settings (or time budget): other checkpoints
    resume = holds_run(workdir)
    run = SearchRunSettings(
        strategy=spec.strategy, budget=budget, seed=spec.seed, device=device, workdir=workdir, resume=resume,
        progress=False,
    )  # fmt: skip
    result = run_search(
        run, data_settings, train, overrides, registry=registry, host=host, promote=False,
        record_overrides={
            "name": spec.record_name,
            "tags": [f"compare:{spec.comparison}"],
            "provenance": {COMPARE_NAME: spec.comparison, COMPARE_KEY: spec.key},
        },
    )  # fmt: skip
    assert result.trained is not None  # run_search trains unless no_train
    return result.trained.record


def heldout_report(
    record: ArchitectureRecord,
    data: PreparedData,
    *,
    registry: Registry,
    host: PluginHost,
    device: torch.device,
    folder: Path,
) -> EvalReport:
    """``record``'s scores on ``data.test_cases``: the attached ones when present, else scored now and attached."""
    if any(artifact.name == HELDOUT_ARTIFACT for artifact in record.artifacts):
        stored = EvalReport.model_validate_json(registry.artifact_path(record.ref, HELDOUT_ARTIFACT).read_text())
        if sorted(case.case for case in stored.cases) == sorted(data.test_cases):
            return stored
        log.warning("%s was scored on other held-out cases before; scoring it again", record.ref)
    network, _ = load_trained_model(registry, record.ref, host, device)
    patch = record_plan(record).patch_size  # the network's window; the preprocessing is the comparison's
    plan = data.plan.model_copy(update={"patch_size": patch})
    report = evaluate_loader(network, data.val_loader(data.test_cases), plan, device)
    if not any(artifact.name == HELDOUT_ARTIFACT for artifact in record.artifacts):
        path = folder / f"{record.name}-{record.version}-heldout.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.model_dump(mode="json"), indent=1))
        registry.attach(record.ref, HELDOUT_ARTIFACT, path, "report")
    return report


def run_row(spec: RunSpec, record: ArchitectureRecord, report: EvalReport, *, reused: bool) -> RunRow:
    """The comparison's row of one run: held-out Dice (per class, per case) and the record's accounting."""
    compute, metrics = record.metrics.compute, record.metrics
    search_wall = compute.search.wall_s if compute.search else metrics.search_time_s or 0.0
    retrain_wall = compute.retrain.wall_s if compute.retrain else metrics.train_time_s or 0.0
    return RunRow(
        strategy=spec.strategy,
        seed=spec.seed,
        ref=record.ref,
        reused=reused,
        dice_per_class=report.dice_per_class,
        dice_mean=report.dice_mean,
        case_dice={case.case: sum(case.dice.values()) / len(case.dice) for case in report.cases},
        search_wall_s=search_wall,
        search_device_s=compute.search.device_s if compute.search else search_wall,
        retrain_wall_s=retrain_wall,
        retrain_device_s=compute.retrain.device_s if compute.retrain else retrain_wall,
        peak_memory_mb=metrics.peak_memory_mb,
        params=metrics.params,
        time_budget_s=record.strategy.settings.get(TIME_BUDGET_KEY),
    )
