"""FROM-clause expressions for the typed sources: Parquet, JSON, Arrow IPC, SQLite, DuckDB, Postgres.

Everything ends up as something a DuckDB query can select from, so dtype casts, counts,
previews and streaming share one code path. Parquet and JSON use DuckDB's readers; Arrow IPC
files are registered as a pyarrow dataset (scanned lazily, batch by batch); SQLite tables are
read with Python's ``sqlite3`` in batches and handed over as an Arrow stream (DuckDB's
``sqlite`` extension cannot be assumed to be installed); DuckDB files are attached read-only;
Postgres goes through DuckDB's ``postgres`` extension when it is installed.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xxhash

from blase._duck import sql_ident, sql_quote
from blase.errors import ExtractError
from blase.extract._options import JSONOptions, ParquetOptions, PostgresOptions, TableOptions
from blase.extract._sources import ResolvedSource, close_match, display_path, first_row

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = ["file_columns", "source_expr", "sqlite_count"]


def _files_sql(files: tuple[Path, ...]) -> str:
    if len(files) == 1:
        return sql_quote(str(files[0]))
    return "[" + ", ".join(sql_quote(str(f)) for f in files) + "]"


def _json_format(source: ResolvedSource, opts: JSONOptions) -> str:
    if opts.format != "auto":
        return opts.format
    return "newline_delimited" if source.format == "ndjson" else "auto"


def json_expr(
    files: tuple[Path, ...], source: ResolvedSource, opts: JSONOptions, *, ignore_errors: bool
) -> str:
    args = [f"format={sql_quote(_json_format(source, opts))}", f"sample_size={opts.sample_rows}"]
    if ignore_errors:
        args.append("ignore_errors=true")
    return f"read_json({_files_sql(files)}, {', '.join(args)})"


def parquet_expr(files: tuple[Path, ...], opts: ParquetOptions, rows: tuple[int, int] | None = None) -> str:
    """``read_parquet`` of ``files``; ``rows``: only those rows of one file (whole row groups
    are skipped, not read)."""
    union = ", union_by_name=true" if opts.union_by_name else ""
    expr = f"read_parquet({_files_sql(files)}{union})"
    if rows is None:
        return expr
    return f"(SELECT * FROM {expr} WHERE file_row_number >= {int(rows[0])} AND file_row_number < {int(rows[1])})"


def _is_ipc_file(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(6) == b"ARROW1"


def _arrow_stream(files: tuple[Path, ...]) -> pa.RecordBatchReader:
    """One Arrow stream over IPC streams (``.arrows``), file after file."""
    import pyarrow as pa

    first = pa.ipc.open_stream(files[0])

    def chain() -> Iterator[pa.RecordBatch]:
        yield from first
        for f in files[1:]:
            yield from pa.ipc.open_stream(f)

    return pa.RecordBatchReader.from_batches(first.schema, chain())


def arrow_object(files: tuple[Path, ...]) -> Any:
    """A pyarrow dataset over IPC files (lazy, re-scannable) or a one-shot stream reader."""
    import pyarrow.dataset as ds

    if all(_is_ipc_file(f) for f in files):
        return ds.dataset([str(f) for f in files], format="ipc")
    return _arrow_stream(files)


def arrow_schema(path: Path) -> pa.Schema:
    import pyarrow as pa

    if _is_ipc_file(path):
        with pa.ipc.open_file(path) as reader:
            return reader.schema
    with pa.ipc.open_stream(path) as reader:
        return reader.schema


# --------------------------------------------------------------------------- SQLite


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    # DuckDB pulls the batches from its own threads.
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def _sqlite_check_table(con: sqlite3.Connection, source: ResolvedSource) -> None:
    names = [
        r[0]
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name"
        )
    ]
    if source.table not in names:
        shown = display_path(source.files[0], source.base_dir)
        raise ExtractError(
            f"{shown} has no table {source.table!r}{close_match(str(source.table), names)}; "
            f"its tables: {', '.join(names) or '(none)'}",
            hint=f"write '{shown}:<table>' with one of those tables",
        )


def _sqlite_type(declared: str) -> pa.DataType | None:
    """Arrow type for a declared SQLite column type (its affinity); None: infer from data."""
    import pyarrow as pa

    t = declared.upper()
    if "INT" in t or "BOOL" in t:
        return pa.int64()
    if any(k in t for k in ("CHAR", "CLOB", "TEXT", "DATE", "TIME")):
        return pa.string()
    if "BLOB" in t:
        return pa.binary()
    if any(k in t for k in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return pa.float64()
    return None


def sqlite_reader(source: ResolvedSource, opts: TableOptions) -> pa.RecordBatchReader:
    """The table as an Arrow stream, ``opts.batch_rows`` rows at a time.

    Columns with a dtype override are read as text and cast by DuckDB afterwards, so a
    column of mixed values can still be read.
    """
    import pyarrow as pa

    path = source.files[0]
    con = _sqlite_connect(path)
    _sqlite_check_table(con, source)
    table = str(source.table)
    info = con.execute(f"PRAGMA table_info({sql_ident(table)})").fetchall()
    names = [r[1] for r in info]
    types = [pa.string() if r[1] in opts.dtypes else _sqlite_type(r[2] or "") for r in info]
    cursor = con.execute(f"SELECT * FROM {sql_ident(table)}")
    first = cursor.fetchmany(opts.batch_rows)
    columns = list(zip(*first, strict=True)) if first else [() for _ in names]
    for i, t in enumerate(types):
        if t is None:  # no declared type: take what the first batch holds
            try:
                inferred = pa.array(columns[i]).type
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                inferred = pa.string()
            types[i] = pa.string() if pa.types.is_null(inferred) else inferred
    schema = pa.schema([pa.field(n, t) for n, t in zip(names, types, strict=True)])
    shown = display_path(path, source.base_dir)

    def to_batch(rows: list[tuple], start: int) -> pa.RecordBatch:
        cols = list(zip(*rows, strict=True))
        arrays = []
        for i, field in enumerate(schema):
            values = cols[i]
            if pa.types.is_string(field.type) and field.name in opts.dtypes:
                values = [None if v is None else str(v) for v in values]
            try:
                arrays.append(pa.array(values, type=field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                row = next(
                    (k for k, v in enumerate(values) if v is not None and not _fits(v, field.type)),
                    0,
                )
                raise ExtractError(
                    f"{shown}:{table}, row {start + row + 1}, column {field.name!r}: value "
                    f"{values[row]!r} does not fit the column's type {field.type} ({exc})",
                    hint=f"read the column as text with dtypes: {{{field.name!r}: 'VARCHAR'}}",
                ) from exc
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            rows, start = first, 0
            while rows:
                yield to_batch(rows, start)
                start += len(rows)
                rows = cursor.fetchmany(opts.batch_rows)
        finally:
            con.close()

    return pa.RecordBatchReader.from_batches(schema, batches())


def _fits(value: Any, type_: pa.DataType) -> bool:
    import pyarrow as pa

    try:
        pa.array([value], type=type_)
        return True
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False


def sqlite_count(source: ResolvedSource) -> int:
    con = _sqlite_connect(source.files[0])
    try:
        _sqlite_check_table(con, source)
        return int(
            con.execute(f"SELECT count(*) FROM {sql_ident(str(source.table))}").fetchone()[0]
        )
    finally:
        con.close()


# --------------------------------------------------------------------------- DuckDB, Postgres


def _alias(kind: str, text: str) -> str:
    return f"blase_{kind}_{xxhash.xxh3_64_hexdigest(text.encode())[:12]}"


def _attached(con: duckdb.DuckDBPyConnection, alias: str) -> bool:
    row = first_row(
        con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [alias])
    )
    return bool(row and row[0])


def duckdb_table_expr(con: duckdb.DuckDBPyConnection, source: ResolvedSource) -> str:
    import duckdb

    path = source.files[0]
    shown = display_path(path, source.base_dir)
    alias = _alias("db", str(path.resolve()))
    if not _attached(con, alias):
        try:
            con.execute(f"ATTACH {sql_quote(str(path))} AS {alias} (READ_ONLY)").fetchall()
        except duckdb.Error as exc:
            raise ExtractError(
                f"cannot open DuckDB file {shown}: {str(exc).splitlines()[0]}",
                hint="check that it is a DuckDB database of this DuckDB version "
                "and that no other process holds it open for writing",
            ) from exc
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = ? UNION "
            "SELECT view_name FROM duckdb_views() WHERE database_name = ? ORDER BY 1",
            [alias, alias],
        ).fetchall()
    ]
    if source.table not in names:
        raise ExtractError(
            f"{shown} has no table {source.table!r}{close_match(str(source.table), names)}; "
            f"its tables: {', '.join(names) or '(none)'}",
            hint=f"write '{shown}:<table>' with one of those tables",
        )
    return f"{alias}.{sql_ident(str(source.table))}"


def postgres_expr(
    con: duckdb.DuckDBPyConnection, source: ResolvedSource, opts: PostgresOptions
) -> str:
    import duckdb

    try:
        # No silent download: the extension is installed on purpose or not at all.
        con.execute("SET autoinstall_known_extensions = false").fetchall()
        con.execute("LOAD postgres").fetchall()
    except duckdb.Error as exc:
        raise ExtractError(
            "reading Postgres needs DuckDB's 'postgres' extension, which is not installed "
            f"here ({str(exc).splitlines()[0]})",
            hint="run `python -c \"import duckdb; duckdb.sql('INSTALL postgres')\"` once on a "
            "machine with internet access, or export the table to Parquet and extract that",
        ) from exc
    alias = _alias("pg", source.spec)
    if not _attached(con, alias):
        try:
            con.execute(
                f"ATTACH {sql_quote(source.spec)} AS {alias} (TYPE postgres, READ_ONLY)"
            ).fetchall()
        except duckdb.Error as exc:
            raise ExtractError(
                f"cannot connect to Postgres: {str(exc).splitlines()[0]}",
                hint="check the connection string, the server and your "
                "credentials (PGPASSWORD or ~/.pgpass)",
            ) from exc
    return f"{alias}.{sql_ident(opts.schema_name)}.{sql_ident(opts.table)}"


# --------------------------------------------------------------------------- dispatch


def register(con: duckdb.DuckDBPyConnection, obj: Any, kind: str) -> str:
    """Register a pyarrow object under a fresh view name on ``con``."""
    name = f"blase_{kind}_{uuid.uuid4().hex[:12]}"
    con.register(name, obj)
    return name


def source_expr(
    con: duckdb.DuckDBPyConnection,
    source: ResolvedSource,
    opts: Any,
    *,
    ignore_errors: bool = False,
    rows: tuple[int, int] | None = None,
) -> str:
    """A FROM-clause expression reading ``source`` (not CSV) on ``con``, before dtype casts
    (``rows``: a row range of a one-file Parquet source)."""
    fmt = source.format
    if fmt == "parquet":
        return parquet_expr(source.files, opts, rows)
    if fmt in ("json", "ndjson"):
        return json_expr(source.files, source, opts, ignore_errors=ignore_errors)
    if fmt == "arrow":
        return register(con, arrow_object(source.files), "arrow")
    if fmt == "sqlite":
        return register(con, sqlite_reader(source, opts), "sqlite")
    if fmt == "duckdb":
        return duckdb_table_expr(con, source)
    if fmt == "postgres":
        return postgres_expr(con, source, opts)
    raise AssertionError(f"unhandled format {fmt}")


def file_columns(
    con: duckdb.DuckDBPyConnection, source: ResolvedSource, opts: Any
) -> list[tuple[Path, list[str]]]:
    """Column names of each file of a multi-file Parquet, JSON or Arrow source."""
    out = []
    for f in source.files:
        if source.format == "parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(f).names
        elif source.format == "arrow":
            names = arrow_schema(f).names
        else:
            expr = json_expr((f,), source, opts, ignore_errors=False)
            names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {expr}").fetchall()]
        out.append((f, names))
    return out
