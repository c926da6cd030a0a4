"""Recording a run: the :class:`Track` writer.

A run writes its own folder and nothing else, append-only, so any number of readers can read
while it writes and a crash loses at most the last flush interval of metrics. Metrics are
buffered in memory (``log_metric`` only checks the value and appends a tuple) and written by a
daemon flusher thread every ``flush_interval`` seconds; params, tags, events, artifacts and
hashes are rare and go straight to ``log.jsonl``.
"""

from __future__ import annotations

import atexit
import contextvars
import getpass
import json
import logging
import os
import sys
import threading
import time
import traceback
import weakref
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from blase._fs import disk_guard
from blase._version import __version__
from blase.errors import TrackError
from blase.project import Project, find_project
from blase.track import _layout as L
from blase.track._store import ContentStore

__all__ = ["Track", "active_run"]

logger = logging.getLogger(__name__)

_ACTIVE: contextvars.ContextVar[Track | None] = contextvars.ContextVar(
    "blase_active_run", default=None
)
# Runs started in this process, newest last: threads that do not share the starting
# context (DataLoader workers, callbacks) still find the run through active_run().
_STARTED: list[weakref.ReferenceType[Track]] = []
_STARTED_LOCK = threading.Lock()

_time = time.time
#: Buffered points at which log_metric flushes itself instead of waiting for the flusher.
MAX_PENDING = 50_000


def active_run() -> Track | None:
    """The run being recorded in this context (or, failing that, in this process), or ``None``."""
    run = _ACTIVE.get()
    if run is not None and run.active:
        return run
    with _STARTED_LOCK:
        for ref in reversed(_STARTED):
            run = ref()
            if run is not None and run.active:
                return run
    return None


def _json_value(key: str, value: Any, what: str) -> Any:
    """``value`` as plain JSON data, or TrackError naming ``key``."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(key, v, what) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(f"{key}.{k}", v, what) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return _json_value(key, item(), what)
        except (TypeError, ValueError):
            pass
    raise TrackError(
        f"{what} {key!r} has value {value!r} of type {type(value).__name__}, which is not JSON data",
        hint=f"log str(value) or a number, string, bool, list or dict instead for {key!r}",
    )


def _metric_value(name: str, value: Any) -> float | int:
    """Slow path of :meth:`Track.log_metric`: anything but a plain int or float."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and not isinstance(value, str):
        return value if type(value) in (int, float) else float(value)
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            inner = item()
        except (TypeError, ValueError) as exc:
            raise TrackError(
                f"metric {name!r} got {value!r}, which is not a single number ({exc})",
                hint="log one number per call, e.g. float(x.mean())",
            ) from None
        if isinstance(inner, (bool, int, float)):
            return _metric_value(name, inner)
        value = inner
    raise TrackError(
        f"metric {name!r} got value {value!r} of type {type(value).__name__}; metrics must be numbers",
        hint=f"log a number for {name!r} (NaN and inf are allowed); use log_param or set_tag for text",
    )


def _step_value(step: Any) -> int:
    try:
        import operator

        return operator.index(step)
    except TypeError:
        item = getattr(step, "item", None)
        if callable(item):
            inner = item()
            if isinstance(inner, int) and not isinstance(inner, bool):
                return inner
        raise TrackError(
            f"step {step!r} is not an integer", hint="pass step as an int, e.g. step=epoch"
        ) from None


