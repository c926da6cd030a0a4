"""Server-Sent Events of a live run: its new metric points, resource samples, log records and
status as written.

``GET /api/runs/ID/events`` answers ``text/event-stream``. :class:`RunStream` keeps three byte
offsets, in ``metrics.csv``, ``log.jsonl`` and ``resources.csv``, and on each poll reads what
the writer appended since, up to the last complete line (a writer may be mid-line), never
taking a lock the writer waits on. Each message carries an ``id``
(``METRICS_OFFSET:LOG_OFFSET:RESOURCES_OFFSET``), so a browser that reconnects
(``Last-Event-ID``) goes on where it stopped; the run page passes ``?from=`` with the offsets
its own read started from. A two-offset position (``M:L``, before resource samples were
streamed) streams the samples written from now on. Messages:

- ``metrics``: ``{"points": [{"name", "step", "value", "time"}, ...]}``
- ``resources``: ``{"samples": [{"time", "cpu_percent", "rss_bytes", "available_bytes",
  "disk_free_bytes", "gpu_mem_bytes", "gpu_util"}, ...]}``, what Track's resource sampler
  recorded (``null`` where it had no reading, such as GPU memory without a GPU)
- ``log``: ``{"records": [...]}``, the ``log.jsonl`` records (``event``, ``param``, ``tag``,
  ``artifact``, ``status`` ...) as :class:`blase.track.Track` wrote them
- ``end``: ``{"status": ...}`` once the run has ended (then the stream closes)

A comment line every :data:`KEEPALIVE` seconds keeps proxies from closing a quiet stream.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "KEEPALIVE",
    "POLL",
    "RESOURCES_FILE",
    "SUMMARY_FILE",
    "RunStream",
    "finite",
    "json_objects",
    "parse_position",
    "resource_samples",
    "sse_message",
    "stream_start",
]

#: A run folder's logs (as :class:`blase.track.Track` names them).
METRICS_FILE = "metrics.csv"
LOG_FILE = "log.jsonl"
RESOURCES_FILE = "resources.csv"
#: The columns of a ``resources.csv`` line (Track's resource samples), in order.
RESOURCE_FIELDS = ("time", "cpu_percent", "rss_bytes", "available_bytes", "disk_free_bytes", "gpu_mem_bytes", "gpu_util")
_RESOURCE_INTS = frozenset({"rss_bytes", "available_bytes", "disk_free_bytes", "gpu_mem_bytes"})
SUMMARY_FILE = "summary.json"  # written when the run's writer ends
#: Seconds between two looks at the run's files.
POLL = 0.25
#: Seconds of silence before a keep-alive comment.
KEEPALIVE = 15.0
#: Most bytes read from one file per poll (a long backlog goes out over several messages).
MAX_READ = 4 << 20


def sse_message(event: str, data: Any, event_id: str | None = None) -> bytes:
    """One SSE message (``data`` as one line of JSON; NaN and inf as strings)."""
    text = json.dumps(finite(data), default=str, separators=(",", ":"))
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {text}\n\n".encode()


class RunStream:
    """New lines of one run's ``metrics.csv``, ``resources.csv`` and ``log.jsonl`` since a position.

    Parameters
    ----------
    run_dir:
        The run's folder.
    position:
        ``"METRICS_OFFSET:LOG_OFFSET:RESOURCES_OFFSET"`` to start from (``"M:L"``: resource
        samples from now on); ``None``: the files' current ends (only what is written from now on).
    """

    def __init__(self, run_dir: Path, position: str | None = None) -> None:
        self.run_dir = run_dir
        if position is None:
            position = stream_start(run_dir)
        self.metrics_offset, self.log_offset, resources = parse_position(position)
        self.resources_offset = _size(run_dir / RESOURCES_FILE) if resources is None else resources

    @property
    def position(self) -> str:
        return f"{self.metrics_offset}:{self.log_offset}:{self.resources_offset}"

    def poll(self) -> list[tuple[str, dict[str, Any]]]:
        """What was written since the last poll, as ``(event, data)`` messages."""
        out: list[tuple[str, dict[str, Any]]] = []
        data, self.metrics_offset = _complete_lines(self.run_dir / METRICS_FILE, self.metrics_offset)
        points = _points(data)
        if points:
            out.append(("metrics", {"points": points}))
        data, self.resources_offset = _complete_lines(self.run_dir / RESOURCES_FILE, self.resources_offset)
        samples = resource_samples(data)
        if samples:
            out.append(("resources", {"samples": samples}))
        data, self.log_offset = _complete_lines(self.run_dir / LOG_FILE, self.log_offset)
        records = _records(data)
        if records:
            out.append(("log", {"records": records}))
        return out

    def messages(self, status: Callable[[], str], stopping: Callable[[], bool], *,
                 poll: float = POLL, keepalive: float = KEEPALIVE) -> Iterator[bytes]:
        """SSE messages until the run ends (``status()`` is no longer ``running``; the last
        lines are sent first) or ``stopping()`` says the server closes."""
        quiet_since = time.monotonic()
        yield b"retry: 2000\n\n"  # a dropped connection: the browser asks again after 2 s
        while not stopping():
            state = status()  # read before the files: lines written before the end are all sent
            sent = False
            for event, data in self.poll():
                yield sse_message(event, data, self.position)
                sent = True
            if state != "running":
                yield sse_message("end", {"status": state}, self.position)
                return
            now = time.monotonic()
            if sent:
                quiet_since = now
            elif now - quiet_since >= keepalive:
                yield b": keep-alive\n\n"
                quiet_since = now
            time.sleep(poll)


def parse_position(text: str) -> tuple[int, int, int | None]:
    """``"M:L:R"`` -> ``(M, L, R)``, ``"M:L"`` -> ``(M, L, None)``; raises ValueError for anything else."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3):
        raise ValueError(text)
    offsets = [int(p) for p in parts]
    if any(o < 0 for o in offsets):
        raise ValueError(text)
    return offsets[0], offsets[1], offsets[2] if len(offsets) == 3 else None


