"""What the web app shows and does, as JSON-able dicts: the HTTP layer only routes to here.

:class:`Dashboard` reads the same run folders as ``blase runs`` (through :mod:`blase.track`,
which never blocks a writer), compares runs with :func:`blase.diff.diff_runs`, and lists,
promotes and rolls back models through :mod:`blase.deploy`, like ``blase promote`` and
``blase rollback``. Nothing here knows about HTTP but the status code a :class:`UIError` carries.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.project import Project, find_project

__all__ = ["Dashboard", "RunsQuery", "UIError"]

#: Points of one metric's history sent to the page (evenly thinned beyond this).
MAX_HISTORY_POINTS = 500
#: Longest text of one event's data shown on a run page.
MAX_EVENT_TEXT = 400


class UIError(BlaseError):
    """A request the web app refuses; ``status`` is the HTTP status it answers with."""

    def __init__(self, message: str, *, hint: str | None = None, status: int = 400) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class RunsQuery:
    """The runs table's filter, sort and page (``where`` and ``sort`` as in ``blase runs``)."""

    where: str | None = None
    sort: str | None = None
    project: str | None = None
    status: str | None = None
    page: int = 1
    per_page: int = 50


class Dashboard:
    """The web app's view of one or several projects.

    Parameters
    ----------
    projects:
        Project folders (or folders inside projects); default: the current project.
    read_only:
        Refuse every change (promote, rollback) with a :class:`UIError` (403).
    """

    def __init__(self, projects: Sequence[Path | str] | None = None, *, read_only: bool = False) -> None:
        found = [find_project(p) for p in projects] if projects else [find_project()]
        self.projects: list[Project] = []
        for project in found:
            if project.root not in [p.root for p in self.projects]:
                self.projects.append(project)
        self.read_only = read_only

    # ------------------------------------------------------------------ lookups

    def project(self, ref: str) -> Project:
        """A project of this dashboard by its folder or its name."""
        for project in self.projects:
            if ref in (str(project.root), project.name):
                return project
        known = ", ".join(f"{p.name} ({p.root})" for p in self.projects)
        raise UIError(f"project {ref!r} is not one this server shows", hint=f"projects: {known}", status=404)

    def _roots(self) -> list[Path]:
        return [p.root for p in self.projects]

    def _load(self, ref: str, *, history: bool) -> Any:
        from blase.track import load_run

        return load_run(ref, self._roots(), history=history)

    # ------------------------------------------------------------------ reading

    def info(self) -> dict[str, Any]:
        """The projects shown and whether changes are allowed."""
        return {
            "read_only": self.read_only,
            "projects": [{"name": p.name, "path": str(p.root)} for p in self.projects],
        }

    def runs(self, query: RunsQuery) -> dict[str, Any]:
        """One page of the runs table, filtered and sorted by DuckDB as ``blase runs`` does."""
        from blase.track import list_runs

        if query.page < 1 or not 1 <= query.per_page <= 1000:
            raise UIError(
                f"page {query.page} of {query.per_page} runs is not a page",
                hint="page counts from 1; per_page is 1 to 1000",
            )
        roots = [self.project(query.project).root] if query.project else self._roots()
        found = list_runs(roots, where=query.where or None, sort=query.sort or None, status=query.status or None)
        start = (query.page - 1) * query.per_page
        shown = found[start : start + query.per_page]
        names = {str(p.root): p.name for p in self.projects}
        rows = []
        for run in shown:
            row = run.to_json()
            row["project_name"] = names.get(run.project, Path(run.project).name)
            rows.append(row)
        return {
            "runs": rows,
            "total": len(found),
            "page": query.page,
            "per_page": query.per_page,
            "metrics": sorted({k for r in found for k in r.metrics}),
            "params": sorted({k for r in found for k in r.params}),
        }

    def run(self, ref: str) -> dict[str, Any]:
        """A run: its steps, params, latest metrics, thinned metric history, artifacts, events."""
        run = self._load(ref, history=True)
        data = run.to_json()
        data["metric_history"] = {k: _thin(v) for k, v in data["metric_history"].items()}
        data["steps"] = steps_of(run.event_list)
        data["event_list"] = [_event_row(e) for e in run.event_list]
        data["project_name"] = Path(run.project).name
        for art in data["artifacts"]:
            art["type"] = mimetypes.guess_type(str(art["name"]))[0] or "application/octet-stream"
        return data

    def compare(self, a: str, b: str) -> dict[str, Any]:
        """What differs between runs ``a`` and ``b`` (``blase diff``), with both runs' names."""
        from blase.diff import diff_runs

        run_a, run_b = self._load(a, history=False), self._load(b, history=False)
        if run_a.project != run_b.project:
            raise UIError(
                f"runs {run_a.id} and {run_b.id} belong to different projects",
                hint="compare two runs of one project (comparing across projects is not there yet)",
            )
        diff = diff_runs(self.project(run_a.project), run_a.id, run_b.id).to_json()
        diff["names"] = {"a": run_a.name, "b": run_b.name}
        return diff

    def models(self) -> dict[str, Any]:
        """Every deployed model of every project: versions, the current one, recent promotions."""
        from blase.deploy import list_models

        out = []
        for project in self.projects:
            for model in list_models(project):
                row = model.to_json()
                row.update(project=str(project.root), project_name=project.name,
                           history=_promotions(model.path),
                           metrics={v: _version_metrics(model.path / v) for v in row.get("versions", [])})
                out.append(row)
        return {"models": out, "read_only": self.read_only}

    def artifact(self, ref: str, name: str) -> tuple[Path, str]:
        """The stored file of artifact ``name`` of run ``ref``, and its media type.

        Only a file the run's record lists is served, read from the project's content store;
        a store object that resolves outside the store (a symlink) is refused.
        """
        from blase.track import ContentStore

        run = self._load(ref, history=False)
        record = next((a for a in run.artifacts if a.get("name") == name), None)
        if record is None or not isinstance(record.get("hash"), str):
            raise UIError(f"run {run.id} has no artifact {name!r}",
                          hint="the run page lists its artifacts", status=404)
        store = ContentStore(self.project(run.project).store_dir)
        path = store.path_for(record["hash"])
        if not _inside(path, store.objects_dir):
            raise UIError(f"artifact {name!r} of run {run.id} points outside the store", status=403)
        if not path.is_file():
            raise UIError(f"artifact {name!r} of run {run.id} is gone from the store",
                          hint="`blase gc` may have collected it", status=404)
        return path.resolve(), mimetypes.guess_type(name)[0] or "application/octet-stream"

    # ------------------------------------------------------------------ changing

    def promote(self, project: str, model: str, version: str) -> dict[str, Any]:
        """Make ``version`` of ``model`` current, as ``blase promote`` does."""
        from blase.deploy import promote

        self._allow_change("promote")
        before = promote(self.project(project), model, version, reason="blase ui")
        return {"model": model, "from": before, "to": version}

    def rollback(self, project: str, model: str, to: str | None = None) -> dict[str, Any]:
        """Move ``model``'s current version back, as ``blase rollback`` does."""
        from blase.deploy import rollback

        self._allow_change("rollback")
        before, after = rollback(self.project(project), model, to=to or None)
        return {"model": model, "from": before, "to": after}

    def _allow_change(self, action: str) -> None:
        if self.read_only:
            raise UIError(f"{action} is refused: this server was started with --read-only",
                          hint="restart `blase ui` without --read-only, or use `blase promote` or "
                          "`blase rollback` in the project", status=403)


