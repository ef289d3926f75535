"""Exporting a registered model: artefact, parity proof, deployment sidecar, registry attachment.

``export_model`` is the pipeline behind ``automl-seg export``:

1. resolve the record, check the request is possible (format, weights, output folder, name free);
2. export the trained network through the exporter plugin found by name (``onnx.checker`` runs
   inside the ONNX exporter);
3. prove parity: torch and the artefact run the same sliding-window inference on the validation
   volumes of the record's dataset (seeded synthetic volumes shaped like the plan's patch when the
   data is not found) and must agree within ``atol`` (fp32; fp16 is report-only);
4. write the sidecar JSON a C++/Triton/onnxruntime user needs to reproduce the prediction, attach
   artefact and sidecar to the record and copy both to ``--output``.

Nothing is attached or written to ``--output`` unless every step succeeded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from automl_seg import __version__
from automl_seg.errors import ConfigError, ExportError, RegistryError
from automl_seg.interfaces import Exporter, ExportOptions, Predictor
from automl_seg.paths import output_file

if TYPE_CHECKING:
    import torch
    from automl_seg_registry import ArchitectureRecord, Registry
    from torch import nn

    from automl_seg.data.models import Plan
    from automl_seg.plugins import PluginHost

log = logging.getLogger(__name__)

SIDECAR_SCHEMA = "automl-seg-export/1"
SW_BATCH_SIZE = 2
SYNTHETIC_SEED = 0
CaseCallback = Callable[[str, int], None]  # (case just compared, number of cases in the proof)


class ExportRequest(BaseModel):
    """What ``automl-seg export`` asks for."""

    model_config = ConfigDict(extra="forbid")

    ref: str = "latest"
    format: str = "onnx"
    output: Path | None = Field(default=None, description="file or existing folder to copy artefact + sidecar to")
    overwrite: bool = Field(default=False, description="replace files already at --output")
    opset: int | None = Field(default=None, gt=0)
    fp16: bool = False
    dynamic_spatial: bool = True
    atol: float = Field(default=1e-3, gt=0, description="max abs logit difference allowed (fp32)")
    fp16_atol: float = Field(default=5e-2, gt=0, description="report-only bound for fp16 exports")
    providers: list[str] | None = Field(default=None, description="force these runtime providers for parity")
    parity_cases: int = Field(default=4, gt=0, description="validation volumes the parity proof runs on")
    data_root: Path | None = None
    registry: Path | None = None


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


class ExportResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str
    format: str
    artifact: str = Field(description="artifact name in the record")
    registry_path: Path
    sidecar_path: Path
    output: Path | None
    sha256: str
    parity: ParityReport
    sidecar: dict[str, Any]


# -- request checks (cheap, before any model is loaded) ---------------------------------------------


def artifact_name(request: ExportRequest, exporter: Exporter) -> str:
    """The record's artifact name: the format, plus the variant when not the default (fp16, static, opset)."""
    parts = [exporter.name]
    if request.fp16:
        parts.append("fp16")
    if not request.dynamic_spatial:
        parts.append("static")
    if request.opset is not None:
        parts.append(f"opset{request.opset}")
    return "_".join(parts)


def output_targets(output: Path | None, default_file: str, overwrite: bool = False) -> tuple[Path, Path] | None:
    """(artefact, sidecar) paths for ``--output``: a folder gets ``default_file`` inside it.

    A missing or unwritable folder, or files there already (without ``overwrite``), are the user's
    to fix: said before any work."""
    if output is None:
        return None
    output = Path(output).expanduser()
    target = output_file(output / default_file if output.is_dir() else output, overwrite)
    return target, output_file(sidecar_path_for(target), overwrite)


def sidecar_path_for(artifact: Path) -> Path:
    """The sidecar lies next to the artefact: ``model.onnx`` -> ``model.onnx.json``."""
    return artifact.with_name(artifact.name + ".json")


