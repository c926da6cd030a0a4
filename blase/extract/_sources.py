"""Turning a source string (file, folder, glob, ``file.sqlite:table``, Postgres URI) into files.

:func:`resolve_source` finds the files and the format; :func:`check_same_columns` makes sure
the files of a folder or glob share one set of columns before anything is read, so a stray
file with another header fails with both file names instead of half-way through a run.
"""

from __future__ import annotations

import functools
import glob
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from blase.errors import ExtractError

__all__ = [
    "FORMATS",
    "ResolvedSource",
    "check_same_columns",
    "close_match",
    "display_path",
    "first_row",
    "resolve_source",
    "source_label",
]

FORMATS = ("csv", "parquet", "json", "ndjson", "arrow", "sqlite", "duckdb", "postgres")

_COMPRESSION = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
    ".arrows": "arrow",
    ".sqlite": "sqlite",
    ".sqlite3": "sqlite",
    ".db": "sqlite",
    ".duckdb": "duckdb",
    ".ddb": "duckdb",
}
_TABLE_SPEC = re.compile(r"^(?P<path>.+\.(?:sqlite3?|db|duckdb|ddb)):(?P<table>[^:/\\]+)$", re.I)
_POSTGRES = re.compile(r"^(postgres(ql)?://|(host|dbname|user)=)", re.I)
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ResolvedSource:
    """Where a source's data is and how to read it."""

    spec: str
    format: str
    files: tuple[Path, ...] = ()
    table: str | None = None
    compression: str | None = None
    label: str = "source"
    is_many: bool = False
    base_dir: Path | None = None

    @cached_property
    def total_bytes(self) -> int:
        total = 0
        for f in self.files:
            try:
                total += f.stat().st_size
            except OSError:
                pass
        return total


