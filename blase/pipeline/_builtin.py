"""The six built-in steps, written against the same :class:`~blase.steps.Step` contract a
plugin's steps use, and registered the same way (:mod:`blase.pipeline._registry`).

Each adapter is thin: it reads its config section and the typed outputs it needs, calls the
step's Python API (:class:`~blase.extract.Extract`, :class:`~blase.transform.Transform`,
:class:`~blase.prepare.Prepare`, :class:`~blase.train.Train`, :func:`~blase.evaluate.evaluate_live`,
:func:`~blase.deploy.deploy_outputs`) and returns its result with a typed output naming the
files relative to ``out_dir``. The step packages are imported inside ``run`` because some of
them cost time (torch), and ``blase run`` of a cached pipeline should not pay for them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from blase.cloud import is_remote, list_objects
from blase.errors import BlaseError
from blase.executor import RayExecutor, executor_for
from blase.pipeline._review import (
    review_deploy,
    review_evaluate,
    review_extract,
    review_prepare,
    review_train,
    review_transform,
)
from blase.pipeline._train_state import (
    checkpoint_dir,
    kept_checkpoint,
    mirror_folder,
    training_device,
)
from blase.steps import (
    Evaluation,
    Extracted,
    FittedTransform,
    Package,
    ReviewContext,
    Shards,
    Step,
    StepContext,
    StepOutput,
    StepResult,
    StepReview,
    TrainedModel,
    Verification,
)

__all__ = ["BUILTIN", "DeployStep", "EvaluateStep", "ExtractStep", "PrepareStep", "TrainStep", "TransformStep"]

logger = logging.getLogger(__name__)


class StepConfigError(BlaseError):
    """blase.yaml lacks what a step needs (no data source, no label)."""


def _label_key(config: Any) -> dict[str, Any]:
    return {"label": config.data.label, "key": config.data.key}


def _without(details: dict[str, Any], *names: str) -> dict[str, Any]:
    """``details`` less the entries that held this run's absolute paths (the typed output
    names those files relative to the step's folder)."""
    return {k: v for k, v in details.items() if k not in names}


