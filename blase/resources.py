"""Memory budgets, sizes and resource sampling.

Data steps take a memory budget (``--memory 2GB``); this module turns such a setting into
bytes, formats byte counts for people, reports the process's peak memory, and samples CPU,
memory, disk and (when PyTorch is already in use) GPU figures in a background thread for
:class:`blase.track.Track`.

Sizes follow the convention of Docker and most ML tools: ``KB``/``MB``/``GB``/``TB`` are
decimal (powers of 1000), ``KiB``/``MiB``/``GiB``/``TiB`` are binary (powers of 1024), and
the one-letter forms ``k``/``m``/``g``/``t`` are binary too (``1.5g`` is 1.5 GiB).
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from blase.errors import ResourceError

__all__ = [
    "MemoryRelease",
    "ResourceSample",
    "ResourceSampler",
    "ThreadChoice",
    "choose_threads",
    "cores_in_use_by_others",
    "format_size",
    "memory_budget",
    "parse_size",
    "peak_rss",
    "pid_alive",
    "release_memory",
]

logger = logging.getLogger(__name__)

_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")

#: Share of the currently available memory that ``memory_budget(None)`` hands out.
AUTO_SHARE = 0.5


def parse_size(spec: str | int) -> int:
    """Turn a size such as ``"2GB"``, ``"512MiB"``, ``"1.5g"`` or ``1024`` into bytes.

    Parameters
    ----------
    spec:
        A non-negative integer number of bytes, or a number followed by an optional unit
        (``B``, ``KB``/``MB``/``GB``/``TB`` decimal, ``KiB``/``MiB``/``GiB``/``TiB`` binary,
        ``k``/``m``/``g``/``t`` binary), case-insensitive.

    Returns
    -------
    int
        The size in bytes (fractions are rounded down).

    Raises
    ------
    ResourceError
        When ``spec`` is negative, not a number, or has an unknown unit.
    """
    if isinstance(spec, bool):
        raise ResourceError(f"size {spec!r} is a boolean, not a size", hint='write e.g. "2GB"')
    if isinstance(spec, int):
        if spec < 0:
            raise ResourceError(f"size {spec} is negative", hint="give a size of 0 or more bytes")
        return spec
    if isinstance(spec, float) and spec.is_integer() and spec >= 0:
        return int(spec)
    if not isinstance(spec, str):
        raise ResourceError(
            f"size {spec!r} has type {type(spec).__name__}; expected a string or an integer",
            hint='write e.g. "2GB", "512MiB" or a number of bytes',
        )
    match = _SIZE_RE.match(spec)
    if match is None:
        raise ResourceError(
            f"cannot read {spec!r} as a size",
            hint='write a number and a unit, e.g. "2GB", "512MiB", "1.5g" or "1000000"',
        )
    number, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise ResourceError(
            f"unknown size unit {unit!r} in {spec!r}",
            hint="use B, KB, MB, GB, TB (x1000), KiB, MiB, GiB, TiB or k, m, g, t (x1024)",
        )
    return int(float(number) * factor)


def format_size(n: float) -> str:
    """Format a byte count for people, in decimal units: ``1234567890`` -> ``"1.2 GB"``.

    Parameters
    ----------
    n:
        Number of bytes (negative values keep their sign).
    """
    sign = "-" if n < 0 else ""
    n = abs(float(n))
    if n < 1000:
        return f"{sign}{int(n)} B"
    for unit in ("KB", "MB", "GB", "TB", "PB"):
        n /= 1000.0
        if n < 999.95 or unit == "PB":
            return f"{sign}{n:.1f} {unit}"
    raise AssertionError("unreachable")


def memory_budget(spec: str | int | None = None) -> int:
    """The memory budget in bytes for a data step.

    Parameters
    ----------
    spec:
        ``None`` or ``"auto"``: half (:data:`AUTO_SHARE`) of the memory available right now
        (``psutil.virtual_memory().available``); a percentage such as ``"25%"``: that share
        of the available memory; anything else goes through :func:`parse_size`.

    Raises
    ------
    ResourceError
        When the setting cannot be read or comes to zero bytes.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "auto"):
        import psutil

        return max(1, int(psutil.virtual_memory().available * AUTO_SHARE))
    if isinstance(spec, str) and spec.strip().endswith("%"):
        text = spec.strip()[:-1].strip()
        try:
            share = float(text) / 100.0
        except ValueError:
            raise ResourceError(
                f"cannot read memory budget {spec!r} as a percentage", hint='write e.g. "50%"'
            ) from None
        if not 0 < share <= 1:
            raise ResourceError(
                f"memory budget {spec!r} must be a share between 0% and 100%",
                hint='write e.g. "50%" or a size such as "2GB"',
            )
        import psutil

        return max(1, int(psutil.virtual_memory().available * share))
    budget = parse_size(spec)
    if budget <= 0:
        raise ResourceError(
            f"memory budget {spec!r} is zero", hint='give a positive size such as "2GB" or "auto"'
        )
    return budget


