"""Ray tasks for the partitions of a data step, results in submission order."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from blase.errors import BlaseError
from blase.executor._reaper import reap_on_exit
from blase.resources import format_size, parse_size

__all__ = ["EXECUTORS", "ExecutorError", "RayExecutor", "executor_for"]

logger = logging.getLogger(__name__)

#: The values of ``executor:`` in blase.yaml (and ``blase run --executor``).
EXECUTORS = ("local", "ray")
#: Smallest memory budget a task gets, whatever the share.
MIN_TASK_MEMORY = 256 << 20

T = TypeVar("T")
R = TypeVar("R")


class ExecutorError(BlaseError):
    """Ray is missing, its cluster cannot be reached, or a task could not run."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError("executor: ray needs Ray, which is not installed",
                            hint="pip install 'blase[ray]', or set executor: local in blase.yaml") from None
    return ray


@dataclass
class RayExecutor:
    """Run a data step's partitions as Ray tasks.

    Parameters
    ----------
    address:
        A running cluster (``ray://host:10001``, ``host:6379`` or ``auto``); None: the cluster
        ``RAY_ADDRESS`` names, else a local Ray started for this process (with ``num_cpus``).
    task_memory:
        Each task's memory budget (``"1GB"``, bytes; ``"auto"``: the step's budget, or the
        memory the cluster has free if that is less, shared among the cluster's CPUs, at least
        256 MB). Ray schedules a task only where this much
        memory is free, and the task's DuckDB gets it as its budget.
    num_cpus:
        CPUs of a local Ray started for the run (None: all of this machine's).
    part_bytes:
        Uncompressed bytes of one partition where a step can choose (the row groups of a
        large Parquet file); None: a quarter of ``task_memory``.
    """

    address: str | None = None
    task_memory: str | int = "auto"
    num_cpus: int | None = None
    part_bytes: int | None = None

    name = "ray"

    @classmethod
    def from_config(cls, ray: Any) -> RayExecutor:
        """The executor of a :class:`~blase.config.RayConfig` (``ray:`` in blase.yaml)."""
        part = None if ray.partition_size == "auto" else parse_size(ray.partition_size)
        return cls(address=ray.address, task_memory=ray.task_memory, num_cpus=ray.num_cpus, part_bytes=part)

    def start(self) -> Any:
        """The ``ray`` module, connected (an already initialised Ray is used as it is)."""
        ray = _import_ray()
        if ray.is_initialized():
            return ray
        where = self.address or "a local Ray"
        try:
            ray.init(address=self.address, num_cpus=None if self.address else self.num_cpus,
                     include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExecutorError(f"cannot start or reach {where}: {first}",
                                hint="check ray.address in blase.yaml (`ray status` on the cluster shows it), "
                                     "or remove it to start a local Ray") from None
        reap_on_exit()  # a local Ray started here stops with this process, even after kill -9
        logger.info("ray: connected to %s (%s)", where, ray.cluster_resources())
        return ray

    def cpus(self) -> int:
        """CPUs of the cluster."""
        return max(1, int(self.start().cluster_resources().get("CPU", 1)))

    def memory_per_task(self, step_budget: int) -> int:
        """Bytes each task of a step with budget ``step_budget`` may use (see ``task_memory``)."""
        ray = self.start()
        free = ray.available_resources().get("memory")
        if self.task_memory != "auto":
            wanted = parse_size(self.task_memory)
        else:
            # the step's budget shared among the CPUs, but never more than the cluster has free
            # for that many tasks (Ray's own estimate of its memory differs from the budget's)
            share = step_budget if free is None else min(step_budget, int(free))
            wanted = max(MIN_TASK_MEMORY, share // self.cpus())
        free = int(free) if free is not None else wanted
        if wanted > free:
            raise ExecutorError(
                f"ray.task_memory {format_size(wanted)} is more than the {format_size(free)} of memory "
                "the Ray cluster has free: no task could be scheduled",
                hint="lower ray.task_memory in blase.yaml, or add memory to the cluster")
        return wanted

    def map(self, fn: Callable[[T], R], items: Iterable[T], *, memory: int) -> Iterator[R]:
        """``fn(item)`` for each item as a Ray task (one CPU, ``memory`` bytes), results in the
        order of ``items``. At most two tasks per CPU are in flight (or done and not yet
        taken), so results wait in Ray's object store, not all at once; a task's
        :class:`~blase.errors.BlaseError` is raised here as it is. Inside
        :func:`~blase._duck.confined_files` (an assistant's tool call), each task opens files
        only inside the same folders: the confinement travels with the task."""
        from blase._duck import confined_folders

        ray = self.start()
        folders = confined_folders()
        args: tuple[Any, ...] = ()
        if folders is not None:  # the same task function for every map: its folders and fn as arguments
            fn, args = _confined_call, (fn, tuple(str(f) for f in folders))  # type: ignore[assignment]
        task = ray.remote(fn).options(num_cpus=1, memory=int(memory), max_retries=1)
        window = 2 * self.cpus()
        pending: deque[Any] = deque()
        todo = iter(items)
        try:
            for item in todo:
                pending.append(task.remote(*args, item))
                if len(pending) >= window:
                    yield _result(ray, pending.popleft())
            while pending:
                yield _result(ray, pending.popleft())
        finally:
            for ref in pending:  # an error or a consumer that stopped: drop what is still running
                ray.cancel(ref, force=True)


def _confined_call(fn: Callable[[T], R], folders: tuple[str, ...], item: T) -> R:
    """``fn(item)`` with DuckDB confined to ``folders``, as the process that sent it was."""
    from blase._duck import confined_files

    with confined_files(*folders):
        return fn(item)


def _result(ray: Any, ref: Any) -> Any:
    from ray.exceptions import OutOfMemoryError, RayTaskError, WorkerCrashedError

    try:
        return ray.get(ref)
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BlaseError):
            raise cause from None
        raise
    except (OutOfMemoryError, WorkerCrashedError) as exc:
        raise ExecutorError(f"a Ray task died: {str(exc).strip().splitlines()[0]}",
                            hint="give each task more memory (ray.task_memory in blase.yaml) "
                                 "or run with executor: local") from None


def executor_for(config: Any) -> RayExecutor | None:
    """The executor ``config`` (a :class:`~blase.config.ProjectConfig`) asks for; None: local."""
    if getattr(config, "executor", "local") != "ray":
        return None
    return RayExecutor.from_config(config.ray)
