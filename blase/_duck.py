"""DuckDB connections that respect a step's memory budget.

Every data step opens its connection here: ``memory_limit`` is a share of the step's budget
(the rest is left for the Arrow batches and numpy arrays the step holds in Python), spilling
goes to ``temp_directory`` (``.blase/tmp`` in a project), and insertion order is preserved so
that streaming a file gives its rows in file order (splits and shards depend on it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

from blase.resources import format_size, memory_budget

if TYPE_CHECKING:
    import duckdb

__all__ = ["DUCKDB_SHARE", "budget_note", "check_sql_expression", "confined_files", "confined_folders",
           "confinement_error", "connect",
           "sql_ident", "sql_quote"]

#: Share of a step's memory budget given to DuckDB's buffer manager.
DUCKDB_SHARE = 0.5

#: The folders DuckDB may open files in, while :func:`confined_files` is active.
_CONFINED: ContextVar[tuple[Path, ...] | None] = ContextVar("blase_confined_files", default=None)


@contextmanager
def confined_files(*folders: str | os.PathLike[str]) -> Iterator[None]:
    """Within the block, connections from :func:`connect` open files only inside ``folders``
    (each a folder, or one file; the first is named in errors as the project).

    A path check sees ``data/db.duckdb``, but a view inside that database may read any file
    (``CREATE VIEW v AS SELECT * FROM read_csv('/home/me/.ssh/...')``); so may anything else
    DuckDB expands (globs, folders, symlinks). DuckDB itself refuses, with ``allowed_directories``
    and ``enable_external_access = false``, any file outside (symlinks resolved), and the error
    names the file. The assistant's tools run inside this block, with the project's folder.
    """
    token = _CONFINED.set(tuple(Path(f).resolve() for f in folders if os.path.exists(f)))
    try:
        yield
    finally:
        _CONFINED.reset(token)


def confined_folders() -> tuple[Path, ...] | None:
    """The folders :func:`confined_files` confines to here and now (None: no confinement), for
    work handed to other processes (Ray tasks) to confine itself the same way."""
    return _CONFINED.get()


def confinement_error(exc: BaseException) -> str | None:
    """For DuckDB's refusal under :func:`confined_files`, a sentence naming the file; else None."""
    import re

    import duckdb

    folders = _CONFINED.get()
    if folders is None or not isinstance(exc, duckdb.PermissionException):
        return None
    found = re.search(r'file "([^"]*)"', str(exc))
    what = found.group(1) if found else "a file"
    return f"it reads {what}, which is outside the project {folders[0]}"


def _confine(con: duckdb.DuckDBPyConnection, tmp_dir: str | os.PathLike[str] | None) -> None:
    folders = _CONFINED.get()
    if folders is None:
        return
    allowed = [*folders, *([Path(tmp_dir).resolve()] if tmp_dir is not None else [])]
    listed = ", ".join(sql_quote(str(f) + os.sep) for f in allowed if not f.is_file())
    con.execute(f"SET allowed_directories = [{listed}]")
    files = ", ".join(sql_quote(str(f)) for f in allowed if f.is_file())
    if files:
        con.execute(f"SET allowed_paths = [{files}]")
    con.execute("SET enable_external_access = false")  # cannot be turned back on


def connect(
    memory: int | str | None = None,
    *,
    tmp_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    nan_safe: bool = True,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection limited to ``DUCKDB_SHARE`` of ``memory``.

    ``nan_safe`` turns off DuckDB's statistics propagation (see below), which is only wrong
    for Parquet (whose statistics leave NaN out); a connection that reads no Parquet may
    keep it (``False``) and run some aggregates about 20 % faster.
    """
    import duckdb

    budget = memory_budget(memory)
    config: dict[str, str | int | bool] = {
        "memory_limit": f"{max(64 << 20, int(budget * DUCKDB_SHARE)) // (1 << 20)}MiB",
        "preserve_insertion_order": True,
        "threads": threads or os.cpu_count() or 1,
    }
    if tmp_dir is not None:
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        config["temp_directory"] = str(tmp_dir)
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")
    _confine(con, tmp_dir)
    # Parquet's min/max statistics leave NaN out (as the format requires), and DuckDB's
    # statistics propagation then folds isnan(x) to false for such a column (seen on 2.0.1:
    # `SELECT isnan(x) FROM read_parquet(...)` gives false on a NaN), so NaN would pass as
    # a number through impute, scale and prepare's checks. Turned off for that reason.
    if nan_safe:
        con.execute("SET disabled_optimizers = 'statistics_propagation'")
    return con


def budget_note(memory: int | str | None) -> str:
    """Human text for a budget, e.g. for logs: '1.0 GB (DuckDB 500.0 MB)'."""
    budget = memory_budget(memory)
    return f"{format_size(budget)} (DuckDB {format_size(int(budget * DUCKDB_SHARE))})"


def row_index_sql(files: list[str] | list[Path]) -> str:
    """A ``BIGINT`` expression, inside ``read_parquet([files...])``, for each row's position in
    ``files`` taken file by file in the order given (DuckDB's ``file_index`` and
    ``file_row_number`` virtual columns; no extra pass over the data)."""
    if len(files) == 1:
        return "CAST(file_row_number AS BIGINT)"
    import numpy as np
    import pyarrow.parquet as pq

    sizes = [pq.read_metadata(f).num_rows for f in files]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).tolist()
    listed = ", ".join(str(int(o)) for o in offsets)
    return f"([{listed}]::BIGINT[])[CAST(file_index AS BIGINT) + 1] + CAST(file_row_number AS BIGINT)"


def sql_quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A quoted SQL identifier (any column name, including spaces and quotes)."""
    return '"' + str(name).replace('"', '""') + '"'


def check_sql_expression(expr: str) -> str:
    """``expr`` if it parses as exactly one DuckDB SQL expression with no subquery, else
    ``ValueError`` saying why.

    A ``filter.where`` or ``sql.expr`` is spliced into a statement, so a string such as
    ``1=1); COPY (...) TO '/f.csv'; SELECT 1 WHERE (1=1`` would otherwise run a second
    statement. DuckDB's own expression parser rejects anything that is not one expression;
    its serialised parse tree shows a subquery (which could read any file, e.g.
    ``(SELECT ... FROM read_csv('/etc/passwd'))``), which a row expression never needs.
    """
    import json

    import duckdb

    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("an SQL expression must be a non-empty string")
    try:
        duckdb.SQLExpression(expr)
    except Exception as exc:
        raise ValueError(
            f"{expr!r} is not one SQL expression ({str(exc).splitlines()[0]}); write a single "
            "DuckDB expression over the columns, with no ';' and no unbalanced parentheses"
        ) from None
    con = duckdb.connect()
    try:
        tree = con.execute("SELECT json_serialize_sql(?)", ["SELECT " + expr]).fetchone()
    finally:
        con.close()
    parsed = json.loads(tree[0]) if tree else {}
    if parsed.get("error") or len(parsed.get("statements", [])) != 1:
        raise ValueError(f"{expr!r} is not one SQL expression; write a single DuckDB expression")
    if _has_subquery(parsed["statements"]):
        raise ValueError(
            f"{expr!r} holds a subquery (SELECT ...); a row expression may only use the row's "
            "columns, literals and functions"
        )
    return expr


def _has_subquery(node: object) -> bool:
    if isinstance(node, dict):
        if node.get("class") == "SUBQUERY":
            return True
        return any(_has_subquery(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_subquery(v) for v in node)
    return False
