"""Canonical JSON and config hashes (see :mod:`blase.hashing`)."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import logging
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from blase.errors import HashError
from blase.hashing._files import _INLINE_ARRAY_BYTES, hash_bytes

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- configs


def _canonical(obj: Any, where: str) -> Any:
    """A JSON-ready copy of ``obj`` whose serialisation does not depend on insertion order."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, enum.Enum):
        return _canonical(obj.value, where)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, PurePath):
        return obj.as_posix()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex()
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = k if isinstance(k, str) else _dumps(_canonical(k, f"{where}[{k!r}]"))
            if key in out:
                raise HashError(
                    f"Cannot hash config: {where} has two keys that both read {key!r}.",
                    hint="Use distinct string keys.",
                )
            out[key] = _canonical(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        items = [_canonical(v, f"{where}{{}}") for v in obj]
        return sorted(items, key=_dumps)
    if callable(getattr(obj, "model_dump", None)) and not isinstance(obj, type):  # pydantic
        return _canonical(obj.model_dump(mode="json"), where)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return _canonical(fields, where)
    if type(obj).__module__ == "numpy" and callable(getattr(obj, "tolist", None)):
        dtype = getattr(obj, "dtype", None)
        if (
            getattr(obj, "nbytes", 0) > _INLINE_ARRAY_BYTES
            and dtype is not None
            and dtype.kind != "O"
        ):
            import numpy as np  # a dependency; imported only for big arrays

            data = hash_bytes(memoryview(np.ascontiguousarray(obj)).cast("B"))
            return {"ndarray": {"dtype": dtype.str, "shape": list(obj.shape), "xxh3_128": data}}
        return _canonical(obj.tolist(), where)  # numpy scalars and small arrays
    raise HashError(
        f"Cannot hash config: {where} is a {type(obj).__module__}.{type(obj).__qualname__}.",
        hint="Use dicts, lists, strings, numbers, paths, dataclasses or pydantic models.",
    )


def _dumps(obj: Any) -> str:
    # json writes floats with float.__repr__ (shortest round-trip), NaN and Infinity as such.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(obj: Any) -> str:
    """The canonical JSON text of a config object, as :func:`hash_config` hashes it.

    Sorted keys, no spaces, floats by ``repr``, pydantic models via
    ``model_dump(mode="json")``, dataclasses as dicts of their fields (the class name is not
    included), paths as posix strings, tuples as lists, sets sorted, enums by value, bytes as
    hex, numpy scalars and arrays as lists (arrays over 64 KiB as
    ``{"ndarray": {"dtype", "shape", "xxh3_128"}}``). Anything else raises
    :class:`~blase.errors.HashError` naming where it was found.
    """
    try:
        return _dumps(_canonical(obj, "config"))
    except RecursionError as exc:
        raise HashError(
            "Cannot hash config: it contains itself (or is nested too deeply).",
            hint="Break the reference cycle.",
        ) from exc


def hash_config(obj: Any) -> str:
    """xxh3-128 of :func:`canonical_json` of ``obj``; key order does not matter."""
    return hash_bytes(canonical_json(obj).encode("utf-8", "surrogateescape"))


