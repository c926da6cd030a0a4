"""The epoch loop of :class:`~blase.train.Train`: batches, validation, best weights, checkpoints.

One epoch is: iterate the train split's batches (:class:`~blase.prepare.ShardDataset`, shuffled
from ``(seed, epoch)``), step the optimizer, then evaluate the val split, keep the best weights
(``model.safetensors``), step the schedule and write a checkpoint. Everything that decides the
result (the weights, the optimizer's and scheduler's state, every generator's state) is in the
checkpoint, and the batch order depends only on the seed and the epoch, so resuming after epoch
``k`` gives exactly the weights of an uninterrupted run.

The loss is checked for NaN/inf before the optimizer steps (every step on CPU, where ``.item()``
is free; every ``log_every`` steps on a GPU, where it is a sync), so a bad step never reaches a
checkpoint.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from blase.model import MODEL_WEIGHTS
from blase.train._checkpoint import (
    flatten_optimizer,
    save_checkpoint,
    unflatten_optimizer,
    write_json,
    write_tensors,
)
from blase.train._device import rng_state, set_rng_state
from blase.train._errors import TrainError
from blase.train._ranks import SINGLE, Ranks

if TYPE_CHECKING:
    from blase.train._train import Train

__all__ = ["HISTORY_JSON", "MONITORS", "EpochHook", "EpochLoop", "TaskLoss", "disk_guard"]

logger = logging.getLogger(__name__)

HISTORY_JSON = "history.json"
#: Keyword-only hook called after each epoch's checkpoint: ``hook(epoch=, metrics=, model=)``.
EpochHook = Callable[..., None]
#: Validation metrics that can pick the best weights, and which way is better.
MONITORS = {"val_loss": "min", "val_accuracy": "max", "val_rmse": "min"}


@contextmanager
def disk_guard(what: str, path: Path) -> Iterator[None]:
    """Turn an ``OSError`` while writing an output into a :class:`TrainError`."""
    try:
        yield
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        raise TrainError(
            f"{'the disk filled up' if full else 'cannot write'} while writing {what} {path} "
            f"({exc.strerror or exc}); the previous file is intact",
            hint="free disk space, then continue with resume=True"
            if full
            else "check the folder's permissions, then continue with resume=True",
        ) from exc


class TaskLoss:
    """The task's loss, as ``(sum over rows, sum of row weights)`` so means are exact."""

    def __init__(self, task: str, class_weights: torch.Tensor | None) -> None:
        self.task = task
        self.w = class_weights

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = out.float()
        if self.task == "multiclass":
            total = F.cross_entropy(out, y, weight=self.w, reduction="sum")
            denom = (
                self.w[y].sum()
                if self.w is not None
                else torch.tensor(float(y.shape[0]), device=out.device)
            )
            return total, denom
        pred = out.reshape(-1)
        if self.task == "binary":
            target = y.to(pred.dtype)
            per_row = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
            if self.w is not None:
                rw = self.w[y]
                return (per_row * rw).sum(), rw.sum()
            return per_row.sum(), torch.tensor(float(y.shape[0]), device=out.device)
        return F.mse_loss(pred, y.to(pred.dtype), reduction="sum"), torch.tensor(
            float(y.shape[0]), device=out.device
        )


