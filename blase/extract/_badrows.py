"""Bad rows: DuckDB's reject tables turned into counts, a rejects file and clear errors.

A CSV scan with ``store_rejects`` drops each bad row and records it (file, line, column,
error type, message and the raw line) in two temporary tables. Reading them after the
stream costs nothing in the normal case (no bad rows) and needs no second pass over the
data. The ``error`` policy scans strictly; only when that scan fails does a second scan
with rejects stored find the first bad row, so the message can name its line and column.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blase._duck import sql_quote
from blase._fs import atomic_path, write_text_atomic
from blase.errors import ExtractError
from blase.extract._sources import display_path, first_row

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "Reject",
    "RejectTables",
    "first_reject",
    "reject_error",
    "rejected_rows",
    "write_rejects",
]

_POLICY_HINT = "or set bad_rows to 'skip' or 'quarantine' (data.bad_rows in blase.yaml)"


@dataclass(frozen=True)
class RejectTables:
    """Names of the temporary tables one scan records its bad rows in."""

    errors: str
    scans: str

    @classmethod
    def fresh(cls) -> RejectTables:
        tag = uuid.uuid4().hex[:12]
        return cls(f"blase_rejects_{tag}", f"blase_reject_scans_{tag}")

    def exist(self, con: duckdb.DuckDBPyConnection) -> bool:
        row = first_row(
            con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [self.errors])
        )
        return bool(row and row[0])


@dataclass(frozen=True)
class Reject:
    """One bad row."""

    file: str
    line: int
    column: str | None
    error_type: str
    message: str
    raw: str | None


def rejected_rows(con: duckdb.DuckDBPyConnection, tables: RejectTables) -> int:
    """How many rows were dropped (a row with several bad values counts once)."""
    if not tables.exist(con):
        return 0
    row = first_row(
        con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT scan_id, file_id, line FROM {tables.errors})"
        )
    )
    return int(row[0]) if row else 0


def _rejects_query(tables: RejectTables) -> str:
    return (
        f'SELECT s.file_path AS file, e.line AS line, e.column_name AS "column", '
        f"CAST(e.error_type AS VARCHAR) AS error_type, e.error_message AS error, "
        f"e.csv_line AS raw FROM {tables.errors} e JOIN {tables.scans} s "
        f"ON e.scan_id = s.scan_id AND e.file_id = s.file_id"
    )


def first_reject(
    con: duckdb.DuckDBPyConnection, tables: RejectTables, file_order: list[str]
) -> Reject | None:
    """The bad row that comes first in file order, then line order."""
    if not tables.exist(con):
        return None
    rows = con.execute(
        f"SELECT file, min(line) AS line FROM ({_rejects_query(tables)}) GROUP BY file"
    ).fetchall()
    if not rows:
        return None
    rank = {f: i for i, f in enumerate(file_order)}
    file, line = min(rows, key=lambda r: (rank.get(r[0], len(rank)), r[1]))
    row = first_row(
        con.execute(
            f'SELECT file, line, "column", error_type, error, raw FROM ({_rejects_query(tables)}) '
            "WHERE file = ? AND line = ? LIMIT 1",
            [file, line],
        )
    )
    return Reject(row[0], int(row[1]), row[2], row[3], row[4], row[5])


def write_rejects(
    con: duckdb.DuckDBPyConnection, tables: RejectTables, path: Path, base_dir: Path | None
) -> None:
    """Write every bad row (file, line, column, error, raw) to the CSV file ``path``.

    Written under a temporary name and renamed, so the file is whole or absent.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not tables.exist(con):
        write_text_atomic(path, "file,line,column,error,raw\n")
        return
    base = str(base_dir.resolve()) + os.sep if base_dir is not None else None
    file_expr = (
        (
            f"CASE WHEN starts_with(file, {sql_quote(base)}) THEN file[{len(base) + 1}:] "
            "ELSE file END"
        )
        if base
        else "file"
    )
    with atomic_path(path) as tmp:
        con.execute(
            f'COPY (SELECT {file_expr} AS file, line, "column", error, trim(raw, chr(13) || chr(10)) AS raw '
            f"FROM ({_rejects_query(tables)}) ORDER BY file, line) "
            f"TO {sql_quote(str(tmp))} (FORMAT csv, HEADER true)"
        ).fetchall()


def reject_error(reject: Reject, base_dir: Path | None) -> ExtractError:
    """An :class:`ExtractError` for the first bad row, naming file, line and column."""
    shown = display_path(Path(reject.file), base_dir)
    where = f"{shown}, line {reject.line}"
    if reject.column:
        where += f", column {reject.column!r}"
    raw = reject.raw.strip("\r\n") if reject.raw is not None else None  # CRLF files: DuckDB keeps a "\n"
    raw = raw if raw is None or len(raw) <= 200 else raw[:200] + "..."
    kind = reject.error_type
    if kind == "CAST":
        hint = (
            f"fix the value, add it to data.null_values if it stands for a missing value, or "
            f"read the column as text (data.dtypes: {{{reject.column!r}: 'VARCHAR'}}), {_POLICY_HINT}"
        )
    elif kind in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
        hint = f"the line is ragged: check the delimiter and quoting of that line, {_POLICY_HINT}"
    elif kind == "INVALID ENCODING":
        hint = (
            f"the file is not valid in this encoding: set encoding (e.g. 'latin-1' or "
            f"'utf-16') in CSVOptions, {_POLICY_HINT}"
        )
    elif kind == "UNQUOTED VALUE":
        hint = (
            f"a quote is not closed or is followed by text: check quote and escape, {_POLICY_HINT}"
        )
    else:
        hint = f"check the line, {_POLICY_HINT}"
    message = f"bad row at {where}: {reject.message}"
    if raw is not None:
        message += f"\n  line {reject.line}: {raw}"
    err = ExtractError(message, hint=hint)
    err.file, err.line, err.column = shown, reject.line, reject.column  # type: ignore[attr-defined]
    return err