#: Multiply-adds in one batch's forward pass that make a second torch thread worth its cost;
#: below it, splitting the work costs more in synchronisation than it saves.
WORK_PER_THREAD = 1 << 20


def _usable_cpus() -> list[int]:
    """The CPU ids this process may run on (its affinity), at most ``os.cpu_count()``."""
    total = os.cpu_count() or 1
    try:
        ids = sorted(os.sched_getaffinity(0))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        ids = list(range(total))
    return [i for i in ids if i < total] or list(range(total))


def cores_in_use_by_others(interval: float = 0.2) -> float | None:
    """How many of this process's usable cores other processes keep busy, measured now.

    Samples the usable CPUs' busy share and this process's own CPU time over ``interval``
    seconds (psutil) and returns the difference in cores (``1.0``: one core's worth). Falls
    back to the 1-minute load average when psutil cannot read the CPUs; ``None`` when
    neither is available.
    """
    cpus = _usable_cpus()
    try:
        import psutil

        me = psutil.Process()
        psutil.cpu_percent(interval=None, percpu=True)
        own_before = me.cpu_times()
        started = time.perf_counter()
        time.sleep(interval)
        per_cpu = psutil.cpu_percent(interval=None, percpu=True)
        own_after = me.cpu_times()
        elapsed = max(time.perf_counter() - started, 1e-6)
        busy = sum(per_cpu[i] for i in cpus if i < len(per_cpu)) / 100.0
        own = (own_after.user + own_after.system - own_before.user - own_before.system) / elapsed
        return max(0.0, busy - own)
    except Exception:  # no /proc, a sandbox: fall back to the load average
        try:
            return max(0.0, float(os.getloadavg()[0]) - 1.0)  # the load counts this process
        except (AttributeError, OSError):
            return None


@dataclass(frozen=True)
class ThreadChoice:
    """How many torch threads a training run uses, and why (recorded with the run)."""

    threads: int
    source: str  # "config" (train.threads) or "auto"
    cpus: int
    busy_elsewhere: float | None
    reason: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def choose_threads(
    batch_size: int,
    work_per_row: int = 0,
    *,
    requested: int | None = None,
    busy_elsewhere: float | str | None = "measure",
) -> ThreadChoice:
    """The number of torch intra-op threads for training, from the cores free right now.

    torch starts one thread per core whatever else runs; on a shared machine those threads
    wait on each other (one busy neighbour on 2 cores made a small MLP ten times slower). So:
    the usable cores minus what other processes keep busy (rounded, at least 1), and no more
    than the batch's work pays for (one thread per :data:`WORK_PER_THREAD` multiply-adds of a
    batch's forward pass; ``work_per_row`` is about the model's parameter count).

    Parameters
    ----------
    batch_size:
        Rows per optimizer step.
    work_per_row:
        Multiply-adds per row (``0``: unknown, no cap from the work).
    requested:
        ``train.threads`` from the config: used as given (the user knows their machine).
    busy_elsewhere:
        Cores other processes use; ``"measure"`` (default) reads them now
        (:func:`cores_in_use_by_others`).
    """
    cpus = len(_usable_cpus())
    if requested is not None:
        return ThreadChoice(int(requested), "config", cpus, None, f"train.threads is {requested}")
    busy = cores_in_use_by_others() if busy_elsewhere == "measure" else busy_elsewhere
    free = cpus if busy is None else cpus - float(busy)  # type: ignore[arg-type]
    by_load = max(1, min(cpus, math.floor(free + 0.5)))
    threads, why = by_load, (
        f"{free:.1f} of {cpus} core(s) free" if busy is not None else f"{cpus} core(s), load unknown"
    )
    if work_per_row > 0:
        by_work = max(1, (int(batch_size) * int(work_per_row)) // WORK_PER_THREAD)
        if by_work < threads:
            threads = by_work
            why += f"; a batch of {batch_size} rows is too little work for more threads"
    return ThreadChoice(threads, "auto", cpus, None if busy is None else round(float(busy), 2), why)


def peak_rss() -> int:
    """Peak resident set size of this process so far, in bytes."""
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Linux reports kilobytes, macOS bytes.
        return int(peak if sys.platform == "darwin" else peak * 1024)
    except (ImportError, OSError):  # Windows
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))


