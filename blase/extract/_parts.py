"""Extract split into partitions (a file, whole row groups of a Parquet file, or a plain CSV
file's byte range cut at line starts) for an executor.

A partition reads exactly the rows the single stream reads for that file. DuckDB's batches
follow its own scan units (a CSV file read alone is cut into parallel buffers, read among
several files it is not), so both executors hand their rows through :func:`exact_batches`:
batches of exactly ``batch_rows`` rows in source order, which the Parquet parts are written
from, the same bytes whichever executor read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blase._duck import sql_ident
from blase._sample import csv_excerpt, preamble_end
from blase.errors import ExtractError
from blase.extract._csv_split import CutRefused, line_spans, preamble_lines, splittable

if TYPE_CHECKING:
    import pyarrow as pa

    from blase.executor import RayExecutor
    from blase.extract._csv import CSVPlan
    from blase.extract._extract import Extract
    from blase.extract._sources import ResolvedSource

__all__ = ["PARTITIONED_FORMATS", "Part", "PartJob", "PartUnreadable", "exact_batches", "oversized_file", "plan_parts",
           "read_part", "stream_parts"]

#: The formats whose files an executor reads in parallel (tables, Postgres and plugins: one stream).
PARTITIONED_FORMATS = ("csv", "parquet", "json", "ndjson", "arrow")


@dataclass(frozen=True)
class Part:
    """One partition: a file, the rows ``rows[0]..rows[1]-1`` (whole row groups) of a Parquet
    file, or the bytes ``span[0]..span[1]-1`` (whole lines) of a CSV file, read after its header."""

    file: str
    rows: tuple[int, int] | None = None
    nbytes: int = 0
    span: tuple[int, int] | None = None
    #: Why a large CSV file was not cut (for the warning when it is read in this process).
    whole: str | None = None


class PartUnreadable(ExtractError):
    """A task could not read a CSV file's byte range: the driver finds the first bad row of
    the whole file, so the error names the line as the local executor's does."""


@dataclass
class PartJob:
    """All a task needs to read a :class:`Part` as the driver's :class:`Extract` would."""

    part: Part
    #: The driver's Extract narrowed to the part (:meth:`Extract.for_part`).
    extract: Extract
    #: ``(column, DuckDB type)`` of the whole source: a file whose own reading differs is cast to it.
    columns: list[tuple[str, str]]
    budget: int
    batch_rows: int


def plan_parts(source: ResolvedSource, target_bytes: int, csv: CSVPlan | None = None,
               csv_bytes: int | None = None) -> list[Part]:
    """The partitions of ``source``, in file order: a file each, a large Parquet file's row
    groups in runs of about ``target_bytes`` (uncompressed), at least one group each, and, given
    its pinned dialect ``csv``, a plain CSV file over ``csv_bytes`` (default ``target_bytes``)
    in byte ranges of about that size at line starts where that reads the same rows."""
    parts: list[Part] = []
    for f in source.files:
        if source.format == "parquet":
            parts += _row_group_runs(f, target_bytes)
        elif source.format == "csv" and csv is not None and f.stat().st_size > (csv_bytes or target_bytes):
            parts += _line_ranges(f, source, csv, csv_bytes or target_bytes)
        else:
            parts.append(Part(str(f), None, f.stat().st_size))
    return parts


def _row_group_runs(f: Path, target_bytes: int) -> list[Part]:
    import pyarrow.parquet as pq

    parts: list[Part] = []
    meta = pq.read_metadata(f)
    start = size = 0
    rows = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        if size and size + group.total_byte_size > target_bytes:
            parts.append(Part(str(f), (start, rows), size))
            start, size = rows, 0
        rows += group.num_rows
        size += group.total_byte_size
    parts.append(Part(str(f), (start, rows) if meta.num_row_groups > 1 else None, size))
    return parts


def _line_ranges(f: Path, source: ResolvedSource, csv: CSVPlan, target_bytes: int) -> list[Part]:
    """``f`` in byte ranges of whole lines, or whole (with the reason) when a cut could split a row."""
    why = splittable(csv, source.compression)
    if why is None:
        try:
            spans = line_spans(f, csv, target_bytes)
        except CutRefused as refused:
            why = str(refused)
        else:
            return [Part(str(f), None, end - start, span=(start, end)) for start, end in spans]
    return [Part(str(f), None, f.stat().st_size, whole=f"it cannot be cut at line starts: {why}")]


