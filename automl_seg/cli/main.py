"""Entry point: builds the typer app and turns every failure into one clear line and an exit code."""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.logging import RichHandler
from rich.markup import escape

from automl_seg import __version__
from automl_seg.cli import data_cmd, engine_cmd, export_cmd, plugins_cmd, registry_cmd, tune_cmd
from automl_seg.cli.common import err_console
from automl_seg.errors import UserError

DEBUG_ENV = "AUTOML_SEG_DEBUG"

app = typer.Typer(
    name="automl-seg",
    help="AutoML for 3D medical image segmentation: DiNTS search, registry, export, tuning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for _module in (plugins_cmd, data_cmd, engine_cmd, registry_cmd, export_cmd, tune_cmd):
    _module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"automl-seg {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )
    for noisy in ("alembic", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C
INTERRUPTED_MESSAGE = "interrupted: nothing half-written was registered"
#: How to continue after Ctrl-C, for the commands that can.
CONTINUE_HINTS = {
    "search": "rerun it with --resume to continue",
    "train": "rerun it with --resume to continue",
    "tune": "finished trials are stored; rerun the same tune command to continue the study",
}


def interrupted_message(argv: list[str]) -> str:
    """What Ctrl-C left behind, and how to continue the interrupted command (its first word in ``argv``)."""
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    hint = CONTINUE_HINTS.get(command)
    return f"{INTERRUPTED_MESSAGE}; {hint}" if hint else INTERRUPTED_MESSAGE


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: never a bare traceback unless AUTOML_SEG_DEBUG=1."""
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, prog_name="automl-seg")
    except SystemExit as exc:
        if exc.code == INTERRUPTED:  # typer turns Ctrl-C into a silent exit 130
            err_console.print(interrupted_message(args))
        raise
    except UserError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print(interrupted_message(args))
        sys.exit(INTERRUPTED)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        err_console.print(
            f"[red]error:[/] internal error: {type(exc).__name__}: {escape(str(exc))} "
            f"(rerun with {DEBUG_ENV}=1 for the traceback and report it)",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":
    run()
