"""``automl-seg export``: a registered model as a deployable artefact, with its parity proof and sidecar.

The command parses flags, calls ``automl_seg.export.export_model`` and prints; torch, onnx and
the registry are imported inside the command so ``automl-seg --help`` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from automl_seg.cli.common import (
    DataRootOption,
    JsonFlag,
    RegistryOption,
    console,
    model_refs,
    print_json,
)
from automl_seg.config import build_settings
from automl_seg.errors import ConfigError

if TYPE_CHECKING:
    from automl_seg.export import ExportResult


def _result_table(result: ExportResult) -> Table:
    parity = result.parity
    verdict = "within" if parity.within_tolerance else "OUTSIDE"
    kind = "enforced" if parity.enforced else "report-only (fp16)"
    table = Table(
        title=f"{result.format} export of {result.ref} -> '{result.artifact}' "
        f"(parity on {len(parity.cases)} {parity.source} case(s), {', '.join(parity.providers)})",
        box=box.SIMPLE,
    )
    for column in ("case", "shape", "max |logit diff|", "label agreement", "Dice vs torch"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for case in parity.cases:
        table.add_row(
            case.case,
            "x".join(map(str, case.shape)),
            f"{case.max_abs_diff:.2e}",
            f"{case.label_agreement:.5f}",
            f"{case.dice:.4f}",
        )
    table.caption = (
        f"max |diff| {parity.max_abs_diff:.2e} {verdict} atol {parity.atol:g} ({kind}); "
        f"sha256 {result.sha256[:12]}; sidecar {result.sidecar_path}"
        + (f"; written to {result.output}" if result.output else "")
        + (f" and {result.folder}" if result.folder else "")
    )
    return table


def output_path(text: str | None) -> Path | None:
    """``--output``; a trailing slash means a folder, which must exist (not a file of that name)."""
    if text is None:
        return None
    path = Path(text).expanduser()
    if text.endswith(("/", os.sep)) and not path.is_dir():
        raise ConfigError(f"output folder {path} does not exist; create it or pass --output in an existing folder")
    return path


def export(
    ref: Annotated[
        str | None, typer.Argument(help="Registered model: NAME, NAME:VERSION, NAME@ALIAS or 'latest' (the default).")
    ] = None,
    ensemble: Annotated[
        str | None,
        typer.Option(
            "--ensemble",
            help="Several models as one graph: REF,REF,... (their softmax averaged); written to --output only.",
        ),
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Exporter name (see `automl-seg plugins list`): onnx, torch-export, monai-bundle (a bundle folder "
            "and its .zip), torchscript (legacy: torch.jit.trace, which torch deprecates; use torch-export).",
        ),
    ] = "onnx",
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Also write the artefact (and its .json sidecar) to this file or folder."),
    ] = None,
    opset: Annotated[int | None, typer.Option("--opset", help="ONNX opset (default 17).")] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Half precision inside (float32 in/out); needs a CUDA/TensorRT runtime.")
    ] = False,
    dynamic_spatial: Annotated[
        bool,
        typer.Option(
            "--dynamic-spatial/--static",
            help="Dynamic spatial axes (multiples of the network's stride) or fixed to the plan's patch.",
        ),
    ] = True,
    atol: Annotated[
        float | None, typer.Option("--atol", help="Max abs logit difference allowed vs torch (fp32; default 1e-3).")
    ] = None,
    providers: Annotated[
        str | None,
        typer.Option("--providers", help="Force runtime providers for the parity run, comma separated, in order."),
    ] = None,
    parity_cases: Annotated[
        int | None, typer.Option("--parity-cases", help="Validation volumes the parity proof runs on (default 4).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace files already at --output.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    data_root: DataRootOption = None,
    registry: RegistryOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Export a registered model (ONNX, torch.export, MONAI bundle; TorchScript is legacy), prove it computes
    what torch computes, and register it (an ensemble goes to --output only)."""
    from automl_seg.export import ExportRequest, export_model
    from automl_seg.progress import progress_bar

    refs = model_refs(ref if ref is not None or ensemble is not None else "latest", ensemble)
    request = build_settings(
        ExportRequest,
        overrides={
            "ref": refs[0],
            "ensemble": refs if ensemble is not None else None,
            "format": format,
            "output": output_path(output),
            "overwrite": overwrite,
            "opset": opset,
            "fp16": fp16,
            "dynamic_spatial": dynamic_spatial,
            "atol": atol,
            "providers": [p.strip() for p in providers.split(",") if p.strip()] if providers else None,
            "parity_cases": parity_cases,
            "data_root": data_root,
            "registry": registry,
        },
        source="export options",
    )
    with progress_bar(progress and not as_json) as bar:
        task = bar.add_task("parity check", total=request.parity_cases)
        result = export_model(request, on_case=lambda case, total: bar.update(task, total=total, advance=1))
    if as_json:
        print_json(result.model_dump(mode="json", exclude={"sidecar"}))
        return
    console.print(_result_table(result))


def register(root: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    root.command("export")(export)
