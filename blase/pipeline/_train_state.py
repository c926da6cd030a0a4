"""What the train step keeps between runs and what its results depend on: the device it
trains on (part of the train and evaluate cache keys) and the checkpoint a failed run
leaves for ``blase run --resume``."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

__all__ = ["checkpoint_dir", "kept_checkpoint", "mirror_folder", "training_device"]


def training_device(config: Any) -> str:
    """The device training runs on (results differ between CPU and each GPU model).

    Without a GPU in sight (no ``nvidia-smi`` device, not a Mac) ``auto`` means the CPU,
    which spares a cached run the import of torch.
    """
    import platform

    from blase.hashing import environment_fingerprint

    want = config.train.device
    if want == "cpu":
        return "cpu"
    if want == "auto" and "torch" not in sys.modules and platform.system() != "Darwin":
        gpu = environment_fingerprint().get("gpu") or {}
        if not gpu.get("devices"):
            return "cpu"
    from blase.train import resolve_device

    device = resolve_device(config.train.device)
    if device.type == "cuda":
        import torch

        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def checkpoint_dir(project: Any, run_id: str) -> Path:
    """Where run ``run_id`` keeps its train checkpoint for ``--resume``."""
    return project.state_dir / "checkpoints" / run_id / "train" / "checkpoint"


def kept_checkpoint(project: Any, run_id: str) -> Path | None:
    """The checkpoint run ``run_id`` left for ``--resume``: the mirrored folder, or the
    previous one when the run died between the two renames of a mirror."""
    folder = checkpoint_dir(project, run_id)
    if folder.is_dir():
        return folder
    old = sorted(folder.parent.glob(f".{folder.name}.old-*"), key=lambda p: p.stat().st_mtime)
    return old[-1] if old else None


def mirror_folder(source: Path, target: Path, *, attempts: int = 5) -> bool:
    """Put a copy of the folder ``source`` at ``target``, whole (hard links where the
    filesystem allows: checkpoint files are written new each epoch, never changed in place).

    A trainer that runs in other processes (DDP, Ray Train) may swap in the next epoch's
    checkpoint while this copies: the copy then counts only when ``source`` is the same
    folder (inode) before and after and nothing vanished under it, else it is taken again.
    Returns False, leaving ``target`` as it was, when every attempt met a swap.
    """
    import os

    from blase._fs import replace_dir

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    target.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(attempts):
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            before = os.stat(source).st_ino
            shutil.copytree(source, tmp, copy_function=link_or_copy)
            if os.stat(source).st_ino != before:
                raise FileNotFoundError(f"{source} was replaced while it was copied")
        except (FileNotFoundError, shutil.Error):
            shutil.rmtree(tmp, ignore_errors=True)
            continue
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return True
    return False
