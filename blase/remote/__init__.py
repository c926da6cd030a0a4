"""A shared remote: runs, step-store entries and model packages copied by content hash to a
bucket (``s3://``, ``gs://``, ``az://``) or a shared folder, so another machine can pull a run
and ``blase reproduce``, ``blase diff`` and ``blase predict`` it.

>>> from blase.remote import add_remote, get_remote, push, pull
>>> add_remote(project, "lab", "s3://lab-bucket/blase")
>>> push(project, get_remote(project, "lab"), ["3fa9"])       # only what the remote lacks
>>> pull(other_project, get_remote(other_project, "lab"), "3fa9")
"""

from blase.remote._backend import (
    RemoteError,
    RemoteStore,
    add_remote,
    get_remote,
    list_remotes,
    remove_remote,
)
from blase.remote._sync import (
    PullReport,
    PushReport,
    RemoteGCReport,
    gc_remote,
    pull,
    push,
    remote_runs,
    verify_remote,
)

__all__ = [
    "PullReport",
    "PushReport",
    "RemoteError",
    "RemoteGCReport",
    "RemoteStore",
    "add_remote",
    "gc_remote",
    "get_remote",
    "list_remotes",
    "pull",
    "push",
    "remote_runs",
    "remove_remote",
    "verify_remote",
]
