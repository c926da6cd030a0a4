"""Where a remote lives: a bucket (``s3://``, ``gs://``, ``az://``) or a shared folder, and the
project's list of remotes (``.blase/remotes.json``: names, URLs and endpoints, never credentials).

:class:`RemoteStore` is the one writer: objects and index files appear whole or not at all (a
bucket's PUT is atomic; in a folder a file is written under a temporary name and renamed).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blase._fs import write_json_atomic
from blase.cloud import filesystem, is_remote, split_url, translate
from blase.errors import BlaseError
from blase.project import Project

__all__ = ["REMOTES", "RemoteError", "RemoteStore", "add_remote", "get_remote", "list_remotes", "remove_remote"]

REMOTES = "remotes.json"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class RemoteError(BlaseError):
    """A remote is unknown, unreachable, or lacks what a pull asks for."""


# --------------------------------------------------------------------------- the project's remotes


def list_remotes(project: Project) -> dict[str, dict[str, Any]]:
    """``{name: {"url": ..., "endpoint_url": ...}}`` of the project's remotes."""
    try:
        data = json.loads((project.state_dir / REMOTES).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def add_remote(project: Project, name: str, url: str, *, endpoint_url: str | None = None) -> dict[str, Any]:
    """Name a remote: a bucket URL or a folder (made if missing). Credentials stay in each
    cloud's own chain (environment, profile files), never here."""
    if not _NAME.match(name):
        raise RemoteError(f"remote name {name!r} is not a simple name",
                          hint="use letters, digits, '-' and '_', e.g. `blase remote add lab s3://bucket/blase`")
    if is_remote(url):
        split_url(url)
        where = url.rstrip("/")
    elif "://" in url:
        raise RemoteError(f"{url!r} is neither a bucket URL nor a folder",
                          hint="use s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or a path such as /mnt/shared/blase")
    else:
        folder = Path(url).expanduser().resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RemoteError(f"cannot use folder {folder} as a remote: {exc.strerror or exc}",
                              hint="give a folder you can write to (a mounted share such as /mnt/shared/blase)") from None
        where = str(folder)
    remotes = list_remotes(project)
    remotes[name] = {"url": where, **({"endpoint_url": endpoint_url} if endpoint_url else {})}
    project.state_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(project.state_dir / REMOTES, remotes, indent=1)
    return remotes[name]


def remove_remote(project: Project, name: str) -> None:
    remotes = list_remotes(project)
    if name not in remotes:
        raise RemoteError(f"no remote named {name!r}", hint=_known(remotes))
    del remotes[name]
    write_json_atomic(project.state_dir / REMOTES, remotes, indent=1)


def _known(remotes: dict[str, Any]) -> str:
    if remotes:
        return f"the remotes of this project: {', '.join(sorted(remotes))} (`blase remote list`)"
    return "add one with `blase remote add NAME s3://BUCKET/PREFIX` (or a shared folder)"


def get_remote(project: Project, name: str | None = None) -> RemoteStore:
    """The :class:`RemoteStore` of the remote called ``name`` (None: the only one there is)."""
    remotes = list_remotes(project)
    if name is None:
        if len(remotes) != 1:
            raise RemoteError("name the remote with --remote NAME" if remotes else "this project has no remote",
                              hint=_known(remotes))
        name = next(iter(remotes))
    if name not in remotes:
        raise RemoteError(f"no remote named {name!r}", hint=_known(remotes))
    spec = remotes[name]
    return RemoteStore(spec["url"], endpoint_url=spec.get("endpoint_url"), name=name)


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class Listed:
    """A file of the remote: its path below the root, size, and modification time (unix)."""

    rel: str
    size: int
    mtime: float


class RemoteStore:
    """Files under a bucket prefix or a folder, addressed by paths relative to its root."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, name: str | None = None) -> None:
        self.url = url
        self.name = name or url
        self.endpoint_url = endpoint_url
        self._fs: Any = None

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r})"

    @property
    def is_bucket(self) -> bool:
        return is_remote(self.url)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            if self.is_bucket:
                self._fs = filesystem(self.url, endpoint_url=self.endpoint_url)
            else:
                from fsspec.implementations.local import LocalFileSystem

                self._fs = LocalFileSystem()
        return self._fs

    def _path(self, rel: str) -> str:
        if self.is_bucket:
            _scheme, bucket, key = split_url(self.url)
            return "/".join(p for p in (bucket, key.strip("/"), rel) if p)
        return os.path.join(self.url, rel)

    def _fail(self, exc: Exception) -> BlaseError:
        if isinstance(exc, BlaseError):
            return exc
        if self.is_bucket:
            return translate(exc, self.url)
        return RemoteError(f"cannot use remote folder {self.url}: {exc}", hint="check that the share is mounted and writable")

    def listing(self, prefix: str) -> dict[str, Listed]:
        """Every file under ``prefix`` (one recursive listing; no file is read)."""
        root = self._path(prefix).rstrip("/")
        try:
            found = self.fs.find(root, detail=True)
        except FileNotFoundError:
            return {}
        except Exception as exc:  # the clients' own errors too (botocore's are not OSErrors)
            raise self._fail(exc) from None
        base = self._path("").rstrip("/") + "/"
        out = {}
        for path, info in found.items():
            rel = path[len(base):] if path.startswith(base) else path
            if ".tmp-" in rel.rpartition("/")[2]:
                continue  # a folder remote's write in progress (or a killed one)
            out[rel] = Listed(rel, int(info.get("size") or 0), _mtime(info))
        return out

    def stale_temporary(self, age_s: float) -> list[str]:
        """Partial files older than ``age_s`` that killed writes left in a folder remote (a
        bucket's uploads are atomic and leave none)."""
        if self.is_bucket:
            return []
        now, found = time.time(), []
        for path in Path(self.url).rglob("*.tmp-*"):
            try:
                if path.is_file() and now - path.stat().st_mtime > age_s:
                    found.append(path.relative_to(self.url).as_posix())
            except OSError:
                continue
        return found

    def exists(self, rel: str) -> bool:
        try:
            return bool(self.fs.exists(self._path(rel)))
        except Exception as exc:  # the clients' own errors too (botocore's are not OSErrors)
            raise self._fail(exc) from None

    def put_file(self, local: Path, rel: str) -> None:
        """Upload ``local`` as ``rel``, whole or not at all."""
        target = self._path(rel)
        try:
            if self.is_bucket:
                self.fs.put_file(str(local), target)
                return
            tmp = f"{target}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                self.fs.put_file(str(local), tmp)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        except Exception as exc:  # the clients' own errors too (botocore's are not OSErrors)
            raise self._fail(exc) from None

    def put_json(self, rel: str, data: Any, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        local = tmp_dir / f"upload-{os.getpid()}-{secrets.token_hex(4)}.json"
        local.write_text(json.dumps(data, indent=1, sort_keys=True, default=str), encoding="utf-8")
        try:
            self.put_file(local, rel)
        finally:
            local.unlink(missing_ok=True)

    def get_file(self, rel: str, local: Path) -> None:
        """Download ``rel`` into ``local`` (a temporary name, renamed at the end)."""
        from blase._fs import atomic_path

        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_path(local) as tmp:
                self.fs.get_file(self._path(rel), str(tmp))
        except FileNotFoundError:
            raise RemoteError(f"remote {self.name} has no {rel}",
                              hint="it was collected or never pushed: push it again from the machine that has it") from None
        except Exception as exc:  # the clients' own errors too (botocore's are not OSErrors)
            raise self._fail(exc) from None

    def get_json(self, rel: str) -> Any:
        try:
            with self.fs.open(self._path(rel), "rb") as f:
                return json.loads(f.read().decode("utf-8"))
        except FileNotFoundError:
            raise RemoteError(f"remote {self.name} has no {rel}", hint="list what it holds with `blase runs --remote NAME`") from None
        except ValueError as exc:
            raise RemoteError(f"remote {self.name}: {rel} is not valid JSON ({exc})",
                              hint="push the run again to rewrite it") from None
        except Exception as exc:
            raise self._fail(exc) from None

    def delete(self, rel: str) -> None:
        try:
            self.fs.rm_file(self._path(rel))
        except FileNotFoundError:
            pass
        except Exception as exc:  # the clients' own errors too (botocore's are not OSErrors)
            raise self._fail(exc) from None


def _mtime(info: dict[str, Any]) -> float:
    for name in ("mtime", "LastModified", "last_modified", "updated", "timeCreated"):
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            from datetime import datetime

            return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
    return time.time()