def stream_start(run_dir: Path | None) -> str:
    """The position of a run's files now (``"M:L:R"``): a page that reads the run after this
    and streams from here misses nothing (it may see a point or a sample twice, which it drops
    by time)."""
    if run_dir is None:
        return "0:0:0"
    return f"{_size(run_dir / METRICS_FILE)}:{_size(run_dir / LOG_FILE)}:{_size(run_dir / RESOURCES_FILE)}"


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _complete_lines(path: Path, offset: int) -> tuple[bytes, int]:
    """The complete lines of ``path`` after ``offset`` (at most :data:`MAX_READ` bytes), and
    the offset after them."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(MAX_READ)
    except OSError:
        return b"", offset
    cut = data.rfind(b"\n") + 1
    return data[:cut], offset + cut


def _points(data: bytes) -> list[dict[str, Any]]:
    points = []
    for row in csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline="")):
        if len(row) != 4:
            continue  # a damaged line: the run page's damage list names it
        try:
            points.append({"name": row[2], "step": int(row[1]) if row[1] else None, "value": float(row[3]),
                           "time": float(row[0])})
        except ValueError:
            continue
    return points


def resource_samples(data: bytes) -> list[dict[str, Any]]:
    """The complete ``resources.csv`` lines in ``data`` as dicts of :data:`RESOURCE_FIELDS`
    (an empty cell is ``None``); a damaged line is skipped (the run page's damage list names it)."""
    samples = []
    for row in csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline="")):
        if len(row) != len(RESOURCE_FIELDS):
            continue
        try:
            sample = {k: (int(float(v)) if k in _RESOURCE_INTS else float(v)) if v else None
                      for k, v in zip(RESOURCE_FIELDS, row, strict=True)}
        except ValueError:
            continue
        if sample["time"] is not None:
            samples.append(sample)
    return samples


def _records(data: bytes) -> list[dict[str, Any]]:
    return json_objects(data.split(b"\n"))


def json_objects(lines: Iterable[bytes | str]) -> list[dict[str, Any]]:
    """The lines that hold a JSON object, parsed (blank, damaged and other lines skipped)."""
    records = []
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def finite(value: Any) -> Any:
    """``value`` with NaN and inf (a diverged loss) as strings: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value
