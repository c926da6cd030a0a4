"""Streaming ``.npy`` shard writers.

A shard is written as rows arrive, never held whole in memory: the ``.npy`` header is
written first for a full shard (``shard_rows`` rows) with room to spare, the rows are
appended, and when the shard closes the header is rewritten in place with the true row
count (padding with spaces, which the ``.npy`` format allows). The bytes depend only on the
rows, so the same rows give the same file whatever the batch sizes were.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from blase._writeback import WriteBehind
from blase.hashing import hash_file

__all__ = ["NpyStream", "SplitWriter", "WriteBehind", "WrittenShard"]

_MAGIC = b"\x93NUMPY\x01\x00"
_ALIGN = 64


def _header(descr: str, shape: tuple[int, ...], total: int | None = None) -> bytes:
    """A version 1.0 ``.npy`` header, padded to ``total`` bytes (or the next multiple of 64)."""
    text = "{" + f"'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, " + "}"
    body = text.encode("latin1")
    size = total if total is not None else -(-(len(_MAGIC) + 2 + len(body) + 1) // _ALIGN) * _ALIGN
    pad = size - len(_MAGIC) - 2 - len(body) - 1
    if pad < 0:
        raise ValueError("npy header does not fit")  # pragma: no cover - sized generously
    body += b" " * pad + b"\n"
    return _MAGIC + len(body).to_bytes(2, "little") + body


def _write_block(f: BinaryIO, data: np.ndarray) -> None:
    """Append an array's bytes to an open shard file (the one place bytes hit the disk)."""
    if data.size == 0:  # rows of zero width (every feature one-hot): no bytes, and cast() refuses them
        return
    f.write(memoryview(np.ascontiguousarray(data)).cast("B"))


