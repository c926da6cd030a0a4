"""Extract split into partitions (a file, or whole row groups of a Parquet file) for an executor.

A partition reads exactly the rows the single stream reads for that file. DuckDB's batches
follow its own scan units (a CSV file read alone is cut into parallel buffers, read among
several files it is not), so both executors hand their rows through :func:`exact_batches`:
batches of exactly ``batch_rows`` rows in source order, which the Parquet parts are written
from, the same bytes whichever executor read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blase._duck import sql_ident

if TYPE_CHECKING:
    import pyarrow as pa

    from blase.executor import RayExecutor
    from blase.extract._extract import Extract
    from blase.extract._sources import ResolvedSource

__all__ = ["PARTITIONED_FORMATS", "Part", "PartJob", "exact_batches", "oversized_file", "plan_parts", "read_part",
           "stream_parts"]

#: The formats whose files an executor reads in parallel (tables, Postgres and plugins: one stream).
PARTITIONED_FORMATS = ("csv", "parquet", "json", "ndjson", "arrow")


@dataclass(frozen=True)
class Part:
    """One partition: a file, or the rows ``rows[0]..rows[1]-1`` (whole row groups) of a Parquet file."""

    file: str
    rows: tuple[int, int] | None = None
    nbytes: int = 0


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


def plan_parts(source: ResolvedSource, target_bytes: int) -> list[Part]:
    """The partitions of ``source``, in file order: a file each, and a large Parquet file's
    row groups in runs of about ``target_bytes`` (uncompressed), at least one group each."""
    import pyarrow.parquet as pq

    parts: list[Part] = []
    for f in source.files:
        if source.format != "parquet":
            parts.append(Part(str(f), None, f.stat().st_size))
            continue
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


def oversized_file(source: ResolvedSource, task_memory: int) -> str | None:
    """Why a task could not hold one of ``source``'s files (a task holds a whole file's batches,
    only a Parquet file splits further); None when every file fits in half a task's memory."""
    from blase.extract._sources import display_path
    from blase.resources import format_size

    if source.format == "parquet":
        return None
    for f in source.files:
        size = f.stat().st_size
        if size > task_memory // 2:
            return (f"{display_path(f, source.base_dir)} ({format_size(size)}) is over half of a task's memory "
                    f"({format_size(task_memory)}; ray.task_memory)")
    return None


def read_part(job: PartJob) -> list[pa.RecordBatch]:
    """The batches of one partition (runs in a task)."""
    extract = job.extract
    con = extract._connect(job.budget)
    try:
        expr = extract._run(con, lambda: extract._expr(con, errors="strict"))
        expr = _conform(con, expr, job.columns)
        return extract._run(con, lambda: list(con.sql(f"SELECT * FROM {expr}").to_arrow_reader(job.batch_rows)))
    finally:
        con.close()


def _conform(con: Any, expr: str, columns: list[tuple[str, str]]) -> str:
    """``expr`` with the whole source's column types (a JSON file read alone may infer narrower ones)."""
    own = [(r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM {expr}").fetchall()]
    if own == columns:
        return expr
    casts = ", ".join(f"CAST({sql_ident(c)} AS {t}) AS {sql_ident(c)}" for c, t in columns)
    return f"(SELECT {casts} FROM {expr})"


def stream_parts(extract: Extract, executor: RayExecutor, budget: int, batch_rows: int,
                 columns: list[tuple[str, str]], advance: Any = None) -> Iterator[pa.RecordBatch]:
    """The source's batches, read by ``executor``'s tasks partition by partition, in order."""
    source = extract.resolved_source()
    memory = executor.memory_per_task(budget)
    parts = plan_parts(source, executor.part_bytes or max(1 << 20, memory // 4))
    jobs = (PartJob(p, extract.for_part(p), columns, memory, batch_rows) for p in parts)
    for part, batches in zip(parts, executor.map(read_part, jobs, memory=memory), strict=True):
        yield from batches
        if advance is not None:
            advance(part.nbytes)


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
