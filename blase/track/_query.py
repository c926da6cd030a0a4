"""Listing, filtering and loading runs across one or several projects.

:func:`list_runs` reads each run's summary (``summary.json`` when still valid, else the logs),
puts one flattened row per run in an in-memory DuckDB table (columns ``id``, ``name``,
``status``, ``kind``, ``started_at``, ``ended_at``, ``duration_s``, ``project``, ``parent``,
``"params.<k>"``, ``"metrics.<k>"``, ``"tags.<k>"``) and runs the user's ``where`` and
``sort`` there. :func:`load_run` finds one run by id, unique id prefix, name or ``latest``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blase.errors import RunNotFoundError, TrackError
from blase.project import find_project
from blase.track import _layout as L
from blase.track._models import RunDetail, RunSummary
from blase.track._reader import detail_run, read_meta, summarize_run

__all__ = ["list_runs", "load_run"]

logger = logging.getLogger(__name__)

_TOP_COLUMNS: dict[str, str] = {
    "id": "VARCHAR",
    "name": "VARCHAR",
    "status": "VARCHAR",
    "kind": "VARCHAR",
    "started_at": "TIMESTAMP",
    "ended_at": "TIMESTAMP",
    "duration_s": "DOUBLE",
    "project": "VARCHAR",
    "parent": "VARCHAR",
}
_GROUPS = ("params", "metrics", "tags")
# Single-quoted strings, double-quoted identifiers, and everything else.
_SEGMENTS = re.compile(r"""('(?:[^']|'')*'?)|("(?:[^"]|"")*"?)|([^'"]+)""")
_KEY_REF = re.compile(r"(?<![\w.])(params|metrics|tags)\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")
_SORT_RE = re.compile(r"^\s*(-)?\s*(.+?)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)

ProjectsArg = Sequence["Path | str"] | None


# ---------------------------------------------------------------------- finding runs


def _roots(projects: ProjectsArg) -> list[Path]:
    if projects is None:
        return [find_project().root]
    if isinstance(projects, (str, os.PathLike)):
        projects = [projects]
    roots: list[Path] = []
    for p in projects:
        root = find_project(p).root
        if root not in roots:
            roots.append(root)
    return roots


def _run_dirs(root: Path) -> list[Path]:
    """Run folders of a project (hidden folders, such as runs being created, are skipped)."""
    return [Path(p) for p in run_paths(root)]


def run_paths(root: Path) -> list[str]:
    """:func:`_run_dirs` as path strings (cheaper to hash: the run index meets them every second)."""
    runs = root / "runs"
    try:
        entries = list(os.scandir(runs))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise TrackError(
            f"cannot read the runs folder {runs}: {exc.strerror or exc}",
            hint=f"check the permissions of {runs}",
        ) from exc
    out = []
    for e in entries:
        if e.name.startswith(".") or not e.is_dir():
            continue
        if L.is_run_id(e.name) or any(os.path.exists(os.path.join(e.path, f)) for f in (L.META, L.LOG)):
            out.append(e.path)
    return out


def _summarize(run_dir: Path, root: Path) -> RunSummary:
    try:
        return summarize_run(run_dir, root)
    except Exception as exc:  # a reader must list what it can, whatever one folder holds
        logger.debug("cannot read run %s", run_dir, exc_info=True)
        return RunSummary(
            id=run_dir.name,
            name=run_dir.name,
            status="unknown",
            project=str(root),
            damage=[f"{run_dir.name}: unreadable ({type(exc).__name__}: {exc})"],
            path=run_dir,
        )


# ---------------------------------------------------------------------- the table


def _column_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOLEAN"
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "DOUBLE"
    return "VARCHAR"


def _cell(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "BOOLEAN":
        return "true" if value else "false"
    if kind == "DOUBLE":
        return float(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _build_table(con: Any, runs: list[RunSummary]) -> dict[str, str]:
    """Load one flattened row per run into table ``runs``; returns column name -> type."""
    columns = dict(_TOP_COLUMNS)
    keys: dict[str, list[Any]] = {}
    for group in _GROUPS:
        names = sorted({k for r in runs for k in getattr(r, group)})
        for k in names:
            keys[f"{group}.{k}"] = [getattr(r, group).get(k) for r in runs]
    for col, values in keys.items():
        columns[col] = "DOUBLE" if col.startswith("metrics.") else _column_type(values)
    with tempfile.TemporaryDirectory(prefix="blase-runs-") as tmp:
        path = Path(tmp) / "runs.csv"
        with open(path, "w", encoding="utf-8", newline="") as f:
            for i, r in enumerate(runs):
                row: list[Any] = [
                    i, r.id, r.name, r.status, r.kind, r.started_at, r.ended_at,
                    r.duration_s, r.project, r.parent,
                ]  # fmt: skip
                row += [_cell(values[i], columns[col]) for col, values in keys.items()]
                f.write(",".join(map(_csv_cell, row)) + "\n")
        spec = ", ".join(
            f"'{c.replace(chr(39), chr(39) * 2)}': '{t}'"
            for c, t in {"_row": "BIGINT", **columns}.items()
        )
        con.execute(
            f"CREATE TABLE runs AS SELECT * FROM read_csv(?, columns={{{spec}}}, header=false, "
            "auto_detect=false, delim=',', quote='\"', escape='\"', allow_quoted_nulls=false)",
            [str(path)],
        )
    return columns


def _csv_cell(value: Any) -> str:
    # Unquoted empty is NULL; strings are always quoted (allow_quoted_nulls=false keeps "").
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return repr(value)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _unknown_key(what: str, key: str, columns: dict[str, str]) -> TrackError:
    close = difflib.get_close_matches(key, list(columns), n=3, cutoff=0.5)
    available = sorted(c for c in columns if c.split(".", 1)[0] in _GROUPS) or ["(none)"]
    shown = ", ".join(available[:40]) + (" ..." if len(available) > 40 else "")
    if key.split(".", 1)[0] in _GROUPS:
        msg = f"unknown key {key!r} in {what}: no listed run has it"
    else:
        msg = f"unknown column {key!r} in {what}: not a metric, param, tag or run column"
    if close:
        msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
    return TrackError(
        msg,
        hint=f"columns: {', '.join(_TOP_COLUMNS)}; keys: {shown}",
    )


def rewrite_where(where: str, columns: dict[str, str]) -> str:
    """Quote ``params.x``/``metrics.x``/``tags.x`` outside string literals; check every key.

    Raises
    ------
    TrackError
        When a key no run has is used, or the expression holds a ``;``.
    """
    out = []
    for single, double, plain in _SEGMENTS.findall(where):
        if single:
            out.append(single)
        elif double:
            ident = (
                double[1:-1].replace('""', '"')
                if double.endswith('"') and len(double) > 1
                else None
            )
            if ident is not None and ident.split(".", 1)[0] in _GROUPS and ident not in columns:
                raise _unknown_key("where", ident, columns)
            out.append(double)
        else:
            if ";" in plain:
                raise TrackError(
                    f"the filter {where!r} holds a ';'",
                    hint="write one condition, e.g. \"metrics.acc > 0.9 and status = 'finished'\"",
                )

            def quote(m: re.Match[str]) -> str:
                key = f"{m.group(1)}.{m.group(2)}"
                if key not in columns:
                    raise _unknown_key("where", key, columns)
                return _ident(key)

            out.append(_KEY_REF.sub(quote, plain))
    return "".join(out)


def resolve_sort(sort: str, columns: dict[str, str]) -> tuple[str, bool]:
    """``(column, descending)`` for ``"acc"``, ``"metrics.acc"``, ``"-acc"`` or ``"acc desc"``.

    A bare name means ``metrics.<name>``, else ``params.<name>``, else a top-level column,
    else ``tags.<name>``.
    """
    m = _SORT_RE.match(sort)
    if m is None or not m.group(2):
        raise TrackError(
            f"cannot read sort key {sort!r}", hint='write e.g. "metrics.acc", "-acc" or "acc desc"'
        )
    minus, key, direction = m.groups()
    key = key.strip().strip('"')
    descending = bool(minus) != (direction is not None and direction.lower() == "desc")
    if key.split(".", 1)[0] in _GROUPS and key in columns:
        return key, descending
    for cand in (f"metrics.{key}", f"params.{key}", key, f"tags.{key}"):
        if cand in columns:
            return cand, descending
    raise _unknown_key("sort", key, columns)


def _query(
    runs: list[RunSummary], where: str | None, sort: str | None, limit: int | None
) -> list[RunSummary]:
    import duckdb

    con = duckdb.connect()
    try:
        columns = _build_table(con, runs)
        # The user's expression runs on this table only: no files, no extensions.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        sql_where = rewrite_where(where, columns) if where and where.strip() else None
        order = resolve_sort(sort, columns) if sort and sort.strip() else None
        rows = select_rows(con, where, sql_where, order, columns, limit)
    finally:
        con.close()
    return [runs[i] for i in rows]


def select_rows(con: Any, where: str | None, sql_where: str | None, order: tuple[str, bool] | None,
                columns: dict[str, str], limit: int | None = None) -> list[int]:
    """The ``_row`` numbers of table ``runs`` that pass ``sql_where``, sorted by ``order``
    (then newest first); a DuckDB error becomes a :class:`TrackError` about ``where``."""
    import duckdb

    sql = "SELECT _row FROM runs"
    if sql_where:
        sql += f" WHERE ({sql_where})"
    keys = [f"{_ident(order[0])} {'DESC' if order[1] else 'ASC'} NULLS LAST"] if order else []
    sql += " ORDER BY " + ", ".join([*keys, "started_at DESC NULLS LAST", "id"])
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    try:
        return [i for (i,) in con.execute(sql).fetchall()]
    except duckdb.Error as exc:
        raise _sql_error(where, exc, columns) from None


def _sql_error(where: str | None, exc: Exception, columns: dict[str, str]) -> TrackError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    m = re.search(r'Referenced column "([^"]+)" not found', str(exc))
    if m:
        return _unknown_key("where", m.group(1), columns)
    return TrackError(
        f"cannot filter runs with {where!r}: {text}",
        hint="write a SQL condition, e.g. \"metrics.acc > 0.9 and params.lr = 0.01 and status = 'finished'\"",
    )


# ---------------------------------------------------------------------- public API


def list_runs(
    projects: Sequence[Path | str] | None = None,
    *,
    where: str | None = None,
    sort: str | None = None,
    limit: int | None = None,
    status: str | None = None,
) -> list[RunSummary]:
    """List runs of one or several projects, newest first.

    Parameters
    ----------
    projects:
        Project folders (or folders inside projects); default: the current project.
    where:
        A SQL condition over the run table, e.g.
        ``"metrics.acc > 0.9 and params.lr = 0.01 and status = 'finished'"``. Columns: ``id``,
        ``name``, ``status``, ``kind``, ``started_at``, ``ended_at``, ``duration_s``,
        ``project``, ``parent`` and ``params.<k>``, ``metrics.<k>`` (latest value), ``tags.<k>``.
    sort:
        ``"acc"``, ``"metrics.acc"``, ``"-acc"`` or ``"acc desc"``; a bare name means a metric,
        then a param, then a column. Default: ``started_at`` descending. Nulls sort last.
    limit:
        At most this many runs (after sorting).
    status:
        Only runs with this status (``running``, ``finished``, ``failed``, ``interrupted``).

    Raises
    ------
    TrackError
        For an unknown key in ``where`` or ``sort`` (with close matches), or a bad condition.
    ProjectError
        When a folder is not inside a project.
    """
    if limit is not None and limit < 0:
        raise TrackError(f"limit {limit} is negative", hint="use a limit of 0 or more")
    runs: list[RunSummary] = []
    for root in _roots(projects):
        runs += [_summarize(d, root) for d in _run_dirs(root)]
    if status is not None:
        runs = [r for r in runs if r.status == status]
    if not runs:
        return []
    if (where and where.strip()) or (sort and sort.strip()):
        return _query(runs, where, sort, limit)
    runs.sort(key=lambda r: (r.started_at or "", r.id), reverse=True)
    return runs if limit is None else runs[:limit]


def load_run(
    ref: str,
    projects: Sequence[Path | str] | None = None,
    *,
    history: bool = True,
) -> RunDetail:
    """Load one run by full id, unique id prefix, exact name, or ``"latest"``/``"last"``.

    Parameters
    ----------
    ref:
        The run to load.
    projects:
        Where to look; default: the current project.
    history:
        Read every metric point into ``metric_history`` (``False``: latest values only).

    Raises
    ------
    RunNotFoundError
        When nothing matches, or a prefix or name matches several runs (they are listed).
    """
    ref = str(ref).strip()
    roots = _roots(projects)
    where = ", ".join(str(r) for r in roots)
    if not ref:
        raise RunNotFoundError("no run id given", hint="list runs with `blase runs`")
    dirs = [(root, d) for root in roots for d in _run_dirs(root)]
    if ref.lower() in ("latest", "last"):
        if not dirs:
            raise RunNotFoundError(
                f"no runs in {where}", hint="start one with `blase run` or Track()"
            )
        root, run_dir = max(dirs, key=lambda rd: (_meta(rd[1]).get("started_at") or "", rd[1].name))
        return detail_run(run_dir, root, history=history)
    lowered = ref.lower()
    matches = [rd for rd in dirs if rd[1].name == lowered]
    if not matches:
        matches = [rd for rd in dirs if rd[1].name.startswith(lowered)]
    if not matches:
        matches = [rd for rd in dirs if _meta(rd[1]).get("name") == ref]
    if not matches:
        raise RunNotFoundError(
            f"no run matches {ref!r} in {where}", hint="list runs and their ids with `blase runs`"
        )
    if len(matches) > 1:
        lines = []
        for _, d in sorted(matches, key=lambda rd: rd[1].name)[:20]:
            meta = _meta(d)
            lines.append(
                f"  {d.name}  {meta.get('name', '?')}  started {meta.get('started_at', '?')}"
            )
        more = f"\n  ... and {len(matches) - 20} more" if len(matches) > 20 else ""
        raise RunNotFoundError(
            f"{ref!r} matches {len(matches)} runs:\n" + "\n".join(lines) + more,
            hint="give more characters of the run id",
        )
    root, run_dir = matches[0]
    return detail_run(run_dir, root, history=history)


def _meta(run_dir: Path) -> dict[str, Any]:
    return read_meta(run_dir, [])
