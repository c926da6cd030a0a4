"""The train step: :class:`Train` (``set_model``, then ``fit``/``train``).

``fit`` reads the shards' manifest (task, features, classes), builds the model and checks it
against the shards, sets seeds, device and deterministic mode, restores a checkpoint when
resuming, then hands the epochs to :class:`~blase.train._loop.EpochLoop`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from blase.config import TrainConfig
from blase.errors import ConfigError, ConfigProblem
from blase.model import MODEL_JSON, MODEL_WEIGHTS, ModelSpec
from blase.resources import choose_threads
from blase.steps import StepResult, measure_step
from blase.train._checkpoint import CHECKPOINT_DIR, load_checkpoint, remove_stale, write_json
from blase.train._device import deterministic_mode, resolve_device, seed_everything, torch_threads
from blase.train._errors import TrainError
from blase.train._loop import HISTORY_JSON, MONITORS, EpochHook, EpochLoop, TaskLoss, disk_guard
from blase.train._models import (
    BUILTIN_MODELS,
    build_builtin_model,
    call_factory,
    check_model_fits,
    class_path_of,
    load_script_factory,
    n_outputs_for,
)
from blase.train._ranks import SINGLE, Ranks
from blase.train._refit import RefitPlan, keep_refit_weights, refit_dir, refit_plan
from blase.train._scale import feature_scale_warning

__all__ = ["Train"]

logger = logging.getLogger(__name__)


def _train_config(config: TrainConfig | dict[str, Any] | None) -> TrainConfig:
    if config is None:
        return TrainConfig()
    if isinstance(config, TrainConfig):
        return config
    try:
        return TrainConfig.model_validate(config)
    except ValidationError as exc:
        problems = [
            ConfigProblem(
                "<python>",
                None,
                "train." + ".".join(str(x) for x in e["loc"]),
                f"train.{'.'.join(str(x) for x in e['loc'])}: {e['msg']}",
            )
            for e in exc.errors()
        ]
        raise ConfigError(problems, hint="fix the train settings above") from None


class Train:
    """Train a model on prepared shards: checkpoints, resume, early stopping, seeds, devices.

    Parameters
    ----------
    config:
        The ``train:`` section of ``blase.yaml`` (a :class:`~blase.config.TrainConfig` or a
        dict of its keys); default: all defaults.
    seed:
        Seeds weight init, dropout and the batch order.
    project_root:
        Where model scripts (``scripts/model.py``) are found; default: the project around the
        current folder, else the current folder.
    log_every:
        Log the batch loss and samples/s to Track every this many optimizer steps.
    monitor:
        The validation metric that picks the best weights and drives early stopping:
        ``"val_loss"`` (default), ``"val_accuracy"`` (classification) or ``"val_rmse"``
        (regression).
    num_workers:
        ``DataLoader`` worker processes reading shards (0: read in this process).
    step_size, gamma:
        ``schedule: step`` multiplies the learning rate by ``gamma`` every ``step_size``
        epochs (default: a third of the epochs).

    Examples
    --------
    >>> tr = Train({"model": "mlp", "epochs": 20, "early_stopping": 3})  # doctest: +SKIP
    >>> result = tr.set_model("mlp").fit("outputs/shards", "models/run1")  # doctest: +SKIP
    >>> model = load_model("models/run1")  # doctest: +SKIP
    """

    step = "train"

    def __init__(
        self,
        config: TrainConfig | dict[str, Any] | None = None,
        *,
        seed: int = 42,
        project_root: str | os.PathLike[str] | None = None,
        log_every: int = 50,
        monitor: str = "val_loss",
        num_workers: int = 0,
        step_size: int | None = None,
        gamma: float = 0.1,
    ) -> None:
        self.config = _train_config(config)
        self.seed = int(seed)
        self.project_root = project_root
        self.log_every = max(1, int(log_every))
        if monitor not in MONITORS:
            raise TrainError(
                f"unknown monitor {monitor!r}", hint=f"use one of {', '.join(MONITORS)}"
            )
        self.monitor = monitor
        self.num_workers = int(num_workers)
        self.step_size = step_size
        self.gamma = gamma
        self._model: nn.Module | str | None = None
        self._init_kwargs: dict[str, Any] | None = None
        #: Set in a DDP worker process (blase.train._ddp); None in the process that launches it.
        self._ranks: Ranks | None = None

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> Train:
        """Build from a :class:`blase.config.ProjectConfig` (``train:`` and ``seed``)."""
        kwargs: dict[str, Any] = {"seed": config.seed}
        kwargs.update(overrides)
        return cls(config.train, **kwargs)

    # -- model ------------------------------------------------------------------------------

    def set_model(
        self, model: nn.Module | str, *, init_kwargs: dict[str, Any] | None = None
    ) -> Train:
        """Choose the model: an ``nn.Module``, ``"linear"``/``"mlp"``, or ``"file.py:function"``.

        A module is trained in place. ``init_kwargs`` records its constructor's arguments so
        :func:`~blase.train.load_model` can rebuild it. A factory function is called as
        ``build_model(n_features=..., n_outputs=..., task=...)`` once the shards are known.
        Without ``set_model``, ``train.model`` from the config is used.

        Returns
        -------
        Train
            ``self``, so calls chain.
        """
        if isinstance(model, nn.Module):
            self._model = model
            self._init_kwargs = dict(init_kwargs) if init_kwargs else None
            return self
        if not isinstance(model, str):
            raise TrainError(
                f"set_model got {type(model).__name__}",
                hint="pass a torch nn.Module, 'linear', 'mlp', or 'scripts/model.py:build_model'",
            )
        if ":" not in model and model not in BUILTIN_MODELS:
            build_builtin_model(model, 1, 1)  # raises the "unknown model" error with a suggestion
        self._model = model
        self._init_kwargs = None
        return self

    def _model_source(self) -> nn.Module | str:
        return self._model if self._model is not None else self.config.model

    def _describe_source(self) -> dict[str, Any]:
        src = self._model_source()
        if isinstance(src, nn.Module):
            return {"kind": "module", "class_path": class_path_of(src)}
        return {"kind": "script" if ":" in src else "builtin", "name": src}

    def _build(
        self, manifest: Any, n_outputs: int, shards: Path
    ) -> tuple[nn.Module, ModelSpec, Path | None]:
        cfg = self.config
        common: dict[str, Any] = {
            "task": manifest.task,
            "n_features": manifest.n_features,
            "n_outputs": n_outputs,
            "label": manifest.label,
            "label_mapping": manifest.label_mapping,
            "classes": manifest.classes,
            "features": manifest.features,
        }
        src = self._model_source()
        if isinstance(src, nn.Module):
            cls = type(src)
            spec = ModelSpec(
                kind="module",
                name=cls.__name__,
                class_path=class_path_of(src),
                init_kwargs=self._init_kwargs,
                **common,
            )
            return src, spec, None
        if ":" in src:
            func, path = load_script_factory(src, self.project_root)
            model = call_factory(
                func,
                src,
                n_features=manifest.n_features,
                n_outputs=n_outputs,
                task=manifest.task,
                config=cfg,
            )
            spec = ModelSpec(
                kind="script",
                name=src.rpartition(":")[2],
                ref=src,
                script_path=str(path.resolve()),
                **common,
            )
            return model, spec, path
        target = _target_scale(manifest, shards) if manifest.task == "regression" else (0.0, 1.0)
        model = build_builtin_model(
            src,
            manifest.n_features,
            n_outputs,
            hidden=cfg.hidden,
            dropout=cfg.dropout,
            batch_norm=cfg.batch_norm,
            linear_skip=cfg.linear_skip,
            target_mean=target[0],
            target_std=target[1],
        )
        hidden = list(cfg.hidden) if src == "mlp" else []
        spec = ModelSpec(
            kind="builtin",
            name=src,
            hidden=hidden,
            dropout=cfg.dropout if src == "mlp" else 0.0,
            batch_norm=cfg.batch_norm if src == "mlp" else False,
            linear_skip=cfg.linear_skip and src == "mlp" and bool(hidden),
            target_mean=target[0],
            target_std=target[1],
            **common,
        )
        return model, spec, None

    # -- pieces -----------------------------------------------------------------------------

    def _refit(
        self, plan: RefitPlan, model: nn.Module, initial: dict[str, torch.Tensor], first: EpochLoop
    ) -> None:
        """Train ``model`` again from ``initial`` on train + val for ``plan.epochs`` epochs
        (same seed, optimizer and schedule as ``first``) and keep those weights."""
        seed_everything(self.seed)
        model.load_state_dict(initial)
        optimizer = self._optimizer(model.parameters())
        work = refit_dir(first.out)
        loop = EpochLoop(
            self,
            model=model,
            optimizer=optimizer,
            scheduler=self._scheduler(optimizer),
            scaler=_grad_scaler() if first.amp else None,
            loss_fn=first.loss_fn,
            device=first.device,
            amp=first.amp,
            run=None,  # the first pass's metrics stay the run's history
            out=work,
            shards=first.shards,
            task=first.task,
            fingerprint=first.fingerprint,
            net=first.net,
            ranks=first.ranks,
        )
        loop.run(0, None, splits=("train", "val"), epochs=plan.epochs, label="refit")
        if not first.ranks.writer:
            return
        with disk_guard("the refit weights", first.out / MODEL_WEIGHTS):
            keep_refit_weights(first.out, MODEL_WEIGHTS)

    def _optimizer(self, params: Any) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)

    def _scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        cfg = self.config
        if cfg.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        if cfg.schedule == "step":
            size = self.step_size or max(1, cfg.epochs // 3)
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=size, gamma=self.gamma)
        return None

    def _class_weights(self, manifest: Any, shards: Path, n_classes: int) -> torch.Tensor | None:
        cfg = self.config
        if cfg.class_weights == "none":
            return None
        if manifest.task == "regression":
            raise TrainError(
                "train.class_weights is 'balanced' but the shards hold a regression task",
                hint="set `class_weights: none` under train: in blase.yaml (it applies to classification)",
            )
        counts = np.zeros(n_classes, dtype=np.float64)
        per_class = manifest.class_counts.get("train")
        if per_class:
            for code, rows in per_class.items():
                if 0 <= int(code) < n_classes:
                    counts[int(code)] = rows
        else:
            for shard in manifest.shards.get("train", []):
                y = np.load(shards / shard.labels_file, mmap_mode="r")
                counts += np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)[
                    :n_classes
                ]
        total = counts.sum()
        with np.errstate(divide="ignore"):
            w = np.where(counts > 0, total / (n_classes * np.maximum(counts, 1)), 0.0)
        missing = [str(i) for i in range(n_classes) if counts[i] == 0]
        if missing:
            logger.warning(
                "class(es) %s have no training rows; their weight is 0", ", ".join(missing)
            )
        return torch.tensor(w, dtype=torch.float32)

    def _fingerprint(self, manifest_hash: str) -> dict[str, Any]:
        cfg = self.config.model_dump(mode="json")
        # None of these changes the math of a resumed epoch (refit runs after the last one);
        # "epochs" only matters to a schedule.
        for key in ("device", "mixed_precision", "threads", "refit"):
            cfg.pop(key, None)
        if cfg.get("schedule") == "none":
            cfg.pop("epochs", None)
        return {
            "config": cfg,
            "seed": self.seed,
            "model": self._describe_source(),
            "shards": manifest_hash,
            "step_size": self.step_size,
            "gamma": self.gamma,
        }

    # -- fit --------------------------------------------------------------------------------

    def fit(
        self,
        shards_dir: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        *,
        resume: bool = False,
        track: Any = None,
        on_epoch_end: EpochHook | None = None,
    ) -> StepResult:
        """Train on ``shards_dir`` (a Prepare output) and write the model into ``out_dir``.

        Writes ``model.safetensors`` (the best weights by the monitored val metric, or the
        last when there is no val split), ``model.json`` (:class:`ModelSpec`),
        ``history.json`` (per-epoch metrics) and ``checkpoint/`` (the latest epoch).

        With ``train.distributed`` the epochs run in ``torchrun`` worker processes (DDP; see
        :mod:`blase.train._launch`): the same files, written by rank 0, the same result plus
        ``world_size`` in its details; ``on_epoch_end`` is called here with ``model=None``.

        Parameters
        ----------
        shards_dir:
            Folder with ``manifest.json`` and the train (and val) shards.
        out_dir:
            Output folder (created). Without ``resume`` earlier train outputs there are
            replaced.
        resume:
            Continue from the last complete epoch in ``out_dir/checkpoint``; the result is the
            same as an uninterrupted run. Starts fresh (with a warning) when there is none.
        track:
            A :class:`~blase.track.Track` to log to (default: the active run, if any).
        on_epoch_end:
            Called as ``on_epoch_end(epoch=, metrics=, model=)`` after each epoch's
            checkpoint is written.

        Returns
        -------
        StepResult
            Step ``"train"``; ``details`` holds the task, device, torch threads (``threads``
            and ``threads_reason``), epochs run, best epoch and metric, whether early
            stopping fired, the last epoch's metrics and the outputs.

        Raises
        ------
        TrainError
            For a model that cannot be built or does not fit the shards, a NaN loss, a full
            disk, or a checkpoint from another setup. ``KeyboardInterrupt`` is re-raised after
            the last complete epoch is safely on disk.
        """
        from blase.hashing import hash_config, hash_file
        from blase.prepare import read_manifest
        from blase.track import active_run

        if self.config.distributed is not None and self._ranks is None:
            if self.config.distributed.launcher == "ray":
                from blase.train._ray_launch import ray_fit as launch_fit
            else:
                from blase.train._launch import launch_fit

            return launch_fit(
                self, shards_dir, out_dir, resume=resume, track=track, on_epoch_end=on_epoch_end
            )
        ranks = self._ranks or SINGLE
        shards = Path(shards_dir)
        manifest = read_manifest(shards)
        manifest_path = shards / "manifest.json"
        where = f"manifest {manifest_path}"
        task = manifest.task
        n_classes = manifest.n_classes or len(manifest.label_mapping)
        if task == "multiclass" and n_classes < 2:
            raise TrainError(
                f"the multiclass task in {manifest_path} lists {n_classes} class(es)",
                hint="prepare the data again; a classifier needs at least 2 classes",
            )
        if (task != "regression" and self.monitor == "val_rmse") or (
            task == "regression" and self.monitor == "val_accuracy"
        ):
            raise TrainError(
                f"monitor {self.monitor!r} does not apply to a {task} task",
                hint="use val_loss, or val_accuracy (classification) / val_rmse (regression)",
            )
        n_outputs = n_outputs_for(task, n_classes)
        train_rows = int(manifest.counts.get("train", 0))
        val_rows = int(manifest.counts.get("val", 0))
        if train_rows == 0:
            raise TrainError(
                f"the train split in {manifest_path} has no rows",
                hint="prepare more data, or give the train split a larger share",
            )
        cfg = self.config
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if ranks.writer:
            remove_stale(out)
        device = ranks.device(resolve_device(cfg.device))
        amp = bool(cfg.mixed_precision and device.type == "cuda")
        if cfg.mixed_precision and not amp:
            logger.info("mixed precision is used on CUDA only; training in float32 on %s", device)
        manifest_hash = hash_file(manifest_path)
        fingerprint = self._fingerprint(manifest_hash)

        ckpt = load_checkpoint(out) if resume else None
        if resume and ckpt is None:
            logger.warning(
                "resume: no checkpoint in %s; training from the start", out / CHECKPOINT_DIR
            )
        if ckpt is not None:
            _check_fingerprint(ckpt.state.get("fingerprint", {}), fingerprint, ckpt.path)
        if ckpt is None and ranks.writer:
            _clear_outputs(out)

        run = track if track is not None else active_run()
        if run is False:  # asked not to log (a candidate of train.model auto)
            run = None
        elif run is not None and not getattr(run, "active", True):
            logger.warning("track %r is not active; metrics are not logged", run)
            run = None

        scale_warning = feature_scale_warning(manifest, shards)
        if scale_warning:
            logger.warning("train: %s", scale_warning)
        with measure_step() as meter, deterministic_mode(cfg.deterministic, device):
            seed_everything(self.seed)
            model, spec, script = self._build(manifest, n_outputs, shards)
            model.to(device)
            # the refit pass starts from the same weights as the first (see _refit.py)
            initial = (
                {k: v.detach().clone() for k, v in model.state_dict().items()}
                if cfg.refit is not False and val_rows
                else None
            )
            threads = choose_threads(
                cfg.batch_size,
                _work_per_row(model) if spec.kind == "builtin" else 0,
                requested=cfg.threads,
            )
            logger.info("train: %d torch thread(s) (%s)", threads.threads, threads.reason)
            check_model_fits(
                model,
                n_features=manifest.n_features,
                n_outputs=n_outputs,
                task=task,
                device=device,
                where=where,
                describe=f"model {spec.ref or spec.name!r}",
            )
            cw = self._class_weights(manifest, shards, n_classes)
            loss_fn = TaskLoss(task, cw.to(device) if cw is not None else None)
            optimizer = self._optimizer(model.parameters())
            scheduler = self._scheduler(optimizer)
            scaler = _grad_scaler() if amp else None
            loop = EpochLoop(
                self,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                scaler=scaler,
                loss_fn=loss_fn,
                device=device,
                amp=amp,
                run=run,
                out=out,
                shards=shards,
                task=task,
                fingerprint=fingerprint,
                net=ranks.wrap(model, device),
                ranks=ranks,
            )
            if ckpt is not None:
                loop.restore(ckpt)
            if ranks.writer:
                with disk_guard("the model spec", out / MODEL_JSON):
                    write_json(out / MODEL_JSON, spec.to_json())
            if run is not None:
                run.log_event(
                    "train_start",
                    task=task,
                    device=str(device),
                    mixed_precision=amp,
                    seed=self.seed,
                    config=cfg.model_dump(mode="json"),
                    model=spec.to_json(),
                    resumed_from_epoch=loop.epoch or None,
                    threads=threads.to_json(),
                )
                run.log_metrics({"train.threads": threads.threads})
            with torch_threads(threads.threads):
                loop.run(val_rows, on_epoch_end)
                plan = refit_plan(
                    cfg.refit, train_rows=train_rows, val_rows=val_rows, best_epoch=loop.best_epoch
                )
                if plan is not None and initial is not None:
                    self._refit(plan, model, initial, loop)
                    if run is not None:
                        run.log_event("refit", **plan.to_json())

        weights_path = out / MODEL_WEIGHTS
        inputs = {"shards": manifest_hash, "config": hash_config(fingerprint)}
        if script is not None:
            inputs["code"] = hash_file(script)
        last = loop.history[-1] if loop.history else {}
        details: dict[str, Any] = {
            "task": task,
            "device": str(device),
            "mixed_precision": amp,
            "threads": threads.threads,
            "threads_reason": f"{threads.source}: {threads.reason}",
            "epochs_run": loop.epoch,
            "best_epoch": loop.best_epoch,
            "best_metric": loop.best,
            "monitor": self.monitor if val_rows else None,
            "stopped_early": loop.stopped,
            "refit": plan.to_json() if plan is not None else None,
            "resumed_from_epoch": ckpt.epoch if ckpt is not None else None,
            "samples_per_s": last.get("samples_per_s"),
            "final": last,
            "out_dir": str(out),
            "model": str(weights_path),
        }
        result = StepResult(
            step=self.step,
            inputs=inputs,
            outputs={"model": hash_file(weights_path), "spec": hash_file(out / MODEL_JSON)}
            if ranks.writer
            else {},
            rows_in=train_rows + val_rows,
            rows_out=0,
            seconds=meter.seconds,
            peak_rss_bytes=meter.peak_rss_bytes,
            details=details,
        )
        if scale_warning:
            result.warnings.append(scale_warning)
        if val_rows == 0:
            result.warnings.append("no val split: model.safetensors holds the last epoch's weights")
            if cfg.early_stopping:
                result.warnings.append("early_stopping is set but there is no val split to watch")
        if run is not None:
            run.log_event("train_end", **{k: v for k, v in details.items() if k != "final"})
        logger.info(
            "train: %d epoch(s) on %s, best %s %s at epoch %s",
            loop.epoch,
            device,
            self.monitor,
            loop.best,
            loop.best_epoch,
        )
        return result

    train = fit


def _work_per_row(model: nn.Module) -> int:
    """Multiply-adds per row of a built-in model's forward pass (about its weight count)."""
    return int(sum(p.numel() for p in model.parameters()))


