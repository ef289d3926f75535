"""The one progress-bar factory: rich bars with elapsed time and ETA, on stderr so that stdout stays
clean for ``--json``. ``track`` wraps a loop in such a bar."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")


def progress_bar(enabled: bool, *, show_loss: bool = False) -> Progress:
    """A bar with elapsed time and ETA (plus a ``loss`` field for training); silent when disabled."""
    columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if show_loss:
        columns.append(TextColumn("loss {task.fields[loss]:.4f}"))
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*columns, console=Console(stderr=True), disable=not enabled)


def track(items: Iterable[T], description: str, total: int, enabled: bool = True) -> Iterator[T]:
    """Yield ``items`` while a ``progress_bar`` counts them (shown only when ``enabled``)."""
    with progress_bar(enabled) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
