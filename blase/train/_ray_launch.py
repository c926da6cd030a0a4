"""Distributed training through Ray Train: ``train.distributed: {launcher: ray, nproc_per_node: N}``.

The same job as the ``torchrun`` launcher (:mod:`blase.train._launch`) runs as a Ray Train
``TorchTrainer`` of N workers: Ray Train joins them into the torch process group (gloo on CPU,
nccl on CUDA) and each runs :func:`blase.train._ddp.ray_worker`, the epoch loop the torchrun
workers run, with the same seeded share of each shard per rank. Rank 0 alone writes the
checkpoints, the model and the run's records; this process replays the records into the run
while training goes on, as with torchrun, so the files and the result are the same.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blase.executor import RayExecutor
from blase.steps import StepResult, measure_step
from blase.train._errors import TrainError
from blase.train._launch import (
    JOB_DIR,
    RECORDS,
    RESULT,
    _failure,
    _follow,
    backend_for,
    read_result,
    write_job,
)
from blase.train._loop import EpochHook

if TYPE_CHECKING:
    from blase.train._train import Train

__all__ = ["ray_fit"]

logger = logging.getLogger(__name__)

#: The worker, named as torchrun names it (``-m blase.train._ddp``): imported in the worker.
WORKER = "blase.train._ddp"


def _worker(config: dict[str, Any]) -> None:
    """``train_loop_per_worker``: the worker module's :func:`ray_worker`."""
    os.environ["BLASE_PROGRESS"] = "0"  # N progress bars in Ray's logs are noise
    importlib.import_module(WORKER).ray_worker(config)


class _Running:
    """A thread seen as a process (``poll()``) by the records' follower."""

    def __init__(self, thread: threading.Thread) -> None:
        self.thread = thread

    def poll(self) -> int | None:
        return None if self.thread.is_alive() else 0


def ray_fit(trainer: Train, shards_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
            resume: bool, track: Any, on_epoch_end: EpochHook | None) -> StepResult:
    """Run ``trainer.fit`` in Ray Train workers; the same result, files and records as torchrun's."""
    from blase.track import active_run

    dist = trainer.config.distributed
    assert dist is not None and dist.launcher == "ray"
    out = Path(out_dir)
    job_path = write_job(trainer, Path(shards_dir), out, resume)
    job_dir = out / JOB_DIR
    torch_trainer = _torch_trainer(trainer, job_path, job_dir)
    run = track if track is not None else active_run()
    run = None if run is False else run
    outcome: dict[str, BaseException] = {}

    def fit() -> None:
        try:
            torch_trainer.fit()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    with measure_step() as meter:
        thread = threading.Thread(target=fit, name="blase-ray-train", daemon=True)
        thread.start()
        _follow(_Running(thread), job_dir / RECORDS, run, on_epoch_end)
        thread.join()
    if not (job_dir / RESULT).is_file():
        if list(job_dir.glob("error-*.json")):
            raise _failure(job_dir, 1)
        error = outcome.get("error")
        first = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else "no result"
        raise TrainError(f"Ray Train ended without a result: {first}",
                         hint="see the workers' logs (`ray logs` on the cluster); run again with "
                         "resume (`blase run --resume RUN`) to continue from the last complete epoch")
    return read_result(job_dir, meter.seconds, dist)


def _torch_trainer(trainer: Train, job_path: Path, job_dir: Path) -> Any:
    """A ``TorchTrainer`` of ``nproc_per_node`` workers (one CPU each, or one GPU each on CUDA)."""
    try:
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError:
        raise TrainError("train.distributed.launcher: ray needs Ray Train, which is not installed",
                         hint="pip install 'blase[ray]', or set launcher: torchrun") from None
    from blase.train._device import resolve_device

    RayExecutor().start()  # the cluster the run already joined, RAY_ADDRESS, or a local Ray
    dist = trainer.config.distributed
    assert dist is not None
    gpu = resolve_device(trainer.config.device).type == "cuda"
    return TorchTrainer(
        _worker,
        train_loop_config={"job": str(job_path)},
        scaling_config=ScalingConfig(num_workers=dist.nproc_per_node, use_gpu=gpu),
        torch_config=TorchConfig(backend=backend_for(trainer.config)),
        run_config=RunConfig(storage_path=str((job_dir / "ray").resolve()), name="train"),
    )