class ExtractStep(Step):
    """Read the raw data (CSV, Parquet, JSON, a folder, a glob, Postgres) into Parquet."""

    name = "extract"
    output_type = Extracted
    #: 2: row groups of exactly the batch size, whichever executor read the files (not DuckDB's scan units)
    version = 2
    review_inputs = frozenset({"profile"})
    review_tools = ("propose_config_change", "accept_step", "preview_data", "read_run_log")

    def config_sections(self, config: Any) -> Mapping[str, Any]:
        data = config.data.model_dump(mode="json")
        if not data.get("options"):
            data.pop("options", None)  # only a source plugin has options
        return {"data": {k: v for k, v in data.items() if k not in ("label", "key")}}

    def cache_inputs(self, ctx: StepContext) -> Mapping[str, Any]:
        """The content hash of every raw file (Postgres tables cannot be hashed), and the
        version of the source plugin that reads them."""
        from blase._fs import resolved_relative
        from blase.cache import UNCACHEABLE
        from blase.config import BUILTIN_FORMATS
        from blase.extract import Extract
        from blase.hashing import StatCache, hash_file

        data, root = ctx.config.data, ctx.project.root
        if is_remote(data.source):  # a bucket: each object's ETag/generation and size, listed, not read
            return {f"data.{obj.url}": obj.fingerprint for obj in list_objects(str(data.source))}
        fmt = None if data.format == "auto" else data.format
        plugin_named = fmt is not None and fmt not in (*BUILTIN_FORMATS, "postgres")
        # a source plugin named by data.format: one Extract lists the folder for both the files
        # and the index's digests (listing 100,000 files twice cost seconds)
        extract = Extract.from_config(data, ctx.project) if plugin_named else \
            Extract(data.source, format=fmt, project=ctx.project)
        source = extract.resolved_source()
        if source.format == "postgres" or not source.files:
            return {f"data.{data.source}": UNCACHEABLE}
        cache = ctx.stat_cache or StatCache.for_project(ctx.project)
        out: dict[str, Any] = {}
        known: dict[str, str] = {}
        if source.format not in (*BUILTIN_FORMATS, "postgres"):
            plugin = _plugin_set(ctx).require("source", source.format, used_by="data.format")
            out[f"plugin.{plugin.name}"] = plugin.version
            # a media folder's index knows each file's digest: one stat per file, not a
            # stat-cache entry read (or written) per file
            known = (extract if plugin_named else Extract.from_config(data, ctx.project)).file_digests() or {}
        for path, rel in zip(source.files, resolved_relative(source.files, root), strict=True):
            text = os.fspath(path)
            digest = known.get(text) or known.get(os.path.abspath(text))
            out[f"data.{rel}"] = digest or hash_file(path, cache=cache)
        return out

    def run(self, inputs: Mapping[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        from blase.extract import Extract

        if not ctx.config.data.source:
            raise StepConfigError("data.source is not set in blase.yaml",
                                  hint="add data: {source: data/FILE.csv, label: COLUMN}")
        extract = Extract.from_config(ctx.config.data, ctx.project)
        result = extract.to_parquet(out_dir, memory=ctx.memory, executor=executor_for(ctx.config))
        options = extract.options.model_dump(mode="json") if hasattr(extract.options, "model_dump") else {}
        if "batch_rows" in options and ctx.config.data.format != "auto":
            options["format"] = ctx.config.data.format  # a source plugin named by data.format reads new data too
        schema = result.details.get("schema") or {f.name: str(f.type) for f in extract.schema()}
        digest = next(iter(result.outputs.values()), "")
        result.outputs = {"data": digest}
        result.output = Extracted(root=out_dir, schema=dict(schema), options=options, sources=dict(result.inputs))
        return result

    def review(self, result: StepResult | None, ctx: ReviewContext) -> StepReview:
        return review_extract(result, ctx)


class TransformStep(Step):
    """Fit the transform on the extracted data and save its state (prepare applies it)."""

    name = "transform"
    needs = ("extract",)
    output_type = FittedTransform
    version = 2
    restore_needs = ("extract",)
    review_inputs = frozenset({"profile"})
    review_tools = ("propose_config_change", "accept_step", "inspect_run", "read_run_log")

    def config_sections(self, config: Any) -> Mapping[str, Any]:
        steps = [s.model_dump(mode="json", exclude_none=True) for s in config.transform]
        return {"transform": steps, "data": _label_key(config)}

    def code(self, ctx: StepContext) -> Mapping[str, Any]:
        """User functions by reference, and operation plugins as ``plugin:NAME`` (their class)."""
        from blase.transform import load_reference

        refs: dict[str, Any] = {item.call: load_reference(item.call, ctx.code_root)
                                for item in ctx.config.transform if item.call}
        for plugin in self._plugins(ctx):
            refs[f"plugin:{plugin.name}"] = plugin.load()
        return refs

    def cache_inputs(self, ctx: StepContext) -> Mapping[str, Any]:
        """The version of each operation plugin used (its options are in the config)."""
        return {f"plugin.{p.name}": p.version for p in self._plugins(ctx)}

    @staticmethod
    def _plugins(ctx: StepContext) -> list[Any]:
        used = [(i, str(s.op)) for i, s in enumerate(ctx.config.transform) if s.is_plugin]
        if not used:
            return []
        plugins = _plugin_set(ctx)
        return [plugins.require("operation", name, used_by=f"blase.yaml transform[{i}].op") for i, name in used]

    def run(self, inputs: Mapping[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        from blase.transform import STATE_FILE, from_step_config

        data = ctx.config.data
        exclude = [c for c in (data.label, data.key) if c]
        plugins = _plugin_set(ctx) if any(s.is_plugin for s in ctx.config.transform) else None
        transform = from_step_config(ctx.config.transform, ctx.code_root, exclude=exclude, plugins=plugins)
        extracted = _need(inputs, "extract", Extracted)
        # Fit only: prepare applies the transform while writing shards, so the (often wide)
        # transformed table is never written and read back. `blase restore --step
        # transform` writes it when someone wants to see it.
        result = transform.run(extracted.data_dir, out_dir, memory=ctx.memory, write_data=False)
        result.details = _without(result.details, "state_file")
        result.output = FittedTransform(root=out_dir, state=STATE_FILE)
        return result

    def restore(self, output: StepOutput, out_dir: Path, inputs: Mapping[str, StepOutput],
                ctx: StepContext) -> None:
        """The transformed data (never stored: prepare applies the fitted state on the way):
        the stored state applied to the restored extract output, with the state beside it."""
        from blase.transform import Transform

        fitted = output if isinstance(output, FittedTransform) else FittedTransform(root=output.root)
        transform = Transform.load(fitted.state_file, project_root=ctx.code_root)
        transform.write(_need(inputs, "extract", Extracted).data_dir, out_dir)
        shutil.copyfile(fitted.state_file, out_dir / fitted.state)

    def review(self, result: StepResult | None, ctx: ReviewContext) -> StepReview:
        return review_transform(result, ctx)


class PrepareStep(Step):
    """Split deterministically and write float32 shards with a manifest."""

    name = "prepare"
    needs = ("extract", "transform")
    output_type = Shards
    version = 2
    review_tools = ("propose_config_change", "accept_step", "inspect_run")

    def config_sections(self, config: Any) -> Mapping[str, Any]:
        return {"prepare": config.prepare.model_dump(mode="json"), "seed": config.seed, "data": _label_key(config)}

    def run(self, inputs: Mapping[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        from blase.prepare import Prepare
        from blase.transform import Transform

        config = ctx.config
        data, prep = config.data, config.prepare
        if not data.label:
            raise StepConfigError("data.label is not set in blase.yaml", hint="name the column to predict")
        prepare = Prepare(
            label=data.label, features=prep.features, key=data.key, split=prep.split,
            seed=config.seed, stratify=prep.stratify, shard_rows=prep.shard_rows,
            drop_null_label=prep.drop_null_label,
        )
        fitted = _need(inputs, "transform", FittedTransform)
        transform = Transform.load(fitted.state_file, project_root=ctx.code_root)
        name = f"{data.source} (after the transform)" if config.transform else str(data.source)
        result = prepare.run(_need(inputs, "extract", Extracted).data_dir, out_dir, memory=ctx.memory,
                             transform=transform, source_name=name, executor=executor_for(ctx.config))
        result.output = Shards(root=out_dir, task=str(result.details.get("task", "")))
        result.details = _without(result.details, "manifest", "out_dir")
        return result

    def review(self, result: StepResult | None, ctx: ReviewContext) -> StepReview:
        return review_prepare(result, ctx)


class TrainStep(Step):
    """Fit the model ``train.model`` names (a kind from the model registry) on the train
    split, early stopping on val; the torch kinds checkpoint every epoch.

    A run that dies keeps its last complete checkpoint outside the step's folder (mirrored
    each epoch, so a SIGKILL keeps it too); ``blase run --resume RUN`` continues from it.
    """

    name = "train"
    needs = ("prepare",)
    output_type = TrainedModel
    weights_file = "model.safetensors"
    review_tools = ("propose_config_change", "accept_step", "compare_runs", "inspect_run")

    def verify(self, original: Mapping[str, str], again: Mapping[str, str]) -> Verification:
        """Every file, and the model's own files as the weights: ``model.safetensors``, or a
        model plugin's (``model.ubj``, ``model.txt``, ``model.keras``): every ``model.*`` but
        ``model.json``, an ensemble's members' (``members/0-glm/model.safetensors``) included."""
        compared = super().verify(original, again)
        weights = sorted(f for f in original if Path(f).name.startswith("model.") and Path(f).name != "model.json")
        identical = bool(weights) and all(original.get(f) == again.get(f) for f in weights)
        return replace(compared, weights_identical=identical)

    def config_sections(self, config: Any) -> Mapping[str, Any]:
        # The thread count changes the speed, not the weights (see blase.train's fit).
        return {"train": config.train.model_dump(mode="json", exclude={"threads"}), "seed": config.seed}

    def code(self, ctx: StepContext) -> Mapping[str, Any]:
        model = ctx.config.train.model
        if ":" not in model:
            plugin = _model_plugin(ctx)
            if plugin.origin == "blase":  # linear, mlp: no project code
                return {}
            refs: dict[str, Any] = dict(_plugin_kind(ctx).code(ctx.code_root))  # e.g. a network factory
            if plugin.module is not None:  # a project file: its code; an installed package: its version
                refs[f"{plugin.origin}:{plugin.target.partition(':')[2]}"] = plugin.load()
            return refs
        from blase.train import load_script_factory

        func, _ = load_script_factory(model, ctx.code_root)
        module = sys.modules.get(getattr(func, "__module__", ""))
        if module is not None:  # a location-free name, so a moved copy hashes the same
            module.__blase_code_name__ = model.rpartition(":")[0]  # type: ignore[attr-defined]
        return {model: func}

    def cache_inputs(self, ctx: StepContext) -> Mapping[str, Any]:
        parts: dict[str, Any] = {"env.device": training_device(ctx.config)}
        if ":" not in ctx.config.train.model:
            plugin = _model_plugin(ctx)
            if plugin.origin != "blase":  # the plugin's version and its libraries' (read, not imported)
                parts["env.model_plugin"] = f"{plugin.name} {plugin.version} ({plugin.origin})"
                parts |= {f"env.{lib}": _installed_version(lib) for lib in plugin.requires}
                parts |= {f"env.{k}": v for k, v in _plugin_kind(ctx).cache_inputs().items()}
        return parts

    def run(self, inputs: Mapping[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        from blase.model import FitContext, TrainError, fit_model, model_kind
        from blase.resources import memory_budget

        train = ctx.config.train
        if train.distributed is not None and train.distributed.launcher == "ray":
            RayExecutor.from_config(ctx.config.ray).start()  # Ray Train joins the cluster of `ray:`
        kind = model_kind(train.model, train.options, root=ctx.project.root, entries=ctx.config.plugins)
        shards = _need(inputs, "prepare", Shards).shards_dir
        kept = kept_checkpoint(ctx.project, ctx.resume_from) if ctx.resume_from else None
        mirror = checkpoint_dir(ctx.project, ctx.run_id)

        def keep_epoch(**_: Any) -> None:
            if not mirror_folder(out_dir / "checkpoint", mirror):  # the trainer kept swapping it
                logger.debug("the checkpoint changed during each copy; %s keeps the one before", mirror)

        fit = FitContext(out_dir=out_dir, seed=ctx.config.seed, train=train, project_root=ctx.code_root,
                         data_root=ctx.project.root, track=ctx.track, on_epoch_end=keep_epoch, memory=memory_budget(ctx.memory),
                         tmp_dir=ctx.project.tmp_dir, plugins=list(ctx.config.plugins))
        ctx.project.tmp_dir.mkdir(parents=True, exist_ok=True)
        result = None
        if kept is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copytree(kept, out_dir / "checkpoint", dirs_exist_ok=True)
            try:
                result = fit_model(kind, shards, replace(fit, resume=True))
                result.details["resumed_from_run"] = ctx.resume_from
            except TrainError as exc:  # config, model or data changed since: start over
                logger.warning("cannot resume training from run %s (%s); training from the start",
                               ctx.resume_from, exc.message)
                shutil.rmtree(out_dir / "checkpoint", ignore_errors=True)
        if result is None:
            result = fit_model(kind, shards, fit)
        shutil.rmtree(mirror.parent.parent, ignore_errors=True)  # trained to the end: not needed
        spec = _model_spec(out_dir)
        result.output = TrainedModel(root=out_dir, kind=str(spec.get("kind", "")), name=str(spec.get("name", "")),
                                     files=list(spec.get("files") or ["model.safetensors"]))
        return result

    def replay(self, result: StepResult, ctx: StepContext) -> None:
        """The epochs' metrics, from ``history.json``, into this run."""
        if result.output is None or ctx.track is None:
            return
        history = result.output.root / "history.json"
        try:
            for row in json.loads(history.read_text(encoding="utf-8")):
                ctx.track.log_metrics({k: v for k, v in row.items() if k not in ("epoch", "round", "best_epoch")
                                       and _is_number(v)}, step=row.get("epoch", row.get("round")))
        except (OSError, ValueError, TypeError, AttributeError):
            logger.debug("no readable history in %s", history)

    def on_failure(self, out_dir: Path, ctx: StepContext) -> None:
        """Keep the last complete checkpoint, so ``--resume`` continues from that epoch."""
        source = out_dir / "checkpoint"
        if source.is_dir():
            mirror_folder(source, checkpoint_dir(ctx.project, ctx.run_id))
            logger.info("kept the train checkpoint of run %s for --resume", ctx.run_id)

    def review(self, result: StepResult | None, ctx: ReviewContext) -> StepReview:
        return review_train(result, ctx)


class EvaluateStep(Step):
    """Score the test split: metrics, a baseline, predictions and plots (also under
    ``outputs/<run>/``)."""

    name = "evaluate"
    needs = ("train", "prepare")
    output_type = Evaluation
    public = True
    review_tools = ("propose_config_change", "accept_step", "compare_runs", "inspect_run")
    review_tools_if_stopped = ("deploy",)

    def config_sections(self, config: Any) -> Mapping[str, Any]:
        return {"evaluate": config.evaluate.model_dump(mode="json")}

    def cache_inputs(self, ctx: StepContext) -> Mapping[str, Any]:
        return {"env.device": training_device(ctx.config)}

    def run(self, inputs: Mapping[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        from blase.evaluate import evaluate_live
        from blase.train import load_model

        model = load_model(_need(inputs, "train", TrainedModel).model_dir)
        result = evaluate_live(model, _need(inputs, "prepare", Shards).shards_dir, out_dir,
                               plots=ctx.config.evaluate.plots, track=ctx.track, memory=ctx.memory)
        details = result.details
        result.output = Evaluation(
            root=out_dir, split=str(details.get("split", "test")), metrics=dict(details.get("metrics", {})),
            baseline=dict(details.get("baseline", {})),
            predictions=Path(details["predictions"]).name if details.get("predictions") else "",
            plots=[Path(p).name for p in details.get("plots", [])],
            metrics_json=Path(details.get("metrics_file") or "metrics.json").name,
        )
        result.details = _without(details, "predictions", "plots", "metrics_file")
        return result

    def replay(self, result: StepResult, ctx: StepContext) -> None:
        """The metrics and the files, as evaluating would have logged them."""
        output = result.output
        if not isinstance(output, Evaluation) or ctx.track is None:
            return
        metrics = {f"{output.split}.{k}": v for k, v in output.metrics.items() if _is_number(v)}
        metrics |= {f"baseline.{k}": v for k, v in output.baseline.items() if _is_number(v)}
        ctx.track.log_metrics(metrics)
        for path in sorted(p for p in output.root.iterdir() if p.is_file()):
            ctx.track.log_artifact(path, name=f"evaluate/{path.name}")

    def review(self, result: StepResult | None, ctx: ReviewContext) -> StepReview:
        return review_evaluate(result, ctx)


class DeployStep(Step):
    """Package the model as a new version when it is the first, promoted, asked for
    (``deploy.always``) or better than the current one; never cached (a version is a
    folder under ``models/``), but a no-op when a version already packages these results."""

    name = "deploy"
    needs = ("extract", "transform", "prepare", "train", "evaluate")
    output_type = Package
    cacheable = False
    review_inputs = frozenset({"new_data"})
    review_tools = ("accept_step", "promote", "list_models", "propose_config_change")

    def run(self, inputs: Mapping[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        from blase.deploy import deploy_outputs

        return deploy_outputs(ctx.project, ctx.config, ctx.run_id, inputs, keys=ctx.keys)

    def reuse(self, inputs: Mapping[str, StepOutput], ctx: StepContext) -> StepResult | None:
        from blase.deploy import deployed_already

        return deployed_already(ctx.project, ctx.config, ctx.keys)

    def review(self, result: StepResult | None, ctx: ReviewContext) -> StepReview:
        return review_deploy(result, ctx)


#: The built-in pipeline, in order.
BUILTIN: tuple[type[Step], ...] = (ExtractStep, TransformStep, PrepareStep, TrainStep, EvaluateStep, DeployStep)


# -- helpers -------------------------------------------------------------------------------------


def _plugin_set(ctx: StepContext) -> Any:
    """The plugins of this run: the installed ones and the files blase.yaml lists."""
    from blase.plugins import plugin_set

    return plugin_set(ctx.code_root, ctx.config.plugins)


def _need(inputs: Mapping[str, StepOutput], name: str, kind: type[StepOutput]) -> Any:
    """``inputs[name]``, checked to be a ``kind`` (a clear error, not an AttributeError later)."""
    value = inputs.get(name)
    if not isinstance(value, kind):
        got = type(value).__name__ if value is not None else "nothing"
        raise StepConfigError(f"the step needs {name}'s {kind.__name__} output but got {got}",
                              hint="run the whole pipeline once with `blase run`")
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _model_spec(folder: Path) -> dict[str, Any]:
    try:
        spec = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _installed_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def _model_plugin(ctx: StepContext) -> Any:
    """The manifest of the model kind ``train.model`` names (nothing of it imported)."""
    from blase.model import model_plugin

    return model_plugin(ctx.config.train.model, root=ctx.project.root, entries=ctx.config.plugins)


def _plugin_kind(ctx: StepContext) -> Any:
    """The unfitted kind ``train.model`` names, with its validated ``train.options`` (asked what
    project code and settings its result depends on)."""
    from blase.model import model_kind

    train = ctx.config.train
    return model_kind(train.model, train.options, root=ctx.project.root, entries=ctx.config.plugins)

