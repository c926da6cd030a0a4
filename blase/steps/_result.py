"""What every pipeline step reports, and how it lands in Track.

Every step returns a :class:`StepResult`: input and output content hashes, row counts (in,
out, rejected; ``rows_in == rows_out + rows_rejected`` for steps that only drop rows), time,
peak memory, free-form ``details`` for people to read, and, when the step ran inside a
pipeline, its typed :attr:`StepResult.output` (a :class:`~blase.steps.StepOutput`), which is
what the steps after it read. :func:`record_step` writes it into a run, so every step of
every run can be queried later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from blase.steps._outputs import StepOutput

__all__ = ["StepMeter", "StepResult", "current_peak_rss", "measure_step", "record_step", "reset_peak_rss"]

logger = logging.getLogger(__name__)


@dataclass
class StepResult:
    """The record of one step's execution."""

    step: str
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    seconds: float = 0.0
    peak_rss_bytes: int | None = None
    memory_budget_bytes: int | None = None
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    #: What the steps after this one read (None for a step run on its own, outside a pipeline).
    output: StepOutput | None = None

    @property
    def cache_hit(self) -> bool:
        """True when the runner did not run the step: its result came from the step store
        (or deploy found a version that already packages it)."""
        cache = self.details.get("cache")
        return isinstance(cache, dict) and bool(cache.get("hit"))

    @property
    def cached_from(self) -> str | None:
        """For a :attr:`cache_hit`: the run that made the result, when recorded."""
        cache = self.details.get("cache")
        if self.cache_hit and cache.get("from_run") is not None:
            return str(cache["from_run"])
        return None

    @property
    def rejects_file(self) -> str | None:
        """Where the step wrote the rows it rejected, if it wrote any (extract's quarantine)."""
        value = self.details.get("rejects_file")
        return str(value) if value else None

    def to_json(self, *, with_root: bool = True) -> dict[str, Any]:
        """The record as JSON; ``with_root`` False leaves out where the output folder is
        (the step store records results that way: an entry does not know where it lies)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "output"}
        data = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
                for k, v in data.items()}
        data["output"] = self.output.to_json(with_root=with_root) if self.output is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], *, root: str | Path | None = None) -> StepResult:
        """A record read back (a run's ``step`` event, a store entry). ``root`` is the output
        folder when the record does not say (store entries); unknown fields are ignored."""
        known = {f.name for f in fields(cls)} - {"output"}
        result = cls(**{k: v for k, v in data.items() if k in known})
        out = data.get("output")
        if isinstance(out, dict):
            result.output = StepOutput.from_json(out, root=root)
        return result


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def current_peak_rss() -> int:
    """Peak resident memory of this process since start or the last :func:`reset_peak_rss`."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass
class StepMeter:
    started: float = 0.0
    seconds: float = 0.0
    peak_rss_bytes: int = 0


@contextmanager
def measure_step() -> Iterator[StepMeter]:
    """Time a block and measure the process's peak RSS inside it."""
    meter = StepMeter(started=time.perf_counter())
    reset_peak_rss()
    try:
        yield meter
    finally:
        meter.seconds = time.perf_counter() - meter.started
        meter.peak_rss_bytes = current_peak_rss()


def record_step(track: Any, result: StepResult) -> None:
    """Write ``result`` into ``track`` (a :class:`blase.track.Track`): one ``step`` event,
    the step's hashes, and its row counts, time and peak memory as metrics."""
    track.log_event("step", **result.to_json())
    hashes = {f"{result.step}.in.{k}": v for k, v in result.inputs.items()}
    hashes |= {f"{result.step}.out.{k}": v for k, v in result.outputs.items()}
    if hashes:
        track.log_hashes(hashes)
    metrics: dict[str, float] = {
        f"{result.step}.rows_in": result.rows_in,
        f"{result.step}.rows_out": result.rows_out,
        f"{result.step}.rows_rejected": result.rows_rejected,
        f"{result.step}.seconds": result.seconds,
    }
    if result.peak_rss_bytes is not None:
        metrics[f"{result.step}.peak_rss_bytes"] = result.peak_rss_bytes
    track.log_metrics(metrics)
    for warning in result.warnings:
        track.log_event("warning", step=result.step, message=warning)
    logger.info("%s: %d rows in, %d out, %d rejected in %.2fs", result.step, result.rows_in,
                result.rows_out, result.rows_rejected, result.seconds)
