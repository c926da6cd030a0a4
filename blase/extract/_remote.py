"""Bucket sources (``s3://``, ``gs://``, ``az://``): the listed objects, staged on local disk.

:func:`stage_remote` brings the objects a URL names into ``.blase/remote/<digest of the URL>/``
(mirroring their keys below the URL's fixed prefix), streaming each in chunks, so memory stays
flat whatever the objects' size; every reader of :mod:`blase.extract` then reads local files.
A manifest records each staged object's ETag/generation and size: an object already staged
with the same tag is not fetched again, and objects gone from the bucket are removed.
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import xxhash

from blase._fs import disk_guard, write_json_atomic
from blase.cloud import RemoteObject, download, filesystem, list_objects, split_url
from blase.errors import ExtractError
from blase.project import Project

__all__ = ["fixed_prefix", "stage_remote"]

MANIFEST = ".manifest.json"
#: Objects downloaded at once.
WORKERS = 8


def fixed_prefix(key: str) -> str:
    """The part of a key before its first glob character, up to the last ``/``."""
    cut = min((key.index(c) for c in "*?[" if c in key), default=None)
    if cut is None:
        return key if key.endswith("/") or not key else key.rpartition("/")[0] + "/"
    return key[:cut].rpartition("/")[0] + "/" if "/" in key[:cut] else ""


def _stage_dir(url: str, project: Project | None) -> Path:
    base = project.state_dir if project else Path(tempfile.gettempdir()) / "blase"
    return base / "remote" / xxhash.xxh3_64_hexdigest(url.encode())


def _read_manifest(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def stage_remote(url: str, project: Project | None) -> Path:
    """The local file (one object) or folder (a prefix or glob) holding ``url``'s objects."""
    scheme, bucket, key = split_url(url)
    fs = filesystem(url)
    objects = list_objects(url, fs=fs)
    folder = _stage_dir(url, project)
    prefix = f"{scheme}://{bucket}/{fixed_prefix(key)}"
    manifest = _read_manifest(folder)
    wanted: dict[Path, str] = {}
    todo = []
    for obj in objects:
        rel = obj.url[len(prefix):] if obj.url.startswith(prefix) else obj.url.rpartition("/")[2]
        local = folder / rel
        wanted[local] = obj.url
        fresh = manifest.get(obj.url) == obj.fingerprint and local.is_file() and local.stat().st_size == obj.size
        if not fresh:
            todo.append((obj, local))
    with disk_guard("the objects of", url, ExtractError), ThreadPoolExecutor(WORKERS) as pool:
        # a few objects in flight at once (each streamed in chunks): many small objects are
        # bound by round trips, not bandwidth
        def fetch(job: tuple[RemoteObject, Path]) -> RemoteObject:
            download(job[0], job[1], fs=fs)
            return job[0]

        for done, obj in enumerate(pool.map(fetch, todo), 1):
            manifest[obj.url] = obj.fingerprint
            if done % 64 == 0:  # a killed staging resumes from here
                write_json_atomic(folder / MANIFEST, manifest)
    for path in sorted(folder.rglob("*")):  # objects gone from the bucket since the last staging
        if path.is_file() and path not in wanted and path.name != MANIFEST and ".tmp" not in path.name:
            path.unlink(missing_ok=True)
    write_json_atomic(folder / MANIFEST, {u: f for u, f in manifest.items() if u in wanted.values()})
    one = objects[0].url == f"{scheme}://{bucket}/{key}" or any(c in key for c in "*?[")
    return next(iter(wanted)) if len(objects) == 1 and one else folder