def oversized_file(source: ResolvedSource, parts: list[Part], task_memory: int) -> str | None:
    """Why a task could not hold one of ``parts`` (a whole CSV/JSON/Arrow file over half of a
    task's memory, where only Parquet files and plain CSV files split further); None when
    every part fits."""
    from blase.extract._sources import display_path
    from blase.resources import format_size

    for part in parts:
        if part.rows is None and part.span is None and part.nbytes > task_memory // 2 and source.format != "parquet":
            shown = display_path(Path(part.file), source.base_dir)
            why = f", and {part.whole}" if part.whole else ""
            return (f"{shown} ({format_size(part.nbytes)}) is over half of a task's memory "
                    f"({format_size(task_memory)}; ray.task_memory){why}")
    return None


def read_part(job: PartJob) -> list[pa.RecordBatch]:
    """The batches of one partition (runs in a task)."""
    if job.part.span is None:
        return _read(job.extract, job, strict=True)
    import duckdb

    path = Path(job.part.file)
    plan = job.extract._csv_plan
    assert plan is not None
    project = job.extract.project
    if project is not None:
        project.tmp_dir.mkdir(parents=True, exist_ok=True)
    with open(path, "rb") as f:
        preamble = f.read(preamble_end(path, preamble_lines(plan)))
    with csv_excerpt(path, preamble, _bytes_of(path, job.part.span),
                     tmp_dir=project.tmp_dir if project is not None else None) as excerpt:
        try:
            return _read(job.extract.for_part(Part(str(excerpt))), job, strict=False)
        except duckdb.Error as exc:  # lines counted from the excerpt: the driver names the file's
            raise PartUnreadable(str(exc)) from None


def _bytes_of(path: Path, span: tuple[int, int], piece: int = 8 << 20) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(span[0])
        left = span[1] - span[0]
        while left > 0 and (data := f.read(min(piece, left))):
            left -= len(data)
            yield data


def _read(extract: Extract, job: PartJob, *, strict: bool) -> list[pa.RecordBatch]:
    """``extract``'s batches, conformed to the whole source's column types; ``strict``: a DuckDB
    error becomes the extract's own error (file and line) here, else it is raised as it is."""
    con = extract._connect(job.budget)

    def run(thunk: Any) -> Any:
        return extract._run(con, thunk) if strict else thunk()

    try:
        expr = run(lambda: extract._expr(con, errors="strict"))
        expr = _conform(con, expr, job.columns)
        return run(lambda: list(con.sql(f"SELECT * FROM {expr}").to_arrow_reader(job.batch_rows)))
    finally:
        con.close()


def _conform(con: Any, expr: str, columns: list[tuple[str, str]]) -> str:
    """``expr`` with the whole source's column types (a JSON file read alone may infer narrower ones)."""
    own = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {expr}").fetchall()]
    if own == columns:
        return expr
    casts = ", ".join(f"CAST({sql_ident(c)} AS {t}) AS {sql_ident(c)}" for c, t in columns)
    return f"(SELECT {casts} FROM {expr})"


def stream_parts(extract: Extract, executor: RayExecutor, parts: list[Part], memory: int, batch_rows: int,
                 columns: list[tuple[str, str]], advance: Any = None) -> Iterator[pa.RecordBatch]:
    """The batches of ``parts`` (of the source of ``extract``), read by ``executor``'s tasks of
    ``memory`` bytes each, in order."""
    jobs = (PartJob(p, extract.for_part(p), columns, memory, batch_rows) for p in parts)
    try:
        for part, batches in zip(parts, executor.map(read_part, jobs, memory=memory), strict=True):
            yield from batches
            if advance is not None:
                advance(part.nbytes)
    except PartUnreadable as exc:
        raise extract._translate(RuntimeError(exc.message)) from None


def exact_batches(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of ``batches`` in order, in batches of exactly ``rows`` rows (the last one may be
    shorter): what extract writes a row group from, whoever cut the batches it was given."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not pending and batch.num_rows == rows:
            yield batch
            continue
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows).combine_chunks().to_batches()[0]
            rest = table.slice(rows)
            pending = rest.to_batches() if rest.num_rows else []
            held -= rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
