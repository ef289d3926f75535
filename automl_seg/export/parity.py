"""The parity proof: torch and the artefact through the same sliding-window inference, compared."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from automl_seg.errors import ExportError
from automl_seg.interfaces import Predictor

if TYPE_CHECKING:
    import torch
    from torch import nn

    from automl_seg.data.models import Plan

log = logging.getLogger(__name__)

SW_BATCH_SIZE = 2
SYNTHETIC_SEED = 0
CaseCallback = Callable[[str, int], None]  # (case just compared, number of cases in the proof)


class CaseParity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case: str
    shape: list[int]
    max_abs_diff: float
    label_agreement: float = Field(description="fraction of voxels with the same argmax label")
    dice: float = Field(description="mean foreground Dice of the artefact's labels vs torch's labels")


class ParityReport(BaseModel):
    """The proof that the artefact computes what the torch model computes."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["validation", "synthetic"]
    dataset: str
    providers: list[str] = Field(description="runtime providers the artefact really ran on")
    max_abs_diff: float
    min_label_agreement: float
    min_dice: float
    atol: float
    enforced: bool = Field(description="False for fp16 exports: the bound is reported, not enforced")
    within_tolerance: bool
    cases: list[CaseParity]


def runs_on_cpu_only(providers: Sequence[str]) -> bool:
    return all("cpu" in provider.lower() for provider in providers)


def validation_volumes(
    dataset: str, data_root: Path | None, max_cases: int, plan: Plan | None = None
) -> Iterator[tuple[str, torch.Tensor]]:
    """The first ``max_cases`` validation volumes (1, C, *spatial) of ``dataset``, preprocessed with ``plan``
    (the model's; default: the dataset's own)."""
    from automl_seg.config import DataSettings
    from automl_seg.data import prepare_data

    data = prepare_data(DataSettings(dataset=dataset, data_root=data_root), progress=False, plan=plan)
    for batch in data.val_loader(data.val_cases[:max_cases]):
        case = batch["case"]
        image = batch["image"]
        plain = image.as_tensor() if hasattr(image, "as_tensor") else image  # MetaTensor -> Tensor
        yield (case[0] if isinstance(case, list | tuple) else str(case)), plain


def synthetic_volumes(plan: Plan, count: int) -> Iterator[tuple[str, torch.Tensor]]:
    """Seeded z-scored noise volumes: one patch-sized, the others half a patch larger (several windows)."""
    import torch

    generator = torch.Generator().manual_seed(SYNTHETIC_SEED)
    for index in range(count):
        grow = 0 if index == 0 else (index + 1) // 2
        shape = [side + grow * side // 2 for side in plan.patch_size]
        yield f"synthetic_{index:03d}", torch.randn(1, plan.in_channels, *shape, generator=generator)


def dataset_available(dataset: str, data_root: Path | None) -> bool:
    from automl_seg import paths

    return (paths.data_root(data_root) / dataset / "dataset.json").is_file()


def parity_volumes(
    plan: Plan, dataset: str, data_root: Path | None, count: int
) -> tuple[Literal["validation", "synthetic"], Iterator[tuple[str, torch.Tensor]]]:
    if dataset_available(dataset, data_root):
        return "validation", validation_volumes(dataset, data_root, count, plan)
    log.warning("dataset %s not found under the data root: parity runs on synthetic volumes", dataset)
    return "synthetic", synthetic_volumes(plan, count)


def compare_case(case: str, reference: torch.Tensor, candidate: torch.Tensor, num_classes: int) -> CaseParity:
    """Logit difference, label agreement and Dice (MONAI) of the candidate's labels vs the reference's."""
    import torch
    from monai.metrics import DiceMetric
    from monai.networks.utils import one_hot

    ref_labels = reference.argmax(1, keepdim=True)
    cand_labels = candidate.argmax(1, keepdim=True)
    metric = DiceMetric(include_background=False, reduction="mean", ignore_empty=False)
    scores = metric(one_hot(cand_labels, num_classes), one_hot(ref_labels, num_classes))
    if not isinstance(scores, torch.Tensor):  # MONAI types a metric's result as a tensor or a list of them
        raise TypeError(f"DiceMetric returned a {type(scores).__name__}, not a tensor")
    dice = scores.nanmean().item()
    return CaseParity(
        case=case,
        shape=list(reference.shape[2:]),
        max_abs_diff=(reference - candidate).abs().max().item(),
        label_agreement=(ref_labels == cand_labels).float().mean().item(),
        dice=dice,
    )


def measure_parity(
    model: nn.Module,
    predictor: Predictor,
    volumes: Sequence[tuple[str, torch.Tensor]],
    plan: Plan,
    *,
    source: Literal["validation", "synthetic"],
    atol: float,
    enforced: bool,
    on_case: CaseCallback | None = None,
) -> ParityReport:
    """Run torch and the artefact through the same sliding-window inference on every volume and compare."""
    import torch

    from automl_seg.engine.inference import predictor_window, sliding_window_logits

    model = model.eval()
    device = next(model.parameters()).device
    cases = []
    with torch.inference_mode():
        for case, image in volumes:
            reference = sliding_window_logits(model, image.to(device), plan, SW_BATCH_SIZE).float().cpu()
            candidate = sliding_window_logits(predictor_window(predictor), image, plan, SW_BATCH_SIZE).float().cpu()
            cases.append(compare_case(case, reference, candidate, plan.num_classes))
            if on_case is not None:
                on_case(case, len(volumes))
    if not cases:
        raise ExportError(f"no volumes to prove parity on in {plan.dataset}; check its validation split")
    worst = max(c.max_abs_diff for c in cases)
    return ParityReport(
        source=source,
        dataset=plan.dataset,
        providers=list(predictor.providers),
        max_abs_diff=worst,
        min_label_agreement=min(c.label_agreement for c in cases),
        min_dice=min(c.dice for c in cases),
        atol=atol,
        enforced=enforced,
        within_tolerance=worst <= atol,
        cases=cases,
    )
