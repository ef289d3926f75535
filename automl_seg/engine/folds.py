"""Cross-validation: one model per fold on deterministic seeded splits, registered as ONE record.

The folds split every case outside the test set (training and validation cases together), nnU-Net
style: the sorted case ids are shuffled with the split seed and dealt into ``folds`` parts; fold k
validates on part k and trains on the rest, so every case is validated exactly once. Each fold trains
in its own folder of the run's workdir (checkpoint, weights, scores), so an interrupted fold resumes
like any training and a finished fold is never trained again; ``--fold K`` trains fold K alone (folds
can be spread over machines sharing the workdir). When every fold is done the record is registered:
the fold weights are its artifacts (``weights_fold0``...), its metrics the per-class Dice mean over the
folds (sd in ``metrics.extra``), and the postprocessing chosen on the out-of-fold predictions is
stored with it (``automl_seg.engine.postprocess``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from automl_seg.engine.checkpoint import has_checkpoint
from automl_seg.engine.evaluate import EvalReport, evaluate_loader
from automl_seg.engine.history import save_history_json
from automl_seg.engine.model import WEIGHTS_KIND, fresh_network, save_weights
from automl_seg.engine.postprocess import PROVENANCE_KEY, Postprocessing, case_dice_pairs, choose
from automl_seg.engine.precision import mixed_precision
from automl_seg.engine.train import train_network
from automl_seg.errors import ConfigError

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, Registry

    from automl_seg.data.models import Plan
    from automl_seg.data.prepared import PreparedData
    from automl_seg.engine.settings import RunSettings, TrainSettings
    from automl_seg.interfaces import RunInfo
    from automl_seg.plugins import PluginHost

log = logging.getLogger(__name__)

MIN_FOLDS = 2
FOLDS_KEY = "folds"  #: provenance key of a cross-validated record: count, seed and each fold's cases
RESULT_FILE = "fold.json"


def fold_artifact(fold: int) -> str:
    """The artifact name of fold ``fold``'s weights in a cross-validated record."""
    return f"weights_fold{fold}"


def check_folds(folds: int, fold: int | None, num_cases: int) -> None:
    """One ``ConfigError`` line unless 2 <= folds <= cases and 0 <= fold < folds."""
    if folds < MIN_FOLDS:
        raise ConfigError(f"--folds {folds}: cross-validation needs at least {MIN_FOLDS} folds (nnU-Net uses 5)")
    if folds > num_cases:
        raise ConfigError(f"--folds {folds} is more than the {num_cases} cases to split; use at most {num_cases} folds")
    if fold is not None and not 0 <= fold < folds:
        raise ConfigError(f"--fold {fold} does not exist with --folds {folds}; folds are numbered 0 to {folds - 1}")


