"""Step cache: keys that name what a step depends on, and a store of results by key.

A step whose key matches a stored, intact result is not run again. The key covers the
config sections the step reads, the code it runs (its built-in version, Blase's version and
the code hash of any user function and the project code it calls), the content of its
inputs (raw files through the stat cache; earlier steps by their output digest) and the
key package versions. A result the store cannot take (a full disk, a read-only folder)
raises :class:`StoreWriteError`, which carries the intact, unstored result. See
:mod:`blase.cache._key` and :mod:`blase.cache._store`.
"""

from blase.cache._key import UNCACHEABLE, StepKey, explain, flatten_components, step_key
from blase.cache._snapshot import (
    SnapshotError,
    materialise,
    read_snapshot_file,
    same_as_project,
    snapshot_code,
)
from blase.cache._store import CacheError, StepEntry, StepStore, StoreWriteError, content_hash

__all__ = [
    "UNCACHEABLE",
    "CacheError",
    "SnapshotError",
    "StepEntry",
    "StepKey",
    "StepStore",
    "StoreWriteError",
    "content_hash",
    "explain",
    "flatten_components",
    "materialise",
    "read_snapshot_file",
    "same_as_project",
    "snapshot_code",
    "step_key",
]
