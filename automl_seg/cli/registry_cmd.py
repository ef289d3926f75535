"""``automl-seg registry``: browse, tag, remove and verify registered architectures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from automl_seg.cli.common import JsonFlag, RegistryOption, console, err_console, print_json

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, PhaseCompute, Registry

app = typer.Typer(help="Browse and manage registered architectures.", no_args_is_help=True)

RefArgument = Annotated[str, typer.Argument(help="NAME, NAME:VERSION, NAME@ALIAS or 'latest'.")]


def _open(registry: Path | None) -> Registry:
    from automl_seg_registry import Registry

    return Registry.open(registry)


@app.command("list")
def list_records(
    registry: RegistryOption = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only records of this dataset.")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="Only records found by this strategy.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only versions of this record name.")] = None,
    compute: Annotated[
        bool, typer.Option("--compute", help="Add the search and retraining seconds (wall / device) columns.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """List registered records (newest version of each name marked 'latest')."""
    with _open(registry) as reg:
        found = reg.list(dataset=dataset, strategy=strategy, name=name)
        if as_json:
            print_json([record.model_dump(mode="json") for record in found])
            return
        lost = len(reg.unindexed())
        if lost:
            err_console.print(
                f"note: {lost} record folder(s) in {reg.root} are not in its index (a lost index, or another "
                "one); `automl-seg registry verify --reindex` adds them back",
                markup=False,
                highlight=False,
            )
        if not found:
            filtered = " matching the filters" if dataset or strategy or name else ""
            console.print(f"no records in {reg.root}{filtered}", markup=False)
            return
        aliases = reg.aliases()
    table = Table(title=Text(f"registry {reg.root}"), box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("ref", overflow="fold", min_width=12)
    table.add_column("dataset", overflow="fold", min_width=10)
    table.add_column("strategy", overflow="fold", min_width=8)
    for column in ("mean Dice", "params", "memory", *(("search s", "retrain s") if compute else ())):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    for record in found:
        marks = aliases.get(record.ref, [])
        ref = Text(record.ref)
        if marks:
            ref.append(f"\n({', '.join(marks)})", style="dim")
        table.add_row(
            ref,
            Text(record.dataset.name),
            Text(record.strategy.name),
            _number(record.metrics.dice_mean, "{:.4f}"),
            _params(record.metrics.params),
            _number(record.metrics.peak_memory_mb, "{:.0f} MB"),
            *((_seconds(record.metrics.compute.search), _seconds(record.metrics.compute.retrain)) if compute else ()),
            record.created.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@app.command()
def show(ref: RefArgument, registry: RegistryOption = None, as_json: JsonFlag = False) -> None:
    """Show one record: what was searched, on what, how well, and its files."""
    with _open(registry) as reg:
        record = reg.get(ref)
        marks = reg.aliases().get(record.ref, [])
    if as_json:
        print_json(record.model_dump(mode="json"))
        return
    _print_record(record, marks)


@app.command()
def tag(
    ref: RefArgument,
    alias: Annotated[str, typer.Argument(help="Alias to point at REF, e.g. 'best'.")],
    registry: RegistryOption = None,
) -> None:
    """Point NAME@ALIAS at REF (moving the alias if it pointed elsewhere)."""
    with _open(registry) as reg:
        exact = reg.resolve(ref)
        reg.tag(exact, alias)
    console.print(f"{exact.split(':')[0]}@{alias} -> {exact}")


@app.command("rm")
def remove(
    ref: RefArgument,
    registry: RegistryOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a record version, its aliases and its files."""
    with _open(registry) as reg:
        record = reg.get(ref)
        children = [r.ref for r in reg.list(name=record.name) if r.parent == record.ref]
        lineage = f" {', '.join(children)} name(s) it as parent and will keep that reference." if children else ""
        if not yes:
            typer.confirm(f"Remove {record.ref} and its {len(record.artifacts)} file(s)?{lineage}", abort=True)
        elif children:
            err_console.print(f"note:{lineage}", highlight=False)
        removed = reg.remove(record.ref)
    console.print(f"removed {removed}")


