"""The pipeline builder of ``blase ui``: the project's steps as forms, previews, save, run.

Everything goes through the engine's own API, as the CLI does: forms come from the pydantic
models of ``blase.yaml`` (:mod:`blase.config`) and of the operation plugins, checking is
``blase check`` (:func:`blase.checks.check_project`) run on the text about to be written,
the data preview is :meth:`blase.extract.Extract.preview`, the schema suggestion
:func:`blase.schema.suggest_schema`, the preview after an operation fits and applies the
transform (:func:`blase.transform.from_step_config`, DuckDB) on a capped sample, saving keeps
the user's comments (:mod:`blase.ui._yamledit`) and is atomic (:func:`blase._fs.write_text_atomic`),
"run from here" is :class:`blase.pipeline.Pipeline` (:mod:`blase.ui._runjobs`), and "new
project" is :func:`blase.scaffold.create_project`.

Every path a request names stays inside its project (:func:`blase.config.check_confined`).
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import TYPE_CHECKING, Any

from blase.config import (
    DataConfig,
    ProjectConfig,
    check_confined,
    config_from_dict,
    config_from_text,
)
from blase.errors import BlaseError, ConfigError
from blase.project import Project
from blase.ui._api import UIError
from blase.ui._forms import operation_forms, section_forms, step_forms
from blase.ui._runjobs import RunJobs
from blase.ui._yamledit import load_document, render, unified_diff, without_origins

if TYPE_CHECKING:
    from blase.ui._api import Dashboard

__all__ = ["PREVIEW_ROWS", "SAMPLE_KINDS", "SAMPLE_ROWS", "SAMPLE_SEED", "Builder"]

#: Rows the previews read and the transform preview fits and applies on: a seeded random sample
#: of the whole source (or, on request, its first rows).
SAMPLE_ROWS = 2000
#: The seed of that sample: the same rows on every preview of the same files.
SAMPLE_SEED = 0
#: What a preview may read: ``sample`` (random rows of the whole source) or ``first`` (the first rows).
SAMPLE_KINDS = ("sample", "first")
#: Rows a preview shows.
PREVIEW_ROWS = 20
#: Samples kept between previews (a few sources at most are being edited at once).
MAX_SAMPLES = 4


class Builder:
    """The builder's requests over the projects of a :class:`~blase.ui.Dashboard`."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.jobs = RunJobs()
        #: The last samples read, by source, ``data:`` settings and file stamps: the page asks
        #: for a preview after every edit, and reading (sniffing a CSV) is most of its time.
        self._samples: dict[str, Any] = {}

    # ------------------------------------------------------------------ routing

    def get(self, route: str, params: dict[str, str]) -> dict[str, Any]:
        """``GET /api/builder/<route>``."""
        if route == "state":
            return self.state(self._project(params))
        if route == "job":
            return self.jobs.status(_text(params, "id"))
        raise UIError(f"no page /api/builder/{route}", status=404)

    def post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /api/builder/<route>`` (the server has checked the token)."""
        if route == "new":
            return self.new_project(_text(body, "name"), example=bool(body.get("example", True)))
        if route == "stop":
            self._allow("stop a run")
            return self.jobs.stop(_text(body, "id"))
        project = self._project(body)
        actions: dict[str, Any] = {
            "check": lambda: self.check(project, _doc(body)),
            "diff": lambda: self.diff(project, _doc(body)),
            "save": lambda: self.save(project, _doc(body), _text(body, "base")),
            "source": lambda: self.preview_source(project, _text(body, "source"), body.get("data"),
                                                  rows=_rows(body)),
            "suggest": lambda: self.suggest(project, _text(body, "source"), body.get("label")),
            "preview": lambda: self.preview_transform(project, _doc(body), _index(body, "upto"), rows=_rows(body)),
            "run": lambda: self.run(project, _text(body, "from_step")),
        }
        if route not in actions:
            raise UIError(f"no action /api/builder/{route}", status=404)
        return actions[route]()

    def _project(self, data: dict[str, Any]) -> Project:
        ref = data.get("project")
        if not ref:
            return self.dashboard.projects[0]
        return self.dashboard.project(str(ref))

    # ------------------------------------------------------------------ reading

    def state(self, project: Project) -> dict[str, Any]:
        """The file, its data, the steps with their form schemas, the operations, the checks."""
        text = project.config_path.read_text(encoding="utf-8")
        doc = load_document(text, origins=True)
        return {
            "project": {"name": project.name, "path": str(project.root)},
            "text": text,
            "base": _digest(text),
            "doc": doc,
            "steps": step_forms(project, doc),
            "sections": section_forms(),
            "data_files": _data_files(project),
            "operations": operation_forms(project),
            "read_only": self.dashboard.read_only,
            "sample_rows": SAMPLE_ROWS,
            **self._checked(project, text),
        }

    def check(self, project: Project, doc: dict[str, Any]) -> dict[str, Any]:
        """What ``blase check`` says about ``doc`` written into the project's blase.yaml."""
        text = render(project.config_path.read_text(encoding="utf-8"), doc)
        return self._checked(project, text)

    def _checked(self, project: Project, text: str) -> dict[str, Any]:
        from blase.checks import check_project

        try:
            # what the page brings in stays inside the project (what blase.yaml says is trusted)
            check_confined(config_from_text(text), project.root, base=_saved(project), file="blase ui")
            result = check_project(project, text)
        except ConfigError as exc:
            return {"valid": False, "warnings": [], "hint": exc.hint,
                    "problems": [{"key": p.key, "line": p.line, "message": p.message} for p in exc.problems]}
        except BlaseError as exc:
            return {"valid": False, "warnings": [], "hint": exc.hint,
                    "problems": [{"key": "", "line": None, "message": exc.message}]}
        return {"valid": True, "problems": [], "warnings": result.warnings, "hint": None}

    def diff(self, project: Project, doc: dict[str, Any]) -> dict[str, Any]:
        """The unified diff saving ``doc`` would make, with the check of the result."""
        before = project.config_path.read_text(encoding="utf-8")
        after = render(before, doc)
        return {"diff": unified_diff(before, after), "text": after, "base": _digest(before),
                **self._checked(project, after)}

    # ------------------------------------------------------------------ previews

    def preview_source(self, project: Project, source: str, data: Any = None, *, rows: str = "sample") -> dict[str, Any]:
        """Rows and the schema of ``source`` (read with the ``data:`` settings given): from the
        seeded random sample of the whole source, or its first rows (``rows="first"``)."""
        settings = dict(data) if isinstance(data, dict) else {}
        config = self._confined(project, {**settings, "source": source})
        with _reads(project):
            sample, about = self._sample(project, config.data, rows)
        return _table_json(sample) | {"source": source, "sample": about}

    def suggest(self, project: Project, source: str, label: Any = None) -> dict[str, Any]:
        """``blase schema SOURCE``: each column's kind and suggested operations, as transform entries."""
        from blase.schema import suggest_schema

        config = self._confined(project, {"source": source})
        path = project.root / str(config.data.source)
        with _reads(project):
            report = suggest_schema(str(path), label=str(label) if label else None)
        data = report.to_json()
        return {"columns": data["columns"], "label": data["label"], "label_candidates": data["label_candidates"][:5],
                "warnings": data["warnings"], "transform": report.to_transform_config(), "rows": data["rows"]}

    def preview_transform(self, project: Project, doc: dict[str, Any], upto: int, *,
                          rows: str = "sample") -> dict[str, Any]:
        """The data after transform operations 0..``upto`` of ``doc``, fitted and applied on
        :data:`SAMPLE_ROWS` rows of the source (a seeded random sample of all of it, or its first
        rows with ``rows="first"``; DuckDB), with the first rows of the result shown."""
        from blase.transform import from_step_config

        config = config_from_dict(without_origins(doc), file="blase.yaml (unsaved)")
        if not 0 <= upto < len(config.transform):
            raise UIError(f"transform has {len(config.transform)} operations; there is no operation {upto}",
                          hint="operations are numbered from 0")
        saved = _saved(project)
        check_confined(config, project.root, base=saved, file="blase ui")
        started = time.perf_counter()
        with _reads(project, saved):
            sample, about = self._sample(project, config.data, rows)
            exclude = [c for c in (config.data.label, config.data.key) if c]
            transform = from_step_config(config.transform[: upto + 1], project.root, exclude=exclude)
            transform.fit(sample)
            out = transform.apply(sample)
        return _table_json(out) | {
            "upto": upto, "rows_in": sample.num_rows, "rows_out": out.num_rows,
            "seconds": round(time.perf_counter() - started, 3), "notes": transform.fit_warnings, "sample": about,
        }

    def _sample(self, project: Project, data: DataConfig, rows: str = "sample") -> tuple[Any, dict[str, Any]]:
        """:data:`SAMPLE_ROWS` rows of the source as ``blase run`` reads them (a seeded random
        sample of all of it, or its first rows), and what they are (``kind``, ``rows``, ``seed``,
        ``of_about``: the source's rows when they can be told cheaply); read again only when the
        ``data:`` settings or the files' sizes or times change."""
        import json

        from blase._sample import data_files, estimate_rows
        from blase.extract import Extract

        source = project.root / str(data.source)
        try:
            files = data_files(source)
            stamps = [(str(f), os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files] or None
        except (OSError, BlaseError):
            files, stamps = [], None  # not plain files (a table in a database file, a plugin's source): no reuse
        key = json.dumps([str(project.root), data.model_dump(mode="json"), stamps, rows], default=str)
        if stamps is None or key not in self._samples:
            extract = Extract.from_config(data, project)
            table = extract.preview(SAMPLE_ROWS) if rows == "first" else extract.sample(SAMPLE_ROWS, seed=SAMPLE_SEED)
            try:
                total = estimate_rows(files) if files else None
            except (OSError, ValueError):
                total = None
            method = (table.schema.metadata or {}).get(b"blase.sample", b"").decode()
            # fewer rows than asked for from a reservoir or the first rows: the source is that small
            kind = rows if table.num_rows >= SAMPLE_ROWS or method == "blocks" else "all"
            about = {"kind": kind, "rows": table.num_rows, "method": method or None, "seed": SAMPLE_SEED if kind == "sample" else None,
                     "of_about": total}
            if stamps is None:
                return table, about
            while len(self._samples) >= MAX_SAMPLES:
                self._samples.pop(next(iter(self._samples)))
            self._samples[key] = (table, about)
        return self._samples[key]

    def _confined(self, project: Project, data: dict[str, Any]) -> ProjectConfig:
        """A config of the project with ``data`` as its ``data:``, refused when it names a
        file outside the project (unless the saved blase.yaml names it: the user's choice)."""
        config = config_from_dict({"project": project.name, "data": without_origins(data)}, file="blase ui")
        check_confined(config, project.root, base=_saved(project), file="blase ui")
        return config

    # ------------------------------------------------------------------ changes

    def save(self, project: Project, doc: dict[str, Any], base: str) -> dict[str, Any]:
        """Write ``doc`` into blase.yaml (comments and key order kept), atomically, when it
        passes ``blase check`` and the file has not changed since ``base`` (its digest)."""
        from blase._fs import write_text_atomic

        self._allow("save blase.yaml")
        before = project.config_path.read_text(encoding="utf-8")
        if _digest(before) != base:
            raise UIError("blase.yaml changed on disk since the builder loaded it; nothing was written",
                          hint="reload the builder page to see the file as it is now", status=409)
        after = render(before, doc)
        checked = self._checked(project, after)
        if not checked["valid"]:
            shown = "; ".join(p["message"] for p in checked["problems"][:3])
            raise UIError(f"blase.yaml was not saved: {shown}", hint="fix the problems shown in the form, then save")
        write_text_atomic(project.config_path, after)
        return {"saved": True, "diff": unified_diff(before, after), "base": _digest(after), **checked}

    def run(self, project: Project, from_step: str) -> dict[str, Any]:
        """Start the saved pipeline from ``from_step`` in the background (see :class:`RunJobs`)."""
        self._allow("run")
        return self.jobs.start(project, from_step)

    def new_project(self, name: str, *, example: bool = True) -> dict[str, Any]:
        """``blase create NAME`` beside the first project shown; the new project is shown too."""
        from blase.project import find_project
        from blase.scaffold import create_project

        self._allow("new project")
        if "/" in name or "\\" in name or name in (".", ".."):
            raise UIError(f"project name {name!r} is a path; the builder makes a project beside the others",
                          hint="give a plain name like churn (or use `blase create PATH` in a terminal)", status=403)
        parent = self.dashboard.projects[0].root.parent
        made = find_project(create_project(parent / name, example=example).root)
        self.dashboard.add_project(made)
        return {"name": made.name, "path": str(made.root)}

    def _allow(self, action: str) -> None:
        if self.dashboard.read_only:
            raise UIError(f"{action} is refused: this server was started with --read-only",
                          hint="restart `blase ui` without --read-only, or edit blase.yaml and use `blase run` "
                          "in the project", status=403)


# ---------------------------------------------------------------------- helpers


#: File name endings offered as data sources.
DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".json", ".ndjson", ".jsonl", ".arrow", ".feather", ".sqlite",
                 ".sqlite3", ".db", ".duckdb")


