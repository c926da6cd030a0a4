"""What readers return: :class:`RunSummary` (one row of ``blase runs``) and :class:`RunDetail`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.track._layout import parse_iso

__all__ = ["RunDetail", "RunSummary"]


def _json_number(v: Any) -> Any:
    # JSON has no NaN/inf: keep them readable as strings rather than emitting invalid JSON.
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


@dataclass
class RunSummary:
    """One run as listed by :func:`~blase.track.list_runs`.

    Attributes
    ----------
    id, name, kind:
        Identity (``kind``: run, pipeline, agent-session, monitor, ...).
    status:
        ``running``, ``finished``, ``failed`` or ``interrupted`` (a writer that died without
        ending its run is reported as interrupted).
    started_at, ended_at:
        ISO-8601 UTC strings (``ended_at`` is ``None`` while running).
    params, metrics, tags:
        Parameters, the latest value of each metric, and tags.
    project:
        Absolute path of the project root.
    parent:
        Id of the parent run, if any.
    damage:
        Problems found while reading the run's files, each naming file and line.
    path:
        The run folder.
    """

    id: str
    name: str
    status: str
    kind: str = "run"
    started_at: str | None = None
    ended_at: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    project: str = ""
    parent: str | None = None
    damage: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (to now while running); ``None`` when unknown."""
        start = parse_iso(self.started_at)
        if start is None:
            return None
        end = parse_iso(self.ended_at)
        if end is None:
            if self.status != "running":
                return None
            import time

            end = time.time()
        return max(0.0, end - start)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (NaN/inf metric values become the strings ``"nan"``, ``"inf"``)."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "kind": self.kind,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": self.duration_s,
            "params": self.params,
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "tags": self.tags,
            "project": self.project,
            "parent": self.parent,
            "path": str(self.path) if self.path is not None else None,
            "damage": list(self.damage),
        }


@dataclass
class RunDetail(RunSummary):
    """Everything recorded about one run, as returned by :func:`~blase.track.load_run`.

    Attributes
    ----------
    metric_history:
        ``name -> [{"step", "value", "time"}, ...]`` in logging order (empty when loaded
        with ``history=False``).
    metric_counts:
        Number of points per metric.
    artifacts:
        ``[{"name", "path", "hash", "size"}, ...]``, the latest record per name.
    events:
        Number of events per kind; ``event_list`` holds the records themselves.
    hashes:
        Data, config, code and environment hashes logged with ``log_hashes``.
    resources:
        Summary of resource samples: samples, peak_rss_bytes, mean_cpu_percent,
        min_available_bytes, min_disk_free_bytes, peak_gpu_mem_bytes.
    error:
        ``{"type", "message", "traceback"}`` for a failed run.
    meta:
        The run's ``meta.json`` (pid, hostname, user, argv, blase version, ...).
    """

    metric_history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    metric_counts: dict[str, int] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    event_list: list[dict[str, Any]] = field(default_factory=list)
    hashes: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data.update(
            metric_history={
                k: [{**p, "value": _json_number(p["value"])} for p in pts]
                for k, pts in self.metric_history.items()
            },
            metric_counts=dict(self.metric_counts),
            artifacts=list(self.artifacts),
            events=dict(self.events),
            event_list=list(self.event_list),
            hashes=dict(self.hashes),
            resources=dict(self.resources),
            error=self.error,
            meta=dict(self.meta),
        )
        return data
