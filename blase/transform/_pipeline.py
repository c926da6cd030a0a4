"""`Transform`: a fitted, saved, out-of-core sequence of operations.

Fitting runs the operations in order; operation k learns its statistics (DuckDB aggregates
over Parquet, never the whole data in memory) on the output of operations 0..k-1, written
as a chain of SQL sub-queries. An operation without a SQL form (a user function, log1p)
that has data-fitted operations after it is applied in a streaming pass into a temporary
Parquet folder, and the later ones fit on that.

Applying has two paths that give the same bytes:

* **SQL**: the leading operations that have a SQL form become one DuckDB query, written
  with ``COPY ... TO`` Parquet (multi-threaded, memory-bounded, row order kept). When every
  operation has a SQL form, that is the whole apply pass.
* **Arrow**: the remaining operations run on the query's record batches (Arrow compute and
  numpy), written with a Parquet writer. :meth:`Transform.apply` (one in-memory batch, the
  inference path) uses only this path.
"""

from __future__ import annotations

import glob as globmod
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from blase._duck import connect, row_index_sql, sql_ident, sql_quote
from blase._formats import FORMATS, check_format
from blase._fs import replace_dir, write_json_atomic
from blase.errors import TransformError
from blase.steps import StepResult, measure_step
from blase.transform._base import (
    NotFittedError,
    Operation,
    arrow_reader,
    as_table,
    schema_from_json,
    schema_of,
    schema_to_json,
    unknown_columns_error,
)
from blase.transform._encode import HashEncode, OneHot, Ordinal, _CategoricalEncoder
from blase.transform._numeric import Clip, Impute, Log1p, Scale
from blase.transform._ops import (
    Cast,
    DatetimeParts,
    Drop,
    Filter,
    Rename,
    Select,
    SQLExpr,
)
from blase.transform._plugin import (
    build_plugin_operation,
    plugin_entry,
    plugin_of,
    project_plugin_set,
    replay_plugin_class,
    tag,
)
from blase.transform._user import UserFunction, code_digest, load_reference, reference_of

if TYPE_CHECKING:
    import duckdb

    from blase.config import TransformStep
    from blase.plugins import PluginSet