def check_has_weights(record: ArchitectureRecord) -> None:
    if not any(artifact.name == "weights" for artifact in record.artifacts):
        raise RegistryError(
            f"record {record.ref} has no trained weights to export; train it first (automl-seg train {record.ref})"
        )


def check_name_free(record: ArchitectureRecord, name: str) -> None:
    names = {artifact.name for artifact in record.artifacts}
    if name in names or f"{name}_sidecar" in names:
        raise RegistryError(
            f"record {record.ref} already has an export '{name}' (artifacts never change); use it, or export "
            "another variant (--opset N, --fp16, --static)"
        )


def runs_on_cpu_only(providers: Sequence[str]) -> bool:
    return all("cpu" in provider.lower() for provider in providers)


# -- the network's stride -------------------------------------------------------------------------------


def network_stride(model: nn.Module, plan: Plan) -> int:
    """The smallest power of two ``m`` such that the network maps any input with sides multiple of ``m``
    onto logits of the same size: the constraint the dynamic spatial axes carry.

    Spaces do not declare their stride, so it is measured: a side ``3m`` is a multiple of a power-of-two
    stride ``s`` exactly when ``m`` is, so one forward pass per candidate decides. The patch works by
    construction, so the answer never exceeds the largest power of two dividing every patch side."""
    import torch

    upper = min(side & -side for side in plan.patch_size)
    device = next(model.parameters()).device
    candidate = 1
    with torch.inference_mode():
        while candidate < upper:
            probe = torch.zeros(1, plan.in_channels, *(3 * candidate,) * len(plan.patch_size), device=device)
            try:
                if tuple(model(probe).shape[2:]) == tuple(probe.shape[2:]):
                    return candidate
            except Exception as exc:  # any failure means "not a multiple of the stride"
                log.debug("stride probe %d failed: %s", candidate, exc)
            candidate *= 2
    return upper


# -- parity --------------------------------------------------------------------------------------------


def validation_volumes(dataset: str, data_root: Path | None, max_cases: int) -> Iterator[tuple[str, torch.Tensor]]:
    """The first ``max_cases`` preprocessed validation volumes (1, C, *spatial) of ``dataset``."""
    from automl_seg.config import DataSettings
    from automl_seg.data import prepare_data

    data = prepare_data(DataSettings(dataset=dataset, data_root=data_root), progress=False)
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
        return "validation", validation_volumes(dataset, data_root, count)
    log.warning("dataset %s not found under the data root: parity runs on synthetic volumes", dataset)
    return "synthetic", synthetic_volumes(plan, count)


def compare_case(case: str, reference: torch.Tensor, candidate: torch.Tensor, num_classes: int) -> CaseParity:
    """Logit difference, label agreement and Dice (MONAI) of the candidate's labels vs the reference's."""
    from monai.metrics import DiceMetric
    from monai.networks.utils import one_hot

    ref_labels = reference.argmax(1, keepdim=True)
    cand_labels = candidate.argmax(1, keepdim=True)
    metric = DiceMetric(include_background=False, reduction="mean", ignore_empty=False)
    dice = metric(one_hot(cand_labels, num_classes), one_hot(ref_labels, num_classes)).nanmean().item()
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

    from automl_seg.engine.evaluate import sliding_window_logits

    model = model.eval()
    device = next(model.parameters()).device
    cases = []
    with torch.inference_mode():
        for case, image in volumes:
            reference = sliding_window_logits(model, image.to(device), plan, SW_BATCH_SIZE).float().cpu()
            candidate = sliding_window_logits(predictor, image, plan, SW_BATCH_SIZE).float().cpu()
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


