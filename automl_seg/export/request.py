"""What ``automl-seg export`` asks for and answers, and the checks made before any model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from automl_seg.errors import ConfigError, RegistryError
from automl_seg.export.parity import ParityReport
from automl_seg.export.sidecar import sidecar_path_for
from automl_seg.interfaces import Exporter
from automl_seg.paths import output_file

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord


class ExportRequest(BaseModel):
    """What ``automl-seg export`` asks for."""

    model_config = ConfigDict(extra="forbid")

    ref: str = "latest"
    ensemble: list[str] | None = Field(
        default=None, description="several records exported as one model (softmax averaged) instead of ``ref``"
    )
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


class ExportResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str
    format: str
    artifact: str = Field(description="artifact name in the record")
    registry_path: Path | None = Field(description="the artefact in the registry (None for an ensemble: not stored)")
    sidecar_path: Path
    output: Path | None
    folder: Path | None = Field(default=None, description="the artefact's folder at --output (folder exporters)")
    sha256: str
    parity: ParityReport
    sidecar: dict[str, Any]


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


def is_bundle_folder(path: Path) -> bool:
    """A folder a folder exporter wrote (a MONAI bundle: ``configs/metadata.json`` inside)."""
    return (path / "configs" / "metadata.json").is_file()


def folder_output_targets(
    output: Path | None, default_name: str, overwrite: bool = False
) -> tuple[Path, Path, Path] | None:
    """(folder, zip, sidecar) paths for ``--output`` of a folder artefact.

    An existing folder that is not itself a bundle gets ``default_name`` inside it; anything else names
    the bundle folder, whose zip and sidecar lie beside it. A folder already there is replaced only
    with ``overwrite``, and only when it is a bundle (nothing else of the user's is ever deleted)."""
    if output is None:
        return None
    output = Path(output).expanduser()
    folder = output / default_name if output.is_dir() and not is_bundle_folder(output) else output
    archive = output_file(folder.with_name(folder.name + ".zip"), overwrite)
    if folder.exists():
        if not overwrite:
            raise ConfigError(f"{folder} already exists; pass --overwrite to replace it, or choose another --output")
        if not is_bundle_folder(folder):
            raise ConfigError(f"{folder} exists and is not a bundle folder, so it is kept: choose another --output")
    return folder, archive, output_file(sidecar_path_for(archive), overwrite)


def check_has_weights(record: ArchitectureRecord) -> None:
    """Trained weights: ``weights``, or a cross-validated record's ``weights_fold<k>`` (exported as one graph)."""
    if not any(a.name == "weights" or a.name.startswith("weights_fold") for a in record.artifacts):
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
