"""Entry point: builds the typer app and turns every failure into one clear line and an exit code."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from rich.logging import RichHandler
from rich.markup import escape
from typer.core import TyperGroup

from automl_seg import __version__
from automl_seg.cli import (
    compare_cmd,
    data_cmd,
    engine_cmd,
    export_cmd,
    plugins_cmd,
    registry_cmd,
    report_cmd,
    tune_cmd,
)
from automl_seg.cli.common import err_console, fit_consoles
from automl_seg.engine.devices import flush_denormals
from automl_seg.engine.launch import LAUNCHED_ENV, FailureKind, failure_kind, in_job, report_failure
from automl_seg.errors import Terminated, UserError

DEBUG_ENV = "AUTOML_SEG_DEBUG"
#: click's UsageError, whichever click typer runs on (its own vendored copy in recent releases); the
#: type checker reads the installed typer's
if TYPE_CHECKING:
    from typer._click.exceptions import UsageError
else:
    UsageError = typer.BadParameter.__mro__[1]


class _OneLineUsageErrors(TyperGroup):
    """The root command group: a usage error (unknown option, bad value, missing argument), of any
    subcommand, becomes a ``UsageProblem``, printed like every other bad input: one ``error:`` line."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with _as_user_error():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with _as_user_error():
            return super().invoke(ctx)


class UsageProblem(UserError):
    """A command line the parser refused."""


@contextmanager
def _as_user_error() -> Iterator[None]:
    try:
        yield
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            raise  # a bare group shows its help
        command = exc.ctx.command_path if exc.ctx is not None else "automl-seg"
        raise UsageProblem(f"{exc.format_message()} (see `{command} --help`)") from None


app = typer.Typer(
    name="automl-seg",
    cls=_OneLineUsageErrors,
    help="AutoML for 3D medical image segmentation: DiNTS search, registry, export, tuning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for _module in (plugins_cmd, data_cmd, engine_cmd, compare_cmd, registry_cmd, export_cmd, tune_cmd, report_cmd):
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
    main_rank = os.environ.get("RANK", "0") == "0"  # in a DDP job rank 0 alone logs
    logging.basicConfig(
        level=(logging.DEBUG if verbose else logging.INFO) if main_rank else logging.ERROR,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)],
        force=True,
    )
    for noisy in ("alembic", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C
TERMINATED = 143  # ... and by SIGTERM
INTERRUPTED_MESSAGE = "interrupted: nothing half-written was registered"
TERMINATED_MESSAGE = "terminated (SIGTERM): nothing half-written was registered"
#: How to continue after Ctrl-C or SIGTERM, for the commands that can.
CONTINUE_HINTS = {
    "search": "rerun it with --resume to continue",
    "train": "rerun it with --resume to continue",
    "tune": "finished trials are stored; rerun the same tune command to continue the study",
    "compare": "finished runs are registered; rerun the same compare command to continue",
}


def interrupted_message(argv: list[str], terminated: bool = False) -> str:
    """What Ctrl-C (or SIGTERM) left behind, and how to continue the command (its first word in ``argv``)."""
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    hint = CONTINUE_HINTS.get(command)
    message = TERMINATED_MESSAGE if terminated else INTERRUPTED_MESSAGE
    return f"{message}; {hint}" if hint else message


def _raise_terminated(_signum: int, _frame: object) -> None:
    raise Terminated


def _exit_terminated(_signum: int, _frame: object) -> None:
    os._exit(TERMINATED)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main thread while the block
    runs; the previous handler comes back after. Elsewhere than the main thread nothing changes.

    A process of a ``--nproc`` job exits at once instead: its agent sends SIGTERM only once the job
    has failed or was interrupted, the launcher reports that, and checkpoints and registry writes
    are atomic (unwinding then only interleaved the agent's signal with the failure's cleanup)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = _exit_terminated if os.environ.get(LAUNCHED_ENV) else _raise_terminated
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _by_sigterm(exc: BaseException | None) -> bool:
    """Whether ``exc`` or an exception it was raised from (typer turns Ctrl-C into exit 130) is a SIGTERM."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Terminated):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _interrupted(args: list[str], exc: BaseException) -> None:
    terminated = _by_sigterm(exc)
    code = TERMINATED if terminated else INTERRUPTED
    line = report_failure(interrupted_message(args, terminated), "interrupted", code)
    if line is not None:
        err_console.print(line)
    sys.exit(code)


def _fail(message: str, kind: FailureKind, code: int) -> None:
    """One ``error:`` line (in a DDP job: as ``automl_seg.engine.launch.report_failure`` decides), exit ``code``."""
    line = report_failure(message, kind, code)
    if line is not None:
        err_console.print(f"[red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point: never a bare traceback unless AUTOML_SEG_DEBUG=1."""
    args = sys.argv[1:] if argv is None else argv
    fit_consoles()
    try:
        with sigterm_as_interrupt():
            app(args=args, prog_name="automl-seg", obj={"argv": list(args)})
    except SystemExit as exc:
        if exc.code == INTERRUPTED:  # typer turns Ctrl-C (and so SIGTERM) into a silent exit 130
            _interrupted(args, exc)
        raise
    except UserError as exc:
        _fail(str(exc), "user", exc.exit_code)
    except KeyboardInterrupt as exc:
        _interrupted(args, exc)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        kind = failure_kind(exc)
        if kind == "peer":
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            message = f"lost another rank of the job (it died or hangs): {first}"
        else:
            hint = f"rerun with {DEBUG_ENV}=1 for the traceback and report it"
            message = f"internal error: {type(exc).__name__}: {exc} ({hint})"
        _fail(message, kind, 1)


def entry(argv: list[str] | None = None) -> None:
    """The ``automl-seg`` program (console script and ``python -m automl_seg``): :func:`run` in a process
    of its own, which may therefore set process-wide state first. Subnormal floats are flushed on every
    thread (``automl_seg.engine.devices.flush_denormals``) before anything starts torch's thread pool;
    callers of :func:`run` in their own process (tests, notebooks) keep their floating-point mode."""
    flush_denormals()
    try:
        run(argv)
    except SystemExit as exc:
        if exc.code in (0, None) and in_job():
            _leave_job_process()
        raise
    if in_job():
        _leave_job_process()


def _leave_job_process() -> None:
    """End a process of a multi-process job that finished cleanly without the interpreter's teardown.

    gloo's worker threads may still be releasing a collective's tensors then (the last broadcast's),
    which needs the GIL, and teardown no longer hands it out: the thread exits mid-destructor and the
    process aborts ("terminate called without an active exception", SIGABRT) with its work done. A
    core dump of a DDP tune worker's rank 1 showed exactly this (about one run in ten). Everything a
    command writes is closed by then; the output streams are flushed here."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    entry()