# -- sidecar -------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_sidecar(
    *,
    artefact: Path,
    facts: dict[str, Any],
    plan: Plan,
    parity: ParityReport,
    model_info: dict[str, Any],
) -> dict[str, Any]:
    """Everything needed to reproduce the prediction without automl-seg."""
    multiple = facts.get("spatial_multiple", plan.divisor)
    return {
        "schema": SIDECAR_SCHEMA,
        "created": datetime.now(UTC).isoformat(),
        "automl_seg_version": __version__,
        "artefact": {"file": artefact.name, "sha256": sha256_file(artefact), "size": artefact.stat().st_size},
        "model": model_info,
        "export": facts,
        "input": {
            **(facts["inputs"][0] if facts.get("inputs") else {}),
            "layout": facts.get("layout", "NCDHW"),
            "channels": [{"index": i, "modality": plan.modality} for i in range(plan.in_channels)],
            "spatial_constraint": (
                f"each spatial side must be a multiple of {multiple} (the network's total stride); "
                "sliding-window inference with roi = patch_size satisfies it"
            ),
        },
        "output": {
            **(facts["outputs"][0] if facts.get("outputs") else {}),
            "meaning": "unnormalised class logits; label = argmax over axis 1",
            "num_classes": plan.num_classes,
            "labels": {str(k): v for k, v in plan.labels.items()},
        },
        "preprocessing": {
            "orientation": plan.orientation,
            "spacing_mm": list(plan.spacing),
            "resampling": "image: (tri)linear to spacing_mm; prediction mapped back with nearest",
            "normalization": plan.normalization,
            "normalization_detail": (
                "per image and channel: (x - mean) / std over nonzero voxels"
                if plan.normalization == "zscore"
                else f"clip to {list(plan.ct_clip or ())}, then per image and channel (x - mean) / std"
            ),
            "ct_clip": list(plan.ct_clip) if plan.ct_clip else None,
            "padding": "none on the volume; the sliding window zero-pads (symmetric) a side shorter than "
            "patch_size and crops the output back",
        },
        "inference": {
            "method": "sliding window (MONAI sliding_window_inference)",
            "patch_size": list(plan.patch_size),
            "overlap": plan.sw_overlap,
            "blend_mode": "gaussian",
            "sw_batch_size": SW_BATCH_SIZE,
        },
        "parity": parity.model_dump(mode="json"),
    }


# -- the pipeline -------------------------------------------------------------------------------------


def export_network(
    model: nn.Module,
    plan: Plan,
    exporter: Exporter,
    request: ExportRequest,
    workdir: Path,
    stem: str,
    *,
    model_info: dict[str, Any],
    volumes: tuple[Literal["validation", "synthetic"], Iterable[tuple[str, torch.Tensor]]],
    on_case: CaseCallback | None = None,
) -> tuple[Path, Path, ParityReport, dict[str, Any]]:
    """Export ``model`` into ``workdir``, prove parity, write the sidecar: (artefact, sidecar, parity, sidecar dict).

    Raises ``ExportError`` when parity fails an enforced tolerance, ``ConfigError`` for fp16 without a GPU
    provider; the files then exist only in ``workdir`` (the caller's temporary folder)."""
    import torch

    artefact = workdir / f"{stem}{exporter.suffix}"
    options = ExportOptions(
        opset=request.opset,
        fp16=request.fp16,
        dynamic_spatial=request.dynamic_spatial,
        spatial_multiple=network_stride(model, plan),
    )
    example = torch.zeros(1, plan.in_channels, *plan.patch_size)
    facts = exporter.export(model, example, artefact, options)
    predictor = exporter.load(artefact, request.providers)
    if request.fp16 and runs_on_cpu_only(predictor.providers):
        raise ConfigError(
            f"--fp16 needs a GPU runtime (CUDA or TensorRT), but only {', '.join(predictor.providers)} works here; "
            "export fp32 for CPU deployment, or run the export on a machine with a working GPU runtime"
        )
    source, cases = volumes
    parity = measure_parity(
        model, predictor, list(cases), plan,
        source=source, atol=request.fp16_atol if request.fp16 else request.atol, enforced=not request.fp16,
        on_case=on_case,
    )  # fmt: skip
    log.info(
        "parity on %d %s case(s) via %s: max |diff| %.2e, label agreement >= %.5f, Dice >= %.4f",
        len(parity.cases), source, ", ".join(parity.providers), parity.max_abs_diff,
        parity.min_label_agreement, parity.min_dice,
    )  # fmt: skip
    if parity.enforced and not parity.within_tolerance:
        worst = max(parity.cases, key=lambda c: c.max_abs_diff)
        raise ExportError(
            f"parity check failed: max abs logit difference {parity.max_abs_diff:.3g} > atol {parity.atol:g} "
            f"(case {worst.case}, label agreement {worst.label_agreement:.4f}); nothing was registered"
        )
    if not parity.within_tolerance:
        log.warning("fp16 parity %.3g exceeds the report-only bound %g", parity.max_abs_diff, parity.atol)
    sidecar = build_sidecar(artefact=artefact, facts=facts, plan=plan, parity=parity, model_info=model_info)
    sidecar_file = sidecar_path_for(artefact)
    sidecar_file.write_text(json.dumps(sidecar, indent=2))
    return artefact, sidecar_file, parity, sidecar


