"""Compare two runs: config and params, code, data, environment, metrics and predictions.

:func:`diff_runs` reads both runs' records (params, ``code_snapshot``, ``step_cache`` and
``environment`` events, metrics) and, for two evaluated runs, joins their
``predictions.parquet`` on ``row_id`` to give the share of rows predicted the same.
"""

from __future__ import annotations

import difflib
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.project import Project

__all__ = ["RunDiff", "diff_runs"]

logger = logging.getLogger(__name__)


@dataclass
class RunDiff:
    """What differs between runs ``a`` and ``b`` (each section lists differences only,
    except ``metrics``, which lists every metric of either run with its delta)."""

    a: str
    b: str
    params: dict[str, list[Any]] = field(default_factory=dict)
    run: dict[str, list[Any]] = field(default_factory=dict)
    code: dict[str, str] = field(default_factory=dict)
    config_file: str | None = None
    data: dict[str, list[Any]] = field(default_factory=dict)
    outputs: dict[str, bool] = field(default_factory=dict)
    environment: dict[str, list[Any]] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _events(run: Any, name: str) -> list[dict[str, Any]]:
    return [e.get("data") or {} for e in run.event_list if e.get("event") == name]


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _changed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _text(project: Project, digest: str | None, rel: str, run_id: str) -> list[str] | None:
    from blase.cache import read_snapshot_file

    if digest is None:
        return []
    try:
        return read_snapshot_file(project, digest, rel, run_id).decode("utf-8", "replace").splitlines(keepends=True)
    except BlaseError:
        return None


def _code_diffs(project: Project, a: Any, b: Any, diff: RunDiff) -> None:
    snap_a = next((d.get("files") or {} for d in _events(a, "code_snapshot")), None)
    snap_b = next((d.get("files") or {} for d in _events(b, "code_snapshot")), None)
    if snap_a is None or snap_b is None:
        diff.notes.append("one of the runs has no code snapshot; code is not compared")
        return
    for rel in sorted(set(snap_a) | set(snap_b)):
        ha, hb = snap_a.get(rel), snap_b.get(rel)
        if ha == hb:
            continue
        old, new = _text(project, ha, rel, a.id), _text(project, hb, rel, b.id)
        if old is None or new is None:
            text = f"{rel}: changed (a snapshot was garbage-collected; hashes {str(ha)[:8]} -> {str(hb)[:8]})\n"
        else:
            text = "".join(difflib.unified_diff(old, new, f"a/{rel} ({a.id})", f"b/{rel} ({b.id})"))
        if rel == "blase.yaml":
            diff.config_file = text
        else:
            diff.code[rel] = text


def _step_records(run: Any) -> dict[str, dict[str, Any]]:
    return {d.get("step"): d for d in _events(run, "step_cache")}


def _evaluations(run: Any) -> dict[str, Any]:
    """``{step: Evaluation}`` of the steps of ``run`` whose typed output is an evaluation."""
    from blase.steps import Evaluation, StepOutput, StepOutputError

    found: dict[str, Any] = {}
    for data in _events(run, "step"):
        try:
            output = StepOutput.from_json(data["output"]) if isinstance(data.get("output"), dict) else None
        except StepOutputError:
            continue
        if isinstance(output, Evaluation) and output.predictions:
            found[str(data.get("step"))] = output
    return found


def _predictions(project: Project, run: Any) -> Path | None:
    """The predictions file of ``run``'s evaluation: where the run left it, else in the store."""
    from blase.cache import StepStore

    evaluations = _evaluations(run)
    for output in evaluations.values():
        if output.predictions_file is not None and output.predictions_file.is_file():
            return output.predictions_file
    records = _step_records(run)
    for step, output in evaluations.items():
        entry = StepStore(project).read((records.get(step) or {}).get("key", ""))
        stored = output.at(entry.out_dir).predictions_file if entry is not None else None
        if stored is not None and stored.is_file():
            return stored
    return None


def _agreement(path_a: Path, path_b: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    try:
        n, same, only_a, only_b = con.execute(
            "SELECT count(*) FILTER (WHERE a.row_id IS NOT NULL AND b.row_id IS NOT NULL), "
            "count(*) FILTER (WHERE a.prediction IS NOT DISTINCT FROM b.prediction AND a.row_id IS NOT NULL "
            "AND b.row_id IS NOT NULL), count(*) FILTER (WHERE b.row_id IS NULL), "
            "count(*) FILTER (WHERE a.row_id IS NULL) "
            "FROM read_parquet(?) a FULL OUTER JOIN read_parquet(?) b ON a.row_id = b.row_id",
            [str(path_a), str(path_b)],
        ).fetchone()
    finally:
        con.close()
    return {"rows": n, "same": same, "agreement": (same / n) if n else None, "only_a": only_a, "only_b": only_b}


def diff_runs(project: Project, a: str, b: str) -> RunDiff:
    """Compare runs ``a`` and ``b`` (ids, prefixes, names or ``latest``)."""
    from blase.track import load_run

    run_a, run_b = load_run(a, [project.root], history=False), load_run(b, [project.root], history=False)
    diff = RunDiff(run_a.id, run_b.id)
    params = _changed(run_a.params, run_b.params)
    for key, pair in params.items():
        (diff.run if key.startswith("run.") else diff.params)[key] = pair
    _code_diffs(project, run_a, run_b, diff)

    rec_a, rec_b = _step_records(run_a), _step_records(run_b)
    data_a = {k[5:]: v for r in rec_a.values() for k, v in (r.get("components") or {}).items() if k.startswith("data.")}
    data_b = {k[5:]: v for r in rec_b.values() for k, v in (r.get("components") or {}).items() if k.startswith("data.")}
    diff.data = _changed(data_a, data_b)
    for step in rec_a.keys() & rec_b.keys():
        diff.outputs[step] = rec_a[step].get("output") == rec_b[step].get("output")

    env_a, env_b = {}, {}
    _flat("", next(iter(_events(run_a, "environment")), {}), env_a)
    _flat("", next(iter(_events(run_b, "environment")), {}), env_b)
    diff.environment = _changed(env_a, env_b)

    for name in sorted(set(run_a.metrics) | set(run_b.metrics)):
        va, vb = run_a.metrics.get(name), run_b.metrics.get(name)
        delta = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        if delta is not None and not math.isfinite(delta):
            delta = None
        diff.metrics[name] = {"a": va, "b": vb, "delta": delta}

    pa_, pb_ = _predictions(project, run_a), _predictions(project, run_b)
    if pa_ is not None and pb_ is not None:
        diff.predictions = _agreement(pa_, pb_)
    elif _evaluations(run_a) and _evaluations(run_b):
        diff.notes.append("the predictions of one run are gone; agreement is not computed")
    return diff
