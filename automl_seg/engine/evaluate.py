"""Scoring segmentations: sliding-window inference, per-class Dice and HD95 (MONAI metrics).

Two entry points share one scorer: ``evaluate_loader`` on preprocessed validation volumes, and
``evaluate_files`` on NIfTI images + labels folders (predictions are mapped back onto each label
file's own grid first, so the score is in the original space).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from automl_seg.data.models import Plan
from automl_seg.engine.inference import (
    Window,
    case_name,
    list_nifti,
    logits_on_grid,
    mirrored,
    predict_file_labels,
    read_label,
    sliding_window_logits,
)
from automl_seg.errors import DataError

if TYPE_CHECKING:
    from automl_seg_registry import Registry

    from automl_seg.data.prepared import PreparedData
    from automl_seg.engine.distributed import Distributed
    from automl_seg.engine.postprocess import Postprocessing
    from automl_seg.plugins import PluginHost

log = logging.getLogger(__name__)


class CaseScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case: str
    dice: dict[str, float]
    hd95: dict[str, float | None]


class EvalReport(BaseModel):
    """Per-case rows and their means; HD95 is None where a class is missing from a prediction."""

    model_config = ConfigDict(extra="forbid")

    cases: list[CaseScore]
    dice_per_class: dict[str, float]
    dice_mean: float
    hd95_per_class: dict[str, float | None]
    hd95_mean: float | None


def foreground_names(plan: Plan) -> list[str]:
    """Names of the classes that are scored (background excluded), in label order."""
    return [plan.labels.get(c, f"class{c}") for c in range(1, plan.num_classes)]


def score_case(case: str, prediction: torch.Tensor, label: torch.Tensor, names: Sequence[str]) -> CaseScore:
    """Dice and HD95 per foreground class of a label map prediction (1, *spatial) vs label (1, *spatial)."""
    from monai.metrics import DiceMetric, HausdorffDistanceMetric
    from monai.networks.utils import one_hot

    num_classes = len(names) + 1
    pred = one_hot(prediction[None].long(), num_classes)
    true = one_hot(label[None].long(), num_classes)
    dice = DiceMetric(include_background=False, reduction="none", ignore_empty=False)(pred, true)[0]
    with np.errstate(all="ignore"), _quiet_monai():
        hd95 = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")(pred, true)[0]
    return CaseScore(
        case=case,
        dice={n: float(d) for n, d in zip(names, dice, strict=True)},
        hd95={n: (float(h) if math.isfinite(float(h)) else None) for n, h in zip(names, hd95, strict=True)},
    )


@contextmanager
def _quiet_monai() -> Iterator[None]:
    """HD95 of an empty class warns on every call; the report already shows it as missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def summarise(cases: list[CaseScore], names: Sequence[str]) -> EvalReport:
    """Means over cases; a case's missing HD95 is left out of that class' mean."""
    dice = {n: float(np.mean([c.dice[n] for c in cases])) if cases else 0.0 for n in names}
    hd95: dict[str, float | None] = {}
    for n in names:
        values = [h for c in cases if (h := c.hd95[n]) is not None]
        hd95[n] = float(np.mean(values)) if values else None
    finite = [v for v in hd95.values() if v is not None]
    return EvalReport(
        cases=cases,
        dice_per_class=dice,
        dice_mean=float(np.mean(list(dice.values()))) if dice else 0.0,
        hd95_per_class=hd95,
        hd95_mean=float(np.mean(finite)) if finite else None,
    )


def evaluate_loader(
    window: Window,
    batches: Iterable[Mapping[str, Any]],
    plan: Plan,
    device: torch.device,
    sw_batch_size: int = 4,
    progress: Callable[[], None] = lambda: None,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    observe: Callable[[str, np.ndarray, np.ndarray], None] | None = None,
) -> EvalReport:
    """Score whole preprocessed volumes ({"image", "label", "case"}, batch 1) in the plan's space, or on the
    case's own grid where the batch carries it (``native_label``: the logits are resampled onto it linearly).

    ``postprocess`` maps each label map before it is scored; ``observe(case, prediction, label)`` sees
    each prediction (before ``postprocess``) and its label as numpy arrays."""
    names = foreground_names(plan)
    rows = []
    for batch in batches:
        image = torch.as_tensor(batch["image"]).to(device)
        logits = sliding_window_logits(window, image, plan, sw_batch_size)
        if "native_label" in batch:
            label = torch.as_tensor(batch["native_label"])[:, 0].cpu()
            logits = logits_on_grid(logits[0], batch["affine"][0], batch["native_affine"][0], label.shape[1:])[None]
        else:
            label = torch.as_tensor(batch["label"])[:, 0].cpu()
        prediction = logits.argmax(1).cpu()
        case = batch["case"][0] if isinstance(batch["case"], (list, tuple)) else str(batch["case"])
        if observe is not None:
            observe(case, prediction[0].numpy(), label[0].numpy())
        if postprocess is not None:
            prediction = torch.from_numpy(postprocess(prediction.numpy()))
        rows.append(score_case(case, prediction, label, names))
        progress()
    return summarise(rows, names)


def evaluate_cases(
    window: Window,
    data: PreparedData,
    device: torch.device,
    sw_batch_size: int = 4,
    *,
    cases: Sequence[str] | None = None,
    dist: Distributed | None = None,
    progress: Callable[[], None] = lambda: None,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
) -> EvalReport:
    """Score ``cases`` of ``data`` (default: its validation cases) in its plan's space, label maps through
    ``postprocess``. In a DDP job every rank scores its share of the cases and every rank gets the
    report of all of them, in case order (the same report as one process makes)."""
    cases = list(data.val_cases if cases is None else cases)
    mine = cases if dist is None else dist.shard(cases, pad=False)
    report = evaluate_loader(
        window, data.val_loader(mine), data.plan, device, sw_batch_size, progress, postprocess=postprocess
    )
    return report if dist is None else gathered(report, cases, foreground_names(data.plan), dist)


