"""What whole-model exporters get besides the network (``ExportSubject``), how any exporter is called,
and how a folder artefact (a MONAI bundle) becomes one file for the registry."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_seg.interfaces import Exporter, ExportOptions, ExportSubject

if TYPE_CHECKING:
    import torch
    from automl_seg_registry import ArchitectureRecord, Registry
    from torch import nn

    from automl_seg.data.models import Plan
    from automl_seg.engine.postprocess import Postprocessing
    from automl_seg.plugins import PluginHost


def writes_folder(exporter: Exporter) -> bool:
    """Whether the exporter's artefact is a folder (see ``Exporter``'s optional ``writes_folder``)."""
    return bool(getattr(exporter, "writes_folder", False))


def value_range(volumes: Sequence[tuple[str, torch.Tensor]]) -> tuple[float, float] | None:
    if not volumes:
        return None
    return min(float(v.min()) for _, v in volumes), max(float(v.max()) for _, v in volumes)


def build_subject(
    registry: Registry,
    record: ArchitectureRecord,
    host: PluginHost,
    plan: Plan,
    volumes: Sequence[tuple[str, torch.Tensor]],
    postprocessing: Postprocessing,
) -> ExportSubject:
    """The record as whole-model exporters need it: plan, preprocessing and MONAI network config, card."""
    from automl_seg.data.transforms import IMAGE, preprocessing_config
    from automl_seg.engine.ensemble import weight_artifacts
    from automl_seg.engine.postprocess import foreground_classes

    space = host.space(record.space.name)
    to_config = getattr(space, "monai_network_config", None)
    metrics = record.metrics.model_dump(mode="json", exclude_none=True)
    return ExportSubject(
        ref=record.ref,
        name=record.name,
        version=int(record.version or 0),
        plan=plan,
        space=record.space.name,
        space_version=str(record.space.version),
        network_config=to_config(record.space.args, record.arch) if to_config is not None else None,
        preprocessing=preprocessing_config(plan, (IMAGE,)),
        metrics=metrics,
        members=len(weight_artifacts(record)),
        keep_largest=[v for v, name in foreground_classes(plan).items() if name in postprocessing.keep_largest],
        input_range=value_range(volumes),
        card=registry.card(record.ref),
        description=(
            f"{plan.dataset} segmentation ({', '.join(v for k, v in sorted(plan.labels.items()) if k)}) by a "
            f"{record.space.name} network found with the {record.strategy.name} strategy (automl-seg {record.ref})"
        ),
    )


def run_exporter(
    exporter: Exporter,
    model: nn.Module,
    example: torch.Tensor,
    path: Path,
    options: ExportOptions,
    subject: ExportSubject | None,
) -> dict[str, Any]:
    """``export_model`` with the subject where the exporter packages whole models, else ``export``."""
    whole_model = getattr(exporter, "export_model", None)
    if whole_model is not None:
        if subject is None:
            raise TypeError(f"exporter '{exporter.name}' packages a registered model: give it an ExportSubject")
        return whole_model(model, example, path, options, subject)
    return exporter.export(model, example, path, options)


def zip_folder(folder: Path) -> Path:
    """``folder`` zipped beside it (``name.zip``, the folder at the archive's top, as MONAI's bundle tools expect)."""
    archive = folder.with_name(folder.name + ".zip")
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            zf.write(file, Path(folder.name) / file.relative_to(folder))
    return archive


def copy_artefact(source: Path, target: Path) -> None:
    """Copy a file, or a folder (replacing one already there: the caller checked it may)."""
    if source.is_dir():
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
