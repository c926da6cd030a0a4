"""Writing files atomically, and the per-epoch checkpoint folder. No pickle anywhere.

A checkpoint is a folder ``checkpoint/`` holding

``weights.safetensors``
    the model's ``state_dict``;
``optimizer.safetensors``
    the optimizer's state tensors (``optimizer.<param>.<name>``) and every generator's state
    (``rng.torch``, ``rng.cuda.<i>``, uint8);
``state.json``
    everything else: epoch, best metric, early-stopping counter, history, the optimizer's
    non-tensor parts (param groups), the scheduler's and grad scaler's state, numpy's and
    Python's generator state, and fingerprints of the config and the shards.

Each file is written under a temporary name and fsynced (:func:`blase._fs.write_bytes_atomic`); the folder is
built whole as a hidden sibling, then swapped in with two renames, during which Ctrl-C is held
back. A crash between the two renames leaves the previous checkpoint as
``.checkpoint.old-*``, which :func:`load_checkpoint` picks up. So ``checkpoint/`` is always a
complete epoch, never a mix of two.
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from blase._fs import replace_dir, write_bytes_atomic
from blase.train._errors import TrainError

__all__ = [
    "CHECKPOINT_DIR",
    "Checkpoint",
    "flatten_optimizer",
    "load_checkpoint",
    "load_tensors",
    "remove_stale",
    "save_checkpoint",
    "tensors_bytes",
    "unflatten_optimizer",
    "write_json",
    "write_tensors",
]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.safetensors"
STATE = "state.json"
_OPT_PREFIX = "optimizer."


def write_json(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def tensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """Serialize tensors to safetensors bytes (CPU, contiguous; shared storage copied)."""
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for name in sorted(tensors):
        t = tensors[name].detach()
        if t.device.type != "cpu":
            t = t.cpu()
        t = t.contiguous()
        if t.numel():
            # safetensors refuses tensors that share storage (tied weights): copy the later ones
            ptr = t.untyped_storage().data_ptr()
            if ptr in seen:
                t = t.clone()
            else:
                seen.add(ptr)
        out[name] = t
    return st_save(out, metadata={"format": "pt"})


def write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    write_bytes_atomic(path, tensors_bytes(tensors))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file (raises ``OSError`` or ``TrainError`` on a bad file)."""
    data = path.read_bytes()
    try:
        return st_load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise TrainError(
            f"{path} is not a valid safetensors file ({exc})",
            hint="it may be truncated; train again or restore it from the run's artifacts",
        ) from None


def flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into tensors and JSON data (for :func:`unflatten_optimizer`)."""
    tensors: dict[str, torch.Tensor] = {}
    extra: dict[str, dict[str, Any]] = {}
    for pid, entries in state_dict["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPT_PREFIX}{pid}.{name}"] = value
            else:
                extra.setdefault(str(pid), {})[name] = _jsonable(value, f"optimizer state {name!r}")
    groups = [
        {k: _jsonable(v, f"optimizer param_group key {k!r}") for k, v in g.items()}
        for g in state_dict["param_groups"]
    ]
    return tensors, {"param_groups": groups, "state": extra}


def unflatten_optimizer(
    tensors: dict[str, torch.Tensor], data: dict[str, Any], like: dict[str, Any]
) -> dict[str, Any]:
    """Rebuild an optimizer ``state_dict``; ``like`` (a fresh optimizer's) restores tuple types."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith(_OPT_PREFIX):
            continue
        pid, name = key[len(_OPT_PREFIX) :].split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    for pid, entries in data.get("state", {}).items():
        state.setdefault(int(pid), {}).update(entries)
    groups = []
    for i, saved in enumerate(data["param_groups"]):
        template = like["param_groups"][i] if i < len(like["param_groups"]) else {}
        groups.append(
            {k: tuple(v) if isinstance(template.get(k), tuple) else v for k, v in saved.items()}
        )
    return {"state": state, "param_groups": groups}


def _jsonable(value: Any, what: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, what) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, what) for k, v in value.items()}
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise TrainError(
        f"cannot checkpoint {what}: {type(value).__name__} is neither a tensor nor JSON data",
        hint="use one of the built-in optimizers (adam, adamw, sgd) and schedules (none, cosine, step)",
    )


