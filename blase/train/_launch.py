"""Distributed training (DDP) through ``torchrun``: the launcher and the worker.

``train.distributed: {nproc_per_node: N}`` makes :meth:`Train.fit <blase.train.Train.fit>`
call :func:`launch_fit`, which writes the job (config, seed, model, folders) to
``OUT/.ddp/job.json`` and runs ``python -m torch.distributed.run --nproc_per_node N -m
blase.train._ddp JOB``. Each worker (:func:`main`) joins the process group, builds the same
:class:`~blase.train.Train` and runs the same epoch loop with :class:`~blase.train._ranks.Ranks`:
its own seeded share of each shard's rows, gradients all-reduced by DDP, metrics summed over the
processes. Rank 0 alone writes the checkpoints, the model and the run's records; it hands the
records to the launcher through ``OUT/.ddp/track.jsonl``, which the launcher replays into the
run (and into ``on_epoch_end``) while training goes on. A checkpoint is whole or absent, so a
run killed at any moment resumes with ``resume=True`` like a single-process one.

With ``nnodes > 1`` (a shared filesystem, the same paths on every machine) node 0 runs
``blase run`` and each other node runs the ``torchrun`` command node 0 logs.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blase.config import DistributedConfig, TrainConfig
from blase.steps import StepResult, measure_step
from blase.train._checkpoint import remove_stale, write_json
from blase.train._errors import TrainError
from blase.train._loop import EpochHook

if TYPE_CHECKING:
    from blase.train._train import Train

__all__ = ["JOB_DIR", "LOG", "RECORDS", "RESULT", "backend_for", "launch_fit", "read_result", "torchrun_command",
           "write_job"]

logger = logging.getLogger(__name__)

JOB_DIR = ".ddp"
JOB, RECORDS, RESULT, LOG = "job.json", "track.jsonl", "result.json", "torchrun.log"
_POLL_S = 0.2


def torchrun_command(job: Path, dist: DistributedConfig) -> list[str]:
    """The ``torchrun`` command line (as ``python -m torch.distributed.run``) for ``job``."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={dist.nproc_per_node}"]
    if dist.nnodes == 1:
        cmd.append("--standalone")  # a free port on this machine
    else:
        cmd += [
            f"--nnodes={dist.nnodes}",
            f"--node_rank={dist.node_rank}",
            f"--master_addr={dist.master_addr}",
            f"--master_port={dist.master_port}",
        ]
    return [*cmd, "-m", "blase.train._ddp", str(job)]


def _job(trainer: Train, shards: Path, out: Path, resume: bool) -> dict[str, Any]:
    source = trainer._model_source()
    if not isinstance(source, str):
        raise TrainError(
            "train.distributed trains a model the worker processes can build: 'linear', 'mlp' "
            "or a factory script, not an nn.Module passed to set_model (nor a fine-tune of one)",
            hint="pass the model as 'scripts/model.py:build_model', or remove train.distributed "
            "to train in this process",
        )
    root = trainer.project_root
    return {
        "config": trainer.config.model_dump(mode="json"),
        "model": source,
        "seed": trainer.seed,
        "project_root": str(Path(root).resolve()) if root is not None else None,
        "log_every": trainer.log_every,
        "monitor": trainer.monitor,
        "num_workers": trainer.num_workers,
        "step_size": trainer.step_size,
        "gamma": trainer.gamma,
        "shards": str(shards.resolve()),
        "out": str(out.resolve()),
        "resume": resume,
    }