def _model_info(registry: Registry, record: ArchitectureRecord) -> dict[str, Any]:
    weights = next(a for a in record.artifacts if a.name == "weights")
    return {
        "ref": record.ref,
        "name": record.name,
        "version": record.version,
        "space": {"name": record.space.name, "version": record.space.version},
        "dataset": record.dataset.name,
        "dataset_fingerprint": record.dataset.fingerprint_hash,
        "weights_sha256": weights.sha256,
        "registry": str(registry.root),
    }


def export_model(
    request: ExportRequest,
    host: PluginHost | None = None,
    on_case: CaseCallback | None = None,
) -> ExportResult:
    """The whole ``automl-seg export``: see the module docstring. Registers only on success."""
    import torch
    from automl_seg_registry import Registry

    from automl_seg.engine.model import load_trained_model, record_plan
    from automl_seg.plugins import load_plugins

    host = host or load_plugins()
    exporter = host.exporter(request.format)
    with Registry.open(request.registry) as registry:
        record = registry.get(request.ref)
        name = artifact_name(request, exporter)
        stem = f"{record.name}-v{record.version}-{name}"
        check_has_weights(record)
        targets = output_targets(request.output, f"{stem}{exporter.suffix}", request.overwrite)
        check_name_free(record, name)
        plan = record_plan(record)
        model, record = load_trained_model(registry, record.ref, host, torch.device("cpu"))
        volumes = parity_volumes(plan, record.dataset.name, request.data_root, request.parity_cases)
        with tempfile.TemporaryDirectory(prefix="automl-seg-export-") as tmp:
            artefact, sidecar_file, parity, sidecar = export_network(
                model, plan, exporter, request, Path(tmp), stem,
                model_info=_model_info(registry, record), volumes=volumes, on_case=on_case,
            )  # fmt: skip
            registry.attach(record.ref, name, artefact, kind="export")
            registry.attach(record.ref, f"{name}_sidecar", sidecar_file, kind="export")
            if targets is not None:
                shutil.copyfile(artefact, targets[0])
                # the sidecar beside the copy names the copy's file (same bytes, same sha256)
                sidecar = {**sidecar, "artefact": {**sidecar["artefact"], "file": targets[0].name}}
                targets[1].write_text(json.dumps(sidecar, indent=2))
        registry_path = registry.artifact_path(record.ref, name)
        sidecar_registry_path = registry.artifact_path(record.ref, f"{name}_sidecar")
    return ExportResult(
        ref=record.ref,
        format=exporter.name,
        artifact=name,
        registry_path=registry_path,
        sidecar_path=targets[1] if targets else sidecar_registry_path,
        output=targets[0] if targets else None,
        sha256=sidecar["artefact"]["sha256"],
        parity=parity,
        sidecar=sidecar,
    )
