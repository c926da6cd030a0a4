"""What the web app shows and does, as JSON-able dicts: the HTTP layer only routes to here.

:class:`Dashboard` reads the same run folders as ``blase runs`` (through :mod:`blase.track`,
which never blocks a writer), compares runs with :func:`blase.diff.diff_runs`, and lists,
promotes and rolls back models through :mod:`blase.deploy`, like ``blase promote`` and
``blase rollback``. Nothing here knows about HTTP but the status code a :class:`UIError` carries.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.project import Project, find_project
from blase.track import AGGREGATES, RunFilter, RunIndex
from blase.ui._events import stream_start
from blase.ui._registry import UserRegistry, remember_project
from blase.ui._views import (
    MAX_COMPARE,
    compare_runs,
    decisions_by_step,
    lineage_graph,
    monitor_rows,
    resource_series,
    thin,
)

__all__ = ["Dashboard", "RunsQuery", "UIError"]

#: Longest text of one event's data shown on a run page.
MAX_EVENT_TEXT = 400


#: Seconds a page may show an index older than this before a request refreshes it itself (the
#: server refreshes it in the background every :data:`REFRESH_EVERY` seconds).
MAX_AGE = 2.0
REFRESH_EVERY = 1.0


class UIError(BlaseError):
    """A request the web app refuses; ``status`` is the HTTP status it answers with."""

    def __init__(self, message: str, *, hint: str | None = None, status: int = 400) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class RunsQuery:
    """The runs table's filter, sort, columns and page.

    ``where`` and ``sort`` read as in ``blase runs`` (``sort`` also takes ``min(NAME)``,
    ``max(NAME)``, ``best(NAME)``); ``project`` is a project's name or folder; ``filters`` are
    the quick filters (:class:`~blase.track.RunFilter`); ``cols`` names the table's columns:
    ``NAME`` or ``NAME:latest|min|max|best`` for a metric, ``params.KEY`` or ``tags.KEY``.
    """

    where: str | None = None
    sort: str | None = None
    project: str | None = None
    filters: RunFilter = field(default_factory=RunFilter)
    cols: list[str] = field(default_factory=list)
    page: int = 1
    per_page: int = 50


class Dashboard:
    """The web app's view of one or several projects.

    Parameters
    ----------
    projects:
        Project folders (or folders inside projects); default: the current project.
    read_only:
        Refuse every change (promote, rollback, answering the assistant) with a :class:`UIError` (403).
    registry:
        The user-level list of projects and saved views: its projects are shown too.
    assistant_llm:
        Makes the chat model a resumed assistant session talks to after an approval (default:
        the provider ``blase.yaml`` names, as ``blase chat`` chooses it).
    """

    def __init__(self, projects: Sequence[Path | str] | None = None, *, read_only: bool = False,
                 registry: UserRegistry | None = None, assistant_llm: Callable[[], Any] | None = None) -> None:
        self.registry = registry
        given = list(projects or [])
        if registry is not None:
            given += [p for p in registry.projects() if p not in given]
        found = [find_project(p) for p in given] if given else [find_project()]
        self.projects: list[Project] = []
        for project in found:
            if project.root not in [p.root for p in self.projects]:
                self.projects.append(project)
        self.read_only = read_only
        self.index = RunIndex(self._roots())
        self.assistant_llm = assistant_llm

    def add_project(self, project: Project) -> None:
        """Show one more project (its runs join the index on its next refresh); registered for
        later ``blase ui`` runs as ``blase create`` registers it."""
        if project.root not in self._roots():
            self.projects.append(project)
            self.index.add_project(project.root)
        remember_project(project.root)

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
        return self.index.load(ref, history=history)

    def _names(self) -> dict[str, str]:
        return {str(p.root): p.name for p in self.projects}

    # ------------------------------------------------------------------ reading

    def info(self) -> dict[str, Any]:
        """The projects shown, whether changes are allowed, and the saved views."""
        return {
            "read_only": self.read_only,
            "projects": [{"name": p.name, "path": str(p.root)} for p in self.projects],
            "views": self.registry.views() if self.registry is not None else {},
        }

    def runs(self, query: RunsQuery) -> dict[str, Any]:
        """One page of the runs table: quick filters, then ``where`` and ``sort`` in DuckDB,
        over the incremental run index (10,000 runs answer in well under a second)."""
        if query.page < 1 or not 1 <= query.per_page <= 1000:
            raise UIError(
                f"page {query.page} of {query.per_page} runs is not a page",
                hint="page counts from 1; per_page is 1 to 1000",
            )
        filters = query.filters
        if query.project:
            filters = replace(filters, projects=[str(self.project(query.project).root)])
        found = self.index.query(query.where or None, query.sort or None, filters, max_age=MAX_AGE)
        start = (query.page - 1) * query.per_page
        names = self._names()
        columns = [_column(c) for c in query.cols]
        rows = []
        for run in found[start : start + query.per_page]:
            row = run.summary.to_json()
            row.pop("damage", None)
            row["project_name"] = names.get(run.summary.project, Path(run.summary.project).name)
            row["cols"] = {label: _cell(run, kind, key, agg) for label, kind, key, agg in columns}
            # an ended run met for the first time: its min/max/best are still being read
            row["stats_pending"] = not run.metrics_offset and bool(run.metrics_size) and run.summary.status != "running"
            rows.append(row)
        keys = self.index.all_keys()
        return {"runs": rows, "total": len(found), "page": query.page, "per_page": query.per_page,
                "metrics": keys["metrics"], "params": keys["params"], "tags": keys["tags"],
                "columns": [c[0] for c in columns], "index": self.index.progress()}

    def run(self, ref: str) -> dict[str, Any]:
        """A run: steps (with the assistant's decisions), params, metrics with thinned history,
        resource series, artifacts, events, and its lineage graph when it is a pipeline run."""
        entry = self.index.get(ref.strip().lower())
        # where a page's event stream starts: the files' ends before they are read (nothing missed)
        start = stream_start(entry.summary.path) if entry is not None else None
        run = self._load(ref, history=True)
        data = run.to_json()
        data["stream_from"] = start or stream_start(run.path)
        data["metric_history"] = {k: thin(v) for k, v in data["metric_history"].items()}
        data["steps"] = steps_of(run.event_list)
        data["event_list"] = [_event_row(e) for e in run.event_list]
        data["project_name"] = Path(run.project).name
        # the page adds streamed samples at their seconds after the first one
        data["resource_series"], data["resource_start"] = resource_series(run.path)
        data["lineage"] = self._lineage(run)
        decisions = self._decisions(run)
        for step in data["steps"]:
            step["decisions"] = decisions.get(step["step"], [])
        for art in data["artifacts"]:
            art["type"] = mimetypes.guess_type(str(art["name"]))[0] or "application/octet-stream"
        return data

    def run_events(self, ref: str, start: str | None, *, stopping: Callable[[], bool]) -> Iterator[bytes]:
        """Server-Sent Events of run ``ref`` from position ``start`` (``"M:L"``, see
        :mod:`blase.ui._events`; ``None``: from now) until the run ends or ``stopping()``."""
        from blase.ui._events import SUMMARY_FILE, RunStream, parse_position

        run = self._load(ref, history=False)
        if run.path is None:
            raise UIError(f"run {run.id} has no folder to stream from", status=404)
        try:
            stream = RunStream(run.path, start if start else None)
            if start:
                parse_position(start)
        except ValueError:
            raise UIError(f"{start!r} is not a stream position", hint="give from=METRICS_BYTES:LOG_BYTES, "
                          "as the run's stream_from says") from None
        run_dir, run_id = run.path, run.id

        def status() -> str:
            try:
                return str(json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8")).get("status") or "ended")
            except (OSError, ValueError, AttributeError):
                pass  # the writer has not ended (or was killed: the index tells from its heartbeat)
            entry = self.index.get(run_id)
            return entry.summary.status if entry is not None and entry.summary.status != "unknown" else "running"

        return stream.messages(status, stopping)

    def _lineage(self, run: Any) -> dict[str, Any] | None:
        from blase.lineage import LineageError, run_lineage

        if not any(e.get("event") == "step_cache" for e in run.event_list):
            return None
        try:
            return lineage_graph(run_lineage(self.project(run.project), run.id))
        except LineageError:
            return None

    def _decisions(self, run: Any) -> dict[str, list[dict[str, Any]]]:
        sid = run.tags.get("agent_session")
        if not sid:
            return {}
        try:
            return decisions_by_step(self._load(sid, history=False), run.id)
        except BlaseError:
            return {}

    def compare_many(self, refs: Sequence[str], metrics: Sequence[str] = ()) -> dict[str, Any]:
        """2 to 10 runs side by side: differing params, latest metrics, overlaid histories and
        parallel-coordinate axes; for two runs of one project also what ``blase diff`` shows."""
        refs = [r for r in dict.fromkeys(refs) if r]
        if not 2 <= len(refs) <= MAX_COMPARE:
            raise UIError(f"{len(refs)} runs given; a compare view shows 2 to {MAX_COMPARE}",
                          hint="tick 2 to 10 runs in the runs table, then 'Compare selected'")
        runs = [self._indexed(r) for r in refs]
        data = compare_runs(runs, self._names(), list(metrics))
        if len(runs) == 2 and runs[0].summary.project == runs[1].summary.project:
            data["diff"] = self.compare(runs[0].id, runs[1].id)
        return data

    def _indexed(self, ref: str) -> Any:
        """The index's entry of run ``ref`` (an id, a unique prefix, a name or ``latest``)."""
        entry = self.index.get(ref.strip().lower())
        if entry is None:
            entry = self.index.get(self._load(ref, history=False).id)
        if entry is None:  # newer than the index's last refresh
            self.index.refresh()
            entry = self.index.get(self._load(ref, history=False).id)
        if entry is None:
            raise UIError(f"run {ref!r} is not in the index", hint="reload the page", status=404)
        return entry

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
                           metrics={v: _version_metrics(model.path / v) for v in row.get("versions", [])},
                           monitor=self.monitor_history(project, model.name))
                out.append(row)
        return {"models": out, "read_only": self.read_only}

    def monitor_history(self, project: Project, model: str) -> list[dict[str, Any]]:
        """The model's finished ``blase monitor`` checks, oldest first: drift share, drift per
        column, current metrics; each check's HTML report is its ``monitor/report.html``."""
        checks = self.index.query(filters=RunFilter(projects=[str(project.root)], kind="monitor", model=model),
                                  max_age=MAX_AGE)
        verdicts = {}
        for check in checks:
            run = self._load(check.id, history=False)
            verdicts[check.id] = next((e.get("data") or {} for e in run.event_list if e.get("event") == "monitor"), {})
        return monitor_rows(checks, verdicts)

    # ------------------------------------------------------------------ the assistant

    def sessions(self) -> dict[str, Any]:
        """The assistant's sessions (chat and ``blase run --autonomy``), newest first, each with
        its runs and the call waiting for a person, if any."""
        names = self._names()
        by_session: dict[tuple[str, str], list[Any]] = {}
        for run in self.index.query(filters=RunFilter(kind="agent-session"), max_age=MAX_AGE):
            s = run.summary
            by_session.setdefault((s.project, str(s.tags.get("session") or s.id)), []).append(s)
        out = []
        for (project, sid), runs in by_session.items():
            first = min(runs, key=lambda r: r.started_at or "")
            out.append({"session": sid, "project": project, "project_name": names.get(project, Path(project).name),
                        "started_at": first.started_at, "autonomy": runs[0].params.get("autonomy"),
                        "model": runs[0].params.get("model"), "runs": [r.id for r in runs],
                        "status": runs[0].status, "autopilot": any(r.tags.get("autopilot") for r in runs),
                        "pending": self._pending(self.project(project), sid)})
        out.sort(key=lambda x: x["started_at"] or "", reverse=True)
        return {"sessions": out, "read_only": self.read_only}

    def session(self, sid: str) -> dict[str, Any]:
        """A session's replay: every event of its runs, oldest first, and the waiting call."""
        def of_session() -> list[Any]:
            return [r for r in self.index.query(filters=RunFilter(kind="agent-session"), max_age=MAX_AGE)
                    if str(r.summary.tags.get("session") or r.id) == sid or r.id == sid]

        runs = of_session()
        if not runs:  # newer than the index's last refresh?
            self.index.refresh()
            runs = of_session()
        if not runs:
            raise UIError(f"no assistant session {sid!r}", hint="the assistant page lists the sessions", status=404)
        project = self.project(runs[0].summary.project)
        events = []
        live = False
        for summary in sorted((r.summary for r in runs), key=lambda x: x.started_at or ""):
            run = self._load(summary.id, history=False)
            events += [{**_event_row(e), "run": run.id} for e in run.event_list]
            live = live or run.status == "running"
        autopilot = any(r.summary.tags.get("autopilot") for r in runs)
        pending = self._pending(project, sid)
        if autopilot and pending is not None:
            from blase.ui._assistant import autopilot_answer

            pending["answered"] = autopilot_answer(project, sid, str(pending.get("call_id") or ""))
        return {"session": sid, "project": str(project.root), "events": events, "autopilot": autopilot,
                "live": live, "pending": pending, "read_only": self.read_only}

    def _pending(self, project: Project, sid: str) -> dict[str, Any] | None:
        from blase.ui._assistant import pending_call

        return pending_call(project, sid)

    def decide(self, sid: str, action: str, *, args: dict[str, Any] | None = None,
               note: str | None = None) -> dict[str, Any]:
        """Approve, reject or edit the call session ``sid`` waits on, through the same gate as
        ``blase chat`` (the decision is recorded as a person's, from ``blase ui``)."""
        from blase.ui._assistant import AnswerConflict, answer_autopilot, decide_pending

        self._allow_change(f"{action} of the assistant's proposal")
        detail = self.session(sid)
        project = self.project(detail["project"])
        if detail["autopilot"]:  # its own process waits: it gets the answer, unless the terminal was first
            try:
                return answer_autopilot(project, sid, action, args=args, note=note)
            except AnswerConflict as exc:
                raise UIError(exc.message, hint=exc.hint, status=409) from None
        return decide_pending(project, sid, action, args=args, note=note, llm=self.assistant_llm)

    # ------------------------------------------------------------------ saved views

    def save_view(self, name: str, query: str) -> dict[str, Any]:
        """Save the runs page's query string as view ``name`` (user-level, see ``UserRegistry``)."""
        self._registry().save_view(name, query)
        return {"views": self._registry().views()}

    def delete_view(self, name: str) -> dict[str, Any]:
        self._registry().delete_view(name)
        return {"views": self._registry().views()}

    def _registry(self) -> UserRegistry:
        if self.registry is None:
            self.registry = UserRegistry()
        return self.registry

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


