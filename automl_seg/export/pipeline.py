"""``export_model``, the pipeline behind ``automl-seg export`` (the steps: see the package docstring)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from automl_seg.errors import ConfigError, ExportError
from automl_seg.export.parity import CaseCallback, ParityReport, measure_parity, parity_volumes, runs_on_cpu_only
from automl_seg.export.request import (
    ExportRequest,
    ExportResult,
    artifact_name,
    check_has_weights,
    check_name_free,
    folder_output_targets,
    output_targets,
)
from automl_seg.export.sidecar import build_sidecar, sidecar_path_for
from automl_seg.export.stride import network_stride
from automl_seg.export.subject import build_subject, copy_artefact, run_exporter, writes_folder, zip_folder
from automl_seg.interfaces import Exporter, ExportOptions, ExportSubject

if TYPE_CHECKING:
    import torch
    from automl_seg_registry import ArchitectureRecord, Registry
    from torch import nn

    from automl_seg.data.models import Plan
    from automl_seg.engine.postprocess import Postprocessing
    from automl_seg.plugins import PluginHost

log = logging.getLogger(__name__)


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
    subject: ExportSubject | None = None,
) -> tuple[Path, Path, ParityReport, dict[str, Any]]:
    """Export ``model`` into ``workdir``, prove parity, write the sidecar: (artefact, sidecar, parity, sidecar dict).

    ``subject`` is the registered model, for exporters of whole models (``Exporter.export_model``). A
    folder artefact is returned zipped (the folder stays beside the zip). Raises ``ExportError`` when
    parity fails an enforced tolerance, ``ConfigError`` for fp16 without a GPU provider; the files then
    exist only in ``workdir`` (the caller's temporary folder)."""
    import torch

    artefact = workdir / f"{stem}{exporter.suffix}"
    options = ExportOptions(
        opset=request.opset,
        fp16=request.fp16,
        dynamic_spatial=request.dynamic_spatial,
        spatial_multiple=network_stride(model, plan),
    )
    example = torch.zeros(1, plan.in_channels, *plan.patch_size)
    facts = run_exporter(exporter, model, example, artefact, options, subject)
    predictor = exporter.load(artefact, request.providers)
    if request.fp16 and runs_on_cpu_only(predictor.providers):
        raise ConfigError(
            f"--fp16 needs a GPU runtime (CUDA or TensorRT), but only {', '.join(predictor.providers)} works here; "
            "export fp32 for CPU deployment, or run the export on a machine with a working GPU runtime"
        )
    source, cases = volumes
    parity = measure_parity(
        model, predictor, cases if isinstance(cases, list) else list(cases), plan,
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
    if artefact.is_dir():
        artefact = zip_folder(artefact)
    sidecar = build_sidecar(artefact=artefact, facts=facts, plan=plan, parity=parity, model_info=model_info)
    sidecar_file = sidecar_path_for(artefact)
    sidecar_file.write_text(json.dumps(sidecar, indent=2))
    return artefact, sidecar_file, parity, sidecar


def _members(records: list[ArchitectureRecord]) -> list[dict[str, Any]]:
    """Every network of ``records``, in the graph's order: its record, weight artifact and checksum."""
    from automl_seg.engine.ensemble import weight_artifacts

    members: list[dict[str, Any]] = []
    for record in records:
        sha256 = {a.name: a.sha256 for a in record.artifacts}
        members.extend({"ref": record.ref, "artifact": n, "sha256": sha256[n]} for n in weight_artifacts(record))
    return members


def _model_info(
    registry: Registry, records: list[ArchitectureRecord], postprocessing: Postprocessing
) -> dict[str, Any]:
    """The sidecar's ``model``: what was exported (one record, or an explicit ensemble of several), its
    weights' checksums, how several networks are averaged (a cross-validated record is one graph of its
    folds) and the postprocessing chosen on validation."""
    members = _members(records)
    first = records[0]
    which = (
        {"ref": first.ref, "name": first.name, "version": first.version,
         "space": {"name": first.space.name, "version": first.space.version}}
        if len(records) == 1
        else {"ensemble_of": [r.ref for r in records],
              "spaces": [{"name": r.space.name, "version": r.space.version} for r in records]}
    )  # fmt: skip
    ensemble = (
        {}
        if len(members) == 1
        else {
            "ensemble": {
                "members": members,
                "output": "the graph averages the members' softmax: its outputs are class probabilities, "
                "label = argmax over axis 1",
            }
        }
    )
    return {
        **which,
        "dataset": first.dataset.name,
        "dataset_fingerprint": first.dataset.fingerprint_hash,
        "weights_sha256": members[0]["sha256"] if len(members) == 1 else None,
        "registry": str(registry.root),
        **ensemble,
        "postprocessing": {
            "keep_largest_component": list(postprocessing.keep_largest),
            "how": "after the argmax, per listed class keep only its largest 26-connected component (the other "
            "voxels of that class become background); chosen on cross-validation",
        },
    }


def export_model(
    request: ExportRequest,
    host: PluginHost | None = None,
    on_case: CaseCallback | None = None,
) -> ExportResult:
    """The whole ``automl-seg export``: see the module docstring. Registers only on success."""
    import torch
    from automl_seg_registry import Registry

    from automl_seg.engine.ensemble import load_model
    from automl_seg.engine.model import record_plan
    from automl_seg.plugins import load_plugins

    host = host or load_plugins()
    exporter = host.exporter(request.format)
    if request.ensemble:
        return _export_ensemble(request, host, exporter, on_case)
    with Registry.open(request.registry) as registry:
        record = registry.get(request.ref)
        name = artifact_name(request, exporter)
        stem = f"{record.name}-v{record.version}-{name}"
        check_has_weights(record)
        bundle_targets = None
        if writes_folder(exporter):
            bundle_targets = folder_output_targets(request.output, stem, request.overwrite)
            targets = bundle_targets[1:] if bundle_targets else None  # (zip, sidecar)
        else:
            targets = output_targets(request.output, f"{stem}{exporter.suffix}", request.overwrite)
        check_name_free(record, name)
        plan = record_plan(record)
        loaded = load_model(registry, [record.ref], host, torch.device("cpu"))
        model = loaded.network
        source, drawn = parity_volumes(plan, record.dataset.name, request.data_root, request.parity_cases)
        cases = list(drawn)
        subject = (
            build_subject(registry, record, host, plan, cases, loaded.postprocessing)
            if hasattr(exporter, "export_model")
            else None
        )
        with tempfile.TemporaryDirectory(prefix="automl-seg-export-") as tmp:
            artefact, sidecar_file, parity, sidecar = export_network(
                model, plan, exporter, request, Path(tmp), stem,
                model_info=_model_info(registry, [record], loaded.postprocessing), volumes=(source, cases),
                on_case=on_case, subject=subject,
            )  # fmt: skip
            registry.attach(record.ref, name, artefact, kind="export")
            registry.attach(record.ref, f"{name}_sidecar", sidecar_file, kind="export")
            if targets is not None:
                sidecar = _write_copy(artefact, sidecar, targets)
            if bundle_targets is not None:
                copy_artefact(Path(tmp) / f"{stem}{exporter.suffix}", bundle_targets[0])
        registry_path = registry.artifact_path(record.ref, name)
        sidecar_registry_path = registry.artifact_path(record.ref, f"{name}_sidecar")
    return ExportResult(
        ref=record.ref,
        format=exporter.name,
        artifact=name,
        registry_path=registry_path,
        sidecar_path=targets[1] if targets else sidecar_registry_path,
        output=targets[0] if targets else None,
        folder=bundle_targets[0] if bundle_targets else None,
        sha256=sidecar["artefact"]["sha256"],
        parity=parity,
        sidecar=sidecar,
    )


def _export_ensemble(
    request: ExportRequest, host: PluginHost, exporter: Exporter, on_case: CaseCallback | None
) -> ExportResult:
    """``export --ensemble A,B``: the members' softmax average as one artefact with its parity proof and
    sidecar, written to ``--output`` only (an ensemble is no one record, so nothing is registered)."""
    import torch
    from automl_seg_registry import Registry

    from automl_seg.engine.ensemble import load_model

    refs = request.ensemble or []
    if hasattr(exporter, "export_model"):
        raise ConfigError(
            f"the {exporter.name} exporter packages one registered model; export an ensemble with an exporter of "
            "networks (onnx, torch-export, torchscript)"
        )
    if request.output is None:
        raise ConfigError(
            "an ensemble is not one registered model, so its export is not stored in the registry: "
            "give --output FILE or FOLDER"
        )
    with Registry.open(request.registry) as registry:
        loaded = load_model(registry, refs, host, torch.device("cpu"))
        records, name = loaded.records, artifact_name(request, exporter)
        stem = f"ensemble-{records[0].dataset.name}-{len(records)}models-{name}"
        targets = output_targets(request.output, f"{stem}{exporter.suffix}", request.overwrite)
        assert targets is not None  # --output was given
        source, cases = parity_volumes(loaded.plan, records[0].dataset.name, request.data_root, request.parity_cases)
        with tempfile.TemporaryDirectory(prefix="automl-seg-export-") as tmp:
            artefact, _, parity, sidecar = export_network(
                loaded.network, loaded.plan, exporter, request, Path(tmp), stem,
                model_info=_model_info(registry, records, loaded.postprocessing), volumes=(source, list(cases)),
                on_case=on_case,
            )  # fmt: skip
            sidecar = _write_copy(artefact, sidecar, targets)
    return ExportResult(
        ref=",".join(r.ref for r in records),
        format=exporter.name,
        artifact=name,
        registry_path=None,
        sidecar_path=targets[1],
        output=targets[0],
        sha256=sidecar["artefact"]["sha256"],
        parity=parity,
        sidecar=sidecar,
    )


def _write_copy(artefact: Path, sidecar: dict[str, Any], targets: tuple[Path, Path]) -> dict[str, Any]:
    """Copy ``artefact`` to ``targets[0]`` and write its sidecar to ``targets[1]``, naming the copy's file
    (same bytes, same sha256); returns that sidecar."""
    shutil.copyfile(artefact, targets[0])
    sidecar = {**sidecar, "artefact": {**sidecar["artefact"], "file": targets[0].name}}
    targets[1].write_text(json.dumps(sidecar, indent=2))
    return sidecar