class Track:
    """Record one run: params, metrics, tags, events, artifacts, hashes and resources.

    Use it as a context manager; the run ends ``finished``, ``failed`` (the exception is
    recorded) or ``interrupted`` (Ctrl-C, which is re-raised)::

        with Track("baseline", params={"lr": 0.01}) as run:
            for step in range(100):
                run.log_metric("loss", loss, step=step)

    or call :meth:`start` and :meth:`end` yourself. A process that dies without ending the
    run (SIGKILL, power loss) leaves it readable; readers report it as ``interrupted``.

    Parameters
    ----------
    name:
        A readable name (default: a random ``adjective-noun-NNN``).
    project:
        The project (a :class:`~blase.project.Project` or a path inside one; default: the
        project around the current folder).
    params, tags:
        Logged when the run starts.
    parent:
        Id of the run this one derives from (reproduce, update, pipeline steps).
    kind:
        ``"run"``, ``"pipeline"``, ``"agent-session"``, ``"monitor"``, ...
    sample_resources:
        Sample CPU, memory, disk (and GPU when torch is in use) in a background thread.
    sample_interval:
        Seconds between resource samples.
    flush_interval:
        Seconds between metric flushes; a crash loses at most this much of the metrics.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        project: Project | str | os.PathLike[str] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, Any] | None = None,
        parent: str | None = None,
        kind: str = "run",
        sample_resources: bool = True,
        sample_interval: float = 2.0,
        flush_interval: float = 0.25,
    ) -> None:
        self.name = name
        self.project = project
        self.params = dict(params or {})
        self.tags = dict(tags or {})
        self.parent = parent
        self.kind = kind
        self.sample_resources = sample_resources
        self.sample_interval = sample_interval
        self.flush_interval = flush_interval

        self.active = False
        self.status: str | None = None
        self._run_id: str | None = None
        self._run_dir: Path | None = None
        self._project: Project | None = None
        self._buf: list[tuple[float, int | None, str, float | int]] = []
        self._buf_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._names: set[str] = set()
        self._quoted: dict[str, str] = {}
        self._latest: dict[str, float | int] = {}
        # [min, max, count] per metric, kept as points are written: summary.json carries them, so
        # the run index (`blase ui`) never has to read this run's metrics.csv for its min/max
        self._stats: dict[str, list[Any]] = {}
        self._params: dict[str, Any] = {}
        self._tags: dict[str, str] = {}
        self._artifacts: dict[str, dict[str, Any]] = {}
        self._events: Counter[str] = Counter()
        self._hashes: dict[str, Any] = {}
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._sampler = None
        self._log_f = None
        self._metrics_f = None
        self._res_f = None
        self._flush_error: BaseException | None = None
        self._token: contextvars.Token[Track | None] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def run_id(self) -> str:
        """The run's 12-character hex id (available once started)."""
        if self._run_id is None:
            raise TrackError(
                "the run has not started yet", hint="call start() or use `with Track(...)`"
            )
        return self._run_id

    @property
    def run_dir(self) -> Path:
        """The run's folder, ``<project>/runs/<run_id>``."""
        if self._run_dir is None:
            raise TrackError(
                "the run has not started yet", hint="call start() or use `with Track(...)`"
            )
        return self._run_dir

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Track:
        """Create the run folder and start recording.

        Raises
        ------
        TrackError
            When ``runs/`` cannot be created or written.
        """
        if self.active or self.status is not None:
            raise TrackError(
                "this Track has already been started", hint="create a new Track for a new run"
            )
        proj = self.project
        if not isinstance(proj, Project):
            proj = find_project(proj)
        self._project = proj
        runs = proj.runs_dir
        now = _time()
        name = self.name or L.random_run_name()
        self.name = name
        try:
            import psutil

            create_time: float | None = psutil.Process().create_time()
        except Exception:
            create_time = None
        try:
            runs.mkdir(parents=True, exist_ok=True)
            for _ in range(5):
                run_id = L.new_run_id()
                final = runs / run_id
                if not final.exists():
                    break
            staging = runs / f".tmp-{run_id}"
            staging.mkdir()
            meta = {
                "format": L.RUN_FORMAT,
                "id": run_id,
                "name": name,
                "project": str(proj.root),
                "started_at": L.iso_utc(now),
                "started": now,
                "pid": os.getpid(),
                "create_time": create_time,
                "hostname": L.hostname(),
                "user": _user(),
                "argv": list(sys.argv),
                "parent": self.parent,
                "kind": self.kind,
                "blase_version": __version__,
            }
            L.write_json_atomic(staging / L.META, meta)
            with open(staging / L.LOG, "w", encoding="utf-8") as f:
                f.write(_dumps({"t": now, "kind": "status", "status": "running"}) + "\n")
            for fname in (L.METRICS, L.RESOURCES, L.HEARTBEAT):
                (staging / fname).touch()
            os.rename(staging, final)  # readers see a complete run folder or none
            self._log_f = open(final / L.LOG, "a", encoding="utf-8")  # noqa: SIM115 - held for the run
            self._metrics_f = open(final / L.METRICS, "a", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            hint = f"make sure {runs} is a writable folder"
            if runs.exists() and not runs.is_dir():
                hint = f"{runs} is a file: move it away so Blase can keep runs there"
            raise TrackError(
                f"cannot create a run folder in {runs}: {exc.strerror or exc}", hint=hint
            ) from exc
        self._run_id = run_id
        self._run_dir = final
        self.active = True
        self.status = "running"
        self._token = _ACTIVE.set(self)
        with _STARTED_LOCK:
            _STARTED[:] = [r for r in _STARTED if r() is not None]
            _STARTED.append(weakref.ref(self))
        _register_atexit(self)

        if self.params:
            self.log_params(self.params)
        for key, value in self.tags.items():
            self.set_tag(key, value)
        self._flusher = threading.Thread(
            target=self._flush_loop, name=f"blase-flush-{run_id}", daemon=True
        )
        self._flusher.start()
        if self.sample_resources:
            from blase.resources import ResourceSampler

            self._res_f = open(final / L.RESOURCES, "a", encoding="utf-8")  # noqa: SIM115
            self._sampler = ResourceSampler(
                self._write_sample, self.sample_interval, disk_path=proj.root
            )
            self._sampler.start()
        logger.info("run %s (%s) started in %s", run_id, name, final)
        return self

    def end(self, status: str = "finished", *, error: BaseException | None = None) -> None:
        """Stop recording: flush everything, write the final status and ``summary.json``.

        Parameters
        ----------
        status:
            ``"finished"``, ``"failed"`` or ``"interrupted"``.
        error:
            The exception that failed the run; its type, message and traceback are recorded.
        """
        if not self.active:
            return
        if status not in ("finished", "failed", "interrupted"):
            raise TrackError(
                f"cannot end a run with status {status!r}",
                hint="use finished, failed or interrupted",
            )
        self.active = False
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None
        self._stop.set()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join()
        self._flush()
        record: dict[str, Any] = {"t": _time(), "kind": "status", "status": status}
        err_info = None
        if error is not None:
            err_info = {
                "type": type(error).__qualname__,
                "message": str(error),
                "traceback": "".join(
                    traceback.format_exception(type(error), error, error.__traceback__)
                ),
            }
            record["error"] = err_info
        self._write_record(record)
        ended = record["t"]
        for f in (self._log_f, self._metrics_f, self._res_f):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    logger.exception("closing a log of run %s failed", self._run_id)
        self.status = status
        run_dir = self.run_dir
        try:
            os.utime(run_dir / L.HEARTBEAT)
            summary = {
                "status": status,
                "ended_at": L.iso_utc(ended),
                "ended": ended,
                "params": self._params,
                "metrics": self._latest,
                "metric_stats": self._stats if self._flush_error is None else None,  # else: read the file
                "tags": self._tags,
                "artifacts": list(self._artifacts.values()),
                "events": dict(self._events),
                "hashes": self._hashes,
                "error": err_info,
                "sizes": {
                    L.LOG: (run_dir / L.LOG).stat().st_size,
                    L.METRICS: (run_dir / L.METRICS).stat().st_size,
                },
            }
            L.write_json_atomic(run_dir / L.SUMMARY, summary)
        except OSError:
            # The logs are complete; readers rebuild the summary from them.
            logger.exception("could not write the summary of run %s", self._run_id)
        if self._token is not None:
            try:
                _ACTIVE.reset(self._token)
            except ValueError:  # ended from another context (atexit, another thread)
                pass
            self._token = None
        logger.info("run %s ended: %s", self._run_id, status)
        if self._flush_error is not None:
            raise TrackError(
                f"metrics of run {self._run_id} could not all be written to {run_dir / L.METRICS}: "
                f"{self._flush_error}",
                hint="check free disk space and permissions",
            ) from self._flush_error

    def __enter__(self) -> Track:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end("finished")
        elif isinstance(exc, KeyboardInterrupt):
            self.end("interrupted", error=exc)
        elif isinstance(exc, SystemExit) and exc.code in (None, 0):
            self.end("finished")
        else:
            self.end("failed", error=exc)

    # ------------------------------------------------------------------ logging

    def log_metric(self, name: str, value: Any, step: int | None = None) -> None:
        """Record one metric value (buffered; written within ``flush_interval`` seconds).

        Parameters
        ----------
        name:
            Metric name (no newlines).
        value:
            A number: int, float, bool, a numpy scalar or 0-d array, or anything with
            ``.item()`` returning a number (e.g. a one-element tensor). NaN and inf are kept.
        step:
            Optional integer step (epoch, batch).

        Raises
        ------
        TrackError
            When the value is not a number, or the run is not active.
        """
        tv = type(value)
        if tv is not float and tv is not int:
            value = _metric_value(name, value)
        if step is not None and type(step) is not int:
            step = _step_value(step)
        if name not in self._names or not self.active:
            self._check_metric_name(name)
        t = _time()
        with self._buf_lock:
            buf = self._buf
            buf.append((t, step, name, value))
        if len(buf) >= MAX_PENDING:
            # Back-pressure: a producer faster than the flusher writes in its own thread, so
            # memory stays bounded and a crash still loses well under a second of points.
            self._flush()

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Record several metrics at the same step."""
        for name, value in metrics.items():
            self.log_metric(name, value, step)

    def log_param(self, key: str, value: Any) -> None:
        """Record a parameter (JSON data). Logging a key again with a different value fails.

        Raises
        ------
        TrackError
            When ``value`` is not JSON data, or ``key`` already has a different value.
        """
        self._require_active()
        key = str(key)
        value = _json_value(key, value, "param")
        if key in self._params:
            if self._params[key] == value:
                return
            raise TrackError(
                f"param {key!r} is already {self._params[key]!r} in run {self._run_id}; "
                f"cannot change it to {value!r}",
                hint="params are fixed for a run: start a new run, or log the changing value as a metric",
            )
        self._params[key] = value
        self._write_record({"t": _time(), "kind": "param", "key": key, "value": value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Record several parameters (see :meth:`log_param`)."""
        for key, value in params.items():
            self.log_param(key, value)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (a string; setting it again replaces it)."""
        self._require_active()
        key, value = str(key), str(value)
        self._tags[key] = value
        self._write_record({"t": _time(), "kind": "tag", "key": key, "value": value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set several tags."""
        for key, value in tags.items():
            self.set_tag(key, value)

    def log_event(self, kind: str, **fields: Any) -> None:
        """Record an event (a step started, an LLM call, a tool call, an approval, ...).

        Fields are stored as JSON; values that are not JSON data are stored as ``str(value)``.
        """
        self._require_active()
        self._events[kind] += 1
        self._write_record({"t": _time(), "kind": "event", "event": str(kind), "data": fields})

    def log_hashes(self, hashes: dict[str, Any]) -> None:
        """Record content hashes (``{"data": ..., "config": ..., "code": ..., "env": ...}``)."""
        self._require_active()
        hashes = {str(k): _json_value(str(k), v, "hash") for k, v in hashes.items()}
        self._hashes.update(hashes)
        self._write_record({"t": _time(), "kind": "hash", "hashes": hashes})

    def log_artifact(
        self, path: str | os.PathLike[str], name: str | None = None
    ) -> list[dict[str, Any]]:
        """Store a file, or every file under a folder, in the project's content store.

        Each file is stored once by content hash however many runs log it.

        Parameters
        ----------
        path:
            A file or a folder.
        name:
            The artifact's name (default: the file or folder name); a folder's files are
            named ``<name>/<relative path>``.

        Returns
        -------
        list of dict
            One record per stored file: name, path, hash, size.

        Raises
        ------
        TrackError
            When ``path`` does not exist or cannot be stored.
        """
        self._require_active()
        src = Path(path)
        if not src.exists():
            raise TrackError(
                f"artifact {src} does not exist (run {self._run_id})",
                hint="check the path; relative paths are relative to the current folder "
                f"({Path.cwd()})",
            )
        assert self._project is not None
        store = ContentStore(self._project.store_dir)
        base = name or src.resolve().name
        if src.is_dir():
            files = sorted(p for p in src.rglob("*") if p.is_file())
            entries = [(f"{base}/{p.relative_to(src).as_posix()}", p) for p in files]
        else:
            entries = [(base, src)]
        records = []
        for art_name, file in entries:
            obj = store.put_file(file)
            rec = {
                "name": art_name,
                "path": self._project.relative(file),
                "hash": obj.hash,
                "size": obj.size,
            }
            self._write_record({"t": _time(), "kind": "artifact", **rec})
            self._artifacts[art_name] = rec
            records.append(rec)
        return records

    def flush(self) -> None:
        """Write buffered metrics now (the flusher thread does this every ``flush_interval``)."""
        self._flush()

    # ------------------------------------------------------------------ internals

    def _require_active(self) -> None:
        if not self.active:
            state = "has not started" if self.status is None else f"has ended ({self.status})"
            raise TrackError(
                f"run {self._run_id or self.name or ''} {state}".replace("  ", " "),
                hint="log inside `with Track(...)` or between start() and end()",
            )

    def _check_metric_name(self, name: Any) -> None:
        self._require_active()
        if not isinstance(name, str) or not name or "\n" in name or "\r" in name:
            raise TrackError(
                f"metric name {name!r} is not valid", hint="use a non-empty string without newlines"
            )
        self._quoted[name] = L.csv_field(name)
        self._names.add(name)

    def _write_record(self, record: dict[str, Any]) -> None:
        line = _dumps(record) + "\n"
        with self._write_lock:
            f = self._log_f
            if f is None or f.closed:
                raise TrackError(f"run {self._run_id} is not open for writing")
            with disk_guard(f"the record of run {self._run_id}", f.name, TrackError):
                f.write(line)
                f.flush()

    def _flush(self) -> None:
        with self._write_lock:
            with self._buf_lock:
                batch, self._buf = self._buf, []
            if not batch or self._metrics_f is None or self._metrics_f.closed:
                return
            quoted = self._quoted
            latest, stats = self._latest, self._stats
            lines = []
            add = lines.append
            for t, step, name, value in batch:
                add(f"{t!r},{'' if step is None else step},{quoted[name]},{value!r}\n")
                latest[name] = value
                st = stats.get(name)
                if st is None:
                    stats[name] = [value, value, 1]
                else:
                    if value < st[0]:
                        st[0] = value
                    if value > st[1]:
                        st[1] = value
                    st[2] += 1
            try:
                self._metrics_f.write("".join(lines))
                self._metrics_f.flush()
            except OSError as exc:
                if self._flush_error is None:
                    logger.error("cannot write metrics of run %s: %s", self._run_id, exc)
                self._flush_error = exc

    def _flush_loop(self) -> None:
        last_beat = 0.0
        heartbeat = self.run_dir / L.HEARTBEAT
        while not self._stop.wait(self.flush_interval):
            try:
                self._flush()
                now = _time()
                if now - last_beat >= L.HEARTBEAT_EVERY_S:
                    os.utime(heartbeat)
                    last_beat = now
            except Exception:
                logger.exception("the metric flusher of run %s failed", self._run_id)

    def _write_sample(self, sample: Any) -> None:
        f = self._res_f
        if f is None or f.closed:
            return
        fields = (
            sample.time,
            sample.cpu_percent,
            sample.rss_bytes,
            sample.available_bytes,
            sample.disk_free_bytes,
            sample.gpu_mem_bytes,
            sample.gpu_util,
        )
        f.write(",".join("" if v is None else repr(v) for v in fields) + "\n")
        f.flush()

    def __repr__(self) -> str:
        return f"Track(id={self._run_id!r}, name={self.name!r}, status={self.status!r})"


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, default=str, allow_nan=True, ensure_ascii=False)


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        return None


_ATEXIT_RUNS: weakref.WeakSet[Track] = weakref.WeakSet()
_ATEXIT_REGISTERED = False


def _register_atexit(run: Track) -> None:
    global _ATEXIT_REGISTERED
    _ATEXIT_RUNS.add(run)
    if not _ATEXIT_REGISTERED:
        atexit.register(_end_at_exit)
        _ATEXIT_REGISTERED = True


def _end_at_exit() -> None:
    # A run still open at a normal interpreter exit (start() without end()) finished;
    # flushing here also keeps the daemon flusher's last batch.
    for run in list(_ATEXIT_RUNS):
        if run.active:
            try:
                run.end("finished")
            except TrackError as exc:  # e.g. the disk filled up: the message names the file
                logger.warning("could not end run %s at exit: %s", run._run_id, exc.message)
            except Exception:
                logger.exception("could not end run %s at exit", run._run_id)
