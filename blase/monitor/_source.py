"""The new data of a check: a path, glob, frame or table opened for DuckDB, a quick estimate
of its rows (to size the sample), and its label read as the model's classes are typed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from blase.cloud import is_remote
from blase.errors import MonitorError
from blase.project import Project

__all__ = ["estimate_rows", "label_as_classes", "open_new_data"]


def open_new_data(data: Any, project: Project, bad_rows: str, con: Any = None,
                  recorded: dict[str, Any] | None = None) -> tuple[Any, Any, str, int | None]:
    """Open new data for a check.

    Parameters
    ----------
    data:
        A path, folder or glob (relative to the current folder, else to the project), a
        pandas frame or an Arrow table.
    project:
        The project.
    bad_rows:
        The policy for malformed CSV rows.
    con:
        The DuckDB connection the check scans on (its schema is read there too).
    recorded:
        The model package's ``extract_options`` (a source plugin's options apply again).

    Returns
    -------
    tuple
        ``(extract or table, Arrow schema, name to show, row count if known)``.
    """
    import pyarrow as pa

    if isinstance(data, str) and is_remote(data):  # a bucket: Extract lists and stages it
        from blase.extract import CSVOptions, Extract

        csv = data.lower().endswith((".csv", ".tsv", ".txt", ".csv.gz", ".csv.zst"))
        extract = Extract.like_training(data, recorded, CSVOptions(bad_rows=bad_rows) if csv else None, project=project)
        return extract, extract.schema(con), data, None
    if isinstance(data, (str, os.PathLike)):
        from blase.extract import CSVOptions, Extract

        path = Path(data)
        if not path.is_absolute():
            # a relative path names a file from the current folder, else from the project's
            path = path.resolve() if path.exists() else project.root / path
        if not path.exists() and not any(ch in str(data) for ch in "*?[:"):
            raise MonitorError(f"new data {data} does not exist", hint="give a file, folder or glob of new rows")
        csv = path.suffix.lower() in (".csv", ".tsv", ".txt") or str(path).endswith((".csv.gz", ".csv.zst"))
        options = CSVOptions(bad_rows=bad_rows) if csv else None
        extract = Extract.like_training(str(path), recorded, options, project=project)
        return extract, extract.schema(con), str(data), None
    if hasattr(data, "to_arrow") and not isinstance(data, pa.Table):
        data = data.to_arrow()
    if not isinstance(data, pa.Table):
        try:
            data = pa.Table.from_pandas(data, preserve_index=False)
        except Exception as exc:
            raise MonitorError(f"cannot read {type(data).__name__} as new data ({exc})",
                               hint="pass a path, a pandas DataFrame or a pyarrow Table") from None
    return data, data.schema, "in-memory table", data.num_rows


def estimate_rows(extract: Any) -> int | None:
    """A quick row estimate of an extract's files (see :func:`blase._sample.estimate_rows`)."""
    from blase._sample import data_files
    from blase._sample import estimate_rows as estimate

    source = extract.source
    path = Path(source) if Path(source).is_absolute() else (extract.project.root / source if extract.project
                                                             else Path(source))
    return estimate(data_files(path))


def _classes_sql_type(classes: list[Any]) -> str | None:
    """The SQL type of the model's classes as Arrow infers it from the JSON values (BOOLEAN,
    BIGINT or DOUBLE), or None (text, or no single type)."""
    values = [c for c in classes if c is not None]
    if not values:
        return None
    if all(isinstance(c, bool) for c in values):
        return "BOOLEAN"
    if any(isinstance(c, bool) or not isinstance(c, (int, float)) for c in values):
        return None
    return "BIGINT" if all(isinstance(c, int) for c in values) else "DOUBLE"


_ARROW_TYPES = {"BOOLEAN": "bool", "BIGINT": "int64", "DOUBLE": "double"}


def label_as_classes(relation: str, label: str, classes: list[Any], found_type: str) -> str:
    """Read the label as the model's classes are typed (a CSV's ``yes``/``no`` may have been
    read as booleans at training time, while a frame passed in holds text)."""
    from blase._duck import sql_ident

    sql_type = _classes_sql_type(classes)
    if sql_type is None or _ARROW_TYPES[sql_type] == found_type:
        return relation
    ident = sql_ident(label)
    return f"(SELECT * REPLACE (TRY_CAST({ident} AS {sql_type}) AS {ident}) FROM {relation})"
