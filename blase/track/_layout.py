"""The on-disk layout of a run folder, shared by the writer and the readers.

``<project>/runs/<run_id>/`` holds:

- ``meta.json``: written once, atomically, when the run starts.
- ``log.jsonl``: append-only records ``{"t": unix_time, "kind": ..., ...}``.
- ``metrics.csv``: append-only lines ``time,step,name,value`` (no header).
- ``resources.csv``: append-only lines of :data:`RESOURCE_COLUMNS` (no header).
- ``heartbeat``: an empty file whose modification time the writer refreshes.
- ``summary.json``: a cache written when the run ends; valid only while the byte sizes of
  ``log.jsonl`` and ``metrics.csv`` it records still match.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from blase import _fs
from blase._formats import FORMATS

META = "meta.json"
#: ``meta.json``'s ``format`` (see :mod:`blase._formats`); a run without one is format 0.
RUN_FORMAT = FORMATS["run"].current
LOG = "log.jsonl"
METRICS = "metrics.csv"
RESOURCES = "resources.csv"
HEARTBEAT = "heartbeat"
SUMMARY = "summary.json"

METRIC_COLUMNS = ("time", "step", "name", "value")
RESOURCE_COLUMNS = (
    "time",
    "cpu_percent",
    "rss_bytes",
    "available_bytes",
    "disk_free_bytes",
    "gpu_mem_bytes",
    "gpu_util",
)
#: Seconds after which a run on another host without a fresh heartbeat counts as interrupted.
STALE_HEARTBEAT_S = 60.0
#: How often the writer refreshes the heartbeat.
HEARTBEAT_EVERY_S = 2.0

RUN_ID_LEN = 12
_RUN_ID_RE = re.compile(r"^[0-9a-f]{12}$")

_ADJECTIVES = (
    "amber", "bold", "brave", "bright", "calm", "clever", "cosmic", "crisp", "eager", "fast",
    "gentle", "golden", "happy", "keen", "lively", "lucky", "mellow", "misty", "noble", "quiet",
    "rapid", "silent", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wild", "wise",
)  # fmt: skip
_NOUNS = (
    "badger", "falcon", "otter", "heron", "lynx", "maple", "comet", "river", "cedar", "fox",
    "owl", "panda", "raven", "tiger", "willow", "ember", "harbor", "meadow", "pine", "wren",
    "bison", "coral", "dune", "finch", "gecko", "lotus", "moth", "quartz", "stork", "yak",
)  # fmt: skip


def new_run_id() -> str:
    """A random 12-character lowercase hex id (48 bits: short prefixes stay unique)."""
    return secrets.token_hex(RUN_ID_LEN // 2)


def is_run_id(text: str) -> bool:
    return bool(_RUN_ID_RE.match(text))


def random_run_name() -> str:
    """A readable name such as ``swift-otter-042``; not unique, only memorable."""
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(1000):03d}"


def iso_utc(t: float) -> str:
    """``t`` (unix seconds) as ISO-8601 UTC with a ``Z``, to the microsecond."""
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str | None) -> float | None:
    """Unix seconds from :func:`iso_utc`'s format (or any ISO-8601 string); ``None`` if unreadable."""
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def hostname() -> str:
    return socket.gethostname()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as a run file's JSON (indent 1, a final newline), atomically."""
    _fs.write_json_atomic(path, data, indent=1, default=str)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def csv_field(text: str) -> str:
    """``text`` as one CSV field (RFC 4180 quoting only when needed)."""
    if any(c in text for c in ',"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def process_alive(pid: int, create_time: float | None) -> bool:
    """Whether process ``pid`` on this host is alive and is the one that started at ``create_time``.

    A zombie counts as dead; a pid reused by another process (different start time) too.
    """
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) <= 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