def _worker_env(dist: DistributedConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // dist.nproc_per_node)))
    env["BLASE_PROGRESS"] = "0"  # N progress bars on one terminal are noise
    # the workers import the blase this process runs, installed or not
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def launch_fit(
    trainer: Train,
    shards_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    resume: bool,
    track: Any,
    on_epoch_end: EpochHook | None,
) -> StepResult:
    """Run ``trainer.fit`` in ``torchrun`` workers; the same result, files and records."""
    from blase.track import active_run

    dist = trainer.config.distributed
    assert dist is not None  # Train.fit launches only then
    out = Path(out_dir)
    job_dir = out / JOB_DIR
    job_path = job_dir / JOB
    cmd = torchrun_command(job_path, dist)
    if dist.node_rank > 0:
        raise TrainError(
            f"node_rank {dist.node_rank} does not run the pipeline: node 0 does, and writes "
            f"the job this machine joins",
            hint=f"on this machine run: {shlex.join(cmd)}",
        )
    write_job(trainer, Path(shards_dir), out, resume)
    if dist.nnodes > 1:
        other = [c.replace("--node_rank=0", "--node_rank=K") for c in cmd]
        logger.info("train: on each other node K run: %s", shlex.join(other))
    run = track if track is not None else active_run()
    run = None if run is False else run
    logger.info("train: %s", shlex.join(cmd))
    with measure_step() as meter, open(job_dir / LOG, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=_worker_env(dist),
            preexec_fn=_own_group_dying_with_parent,
        )
        try:
            _follow(proc, job_dir / RECORDS, run, on_epoch_end)
        except BaseException:
            _stop(proc)
            raise
    if proc.returncode != 0:
        if not (job_dir / RESULT).is_file():
            raise _failure(job_dir, proc.returncode)
        # rank 0 writes the result once every rank has finished: only the teardown failed
        tail = (job_dir / LOG).read_text(errors="replace").splitlines()[-40:]
        logger.warning("train: torchrun exited with status %d after training finished:\n%s",
                       proc.returncode, "\n".join(tail))
    return read_result(job_dir, meter.seconds, dist)


def write_job(trainer: Train, shards: Path, out: Path, resume: bool) -> Path:
    """``out/.ddp/job.json`` (a fresh folder; stale temporary files in ``out`` removed)."""
    job = _job(trainer, shards, out, resume)
    job_dir = out / JOB_DIR
    out.mkdir(parents=True, exist_ok=True)
    remove_stale(out)
    shutil.rmtree(job_dir, ignore_errors=True)
    job_dir.mkdir()
    write_json(job_dir / JOB, job)
    return job_dir / JOB


def read_result(job_dir: Path, seconds: float, dist: DistributedConfig) -> StepResult:
    """Rank 0's result, with the launch's time and shape; the job folder removed."""
    result = StepResult.from_json(json.loads((job_dir / RESULT).read_text()))
    shutil.rmtree(job_dir, ignore_errors=True)
    result.seconds = seconds
    result.details |= {
        "world_size": dist.nproc_per_node * dist.nnodes,
        "nproc_per_node": dist.nproc_per_node,
        "nnodes": dist.nnodes,
        "launcher": dist.launcher,
    }
    return result


def backend_for(config: TrainConfig) -> str:
    """The process group's backend: ``train.distributed.backend``; auto: nccl on CUDA, else gloo."""
    wanted = config.distributed.backend if config.distributed is not None else "auto"
    if wanted != "auto":
        return wanted
    from blase.train._device import resolve_device

    return "nccl" if resolve_device(config.device).type == "cuda" else "gloo"


def _follow(proc: Any, records: Path, run: Any, on_epoch_end: EpochHook | None) -> None:
    """Replay rank 0's records into ``run`` and ``on_epoch_end`` until the workers exit."""
    offset = 0
    while True:
        done = proc.poll() is not None
        if records.is_file():
            with open(records, "rb") as f:
                f.seek(offset)
                body = f.read()
            complete = body[: body.rfind(b"\n") + 1]
            offset += len(complete)
            for line in complete.splitlines():
                _replay(json.loads(line), run, on_epoch_end)
        if done:
            return
        time.sleep(_POLL_S)


def _replay(record: dict[str, Any], run: Any, on_epoch_end: EpochHook | None) -> None:
    if "epoch" in record:
        if on_epoch_end is not None:  # the weights live in the workers: model is None
            on_epoch_end(epoch=record["epoch"], metrics=record["metrics"], model=None)
    elif run is None:
        return
    elif "event" in record:
        run.log_event(record["event"], **record["fields"])
    else:
        run.log_metrics(record["metrics"], step=record["step"])


def _own_group_dying_with_parent() -> None:
    """In the torchrun child before exec: its own process group (Ctrl-C reaches this process,
    which stops the workers between two checkpoints), and SIGTERM when this process dies, even
    by SIGKILL (Linux), so no orphaned workers go on writing into the output folder."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop torchrun and its workers (their own process group); a checkpoint stays whole."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _failure(job_dir: Path, code: int) -> TrainError:
    errors = sorted(job_dir.glob("error-*.json"), key=lambda p: int(p.stem.split("-")[1]))
    if errors:
        err = json.loads(errors[0].read_text())
        return TrainError(
            f"distributed training failed on rank {err['rank']}: {err['message']}",
            hint=err.get("hint") or f"see the workers' log {job_dir / LOG}",
        )
    lines = (job_dir / LOG).read_text(errors="replace").splitlines()
    tail = "\n".join(lines[-15:])
    return TrainError(
        f"torchrun exited with status {code}; the end of its log {job_dir / LOG}:\n{tail}",
        hint="fix what the log says, then run again (resume=True / `blase run --resume RUN` "
        "continues from the last complete epoch)",
    )


