"""Typed reading options, one pydantic model per kind of source.

Each model forbids unknown keys, so a typo (``delimeter=";"``) fails at once instead of being
ignored. The options that every source shares are ``dtypes`` (column -> DuckDB type name,
applied after reading) and, for text formats, ``bad_rows``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from blase.config import DataConfig

__all__ = [
    "DEFAULT_NULL_VALUES",
    "ArrowOptions",
    "BadRows",
    "CSVOptions",
    "JSONOptions",
    "ParquetOptions",
    "PluginOptions",
    "PostgresOptions",
    "SourceOptions",
    "TableOptions",
    "options_for",
]

logger = logging.getLogger(__name__)

#: Text read as null in CSV files unless ``null_values`` says otherwise (pandas' common ones).
DEFAULT_NULL_VALUES: tuple[str, ...] = ("", "NA", "N/A", "null", "NaN")

BadRows = Literal["error", "skip", "quarantine"]


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dtypes: dict[str, str] = Field(
        default_factory=dict,
        description="column -> DuckDB type (DOUBLE, BIGINT, VARCHAR, TIMESTAMP, DATE, BOOLEAN...)",
    )


class CSVOptions(_Options):
    """How to read delimited text (``.csv``, ``.tsv``, ``.txt``, optionally ``.gz``/``.zst``).

    Everything left at ``None`` is detected from the first file (DuckDB's sniffer) and then
    pinned, so every file and every pass reads the same columns with the same types.

    Bad rows (too many or too few fields, a value that does not fit its column's type,
    bytes that are not valid in ``encoding``) follow ``bad_rows``: ``"error"`` stops at the
    first one, naming file, line and column; ``"skip"`` drops them (and counts them);
    ``"quarantine"`` drops them and writes each with its file, line, column, error and raw
    text to ``rejects_path`` (default ``outputs/rejects/<source>.csv``).
    """

    delimiter: str | None = Field(default=None, description="field separator; detected if unset")
    header: bool = Field(default=True, description="the first line holds the column names")
    quote: str | None = Field(default=None, description="quote character (default '\"')")
    escape: str | None = Field(default=None, description="escape character inside quotes")
    null_values: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NULL_VALUES),
        description="text read as null (default: empty, NA, N/A, null, NaN)",
    )
    encoding: str = Field(default="utf-8", description="utf-8, utf-16 or latin-1")
    compression: Literal["auto", "none", "gzip", "zstd"] = "auto"
    skip_rows: int = Field(default=0, ge=0, description="lines to skip before the header")
    comment: str | None = Field(default=None, description="lines starting with this are ignored")
    date_format: str | None = Field(default=None, description="strptime format of DATE columns")
    timestamp_format: str | None = Field(
        default=None, description="strptime format of TIMESTAMP columns"
    )
    sample_rows: int = Field(default=20_480, ge=1, description="rows sniffed to detect types")
    max_line_size: int | None = Field(
        default=None, ge=1, description="the longest line in bytes (default DuckDB's 2,000,000)"
    )
    all_varchar: bool = Field(default=False, description="read every column as text")
    bad_rows: BadRows = "error"
    rejects_path: str | None = Field(
        default=None, description="where quarantined rows go (default outputs/rejects/<name>.csv)"
    )


class ParquetOptions(_Options):
    """How to read Parquet: one file, a folder of files, or a glob."""

    union_by_name: bool = Field(
        default=False,
        description="allow files with different columns (missing ones read as null)",
    )


class JSONOptions(_Options):
    """How to read JSON: an array of objects (``.json``) or one object per line (``.ndjson``).

    ``bad_rows="skip"`` drops lines that are not valid JSON (DuckDB reads such a line as a
    row of nulls, so rows whose values are all null are dropped too) and counts them by
    comparing with the number of non-blank lines (newline-delimited files only).
    """

    format: Literal["auto", "array", "newline_delimited"] = "auto"
    sample_rows: int = Field(default=20_480, ge=1, description="rows sampled to detect types")
    bad_rows: Literal["error", "skip"] = "error"


class ArrowOptions(_Options):
    """How to read Arrow IPC files (``.arrow``, ``.feather`` v2, ``.ipc``) or streams."""


class TableOptions(_Options):
    """A table of a SQLite or DuckDB database file (``'file.sqlite:table'`` also works)."""

    table: str | None = Field(default=None, description="table (or view) name")
    batch_rows: int = Field(default=50_000, ge=1, description="rows fetched at a time from SQLite")


class PostgresOptions(_Options):
    """A Postgres table, read through DuckDB's ``postgres`` extension.

    The source is a libpq connection string or URI (``postgresql://user@host/db``).
    """

    table: str
    schema_name: str = "public"


class PluginOptions(_Options):
    """How a ``source`` plugin reads (``data.format: NAME``): its own ``options`` (validated by
    the plugin's ``config_model``) and the rows per batch it is asked for."""

    options: dict[str, Any] = Field(default_factory=dict, description="the plugin's own options")
    batch_rows: int = Field(default=16_384, ge=1, description="rows per batch the plugin yields at most")
    bad_rows: BadRows = Field(default="error", description="what a reader that checks its records does with a bad one")


SourceOptions = (
    CSVOptions | ParquetOptions | JSONOptions | ArrowOptions | TableOptions | PostgresOptions | PluginOptions
)


def options_for(fmt: str, data: DataConfig) -> SourceOptions:
    """The options for a source of format ``fmt`` from the ``data:`` section of blase.yaml."""
    dtypes = dict(data.dtypes)
    if fmt not in ("csv", "parquet", "json", "ndjson", "arrow", "sqlite", "duckdb", "postgres"):
        return PluginOptions(dtypes=dtypes, options=dict(data.options), bad_rows=data.bad_rows)
    if data.options:
        logger.warning("data.options are a source plugin's; ignored for %s", fmt)
    if fmt == "csv":
        kwargs: dict[str, Any] = {"dtypes": dtypes, "bad_rows": data.bad_rows}
        if data.delimiter is not None:
            kwargs["delimiter"] = data.delimiter
        if data.null_values is not None:
            kwargs["null_values"] = list(data.null_values)
        if data.max_line_size is not None:
            kwargs["max_line_size"] = data.max_line_size
        return CSVOptions(**kwargs)
    for key in ("delimiter", "null_values", "max_line_size"):
        if getattr(data, key) is not None:
            logger.warning("data.%s applies to CSV sources only; ignored for %s", key, fmt)
    if fmt in ("json", "ndjson"):
        if data.bad_rows == "quarantine":
            logger.warning("bad_rows: quarantine applies to CSV; bad JSON lines are skipped")
        return JSONOptions(dtypes=dtypes, bad_rows="error" if data.bad_rows == "error" else "skip")
    if fmt == "parquet":
        return ParquetOptions(dtypes=dtypes)
    if fmt == "arrow":
        return ArrowOptions(dtypes=dtypes)
    return TableOptions(dtypes=dtypes)
