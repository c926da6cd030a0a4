"""Progress bars for long steps (rich), silent when output is not a terminal.

``with progress("extract", total=n_bytes, unit="B") as bar: bar.advance(k)`` shows rows/s or
bytes/s and an ETA on stderr. Set ``BLASE_PROGRESS=0`` to turn bars off, ``=1`` to force them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Bar", "progress"]


class Bar:
    """A handle to advance; a no-op when bars are off."""

    def __init__(self, progress: Any = None, task: Any = None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def update(self, **fields: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, **fields)


def _enabled() -> bool:
    flag = os.environ.get("BLASE_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "")
    return sys.stderr.isatty()


@contextmanager
def progress(description: str, *, total: float | None = None, unit: str = "rows") -> Iterator[Bar]:
    """A progress bar for one step; ``unit`` is ``"rows"`` or ``"B"`` (bytes)."""
    if not _enabled():
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.text import Text

    class RowRate(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:,.0f} rows/s" if task.speed else "", style="cyan")

    columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn()]
    if unit == "B":
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns += [MofNCompleteColumn(), RowRate()]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield Bar(bar, task)
