"""``model.keras``: Keras's own format, written byte for byte the same for the same model, and
read back without running code.

A ``.keras`` file is a zip of ``metadata.json``, ``config.json`` (the architecture) and
``model.weights.h5``. Keras stamps it with the time (``date_saved``, the zip entries' dates,
the HDF5 objects' modification times) and with memory addresses (``shared_object_id``), so
two saves of one model differ. :func:`save_keras` saves through ``keras.saving.save_model``
and rewrites those stamps (no date, ids numbered in order of appearance, HDF5 copied without
times), so the same seed gives the same file and ``blase reproduce --verify`` can compare it.

:func:`load_keras` refuses a file whose config names anything outside Keras (a custom class
or function, a Python lambda) before Keras reads it, then loads with ``safe_mode=True``:
loading a model never imports or runs code from the file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from blase.model import TrainError

__all__ = ["check_config", "load_keras", "save_keras"]

_EPOCH = (1980, 1, 1, 0, 0, 0)
_WEIGHTS = "model.weights.h5"


def save_keras(model: Any, path: Path) -> None:
    """Save ``model`` to ``path`` (a ``.keras`` file) with no time or address in it."""
    import keras

    path = Path(path)
    fd, raw = tempfile.mkstemp(suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        keras.saving.save_model(model, raw)
        with zipfile.ZipFile(raw) as src:
            members = {info.filename: src.read(info) for info in src.infolist()}
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as dst:
            for name in sorted(members):
                data = _stable_member(name, members[name])
                info = zipfile.ZipInfo(name, date_time=_EPOCH)
                info.external_attr = 0o644 << 16
                dst.writestr(info, data)
        path.write_bytes(out.getvalue())  # into the train step's staging folder
    finally:
        Path(raw).unlink(missing_ok=True)


def _stable_member(name: str, data: bytes) -> bytes:
    if name == "metadata.json":
        meta = json.loads(data)
        meta.pop("date_saved", None)
        return json.dumps(meta, sort_keys=True).encode()
    if name == "config.json":
        ids: dict[int, int] = {}
        return json.dumps(_renumber(json.loads(data), ids)).encode()
    if name.endswith(".h5"):
        return _h5_without_times(data)
    return data


def _renumber(node: Any, ids: dict[int, int]) -> Any:
    """The config with each ``shared_object_id`` (an ``id()``) replaced by its order of
    appearance: objects shared in the model stay shared, and the text no longer varies."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "shared_object_id" and isinstance(value, int):
                value = ids.setdefault(value, len(ids) + 1)
            out[key] = _renumber(value, ids)
        return out
    if isinstance(node, list):
        return [_renumber(v, ids) for v in node]
    return node


def _h5_without_times(data: bytes) -> bytes:
    """The HDF5 file copied object by object (sorted), with no creation or change times."""
    import h5py

    out = io.BytesIO()
    with h5py.File(io.BytesIO(data), "r") as src, h5py.File(out, "w", libver="earliest") as dst:
        _copy_group(src, dst)
    return out.getvalue()


def _copy_group(src: Any, dst: Any) -> None:
    import h5py

    for key in sorted(src.attrs):
        dst.attrs[key] = src.attrs[key]
    for name in sorted(src):
        item = src[name]
        if isinstance(item, h5py.Group):
            gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
            gcpl.set_obj_track_times(False)
            child = h5py.Group(h5py.h5g.create(dst.id, name.encode(), gcpl=gcpl))
            _copy_group(item, child)
        else:
            ds = dst.create_dataset(name, data=item[()], dtype=item.dtype, track_times=False)
            for key in sorted(item.attrs):
                ds.attrs[key] = item.attrs[key]


def check_config(path: Path) -> None:
    """Refuse a ``.keras`` file whose config names code outside Keras.

    Raises
    ------
    TrainError
        For an unreadable file, a Python lambda, or a class or function from another module
        (a custom layer): loading it would import that module.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise TrainError(f"cannot read {path}: {exc}", hint="train again (`blase run --from train`) or redeploy") from None
    for node in _nodes(config):
        module = str(node.get("module") or "")
        lam = node.get("class_name") == "__lambda__"
        if lam or (module and module != "builtins" and module.split(".")[0] != "keras"):
            what = "a Python lambda" if lam else f"{module}.{node.get('class_name')}"
            raise TrainError(f"{path} names {what}, which Blase will not import or run when it loads a model",
                             hint="build the network from Keras's own layers (no Lambda layers or custom "
                             "classes) and train again")


def _nodes(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def load_keras(keras: Any, path: Path) -> Any:
    """The model in ``path``, loaded with ``safe_mode=True`` after :func:`check_config`."""
    check_config(path)
    try:
        return keras.saving.load_model(os.fspath(path), safe_mode=True, compile=True)
    except (ValueError, TypeError, OSError) as exc:
        raise TrainError(f"cannot load {path}: {str(exc).splitlines()[0]}",
                         hint="train again (`blase run --from train`) or redeploy") from None
