"""``Monitor(model).check(data)``: does new data still fit a deployed model?

One check reads the new data once under the memory budget (see :mod:`blase.profile._scan`),
compares the input columns (datetime ones only when ``monitor.include`` names them, see
:func:`_monitored`), the label (when present) and the model's predictions with the
package's reference profile (see :mod:`blase.monitor._drift`), computes the metrics on the
labelled new rows, and recommends retraining with its reasons. Predictions and metrics come
from a sample of up to ``monitor.sample_rows`` rows (all rows when there are fewer; a random
sample otherwise: read from byte ranges of a big plain CSV before the pass, else taken in
the pass); the model loads, and scores a sample read beforehand, while that pass runs (see
:mod:`blase.monitor._score`). Each check is a Track run of kind ``monitor`` whose parent is
the model's run, so the checks of a model form a history; its plots and HTML report are
artifacts.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blase.errors import MonitorError
from blase.monitor._drift import SMALL_REFERENCE, ColumnDrift, column_drift
from blase.monitor._plugin import chosen_tests
from blase.monitor._score import ModelLoader, primary_metric, score_embeddings, score_sample
from blase.monitor._source import estimate_rows, label_as_classes, open_new_data
from blase.profile import (
    NEW_KEY,
    ColumnProfile,
    CurrentColumn,
    ReferenceProfile,
    grouped_counts,
    load_profile,
)
from blase.project import Project, find_project

__all__ = ["Monitor", "MonitorResult", "primary_metric"]

logger = logging.getLogger(__name__)

DEFAULT_METRIC_DROP = 0.05


@dataclass
class MonitorResult:
    """The outcome of one check (``to_json`` is what ``blase monitor --json`` prints)."""

    model: str
    version: str
    data: str
    rows: int
    columns: list[ColumnDrift]
    drift_share: float
    dataset_drift: bool
    drift_threshold: float
    label: ColumnDrift | None = None
    prediction: ColumnDrift | None = None
    #: Embedding drift (MMD of the model's penultimate layer), for models that have one.
    embedding: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reference_metrics: dict[str, Any] = field(default_factory=dict)
    primary_metric: str = "accuracy"
    metric_drop: float | None = None
    sample_rows: int = 0
    retrain: bool = False
    reasons: list[str] = field(default_factory=list)
    triggers: dict[str, float] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run_id: str | None = None
    plots: list[str] = field(default_factory=list)
    report: str | None = None
    seconds: float = 0.0
    peak_rss_bytes: int | None = None

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def verdict(self) -> str:
        """One line: ``retrain recommended``, ``drift found, no retrain trigger fired``
        (columns or predictions drifted below the triggers), or ``the model still fits``."""
        if self.retrain:
            return "retrain recommended"
        if self.drifted_columns or (self.prediction is not None and self.prediction.drifted) or \
                (self.embedding is not None and self.embedding["drifted"]):
            return "drift found, no retrain trigger fired"
        return "the model still fits"

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("columns", "label", "prediction")}
        out["verdict"] = self.verdict
        out["columns"] = [c.to_json() for c in self.columns]
        out["drifted_columns"] = self.drifted_columns
        out["label"] = self.label.to_json() if self.label else None
        out["prediction"] = self.prediction.to_json() if self.prediction else None
        return out


class Monitor:
    """Check new data against a deployed model's reference profile.

    Parameters
    ----------
    model:
        ``"NAME"`` (its current version), ``"NAME@vN"``, a package folder or a
        :class:`~blase.deploy.ModelPackage`.
    project:
        The project (default: the one around the current folder).
    memory:
        Memory budget of the scan (default ``memory:`` of ``blase.yaml``).
    config:
        A :class:`~blase.config.MonitorConfig` (default: ``monitor:`` of ``blase.yaml``).
    bad_rows:
        What to do with malformed CSV rows: ``"error"`` (default), ``"skip"``, ``"quarantine"``.
    plots:
        Draw the PNG plots (and log them to the run).
    track:
        Record the check as a Track run (kind ``monitor``).

    Examples
    --------
    >>> result = Monitor("churn").check("data/new.csv")  # doctest: +SKIP
    >>> result.dataset_drift, result.reasons  # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        *,
        project: Project | str | os.PathLike[str] | None = None,
        memory: int | str | None = None,
        config: Any = None,
        bad_rows: str = "error",
        plots: bool = True,
        track: bool = True,
    ) -> None:
        self.model = model
        self.project = project
        self.memory = memory
        self.config = config
        self.bad_rows = bad_rows
        self.plots = plots
        self.track = track
        self._tests: dict[str, Any] = {}  # monitor.tests' plugins by column kind, set by a check

    def _setup(self) -> tuple[Project, Any, Any, ReferenceProfile, Any]:
        """``(project, package, monitor config, reference profile, memory budget)``; blase.yaml
        is read once, and only for what was not given."""
        from blase.config import MonitorConfig
        from blase.deploy import ModelPackage, resolve_model

        project = self.project if isinstance(self.project, Project) else find_project(self.project)
        package = self.model if isinstance(self.model, ModelPackage) else resolve_model(project, str(self.model))
        config, memory = self.config, self.memory
        if config is None or memory is None:
            try:
                project_config = project.config()
            except Exception:
                project_config = None
                if config is None:
                    logger.warning("could not read monitor: from blase.yaml; using the defaults")
            if config is None:
                config = project_config.monitor if project_config is not None else MonitorConfig()
            if memory is None and project_config is not None:
                memory = project_config.memory
        profile = load_profile(package.path, model=f"model {package.name} {package.version}")
        return project, package, config, profile, memory

    def check(self, data: Any, *, report: str | os.PathLike[str] | None = None) -> MonitorResult:
        """Compare ``data`` (a path, glob, pandas frame or Arrow table) with the reference.

        Parameters
        ----------
        data:
            New raw rows with the model's input columns (the label is optional; with it the
            metrics are computed too).
        report:
            Also write the HTML report (plots embedded) to this file.

        Returns
        -------
        MonitorResult

        Raises
        ------
        MonitorError
            No reference profile, a missing column or a column of another type, unreadable data.
        """
        project, package, config, profile, memory = self._setup()
        if not self.track:
            return self._check(project, package, config, profile, memory, data, report, None)
        from blase.track import Track

        with Track(f"monitor-{package.name}", project=project, parent=package.run_id, kind="monitor",
                   params={"model": package.name, "version": package.version,
                           "data": data if isinstance(data, (str, os.PathLike)) else "in-memory table"},
                   tags={"model": package.name}, sample_resources=False) as track:
            return self._check(project, package, config, profile, memory, data, report, track)

    # -- the check ---------------------------------------------------------------------------

    def _check(self, project: Project, package: Any, config: Any, profile: ReferenceProfile, memory: Any, data: Any,
               report: Any, track: Any) -> MonitorResult:
        from blase.steps import measure_step

        started = time.perf_counter()
        with measure_step() as meter:
            result = self._measure(project, package, config, profile, memory, data)
        result.seconds = time.perf_counter() - started
        result.peak_rss_bytes = meter.peak_rss_bytes
        if track is not None:
            result.run_id = track.run_id
            self._log(track, result)
        if self.plots or report is not None:
            from blase.monitor._report import write_outputs

            folder = project.outputs_dir / "monitor" / (result.run_id or f"check-{int(time.time())}")
            write_outputs(result, profile, self._current_counts, project, folder, report=report)
            if track is not None:
                for p in result.plots:
                    track.log_artifact(p, name=f"monitor/{Path(p).name}")
                if result.report:
                    track.log_artifact(result.report, name="monitor/report.html")
        return result

    def _measure(self, project: Project, package: Any, config: Any, profile: ReferenceProfile, memory: Any,
                 data: Any) -> MonitorResult:
        from blase._duck import connect
        from blase.deploy import DeployError, check_input_schema

        con = connect(memory, tmp_dir=project.tmp_dir)  # one connection reads the schema and scans
        try:
            source, schema, shown, known_rows = open_new_data(data, project, self.bad_rows, con,
                                                                        package.info.get("extract_options"))
            try:
                notes = check_input_schema(package.input_schema, schema, source=shown, label=package.label)
            except DeployError as exc:
                raise MonitorError(exc.message, hint=exc.hint) from None
            found = {f.name: str(f.type) for f in schema}
            refs, chosen = _monitored(profile, config)
            nested = [c for c, t in package.input_schema.items() if c not in profile.columns and c != package.label
                      and t.startswith(("struct<", "list<", "large_list<"))]
            if nested:  # nested JSON: the profile holds flat columns only
                chosen.append(f"not compared: {', '.join(nested)} (nested objects and lists; the prediction "
                              "drift still reflects them)")
            notes = [*notes, *chosen]
            self._tests = chosen_tests(config, self._plugins(project), project.config_path)
            has_label = package.label in found and profile.label is not None
            if has_label:
                refs[package.label] = profile.label
            with ModelLoader(package) as loader:
                counts, sample, values = self._scan(con, project, package, config, source, refs, found, shown,
                                                    known_rows, loader)
                rows = int(sum(next(iter(counts.values())).values())) if counts else int(known_rows or 0)
                complete = sample is not None and sample.num_rows == rows
                result = MonitorResult(
                    model=package.name, version=package.version, data=shown, rows=rows, columns=[],
                    drift_share=0.0, dataset_drift=False, drift_threshold=float(config.drift_threshold),
                    notes=list(notes), sample_rows=sample.num_rows if sample is not None else 0,
                )
                self._compare(result, refs, counts, values, label=package.label, complete=complete)
                if sample is not None and sample.num_rows:
                    score_sample(package, profile, sample, result, loader, complete=complete)
                    score_embeddings(package, sample, loader, result, seed=int(getattr(config, "seed", 0) or 0))
        finally:
            con.close()
        self._recommend(result, config)
        return result

    @staticmethod
    def _plugins(project: Project) -> Any:
        """The project's plugins (installed and its own), or None when blase.yaml is unreadable."""
        from blase.errors import BlaseError

        try:
            return project.plugins()
        except BlaseError as exc:  # a check on a project whose config is broken still runs the built-ins
            logger.warning("could not read plugins: from blase.yaml (%s); only installed plugins are used",
                           exc.message)
            return None

    def _compare(self, result: MonitorResult, refs: dict[str, ColumnProfile], counts: dict[str, Any],
                 values: dict[str, list], *, label: str | None, complete: bool) -> None:
        """Each column's drift (the label's apart) and the share of input columns that drifted."""
        self._current_counts: dict[str, CurrentColumn] = {}
        for col, ref in refs.items():
            cur = _current(col, counts.get(col, {}))
            self._current_counts[col] = cur
            plugin = self._tests.get(ref.kind) if col != label else None
            drift = column_drift(ref, cur, _numeric(values.get(col), ref), current_complete=complete,
                                 unseen_examples=_unseen(ref, values.get(col)), plugin=plugin,
                                 values=values.get(col))
            if col == label:
                result.label = drift
            else:
                result.columns.append(drift)
        n = len(result.columns)
        result.drift_share = sum(c.drifted for c in result.columns) / n if n else 0.0
        result.dataset_drift = n > 0 and result.drift_share >= result.drift_threshold

    def _scan(self, con: Any, project: Project, package: Any, config: Any, source: Any,
              refs: dict[str, ColumnProfile], found: dict[str, str], shown: str, known_rows: int | None,
              loader: ModelLoader) -> tuple[dict[str, Any], Any, dict[str, list]]:
        """One pass over the new data: ``(counts per key of each column, sampled rows, their values)``.

        The model loads while DuckDB scans (``loader`` starts just before the scan, once this
        thread holds no more Python work that would contend for the GIL).
        """
        import duckdb

        from blase._duck import sql_quote
        from blase._sample import byte_range_sample

        if isinstance(source, (str, os.PathLike)) or hasattr(source, "sql_source"):
            relation = source.sql_source(con)
            estimate = known_rows if known_rows is not None else estimate_rows(source)
        else:
            con.register("__blase_new", source)
            relation, estimate = "__blase_new", source.num_rows
        if package.label in refs:
            relation = label_as_classes(relation, package.label, package.classes, found[package.label])
        keys = {}
        for i, (col, ref) in enumerate(refs.items()):
            enum = None
            if ref.kind == "categorical":
                enum = f"__blase_enum_{i}"
                values = ", ".join(sql_quote(str(v)) for v in [*ref.counts, NEW_KEY])
                con.execute(f"CREATE TYPE {enum} AS ENUM ({values})")
            keys[col] = (ref.scan_expr(col), functools.partial(ref.key_expr, enum=enum))
        limit = int(config.sample_rows)
        complete = estimate is not None and estimate <= limit
        fraction = 1.0 if complete else limit / max(estimate or limit * 10, 1)
        condition = "TRUE" if complete else f"random() < {fraction!r}"
        sample_cols = [c for c in package.input_schema if c in found]
        if package.label in found:
            sample_cols.append(package.label)
        # A big plain CSV is sampled from byte ranges (~1 % of it) rather than in the scan
        path = getattr(source, "source", None) if not complete else None
        by_position = (byte_range_sample(con, path, relation, limit, tmp_dir=project.tmp_dir)
                       if isinstance(path, str) else None)
        scored = by_position.select(sample_cols) if by_position is not None else None
        loader.start(scored, source=shown)  # loads the model and scores that sample meanwhile
        try:
            if scored is not None:
                counts = grouped_counts(con, relation, keys)
                counts["__sample__"] = scored
            else:
                counts = grouped_counts(con, relation, keys, sample=condition, sample_columns=sample_cols)
        except duckdb.Error as exc:
            raise MonitorError(
                f"cannot read {shown}: {str(exc).splitlines()[0]}",
                hint="fix the file, or skip malformed rows with --bad-rows skip",
            ) from None
        sample = counts.pop("__sample__", None)
        total = sum(next(iter(counts.values())).values()) if counts else None
        if (sample is not None and scored is None and not complete and total
                and hasattr(source, "sql_source") and sample.num_rows < min(limit, total) // 2):
            # the row estimate was missing or far off (a workbook, a JSON array, a compressed
            # file): the scan's own count says how many rows there are, so sample again with
            # the right fraction rather than judge drift on a tenth of a small file
            from blase._duck import sql_ident

            again = "TRUE" if total <= limit else f"random() < {min(1.0, 1.1 * limit / total)!r}"
            try:
                relation = source.sql_source(con)  # a source readable once is opened again
                if package.label in refs:
                    relation = label_as_classes(relation, package.label, package.classes, found[package.label])
                sample = con.sql(f"SELECT {', '.join(sql_ident(c) for c in sample_cols)} "
                                 f"FROM {relation} WHERE {again}").to_arrow_table()
            except duckdb.Error as exc:
                raise MonitorError(f"cannot read {shown}: {str(exc).splitlines()[0]}",
                                   hint="fix the file, or skip malformed rows with --bad-rows skip") from None
        if sample is not None and sample.num_rows > 2 * limit:
            keep = np.random.default_rng(0).choice(sample.num_rows, limit, replace=False)
            sample = sample.take(np.sort(keep))
        needed = {c: r for c, r in refs.items()
                  if _needs_values(r, counts.get(c, {})) or (r.kind in self._tests and c != package.label)}
        values = _profiled_values(con, sample, needed) if sample is not None else {}
        return counts, sample, values

    @staticmethod
    def _recommend(result: MonitorResult, config: Any) -> None:
        triggers = dict(config.retrain_when) or {"drift_share": float(config.drift_threshold),
                                                 "metric_drop": DEFAULT_METRIC_DROP}
        result.triggers = triggers
        reasons, fired = [], []
        drifted = [c for c in result.columns if c.drifted]
        if "drift_share" in triggers and result.columns and result.drift_share >= triggers["drift_share"]:
            fired.append("drift_share")
            names = ", ".join(c.column for c in drifted[:6]) + (", ..." if len(drifted) > 6 else "")
            reasons.append(f"{len(drifted)} of {len(result.columns)} input columns drifted "
                           f"({result.drift_share:.0%} >= {triggers['drift_share']:.0%}): {names}")
        if "metric_drop" in triggers and result.metric_drop is not None and result.metric_drop >= triggers["metric_drop"]:
            fired.append("metric_drop")
            name = result.primary_metric
            what = "points" if name == "accuracy" else "relative"
            reasons.append(f"{name} went from {result.reference_metrics.get(name):.4g} to "
                           f"{result.metrics.get(name):.4g} on the labelled new rows (drop {result.metric_drop:.3g} "
                           f"{what} >= {triggers['metric_drop']:.3g})")
        if "new_rows" in triggers and result.rows >= triggers["new_rows"]:
            fired.append("new_rows")
            reasons.append(f"{result.rows:,} new rows >= {int(triggers['new_rows']):,}")
        result.fired = fired
        result.retrain = bool(fired)
        pred_drift = result.prediction is not None and result.prediction.drifted
        if not fired and (drifted or pred_drift):
            what = [f"{len(drifted)} of {len(result.columns)} input columns"] if drifted else []
            what += ["the predictions"] if pred_drift else []
            below = (f" (drift share {result.drift_share:.0%} < {triggers['drift_share']:.0%})"
                     if "drift_share" in triggers and drifted else "")
            check = ("the labelled rows show no metric drop" if result.metrics
                     else "without labels the accuracy on this data is unknown: check it on labelled rows")
            reasons.append(f"no retrain trigger fired{below}, but {' and '.join(what)} drifted; {check}")
        elif not fired:
            reasons.append("no retrain trigger fired: the model still fits the data")
        # context that does not trigger by itself
        if result.prediction is not None and result.prediction.drifted:
            reasons.append(f"predictions drifted ({result.prediction.reason()})")
        for c in drifted:
            reasons.append(f"column {c.column!r}: {c.reason()}")
        for c in result.columns:
            if c.unseen_rows and not c.drifted:
                reasons.append(f"column {c.column!r}: {c.reason()}")
        result.reasons = reasons

    @staticmethod
    def _log(track: Any, result: MonitorResult) -> None:
        metrics: dict[str, float] = {
            "rows": result.rows,
            "drift_share": result.drift_share,
            "drifted_columns": len(result.drifted_columns),
            "dataset_drift": int(result.dataset_drift),
            "retrain": int(result.retrain),
            "seconds": result.seconds,
        }
        if result.peak_rss_bytes:
            metrics["peak_rss_bytes"] = result.peak_rss_bytes
        if result.prediction is not None:
            metrics["prediction_drift"] = result.prediction.score
        for name, value in result.metrics.items():
            metrics[f"current.{name}"] = value
        if result.metric_drop is not None:
            metrics["metric_drop"] = result.metric_drop
        for c in result.columns:
            metrics[f"drift.{c.column}"] = c.score
        track.log_metrics(metrics)
        track.log_event("monitor", **result.to_json())


def _monitored(profile: ReferenceProfile, config: Any) -> tuple[dict[str, ColumnProfile], list[str]]:
    """The input columns a check compares, and notes on the choice (the datetime columns it
    leaves out; ``monitor.include`` names that are not datetime columns).

    Every input column but datetime ones (later data always lies beyond the training dates,
    so such a column drifts on every check; Evidently's drift table leaves them out too),
    less ``monitor.ignore``, plus the datetime columns ``monitor.include`` names. Each name
    in either list must be an input column.
    """
    import difflib

    ignore, include = list(config.ignore), list(config.include)
    for key, names in (("ignore", ignore), ("include", include)):
        for name in names:
            if name not in profile.columns:
                close = difflib.get_close_matches(name, list(profile.columns), n=1)
                raise MonitorError(
                    f"monitor.{key} names {name!r}, which is not an input column of the model",
                    hint=f"did you mean {close[0]!r}?" if close
                    else f"the model's input columns are: {', '.join(profile.columns)}",
                )
    kept = {c: p for c, p in profile.columns.items() if c not in ignore and (not p.datetime or c in include)}
    skipped = [c for c, p in profile.columns.items() if p.datetime and c not in ignore and c not in include]
    notes = []
    if skipped:
        notes.append(f"not compared: {', '.join(skipped)} (datetime: later data always lies beyond the "
                     "training dates; monitor.include compares them)")
    needless = [c for c in include if not profile.columns[c].datetime]
    if needless:
        notes.append(f"monitor.include names {', '.join(needless)}, compared anyway: it is for datetime "
                     "columns, which are not compared by default")
    return kept, notes


def _current(col: str, counts: dict[Any, int]) -> CurrentColumn:
    nulls = int(counts.get(None, 0))
    rows = int(sum(counts.values()))
    keys = {(int(k) if isinstance(k, (int, np.integer)) else str(k)): int(v) for k, v in counts.items() if k is not None}
    return CurrentColumn(col, rows, nulls, keys)


def _needs_values(ref: ColumnProfile, counts: dict[Any, int]) -> bool:
    """Whether a column's drift reads the sampled values: the exact KS test of a number
    against a small reference, and the examples of categories the reference never had."""
    if ref.kind == "numeric":
        return ref.non_null <= SMALL_REFERENCE and ref.sample_complete
    return ref.kind == "categorical" and counts.get(NEW_KEY, 0) > 0


def _profiled_values(con: Any, sample: Any, refs: dict[str, ColumnProfile]) -> dict[str, list[Any]]:
    """The sample's values as the reference profiles them (doubles, or text)."""
    from blase._duck import sql_ident

    cols = [c for c in refs if c in sample.column_names]
    if not cols or sample.num_rows == 0:
        return {c: [] for c in cols}
    con.register("__blase_sample", sample)
    exprs = ", ".join(f"{refs[c].value_expr(c)} AS {sql_ident(c)}" for c in cols)
    table = con.sql(f"SELECT {exprs} FROM __blase_sample").to_arrow_table()
    return {c: table[c].drop_null().to_pylist() for c in cols}


def _numeric(values: list[Any] | None, ref: ColumnProfile) -> np.ndarray | None:
    if values is None or ref.kind != "numeric":
        return None
    return np.asarray(values, dtype=np.float64)


def _unseen(ref: ColumnProfile, values: list[Any] | None) -> list[Any]:
    if ref.kind != "categorical" or not values:
        return []
    known = set(ref.counts)
    out: list[Any] = []
    for v in values:
        if v not in known and v not in out:
            out.append(v)
            if len(out) >= 5:
                break
    return out