def fold_splits(cases: Sequence[str], folds: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """(train, validation) case ids per fold: the sorted ids shuffled with ``seed`` and dealt into
    ``folds`` parts of sizes differing by at most one; the same ids and seed give the same folds."""
    check_folds(folds, None, len(cases))
    ids = sorted(cases)
    order = np.random.default_rng(seed).permutation(len(ids))
    parts = [sorted(ids[i] for i in chunk) for chunk in np.array_split(order, folds)]
    return [(sorted(c for j, part in enumerate(parts) if j != k for c in part), parts[k]) for k in range(folds)]


class FoldResult(BaseModel):
    """What a finished fold leaves in its folder (beside ``weights.pt`` and its history)."""

    model_config = ConfigDict(extra="forbid")

    fold: int
    val_cases: list[str]
    evaluation: EvalReport
    dice_pairs: dict[str, dict[str, tuple[float, float]]]  #: case -> class -> (Dice, Dice largest component)
    train_time_s: float
    peak_memory_mb: float
    params: int


@dataclass
class CrossValResult:
    """A finished cross-validation: its record (None until every fold is done) and the folds done so far."""

    record: ArchitectureRecord | None
    folds: list[FoldResult]
    pending: list[int]
    postprocessing: Postprocessing | None
    workdir: Path


def fold_folder(workdir: Path, fold: int) -> Path:
    return workdir / f"fold{fold}"


def load_fold(workdir: Path, fold: int) -> FoldResult | None:
    """The fold's result when it finished, else None."""
    path = fold_folder(workdir, fold) / RESULT_FILE
    return FoldResult.model_validate_json(path.read_text()) if path.is_file() else None


def train_fold(
    parent: ArchitectureRecord,
    data: PreparedData,
    train: TrainSettings,
    run: RunSettings,
    *,
    host: PluginHost,
    device: torch.device,
    workdir: Path,
    fold: int,
    cases: tuple[list[str], list[str]],
) -> FoldResult:
    """Train fold ``fold`` (resuming its checkpoint when there is one), score it on its validation cases
    and write its weights and result into its folder."""
    folder = fold_folder(workdir, fold)
    folder.mkdir(parents=True, exist_ok=True)
    train_cases, val_cases = cases
    fold_data = replace(data, train_cases=list(train_cases), val_cases=list(val_cases))
    network = fresh_network(parent, host, run.seed + fold)
    log.info("fold %d: %d training, %d validation cases", fold, len(train_cases), len(val_cases))
    result = train_network(
        network, fold_data, train, device=device, seed=run.seed + fold, workdir=folder,
        resume=run.resume and has_checkpoint(folder), progress=run.progress,
    )  # fmt: skip
    network.eval()
    pairs: dict[str, dict[str, tuple[float, float]]] = {}

    def observe(case: str, prediction: np.ndarray, label: np.ndarray) -> None:
        pairs[case] = case_dice_pairs(prediction, label, data.plan)

    with mixed_precision(device, train.amp):
        evaluation = evaluate_loader(
            network, fold_data.val_loader(), data.plan, device, train.sw_batch_size, observe=observe
        )
    save_weights(result.state_dict, folder / "weights.pt")
    save_history_json(result.history, folder / "train_history.json")
    done = FoldResult(
        fold=fold, val_cases=list(val_cases), evaluation=evaluation, dice_pairs=pairs,
        train_time_s=result.train_time_s, peak_memory_mb=result.peak_memory_mb, params=result.params,
    )  # fmt: skip
    (folder / RESULT_FILE).write_text(done.model_dump_json())
    log.info("fold %d: validation Dice %.3f", fold, evaluation.dice_mean)
    return done


def cross_validate(
    parent: ArchitectureRecord,
    data: PreparedData,
    train: TrainSettings,
    run: RunSettings,
    *,
    registry: Registry,
    host: PluginHost,
    device: torch.device,
    workdir: Path,
    folds: int,
    fold: int | None,
    info: RunInfo,
    split: dict[str, Any],
) -> CrossValResult:
    """Train the folds still to do (all, or only ``fold``), then, when every fold is done, register the
    cross-validated record (parent ``parent``) with the postprocessing chosen on the out-of-fold cases."""
    pool = sorted(set(data.train_cases) | set(data.val_cases))
    check_folds(folds, fold, len(pool))
    splits = fold_splits(pool, folds, int(split.get("split_seed", 0)))
    for k in [fold] if fold is not None else range(folds):
        if load_fold(workdir, k) is None:
            train_fold(parent, data, train, run, host=host, device=device, workdir=workdir, fold=k, cases=splits[k])
        else:
            log.info("fold %d already finished in %s", k, fold_folder(workdir, k))
    results = [load_fold(workdir, k) for k in range(folds)]
    done = [r for r in results if r is not None]
    pending = [k for k, r in enumerate(results) if r is None]
    if pending:
        log.info("folds %s still to train (same command with --fold K, or without --fold)", pending)
        return CrossValResult(record=None, folds=done, pending=pending, postprocessing=None, workdir=workdir)
    pairs = [case for r in done for case in r.dice_pairs.values()]
    postprocessing = choose(pairs, data.plan)
    log.info("postprocessing chosen on %d out-of-fold cases: keep largest component of %s", len(pairs),
             ", ".join(postprocessing.keep_largest) or "no class")  # fmt: skip
    record = _register(parent, done, postprocessing, train, run, registry=registry, host=host, device=device,
                       info=info, split={**split, "folds": folds}, workdir=workdir, plan=data.plan)  # fmt: skip
    return CrossValResult(record=record, folds=done, pending=[], postprocessing=postprocessing, workdir=workdir)


def fold_summary(folds: Sequence[FoldResult]) -> tuple[dict[str, float], dict[str, float]]:
    """Per-class Dice mean and standard deviation over the folds (each fold: its validation mean)."""
    names = list(folds[0].evaluation.dice_per_class)
    values = {n: [f.evaluation.dice_per_class[n] for f in folds] for n in names}
    return (
        {n: float(np.mean(v)) for n, v in values.items()},
        {n: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for n, v in values.items()},
    )


def _register(
    parent: ArchitectureRecord,
    folds: list[FoldResult],
    postprocessing: Postprocessing,
    train: TrainSettings,
    run: RunSettings,
    *,
    registry: Registry,
    host: PluginHost,
    device: torch.device,
    info: RunInfo,
    split: dict[str, Any],
    workdir: Path,
    plan: Plan,
) -> ArchitectureRecord:
    from automl_seg_registry import Metrics

    from automl_seg.engine.pipeline import notify_registered, trained_record

    mean, sd = fold_summary(folds)
    metrics = Metrics(
        dice_per_class=mean,
        dice_mean=float(np.mean(list(mean.values()))),
        search_time_s=parent.metrics.search_time_s,
        train_time_s=float(sum(f.train_time_s for f in folds)),
        peak_memory_mb=max(f.peak_memory_mb for f in folds),
        params=folds[0].params,
        memory=dict(parent.metrics.memory),
        extra={
            **parent.metrics.extra,
            "train_epochs": float(train.epochs),
            "folds": float(len(folds)),
            **{f"dice_sd_{name}": value for name, value in sd.items()},
        },
    )
    record = trained_record(
        parent, metrics, seed=run.seed, host=host, info=info, train=train, device=device, split=split, plan=plan,
        provenance={
            FOLDS_KEY: {"count": len(folds), "val_cases": [f.val_cases for f in folds]},
            PROVENANCE_KEY: postprocessing.model_dump(mode="json"),
        },
    )  # fmt: skip
    files: dict[str, tuple[Path, str]] = {}
    for f in folds:
        folder = fold_folder(workdir, f.fold)
        files[fold_artifact(f.fold)] = (folder / "weights.pt", WEIGHTS_KIND)
        files[f"train_history_fold{f.fold}"] = (folder / "train_history.json", "history")
    with tempfile.TemporaryDirectory(prefix="artifacts-", dir=workdir) as tmp:
        report = Path(tmp) / "cross_validation.json"
        report.write_text(json.dumps([f.model_dump(mode="json", exclude={"dice_pairs"}) for f in folds], indent=2))
        files["cross_validation"] = (report, "report")
        stored = registry.register(record, files=files)
    log.info("registered %s: %d folds, Dice %.3f", stored.ref, len(folds), metrics.dice_mean)
    notify_registered(host, info, registry, stored)
    return stored
