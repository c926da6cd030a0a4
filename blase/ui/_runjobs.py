""""Run from here" of the builder: the saved pipeline, in a background thread, watched live.

A job is :meth:`blase.pipeline.Pipeline.run` with ``from_step`` on a thread of the server,
tagged ``started_by: blase ui``; its ``on_step`` callback records each step's state as it
changes, and :meth:`RunJobs.status` adds what the run's own record says so far (rows,
seconds, cached or why it ran, epochs trained), read from the run folder as ``blase runs``
reads it, never blocking the run. One job at a time per project. :meth:`RunJobs.stop` stops
a job before its next step starts (a step that runs goes on to its end): the run is recorded
as interrupted, as after Ctrl+C, and its finished steps are in the step cache.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from blase.errors import BlaseError
from blase.project import Project
from blase.ui._api import UIError, steps_of

__all__ = ["RunJob", "RunJobs", "Stopped"]

logger = logging.getLogger(__name__)


class Stopped(KeyboardInterrupt):
    """Raised into the pipeline (through ``on_step``) to stop it before a step: the runner and
    the run's record treat it as Ctrl+C."""


@dataclass
class RunJob:
    """One "run from here": the steps it runs, their states, its run id once it has one."""

    id: str
    project: Project
    from_step: str
    steps: list[str]
    epochs: int
    states: dict[str, str] = field(default_factory=dict)
    status: str = "running"
    run_id: str | None = None
    error: dict[str, Any] | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    stop_requested: bool = False


class RunJobs:
    """The builder's background runs, by id."""

    def __init__(self) -> None:
        self._jobs: dict[str, RunJob] = {}
        self._lock = threading.Lock()

    def start(self, project: Project, from_step: str) -> dict[str, Any]:
        """Start the project's saved pipeline at ``from_step``; the config is loaded (and a bad
        one refused) before this returns, the steps run on a thread."""
        from blase.pipeline import Pipeline

        pipeline = Pipeline(project)
        order = list(pipeline.steps)
        if from_step not in order:
            raise UIError(f"no step {from_step!r} in this pipeline", hint=f"steps: {', '.join(order)}")
        with self._lock:
            busy = [j for j in self._jobs.values() if j.project.root == project.root and j.status == "running"]
            if busy:
                raise UIError(f"a run of {project.name} started here is still going (job {busy[0].id})",
                              hint="wait for it to finish", status=409)
            # every step: the ones before from_step show as reused from the run that finished them
            job = RunJob(uuid.uuid4().hex[:12], project, from_step, order, pipeline.config.train.epochs)
            self._jobs[job.id] = job
        thread = threading.Thread(target=self._work, args=(job, pipeline), name=f"blase-ui-run-{job.id}", daemon=True)
        thread.start()
        return self.status(job.id)

    def _work(self, job: RunJob, pipeline: Any) -> None:
        def on_step(step: str, state: str) -> None:
            job.run_id = pipeline.run_id
            if state == "start" and job.stop_requested:
                raise Stopped(f"stopped from blase ui before {step}")
            job.states[step] = "running" if state == "start" else state

        try:
            result = pipeline.run(from_step=job.from_step, on_step=on_step, tags={"started_by": "blase ui"})
            job.status = result.status
        except Stopped as exc:
            job.status, job.error = "stopped", {"error": str(exc), "hint": "Run from here goes on from there: "
                                                "the finished steps come from the step cache"}
        except BlaseError as exc:
            job.status, job.error = "failed", {"error": exc.message, "hint": exc.hint}
        except Exception as exc:  # a bug or a library's error: the page shows it, the log has the traceback
            logger.exception("blase ui: run of %s from %s failed", job.project.name, job.from_step)
            job.status, job.error = "failed", {"error": f"{type(exc).__name__}: {exc}", "hint": None}
        finally:
            job.run_id = pipeline.run_id
            job.ended = time.time()

    def stop(self, job_id: str) -> dict[str, Any]:
        """Stop the job before its next step (the step running now finishes)."""
        job = self._job(job_id)
        if job.status == "running":
            job.stop_requested = True
        return self.status(job_id)

    def _job(self, job_id: str) -> RunJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise UIError(f"no run job {job_id!r}", hint="start one with Run from here", status=404)
        return job

    def status(self, job_id: str) -> dict[str, Any]:
        """The job's steps (state, and what the run recorded for each), epochs, status."""
        job = self._job(job_id)
        recorded: dict[str, dict[str, Any]] = {}
        epochs_done = 0
        if job.run_id is not None:
            recorded, epochs_done = _recorded(job)
        steps = []
        for name in job.steps:
            row = dict(recorded.get(name, {}))
            row.update(step=name, state=job.states.get(name, "waiting"))
            steps.append(row)
        end = job.ended or time.time()
        return {"id": job.id, "project": job.project.name, "from_step": job.from_step, "status": job.status,
                "run_id": job.run_id, "error": job.error, "steps": steps, "seconds": round(end - job.started, 1),
                "epochs": {"done": epochs_done, "total": job.epochs}, "stopping": job.stop_requested}


def _recorded(job: RunJob) -> tuple[dict[str, dict[str, Any]], int]:
    """What the run's record holds so far: each step's row (as the run page shows it) and the
    epochs trained (points of ``train_loss``)."""
    from blase.track import load_run

    try:
        run = load_run(str(job.run_id), [job.project.root], history=False)
    except BlaseError:  # the record is being created
        return {}, 0
    rows = {row["step"]: row for row in steps_of(run.event_list)}
    return rows, int(run.to_json().get("metric_counts", {}).get("train_loss", 0))