def _grad_scaler() -> Any:
    """A CUDA GradScaler (``torch.amp`` from torch 2.3, ``torch.cuda.amp`` before)."""
    amp_mod = getattr(torch, "amp", None)
    if amp_mod is not None and hasattr(amp_mod, "GradScaler"):
        return amp_mod.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()  # pragma: no cover - torch < 2.3


def _target_scale(manifest: Any, shards: Path) -> tuple[float, float]:
    """The train split's label mean and standard deviation (1 for a constant label), read a
    shard at a time: a built-in regression model learns the standardised label."""
    total, total_sq, n = 0.0, 0.0, 0
    for shard in manifest.shards.get("train", []):
        y = np.asarray(np.load(shards / shard.labels_file, mmap_mode="r"), dtype=np.float64)
        total += float(y.sum())
        total_sq += float(np.square(y).sum())
        n += len(y)
    if not n:
        return 0.0, 1.0
    mean = total / n
    std = math.sqrt(max(total_sq / n - mean * mean, 0.0))
    return mean, (std if std > 1e-12 and math.isfinite(std) else 1.0)


def _clear_outputs(out: Path) -> None:
    """Remove an earlier run's train outputs so a fresh run never mixes with them."""
    for name in (MODEL_WEIGHTS, MODEL_JSON, HISTORY_JSON):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    for p in out.glob(f".{CHECKPOINT_DIR}.old-*"):
        shutil.rmtree(p, ignore_errors=True)


def _check_fingerprint(saved: dict[str, Any], now: dict[str, Any], where: Path) -> None:
    if saved == now:
        return
    diffs: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k), b.get(k), f"{path}.{k}" if path else k)
        elif a != b:
            diffs.append(f"{path}: {a!r} then, {b!r} now")

    walk(saved, now, "")
    raise TrainError(
        f"the checkpoint in {where} was written by a different setup: " + "; ".join(diffs[:5]),
        hint="resume with the same config, model, seed and shards, or start over with resume=False",
    )