@dataclass(frozen=True)
class MemoryRelease:
    """What :func:`release_memory` gave back: the process's resident memory before and
    after (bytes), how long it took, and what it did."""

    rss_before: int
    rss_after: int
    seconds: float
    actions: tuple[str, ...]

    @property
    def released(self) -> int:
        """Bytes of resident memory given back (never negative)."""
        return max(0, self.rss_before - self.rss_after)

    def to_json(self) -> dict[str, object]:
        return {"rss_before": self.rss_before, "rss_after": self.rss_after, "released": self.released,
                "seconds": round(self.seconds, 3), "actions": list(self.actions)}


def release_memory(above: int = 0) -> MemoryRelease | None:
    """Give back the memory this process no longer uses, between two pieces of work (the
    pipeline calls it before each step it runs after another); None, doing nothing, when the
    process's resident memory is ``above`` bytes or less.

    A data step leaves pages resident that the next one never touches: freed heap that
    glibc and Arrow keep for reuse, and the code pages of the libraries it ran (DuckDB's
    alone is about 45 MB). This collects garbage, asks Arrow's memory pool to return its
    free pages (only if pyarrow is already imported), trims glibc's heap (``malloc_trim``),
    and asks the kernel to reclaim the process's read-only file pages (``MADV_PAGEOUT``:
    code and constant data of shared libraries; pages another process maps, or that this
    process wrote, are left alone, so nothing is lost: what is touched again is read back).
    Each action is skipped where the platform lacks it (only the garbage collection runs
    off Linux). Costs tens of milliseconds.
    """
    import gc

    started = time.perf_counter()
    before = _rss_now()
    if above and before <= above:
        return None
    actions = ["gc"]
    gc.collect()
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        try:
            arrow.default_memory_pool().release_unused()
            actions.append("arrow_pool")
        except Exception as exc:  # a pool that cannot release is only a missed saving
            logger.debug("pyarrow release_unused failed: %s", exc)
    if sys.platform.startswith("linux"):
        libc = _libc()
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
            actions.append("malloc_trim")
        if libc is not None and _page_out_file_pages(libc):
            actions.append("pageout_file_pages")
    return MemoryRelease(before, _rss_now(), time.perf_counter() - started, tuple(actions))


#: ``madvise`` advice (Linux >= 5.4) that reclaims the given pages now.
_MADV_PAGEOUT = 21


def _libc() -> Any:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if hasattr(libc, "madvise"):
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        libc.madvise.restype = ctypes.c_int
    return libc


def _page_out_file_pages(libc: Any) -> bool:
    """``MADV_PAGEOUT`` on every read-only, file-backed mapping of this process; False when
    the kernel refuses the advice (older than 5.4) or /proc is missing."""
    import ctypes
    import errno

    if not hasattr(libc, "madvise"):
        return False
    try:
        with open("/proc/self/maps") as fh:
            maps = fh.read().splitlines()
    except OSError:
        return False
    advised = False
    for line in maps:
        fields = line.split(maxsplit=5)
        # address perms offset dev inode path: read-only, private or shared, backed by a file
        if len(fields) < 6 or not fields[5].startswith("/") or fields[4] == "0":
            continue
        perms = fields[1]
        if not perms.startswith("r") or "w" in perms:
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if libc.madvise(start, end - start, _MADV_PAGEOUT) == 0:
            advised = True
        elif not advised and ctypes.get_errno() == errno.EINVAL:  # EINVAL: this kernel lacks MADV_PAGEOUT
            return False
    return advised


