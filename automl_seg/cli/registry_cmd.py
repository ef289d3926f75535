"""``automl-seg registry``: (commands added by its issue)."""

from __future__ import annotations

import typer

app = typer.Typer(help="registry commands.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="registry")
