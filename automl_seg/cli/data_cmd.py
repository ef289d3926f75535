"""``automl-seg data``: check a dataset and show its fingerprint and plan."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from automl_seg.cli.common import DataRootOption, JsonFlag, console, print_json

app = typer.Typer(help="Inspect and validate MSD datasets.", no_args_is_help=True)


def _triple(values: tuple[float, ...]) -> str:
    return " x ".join(f"{v:g}" for v in values)


def _tables(data: Any, budget: str | None = None) -> list[Table]:
    """Dataset/fingerprint and plan of a ``PreparedData`` as rich tables."""
    from automl_seg.data.plan import mirroring_note

    fp, plan = data.fingerprint, data.plan
    facts = Table(title=f"{fp.dataset} fingerprint", show_header=False)
    facts.add_column("field", style="bold")
    facts.add_column("value", overflow="fold")
    facts.add_row("folder", str(data.info.root))
    facts.add_row("cases", str(fp.num_cases))
    facts.add_row("split", f"{len(fp.split.train)} train / {len(fp.split.val)} val (seed {fp.split.seed})")
    facts.add_row("channels", ", ".join(f"{i}: {m}" for i, m in fp.modality.items()))
    facts.add_row("labels", ", ".join(f"{i}: {name}" for i, name in fp.labels.items()))
    for kind, summary in (("shape", fp.shapes), ("spacing (mm)", fp.spacings)):
        for stat in ("min", "median", "max"):
            facts.add_row(f"{kind} {stat}", _triple(getattr(summary, stat)))
    for stats in fp.intensity:
        facts.add_row(
            f"intensity {stats.channel} (foreground)",
            f"p0.5 {stats.p00_5:.4g}  p50 {stats.p50:.4g}  p99.5 {stats.p99_5:.4g}  "
            f"mean {stats.mean:.4g}  std {stats.std:.4g}",
        )
    facts.add_row("class fractions", ", ".join(f"{fp.labels[c]} {f:.2%}" for c, f in fp.class_fractions.items()))
    facts.add_row("content hash", fp.content_hash)
    planned = Table(title="plan" if budget is None else f"plan for the {budget} budget", show_header=False)
    planned.add_column("field", style="bold")
    planned.add_column("value", overflow="fold")
    for key, value in plan.model_dump().items():
        if key == "mirror_axes":
            value = ", ".join("xyz"[axis] for axis in value) or "none"
        elif isinstance(value, tuple):
            value = _triple(value)
        planned.add_row(key, str(value))
    if note := mirroring_note(fp):
        planned.add_row("mirroring", note)
    for warning in data.warnings:
        planned.add_row("[yellow]warning[/yellow]", warning)
    return [facts, planned]


@app.command("check")
def check(
    dataset: Annotated[str, typer.Argument(help="MSD task name, e.g. Task04_Hippocampus.")],
    data_root: DataRootOption = None,
    as_json: JsonFlag = False,
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="Share of cases held out.")] = 0.2,
    split_seed: Annotated[int, typer.Option("--split-seed", help="Seed of the train/validation split.")] = 0,
    max_cases: Annotated[int | None, typer.Option("--max-cases", help="Use only the first N cases.")] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Re-read every file, ignore a cached fingerprint.")
    ] = False,
    budget: Annotated[
        str | None,
        typer.Option("--budget", help="Plan within this budget's patch limits (spacing and patch, and why)."),
    ] = None,
) -> None:
    """Validate every case (downloading a missing MSD task) and print the fingerprint and plan."""
    from automl_seg.config import DataSettings, build_settings
    from automl_seg.data import prepare_data
    from automl_seg.engine.settings import TRAIN_PRESETS, plan_limits
    from automl_seg.errors import ConfigError

    if budget is not None and budget not in TRAIN_PRESETS:
        raise ConfigError(f"unknown budget '{budget}'; known: {', '.join(TRAIN_PRESETS)}")

    overrides = {
        "dataset": dataset,
        "data_root": data_root,
        "val_fraction": val_fraction,
        "split_seed": split_seed,
        "max_cases": max_cases,
    }
    settings = build_settings(DataSettings, overrides=overrides, source="command-line options")
    limits = plan_limits(budget) if budget is not None else None
    data = prepare_data(settings, progress=not as_json, use_cache=not no_cache, limits=limits)
    if as_json:
        print_json(
            {
                "dataset": data.info.name,
                "folder": str(data.info.root),
                "num_cases": data.fingerprint.num_cases,
                "fingerprint": data.fingerprint.model_dump(mode="json"),
                "budget": budget,
                "plan": data.plan.model_dump(mode="json"),
                "warnings": data.warnings,
            }
        )
        return
    for table in _tables(data, budget):
        console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
