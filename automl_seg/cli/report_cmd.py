"""``automl-seg report``: one self-contained HTML page about a registered record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from automl_seg.cli.common import DataRootOption, RegistryOption, console


def report(
    ref: Annotated[str, typer.Argument(help="NAME, NAME:VERSION, NAME@ALIAS or 'latest'.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path("report.html"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --output file.")] = False,
    registry: RegistryOption = None,
    data_root: DataRootOption = None,
) -> None:
    """Write an HTML report of REF (no network resources; images inlined): summary and lineage, settings,
    dataset and plan, topology and curves, memory, per-case scores, best/median/worst case overlays."""
    from automl_seg_registry import Registry

    from automl_seg.paths import output_file
    from automl_seg.plugins import load_plugins
    from automl_seg.report import build_report

    target = output_file(output, overwrite)
    with Registry.open(registry) as reg:
        html = build_report(reg, ref, load_plugins(), data_root)
    target.write_text(html, encoding="utf-8")
    console.print(f"wrote {target}", markup=False)


def register(root: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    root.command("report")(report)