def steps_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per pipeline step: status, cached or why it ran, rows, seconds, peak memory."""
    steps: dict[str, dict[str, Any]] = {}
    for event in events:
        data = event.get("data") or {}
        name, kind = data.get("step"), event.get("event")
        if not isinstance(name, str) or kind not in ("step_start", "step_cache", "step", "step_failed", "step_reused"):
            continue
        row = steps.setdefault(name, {"step": name, "status": "running", "cached": False, "reasons": []})
        if kind == "step_cache":
            row.update(cached=bool(data.get("hit")), reasons=list(data.get("reasons") or []),
                       from_run=data.get("from_run"))
        elif kind == "step":
            row["status"] = "done"
            for key in ("rows_in", "rows_out", "rows_rejected", "seconds", "peak_rss_bytes", "warnings"):
                row[key] = data.get(key)
        elif kind == "step_failed":
            row.update(status="failed", error=data.get("error"), seconds=data.get("seconds"))
        elif kind == "step_reused":
            row.update(status="reused", cached=True, from_run=data.get("from_run"))
    return list(steps.values())


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    import json

    data = event.get("data") or {}
    text = json.dumps(data, default=str)
    if len(text) > MAX_EVENT_TEXT:
        text = text[:MAX_EVENT_TEXT] + " ..."
    return {"t": event.get("t"), "event": event.get("event"), "step": data.get("step"), "data": text}


def _thin(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(points) <= MAX_HISTORY_POINTS:
        return points
    stride = len(points) / MAX_HISTORY_POINTS
    kept = [points[int(i * stride)] for i in range(MAX_HISTORY_POINTS - 1)]
    return [*kept, points[-1]]


def _version_metrics(folder: Path) -> dict[str, float]:
    """The headline test metrics a model version's ``package.json`` recorded (unverified: a
    listing, not a load; ``blase predict`` verifies the package)."""
    import json

    from blase.evaluate import HEADLINE_METRICS

    try:
        metrics = json.loads((folder / "package.json").read_text(encoding="utf-8")).get("metrics") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: metrics[k] for k in HEADLINE_METRICS if isinstance(metrics.get(k), (int, float))}


def _promotions(folder: Path, last: int = 10) -> list[dict[str, Any]]:
    import json

    try:
        lines = (folder / "promotions.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines[-last:]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True
