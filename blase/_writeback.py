"""Writes on a background thread, in order, while the caller computes the next piece."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["WriteBehind"]


class WriteBehind:
    """Runs file writes in submission order on one background thread, so the disk takes
    one batch while the next is computed (encoding Parquet or copying into the page cache
    costs about as much CPU as producing the rows). At most ``depth`` writes wait;
    ``submit`` blocks beyond.

    The first error a write raises is raised again by the next :meth:`submit` or by
    :meth:`drain`; later writes are skipped. Arrays handed over must not change afterwards.
    """

    def __init__(self, depth: int = 2) -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="blase-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, args = item
            try:
                if self._error is None:
                    fn(*args)
            except BaseException as exc:  # handed to the submitting thread
                self._error = exc
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._raise()
        self._queue.put((fn, args))

    def drain(self) -> None:
        """Wait until every submitted write is done; raise the first error, if any."""
        self._queue.join()
        self._raise()

    def close(self) -> None:
        """Finish the pending writes (errors dropped: call :meth:`drain` first to see them)."""
        self._queue.put(None)
        self._thread.join()
