"""Prepare's stream split into partitions that an executor's tasks compute.

The driver makes the plan (checks, classes, stratified cut points) over the whole input as
the local path does; each task reads one partition (a file, or a run of its row groups),
applies the transform's SQL, splits and builds the float32 rows exactly as
:meth:`Prepare._fill` does, and hands each split's rows back. The driver appends them to the
shard writers in partition order, so the shards are the bytes the single stream writes: a
row's values, split and id depend on the row alone, and the writers cut shards by row count
whatever pieces the rows come in.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from blase._duck import connect
from blase.prepare._split import SPLITS

if TYPE_CHECKING:
    from blase.executor import RayExecutor
    from blase.prepare._feed import Feed
    from blase.prepare._plan import Plan
    from blase.prepare._prepare import Prepare
    from blase.transform import Transform

__all__ = ["PrepareJob", "RowSink", "SplitRows", "fill_parts", "prepare_part"]


class RowSink(Protocol):
    """Where :meth:`Prepare._fill` puts one split's rows (a shard writer, or a task's collector)."""

    def append(self, x: np.ndarray, y: np.ndarray, ids: np.ndarray | None = None,
               codes: np.ndarray | None = None, tensor: np.ndarray | None = None) -> None: ...


@dataclass
class SplitRows:
    """One split's rows of a partition, gathered in a task."""

    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]] = field(
        default_factory=list)

    def append(self, x: np.ndarray, y: np.ndarray, ids: np.ndarray | None = None,
               codes: np.ndarray | None = None, tensor: np.ndarray | None = None) -> None:
        self.pieces.append((x, y, ids, codes, tensor))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None] | None:
        if not self.pieces:
            return None
        x, y, ids, codes, tensor = zip(*self.pieces, strict=True)
        return (np.concatenate(x), np.concatenate(y), np.concatenate(ids),  # type: ignore[arg-type]
                None if codes[0] is None else np.concatenate(codes),  # type: ignore[arg-type]
                None if tensor[0] is None else np.concatenate(tensor))  # type: ignore[arg-type]


@dataclass
class PrepareJob:
    """One partition of prepare's input and all a task needs to compute its rows."""

    prepare: Prepare
    plan: Plan
    transform: Transform | None
    protect: tuple[str, ...]
    file: str
    #: ``(offset, start, stop)``: rows ``start..stop-1`` of ``file``, whose row 0 is input row ``offset``.
    window: tuple[int, int, int]
    case: str
    budget: int


def prepare_part(job: PrepareJob) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None,
                                                      np.ndarray | None]]:
    """Each split's rows (float32 features, labels, row ids, one-hot codes, tensor values) of one
    partition."""
    from blase.prepare._feed import open_feed

    scratch = Path(tempfile.mkdtemp(prefix="blase-prepare-"))
    con = connect(job.budget, tmp_dir=scratch)
    try:
        feed = open_feed(con, [Path(job.file)], job.transform, scratch, job.budget, protect=job.protect,
                         window=job.window)
        hashed, dense, hot, _ = job.prepare._hashed(job.plan, feed)
        rows = {name: SplitRows() for name in SPLITS}
        final = job.prepare._final(hashed, dense, hot, job.case, tensors=len(job.plan.tensors))
        job.prepare._fill(con, job.plan, final, dense, hot, rows, job.budget, bar=False)
    finally:
        con.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return {name: arrays for name, part in rows.items() if (arrays := part.arrays()) is not None}


def _windows(files: list[Path], target_bytes: int) -> Iterator[tuple[str, tuple[int, int, int]]]:
    """``(file, (offset, start, stop))`` per partition, in input order."""
    import pyarrow.parquet as pq

    from blase.extract import ResolvedSource, plan_parts

    offset = 0
    for f in files:
        n = pq.read_metadata(f).num_rows
        for part in plan_parts(ResolvedSource(str(f), "parquet", (f,)), target_bytes):
            start, stop = part.rows or (0, n)
            yield str(f), (offset, start, stop)
        offset += n


def fill_parts(prepare: Prepare, plan: Plan, feed: Feed, case: str, writers: Mapping[str, RowSink],
               executor: RayExecutor, budget: int) -> None:
    """Prepare's stream computed by ``executor``'s tasks, appended to ``writers`` in order."""
    from blase.progress import progress

    memory = executor.memory_per_task(budget)
    protect = tuple(c for c in (prepare.label, prepare.key) if c)
    windows = list(_windows(feed.files, executor.part_bytes or max(1 << 20, memory // 4)))
    jobs = (PrepareJob(prepare, plan, feed.transform, protect, f, w, case, memory) for f, w in windows)
    with progress("prepare", total=plan.rows) as bar:
        for rows in executor.map(prepare_part, jobs, memory=memory):
            for name in SPLITS:
                if name in rows:
                    writers[name].append(*rows[name])
                    bar.advance(len(rows[name][0]))


