"""Rich progress bars with ETA for long engine work, on stderr so stdout stays clean for --json."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def progress_bar(enabled: bool, *, show_loss: bool = False) -> Progress:
    """A bar with elapsed time and ETA (plus a ``loss`` field for training); silent when disabled."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if show_loss:
        columns.append(TextColumn("loss {task.fields[loss]:.4f}"))
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)
