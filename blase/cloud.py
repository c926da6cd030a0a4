"""Cloud buckets through fsspec: ``s3://``, ``gs://`` and ``az://`` URLs (the ``cloud`` extra).

Credentials and endpoints come from each cloud's standard chain, never from ``blase.yaml`` or a
run's record: for S3 the environment (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``), the shared
profile files and instance roles, and ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` for
S3-compatible servers such as MinIO; for Google Cloud Storage the application default
credentials (``STORAGE_EMULATOR_HOST`` for an emulator); for Azure the ``AZURE_STORAGE_*``
variables and ``DefaultAzureCredential``.

:func:`list_objects` lists what a URL (an object, a prefix or a glob) names with each object's
ETag or generation and size, from LIST requests only: the step cache decides that nothing
changed without a single download. :func:`download` streams one object into a file in chunks
(constant memory), under a temporary name renamed at the end.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blase._fs import atomic_path, disk_cause
from blase.errors import BlaseError

__all__ = [
    "SCHEMES",
    "CloudError",
    "RemoteObject",
    "credential_source",
    "download",
    "filesystem",
    "is_remote",
    "list_objects",
    "split_url",
    "translate",
]

#: URL schemes and the fsspec package that serves each.
SCHEMES = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
_URL = re.compile(r"^(?P<scheme>[a-z0-9]+)://(?P<bucket>[^/]+)(?:/(?P<key>.*))?$", re.I)
_GLOB = re.compile(r"[*?\[]")
#: Bytes read per request while streaming an object to disk.
CHUNK = 8 << 20


class CloudError(BlaseError):
    """A bucket cannot be read or written: missing, access denied, nothing matched, no package."""


@dataclass(frozen=True)
class RemoteObject:
    """One object of a bucket: its URL, size in bytes and version tag (ETag or generation)."""

    url: str
    size: int
    tag: str

    @property
    def fingerprint(self) -> str:
        """What the step cache keys on: the tag and the size (no byte of the object is read)."""
        return f"{self.tag}:{self.size}"


def is_remote(spec: str | os.PathLike[str] | None) -> bool:
    """Whether ``spec`` is a URL of a cloud bucket (``s3://``, ``gs://``, ``az://``)."""
    if spec is None:
        return False
    match = _URL.match(os.fspath(spec).strip())
    return bool(match and match["scheme"].lower() in SCHEMES)


def split_url(url: str) -> tuple[str, str, str]:
    """``(scheme, bucket, key)`` of a bucket URL; the key may be empty or a glob."""
    match = _URL.match(url.strip())
    if not match or match["scheme"].lower() not in SCHEMES:
        raise CloudError(f"{url!r} is not a bucket URL", hint="write s3://BUCKET/PREFIX, gs://BUCKET/... or az://CONTAINER/...")
    return match["scheme"].lower(), match["bucket"], match["key"] or ""


def _endpoint(scheme: str, endpoint_url: str | None) -> str | None:
    if endpoint_url:
        return endpoint_url
    if scheme == "s3":
        return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    return None


def filesystem(url: str, *, endpoint_url: str | None = None) -> Any:
    """The fsspec filesystem for ``url``'s scheme, with the cloud's own credential chain.

    ``endpoint_url`` (an S3-compatible server, a storage emulator) wins over the environment.
    """
    import importlib

    scheme, _bucket, _key = split_url(url)
    package = SCHEMES[scheme]
    if package == "gcsfs" and os.environ.get("STORAGE_EMULATOR_HOST"):
        # gcsfs's gRPC probe of the bucket type waits 60 s for an emulator that speaks only HTTP
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    try:
        importlib.import_module(package)
        import fsspec
    except ImportError:
        raise CloudError(f"reading {scheme}:// needs the {package} package, which is not installed",
                         hint="pip install 'blase[cloud]'") from None
    options: dict[str, Any] = {}
    endpoint = _endpoint(scheme, endpoint_url)
    if endpoint and scheme in ("s3", "gs", "gcs"):
        options["endpoint_url"] = endpoint
    if scheme in ("gs", "gcs") and os.environ.get("STORAGE_EMULATOR_HOST"):
        options["token"] = "anon"  # an emulator takes no credentials
    # A fresh instance: a listing must see the bucket as it is now, not fsspec's cached listing.
    return fsspec.filesystem(scheme, skip_instance_cache=True, **options)


def credential_source(url: str) -> str:
    """Where the credentials for ``url`` come from, in words (for "access denied" messages)."""
    scheme, _bucket, _key = split_url(url)
    if scheme == "s3":
        profile = os.environ.get("AWS_PROFILE")
        try:
            import botocore.session

            creds = botocore.session.Session().get_credentials()
        except Exception:  # an unreadable profile file: say what was asked for
            creds = None
        method = getattr(creds, "method", None)
        where = {"env": "the environment (AWS_ACCESS_KEY_ID)", "shared-credentials-file":
                 "~/.aws/credentials", "config-file": "~/.aws/config"}.get(str(method), method)
        found = f"credentials from {where}" if where else "no credentials (none in the environment, ~/.aws or an instance role)"
        return found + (f", profile {profile!r}" if profile else "")
    if scheme in ("gs", "gcs"):
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            return f"the storage emulator at {os.environ['STORAGE_EMULATOR_HOST']} (no credentials)"
        if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            return f"GOOGLE_APPLICATION_CREDENTIALS={os.environ['GOOGLE_APPLICATION_CREDENTIALS']}"
        return "Google application default credentials (gcloud auth application-default login)"
    names = [n for n in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_KEY") if n in os.environ]
    return f"the environment ({', '.join(names)})" if names else "DefaultAzureCredential (no AZURE_STORAGE_* variables)"


def _tag(info: dict[str, Any]) -> str:
    for name in ("ETag", "etag", "generation", "md5Hash", "mtime", "LastModified", "last_modified"):
        value = info.get(name)
        if value:
            return str(value).strip('"')
    return ""


def translate(exc: BaseException, url: str) -> CloudError:
    """A :class:`CloudError` naming ``url`` for what a client raised."""
    scheme, bucket, _key = split_url(url)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    denied = ("AccessDenied", "Forbidden", "403", "failed to authenticate", "AuthorizationFailure")
    if isinstance(exc, PermissionError) or getattr(exc, "status_code", None) in (401, 403) or any(
            word in text for word in denied):
        return CloudError(f"access denied to {url} ({text}); tried {credential_source(url)}",
                          hint=f"give these credentials read access to {scheme}://{bucket}, or set "
                          "other ones the standard way (AWS_PROFILE, GOOGLE_APPLICATION_CREDENTIALS, "
                          "AZURE_STORAGE_CONNECTION_STRING)")
    if "connect" in text.lower() or isinstance(exc, ConnectionError):
        endpoint = _endpoint(scheme, None)
        return CloudError(f"cannot reach {endpoint or f'the {scheme} service'} to read {url} ({text})",
                          hint="check the network, and the endpoint: AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL "
                          "for S3-compatible servers, STORAGE_EMULATOR_HOST for a GCS emulator")
    if isinstance(exc, FileNotFoundError) and "bucket" in text.lower():
        return CloudError(f"bucket {scheme}://{bucket} does not exist ({text})",
                          hint="check the bucket name in data.source, and the endpoint "
                          "(AWS_ENDPOINT_URL_S3 for MinIO and other S3-compatible servers)")
    endpoints = ("the BlobEndpoint of AZURE_STORAGE_CONNECTION_STRING" if scheme in ("az", "abfs")
                 else "AWS_ENDPOINT_URL_S3 for S3-compatible servers")
    return CloudError(f"cannot read {url}: {type(exc).__name__}: {text}",
                      hint=f"check the URL, the network and the endpoint ({endpoints})")


def _check_bucket(fs: Any, url: str) -> None:
    scheme, bucket, _key = split_url(url)
    try:
        fs.ls(bucket, detail=False)
    except Exception as exc:
        if isinstance(exc, FileNotFoundError):
            raise CloudError(f"bucket {scheme}://{bucket} does not exist (named by {url})",
                             hint="check the bucket name, and the endpoint (AWS_ENDPOINT_URL_S3 "
                             "for MinIO and other S3-compatible servers)") from None
        raise translate(exc, url) from None


def list_objects(url: str, *, fs: Any = None, endpoint_url: str | None = None) -> list[RemoteObject]:
    """The objects ``url`` names, sorted by URL: one object, every object under a prefix
    (``s3://b/data/``), or those a glob matches (``s3://b/data/*.parquet``, ``**`` allowed).

    Raises :class:`CloudError` for a missing bucket, denied access (naming the credentials
    tried) and a URL that matches nothing.
    """
    scheme, bucket, key = split_url(url)
    fs = fs or filesystem(url, endpoint_url=endpoint_url)
    path = f"{bucket}/{key}".rstrip("/")
    try:
        if _GLOB.search(key):
            found = fs.glob(path, detail=True)
        else:
            found = fs.find(path, detail=True) if key == "" or key.endswith("/") else {}
            if not found:
                try:
                    info = fs.info(path)
                except FileNotFoundError:
                    info = None
                if info and info.get("type") == "directory":
                    found = fs.find(path, detail=True)
                elif info:
                    found = {path: info}
    except FileNotFoundError:
        found = {}  # a missing bucket: said below
    except Exception as exc:  # the clients' own errors (botocore's, google's) are not OSErrors
        raise translate(exc, url) from None
    objects = [RemoteObject(f"{scheme}://{name}", int(info.get("size") or 0), _tag(info))
               for name, info in sorted(found.items()) if info.get("type", "file") == "file"]
    if not objects:
        _check_bucket(fs, url)
        raise CloudError(f"{url} matches no objects",
                         hint=f"list what is there (e.g. `aws s3 ls {scheme}://{bucket}/`) and fix data.source; "
                         "a prefix ends with '/', a glob looks like s3://bucket/data/*.parquet")
    return objects


def download(obj: RemoteObject, dest: Path, *, fs: Any) -> int:
    """Stream ``obj`` into ``dest`` in :data:`CHUNK`-byte reads; returns the bytes written.

    ``dest`` appears whole or not at all (a temporary name, renamed at the end).
    """
    _scheme, bucket, key = split_url(obj.url)
    written = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(dest) as tmp, fs.open(f"{bucket}/{key}", "rb", block_size=CHUNK) as src, open(tmp, "wb") as out:
            for chunk in _chunks(src):
                out.write(chunk)
                written += len(chunk)
    except Exception as exc:
        if disk_cause(exc) is not None or isinstance(exc, BlaseError):
            raise  # the local disk is full: the caller's disk guard names it
        raise translate(exc, obj.url) from None
    return written


def _chunks(src: Any) -> Iterator[bytes]:
    while chunk := src.read(CHUNK):
        yield chunk