class EpochLoop:
    """The mutable state of one ``fit``: epochs, best metric, history, the step counter."""

    def __init__(
        self,
        owner: Train,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        scaler: Any,
        loss_fn: TaskLoss,
        device: torch.device,
        amp: bool,
        run: Any,
        out: Path,
        shards: Path,
        task: str,
        fingerprint: dict[str, Any],
        net: nn.Module | None = None,
        ranks: Ranks = SINGLE,
    ) -> None:
        self.owner = owner
        # ``net`` trains (a DDP wrapper in distributed training); ``model`` is evaluated and saved
        self.net = model if net is None else net
        self.ranks = ranks
        self.cfg = owner.config
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.loss_fn = loss_fn
        self.device = device
        self.amp = amp
        self.run_ = run
        self.out = out
        self.shards = shards
        self.task = task
        self.fingerprint = fingerprint
        self.epoch = 0
        self.global_step = 0
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.stopped = False
        self.history: list[dict[str, Any]] = []
        self.mode = MONITORS[owner.monitor]

    # -- checkpoint ---------------------------------------------------------------------------

    def restore(self, ckpt: Any) -> None:
        s = ckpt.state
        try:
            self.model.load_state_dict({k: v.to(self.device) for k, v in ckpt.weights.items()})
            like = self.optimizer.state_dict()
            self.optimizer.load_state_dict(
                unflatten_optimizer(ckpt.optimizer_tensors, s["optimizer"], like)
            )
            if self.scheduler is not None and s.get("scheduler"):
                self.scheduler.load_state_dict(s["scheduler"])
            if self.scaler is not None and s.get("scaler"):
                self.scaler.load_state_dict(s["scaler"])
            set_rng_state(ckpt.rng, s["rng"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise TrainError(
                f"the checkpoint in {ckpt.path} does not fit this model: {exc}",
                hint="start over with resume=False",
            ) from None
        self.epoch = int(s["epoch"])
        self.global_step = int(s.get("global_step", 0))
        self.best = s.get("best")
        self.best_epoch = s.get("best_epoch")
        self.bad_epochs = int(s.get("bad_epochs", 0))
        self.stopped = bool(s.get("stopped", False))
        self.history = list(s.get("history", []))
        logger.info("resuming from epoch %d (%s)", self.epoch, ckpt.path)

    def _save(self) -> None:
        opt_tensors, opt_data = flatten_optimizer(self.optimizer.state_dict())
        rng_tensors, rng_data = rng_state()
        state = {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "history": self.history,
            "optimizer": opt_data,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_data,
            "fingerprint": self.fingerprint,
        }
        save_checkpoint(
            self.out,
            weights=self.model.state_dict(),
            optimizer_tensors={**opt_tensors, **rng_tensors},
            state=state,
        )

    # -- epochs -------------------------------------------------------------------------------

    def run(
        self,
        val_rows: int,
        on_epoch_end: EpochHook | None,
        *,
        splits: tuple[str, ...] = ("train",),
        epochs: int | None = None,
        label: str = "train",
    ) -> None:
        """Train until ``epochs`` (default ``train.epochs``) or early stopping, on the shards
        of ``splits``; with ``val_rows`` the val split picks the best weights."""
        from blase.prepare import ShardDataset
        from blase.progress import progress

        cfg, owner = self.cfg, self.owner
        total_epochs = cfg.epochs if epochs is None else epochs
        share = {"rank": self.ranks.rank, "world_size": self.ranks.world}
        train_ds = ShardDataset(
            self.shards, splits, batch_size=cfg.batch_size, shuffle=True, seed=owner.seed, **share
        )
        val_ds = (
            ShardDataset(
                self.shards,
                "val",
                batch_size=max(cfg.batch_size, 1024),
                shuffle=False,
                even=False,
                **share,
            )
            if val_rows
            else None
        )
        if cfg.early_stopping and val_ds is None and epochs is None:
            logger.warning(
                "early_stopping is set but there is no val split; training all %d epochs",
                cfg.epochs,
            )
        remaining = 0 if self.stopped else max(0, total_epochs - self.epoch)
        with progress(label, total=remaining * train_ds.rows, unit="rows") as bar:
            while not self.stopped and self.epoch < total_epochs:
                bar.update(description=f"{label} {self.epoch + 1}/{total_epochs}")
                metrics = self._train_epoch(train_ds, bar)
                if val_ds is not None:
                    metrics.update(self._evaluate(val_ds))
                self._end_epoch(metrics, has_val=val_ds is not None)
                if on_epoch_end is not None:
                    on_epoch_end(epoch=self.epoch, metrics=dict(metrics), model=self.model)
        if not self.ranks.writer:
            return
        # e.g. a finished run resumed after its model file was removed
        if not (self.out / MODEL_WEIGHTS).is_file():
            with disk_guard("the weights", self.out / MODEL_WEIGHTS):
                write_tensors(self.out / MODEL_WEIGHTS, self.model.state_dict())
        with disk_guard("the history", self.out / HISTORY_JSON):
            write_json(self.out / HISTORY_JSON, self.history)

    def _loader(self, ds: Any) -> Any:
        if self.owner.num_workers > 0:
            return ds.loader(self.owner.num_workers, pin_memory=self.device.type == "cuda")
        return ds

    def _autocast(self) -> Any:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _nan(self, epoch: int, step: str, value: float) -> TrainError:
        kept = (
            f"the checkpoint of epoch {self.epoch} is intact"
            if self.epoch
            else "no checkpoint was written"
        )
        return TrainError(
            f"the loss became {value} at epoch {epoch}, {step}; training stopped ({kept})",
            hint=f"lower the learning rate (train.lr is {self.cfg.lr:g}) or set train.grad_clip "
            "(e.g. 1.0); also check the features for huge or infinite values",
        )

    def _train_epoch(self, ds: Any, bar: Any) -> dict[str, Any]:
        cfg, model, opt, dev = self.cfg, self.net, self.optimizer, self.device
        run, log_every = self.run_, self.owner.log_every
        epoch = self.epoch + 1
        ds.set_epoch(self.epoch)
        model.train()
        every_step = dev.type == "cpu"  # a .item() per step is free on CPU, a sync on a GPU
        total = torch.zeros((), dtype=torch.float64, device=dev)
        denom = torch.zeros((), dtype=torch.float64, device=dev)
        rows = 0
        wait = 0.0
        start = time.perf_counter()
        last_t, last_rows = start, 0
        step_in_epoch = 0
        it = iter(self._loader(ds))
        while True:
            t = time.perf_counter()
            try:
                xb, yb = next(it)
            except StopIteration:
                break
            wait += time.perf_counter() - t
            xb = xb.to(dev, non_blocking=True)
            yb = yb.to(dev, non_blocking=True)
            step_in_epoch += 1
            try:
                with self._autocast():
                    out = model(xb)
                    s, d = self.loss_fn(out, yb)
                    loss = s / d
                if every_step:
                    value = loss.item()
                    if not math.isfinite(value):
                        raise self._nan(epoch, f"step {step_in_epoch}", value)
                opt.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    if cfg.grad_clip:
                        self.scaler.unscale_(opt)
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    self.scaler.step(opt)
                    self.scaler.update()
                else:
                    loss.backward()
                    if cfg.grad_clip:
                        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    opt.step()
            except TrainError:
                raise
            except RuntimeError as exc:
                hint = (
                    "lower train.batch_size, or use a smaller model"
                    if "out of memory" in str(exc)
                    else "check the model's forward() against the shards' batches"
                )
                raise TrainError(
                    f"training failed at epoch {epoch}, step {step_in_epoch}: {exc}", hint=hint
                ) from exc
            total += s.detach()
            denom += d.detach()
            b = xb.shape[0]
            rows += b
            self.global_step += 1
            bar.advance(b)
            if self.global_step % log_every == 0:
                value = loss.item()
                if not math.isfinite(value):
                    raise self._nan(
                        epoch, f"steps {step_in_epoch - log_every + 1}-{step_in_epoch}", value
                    )
                if run is not None:
                    now = time.perf_counter()
                    run.log_metrics(
                        {
                            "batch_loss": value,
                            "batch_samples_per_s": (rows - last_rows) / max(now - last_t, 1e-9),
                        },
                        step=self.global_step,
                    )
                    last_t, last_rows = now, rows
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - start
        if self.ranks.distributed:  # every process's rows count
            total, denom, all_rows = self.ranks.sum(total, denom, torch.tensor(rows, device=dev))
            rows = int(all_rows.item())
        train_loss = (total / denom).item() if rows else float("nan")
        if not math.isfinite(train_loss):
            raise self._nan(epoch, "end of the epoch", train_loss)
        return {
            "epoch": epoch,
            "train_loss": train_loss,
            "samples_per_s": rows / max(seconds, 1e-9),
            "data_wait_share": wait / max(seconds, 1e-9),
            "lr": float(opt.param_groups[0]["lr"]),
            "train_seconds": seconds,
        }

    def _evaluate(self, ds: Any) -> dict[str, Any]:
        model, dev = self.model, self.device
        model.eval()
        total = torch.zeros((), dtype=torch.float64, device=dev)
        denom = torch.zeros((), dtype=torch.float64, device=dev)
        correct = torch.zeros((), dtype=torch.float64, device=dev)
        sq = torch.zeros((), dtype=torch.float64, device=dev)
        n = 0
        with torch.no_grad():
            for xb, yb in self._loader(ds):
                xb = xb.to(dev, non_blocking=True)
                yb = yb.to(dev, non_blocking=True)
                with self._autocast():
                    out = model(xb)
                    s, d = self.loss_fn(out, yb)
                total += s
                denom += d
                out = out.float()
                if self.task == "multiclass":
                    correct += (out.argmax(dim=1) == yb).sum()
                elif self.task == "binary":
                    correct += ((out.reshape(-1) > 0).long() == yb).sum()
                else:
                    sq += ((out.reshape(-1) - yb.float()) ** 2).sum()
                n += xb.shape[0]
        model.train()
        if self.ranks.distributed:  # each process read a share of the val rows
            total, denom, correct, sq, all_n = self.ranks.sum(
                total, denom, correct, sq, torch.tensor(n, device=dev)
            )
            n = int(all_n.item())
        val_loss = (total / denom).item()
        if not math.isfinite(val_loss):
            raise self._nan(self.epoch + 1, "on the val split", val_loss)
        metrics: dict[str, Any] = {"val_loss": val_loss}
        if self.task == "regression":
            metrics["val_rmse"] = math.sqrt(sq.item() / max(n, 1))
        else:
            metrics["val_accuracy"] = correct.item() / max(n, 1)
        return metrics

    def _write_weights(self, what: str, path: Path) -> None:
        if self.ranks.writer:
            with disk_guard(what, path):
                write_tensors(path, self.model.state_dict())

    def _end_epoch(self, metrics: dict[str, Any], *, has_val: bool) -> None:
        cfg = self.cfg
        self.epoch = int(metrics["epoch"])
        weights_path = self.out / MODEL_WEIGHTS
        if has_val:
            value = float(metrics[self.owner.monitor])
            better = self.best is None or (
                value < self.best if self.mode == "min" else value > self.best
            )
            if better:
                self.best, self.best_epoch, self.bad_epochs = value, self.epoch, 0
                self._write_weights("the best weights", weights_path)
            else:
                self.bad_epochs += 1
            if cfg.early_stopping and self.bad_epochs >= cfg.early_stopping:
                self.stopped = True
        else:
            self._write_weights("the weights", weights_path)
        if self.scheduler is not None:
            self.scheduler.step()
        metrics["best_epoch"] = self.best_epoch
        self.history.append(dict(metrics))
        if self.ranks.writer:
            self._save()
            with disk_guard("the history", self.out / HISTORY_JSON):
                write_json(self.out / HISTORY_JSON, self.history)
        if self.run_ is not None:
            self.run_.log_metrics(
                {k: v for k, v in metrics.items() if k not in ("epoch", "best_epoch")},
                step=self.epoch,
            )
            if self.stopped:
                self.run_.log_event(
                    "early_stop",
                    epoch=self.epoch,
                    best_epoch=self.best_epoch,
                    monitor=self.owner.monitor,
                    best=self.best,
                )
        if self.stopped:
            logger.info(
                "early stopping after epoch %d: %s has not improved for %d epoch(s) (best %.6g at epoch %s)",
                self.epoch,
                self.owner.monitor,
                self.bad_epochs,
                self.best,
                self.best_epoch,
            )
        logger.debug("epoch %d: %s", self.epoch, metrics)