def _column(spec: str) -> tuple[str, str, str, str]:
    """``(label, kind, key, aggregate)`` of a runs-table column: ``val_loss:min``,
    ``metrics.acc``, ``params.lr``, ``tags.model``."""
    spec = spec.strip()
    name, _, agg = spec.rpartition(":") if ":" in spec else (spec, "", "latest")
    agg = agg or "latest"
    for group in ("params", "tags"):
        if name.startswith(group + "."):
            return spec, group, name.removeprefix(group + "."), "latest"
    if agg not in AGGREGATES:
        raise UIError(f"column {spec!r}: {agg!r} is not one of {', '.join(AGGREGATES)}",
                      hint="write a metric column as NAME or NAME:latest|min|max|best")
    return spec, "metrics", name.removeprefix("metrics."), agg


def _cell(run: Any, kind: str, key: str, agg: str) -> Any:
    if kind == "metrics":
        return run.metric(key, agg)
    return getattr(run.summary, kind).get(key)


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    import json

    data = event.get("data") or {}
    text = json.dumps(data, default=str)
    if len(text) > MAX_EVENT_TEXT:
        text = text[:MAX_EVENT_TEXT] + " ..."
    return {"t": event.get("t"), "event": event.get("event"), "step": data.get("step"), "data": text}


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
    from blase.ui._events import json_objects

    try:
        lines = (folder / "promotions.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return json_objects(lines[-last:])


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError):
        return False
    return True
