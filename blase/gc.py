"""Garbage collection of the store, and pinned runs.

:func:`collect` frees step entries (``.blase/store/steps``), code snapshots and artifacts
(``.blase/store/objects``) that no kept run needs. Kept are: the newest ``keep_last`` runs
(all runs when it is not given), pinned runs (:func:`pin`), running runs, and the runs
behind every deployed model version. With ``max_size`` it then evicts the least recently
used step entries of unprotected runs until the store fits. Objects no run refers to are
left alone (other parts of Blase may own them), and no model version is ever touched: packages
are self-contained, so ``blase predict`` keeps working whatever is collected. Only the staging
folders of deploys whose process died (``models/NAME/.vN.tmp-*``) are removed from ``models/``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from blase._fs import tree_bytes, write_json_atomic
from blase.errors import BlaseError
from blase.project import Project
from blase.resources import pid_alive

__all__ = ["GCReport", "collect", "pin", "pinned", "unpin"]

logger = logging.getLogger(__name__)

PINS = "pins.json"


class GCError(BlaseError):
    """The store cannot be collected, or a pin cannot be set."""


# --------------------------------------------------------------------------- pins


def pinned(project: Project) -> dict[str, dict[str, Any]]:
    """``{run_id: {"pinned_at": unix time}}`` of the project's pinned runs."""
    try:
        data = json.loads((project.state_dir / PINS).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_pins(project: Project, pins: dict[str, Any]) -> None:
    project.state_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(project.state_dir / PINS, pins, indent=1, default=str)


def pin(project: Project, ref: str) -> str:
    """Protect run ``ref`` (and what it needs in the store) from :func:`collect`; returns its id."""
    from blase.track import load_run

    run_id = load_run(ref, [project.root], history=False).id
    pins = pinned(project)
    pins[run_id] = {"pinned_at": time.time()}
    _write_pins(project, pins)
    return run_id


def unpin(project: Project, ref: str) -> str:
    """Remove the pin of run ``ref``; returns its id."""
    from blase.track import load_run

    pins = pinned(project)
    run_id = ref if ref in pins else load_run(ref, [project.root], history=False).id
    if run_id not in pins:
        raise GCError(f"run {run_id} is not pinned", hint="`blase gc --dry-run` lists the pinned runs")
    del pins[run_id]
    _write_pins(project, pins)
    return run_id


# --------------------------------------------------------------------------- collect


@dataclass
class GCReport:
    """What :func:`collect` freed (or, with ``dry_run``, would free)."""

    dry_run: bool
    kept_runs: list[str] = field(default_factory=list)
    protected: dict[str, str] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    temporary: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    store_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _deployed_runs(project: Project) -> dict[str, tuple[str, set[str]]]:
    """``{run_id: ("NAME@vN", step keys)}`` of every deployed model version."""
    from blase.deploy import list_models, load_package

    found: dict[str, tuple[str, set[str]]] = {}
    for model in list_models(project):
        for version in model.versions:
            try:
                package = load_package(model.path / version, verify=False)  # lineage only
            except BlaseError:
                continue
            lineage = package.info.get("lineage") or {}
            keys = {v for k, v in (lineage.get("hashes") or {}).items() if k.startswith("step:") and v}
            if lineage.get("run_id"):
                found[lineage["run_id"]] = (f"{model.name}@{version}", keys)
    return found


def collect(
    project: Project,
    *,
    keep_last: int | None = None,
    max_size: int | str | None = None,
    dry_run: bool = False,
) -> GCReport:
    """Free store entries no kept run needs (see the module docstring).

    Parameters
    ----------
    keep_last:
        Keep what the newest N runs need (default: every run).
    max_size:
        Then evict least recently used step entries of unprotected runs until the store
        is at most this size (``"10GB"`` or bytes).
    dry_run:
        Report what would be freed, free nothing.
    """
    from blase.cache import StepStore
    from blase.resources import parse_size
    from blase.track import ContentStore, list_runs, load_run

    if keep_last is not None and keep_last < 0:
        raise GCError(f"--keep-last must be 0 or more, got {keep_last}", hint="e.g. --keep-last 5")
    limit = parse_size(max_size) if isinstance(max_size, str) else max_size
    report = GCReport(dry_run=dry_run)
    runs = list_runs([project.root])  # newest first
    pins = pinned(project)
    deployed = _deployed_runs(project)
    for run in runs:
        if run.id in pins:
            report.protected[run.id] = "pinned"
        elif run.id in deployed:
            report.protected[run.id] = f"deployed as {deployed[run.id][0]}"
        elif run.status == "running":
            report.protected[run.id] = "running"
    kept = {r.id for r in (runs if keep_last is None else runs[:keep_last])} | set(report.protected)
    report.kept_runs = [r.id for r in runs if r.id in kept]

    need_keys: set[str] = set().union(*(keys for _, keys in deployed.values())) if deployed else set()
    protected_keys = set(need_keys)
    need_objects: set[str] = set()
    dropped_objects: set[str] = set()
    for summary in runs:
        try:
            run = load_run(summary.id, [project.root], history=False)
        except BlaseError:
            kept.add(summary.id)  # unreadable: keep what it may need
            continue
        keys = {(e.get("data") or {}).get("key") for e in run.event_list if e.get("event") == "step_cache"}
        objects = {a.get("hash") for a in run.artifacts}
        for e in run.event_list:
            if e.get("event") == "code_snapshot":
                objects |= set(((e.get("data") or {}).get("files") or {}).values())
        keys.discard(None)
        objects.discard(None)
        if summary.id in kept:
            need_keys |= keys
            need_objects |= objects
            if summary.id in report.protected:
                protected_keys |= keys
        else:
            dropped_objects |= objects

    steps = StepStore(project)
    entries = steps.entries()
    free: list[Any] = [e for e in entries if e.key not in need_keys]
    remaining = [e for e in entries if e.key in need_keys]
    objects = ContentStore(project.store_dir)
    free_objects = sorted(h for h in dropped_objects - need_objects if objects.has(h))
    store_bytes = tree_bytes(project.store_dir)
    if limit is not None:
        left = store_bytes - sum(e.size for e in free) - sum(objects.path_for(h).stat().st_size for h in free_objects)
        for entry in sorted(remaining, key=steps.last_used):
            if left <= limit:
                break
            if entry.key in protected_keys:
                continue
            free.append(entry)
            left -= entry.size
        if left > limit:
            logger.warning("the store is still %d bytes: what is left is needed by pinned or deployed runs", left)
    for entry in free:
        report.entries.append({"key": entry.key, "step": entry.step, "run": entry.run_id, "bytes": entry.size})
        if not dry_run:
            steps.remove(entry.key)
    for digest in free_objects:
        path = objects.path_for(digest)
        size = path.stat().st_size
        report.objects.append({"hash": digest, "bytes": size})
        if not dry_run:
            try:
                path.unlink()
            except OSError as exc:
                logger.warning("could not remove %s: %s", path, exc)
    for path in _temporary(project, steps, kept):
        report.temporary.append(str(path))
        if path.is_dir():
            report.freed_bytes += tree_bytes(path)
            if not dry_run:
                shutil.rmtree(path, ignore_errors=True)
        else:  # a `current` marker a killed promotion left
            report.freed_bytes += path.stat().st_size
            if not dry_run:
                path.unlink(missing_ok=True)
    report.freed_bytes += sum(e["bytes"] for e in report.entries) + sum(o["bytes"] for o in report.objects)
    report.store_bytes = store_bytes - (0 if dry_run else report.freed_bytes)
    logger.info("gc: %d step entries, %d objects, %d bytes%s", len(report.entries), len(report.objects),
                report.freed_bytes, " (dry run)" if dry_run else "")
    return report


def _temporary(project: Project, steps: Any, kept: set[str]) -> list[Any]:
    """Leftovers of stopped runs, and step folders of the old layout of collected runs."""
    from blase.deploy import stale_staging

    found = []
    if steps.root.is_dir():
        for path in steps.root.iterdir():
            if path.name.startswith(".trash-"):
                found.append(path)
            elif path.name.startswith(".tmp-"):
                parts = path.name.split("-")
                if not (len(parts) > 3 and parts[2].isdigit() and pid_alive(int(parts[2]))):
                    found.append(path)
    work = project.state_dir / "work"
    if work.is_dir():
        found += [p for p in work.iterdir() if p.is_dir() and p.name not in kept]
    return found + stale_staging(project.models_dir)
