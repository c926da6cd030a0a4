"""CSV through DuckDB's reader: detect the dialect once, then read every file with it pinned.

DuckDB's sniffer runs on the first file (leniently, so a few ragged lines do not derail it)
with the null tokens already in place, so a numeric column holding ``NA`` is still numeric.
The detected delimiter, quoting, header and column types are then passed explicitly to every
later ``read_csv`` call: all files, and the schema, preview, count and streaming passes,
agree on one schema, and no pass sniffs again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from blase._duck import sql_quote
from blase.errors import ExtractError
from blase.extract._options import CSVOptions
from blase.extract._sources import ResolvedSource, display_path, first_row

if TYPE_CHECKING:
    import duckdb

__all__ = ["CSVPlan", "csv_headers", "long_line_error", "plan_csv", "read_csv_sql"]

logger = logging.getLogger(__name__)

_DELIMITERS = (",", ";", "\t", "|")
_NEWLINES = ("\\n", "\\r\\n", "\\r")


@dataclass(frozen=True)
class CSVPlan:
    """A pinned CSV dialect: ``args`` are ready-made ``read_csv`` arguments (SQL text)."""

    args: dict[str, str]
    columns: dict[str, str]
    sniffed: dict[str, str] = field(default_factory=dict)
    #: Text columns read as numbers though a few sampled values are not: what was found.
    strays: dict[str, str] = field(default_factory=dict)


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(sql_quote(v) for v in values) + "]"


def _sql_struct(mapping: dict[str, str]) -> str:
    return "{" + ", ".join(f"{sql_quote(k)}: {sql_quote(v)}" for k, v in mapping.items()) + "}"


def _common_args(opts: CSVOptions, source: ResolvedSource) -> dict[str, str]:
    args = {
        "header": "true" if opts.header else "false",
        "nullstr": _sql_list(opts.null_values),
        "encoding": sql_quote(opts.encoding),
        "compression": sql_quote(
            opts.compression if opts.compression != "auto" else (source.compression or "auto")
        ),
        "skip": str(opts.skip_rows),
    }
    if opts.max_line_size is not None:
        args["max_line_size"] = str(opts.max_line_size)
    if opts.date_format:
        args["dateformat"] = sql_quote(opts.date_format)
    if opts.timestamp_format:
        args["timestampformat"] = sql_quote(opts.timestamp_format)
    return args


def _sniff(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    opts: CSVOptions,
    args: dict[str, str],
    delimiter: str | None,
) -> tuple:
    sniff_args = dict(args)
    if delimiter is not None:
        sniff_args["delim"] = sql_quote(delimiter)
    if opts.quote is not None:
        sniff_args["quote"] = sql_quote(opts.quote)
    if opts.escape is not None:
        sniff_args["escape"] = sql_quote(opts.escape)
    if opts.comment is not None:
        sniff_args["comment"] = sql_quote(opts.comment)
    sniff_args["sample_size"] = str(opts.sample_rows)
    sniff_args["all_varchar"] = "true" if opts.all_varchar else "false"
    sniff_args["ignore_errors"] = "true"
    text = ", ".join(f"{k}={v}" for k, v in sniff_args.items())
    query = (
        "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, "
        f"Columns FROM sniff_csv({sql_quote(str(path))}, {text})"
    )
    return first_row(con.execute(query))


# Files up to this size are read whole to tell "empty" and "header only" apart from data.
_SMALL_FILE = 1 << 20
_COMPRESSED = (".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz")


def _refuse_empty(source: ResolvedSource, opts: CSVOptions) -> None:
    """An empty file, or one with a header and no rows, is an error that says so (DuckDB's
    sniffer says "Sniffer detected value different than the user input", or reads every
    column as text)."""
    header_only: list[str] = []
    has_rows = False
    for path in source.files:
        shown = display_path(path, source.base_dir)
        try:
            size = path.stat().st_size
        except OSError:
            continue  # the reader reports a missing or unreadable file itself
        if size == 0:
            raise ExtractError(
                f"{shown} is empty (0 bytes): no header and no rows",
                hint="write the data into it, or point data.source at the file that holds it",
            )
        if has_rows:
            continue  # only the sizes of the other files matter now
        if size > _SMALL_FILE or path.name.lower().endswith(_COMPRESSED):
            has_rows = True  # a file with data, or one not opened here: read as usual
            continue
        lines = [ln for ln in path.read_bytes().splitlines() if ln.strip()][opts.skip_rows:]
        if not lines:
            raise ExtractError(
                f"{shown} holds only blank lines: no header and no rows",
                hint="write the data into it, or point data.source at the file that holds it",
            )
        if len(lines) > (1 if opts.header else 0):
            has_rows = True
            continue
        header_only.append(shown)
    if header_only and not has_rows:
        which = header_only[0] if len(header_only) == 1 else f"every file ({', '.join(header_only[:3])}, ...)"
        raise ExtractError(
            f"{which} has a header but no rows",
            hint="add rows below the header, or point data.source at the file that holds the data",
        )


_LINE_LIMIT = re.compile(r"Maximum line size of (\d+) bytes exceeded")
_CHUNK = 8 << 20


def _first_long_line(path: Path, limit: int) -> tuple[int, int] | None:
    """``(line number, bytes)`` of the first line of ``path`` longer than ``limit`` bytes."""
    line, length = 1, 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            start = 0
            while (end := chunk.find(b"\n", start)) != -1:
                length += end - start
                if length > limit:
                    return line, length
                line, length, start = line + 1, 0, end + 1
            length += len(chunk) - start
    return (line, length) if length > limit else None


def long_line_error(exc: Exception, source: ResolvedSource) -> ExtractError | None:
    """For DuckDB's "Maximum line size exceeded" (which names line 1 of its buffer, not of
    the file), an error naming the file and line that is too long; else ``None``."""
    found = _LINE_LIMIT.search(str(exc))
    if found is None:
        return None
    limit = int(found.group(1))
    for path in source.files:
        if path.name.lower().endswith(_COMPRESSED):
            continue  # the line number would need a decompressing scan; DuckDB's text stands
        try:
            hit = _first_long_line(path, limit)
        except OSError:
            continue
        if hit is not None:
            line, size = hit
            shown = display_path(path, source.base_dir)
            need = 1 << max(size, 1).bit_length()
            return ExtractError(
                f"{shown}, line {line}: the line is {size:,} bytes long, more than the "
                f"{limit:,} bytes a CSV line may take (a very long field, or a quote that is "
                "never closed)",
                hint=f"if line {line} is right, raise the limit: `data: {{max_line_size: {need}}}` "
                f"in blase.yaml (once: `blase run --set data.max_line_size={need}`); else fix "
                "that line",
            )
    return None


def plan_csv(con: duckdb.DuckDBPyConnection, source: ResolvedSource, opts: CSVOptions) -> CSVPlan:
    """Detect the dialect and column types of ``source``'s first file and pin them.

    Raises
    ------
    ExtractError
        When the header is one column that holds another delimiter than the one asked for.
    """
    import duckdb

    _refuse_empty(source, opts)
    first = source.files[0]
    shown = display_path(first, source.base_dir)
    args = _common_args(opts, source)
    try:
        row = _sniff(con, first, opts, args, opts.delimiter)
        columns = [(c["name"], c["type"]) for c in row[7]]
        if len(columns) == 1 and opts.header:
            name = columns[0][0]
            found = [d for d in _DELIMITERS if d in name and d != row[0]]
            if found and opts.delimiter is not None:
                raise ExtractError(
                    f"{shown}: the header reads as one column {name!r} with delimiter "
                    f"{opts.delimiter!r}, but it holds {found[0]!r}: the file seems to be "
                    f"delimited by {found[0]!r}",
                    hint=f"set delimiter to {found[0]!r} (data.delimiter in blase.yaml), or "
                    "leave it unset to detect it",
                )
            if found:
                # The sniffer gives up on a file with many ragged lines; the header shows the way.
                best = max(found, key=name.count)
                logger.info("%s: delimiter not detected, using %r from the header", shown, best)
                row = _sniff(con, first, opts, args, best)
                columns = [(c["name"], c["type"]) for c in row[7]]
    except duckdb.Error as exc:
        long_line = long_line_error(exc, source)
        if long_line is not None:
            raise long_line from exc
        raise ExtractError(
            f"{shown}: cannot detect how to read this CSV file: {str(exc).splitlines()[0]}",
            hint="set delimiter, quote, header or encoding explicitly (CSVOptions or data.* "
            "in blase.yaml)",
        ) from exc
    delim, quote, escape, newline, comment, skip, _has_header, _ = row
    quote = (
        opts.quote if opts.quote is not None else (quote if quote not in ("", "(empty)") else '"')
    )
    if opts.escape is not None:
        escape = opts.escape
    elif escape in ("", "(empty)"):
        escape = quote
    args |= {
        "auto_detect": "false",
        "delim": sql_quote(opts.delimiter if opts.delimiter is not None else delim),
        "quote": sql_quote(quote),
        "escape": sql_quote(escape),
        "skip": str(max(int(skip or 0), opts.skip_rows)),
    }
    if newline in _NEWLINES:
        args["new_line"] = sql_quote(newline)
    if opts.comment is not None:
        args["comment"] = sql_quote(opts.comment)
    elif comment not in (None, "", "(empty)"):
        args["comment"] = sql_quote(comment)
    sniffed = dict(columns)
    plan = CSVPlan(args=args, columns=dict(sniffed), sniffed=sniffed)
    if opts.all_varchar:
        return plan
    strays = _mostly_numeric(con, first, plan, opts.sample_rows, shown)
    if not strays:
        return plan
    numeric = {c: t for c, (t, _) in strays.items()}
    return CSVPlan(args=args, columns=plan.columns | numeric, sniffed=sniffed | numeric,
                   strays={c: note for c, (_, note) in strays.items()})


#: A text column is read as a number when at most this share of its sampled values (and at
#: least one) are not numbers: a stray "n/a " or "12a" must not turn it into one-hot junk.
MAX_STRAY_SHARE = 0.02
_MIN_NUMBERS = 20
_INTEGER = r"^\s*[+-]?[0-9]+\s*$"


def _mostly_numeric(
    con: duckdb.DuckDBPyConnection, path: Path, plan: CSVPlan, sample_rows: int, shown: str
) -> dict[str, tuple[str, str]]:
    """``{column: ("BIGINT" | "DOUBLE", what was found)}`` for the text columns that are
    numbers in all but a few sampled rows. The strict scan then fails on those rows as CAST
    errors, which go through ``bad_rows`` (error: a message naming file, line, column, value)."""
    text = [c for c, t in plan.columns.items() if t.upper() == "VARCHAR"]
    if not text:
        return {}
    as_text = with_dtypes(plan, {c: "VARCHAR" for c in plan.columns})
    parts = []
    for i, c in enumerate(text):
        q = '"' + c.replace('"', '""') + '"'
        parts.append(
            f"count({q}) AS n{i}, count(TRY_CAST({q} AS DOUBLE)) AS num{i}, "
            f"count(*) FILTER (WHERE regexp_matches({q}, {sql_quote(_INTEGER)})) AS int{i}, "
            f"list(DISTINCT {q}) FILTER (WHERE {q} IS NOT NULL AND TRY_CAST({q} AS DOUBLE) IS NULL)[:3] AS bad{i}"
        )
    source = f"(SELECT * FROM {read_csv_sql([path], as_text, errors='ignore')} LIMIT {int(sample_rows)})"
    row = first_row(con.execute(f"SELECT {', '.join(parts)} FROM {source}"))
    if row is None:
        return {}
    out: dict[str, tuple[str, str]] = {}
    for i, c in enumerate(text):
        n, num, ints, bad = row[4 * i : 4 * i + 4]
        stray = n - num
        if num < _MIN_NUMBERS or stray < 1 or stray > max(1, int(MAX_STRAY_SHARE * n)):
            continue
        dtype = "BIGINT" if ints == num else "DOUBLE"
        note = (
            f"read as {dtype}: {stray} of {n} sampled values {'is' if stray == 1 else 'are'} not a "
            f"number ({', '.join(repr(v) for v in bad)}); their rows go through data.bad_rows"
        )
        out[c] = (dtype, note)
        logger.warning("%s: column %r is %s", shown, c, note)
    return out


def with_dtypes(plan: CSVPlan, dtypes: dict[str, str]) -> CSVPlan:
    """``plan`` with some column types replaced (names already checked)."""
    strays = {c: note for c, note in plan.strays.items() if c not in dtypes}
    return CSVPlan(args=plan.args, columns=plan.columns | dtypes, sniffed=plan.sniffed, strays=strays)


def read_csv_sql(
    files: Sequence[Path],
    plan: CSVPlan,
    *,
    errors: str = "strict",
    rejects: tuple[str, str] | None = None,
) -> str:
    """A ``read_csv(...)`` call over ``files`` with the pinned dialect.

    ``errors``: ``"strict"`` (the first bad row fails the query), ``"ignore"`` (bad rows are
    dropped) or ``"store"`` (dropped and recorded in the ``rejects`` = (errors table, scans
    table) temporary tables).
    """
    paths = sql_quote(str(files[0])) if len(files) == 1 else _sql_list([str(f) for f in files])
    args = dict(plan.args)
    args["columns"] = _sql_struct(plan.columns)
    if errors == "ignore":
        args["ignore_errors"] = "true"
    elif errors == "store":
        assert rejects is not None
        args |= {
            "store_rejects": "true",
            "rejects_table": sql_quote(rejects[0]),
            "rejects_scan": sql_quote(rejects[1]),
        }
    text = ", ".join(f"{k}={v}" for k, v in args.items())
    return f"read_csv({paths}, {text})"


def csv_headers(
    con: duckdb.DuckDBPyConnection, files: Sequence[Path], plan: CSVPlan, header: bool
) -> list[tuple[Path, list[str]]]:
    """Each file's column names (its header line, or ``columnN`` names when it has none)."""
    args = {
        k: v
        for k, v in plan.args.items()
        if k
        in ("delim", "quote", "escape", "new_line", "skip", "comment", "encoding", "compression")
    }
    args |= {
        "header": "false",
        "all_varchar": "true",
        "null_padding": "true",
        "strict_mode": "false",
        "auto_detect": "false",
        "columns": _sql_struct({f"c{i}": "VARCHAR" for i in range(max(len(plan.columns), 1) + 64)}),
    }
    text = ", ".join(f"{k}={v}" for k, v in args.items())
    out = []
    for path in files:
        row = first_row(
            con.execute(f"SELECT * FROM read_csv({sql_quote(str(path))}, {text}) LIMIT 1")
        )
        values = [v for v in (row or ()) if v is not None]
        names = values if header else [f"column{i}" for i in range(len(values))]
        out.append((path, names))
    return out