@app.command()
def verify(
    registry: RegistryOption = None,
    reindex: Annotated[
        bool, typer.Option("--reindex", help="First add record folders missing from the index back to it.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Check the registry against its index; exit 1 on any problem found.

    Reported: missing or altered artifacts (sha256), record folders the index does not know, differing record.json.

    A record.json that differs from the index is rewritten from it: a second run confirms the repair.
    """
    with _open(registry) as reg:
        refused = []
        if reindex:
            result = reg.reindex()
            for ref in result.added:
                err_console.print(f"re-indexed {ref}", markup=False, highlight=False)
            refused = result.refused
        problems = refused + reg.verify()
        found = reg.list()
    checked = sum(len(record.artifacts) for record in found)
    if as_json:
        print_json(
            {
                "records": len(found),
                "artifacts": checked,
                "problems": [p.as_dict() for p in problems],
            }
        )
    elif problems:
        table = Table(title=f"{len(problems)} problem(s)")
        for column in ("ref", "artifact", "problem", "path"):
            table.add_column(column, overflow="fold")
        for problem in problems:
            kind = f"{problem.kind}: {problem.detail}" if problem.detail else problem.kind
            table.add_row(Text(problem.ref), Text(problem.artifact or "-"), Text(kind), Text(str(problem.path)))
        err_console.print(table)
        if any(problem.kind == "unindexed" for problem in problems):
            err_console.print(
                "unindexed record folders belong to a lost index or another one (AUTOML_SEG_REGISTRY_INDEX); "
                "`automl-seg registry verify --reindex` adds them back to this one"
            )
        if any(problem.kind == "mirror-rewritten" for problem in problems):
            err_console.print(
                "record.json files that differed from the index were rewritten from it (an interrupted attach, "
                "or an edited or damaged file); run verify again to confirm"
            )
    else:
        console.print(f"ok: {checked} artifact(s) of {len(found)} record(s) match their sha256")
    if problems:
        raise typer.Exit(1)


@app.command()
def card(
    ref: RefArgument,
    registry: RegistryOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the card to this file.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing --output file.")] = False,
) -> None:
    """Print (or write) the record's model card: Markdown with YAML front matter."""
    from automl_seg.paths import output_file

    target = output_file(output, overwrite) if output is not None else None
    with _open(registry) as reg:
        text = reg.card(ref)
    if target is None:
        typer.echo(text, nl=False)
        return
    target.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}", markup=False)


def _print_record(record: ArchitectureRecord, marks: list[str]) -> None:
    metrics = record.metrics
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows = {
        "ref": record.ref + (f" ({', '.join(marks)})" if marks else ""),
        "created": record.created.isoformat(timespec="seconds"),
        "space": f"{record.space.name} {record.space.version} {_compact(record.space.args)}",
        "strategy": f"{record.strategy.name} {_compact(record.strategy.settings)}",
        "architecture": ", ".join(record.arch) + " (values: --json)" if record.arch else "-",
        "dataset": f"{record.dataset.name} (fingerprint {record.dataset.fingerprint_hash or '-'})",
        "seed": str(record.seed),
        "mean Dice": _number(metrics.dice_mean, "{:.4f}"),
        "Dice per class": ", ".join(f"{k}: {v:.4f}" for k, v in metrics.dice_per_class.items()) or "-",
        "mean HD95": _number(metrics.hd95_mean, "{:.2f} mm"),
        "params": _params(metrics.params),
        "peak memory": _number(metrics.peak_memory_mb, "{:.0f} MB"),
        "search memory": ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.memory.items())) or "-",
        "search time": _number(metrics.search_time_s, "{:.0f} s"),
        "train time": _number(metrics.train_time_s, "{:.0f} s"),
        "search compute": _compute(metrics.compute.search),
        "retrain compute": _compute(metrics.compute.retrain),
        "tags": ", ".join(record.tags) or "-",
        "parent": record.parent or "-",
    }
    for key, value in rows.items():
        facts.add_row(key, Text(value))  # Text: values are data, never rich markup
    console.print(facts)
    if record.artifacts:
        files = Table(title="artifacts")
        for column in ("name", "kind", "size", "sha256", "path"):
            files.add_column(column, justify="right" if column == "size" else "left")
        for item in record.artifacts:
            files.add_row(item.name, Text(item.kind), f"{item.size:,}", item.sha256[:16] + "…", item.path)
        console.print(files)


def _compact(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"), default=str) if data else ""


def _number(value: float | None, pattern: str) -> str:
    return pattern.format(value) if value is not None else "-"


def _seconds(phase: PhaseCompute | None) -> str:
    """``wall / device`` seconds of a phase, as ``registry list --compute`` shows them."""
    return "-" if phase is None else f"{phase.wall_s:.0f} / {phase.device_s:.0f}"


def _compute(phase: PhaseCompute | None) -> str:
    if phase is None:
        return "-"
    return f"{phase.wall_s:.1f} s wall, {phase.device_s:.1f} device s ({phase.device})"


def _params(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e6:.2f} M" if value >= 100_000 else f"{value:,}"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="registry")
