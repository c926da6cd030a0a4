"""A worker of distributed training: ``python -m blase.train._ddp OUT/.ddp/job.json`` under
``torchrun``, or :func:`ray_worker` under Ray Train's ``TorchTrainer``.

It joins the process group, builds the :class:`~blase.train.Train` the launcher
(:mod:`blase.train._launch`) described, and runs its ``fit`` as one of the ranks; rank 0 hands
its Track records to the launcher through :class:`TrackRelay` and writes the result.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import IO, Any

from blase.config import TrainConfig
from blase.steps import StepResult
from blase.train._checkpoint import write_json
from blase.train._launch import RECORDS, RESULT, backend_for
from blase.train._ranks import Ranks
from blase.train._train import Train

__all__ = ["TrackRelay", "main", "ray_worker", "run_rank"]

logger = logging.getLogger(__name__)


class TrackRelay:
    """Rank 0's stand-in for the run: each record is a JSON line the launcher replays."""

    active = True

    def __init__(self, path: Path) -> None:
        self._f: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the run

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self._put({"metrics": metrics, "step": step})

    def log_event(self, kind: str, **fields: Any) -> None:
        self._put({"event": kind, "fields": fields})

    def epoch_end(self, *, epoch: int, metrics: dict[str, Any], model: Any) -> None:
        self._put({"epoch": epoch, "metrics": metrics})

    def _put(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _ranks_from_env() -> Ranks:
    return Ranks(
        rank=int(os.environ.get("RANK", "0")),
        world=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def _train(job: dict[str, Any], ranks: Ranks, job_dir: Path) -> StepResult:
    config = TrainConfig.model_validate(job["config"])
    if config.threads is None:  # the processes on this machine share its cores
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        config = config.model_copy(update={"threads": max(1, (os.cpu_count() or 1) // local)})
    trainer = Train(
        config,
        seed=job["seed"],
        project_root=job["project_root"],
        log_every=job["log_every"],
        monitor=job["monitor"],
        num_workers=job["num_workers"],
        step_size=job["step_size"],
        gamma=job["gamma"],
    ).set_model(job["model"])
    trainer._ranks = ranks
    relay = TrackRelay(job_dir / RECORDS) if ranks.writer else None
    try:
        result = trainer.fit(
            job["shards"],
            job["out"],
            resume=job["resume"],
            track=relay if relay is not None else False,
            on_epoch_end=relay.epoch_end if relay is not None else None,
        )
    finally:
        if relay is not None:
            relay.close()
    return result


def run_rank(job_path: Path, ranks: Ranks, *, join: bool) -> int:
    """Train as rank ``ranks.rank`` of the job at ``job_path``; 0 on success. ``join``: this
    process joins the process group itself (torchrun); Ray Train has joined it already."""
    import torch.distributed as dist

    from blase.errors import BlaseError

    job = json.loads(job_path.read_text())
    try:
        if join:
            dist.init_process_group(backend=backend_for(TrainConfig.model_validate(job["config"])))
        result = _train(job, ranks, job_path.parent)
        dist.barrier()  # every rank has finished: the run is complete
        if ranks.writer:
            write_json(job_path.parent / RESULT, result.to_json())
    except BlaseError as exc:
        write_json(
            job_path.parent / f"error-{ranks.rank}.json",
            {"rank": ranks.rank, "message": exc.message, "hint": exc.hint},
        )
        logger.error("%s", exc)
        return 1
    finally:
        if join and dist.is_initialized():
            dist.destroy_process_group()
    return 0


def main(argv: list[str]) -> int:
    """A ``torchrun`` worker: ``python -m blase.train._ddp OUT/.ddp/job.json``."""
    ranks = _ranks_from_env()
    logging.basicConfig(level=logging.INFO, format=f"[rank {ranks.rank}] %(levelname)s %(message)s")
    return run_rank(Path(argv[0]), ranks, join=True)


def ray_worker(config: dict[str, Any]) -> None:
    """A Ray Train worker (``train_loop_per_worker`` of a ``TorchTrainer``): ``config["job"]``."""
    from ray import train

    context = train.get_context()
    ranks = Ranks(rank=context.get_world_rank(), world=context.get_world_size(),
                  local_rank=context.get_local_rank())
    os.environ.setdefault("LOCAL_WORLD_SIZE", str(context.get_local_world_size()))
    if run_rank(Path(config["job"]), ranks, join=False) != 0:
        raise RuntimeError(f"rank {ranks.rank} failed: see error-{ranks.rank}.json")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