@dataclass
class Checkpoint:
    """One complete epoch read back from ``checkpoint/``."""

    weights: dict[str, torch.Tensor]
    optimizer_tensors: dict[str, torch.Tensor]
    state: dict[str, Any]
    path: Path
    rng: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        """Epochs completed."""
        return int(self.state["epoch"])


@contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold back Ctrl-C for a few renames, then raise it (main thread, default handler only)."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    caught: list[Any] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if caught:
            raise KeyboardInterrupt


def save_checkpoint(
    out_dir: Path,
    *,
    weights: dict[str, torch.Tensor],
    optimizer_tensors: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> Path:
    """Write ``out_dir/checkpoint/`` for one epoch, atomically as a whole.

    Raises
    ------
    TrainError
        When a file cannot be written (a full disk, permissions); the previous checkpoint is
        left as it was.
    """
    final = out_dir / CHECKPOINT_DIR
    tmp = out_dir / f".{CHECKPOINT_DIR}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        write_tensors(tmp / WEIGHTS, weights)
        write_tensors(tmp / OPTIMIZER, optimizer_tensors)
        write_json(tmp / STATE, state)
        with _sigint_held():
            replace_dir(tmp, final)  # puts the previous checkpoint back if the swap fails
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        epoch = state.get("epoch")
        kept = "the previous checkpoint is intact" if final.exists() else "no checkpoint was kept"
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise TrainError(
                f"the disk filled up while writing the checkpoint of epoch {epoch} into {final} "
                f"({exc.strerror or exc}); {kept}",
                hint="free disk space, then continue with resume=True",
            ) from exc
        raise TrainError(
            f"cannot write the checkpoint of epoch {epoch} into {final}: {exc}; {kept}",
            hint="check the folder's permissions and free space, then continue with resume=True",
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _checkpoint_folder(out_dir: Path) -> Path | None:
    final = out_dir / CHECKPOINT_DIR
    if (final / STATE).is_file():
        return final
    # A crash between the two renames of save_checkpoint: the previous one is still whole.
    olds = sorted(out_dir.glob(f".{CHECKPOINT_DIR}.old-*"), key=lambda p: p.stat().st_mtime)
    for candidate in reversed(olds):
        if (candidate / STATE).is_file():
            logger.warning("recovering the checkpoint from %s", candidate)
            return candidate
    return None


def load_checkpoint(out_dir: Path) -> Checkpoint | None:
    """The last complete checkpoint in ``out_dir``, or ``None`` when there is none.

    Raises
    ------
    TrainError
        When the checkpoint's files cannot be read.
    """
    folder = _checkpoint_folder(out_dir)
    if folder is None:
        return None
    try:
        state = json.loads((folder / STATE).read_text(encoding="utf-8"))
        weights = load_tensors(folder / WEIGHTS)
        opt = load_tensors(folder / OPTIMIZER)
    except (OSError, ValueError) as exc:
        raise TrainError(
            f"the checkpoint in {folder} cannot be read: {exc}",
            hint="start over with resume=False (it replaces the checkpoint)",
        ) from None
    rng = {k: v for k, v in opt.items() if k.startswith("rng.")}
    opt_tensors = {k: v for k, v in opt.items() if k.startswith(_OPT_PREFIX)}
    return Checkpoint(
        weights=weights, optimizer_tensors=opt_tensors, state=state, path=folder, rng=rng
    )


def remove_stale(out_dir: Path) -> None:
    """Remove temporary folders and files left by a crash in ``out_dir``."""
    for p in out_dir.glob(f".{CHECKPOINT_DIR}.tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
    for p in out_dir.glob(".*.tmp-*"):
        if p.is_file():
            p.unlink(missing_ok=True)