def _rss_now() -> int:
    """The process's resident memory now, in bytes."""
    import psutil

    return int(psutil.Process().memory_info().rss)


@dataclass(frozen=True)
class ResourceSample:
    """One reading of the machine's and the process's resources.

    GPU fields are ``None`` unless PyTorch is already imported and has initialised CUDA.
    """

    time: float
    cpu_percent: float
    rss_bytes: int
    available_bytes: int
    disk_free_bytes: int
    gpu_mem_bytes: int | None = None
    gpu_util: float | None = None

    def to_json(self) -> dict[str, float | int | None]:
        return asdict(self)


def _gpu_reading() -> tuple[int | None, float | None]:
    # Never import torch here: only report on a CUDA context the user's code already made.
    torch = sys.modules.get("torch")
    if torch is None:
        return None, None
    try:
        cuda = torch.cuda
        if not cuda.is_available() or not cuda.is_initialized():
            return None, None
        mem = int(cuda.memory_reserved())
    except Exception:  # any torch oddity must not stop sampling
        return None, None
    util: float | None
    try:
        util = float(cuda.utilization())  # needs pynvml; optional
    except Exception:
        util = None
    return mem, util


class ResourceSampler:
    """Sample resources in a daemon thread and hand each sample to ``callback``.

    A sample is taken at :meth:`start`, then every ``interval`` seconds, and once more at
    :meth:`stop`, so even a short run has readings.

    Parameters
    ----------
    callback:
        Called from the sampler thread with each :class:`ResourceSample`. Exceptions it
        raises are logged and sampling goes on.
    interval:
        Seconds between samples (must be positive).
    disk_path:
        Folder whose file system's free space is reported (default: the current folder).
    """

    def __init__(
        self,
        callback: Callable[[ResourceSample], object],
        interval: float = 2.0,
        *,
        disk_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if not interval > 0:
            raise ResourceError(
                f"sample interval {interval!r} must be a positive number of seconds",
                hint="use e.g. 2.0",
            )
        self.callback = callback
        self.interval = float(interval)
        self.disk_path = Path(disk_path) if disk_path is not None else Path.cwd()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = None

    def sample(self) -> ResourceSample:
        """Take one sample now."""
        import psutil

        if self._process is None:
            self._process = psutil.Process()
            self._process.cpu_percent(None)  # the first reading is always 0.0
        proc = self._process
        try:
            disk_free = int(psutil.disk_usage(str(self.disk_path)).free)
        except OSError:
            disk_free = -1
        gpu_mem, gpu_util = _gpu_reading()
        return ResourceSample(
            time=time.time(),
            cpu_percent=float(proc.cpu_percent(None)),
            rss_bytes=int(proc.memory_info().rss),
            available_bytes=int(psutil.virtual_memory().available),
            disk_free_bytes=disk_free,
            gpu_mem_bytes=gpu_mem,
            gpu_util=gpu_util,
        )

    def _emit(self) -> None:
        try:
            self.callback(self.sample())
        except Exception:
            logger.exception("resource sampling failed; trying again next interval")

    def _loop(self) -> None:
        self._emit()
        while not self._stop.wait(self.interval):
            self._emit()

    def start(self) -> ResourceSampler:
        """Start the sampler thread (idempotent)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="blase-resource-sampler", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread after one last sample."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self._thread = None
        self._emit()

    def __enter__(self) -> ResourceSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (this process counts): the owner check of the
    staging folders that deploy and ``blase gc`` clean up after a process that died."""
    if pid == os.getpid():
        return True
    try:
        import psutil

        return psutil.pid_exists(pid)
    except ImportError:  # pragma: no cover - psutil is a dependency
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
        return True
