"""Content hashes of data, configs, user code and the environment.

These digests are the keys of Blase's step cache, lineage, ``reproduce`` and ``diff``. All of
them are hex strings of xxh3-128 (32 characters).

Data
    :func:`hash_file` is *exactly* ``xxh3_128(file bytes)``, for every file size (no tree, no
    chunk boundaries in the definition), so ``hash_file(p) == hash_bytes(p.read_bytes())``
    always. It streams the file through one reused 1 MiB buffer (``readinto``): on the 2-core
    development machine that runs at 11-14 GB/s on a warm file, against 0.6 GB/s for
    ``hashlib.md5``. ``mmap`` was faster still (about 28 GB/s) but a file truncated by another
    process while it is mapped kills the interpreter with SIGBUS, and a pipelined
    reader/hasher pair (xxhash releases the GIL) gained nothing reliable, so neither is used.
    :func:`hash_files` and :func:`hash_folder` combine per-file digests, computed in a thread
    pool, over the sorted relative paths, so they do not depend on listing or creation order.

Stat cache
    :class:`StatCache` remembers ``(size, mtime_ns, inode) -> digest`` per resolved path, one
    small JSON file per path, written atomically, so an unchanged file is not read again and
    concurrent processes need no locking. Like git's "racily clean" rule, a file whose mtime
    is less than :data:`RACY_WINDOW_NS` older than the moment it was hashed is not cached: it
    could still change within the same timestamp tick.

Config
    :func:`hash_config` hashes :func:`canonical_json` of an object (sorted keys, compact,
    floats by ``repr``), so the same content in another key order hashes the same.

Code
    :func:`code_hash` covers a function's, class's or module's own source and, recursively,
    the project-local functions, classes and modules it references (globals, attribute
    chains on local modules, closure cells, default values) plus the plain-data globals it
    reads. Source is compared as a token stream: comments, blank lines and spacing between
    tokens do not change the hash; any token change does (docstrings included). Third-party
    and standard-library code is not read: the environment fingerprint covers it.

Environment
    :func:`environment_fingerprint` describes Python, the platform, the versions of key
    packages (read from their metadata, never imported) and the GPU when present;
    :func:`environment_hash` hashes it.
"""

from __future__ import annotations

from blase.hashing._code import CodeHash, code_hash
from blase.hashing._config import canonical_json, hash_config
from blase.hashing._env import environment_fingerprint, environment_hash
from blase.hashing._files import (
    RACY_WINDOW_NS,
    StatCache,
    hash_bytes,
    hash_file,
    hash_files,
    hash_folder,
)

__all__ = [
    "RACY_WINDOW_NS",
    "CodeHash",
    "StatCache",
    "canonical_json",
    "code_hash",
    "environment_fingerprint",
    "environment_hash",
    "hash_bytes",
    "hash_config",
    "hash_file",
    "hash_files",
    "hash_folder",
]
