"""Which process of a distributed (DDP) training this is, and what it shares with the others.

:class:`Ranks` is handed to :class:`~blase.train._loop.EpochLoop`: it wraps the model in
``DistributedDataParallel`` (gradients all-reduced), sums the per-process metric totals, and
says whether this process writes (rank 0 alone writes checkpoints, the model and Track
records). :data:`SINGLE` is the one-process case, where every method hands its input back
unchanged, so single-process training runs exactly as it always has.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SINGLE", "Ranks"]


@dataclass(frozen=True)
class Ranks:
    """``rank`` of ``world`` processes; ``local_rank`` on this machine (its GPU index)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def writer(self) -> bool:
        """True for the process that writes the outputs (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def device(self, device: torch.device) -> torch.device:
        """This process's device: its own GPU (``cuda:local_rank``) when training on CUDA."""
        if self.distributed and device.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module that trains: ``model`` itself, or a DDP wrapper sharing its weights."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sum(self, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The sums over all processes of float64 scalars (``values`` itself in one process)."""
        if not self.distributed:
            return values
        import torch.distributed as dist

        packed = torch.stack([v.to(torch.float64).reshape(()) for v in values])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM)
        return tuple(packed.unbind())


#: One process: no wrapper, no reduction, writes everything.
SINGLE = Ranks()
