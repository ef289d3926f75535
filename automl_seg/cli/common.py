"""Pieces every CLI module shares: consoles, common options, JSON output."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console

#: Tables piped to a file or a CI log are not limited to rich's 80-column default for non-terminals
#: (registry refs and parameter names would wrap mid-word); a terminal or $COLUMNS still decides.
PIPED_WIDTH = 120


def _width(stream: TextIO) -> int | None:
    return None if stream.isatty() or "COLUMNS" in os.environ else PIPED_WIDTH


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))


def fit_consoles() -> None:
    """Size both consoles for the streams and environment of this invocation, not of the import (the
    entry point calls it: an embedding process or a test may set ``COLUMNS`` or swap the streams later)."""
    console.width = _width(sys.stdout)  # type: ignore[assignment]  # None: the terminal or $COLUMNS decides
    err_console.width = _width(sys.stderr)  # type: ignore[assignment]


JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]
DataRootOption = Annotated[
    Path | None,
    typer.Option("--data-root", help="Folder holding MSD tasks (default: $AUTOML_SEG_DATA, else a user cache)."),
]
RegistryOption = Annotated[
    Path | None,
    typer.Option("--registry", help="Registry folder (default: $AUTOML_SEG_REGISTRY, else a user data dir)."),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML or TOML file with run settings; flags override it.")
]

MLFLOW_ENV = "MLFLOW_TRACKING_URI"
MlflowOption = Annotated[
    str | None,
    typer.Option(
        "--mlflow",
        metavar="URI",
        help="Track the run in MLflow at URI, e.g. sqlite:///mlflow.db or http://host:5000 "
        "(default: $MLFLOW_TRACKING_URI; needs automl-seg[mlflow]).",
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="A setting of the strategy, e.g. --set epochs=4 --set memory_budget=900MB (repeatable; over the "
        "config's strategy section). `automl-seg plugins show STRATEGY` lists its keys.",
    ),
]
EnsembleOption = Annotated[
    str | None,
    typer.Option("--ensemble", help="Several models as one: REF,REF,... (their softmax averaged)."),
]
NprocOption = Annotated[
    int | None,
    typer.Option(
        "--nproc",
        help="Run as a DDP job of N processes on this node (one GPU each on CUDA); several nodes: torchrun.",
    ),
]


@contextmanager
def mlflow_tracking(uri: str | None) -> Iterator[None]:
    """``--mlflow URI``: MLflow's own variable, which the MLflow observer plugin reads, for the command's
    duration (the previous value comes back after)."""
    if uri is None:
        yield
        return
    previous = os.environ.get(MLFLOW_ENV)
    os.environ[MLFLOW_ENV] = uri
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(MLFLOW_ENV, None)
        else:
            os.environ[MLFLOW_ENV] = previous


def launched_as_job(ctx: typer.Context, nproc: int | None, device: str, hint: str | None) -> bool:
    """With ``--nproc N`` (N > 1) run this command again as a job of N processes, wait for it and
    say so; the processes themselves then run without ``--nproc``."""
    if nproc is None:
        return False
    from automl_seg.engine.launch import check_nproc, launch_local, without_nproc

    check_nproc(nproc, device)
    if nproc == 1:
        return False
    argv = (ctx.obj or {}).get("argv", sys.argv[1:])
    launch_local(without_nproc(argv), nproc, hint=hint)
    return True


def print_json(data: Any) -> None:
    """JSON on stdout, unwrapped and uncoloured, so it pipes into jq."""
    typer.echo(json.dumps(data, indent=2, default=str))


def model_refs(ref: str | None, ensemble: str | None) -> list[str]:
    """REF, or the members of ``--ensemble`` (exactly one of the two)."""
    from automl_seg.errors import ConfigError

    if ref is not None and ensemble is not None:
        raise ConfigError("give REF or --ensemble REF,REF,..., not both")
    if ensemble is not None:
        refs = [r.strip() for r in ensemble.split(",") if r.strip()]
        if len(refs) < 2:
            raise ConfigError(f"--ensemble {ensemble!r} names {len(refs)} model(s); give at least two: REF,REF")
        return refs
    if ref is None:
        raise ConfigError("give the model: REF, or --ensemble REF,REF,...")
    return [ref]
