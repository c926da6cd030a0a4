"""Tensor columns: a fixed-shape uint8 array per row, carried whole as one binary column.

A media source (``images``, ``audio``) writes each decoded file as one value of a binary
column (``px``: an image's pixels, row-major, channels last; ``mel``: a spectrogram), every
value the same number of bytes. Extract and Transform carry it as one column (a DuckDB
``BLOB``), not thousands, and Prepare stores it as a uint8 block per shard
(``shard-NNNNN.tensor.npy``, ``manifest.layout.tensors``). As features it stands for one
value per byte, named ``{column}_00000``, ``{column}_00001``...: what a model, the manifest
and ``blase predict`` see.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TENSOR_TYPES", "is_tensor_type", "tensor_block", "tensor_feature_names"]

#: DuckDB type names of a tensor column.
TENSOR_TYPES = ("BLOB",)


def is_tensor_type(dtype: str) -> bool:
    """Whether a column of DuckDB type ``dtype`` (or Arrow type name) is a tensor column."""
    return dtype.upper() in TENSOR_TYPES or dtype.lower() in ("binary", "large_binary", "binary_view") \
        or dtype.lower().startswith("fixed_size_binary")


def tensor_feature_names(column: str, width: int) -> list[str]:
    """The features a tensor column of ``width`` bytes per row stands for."""
    return [f"{column}_{i:05d}" for i in range(width)]


def tensor_block(array: Any, width: int | None = None) -> np.ndarray:
    """The uint8 ``[n, width]`` values of an Arrow binary array whose values all have
    ``width`` bytes (a view of the Arrow buffer when it can be).

    Raises
    ------
    ValueError
        When a value is null or its length is not ``width``.
    """
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n = len(array)
    if array.null_count:
        raise ValueError(f"{array.null_count} null value(s)")
    if pa.types.is_fixed_size_binary(array.type):
        size = array.type.byte_width
        data = np.frombuffer(array.buffers()[1], dtype=np.uint8)
        block = data[array.offset * size:(array.offset + n) * size].reshape(n, size)
    elif pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32 if pa.types.is_binary(array.type) else np.int64)
        offsets = offsets[array.offset:array.offset + n + 1]
        size = int(offsets[1] - offsets[0]) if n else (width or 0)
        if n and (offsets[-1] - offsets[0] != n * size or np.any(np.diff(offsets) != size)):
            lengths = np.diff(offsets)
            bad = int(np.flatnonzero(lengths != size)[0])
            raise ValueError(f"row {bad} has {int(lengths[bad])} bytes, row 0 has {size}")
        data = np.frombuffer(array.buffers()[2], dtype=np.uint8) if n else np.empty(0, np.uint8)
        block = data[int(offsets[0]):int(offsets[0]) + n * size].reshape(n, size)
    else:  # binary views and anything else: through Python bytes
        values = array.cast(pa.binary()) if not pa.types.is_binary(array.type) else array
        return tensor_block(values, width)
    if width is not None and block.shape[1] != width:
        raise ValueError(f"values have {block.shape[1]} bytes, not {width}")
    return block