def display_path(path: Path, base_dir: Path | None) -> str:
    """``path`` relative to ``base_dir`` when it lies inside, else as given."""
    if base_dir is not None:
        try:
            return path.resolve().relative_to(base_dir.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def close_match(name: str, names: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the name in ``names`` closest to ``name``, or ``""``."""
    import difflib

    lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.5)
    if not close:
        close = [n for n in lower if n and (n in name.lower() or name.lower() in n)][:1]
    return f" (did you mean {lower[close[0]]!r}?)" if close else ""


def first_row(result: Any) -> Any:
    """The first row of a DuckDB result, fetched to the end (DuckDB refuses new work on a
    connection whose last result is unfinished)."""
    rows = result.fetchall()
    return rows[0] if rows else None


def split_suffixes(name: str) -> tuple[str, str | None]:
    """The data format suffix of a file name and its compression, e.g. ``('.csv', 'gzip')``."""
    parts = name.rsplit(".", 2)
    if len(parts) > 1 and parts[0]:  # only the last two suffixes count: one answer per kind of name
        return _split_tail("x." + ".".join(parts[1:]))  # (a folder of 100,000 images has one)
    return _split_tail(name)


@functools.lru_cache(maxsize=256)
def _split_tail(name: str) -> tuple[str, str | None]:
    lower = name.lower()
    compression = None
    for suffix, kind in _COMPRESSION.items():
        if lower.endswith(suffix):
            compression = kind
            lower = lower[: -len(suffix)]
            break
    return os.path.splitext(lower)[1], compression


def format_of(path: Path, plugins: Mapping[str, str] | None = None) -> str | None:
    """The format of ``path`` from its extension; ``plugins`` maps source plugins' suffixes
    (``.xlsx``) to their names."""
    suffix, _ = split_suffixes(path.name)
    return _BY_SUFFIX.get(suffix) or (plugins or {}).get(suffix)


def _label(text: str) -> str:
    """A file-name-safe short name for a source (rejects file, messages)."""
    name = Path(text.rstrip("/\\")).name or "source"
    suffix, compression = split_suffixes(name)
    if compression:
        name = name[: name.lower().rfind(".")]
    if suffix and name.lower().endswith(suffix):
        name = name[: -len(suffix)]
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "source"
    return name


#: A file-name-safe short name for a source (a bucket URL's objects are named after the URL).
source_label = _label


def _missing(
    spec: str, path: Path, base_dir: Path | None, project_root: Path | None
) -> ExtractError:
    where = (
        f" (project folder {project_root})" if project_root else f" (current folder {Path.cwd()})"
    )
    return ExtractError(
        f"source {spec!r} not found: no file or folder at {path}{where}",
        hint="check data.source in blase.yaml or the path you passed; relative paths start at "
        "the project folder",
    )


def resolve_source(
    spec: str | os.PathLike[str],
    *,
    format: str | None = None,
    table: str | None = None,
    base_dir: Path | None = None,
    project_root: Path | None = None,
    plugins: Mapping[str, str] | None = None,
) -> ResolvedSource:
    """Find the files behind ``spec`` and the format to read them with.

    Parameters
    ----------
    spec:
        A file, a folder (every data file under it, recursively), a glob (``data/*.csv``,
        ``**`` allowed), ``'file.sqlite:table'`` / ``'file.duckdb:table'``, or a Postgres
        connection string.
    format:
        Forces the format (one of :data:`FORMATS`); otherwise taken from the file extension.
    table:
        The table of a SQLite/DuckDB/Postgres source when not given in ``spec``.
    base_dir:
        Folder that relative paths start from (the project root).
    plugins:
        Source plugins' suffixes and names (``{".xlsx": "excel"}``): their formats are known too.
    """
    text = os.fspath(spec)
    plugins = dict(plugins or {})
    if format is not None and format not in FORMATS and format not in plugins.values():
        raise ExtractError(
            f"unknown format {format!r} for source {text!r}",
            hint=f"use one of {', '.join(FORMATS)}",
        )
    if format == "postgres" or (format is None and _POSTGRES.match(text)):
        if not table:
            raise ExtractError(
                f"Postgres source {text!r} needs a table", hint="pass PostgresOptions(table='name')"
            )
        return ResolvedSource(spec=text, format="postgres", table=table, label=_label(table))

    match = _TABLE_SPEC.match(text)
    if match and not Path(text).exists():
        text, table = match["path"], match["table"]

    def absolute(p: str) -> Path:
        path = Path(p).expanduser()
        return path if path.is_absolute() or base_dir is None else base_dir / path

    if _GLOB_CHARS.search(text):
        pattern = absolute(text)
        files = tuple(
            Path(f) for f in sorted(glob.glob(str(pattern), recursive=True)) if os.path.isfile(f)
        )
        if not files:
            where = f" (project folder {project_root})" if project_root else ""
            raise ExtractError(
                f"source {text!r} matches no files{where}",
                hint="check the pattern; relative patterns start at the project folder",
            )
        many = len(files) > 1
        label = _label(text.replace("*", "").replace("?", "")) if many else _label(files[0].name)
    else:
        path = absolute(text)
        if path.is_dir():
            files = tuple(
                p
                for p in _files_under(path)
                if not p.name.startswith((".", "_"))
                and (found := format_of(p, plugins)) is not None
                and (format is None or _compatible(found, format))
            )
            if not files:
                raise ExtractError(
                    f"folder {text!r} holds no data files ({', '.join(sorted(set(_BY_SUFFIX)))})",
                    hint="point data.source at a file, a glob such as data/*.csv, or a folder of "
                    "Parquet/CSV/JSON files",
                )
            many = True
            label = _label(path.name)
        elif path.exists():
            files, many, label = (path,), False, _label(path.name)
        else:
            raise _missing(text, path, base_dir, project_root)

    formats = {format_of(f, plugins) for f in files}
    if format is None:
        if len(formats) > 1:
            raise ExtractError(
                f"source {text!r} mixes formats ({', '.join(sorted(str(f) for f in formats))}): "
                f"{', '.join(display_path(f, base_dir) for f in files[:5])}",
                hint="use a glob that matches one kind of file, e.g. data/*.parquet",
            )
        fmt = formats.pop()
        if fmt is None:
            raise ExtractError(
                f"cannot tell the format of {display_path(files[0], base_dir)} from its extension",
                hint="set data.format in blase.yaml, or pass CSVOptions/ParquetOptions/... "
                "(CSV: .csv .tsv .txt, Parquet: .parquet, JSON: .json .ndjson .jsonl, "
                "Arrow: .arrow .feather .ipc)",
            )
    else:
        fmt = format
    if fmt in ("sqlite", "duckdb"):
        if many:
            raise ExtractError(
                f"source {text!r} names several database files; give one",
                hint="use 'file.sqlite:table' or 'file.duckdb:table'",
            )
        if not table:
            raise ExtractError(
                f"source {text!r} is a {fmt} database but names no table",
                hint=f"write '{text}:table_name', or pass TableOptions(table='table_name')",
            )
    compressions = {split_suffixes(f.name)[1] for f in files}
    compression = compressions.pop() if len(compressions) == 1 else None
    return ResolvedSource(
        spec=text,
        format=fmt,
        files=files,
        table=table,
        compression=compression,
        label=label if not table else _label(f"{label}_{table}"),
        is_many=many,
        base_dir=base_dir,
    )


def _files_under(root: Path) -> list[Path]:
    """The regular files under ``root`` (symlinked folders are not entered), in the order of
    ``sorted(root.rglob("*"))``: by their parts. One ``scandir`` per folder, whose entries
    know a regular file without a ``stat`` each (a folder of 100,000 images)."""
    found: list[tuple[tuple[str, ...], str]] = []
    stack: list[tuple[str, tuple[str, ...]]] = [(os.fspath(root), ())]
    while stack:
        folder, parts = stack.pop()
        try:
            entries = os.scandir(folder)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.is_dir() and not entry.is_symlink():
                    stack.append((entry.path, (*parts, entry.name)))
                elif entry.is_file():
                    found.append(((*parts, entry.name), entry.path))
    found.sort(key=lambda item: item[0])
    return [Path(path) for _, path in found]


def _compatible(found: str | None, wanted: str) -> bool:
    return found == wanted or {found, wanted} <= {"json", "ndjson"}


def check_same_columns(
    columns_of: Sequence[tuple[Path, list[str]]], base_dir: Path | None, *, hint: str
) -> None:
    """Raise :class:`ExtractError` naming the first two files whose columns differ."""
    if len(columns_of) < 2:
        return
    first, first_cols = columns_of[0]
    for path, cols in columns_of[1:]:
        if cols == first_cols:
            continue
        a, b = display_path(first, base_dir), display_path(path, base_dir)
        missing = [c for c in first_cols if c not in cols]
        extra = [c for c in cols if c not in first_cols]
        parts = []
        if missing:
            parts.append(f"{b} lacks {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"{b} has {', '.join(map(repr, extra))} which {a} lacks")
        if not parts:
            parts.append(f"the columns are in another order ({a}: {first_cols}; {b}: {cols})")
        raise ExtractError(
            f"files of one source disagree on their columns: {'; '.join(parts)}", hint=hint
        )
