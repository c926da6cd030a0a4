"""``.tfrecord`` files of ``tf.train.Example`` records, written without TensorFlow or protobuf.

Framing (what ``tf.data.TFRecordDataset`` reads), per record::

    uint64 length (little endian)
    uint32 masked_crc32c(length bytes)
    bytes  data[length]
    uint32 masked_crc32c(data)

with ``masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8`` (mod 2**32). Each ``data`` is a
serialised ``tf.train.Example`` with two features, in key order:

- ``label``: ``int64_list`` of one class code (classification) or ``float_list`` of one value
  (regression);
- ``x``: ``float_list`` of the row's ``n_features`` float32 values (packed).

Read them in TensorFlow with ``tf.io.parse_single_example(r, {"x":
tf.io.FixedLenFeature([d], tf.float32), "label": tf.io.FixedLenFeature([], tf.int64)})``.

CRC-32C is computed in numpy, vectorised across the records of a chunk that share a length
(every record, unless class codes need varints of different widths), one table lookup per
byte position; no compiled CRC package is needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["crc32c", "encode_example", "masked_crc32c", "write_tfrecord", "write_tfrecord_shard"]

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected
_CHUNK_ROWS = 8192


def _table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table[i] = c
    return table


_TABLE = _table()
_TABLE_LIST = [int(v) for v in _TABLE]


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (pure Python; for short inputs and tests)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE_LIST[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _mask(c: np.ndarray | int) -> np.ndarray | int:
    if isinstance(c, np.ndarray):
        c = c.astype(np.uint64)
        return (
            (((c >> np.uint64(15)) | (c << np.uint64(17))) + np.uint64(0xA282EAD8))
            & np.uint64(0xFFFFFFFF)
        ).astype(np.uint32)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that TFRecord framing stores."""
    return int(_mask(crc32c(data)))


def _crc32c_rows(rows: np.ndarray) -> np.ndarray:
    """CRC-32C of each row of a ``uint8`` matrix ``[n, length]``."""
    c = np.full(rows.shape[0], 0xFFFFFFFF, dtype=np.uint32)
    eight = np.uint32(8)
    for j in range(rows.shape[1]):
        c = _TABLE[(c ^ rows[:, j]) & 0xFF] ^ (c >> eight)
    return c ^ np.uint32(0xFFFFFFFF)


# -- protobuf -----------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 is encoded as its two's complement, ten bytes
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _feature_entry(key: str, feature: bytes) -> bytes:
    # map<string, Feature> entry: {1: key, 2: Feature}
    return _ld(1, _ld(1, key.encode()) + _ld(2, feature))


def _float_list(values: bytes) -> bytes:
    # Feature{2: FloatList{1: packed float}}
    return _ld(2, _ld(1, values))


def _int64_list(value: int) -> bytes:
    # Feature{3: Int64List{1: packed varint}}
    return _ld(3, _ld(1, _varint(value)))


def encode_example(x: np.ndarray, label: int | float) -> bytes:
    """Serialise one ``tf.train.Example`` with ``x`` (float_list) and ``label``.

    ``label`` is an ``int64_list`` when it is an integer, else a ``float_list``.
    """
    if isinstance(label, (int, np.integer)):
        lab = _int64_list(int(label))
    else:
        lab = _float_list(np.asarray([label], dtype="<f4").tobytes())
    feats = _feature_entry("label", lab) + _feature_entry(
        "x", _float_list(np.asarray(x, "<f4").tobytes())
    )
    return _ld(1, feats)  # Example{1: Features{1: entries}}