def _data_files(project: Project, limit: int = 200) -> list[str]:
    """Data files under the project's ``data/`` (relative to the project), to pick a source from."""
    found = []
    for path in sorted(project.data_dir.rglob("*")) if project.data_dir.is_dir() else []:
        if path.is_file() and path.suffix.lower() in DATA_SUFFIXES:
            found.append(project.relative(path))
            if len(found) >= limit:
                break
    return found


def _reads(project: Project, saved: ProjectConfig | None = None) -> Any:
    """The page's reads stay in the project (and the source the saved blase.yaml, ``saved``
    when already read, names), even through a file in it that names others (a DuckDB view):
    :func:`blase.config.confined_reads`."""
    from blase.config import confined_reads

    return confined_reads(project.root, saved if saved is not None else _saved(project))


def _saved(project: Project) -> ProjectConfig | None:
    """The config on disk (what the user wrote is trusted), or None when it does not load."""
    try:
        return config_from_text(project.config_path.read_text(encoding="utf-8"))
    except (BlaseError, OSError):
        return None


def _table_json(table: Any) -> dict[str, Any]:
    shown = table.slice(0, PREVIEW_ROWS)
    return {"columns": [{"name": f.name, "type": str(f.type)} for f in table.schema],
            "rows": [list(r.values()) for r in shown.to_pylist()]}


def _rows(body: dict[str, Any]) -> str:
    """Which rows a preview reads: ``sample`` (the default) or ``first``."""
    rows = body.get("rows") or "sample"
    if rows not in SAMPLE_KINDS:
        raise UIError(f"rows {rows!r} is not one of {', '.join(SAMPLE_KINDS)}",
                      hint="send rows: sample (a random sample of the whole source) or rows: first")
    return str(rows)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise UIError(f"the request needs {key!r}", hint=f"give {key} as a string")
    return value


def _doc(data: dict[str, Any]) -> dict[str, Any]:
    doc = data.get("doc")
    if not isinstance(doc, dict):
        raise UIError("the request needs 'doc', blase.yaml as a JSON object", hint='send {"doc": {"project": ...}}')
    return doc


def _index(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise UIError(f"the request needs {key!r} as a whole number", hint="operations are numbered from 0")
    return value
