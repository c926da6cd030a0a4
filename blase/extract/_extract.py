"""The Extract step: a source streamed as Arrow record batches under a memory budget."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blase._duck import confinement_error, connect, sql_ident
from blase._fs import atomic_path, disk_guard
from blase.cloud import is_remote
from blase.errors import BlaseError, ExtractError
from blase.extract._badrows import (
    RejectTables,
    first_reject,
    reject_error,
    rejected_rows,
    write_rejects,
)
from blase.extract._csv import (
    CSVPlan,
    csv_headers,
    long_line_error,
    plan_csv,
    read_csv_sql,
    with_dtypes,
)
from blase.extract._options import (
    ArrowOptions,
    CSVOptions,
    JSONOptions,
    ParquetOptions,
    PluginOptions,
    PostgresOptions,
    SourceOptions,
    TableOptions,
    options_for,
)
from blase.extract._parts import (
    PARTITIONED_FORMATS,
    Part,
    exact_batches,
    oversized_file,
    plan_parts,
    stream_parts,
)
from blase.extract._plugin import PluginStream, SourceReader, collection_root, load_reader_class
from blase.extract._readers import file_columns, register, source_expr, sqlite_count
from blase.extract._sources import (
    FORMATS,
    ResolvedSource,
    check_same_columns,
    close_match,
    display_path,
    first_row,
    resolve_source,
    source_label,
)
from blase.extract._write import write_parts
from blase.progress import Bar, progress
from blase.project import Project
from blase.resources import format_size, memory_budget
from blase.steps import StepResult, measure_step

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from blase.config import DataConfig
    from blase.executor import RayExecutor
    from blase.plugins import Plugin, PluginSet

__all__ = ["Extract", "ExtractStats"]

logger = logging.getLogger(__name__)

#: Arrow bytes per record batch: a share of the budget, within these bounds.
BATCH_BYTES_MIN = 1 << 20
BATCH_BYTES_MAX = 32 << 20
#: DuckDB's vector size; batch sizes are multiples of it.
VECTOR_ROWS = 2048

_OPTIONS_FORMAT: dict[type, str] = {
    CSVOptions: "csv",
    ParquetOptions: "parquet",
    JSONOptions: "json",
    ArrowOptions: "arrow",
    PostgresOptions: "postgres",
}
_TYPE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\([0-9, ]+\))?(\[\])?$")


@dataclass
class ExtractStats:
    """Row counts of the last complete pass of :meth:`Extract.batches`.

    ``rows_in == rows_out + rows_rejected`` always holds.
    """

    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    rejects_path: Path | None = None
    batch_rows: int = 0
    warnings: list[str] = field(default_factory=list)


def _as_project(project: Project | str | os.PathLike[str] | None) -> Project | None:
    if project is None or isinstance(project, Project):
        return project
    return Project(Path(project).resolve())


class Extract:
    """Read a source as a stream of Arrow record batches, under a memory budget.

    Parameters
    ----------
    source:
        A file (``.csv``, ``.tsv``, ``.csv.gz``, ``.csv.zst``, ``.parquet``, ``.json``,
        ``.ndjson``/``.jsonl``, ``.arrow``/``.feather``/``.ipc``), a folder of data files, a
        glob (``data/*.csv``), ``'file.sqlite:table'``, ``'file.duckdb:table'``, or a Postgres
        connection string (with :class:`PostgresOptions`). Relative paths start at the
        project folder (or the current folder without a project).
    options:
        How to read it (:class:`CSVOptions`, :class:`ParquetOptions`, :class:`JSONOptions`,
        :class:`ArrowOptions`, :class:`TableOptions`, :class:`PostgresOptions`); defaults
        follow from the file extension. CSV reads ``""``, ``NA``, ``N/A``, ``null`` and
        ``NaN`` as null by default (``CSVOptions(null_values=[...])`` changes that).
    format:
        Forces a format instead of guessing it from the extension.
    project:
        A :class:`~blase.project.Project` or its root folder: relative paths, the DuckDB
        spill folder and the default rejects file (``outputs/rejects/``) are placed in it.

    Notes
    -----
    The constructor only stores its arguments; files are looked at on first use. Every
    read goes through DuckDB with ``memory_limit`` set from the budget and insertion
    order preserved, so batches come in file order.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        options: SourceOptions | None = None,
        *,
        format: str | None = None,
        project: Project | str | os.PathLike[str] | None = None,
    ) -> None:
        self.source = os.fspath(source)
        self.options = options
        self.format = format
        self.project = _as_project(project)
        self.stats: ExtractStats | None = None
        self._resolved: ResolvedSource | None = None
        self._opts: Any = None
        self._csv_plan: CSVPlan | None = None
        self._raw_columns: list[str] | None = None
        self._checked = False
        #: A source plugin's manifest and reader, once resolved; the errors that ended its streams.
        self._plugin: tuple[Plugin, SourceReader] | None = None
        self._plugin_failures: list[BlaseError] = []
        #: blase.yaml, when built from it (a plugin's options errors name its lines).
        self._config_path: Path | None = None
        #: A row range of a one-file Parquet source (an executor's partition), or None: all rows.
        self._rows: tuple[int, int] | None = None
        #: Where the last stream was read: "local", or the executor's name; in how many tasks.
        self._ran_on = "local"
        self._tasks = 0

    def __repr__(self) -> str:
        return f"Extract({self.source!r}, {self.options!r})"

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(
        cls, data: DataConfig, project: Project | str | os.PathLike[str] | None
    ) -> Extract:
        """The Extract described by the ``data:`` section of ``blase.yaml``.

        Maps ``source``, ``format``, ``delimiter``, ``null_values``, ``dtypes``,
        ``bad_rows`` and ``max_line_size``; relative paths start at the project root.
        """
        if not data.source:
            raise ExtractError(
                "data.source is not set in blase.yaml",
                hint="set data.source to a file, folder or glob, e.g. data/train.csv",
            )
        proj = _as_project(project)
        fmt = None if data.format == "auto" else data.format
        if fmt is None:
            fmt = cls(data.source, format=None, project=proj).resolved_source().format
        extract = cls(data.source, options_for(fmt, data), format=fmt, project=proj)
        extract._config_path = proj.config_path if proj else None
        return extract

    @classmethod
    def like_training(
        cls,
        source: str | os.PathLike[str],
        recorded: dict[str, Any] | None,
        options: SourceOptions | None = None,
        *,
        project: Project | str | os.PathLike[str] | None = None,
    ) -> Extract:
        """New data read as the training data was: when it is in a source plugin's format and
        the model package recorded that plugin's options (``extract_options``: the sheet, the
        header row), they apply again. Otherwise it is ``Extract(source, options)``."""
        recorded = dict(recorded or {})
        named = recorded.pop("format", None)  # the plugin data.format named (nested_json for .ndjson files)
        extract = cls(source, options, format=named if options is None else None, project=project)
        plugin_options = isinstance(recorded.get("options"), dict) and "batch_rows" in recorded
        if options is None and plugin_options and extract.resolved_source().format not in FORMATS:
            return cls(source, PluginOptions(**recorded), format=named, project=project)
        return extract

    # ------------------------------------------------------------------ resolution

    @property
    def _base_dir(self) -> Path:
        return self.project.root if self.project else Path.cwd()

    def _resolve(self) -> ResolvedSource:
        if self._resolved is not None:
            return self._resolved
        opts = self.options
        fmt = self.format
        if opts is not None and fmt is None:
            fmt = _OPTIONS_FORMAT.get(type(opts))
            if fmt == "json":
                fmt = None  # .json or .ndjson decides
        source = self._locate(fmt, getattr(opts, "table", None))
        if (
            source.format in ("json", "ndjson")
            and opts is not None
            and not isinstance(opts, JSONOptions)
        ):
            raise ExtractError(
                f"{type(opts).__name__} given for JSON source {self.source!r}",
                hint="pass JSONOptions",
            )
        default: dict[str, type] = {
            "csv": CSVOptions,
            "parquet": ParquetOptions,
            "json": JSONOptions,
            "ndjson": JSONOptions,
            "arrow": ArrowOptions,
            "sqlite": TableOptions,
            "duckdb": TableOptions,
            "postgres": PostgresOptions,
        }
        wanted = default.get(source.format, PluginOptions)
        if opts is None:
            if wanted is PostgresOptions:
                raise ExtractError(
                    "a Postgres source needs PostgresOptions(table=...)",
                    hint="pass PostgresOptions(table='name')",
                )
            opts = wanted()
        elif not isinstance(opts, wanted):
            raise ExtractError(
                f"{type(opts).__name__} given for {self.source!r}, which reads as {source.format}",
                hint=f"pass {wanted.__name__}, or set format to match the options",
            )
        self._resolved, self._opts = source, opts
        return source

    def file_digests(self) -> dict[str, str] | None:
        """Content digests of the source's files (as :func:`blase.hashing.hash_file` gives),
        by absolute path, when its reader keeps an index of them (a folder of images or audio,
        brought up to date: new and changed files are decoded now); else None. What a run's
        cache key takes instead of hashing every file of a big folder again."""
        source = self._resolve()
        if source.format in FORMATS:
            return None
        reader = self._plugin_reader()[1]
        return reader.content_digests(source.files, root=collection_root(source))

    def resolved_source(self) -> ResolvedSource:
        """Where the data is (its files) and the format it is read as (a built-in or a source
        plugin's name); the files are found, nothing is read."""
        return self._resolve()

    # ------------------------------------------------------------------ source plugins

    def _locate(self, fmt: str | None, table: str | None) -> ResolvedSource:
        """The files of the source: a built-in format, else a source plugin's (by
        ``data.format``, or by the suffixes plugins declare when the built-ins cannot tell)."""
        where = {"format": fmt, "table": table, "base_dir": self._base_dir,
                 "project_root": self.project.root if self.project else None}
        if is_remote(self.source):  # a bucket: its objects, staged on disk, read as local files
            from blase.extract._remote import stage_remote

            local = Extract(stage_remote(self.source, self.project), format=fmt, project=self.project)
            found = local._locate(fmt, table)
            return replace(found, spec=self.source, label=source_label(self.source.rstrip("/*")))
        if fmt is not None and fmt not in FORMATS:
            plugin = self._plugin_set().require("source", fmt, used_by="data.format")
            return resolve_source(self.source, plugins={s: fmt for s in plugin.suffixes} or {"": fmt}, **where)
        try:
            return resolve_source(self.source, **where)
        except ExtractError:
            if fmt is not None:
                raise
            suffixes = self._plugin_suffixes()
            if not suffixes:
                raise
            return resolve_source(self.source, plugins=suffixes, **where)

    def _plugin_set(self) -> PluginSet:
        from blase.plugins import plugin_set

        return self.project.plugins() if self.project and self.project.config_path.is_file() else plugin_set()

    def _plugin_suffixes(self) -> dict[str, str]:
        plugins = self._plugin_set()
        suffixes = {s for p in plugins.of_kind("source") for s in p.suffixes}
        return {s: plugin.name for s in sorted(suffixes) if (plugin := plugins.by_suffix(s)) is not None}

    def _plugin_reader(self) -> tuple[Plugin, SourceReader]:
        """The source plugin's manifest and its reader, built with the validated options."""
        if self._plugin is None:
            from blase.config import options_model, validate_plugin_options

            source = self._resolve()
            plugin = self._plugin_set().require("source", source.format, used_by="data.format")
            cls = load_reader_class(plugin)
            options = validate_plugin_options(options_model(cls), self._opts.options, at=("data", "options"),
                                              what=plugin.label, config_path=self._config_path)
            self._plugin = (plugin, cls(options if cls.config_model is not None else None))
        return self._plugin

    def _plugin_expr(self, con: duckdb.DuckDBPyConnection) -> str:
        plugin, reader = self._plugin_reader()
        stream = PluginStream(plugin, reader, self._resolve(), self._opts.batch_rows, self._plugin_failures,
                              bad_rows=self._opts.bad_rows, rejects_file=self._rejects_path().with_suffix(".ndjson"))
        return register(con, stream.open(), "plugin")

    def with_bad_rows(self, policy: str) -> Extract:
        """A copy of this extract that handles bad rows with ``policy`` (``skip`` for a
        profile that describes what can be read); sources without a policy return ``self``."""
        self._resolve()
        if getattr(self._opts, "bad_rows", None) in (None, policy):
            return self
        options = self._opts.model_copy(update={"bad_rows": policy})
        return Extract(self.source, options, format=self.format, project=self.project)

    def type_notes(self) -> dict[str, str]:
        """``{column: note}`` for the text columns of a CSV source read as numbers though a
        few sampled values are not numbers (those rows go through ``bad_rows``); known once
        the source has been read (schema, preview, batches)."""
        return dict(self._csv_plan.strays) if self._csv_plan is not None else {}

    def _policy(self) -> str:
        self._resolve()
        return getattr(self._opts, "bad_rows", "error")

    def _connect(self, budget: int) -> duckdb.DuckDBPyConnection:
        threads = max(2, min(os.cpu_count() or 1, budget // (64 << 20)))
        tmp = self.project.tmp_dir if self.project else None
        return connect(budget, tmp_dir=tmp, threads=threads)

    def _prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Pin the CSV dialect, check the files agree and the dtypes name real columns."""
        source = self._resolve()
        opts = self._opts
        if source.format == "csv":
            if self._csv_plan is None:
                plan = plan_csv(con, source, opts)
                self._raw_columns = list(plan.sniffed)
                self._check_dtypes(con, self._raw_columns)
                self._csv_plan = with_dtypes(plan, {k: v.upper() for k, v in opts.dtypes.items()})
            if not self._checked and source.is_many:
                check_same_columns(
                    csv_headers(con, source.files, self._csv_plan, opts.header),
                    source.base_dir,
                    hint="make the files share one header, or extract them separately",
                )
            self._checked = True
            return
        if not self._checked:
            # a reader of a whole collection (a folder of images) reports or quarantines its own bad files
            collection = source.format not in FORMATS and self._plugin_reader()[1].reads_collection
            for path in () if collection else source.files:
                if path.is_file() and path.stat().st_size == 0:
                    raise ExtractError(
                        f"{display_path(path, source.base_dir)} is empty (0 bytes): it holds no data",
                        hint="write the data into it, or point data.source at the file that holds it",
                    )
            if source.is_many and not getattr(opts, "union_by_name", False) and source.format in FORMATS:
                check_same_columns(
                    file_columns(con, source, opts),
                    source.base_dir,
                    hint="make the files share their columns, or extract them separately"
                    + (
                        " (or set ParquetOptions(union_by_name=True))"
                        if source.format == "parquet"
                        else ""
                    ),
                )
            if opts.dtypes:
                expr = self._raw_expr(con, ignore_errors=False)
                self._raw_columns = [
                    r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {expr}").fetchall()
                ]
                self._check_dtypes(con, self._raw_columns)
            self._checked = True

    def _check_dtypes(self, con: duckdb.DuckDBPyConnection, columns: list[str]) -> None:
        import duckdb

        shown = self._shown()
        for name, dtype in self._opts.dtypes.items():
            if name not in columns:
                maybe = close_match(name, columns)
                raise ExtractError(
                    f"dtypes names column {name!r}, which {shown} does not have{maybe}; its "
                    f"columns: {', '.join(columns)}",
                    hint="fix the column name in dtypes (data.dtypes in blase.yaml)",
                )
            ok = bool(_TYPE_NAME.match(dtype))
            if ok:
                try:
                    con.execute(f"SELECT CAST(NULL AS {dtype})").fetchall()
                except duckdb.Error:
                    ok = False
            if not ok:
                raise ExtractError(
                    f"dtypes gives column {name!r} the unknown type {dtype!r}",
                    hint="use a DuckDB type: BIGINT, INTEGER, DOUBLE, FLOAT, VARCHAR, BOOLEAN, "
                    "DATE, TIMESTAMP, DECIMAL(18,3)",
                )

    def for_part(self, part: Part) -> Extract:
        """An Extract of one partition of this source (a file, or a row range of a Parquet
        file) that reads it as this one decided (its CSV dialect and types, its columns),
        without checking the files again: what an executor's task runs."""
        self._resolve()
        extract = Extract(part.file, self._opts, format=self._resolve().format, project=self.project)
        extract._csv_plan, extract._raw_columns, extract._rows = self._csv_plan, self._raw_columns, part.rows
        extract._checked = True
        return extract

    def _shown(self) -> str:
        source = self._resolve()
        if source.files and not source.is_many:
            return display_path(source.files[0], source.base_dir)
        return repr(source.spec)

    def _raw_expr(self, con: duckdb.DuckDBPyConnection, *, ignore_errors: bool) -> str:
        if self._resolve().format not in FORMATS:
            return self._plugin_expr(con)
        return source_expr(con, self._resolve(), self._opts, ignore_errors=ignore_errors, rows=self._rows)

    def _expr(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        errors: str = "strict",
        rejects: RejectTables | None = None,
    ) -> str:
        """The FROM-clause expression of the source with dtypes applied."""
        self._prepare(con)
        source = self._resolve()
        if source.format == "csv":
            assert self._csv_plan is not None
            tables = (rejects.errors, rejects.scans) if rejects else None
            return read_csv_sql(source.files, self._csv_plan, errors=errors, rejects=tables)
        expr = self._raw_expr(con, ignore_errors=errors != "strict")
        if source.format in ("json", "ndjson") and errors != "strict":
            # DuckDB turns a JSON line it cannot parse into a row of nulls: drop those.
            if self._raw_columns is None:
                described = con.execute(f"DESCRIBE SELECT * FROM {expr}").fetchall()
                self._raw_columns = [r[0] for r in described]
            some = " OR ".join(f"{sql_ident(c)} IS NOT NULL" for c in self._raw_columns)
            expr = f"(SELECT * FROM {expr} WHERE {some})"
        if not self._opts.dtypes:
            return expr
        casts = ", ".join(
            f"CAST({sql_ident(c)} AS {t}) AS {sql_ident(c)}" for c, t in self._opts.dtypes.items()
        )
        return f"(SELECT * REPLACE ({casts}) FROM {expr})"

    def _lenient(self) -> str:
        return "strict" if self._policy() == "error" else "ignore"

    # ------------------------------------------------------------------ public reads

    def sql_source(self, con: duckdb.DuckDBPyConnection) -> str:
        """A FROM-clause expression that reads this source on ``con``.

        E.g. ``read_csv('/data/flights.csv', delim=',', ..., columns={...})`` or, with dtype
        overrides, a parenthesised subquery. Use it as ``f"SELECT ... FROM {expr}"`` on a
        connection from :func:`blase._duck.connect`. Bad rows are dropped unless the policy
        is ``error``; nothing is recorded about them here (use :meth:`batches` for counts).
        Arrow and SQLite sources are registered on ``con`` as a view that can be scanned
        once (call again for another scan); DuckDB files are attached read-only.
        """
        return self._run(con, lambda: self._expr(con, errors=self._lenient()))

    def schema(self, con: duckdb.DuckDBPyConnection | None = None) -> pa.Schema:
        """The Arrow schema of the batches (after dtype overrides).

        ``con`` (a connection from :func:`blase._duck.connect`) is used when given, e.g. by
        a caller that scans the source next on it; else one is opened and closed here.
        """
        own = con is None
        con = self._connect(memory_budget("256MB")) if con is None else con
        try:
            return self._run(
                con,
                lambda: (
                    con.sql(f"SELECT * FROM {self._expr(con, errors=self._lenient())} LIMIT 0")
                    .to_arrow_table()
                    .schema
                ),
            )
        finally:
            if own:
                con.close()

    def preview(self, n: int = 10) -> pa.Table:
        """The first ``n`` rows (bad rows dropped unless the policy is ``error``)."""
        con = self._connect(memory_budget("512MB"))
        try:
            return self._run(
                con,
                lambda: con.sql(
                    f"SELECT * FROM {self._expr(con, errors=self._lenient())} LIMIT {int(n)}"
                ).to_arrow_table(),
            )
        finally:
            con.close()

    def sample(self, n: int = 2000, *, seed: int = 0) -> pa.Table:
        """About ``n`` rows drawn from the whole source (all of them when it has fewer), the
        same rows for the same ``seed`` and files; bad rows dropped as in :meth:`preview`.

        A random sample: DuckDB's reservoir keeps ``n`` rows while it streams the source once,
        so memory holds the sample, never the file (on one thread: a seeded reservoir repeats
        only there). One plain CSV file of :data:`blase._sample.MIN_BYTES` or more is sampled
        by position instead (:func:`blase._sample.byte_range_sample`: runs of rows from 64
        evenly spaced places, a few hundred KB read whatever its size), so a preview of a 100 GB file takes
        as long as one of 100 MB. The table's schema metadata ``blase.sample`` says which:
        ``reservoir`` or ``blocks``.
        """
        from blase._sample import byte_range_sample

        con = self._connect(memory_budget("512MB"))
        try:
            con.execute("SET threads = 1")
            relation = self._expr(con, errors=self._lenient())
            source = self._resolve()

            def draw() -> pa.Table:
                if source.format == "csv" and len(source.files) == 1:
                    tmp = self.project.tmp_dir if self.project else None
                    table = byte_range_sample(con, source.files[0], relation, int(n), tmp_dir=tmp)
                    if table is not None:
                        return table.replace_schema_metadata({"blase.sample": "blocks"})
                table = con.sql(f"SELECT * FROM {relation} USING SAMPLE reservoir({int(n)} ROWS) "
                                f"REPEATABLE ({int(seed)})").to_arrow_table()
                return table.replace_schema_metadata({"blase.sample": "reservoir"})

            return self._run(con, draw)
        finally:
            con.close()

    def count(self) -> int:
        """The number of rows (good rows only when bad rows are skipped or quarantined)."""
        source = self._resolve()
        if source.format == "sqlite":
            return sqlite_count(source)
        con = self._connect(memory_budget("512MB"))
        try:
            row = self._run(
                con,
                lambda: first_row(
                    con.execute(
                        f"SELECT count(*) FROM {self._expr(con, errors=self._lenient())}{self._parse_all()}"
                    )
                ),
            )
            return int(row[0])
        finally:
            con.close()

    def _parse_all(self) -> str:
        """A WHERE clause that is always true but makes DuckDB parse every CSV column.

        ``count(*)`` alone reads no column, so a value that does not fit its type (or bytes
        that are not valid text) would go unnoticed and the count would include bad rows.
        """
        return " WHERE hash(COLUMNS(*)) IS NOT NULL" if self._resolve().format == "csv" else ""

    def _run(self, con: duckdb.DuckDBPyConnection, thunk: Any) -> Any:
        import duckdb

        try:
            return thunk()
        except duckdb.Error as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: Exception) -> BlaseError:
        """An :class:`ExtractError` for a DuckDB failure; for CSV, the first bad row's place;
        a source plugin's own error as it raised it."""
        if self._plugin_failures:
            return self._plugin_failures[-1]
        outside = confinement_error(exc)
        if outside is not None:
            return ExtractError(f"cannot read {self._shown()}: {outside}",
                                hint="copy the data it needs into the project (e.g. data/)")
        if "DELIMITER must not appear in the NULL specification" in str(exc):
            return _null_holds_delimiter(self._shown(), self.options)
        source = self._resolve()
        if source.format == "csv":
            long_line = long_line_error(exc, source)
            if long_line is not None:
                return long_line
        if source.format == "csv" and self._csv_plan is not None:
            found = self._find_first_reject()
            if found is not None:
                return found
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ExtractError(
            f"cannot read {self._shown()}: {first}",
            hint="check the file and the reading options (format, dtypes, delimiter)",
        )

    def _find_first_reject(self) -> ExtractError | None:
        """Scan again with rejects stored (only after a strict scan failed)."""
        import duckdb

        source = self._resolve()
        assert self._csv_plan is not None
        con = self._connect(memory_budget("1GB"))
        tables = RejectTables.fresh()
        try:
            expr = read_csv_sql(
                source.files, self._csv_plan, errors="store", rejects=(tables.errors, tables.scans)
            )
            first_row(con.execute(f"SELECT count(*) FROM {expr}{self._parse_all()}"))
            reject = first_reject(con, tables, [str(f) for f in source.files])
        except duckdb.Error:
            return None
        finally:
            con.close()
        return reject_error(reject, source.base_dir) if reject else None

    # ------------------------------------------------------------------ streaming

    def _batch_rows(self, con: duckdb.DuckDBPyConnection, budget: int) -> tuple[int, float]:
        """Rows per batch for ``budget``, from the Arrow width of a sample of rows."""
        sample = con.sql(
            f"SELECT * FROM {self._expr(con, errors='ignore')} LIMIT {VECTOR_ROWS}"
        ).to_arrow_table()
        width = sample.nbytes / sample.num_rows if sample.num_rows else 64.0
        width = max(width, 8.0)
        target = min(BATCH_BYTES_MAX, max(BATCH_BYTES_MIN, budget // 32))
        rows = int(target // width) // VECTOR_ROWS * VECTOR_ROWS
        return max(VECTOR_ROWS, min(rows, 512 * VECTOR_ROWS)), width

    def batches(
        self,
        memory: int | str | None = None,
        batch_rows: int | None = None,
        *,
        progress: bool = False,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the source as Arrow record batches, in file order.

        Parameters
        ----------
        memory:
            The memory budget (``"2GB"``, ``"25%"``, bytes; default half the available
            memory). DuckDB gets half of it; batches are sized from the rest.
        batch_rows:
            Rows per batch; by default derived from the budget and the row width of a
            sample (a batch holds about 1/32 of the budget, 1-32 MiB).
        progress:
            Show a progress bar (bytes read, for files).

        Yields
        ------
        pyarrow.RecordBatch
            Batches with the schema of :meth:`schema`. When the stream ends,
            :attr:`stats` holds the row counts (``rows_in == rows_out + rows_rejected``).

        Raises
        ------
        ExtractError
            For a bad row under ``bad_rows="error"`` (naming file, line and column), or a
            source that cannot be read.
        """
        budget = memory_budget(memory)
        source = self._resolve()
        if not progress:
            return self._stream(budget, batch_rows, None)

        def with_bar() -> Iterator[pa.RecordBatch]:
            total = source.total_bytes or None
            with _progress_bar(f"extract {source.label}", total) as bar:
                yield from self._stream(budget, batch_rows, bar)

        return with_bar()

    def not_partitioned(self) -> str | None:
        """Why an executor cannot split this source into partitions (None: it can)."""
        source = self._resolve()
        if source.format not in PARTITIONED_FORMATS:
            return f"{source.format} sources are read as one stream"
        if self._policy() != "error":
            return f"bad_rows: {self._policy()} is counted in one pass"
        if getattr(self._opts, "union_by_name", False):
            return "union_by_name matches the files' columns in one pass"
        return None

    def _partition(self, executor: RayExecutor, budget: int) -> tuple[str | None, list[Part], int]:
        """``(why not, partitions, each task's memory)``: why ``executor`` cannot read this source
        (None: it can), else its partitions (after the CSV dialect is pinned: a plain CSV file
        over a quarter of a task's memory is cut at line starts where that reads the same rows)."""
        unsplit = self.not_partitioned()
        if unsplit is not None:
            return unsplit, [], 0
        memory = executor.memory_per_task(budget)
        target = executor.part_bytes or max(1 << 20, memory // 4)
        # a range's rows, as Arrow, take about its size again: a quarter of a task's memory each
        parts = plan_parts(self._resolve(), target, self._csv_plan, min(target, max(memory // 4, 4 << 10)))
        return oversized_file(self._resolve(), parts, memory), parts, memory

    def _stream(
        self, budget: int, batch_rows: int | None, bar: Bar | None, executor: RayExecutor | None = None
    ) -> Iterator[pa.RecordBatch]:
        import duckdb

        source = self._resolve()
        policy = self._policy()
        self.stats = None
        con = self._connect(budget)
        tables = RejectTables.fresh() if source.format == "csv" and policy != "error" else None
        try:
            rows, width = self._run(con, lambda: self._batch_rows(con, budget))
            if batch_rows:
                rows = int(batch_rows)
            errors = "store" if tables else self._lenient()
            expr = self._run(con, lambda: self._expr(con, errors=errors, rejects=tables))
            unsplit, parts, memory = self._partition(executor, budget) if executor is not None else (None, [], 0)
            if executor is not None and unsplit is not None:
                logger.warning("extract %s runs on this machine, not in %s tasks: %s", source.label, executor.name,
                               unsplit)
                executor = None
            self._ran_on = executor.name if executor is not None else "local"
            self._tasks = len(parts) if executor is not None else 0
            logger.debug(
                "extract %s: %d rows per batch (~%s), budget %s",
                source.label,
                rows,
                format_size(rows * width),
                format_size(budget),
            )
            total = source.total_bytes
            if bar is not None and total:
                con.execute("SET enable_progress_bar = true").fetchall()
                con.execute("SET enable_progress_bar_print = false").fetchall()
            rows_out = 0
            done = 0.0
            try:
                if executor is not None:
                    columns = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {expr}").fetchall()]
                    reader = stream_parts(self, executor, parts, memory, rows, columns,
                                          bar.advance if bar is not None else None)
                else:
                    reader = con.sql(f"SELECT * FROM {expr}").to_arrow_reader(rows)
                for batch in exact_batches(reader, rows):
                    rows_out += batch.num_rows
                    if executor is not None:
                        pass  # the partitions advance the bar as they finish
                    elif bar is not None and total:
                        now = max(con.query_progress(), 0.0) / 100.0 * total
                        if now > done:
                            bar.advance(now - done)
                            done = now
                    elif bar is not None:
                        bar.advance(batch.num_rows)
                    yield batch
                del reader
            except duckdb.Error as exc:
                raise self._translate(exc) from exc
            except OSError as exc:
                if exc.errno is not None:
                    raise
                # pyarrow's reader hands DuckDB's read errors on as a bare OSError
                raise self._translate(exc) from exc
            if bar is not None and total and total > done and executor is None:
                bar.advance(total - done)
            stats = ExtractStats(rows_out=rows_out, batch_rows=rows)
            if unsplit is not None:
                stats.warnings.append(f"read on this machine, not in Ray tasks: {unsplit}")
            if tables is not None:
                stats.rows_rejected = rejected_rows(con, tables)
                if stats.rows_rejected or policy == "quarantine":
                    self._report_rejects(con, tables, stats)
            elif source.format in ("json", "ndjson") and policy == "skip":
                stats.rows_rejected = self._json_skipped(rows_out, stats)
            elif self._plugin is not None and self._plugin[1].rows_rejected:
                self._plugin_rejects(stats)
            elif self._plugin is not None and self._plugin[1].rejected:
                stats.rows_rejected = self._quarantine_files(self._plugin[1].rejected, stats)
            stats.rows_in = stats.rows_out + stats.rows_rejected
            self.stats = stats
            if stats.rows_in == 0 and source.files:
                raise ExtractError(
                    f"{self._shown()} has no rows",
                    hint="add rows to it, or use the file that holds the data (data.source in blase.yaml)",
                )
        finally:
            con.close()

    def _rejects_path(self) -> Path:
        opts = self._opts
        label = self._resolve().label
        if getattr(opts, "rejects_path", None):
            path = Path(opts.rejects_path)
            return path if path.is_absolute() else self._base_dir / path
        outputs = self.project.outputs_dir if self.project else Path.cwd() / "outputs"
        return outputs / "rejects" / f"{label}.csv"

    def _report_rejects(
        self, con: duckdb.DuckDBPyConnection, tables: RejectTables, stats: ExtractStats
    ) -> None:
        source = self._resolve()
        n = stats.rows_rejected
        rows = "row" if n == 1 else "rows"
        if self._policy() == "quarantine":
            # Written even when empty, so the file always describes the last extract.
            path = self._rejects_path()
            write_rejects(con, tables, path, source.base_dir)
            stats.rejects_path = path
            if n:
                shown = display_path(path, self._base_dir)
                stats.warnings.append(f"{n} bad {rows} quarantined to {shown}")
        else:
            first = first_reject(con, tables, [str(f) for f in source.files])
            where = (
                f" (first: {reject_error(first, source.base_dir).message.splitlines()[0]})"
                if first
                else ""
            )
            stats.warnings.append(f"{n} bad {rows} skipped{where}")
        cast = first_row(
            con.execute(f"SELECT count(*) FROM {tables.errors} WHERE error_type = 'CAST'")
        )
        if cast and cast[0]:
            stats.warnings.append(
                f"{cast[0]} values did not fit their column's detected type; if they are valid, "
                "set dtypes for those columns (e.g. 'VARCHAR' or 'DOUBLE')"
            )
        for w in stats.warnings:
            logger.warning("extract %s: %s", source.label, w)

    def _plugin_rejects(self, stats: ExtractStats) -> None:
        """The records a source plugin set aside (``bad_rows: quarantine``), counted and reported."""
        n = stats.rows_rejected = self._plugin[1].rows_rejected  # type: ignore[index]
        path = self._rejects_path().with_suffix(".ndjson")
        if path.is_file():
            stats.rejects_path = path
        stats.warnings.append(f"{n} bad record{'s' if n != 1 else ''} quarantined to {display_path(path, self._base_dir)}")
        logger.warning("extract %s: %s", self._resolve().label, stats.warnings[-1])
    def _quarantine_files(self, rejected: list[tuple[str, str]], stats: ExtractStats) -> int:
        """List the files a source plugin set aside in ``outputs/rejects/<source>.csv``."""
        import csv

        path = self._rejects_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "reason"])
            writer.writerows((display_path(Path(f), self._base_dir), why) for f, why in rejected)
        stats.rejects_path = path
        stats.warnings.append(f"{len(rejected)} bad file{'s' if len(rejected) != 1 else ''} quarantined "
                              f"to {display_path(path, self._base_dir)}")
        return len(rejected)

    def _json_skipped(self, rows_out: int, stats: ExtractStats) -> int:
        """Rows dropped from newline-delimited JSON: non-blank lines that gave no row."""
        source = self._resolve()
        lines = 0
        for f in source.files:
            with open(f, "rb") as fh:
                head = fh.read(64).lstrip()
                if head.startswith(b"["):
                    stats.warnings.append(
                        f"{display_path(f, source.base_dir)} is a JSON array: "
                        "rows skipped in it are not counted"
                    )
                    continue
                fh.seek(0)
                lines += sum(1 for line in fh if line.strip())
        skipped = max(lines - rows_out, 0)
        if skipped:
            stats.warnings.append(f"{skipped} bad JSON lines skipped")
        return skipped

    # ------------------------------------------------------------------ the step

    def to_parquet(
        self, out_dir: str | os.PathLike[str], memory: int | str | None = None, *,
        executor: RayExecutor | None = None,
    ) -> StepResult:
        """Extract the whole source into ``out_dir/part-00000.parquet``, ... (zstd).

        ``executor`` (a :class:`~blase.executor.RayExecutor`) reads the files, and the row
        groups of large Parquet files, in its tasks; the parts are the same bytes. Sources it
        cannot split (tables, Postgres, plugins, a ``bad_rows`` other than ``error``) are read
        here, with a warning in the result.

        The parts are written into a temporary folder next to ``out_dir`` and renamed into
        place at the end, so ``out_dir`` is never half-written; an existing ``out_dir`` is
        replaced. Returns the step's :class:`~blase.steps.StepResult` ("extract"): content
        hashes of the source and the parts, row counts, time, peak memory and warnings.
        """
        import pyarrow.parquet as pq

        from blase.hashing import StatCache, hash_file, hash_files

        out = Path(out_dir)
        if not out.is_absolute():
            out = self._base_dir / out
        budget = memory_budget(memory)
        source = self._resolve()
        with (
            measure_step() as meter,
            _progress_bar(f"extract {source.label}", source.total_bytes or None) as bar,
        ):
            shown = self.project.relative(out) if self.project else str(out)
            with disk_guard("the extracted data into", shown, ExtractError):
                finals = write_parts(self._stream(budget, None, bar, executor), out, empty_schema=self.schema)
        stats = self.stats or ExtractStats()
        key = self._input_key()
        inputs: dict[str, str] = {}
        warnings = list(stats.warnings)
        if source.format == "postgres":
            warnings.append(
                "Postgres tables are not content-hashed; the step cannot tell if the table changed"
            )
        else:  # through the project's stat cache: an unchanged folder of many files is not read again
            cache = StatCache.for_project(self.project) if self.project else None
            known = self._plugin[1].digests if self._plugin is not None else None
            inputs[key] = (hash_files(source.files, cache=cache, digests=known) if source.is_many
                           else hash_file(source.files[0], cache=cache))
        out_key = self.project.relative(out) if self.project else str(out)
        final_schema = pq.read_schema(finals[0])
        details: dict[str, Any] = {
            "format": source.format,
            "source": self.source,
            "files": len(source.files),
            "parts": [p.name for p in finals],
            "batch_rows": stats.batch_rows,
            "columns": final_schema.names,
            "schema": {f.name: str(f.type) for f in final_schema},
            "bad_rows": self._policy(),
            "executor": self._ran_on,
            "rejects_file": (
                self.project.relative(stats.rejects_path)
                if self.project
                else str(stats.rejects_path)
            )
            if stats.rejects_path
            else None,
        }
        if self._csv_plan is not None:
            details["csv"] = dict(self._csv_plan.args)
        if self._ran_on != "local":
            details["tasks"] = self._tasks  # files, runs of row groups, CSV byte ranges
        if self._plugin is not None:
            details["plugin"] = {"name": self._plugin[0].name, "version": self._plugin[0].version,
                                 "origin": self._plugin[0].origin}
        return StepResult(
            step="extract",
            inputs=inputs,
            outputs={out_key: hash_files(finals, root=out)},
            rows_in=stats.rows_in,
            rows_out=stats.rows_out,
            rows_rejected=stats.rows_rejected,
            seconds=meter.seconds,
            peak_rss_bytes=meter.peak_rss_bytes,
            memory_budget_bytes=budget,
            warnings=warnings,
            details=details,
        )

    def _input_key(self) -> str:
        source = self._resolve()
        if is_remote(self.source):
            return self.source
        if source.format == "postgres":
            return f"postgres:{source.table}"
        if source.is_many:
            return source.spec
        key = self.project.relative(source.files[0]) if self.project else str(source.files[0])
        return f"{key}:{source.table}" if source.table else key


def _progress_bar(description: str, total: int | None) -> Any:
    if total:
        return progress(description, total=total, unit="B")
    return progress(description)


def _null_holds_delimiter(shown: str, options: Any) -> ExtractError:
    """DuckDB's "DELIMITER must not appear in the NULL specification", said in blase.yaml's keys."""
    nulls = list(getattr(options, "null_values", None) or [])
    delimiters = getattr(options, "delimiter", None) or ",;\t|"
    bad = [v for v in nulls if any(d in v for d in delimiters)]
    return ExtractError(
        f"cannot read {shown}: data.null_values holds the file's delimiter "
        f"({', '.join(map(repr, bad or nulls))}), so a null could not be told from two fields",
        hint="take that value out of data.null_values; rows where it appears go through "
        "data.bad_rows (e.g. quarantine)",
    )