def gathered(report: EvalReport, order: Sequence[str], names: Sequence[str], dist: Distributed) -> EvalReport:
    """Every rank's rows of a sharded evaluation, in ``order`` (case names), summarised on every rank."""
    if not dist.enabled:
        return report
    rows = {row.case: row for part in dist.gather(report.cases) for row in part}
    return summarise([rows[case] for case in order], names)


def paired_files(images: Path, labels: Path) -> list[tuple[Path, Path]]:
    """(image, label) pairs with the same file name in two folders; a clear error when they don't match."""

    pairs = []
    for image in list_nifti(images):
        label = labels / image.name
        if not label.is_file():
            raise DataError(f"no label {label} for image {image}; labels must have the image's file name")
        pairs.append((image, label))
    return pairs


def evaluate_files(
    window: Window,
    pairs: Sequence[tuple[Path, Path]],
    plan: Plan,
    device: torch.device,
    sw_batch_size: int = 4,
    progress: Callable[[], None] = lambda: None,
    postprocess: Callable[[np.ndarray], np.ndarray] | None = None,
) -> EvalReport:
    """Predict every image, map it back onto its label file's grid and score it there."""
    names = foreground_names(plan)
    rows = []
    for image, label_path in pairs:
        prediction = predict_file_labels(window, image, plan, device, sw_batch_size, postprocess)
        label = read_label(label_path, reference=image)
        unknown = sorted(set(np.unique(label).tolist()) - set(range(plan.num_classes)))
        if unknown:
            raise DataError(
                f"label {label_path} holds value(s) {', '.join(map(str, unknown[:5]))} but the model knows labels "
                f"0..{plan.num_classes - 1}; pass the label maps of these images as --labels"
            )
        rows.append(
            score_case(case_name(image), torch.from_numpy(prediction)[None], torch.from_numpy(label)[None], names)
        )
        progress()
    return summarise(rows, names)


def evaluate_reference(
    registry: Registry,
    ref: str | Sequence[str],
    host: PluginHost,
    *,
    device: str = "auto",
    dataset: str | None = None,
    data_root: Path | None = None,
    images: Path | None = None,
    labels: Path | None = None,
    max_cases: int | None = None,
    tta: bool = False,
    progress: bool = True,
    split: Literal["val", "test"] = "val",
    postprocessing: Postprocessing | None = None,
    dist: Distributed | None = None,
) -> EvalReport:
    """Evaluate the trained model ``ref`` (or the ensemble of several refs; a cross-validated record is
    the ensemble of its folds) on image/label folders, else on a dataset's validation or held-out test
    split (default: the dataset it was trained on, preprocessed with its plan); with test-time mirroring
    when ``tta``, and its stored postprocessing (or ``postprocessing``) applied to the label maps. In a
    DDP job (``dist``) every rank scores its share of the cases; rank 0 shows progress."""
    from automl_seg.config import DataSettings, build_settings
    from automl_seg.data import prepare_data
    from automl_seg.engine.devices import resolve_device
    from automl_seg.engine.distributed import Distributed
    from automl_seg.engine.ensemble import load_model
    from automl_seg.engine.folds import FOLDS_KEY
    from automl_seg.engine.pipeline import record_split
    from automl_seg.progress import progress_bar

    dist = dist or Distributed()
    torch_device = dist.device(resolve_device(device))
    model = load_model(registry, [ref] if isinstance(ref, str) else list(ref), host, torch_device, postprocessing)
    plan, record = model.plan, model.records[0]
    window = mirrored(model.network, plan.mirror_axes) if tta else model.network
    post = partial(model.postprocessing.apply, plan=plan) if model.postprocessing.keep_largest else None
    progress = progress and dist.is_main
    with progress_bar(progress) as bar:
        if images is not None and labels is not None:
            pairs = paired_files(images, labels)
            mine = dist.shard(pairs, pad=False)
            task = bar.add_task("evaluating", total=len(mine))
            report = evaluate_files(
                window, mine, plan, torch_device, progress=lambda: bar.advance(task), postprocess=post
            )
            return gathered(report, [case_name(image) for image, _ in pairs], foreground_names(plan), dist)
        same = dataset is None or dataset == record.dataset.name  # then its validation cases, not its training ones
        settings = build_settings(
            DataSettings, record_split(record) if same else {},
            {"dataset": dataset or record.dataset.name, "data_root": data_root, "max_cases": max_cases,
             "patch_size": plan.patch_size},
            source="evaluation data settings",
        )  # fmt: skip
        with dist.main_first():  # rank 0 fills the fingerprint cache the others read
            data = prepare_data(settings, progress=progress, plan=plan)  # the model's plan, checked against the data
        cases = data.test_cases if split == "test" else data.val_cases
        if not cases:
            raise DataError(
                f"{settings.dataset} has no held-out test cases under these data settings; train with "
                "data.holdout_fraction (e.g. 0.2) to hold some out, or evaluate --split val"
            )
        if split == "val" and same and any(r.provenance.get(FOLDS_KEY) for r in model.records):
            log.warning("a cross-validated model trained on these validation cases (in all but one fold)")
        task = bar.add_task("evaluating", total=len(dist.shard(cases, pad=False)))
        return evaluate_cases(
            window, data, torch_device, cases=cases, dist=dist, progress=lambda: bar.advance(task), postprocess=post
        )