def _frame_chunk(x: np.ndarray, y: np.ndarray) -> bytes:
    """Framed records for the rows of one chunk, in row order."""
    n, d = x.shape
    payload_len = 4 * d
    x_bytes = np.ascontiguousarray(x, dtype="<f4").view(np.uint8).reshape(n, payload_len)
    # A record is a prefix that depends only on the label, then the packed x floats.
    if np.issubdtype(y.dtype, np.integer):
        values, inverse = np.unique(np.asarray(y), return_inverse=True)
        templates = [
            encode_example(np.zeros(d, "<f4"), int(v))[:-payload_len] for v in values.tolist()
        ]
        lengths = np.array([len(t) for t in templates], dtype=np.int64)[inverse]
        groups = [(int(plen), np.flatnonzero(lengths == plen)) for plen in np.unique(lengths)]
        by_len = {
            plen: np.stack([np.frombuffer(t, np.uint8) for t in templates if len(t) == plen])
            for plen, _ in groups
        }
        code_in_group = {}
        for plen in by_len:
            members = [i for i, t in enumerate(templates) if len(t) == plen]
            code_in_group[plen] = np.searchsorted(members, inverse)
        prefix_of = lambda plen, rows: by_len[plen][code_in_group[plen][rows]]  # noqa: E731
    else:
        sentinel = np.asarray([-1.2345678e-30], "<f4").tobytes()
        template = encode_example(np.zeros(d, "<f4"), -1.2345678e-30)[:-payload_len]
        pos = template.find(sentinel)
        base = np.frombuffer(template, np.uint8)
        label_bytes = np.asarray(y, "<f4").view(np.uint8).reshape(n, 4)
        lengths = np.full(n, len(template), dtype=np.int64)
        groups = [(len(template), np.arange(n))]

        def prefix_of(plen: int, rows: np.ndarray) -> np.ndarray:
            pre = np.tile(base, (len(rows), 1))
            pre[:, pos : pos + 4] = label_bytes[rows]
            return pre

    sizes = lengths + payload_len + 16
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    out = np.empty(int(sizes.sum()), np.uint8)
    for plen, rows in groups:
        total = plen + payload_len
        data = np.concatenate([prefix_of(plen, rows), x_bytes[rows]], axis=1)
        length = np.frombuffer(np.uint64(total).astype("<u8").tobytes(), np.uint8)
        length_crc = np.frombuffer(
            np.uint32(_mask(crc32c(length.tobytes()))).astype("<u4").tobytes(), np.uint8
        )
        framed = np.empty((len(rows), total + 16), np.uint8)
        framed[:, :8] = length
        framed[:, 8:12] = length_crc
        framed[:, 12 : 12 + total] = data
        framed[:, 12 + total :] = (
            _mask(_crc32c_rows(data)).astype("<u4").view(np.uint8).reshape(-1, 4)
        )
        if len(groups) == 1:
            return framed.tobytes()
        out[offsets[rows][:, None] + np.arange(total + 16)] = framed
    return out.tobytes()


def write_tfrecord_shard(x: Any, y: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write rows ``x`` ``[n, d]`` (an array, or :class:`~blase.prepare.ShardRows`) and
    labels ``y`` ``[n]`` to one ``.tfrecord`` file."""
    path = Path(path)
    with open(path, "wb") as f:
        for start in range(0, len(x), _CHUNK_ROWS):
            stop = start + _CHUNK_ROWS
            f.write(_frame_chunk(np.asarray(x[start:stop]), np.asarray(y[start:stop])))
    return path


def write_tfrecord(
    out_dir: str | os.PathLike[str], *, splits: tuple[str, ...] | None = None
) -> list[Path]:
    """Write a ``.tfrecord`` beside every ``.npy`` shard of a prepared folder.

    ``shard-00000.npy`` gets ``shard-00000.tfrecord``. The manifest is not rewritten; use
    ``Prepare(...).run(..., tfrecord=True)`` to have the files listed (with hashes) in it.

    Parameters
    ----------
    out_dir:
        A folder written by :class:`~blase.prepare.Prepare`.
    splits:
        Which splits to convert (default: all).

    Returns
    -------
    list of Path
        The files written.
    """
    from blase.prepare._manifest import read_manifest
    from blase.prepare._rows import ShardRows

    root = Path(out_dir)
    manifest = read_manifest(root)
    written = []
    for split, shards in manifest.shards.items():
        if splits is not None and split not in splits:
            continue
        for shard in shards:
            x = ShardRows.of(root, manifest, shard)
            y = np.load(root / shard.labels_file, mmap_mode="r")
            target = (root / shard.file).with_suffix(".tfrecord")
            written.append(write_tfrecord_shard(x, y, target))
    return written
