"""``automl-seg plugins``: what is installed, which hooks it implements, what it registers."""

from __future__ import annotations

import typer
from rich.table import Table

from automl_seg.cli.common import JsonFlag, console, err_console, print_json
from automl_seg.plugins import load_plugins

app = typer.Typer(help="Inspect installed plugins.", no_args_is_help=True)


@app.command("list")
def list_plugins(as_json: JsonFlag = False) -> None:
    """List plugins, their versions, hooks and registered names; exit 1 if any plugin is broken."""
    host = load_plugins()
    plugins = sorted(host.plugins.values(), key=lambda p: p.name)
    if as_json:
        print_json(
            [
                {
                    "name": p.name,
                    "version": p.version,
                    "hooks": p.hooks,
                    "registered": p.registered,
                    "ok": p.ok,
                    "errors": p.errors,
                }
                for p in plugins
            ]
        )
    else:
        table = Table(title="automl-seg plugins")
        for column in ("plugin", "version", "hooks", "registers", "status"):
            table.add_column(column)
        for p in plugins:
            registers = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(p.registered.items()))
            status = "[green]ok[/]" if p.ok else "[red]" + "; ".join(p.errors) + "[/]"
            table.add_row(p.name, p.version, "\n".join(p.hooks), registers, status)
        console.print(table)
    if host.problems:
        for problem in host.problems:
            err_console.print(f"[red]error:[/] {problem}", highlight=False)
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="plugins")
