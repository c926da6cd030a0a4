"""Extract: stream a source as Arrow record batches under a memory budget.

>>> from blase.extract import Extract, CSVOptions
>>> ex = Extract("data/flights.csv", CSVOptions(bad_rows="quarantine"), project=".")
>>> ex.schema(); ex.preview(5); ex.count()
>>> for batch in ex.batches(memory="2GB"): ...
>>> result = ex.to_parquet("outputs/extract")          # a StepResult

Sources: CSV (``.csv``, ``.tsv``, ``.txt``, ``.gz``/``.zst``), Parquet (file, folder, glob),
JSON arrays and newline-delimited JSON, Arrow IPC / Feather, tables of SQLite and DuckDB
files (``'file.sqlite:table'``), Postgres (with DuckDB's ``postgres`` extension), and globs
or folders of many files, which must share their columns. CSV reads ``""``, ``NA``, ``N/A``,
``null`` and ``NaN`` as null by default. Bad CSV rows follow ``bad_rows``: ``error`` (the
default; the message names file, line and column), ``skip`` or ``quarantine`` (written to
``outputs/rejects/<source>.csv``). Rows in always equal rows out plus rows rejected.
"""

from blase._duck import confined_files
from blase.extract._extract import Extract, ExtractStats
from blase.extract._options import (
    DEFAULT_NULL_VALUES,
    ArrowOptions,
    CSVOptions,
    JSONOptions,
    ParquetOptions,
    PluginOptions,
    PostgresOptions,
    SourceOptions,
    TableOptions,
)
from blase.extract._parts import Part, plan_parts
from blase.extract._plugin import SourceReader
from blase.extract._sources import ResolvedSource, resolve_source

__all__ = [
    "DEFAULT_NULL_VALUES",
    "ArrowOptions",
    "CSVOptions",
    "Extract",
    "ExtractStats",
    "JSONOptions",
    "ParquetOptions",
    "Part",
    "PluginOptions",
    "PostgresOptions",
    "ResolvedSource",
    "SourceOptions",
    "SourceReader",
    "TableOptions",
    "confined_files",
    "plan_parts",
    "resolve_source",
]
