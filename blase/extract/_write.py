"""Writing a batch stream to a folder of Parquet parts, whole or not at all."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from blase._fs import replace_dir
from blase._writeback import WriteBehind

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["PART_BYTES", "write_parts"]

#: Arrow bytes written to one Parquet part before the next part starts.
PART_BYTES = 256 << 20


def write_parts(
    batches: Iterable[pa.RecordBatch],
    out: Path,
    *,
    empty_schema: Callable[[], pa.Schema],
    part_bytes: int = PART_BYTES,
) -> list[Path]:
    """Write ``batches`` to ``out/part-00000.parquet``, ... (zstd) and return the parts.

    The parts go to a temporary folder next to ``out``, which replaces ``out`` only once
    every batch is written; on any failure the temporary folder is removed and ``out`` is
    left as it was. A stream without rows still gives one (empty) part with
    ``empty_schema()``, so readers see the columns.
    """
    import pyarrow.parquet as pq

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    parts: list[Path] = []
    # Parquet encoding runs on a writer thread while DuckDB parses the next batch.
    sink = WriteBehind()
    try:
        tmp.mkdir()
        writer = None
        written = 0
        try:
            for batch in batches:
                if writer is None or written >= part_bytes:
                    if writer is not None:
                        sink.submit(writer.close)
                    parts.append(tmp / f"part-{len(parts):05d}.parquet")
                    writer = pq.ParquetWriter(parts[-1], batch.schema, compression="zstd")
                    written = 0
                sink.submit(writer.write_batch, batch)
                written += batch.nbytes
            if writer is not None:
                sink.submit(writer.close)
            sink.drain()
        finally:
            sink.close()
        if not parts:
            parts.append(tmp / "part-00000.parquet")
            pq.ParquetWriter(parts[-1], empty_schema(), compression="zstd").close()
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / p.name for p in parts]