class NpyStream:
    """A ``.npy`` file of rows ``[n, *tail]`` written in pieces.

    Parameters
    ----------
    path:
        The file to write.
    dtype:
        Little-endian numpy dtype of the rows.
    tail:
        Shape of one row (``(d,)`` for features, ``()`` for labels).
    capacity:
        Most rows the file will hold (sizes the header).
    sink:
        Where the appends are written (a :class:`WriteBehind`); None: at once.
    """

    def __init__(self, path: Path, dtype: np.dtype, tail: tuple[int, ...], capacity: int,
                 sink: WriteBehind | None = None) -> None:
        self.path = path
        self._sink = sink
        self.dtype = np.dtype(dtype)
        self.tail = tail
        self.rows = 0
        # Size the header for the widest row count the file could reach.
        widest = _header(self.dtype.str, (10 ** len(str(max(capacity, 1))), *tail))
        self._header_size = len(widest)
        self._f: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._f.write(_header(self.dtype.str, (0, *tail), self._header_size))

    def append(self, rows: np.ndarray) -> None:
        if len(rows):
            rows = rows.astype(self.dtype, copy=False)
            if self._sink is not None:
                self._sink.submit(_write_block, self._f, rows)
            else:
                _write_block(self._f, rows)
            self.rows += len(rows)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.drain()
        self._f.seek(0)
        self._f.write(_header(self.dtype.str, (self.rows, *self.tail), self._header_size))
        self._f.close()

    def abort(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass


@dataclass
class WrittenShard:
    file: str
    labels_file: str
    rows: int
    hash: str
    labels_hash: str
    ids_file: str | None = None
    codes_file: str | None = None
    codes_hash: str | None = None
    tensor_file: str | None = None
    tensor_hash: str | None = None


@dataclass
class SplitWriter:
    """Cuts one split's rows into shards of ``shard_rows`` rows under ``root/split/``."""

    root: Path
    split: str
    n_features: int
    y_dtype: np.dtype
    shard_rows: int
    sink: WriteBehind | None = None
    #: One-hot groups stored as integer codes beside the float32 columns (0: none).
    n_codes: int = 0
    codes_dtype: np.dtype = field(default_factory=lambda: np.dtype("<i2"))
    #: uint8 values of tensor columns per row, stored beside the float32 columns (0: none).
    n_tensor: int = 0
    shards: list[WrittenShard] = field(default_factory=list)
    _x: NpyStream | None = None
    _y: NpyStream | None = None
    _ids: NpyStream | None = None
    _codes: NpyStream | None = None
    _tensor: NpyStream | None = None

    def __post_init__(self) -> None:
        (self.root / self.split).mkdir(parents=True, exist_ok=True)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards) + (self._x.rows if self._x is not None else 0)

    def _open(self) -> None:
        i = len(self.shards)
        base = self.root / self.split / f"shard-{i:05d}"
        self._x = NpyStream(
            base.with_suffix(".npy"), np.dtype("<f4"), (self.n_features,), self.shard_rows, self.sink
        )
        self._y = NpyStream(Path(f"{base}.labels.npy"), self.y_dtype, (), self.shard_rows, self.sink)
        self._ids = NpyStream(Path(f"{base}.ids.npy"), np.dtype("<i8"), (), self.shard_rows, self.sink)
        if self.n_codes:
            self._codes = NpyStream(Path(f"{base}.codes.npy"), self.codes_dtype, (self.n_codes,),
                                    self.shard_rows, self.sink)
        if self.n_tensor:
            self._tensor = NpyStream(Path(f"{base}.tensor.npy"), np.dtype("u1"), (self.n_tensor,),
                                     self.shard_rows, self.sink)

    def _finish(self) -> None:
        assert self._x is not None and self._y is not None and self._ids is not None
        for stream in (self._x, self._y, self._ids, self._codes, self._tensor):
            if stream is not None:
                stream.close()
        rel = lambda p: p.relative_to(self.root).as_posix()  # noqa: E731
        codes, tensor = self._codes, self._tensor
        self.shards.append(
            WrittenShard(
                file=rel(self._x.path),
                labels_file=rel(self._y.path),
                rows=self._x.rows,
                hash=hash_file(self._x.path),
                labels_hash=hash_file(self._y.path),
                ids_file=rel(self._ids.path),
                codes_file=rel(codes.path) if codes else None,
                codes_hash=hash_file(codes.path) if codes else None,
                tensor_file=rel(tensor.path) if tensor else None,
                tensor_hash=hash_file(tensor.path) if tensor else None,
            )
        )
        self._x = self._y = self._ids = self._codes = self._tensor = None

    def append(self, x: np.ndarray, y: np.ndarray, ids: np.ndarray | None = None,
               codes: np.ndarray | None = None, tensor: np.ndarray | None = None) -> None:
        """Append rows; ``ids`` are their global row indices (source order), kept per shard;
        ``codes`` their one-hot codes (``[n, n_codes]``) and ``tensor`` their uint8 tensor
        values (``[n, n_tensor]``) when the split has any."""
        if ids is None:
            ids = np.arange(self.rows, self.rows + len(x), dtype=np.int64)
        start = 0
        n = len(x)
        while start < n:
            if self._x is None:
                self._open()
            assert self._x is not None and self._y is not None and self._ids is not None
            take = min(n - start, self.shard_rows - self._x.rows)
            self._x.append(x[start : start + take])
            self._y.append(y[start : start + take])
            self._ids.append(ids[start : start + take])
            if self._codes is not None and codes is not None:
                self._codes.append(codes[start : start + take])
            if self._tensor is not None and tensor is not None:
                self._tensor.append(tensor[start : start + take])
            start += take
            if self._x.rows == self.shard_rows:
                self._finish()

    def close(self) -> None:
        if self._x is not None and self._x.rows > 0:
            self._finish()
        elif self._x is not None:  # pragma: no cover - a shard is opened only to take rows
            self.abort()

    def abort(self) -> None:
        for stream in (self._x, self._y, self._ids, self._codes, self._tensor):
            if stream is not None:
                stream.abort()
                try:
                    os.unlink(stream.path)
                except OSError:
                    pass
        self._x = self._y = self._ids = self._codes = self._tensor = None
