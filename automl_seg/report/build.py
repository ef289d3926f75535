"""Assemble the report of one record from the registry (and, for the overlays, its data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from automl_seg.errors import UserError
from automl_seg.report import sections
from automl_seg.report.overlays import overlays
from automl_seg.report.page import page

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, Registry

    from automl_seg.plugins import PluginHost


def build_report(registry: Registry, ref: str, host: PluginHost, data_root: Path | None = None) -> str:
    """The HTML page of ``ref``: what the record holds, and overlays where its weights and data are found.
    A record without weights (an architecture) gets every section, saying what it does not have."""
    record = registry.get(ref)
    lineage = _lineage(registry, record)
    files = _files(registry, lineage)
    evaluation = _evaluation(files)
    body = "".join(
        (
            sections.summary(record, registry.aliases().get(record.ref, []), lineage),
            sections.settings(record),
            sections.dataset(record),
            sections.figures(record, files),
            sections.memory(record),
            sections.cases(evaluation),
            overlays(evaluation, _model(registry, record, host), _images(record, data_root), torch.device("cpu")),
        )
    )
    return page(f"automl-seg report: {record.ref}", body)


def _lineage(registry: Registry, record: ArchitectureRecord) -> list[ArchitectureRecord]:
    chain = [record]
    while chain[-1].parent and len(chain) < 50:
        try:
            chain.append(registry.get(chain[-1].parent))
        except UserError:
            break
    return chain


def _files(registry: Registry, lineage: list[ArchitectureRecord]) -> dict[str, Path]:
    """Artifact name -> stored file; the record's own first, then its ancestors' (the search's figures)."""
    found: dict[str, Path] = {}
    for record in lineage:
        folder = registry.record_dir(record.ref)
        for artifact in record.artifacts:
            found.setdefault(artifact.name, folder / artifact.path)
    return found


def _evaluation(files: dict[str, Path]) -> dict[str, Any] | None:
    path = files.get("evaluation")
    return json.loads(path.read_text()) if path is not None and path.is_file() else None


def _model(registry: Registry, record: ArchitectureRecord, host: PluginHost) -> tuple[Any, Any] | str:
    from automl_seg.engine.model import WEIGHTS_ARTIFACT, load_trained_model, record_plan

    if not any(a.name == WEIGHTS_ARTIFACT for a in record.artifacts):
        return "no trained weights (an architecture-only record): no predictions to show"
    try:
        network, _ = load_trained_model(registry, record.ref, host)
    except UserError as exc:
        return f"the trained model cannot be loaded ({exc})"
    return network, record_plan(record)


def _images(record: ArchitectureRecord, data_root: Path | None) -> dict[str, tuple[Path, Path]] | str:
    from automl_seg.data.msd import load_dataset_info

    try:
        info = load_dataset_info(record.dataset.name, data_root, progress=False)
    except UserError as exc:
        return f"dataset {record.dataset.name} not found ({exc}): no overlays"
    return {case.id: (case.image, case.label) for case in info.cases}
