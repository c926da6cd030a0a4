"""Executors: where the partitions of a data step run.

The data steps decide how their work splits (a file, a range of Parquet row groups) and what
each piece computes; an executor only runs the pieces and hands their results back in order.
:class:`RayExecutor` runs them as Ray tasks, on a local Ray started for the run or on a
cluster (``ray: {address: ...}`` in ``blase.yaml``).

>>> from blase.executor import RayExecutor
>>> for result in RayExecutor(task_memory="1GB").map(read_part, parts): ...
"""

from blase.executor._ray import EXECUTORS, ExecutorError, RayExecutor, executor_for
from blase.executor._reaper import reap_on_exit

__all__ = ["EXECUTORS", "ExecutorError", "RayExecutor", "executor_for", "reap_on_exit"]