__all__ = ["OPERATIONS", "ApplyReport", "Transform", "from_step_config"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = FORMATS["transform"].current
STATE_FILE = "transform.json"
#: Built-in operations by the name used in blase.yaml and saved state.
OPERATIONS: dict[str, type[Operation]] = {
    cls.op_name: cls
    for cls in (Select, Drop, Rename, Cast, Filter, Impute, Scale, Clip, Log1p, OneHot, Ordinal,
                HashEncode, DatetimeParts, SQLExpr, UserFunction)
}
#: Output files of the Arrow path roll over after this many rows.
ROWS_PER_FILE = 1 << 20
ENGINES = ("auto", "sql", "arrow")


@dataclass
class ApplyReport:
    """What the last apply saw: rows in and out, and values unseen at fit time."""

    rows_in: int = 0
    rows_out: int = 0
    #: ``{"3:onehot": {"island": 12}}``: rows per column with a category unseen at fit.
    unseen: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add_unseen(self, key: str, counts: dict[str, int]) -> None:
        if counts:
            mine = self.unseen.setdefault(key, {})
            for col, n in counts.items():
                mine[col] = mine.get(col, 0) + int(n)

    def finish(self, ops: Sequence[Operation]) -> None:
        for key, counts in self.unseen.items():
            index = int(key.split(":", 1)[0]) - 1
            op = ops[index]
            for col, n in counts.items():
                if isinstance(op, OneHot):
                    fate = f"sent to {col}_other" if op.other_.get(col) else "encoded as all zeros"
                else:
                    fate = f"coded {getattr(op, 'unknown_value', -1)}"
                self.warnings.append(
                    f"transform step {index + 1} ({op.label}): {n:,} row(s) of column {col!r} had "
                    f"a category never seen at fit time ({fate})"
                )
        for w in self.warnings:
            logger.warning("%s", w)


# --------------------------------------------------------------------------- sources


@dataclass
class _Source:
    relation: str
    files: list[str]
    table: pa.Table | None = None


def _parquet_files(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(source, (list, tuple)):
        return [f for s in source for f in _parquet_files(s)]
    text = os.fspath(source)  # type: ignore[arg-type]
    path = Path(text)
    if any(ch in text for ch in "*?["):
        files = sorted(globmod.glob(text, recursive=True))
    elif path.is_dir():
        files = sorted(
            str(p) for p in path.rglob("*.parquet")
            if not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
    elif path.is_file():
        files = [text]
    else:
        raise TransformError(f"transform input {text!r} does not exist",
                             hint="run the extract step first, or pass a Parquet file or folder")
    if not files:
        raise TransformError(f"transform input {text!r} holds no Parquet files",
                             hint="point it at the folder extract wrote (part-*.parquet)")
    return files


def _open_source(con: duckdb.DuckDBPyConnection, source: Any) -> _Source:
    if isinstance(source, pa.Table) or type(source).__module__.startswith("pandas") or \
            isinstance(source, (pa.RecordBatch, pa.RecordBatchReader)):
        table = as_table(source)
        name = f"_blase_src_{uuid.uuid4().hex[:8]}"
        con.register(name, table)
        return _Source(name, [], table)
    files = _parquet_files(source)
    listed = ", ".join(sql_quote(os.path.abspath(f)) for f in files)
    return _Source(f"read_parquet([{listed}])", files)


def _rows_in_files(files: Sequence[str]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(f).num_rows for f in files)


def _row_bytes(files: Sequence[str]) -> float:
    import pyarrow.parquet as pq

    rows = size = 0
    for f in files[:8]:
        meta = pq.read_metadata(f)
        rows += meta.num_rows
        size += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return size / rows if rows else 64.0


# --------------------------------------------------------------------------- the transform


class Transform:
    """A sequence of operations fitted together, applied the same way at training and
    inference, and saved as JSON.

    Parameters
    ----------
    operations:
        The steps, in order (built-in operations, :class:`UserFunction`, your own
        :class:`Operation` subclasses).
    exclude:
        Columns no operation picks by default (the label, a key); an operation still acts
        on them when it names them in ``columns``. At inference they may be missing.
    project_root:
        The project folder: user files are relative to it and temporary files go to its
        ``.blase/tmp``.
    """

    def __init__(
        self,
        operations: Sequence[Operation],
        exclude: Sequence[str] = (),
        *,
        project_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self.operations = list(operations)
        self.exclude = list(exclude)
        self.project_root = project_root
        self.last_apply_report: ApplyReport | None = None
        self.fit_warnings: list[str] = []
        for i, op in enumerate(self.operations):
            if not isinstance(op, Operation):
                raise TransformError(
                    f"transform step {i + 1} is {type(op).__name__}, not an Operation",
                    hint="wrap plain functions in UserFunction(func)",
                )

    def __repr__(self) -> str:
        return f"Transform({self.operations!r}, exclude={self.exclude!r})"

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "output_schema_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError("the transform is not fitted yet",
                                 hint="call fit(source) or run(source, out_dir), or Transform.load(path)")

    @contextmanager
    def _connection(self, memory: int | str | None) -> Iterator[duckdb.DuckDBPyConnection]:
        tmp = Path(self.project_root) / ".blase" / "tmp" if self.project_root else None
        con = connect(memory, tmp_dir=tmp)
        try:
            yield con
        finally:
            con.close()

    def _scratch(self) -> Path:
        base = Path(self.project_root) / ".blase" / "tmp" if self.project_root else None
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="blase-transform-", dir=base))

    @staticmethod
    def _where(index: int, op: Operation) -> str:
        plugin = plugin_of(op)
        if plugin is not None:
            return f"transform step {index + 1} ({plugin.label})"
        return f"transform step {index + 1} ({op.label})"

    def _wrap(self, index: int, op: Operation, exc: Exception) -> TransformError:
        if isinstance(exc, TransformError):
            return TransformError(f"{self._where(index, op)}: {exc.message}", hint=exc.hint)
        return TransformError(f"{self._where(index, op)}: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------- fit

    def fit(self, source: Any, memory: int | str | None = None) -> Transform:
        """Fit every operation, in order, out-of-core.

        Parameters
        ----------
        source:
            A Parquet file, folder (every ``*.parquet`` under it, sorted) or glob, a list of
            those, or an in-memory ``pa.Table`` / pandas frame.
        memory:
            The memory budget (``"1GB"``; default a share of the free memory).
        """
        scratch: Path | None = None
        notes: list[str] = []
        try:
            with self._connection(memory) as con:
                src = _open_source(con, source)
                relation = src.relation
                schema = schema_of(con, relation)
                self.input_schema_ = schema
                for k, op in enumerate(self.operations):
                    try:
                        op.fit_sql(con, relation, schema, exclude=self.exclude)
                        notes += [f"{self._where(k, op)}: {n}" for n in op.fit_notes()]
                        stage = op.sql(schema)
                        out_schema = op.output_schema(schema)
                    except Exception as exc:
                        raise self._wrap(k, op, exc) from (None if isinstance(exc, TransformError) else exc)
                    later = self.operations[k + 1 :]
                    if stage is not None:
                        relation = stage.over(relation, alias=f"_s{k}")
                    elif any(o.needs_data for o in later):
                        scratch = scratch or self._scratch()
                        folder = scratch / f"step{k + 1}"
                        self._stream(con, relation, k, k + 1, folder, ApplyReport())
                        relation = _open_source(con, folder).relation
                        out_schema = schema_of(con, relation)
                    elif later:
                        # Later operations only look at the schema: give them an empty table.
                        name = f"_blase_empty_{k}"
                        con.register(name, pa.Table.from_batches([], schema=out_schema))
                        relation = name
                    schema = out_schema
                self.output_schema_ = schema
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        self.fit_warnings = notes
        return self

    # ------------------------------------------------------------- apply (one batch)

    def _conform(self, table: pa.Table) -> pa.Table:
        """Give known input columns their fit-time types, so inference matches training.

        A column fitted as integers that now holds fractions (``8.5``) is read as float64
        rather than truncated: every numeric operation works on it, and its values are kept.
        A value that cannot take the fitted type is an error naming the column.
        """
        import pyarrow.compute as pc

        known = self.input_schema_.names
        if all(f.name not in known or f.type == self.input_schema_.field(f.name).type for f in table.schema):
            return table
        columns, fields = [], []
        for f, column in zip(table.schema, table.columns, strict=True):
            if f.name not in known or f.type == self.input_schema_.field(f.name).type:
                columns.append(column)
                fields.append(f)
                continue
            want = self.input_schema_.field(f.name)
            try:
                columns.append(column.cast(want.type))
                fields.append(want)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                if pa.types.is_integer(want.type) and pa.types.is_floating(f.type):
                    columns.append(pc.cast(column, pa.float64()))
                    fields.append(pa.field(f.name, pa.float64(), nullable=want.nullable))
                    continue
                raise TransformError(
                    f"column {f.name!r} is {f.type} here but the transform was fitted on {want.type}: "
                    f"{str(exc).splitlines()[0]}",
                    hint=f"fix or cast the values of {f.name!r} to {want.type} (the type of the training data)",
                ) from None
        return pa.Table.from_arrays(columns, schema=pa.schema(fields))

    def _apply_ops(self, table: pa.Table, start: int, stop: int, report: ApplyReport, *,
                   count_unseen: bool) -> pa.Table:
        for k in range(start, stop):
            op = self.operations[k]
            if any(c not in table.column_names for c in getattr(op, "training_only_", ())):
                continue  # a filter on the label: training rows only, new data has no label
            missing = [c for c in op.required_columns()
                       if c not in table.column_names and c not in self.exclude]
            if missing:
                raise unknown_columns_error(missing, table.column_names, self._where(k, op))
            if count_unseen and isinstance(op, _CategoricalEncoder):
                report.add_unseen(f"{k + 1}:{op.op_name}", op.unseen_counts(table))
            try:
                table = op.apply(table)
            except Exception as exc:
                raise self._wrap(k, op, exc) from (None if isinstance(exc, TransformError) else exc)
        return table

    def apply(self, table: Any) -> pa.Table:
        """Transform one in-memory batch (``pa.Table`` or pandas frame): the inference path.

        Columns named in ``exclude`` (the label) may be missing. Categories unseen at fit
        time are counted in :attr:`last_apply_report` and logged as warnings.
        """
        self._check_fitted()
        table = self._conform(as_table(table))
        report = ApplyReport(rows_in=table.num_rows)
        out = self._apply_ops(table, 0, len(self.operations), report, count_unseen=True)
        out = _cast_present(out, self.output_schema_)
        report.rows_out = out.num_rows
        report.finish(self.operations)
        self.last_apply_report = report
        return out

    # ------------------------------------------------------------- run (a whole dataset)

    def _sql_prefix(self, engine: str) -> int:
        if engine == "arrow":
            return 0
        k = 0
        schema = self.input_schema_
        for op in self.operations:
            if op.sql(schema) is None:
                break
            schema = op.output_schema(schema)
            k += 1
        return k

    def sql(self, relation: str, upto: int | None = None, keep: Sequence[str] = ()) -> str:
        """The SQL of the first ``upto`` operations (default: all, which must have SQL forms)
        over ``relation``, e.g. ``"read_parquet('data/*.parquet')"``.

        ``keep`` names columns of ``relation`` that pass through every operation unchanged
        and come last (a row id the operations must not see)."""
        self._check_fitted()
        schema = self.input_schema_
        for k, op in enumerate(self.operations[: len(self.operations) if upto is None else upto]):
            stage = op.sql(schema)
            if stage is None:
                raise TransformError(f"{self._where(k, op)} has no SQL form",
                                     hint="apply it with Transform.apply or run(engine='arrow')")
            relation = stage.over(relation, alias=f"_s{k}", keep=keep)
            schema = op.output_schema(schema)
        return f"SELECT * FROM {relation} AS _out"

    def _stream(
        self,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        start: int,
        stop: int,
        folder: Path,
        report: ApplyReport,
        *,
        count_unseen: bool = False,
        batch_rows: int = 65_536,
        carry: str | None = None,
    ) -> None:
        """Apply operations ``start..stop-1`` to ``relation``, batch by batch, into
        ``folder/part-*.parquet`` (one schema for all files: the first batch's). ``carry``
        names a column of ``relation`` the operations never see, put back last in each batch
        (the operations keep the rows)."""
        import pyarrow.parquet as pq

        folder.mkdir(parents=True, exist_ok=True)
        reader = arrow_reader(con, f"SELECT * FROM {relation} AS _r", batch_rows)
        writer: pq.ParquetWriter | None = None
        part = rows_in_file = 0
        schema: pa.Schema | None = None
        try:
            for batch in reader:
                table = pa.Table.from_batches([batch])
                carried = table.column(carry) if carry else None
                if carry:
                    table = table.drop_columns([carry])
                out = self._apply_ops(table, start, stop, report, count_unseen=count_unseen)
                if schema is None:
                    done = stop == len(self.operations) and self.is_fitted
                    schema = self.output_schema_ if done else out.schema
                    if carry:
                        schema = schema.append(pa.field(carry, pa.int64()))
                if carry:
                    out = out.append_column(carry, carried)
                out = _cast_present(out, schema)
                if writer is None or rows_in_file >= ROWS_PER_FILE:
                    if writer is not None:
                        writer.close()
                    writer = pq.ParquetWriter(folder / f"part-{part:05d}.parquet", schema)
                    part += 1
                    rows_in_file = 0
                writer.write_table(out)
                rows_in_file += out.num_rows
            if writer is None:  # no rows: still write the (empty) schema
                empty = pa.Table.from_batches([], schema=reader.schema)
                out = self._apply_ops(empty.drop_columns([carry]) if carry else empty, start, stop, report,
                                      count_unseen=False)
                if carry:
                    out = out.append_column(carry, pa.array([], pa.int64()))
                pq.write_table(out, folder / "part-00000.parquet")
        finally:
            if writer is not None:
                writer.close()

    def run(
        self,
        source: Any,
        out_dir: str | os.PathLike[str],
        memory: int | str | None = None,
        fit: bool = True,
        *,
        engine: str = "auto",
        write_data: bool = True,
    ) -> StepResult:
        """The ``transform`` step: fit (unless ``fit=False`` and already fitted), then one
        streaming apply pass writing ``out_dir/part-*.parquet`` and ``out_dir/transform.json``.

        ``engine="auto"`` runs the leading SQL-able operations in DuckDB and the rest on
        Arrow batches; ``"sql"`` is the same but fails if the whole transform is not SQL;
        ``"arrow"`` runs every operation on Arrow batches. All give the same data.
        ``write_data=False`` fits and writes only ``transform.json``: the pipeline's way,
        where :class:`~blase.prepare.Prepare` applies the transform while it writes shards,
        so the wide transformed table never goes to disk.
        ``out_dir`` is replaced as a whole, only once everything is written.
        """
        if engine not in ENGINES:
            raise TransformError(f"engine must be one of {ENGINES}, not {engine!r}")
        out_dir = Path(out_dir)

        from blase.resources import memory_budget

        budget = memory_budget(memory)
        with measure_step() as meter:
            if fit or not self.is_fitted:
                self.fit(source, memory)
            tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
            applied: tuple[int, int] | None = None  # (operations run in SQL, Arrow batch rows)
            try:
                if write_data:
                    files, report, k, batch_rows = self._write_parts(
                        source, tmp, memory, budget, engine=engine, count_unseen=not fit)
                    applied = (k, batch_rows)
                else:
                    files = _parquet_files(source) if isinstance(source, (str, os.PathLike, list, tuple)) else []
                    report = ApplyReport(rows_in=_rows_in_files(files) if files else 0)
                self.save(tmp / STATE_FILE)
                replace_dir(tmp, out_dir)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            parts = sorted(out_dir.glob("part-*.parquet"))
            report.rows_out = _rows_in_files([str(p) for p in parts]) if write_data else report.rows_in
            if write_data:
                report.finish(self.operations)
                self.last_apply_report = report
        return self._result(meter, budget, files, out_dir, parts, report, applied)

    def write(self, source: Any, folder: str | os.PathLike[str], memory: int | str | None = None, *,
              row_index: str | None = None) -> list[Path]:
        """Apply the fitted transform to ``source`` and write ``folder/part-*.parquet`` (a new
        folder; no state file, no step record). Returns the files written.

        ``row_index`` (a column name) also writes each row's position in ``source``'s files,
        file by file, passed through the operations unchanged (as the last column); it is left
        out when an operation applied on Arrow batches may drop or add rows, since rows then
        no longer match positions one to one."""
        from blase.resources import memory_budget

        self._check_fitted()
        folder = Path(folder)
        self._write_parts(source, folder, memory, memory_budget(memory), row_index=row_index)
        return sorted(folder.glob("part-*.parquet"))

    def _write_parts(self, source: Any, folder: Path, memory: int | str | None, budget: int, *,
                     engine: str = "auto", count_unseen: bool = False, row_index: str | None = None,
                     ) -> tuple[list[str], ApplyReport, int, int]:
        """The apply pass into ``folder`` (created): the files read, the report, the number
        of operations run in SQL and the Arrow batch size."""
        import duckdb

        report = ApplyReport()
        with self._connection(memory) as con:
            src = _open_source(con, source)
            files = src.files
            report.rows_in = _rows_in_files(files) if files else src.table.num_rows  # type: ignore[union-attr]
            k = self._sql_prefix(engine)
            if engine == "sql" and k < len(self.operations):
                op = self.operations[k]
                raise TransformError(f"{self._where(k, op)} has no SQL form; use engine='auto'")
            row_bytes = _row_bytes(files) if files else 64.0
            batch_rows = int(min(262_144, max(4_096, budget * 0.02 / max(row_bytes, 1.0))))
            keep: list[str] = []
            relation = src.relation
            if row_index and files and all(op.preserves_rows for op in self.operations[k:]):
                keep = [row_index]
                relation = f"(SELECT *, {row_index_sql(files)} AS {sql_ident(row_index)} FROM {src.relation})"
            query = self.sql(relation, upto=k, keep=keep)
            if count_unseen:
                self._count_unseen_sql(con, src.relation, k, report)
            folder.mkdir(parents=True)
            if k == len(self.operations):
                target = sql_quote(str(folder / "part-00000.parquet"))
                try:
                    con.execute(f"COPY ({query}) TO {target} (FORMAT parquet)")
                except duckdb.Error as exc:
                    raise TransformError(
                        f"transform apply failed: {str(exc).splitlines()[0]}",
                        hint="a cast or SQL expression met a value it cannot handle; "
                        "clean it first or use cast with errors: null",
                    ) from None
            else:
                self._stream(con, f"({query})", k, len(self.operations), folder, report,
                             count_unseen=count_unseen, batch_rows=batch_rows, carry=keep[0] if keep else None)
        return files, report, k, batch_rows

    def _count_unseen_sql(self, con: duckdb.DuckDBPyConnection, relation: str, k: int,
                          report: ApplyReport) -> None:
        """Unseen categories of the encoders on the SQL path (one aggregate query each)."""
        schema = self.input_schema_
        for j, op in enumerate(self.operations[:k]):
            if isinstance(op, _CategoricalEncoder):
                aggs = op.unseen_sql()
                if aggs:
                    row = con.execute(f"SELECT {', '.join(aggs.values())} FROM {relation} AS _c").fetchall()[0]
                    report.add_unseen(f"{j + 1}:{op.op_name}",
                                      {c: int(n) for c, n in zip(aggs, row or (), strict=False) if n})
            relation = op.sql(schema).over(relation, alias=f"_u{j}")  # type: ignore[union-attr]
            schema = op.output_schema(schema)

    def _result(self, meter: Any, budget: int, files: list[str], out_dir: Path, parts: list[Path],
                report: ApplyReport, applied: tuple[int, int] | None) -> StepResult:
        """The step's record; ``applied`` is None when only the state was written."""
        from blase.hashing import hash_file, hash_files

        inputs = {"data": hash_files(files)} if files else {}
        inputs["config"] = _config_digest(self)
        outputs = {"state": hash_file(out_dir / STATE_FILE)}
        details: dict[str, Any] = {
            "state_file": str(out_dir / STATE_FILE),
            "columns_out": list(self.output_schema_.names),
        }
        if applied is None:
            details["data"] = ("not written: prepare applies the transform (Transform.run(write_data=True) "
                               "or `blase restore RUN --step transform` writes it)")
        else:
            k, batch_rows = applied
            n = len(self.operations)
            outputs = {"data": hash_files([str(p) for p in parts], root=out_dir), **outputs}
            details |= {
                "engine": "sql" if k == n else ("arrow" if k == 0 else "sql+arrow"),
                "sql_operations": k,
                "rows_filtered": report.rows_in - report.rows_out,
                "batch_rows": batch_rows,
                "unseen": report.unseen,
            }
        return StepResult(
            step="transform",
            inputs=inputs,
            outputs=outputs,
            rows_in=report.rows_in,
            rows_out=report.rows_out,
            seconds=meter.seconds,
            peak_rss_bytes=meter.peak_rss_bytes,
            memory_budget_bytes=budget,
            warnings=[*self.fit_warnings, *report.warnings],
            details=details,
        )

    # ------------------------------------------------------------- save / load

    def to_json(self) -> dict[str, Any]:
        """The fitted transform as a JSON-able dict (no pickle).

        ``{"version": 1, "exclude": [...], "operations": [{"op", "params", "state"}, ...],
        "input_schema", "output_schema"}``. Entries that run user code also carry ``"ref"``
        (``"scripts/transforms.py:func"`` or ``"module:Class"``), so a model package can
        copy the files it needs; classes add ``"class"`` and ``"code_hash"``.
        """
        self._check_fitted()
        entries = []
        for op in self.operations:
            entry: dict[str, Any] = {"op": op.op_name, "params": op.saved_params(), "state": op.state()}
            plugin = plugin_of(op)
            if isinstance(op, UserFunction):
                entry["ref"] = entry["params"]["func"]
            elif plugin is not None:  # found again by name, never by a path to its code
                entry["plugin"] = plugin_entry(plugin)
            elif type(op) not in OPERATIONS.values():
                entry["op"] = "class"
                entry["class"] = entry["ref"] = reference_of(type(op), self.project_root)
                entry["code_hash"] = code_digest(type(op), self.project_root)
            entries.append(entry)
        return {
            "version": FORMAT_VERSION,
            "exclude": self.exclude,
            "operations": entries,
            "input_schema": schema_to_json(self.input_schema_),
            "output_schema": schema_to_json(self.output_schema_),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` to ``path`` (via a temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, self.to_json(), indent=1)
        return path

    @classmethod
    def from_json(
        cls,
        data: dict[str, Any],
        project_root: str | os.PathLike[str] | None = None,
        *,
        on_code_change: str = "warn",
        source: str = "transform state",
    ) -> Transform:
        """Rebuild a fitted transform from :meth:`to_json` output."""
        if on_code_change not in ("warn", "error", "ignore"):
            raise TransformError(f"on_code_change must be warn, error or ignore, not {on_code_change!r}")
        if check_format("transform", data.get("version"), source) < 1:
            raise TransformError(f"{source}: no format version (not a Blase transform state)",
                                 hint=f"this Blase reads versions 1 to {FORMAT_VERSION}; refit the transform")
        ops: list[Operation] = []
        plugins: PluginSet | None = None
        for i, entry in enumerate(data["operations"]):
            name = entry["op"]
            params = dict(entry.get("params", {}))
            saved_hash = entry.get("code_hash")
            plugin = None
            if "plugin" in entry:
                plugins = plugins or project_plugin_set(project_root)
                op_cls, plugin = replay_plugin_class(entry, plugins, source=source, step=i + 1)
                current = None
            elif name == "class":
                op_cls = load_reference(entry["class"], project_root)
                if not (isinstance(op_cls, type) and issubclass(op_cls, Operation)):
                    raise TransformError(f"{source}: step {i + 1}: {entry['class']!r} is not an Operation")
                current = code_digest(op_cls, project_root)
            elif name in OPERATIONS:
                op_cls = OPERATIONS[name]
                if op_cls is UserFunction:
                    params["project_root"] = project_root
                current = None
            else:
                raise TransformError(f"{source}: step {i + 1}: unknown operation {name!r}")
            op = op_cls.from_state(params, entry.get("state", {}))
            if plugin is not None:
                tag(op, plugin)
            if isinstance(op, UserFunction):
                saved_hash = op.code_hash_
                current = code_digest(op._callable, project_root)
            if saved_hash and current and saved_hash != current and on_code_change != "ignore":
                message = (f"{source}: step {i + 1} ({op.label}): the code changed since the transform "
                           "was fitted, so it may not transform data as it did then")
                if on_code_change == "error":
                    raise TransformError(message, hint="refit the transform (blase run transform)")
                logger.warning("%s", message)
            ops.append(op)
        t = cls(ops, exclude=data.get("exclude", ()), project_root=project_root)
        t.input_schema_ = schema_from_json(data["input_schema"])
        t.output_schema_ = schema_from_json(data["output_schema"])
        return t

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        project_root: str | os.PathLike[str] | None = None,
        *,
        on_code_change: str = "warn",
    ) -> Transform:
        """Load a saved transform (a ``transform.json`` file, or the folder holding one).

        ``on_code_change``: what to do when a user function's or class's code hash differs
        from the one saved at fit time: ``"warn"`` (log a warning), ``"error"`` or ``"ignore"``.
        """
        path = Path(path)
        if path.is_dir():
            path = path / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TransformError(f"no saved transform at {path}", hint="run the transform step first") from None
        except json.JSONDecodeError as exc:
            raise TransformError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_json(data, project_root, on_code_change=on_code_change, source=str(path))


# --------------------------------------------------------------------------- helpers


def _cast_present(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the types of ``schema`` where it has its columns, in ``schema``'s order
    when it has the same columns (new data may hold them in another order than at fit time:
    a label moved to the end, a CSV exported by another tool)."""
    if set(table.column_names) == set(schema.names) and table.column_names != schema.names:
        table = table.select(schema.names)
    fields = [schema.field(n) if n in schema.names else table.schema.field(n) for n in table.column_names]
    target = pa.schema(fields)
    return table if target.equals(table.schema) else table.cast(target)


def _config_digest(t: Transform) -> str:
    from blase.hashing import hash_config

    return hash_config([{"op": op.op_name, "params": _jsonable(op.saved_params() if op.is_fitted
                                                                else op.get_params())}
                        | ({"plugin": [p.name, p.version]} if (p := plugin_of(op)) else {})
                        for op in t.operations] + [{"exclude": t.exclude}])


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, list, dict, type(None))) else repr(v))
            for k, v in params.items()}


# --------------------------------------------------------------------------- config


def from_step_config(
    steps: Sequence[TransformStep],
    project_root: str | os.PathLike[str] | None,
    exclude: Sequence[str] = (),
    *,
    plugins: PluginSet | None = None,
) -> Transform:
    """Build the :class:`Transform` that ``transform:`` in ``blase.yaml`` describes.

    ``plugins``: where ``op:`` names that are not built in are looked up (default: the
    plugins of the project at ``project_root``).
    """
    from blase.config import TransformStep

    step_keys = TransformStep._OP_KEYS  # the keys each op reads: one table, the config's
    ops: list[Operation] = []
    for i, step in enumerate(steps):
        extra = dict(step.params or {})
        if step.call is not None:
            ops.append(UserFunction(step.call, project_root=project_root, params=extra or None))
            continue
        if step.is_plugin:
            plugins = plugins or project_plugin_set(project_root)
            config = os.path.join(project_root, "blase.yaml") if project_root is not None else None
            ops.append(build_plugin_operation(plugins, str(step.op), step.options, index=i, config_path=config))
            continue
        op = step.op
        given = {k: getattr(step, k) for k in step_keys.get(op, ()) if getattr(step, k) is not None}
        try:
            ops.append(OPERATIONS[op](**given, **extra))
        except TypeError as exc:
            raise TransformError(f"transform step {i + 1} ({op}): {exc}",
                                 hint="check the keys of this step (and its params:)") from None
    return Transform(ops, exclude=exclude, project_root=project_root)


