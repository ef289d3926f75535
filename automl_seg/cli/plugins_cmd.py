"""``automl-seg plugins``: what is installed, which hooks it implements, what it registers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from automl_seg.cli.common import JsonFlag, console, err_console, print_json
from automl_seg.plugins import PluginInfo, load_plugins

if TYPE_CHECKING:
    from automl_seg.verify import PluginVerification

app = typer.Typer(help="Inspect installed plugins.", no_args_is_help=True)

VerifyFlag = Annotated[
    bool,
    typer.Option(
        "--verify", help="Also run a fast subset of the conformance checks on every plugin and report pass/fail."
    ),
]


def _row(p: PluginInfo, verification: PluginVerification | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": p.name,
        "version": p.version,
        "hooks": p.hooks,
        "registered": p.registered,
        "ok": p.ok,
        "errors": p.errors,
    }
    if verification is not None:
        row["verify"] = {
            "ok": verification.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in verification.checks],
        }
    return row


def _verify_cell(verification: PluginVerification) -> str:
    if verification.ok:
        count = len(verification.checks)
        return f"[green]pass[/] ({count} check{'' if count == 1 else 's'})"
    return "[red]FAIL[/]\n" + "\n".join(verification.failures)


@app.command("list")
def list_plugins(as_json: JsonFlag = False, verify: VerifyFlag = False) -> None:
    """List plugins, their versions, hooks and registered names; exit 1 if any plugin is broken
    (or, with --verify, fails a conformance check)."""
    host = load_plugins()
    plugins = sorted(host.plugins.values(), key=lambda p: p.name)
    verifications: dict[str, PluginVerification] = {}
    if verify:
        from automl_seg.verify import verify_plugins

        with err_console.status("verifying plugins (building tiny networks, exporting tiny models)"):
            verifications = {v.plugin: v for v in verify_plugins(host)}
    if as_json:
        print_json([_row(p, verifications.get(p.name)) for p in plugins])
    else:
        table = Table(title="automl-seg plugins")
        columns = ["plugin", "version", "hooks", "registers", "status"] + (["verify"] if verify else [])
        for column in columns:
            table.add_column(column)
        for p in plugins:
            registers = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in sorted(p.registered.items()))
            status = "[green]ok[/]" if p.ok else "[red]" + "; ".join(p.errors) + "[/]"
            cells = [p.name, p.version, "\n".join(p.hooks), registers, status]
            if verify:
                cells.append(_verify_cell(verifications[p.name]))
            table.add_row(*cells)
        console.print(table)
    failed = [v for v in verifications.values() if not v.ok]
    if host.problems or failed:
        for problem in host.problems:
            err_console.print(f"[red]error:[/] {problem}", highlight=False)
        for v in failed:
            for failure in v.failures:
                if not failure.startswith("loads and registers"):
                    err_console.print(f"[red]error:[/] plugin '{v.plugin}' fails {failure}", highlight=False)
        raise typer.Exit(1)


@app.command("show")
def show_strategy(
    name: Annotated[str, typer.Argument(help="A search strategy (see `automl-seg plugins list`).")],
    as_json: JsonFlag = False,
) -> None:
    """List a strategy's settings: the keys `search --set KEY=VALUE` (or a config's strategy section)
    accepts, their types and their defaults under each budget."""
    from automl_seg.engine.budgets import known_budgets
    from automl_seg.engine.options import setting_rows

    host = load_plugins()
    strategy = host.strategy(name)
    owner = host.owners.get(("strategy", name), "?")
    budgets = known_budgets(strategy=strategy, space=host.space(strategy.space))
    rows = setting_rows(strategy, budgets)
    if as_json:
        print_json({"strategy": name, "plugin": owner, "space": strategy.space, "budgets": budgets, "settings": rows})
        return
    if not rows:
        console.print(f"strategy '{name}' (plugin {owner}, space {strategy.space}) has no settings")
        return
    table = Table(title=f"strategy '{name}' (plugin {owner}, space {strategy.space}): search --set KEY=VALUE")
    for column in ["key", "type", *budgets, "what it is"]:
        table.add_column(column)
    for row in rows:
        table.add_row(row["key"], row["type"], *(str(row["defaults"].get(b, "-")) for b in budgets), row["help"])
    console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="plugins")
