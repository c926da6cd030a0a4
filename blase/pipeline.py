"""The sequential runner: extract, transform, prepare, train, evaluate, deploy.

No DAG: the steps run in that order, each as a plain method that can also be called alone.
One ``blase run`` is one tracked run (kind ``pipeline``) whose record shows every step: a
``step_start`` event, then the step's :class:`~blase.steps.StepResult` (``step`` event) or a
``step_failed`` event with the error. User-facing outputs (predictions, plots, rejected rows)
go under ``outputs/``.

Steps cache by content (:mod:`blase.cache`): before a step runs, its key is computed from the
config it reads, the code it runs, the output digest of the steps it reads (the raw files for
extract) and the environment. A matching, intact entry of the step store
(``.blase/store/steps/<key>/``) is used instead of running the step; otherwise the step writes
into a temporary entry that is published under its key when it finishes. Each step records a
``step_cache`` event (key, components, hit, reasons, output files); each run records its
resolved ``config`` and a ``code_snapshot`` of its scripts, for ``reproduce`` and ``diff``.
``deploy`` is a no-op when a model version already packages exactly these step results under
the same config (and is current when ``deploy.promote`` is set); otherwise, and always with
``cache=False``, it makes a new version when :func:`blase.deploy.decide_deploy` says so (the
first version, ``deploy.promote``, ``deploy.always``, or a test metric that beats the current
version's) and records why it did or did not.

``--resume RUN`` starts a new run linked to ``RUN`` (its parent) that reuses the outputs of the
steps ``RUN`` finished and continues from the first one it did not. ``--from STEP`` reuses the
earlier steps of the latest run that finished them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.project import Project, find_project
from blase.steps import StepResult, record_step

__all__ = [
    "STEPS", "Pipeline", "PipelineError", "PipelineResult", "finished_steps", "latest_with", "step_records",
]

logger = logging.getLogger(__name__)

STEPS: tuple[str, ...] = ("extract", "transform", "prepare", "train", "evaluate", "deploy")


class PipelineError(BlaseError):
    """A pipeline cannot start or continue (unknown step, nothing to resume, a step failed)."""


@dataclass
class PipelineResult:
    """What :meth:`Pipeline.run` did.

    ``steps`` holds every step of this run (run or cached); ``cached`` maps cached steps to
    the run that computed them; ``reasons`` says why each other step ran; ``reused`` lists
    the steps taken over from a parent run (``--resume`` / ``--from``).
    """

    run_id: str
    status: str
    steps: dict[str, StepResult] = field(default_factory=dict)
    reused: dict[str, str] = field(default_factory=dict)
    cached: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "steps": {k: v.to_json() for k, v in self.steps.items()},
            "reused": self.reused,
            "cached": self.cached,
            "reasons": self.reasons,
        }


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out |= _flatten(value, f"{prefix}{key}.")
        return out
    return {prefix[:-1]: data}


#: The step that reads each section a ``--set`` can change, for sections read before train.
_OVERRIDE_STEP: dict[str, str] = {"data": "extract", "transform": "transform", "prepare": "prepare"}


class Pipeline:
    """Run a project's steps, all of them or a slice, as one tracked run.

    Parameters
    ----------
    project:
        A :class:`~blase.project.Project`, a path inside one, or None for the current folder.
    overrides:
        ``["train.epochs=5", ...]`` (as ``blase run --set``) or a nested dict; recorded.
    memory:
        Budget for the data steps (``"2GB"``); default ``memory:`` of ``blase.yaml``.
    config:
        A resolved config (a :class:`~blase.config.ProjectConfig` or its dict) to run
        instead of ``blase.yaml`` (``blase reproduce`` passes a run's recorded config).
    code_root:
        Where user scripts are loaded from (default: the project root; ``blase reproduce``
        points it at a run's code snapshot). Data paths still start at the project root.
    """

    def __init__(
        self,
        project: Project | str | Path | None = None,
        *,
        overrides: list[str] | dict[str, Any] | None = None,
        memory: int | str | None = None,
        config: Any = None,
        code_root: str | Path | None = None,
    ) -> None:
        import yaml

        from blase.config import (
            ProjectConfig,
            apply_overrides,
            check_confined,
            config_from_dict,
            config_from_text,
            parse_overrides,
        )

        self.project = project if isinstance(project, Project) else find_project(project)
        self.overrides = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
        if config is not None:
            base = config.model_dump(mode="json") if isinstance(config, ProjectConfig) else dict(config)
            self.config = config_from_dict(apply_overrides(base, self.overrides), file="recorded config")
            own = config_from_dict(base, file="recorded config") if self.overrides else None
        else:
            text = self.project.config_path.read_text(encoding="utf-8")
            own = config_from_text(text, file=self.project.config_path.name)  # line-aware errors first
            raw = yaml.safe_load(text) or {}
            self.config = config_from_dict(apply_overrides(raw, self.overrides), file="blase.yaml with --set")
        if self.overrides:  # whatever their shape, what they bring in stays inside the project
            check_confined(self.config, self.project.root, base=own)
        self._memory_arg = memory
        self.memory = memory if memory is not None else self.config.memory
        self.code_root = Path(code_root).resolve() if code_root is not None else self.project.root
        #: Why each step of the last :meth:`run` ran (empty for cached steps).
        self.reasons: dict[str, list[str]] = {}
        #: The id of the last :meth:`run`'s record (None until it is opened).
        self.run_id: str | None = None
        self._staged: dict[str, Path] = {}
        self._resume_from: str | None = None

    # -- public --------------------------------------------------------------------------

    def run(
        self,
        *,
        from_step: str | None = None,
        to_step: str | None = None,
        resume: str | None = None,
        name: str | None = None,
        on_step: Callable[[str, str], None] | None = None,
        cache: bool = True,
        parent: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> PipelineResult:
        """Run the steps ``from_step`` .. ``to_step`` (default: all) and return the result.

        A step whose cache key matches an intact stored result is not run again (``cache``
        False runs every step, and still stores the results). ``on_step(step, state)`` is
        called with ``state`` in ``start``, ``done``, ``cached``, ``reused``, ``failed``,
        ``interrupted`` (Ctrl-C; the CLI uses it to print progress); :attr:`reasons` says why
        each step ran, and :attr:`run_id` is this run's id as soon as its record exists.
        """
        from blase.hashing import environment_fingerprint, environment_hash, hash_config
        from blase.track import Track

        first, last = self._bounds(from_step, to_step)
        reuse: dict[str, StepResult] = {}
        outputs: dict[str, str] = {}
        if resume is not None:
            parent, reuse = finished_steps(self.project, resume)
            if from_step is None:
                pending = [s for s in STEPS if s not in reuse]
                if not pending:
                    raise PipelineError(f"run {parent} finished every step; there is nothing to resume",
                                        hint="start a new run with `blase run`")
                first = pending[0]
                if STEPS.index(first) > STEPS.index(last):
                    last = first
        elif STEPS.index(first) > 0:
            parent, reuse = latest_with(self.project, STEPS[: STEPS.index(first)])
        needed = STEPS[: STEPS.index(first)]
        self._refuse_unused_overrides(needed, first, resume)
        if resume is not None and parent is not None:
            self._adopt_recorded_config(parent)
        missing = [s for s in needed if s not in reuse]
        if missing:
            raise PipelineError(
                f"cannot start at {first}: no earlier run finished {', '.join(missing)}",
                hint="run the whole pipeline once with `blase run`",
            )
        if needed and parent is not None:
            outputs = {s: rec.get("output", "") for s, rec in step_records(self.project, parent).items()}
        todo = STEPS[STEPS.index(first) : STEPS.index(last) + 1]
        params = _flatten(self.config.model_dump(mode="json"))
        params["run.steps"] = ",".join(todo)
        if self.overrides:
            params["run.overrides"] = _flatten(self.overrides)
        self.reasons = {}
        self.run_id = None
        self._resume_from = parent if resume is not None else None
        store = _store(self.project)
        store.clean_stale()
        result = None
        with Track(
            name or f"{self.project.name}-pipeline",
            project=self.project,
            params=params,
            tags={"pipeline": "blase run", **(tags or {})},
            parent=parent,
            kind="pipeline",
            sample_resources=self.config.track.sample_resources,
            sample_interval=self.config.track.sample_interval,
        ) as track:
            result = PipelineResult(track.run_id, "running")
            self.run_id = track.run_id
            snapshot = self._snapshot(todo)
            track.log_hashes({"config": hash_config(self.config), "environment": environment_hash(),
                              "code": hash_config(snapshot)})
            track.log_event("environment", **environment_fingerprint())
            track.log_event("config", resolved=self.config.model_dump(mode="json"), overrides=self.overrides,
                            memory=self.memory, code_root=str(self.code_root), cache=cache)
            track.log_event("code_snapshot", files=snapshot)
            done: dict[str, StepResult] = {}
            for step in needed:
                done[step] = reuse[step]
                result.reused[step] = parent or ""
                track.log_event("step_reused", step=step, from_run=parent, outputs=reuse[step].outputs,
                                details=reuse[step].details)
                if on_step:
                    on_step(step, "reused")
            for step in todo:
                if on_step:
                    on_step(step, "start")
                track.log_event("step_start", step=step)
                started = time.time()
                try:
                    step_result, hit = self._run_step(step, track, done, outputs, store, cache)
                except BaseException as exc:
                    self._keep_checkpoint(step, track)
                    track.log_event("step_failed", step=step, error=f"{type(exc).__name__}: {exc}",
                                    seconds=time.time() - started)
                    if on_step:
                        on_step(step, "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
                    raise
                finally:
                    self._discard_staging(step)
                record_step(track, step_result)
                done[step] = step_result
                result.steps[step] = step_result
                if hit is not None:
                    result.cached[step] = hit
                elif step in self.reasons:
                    result.reasons[step] = self.reasons[step]
                if on_step:
                    on_step(step, "cached" if hit is not None else "done")
            result.status = "finished"
        return result

    def _refuse_unused_overrides(self, reused: tuple[str, ...] | list[str], first: str,
                                 resume: str | None) -> None:
        """A ``--set`` of a section only a reused step reads would be recorded but never used."""
        flat = _flatten(self.overrides)
        unused = [key for key in flat if _OVERRIDE_STEP.get(key.split(".", 1)[0]) in reused]
        if not unused:
            return
        pairs = " ".join(f"--set {key}={flat[key]}" for key in unused)
        rerun = "blase run --set " + " --set ".join(f"{key}={flat[key]}" for key in unused)
        start = f"--resume {resume}" if resume is not None else f"--from {first}"
        raise PipelineError(
            f"{pairs} changes what {_OVERRIDE_STEP[unused[0].split('.', 1)[0]]} reads, but {start} "
            f"reuses that step's output from an earlier run: the run would record a config it did not use",
            hint=f"run the steps that read it again: `{rerun}` (without {start.split()[0]})",
        )

    def _adopt_recorded_config(self, run_id: str) -> None:
        """``--resume``: continue with the config run ``run_id`` recorded (its ``--set``
        overrides and memory budget included), this call's overrides on top; not blase.yaml,
        which may have changed since."""
        from blase.config import apply_overrides, check_confined, config_from_dict
        from blase.track import load_run

        run = load_run(run_id, [self.project.root], history=False)
        recorded = next((e.get("data") or {} for e in run.event_list if e.get("event") == "config"), {})
        if "resolved" not in recorded:
            logger.warning("run %s recorded no config; resuming it with blase.yaml", run_id)
            return
        where = f"the config recorded by run {run_id}"
        own = config_from_dict(recorded["resolved"], file=where)
        from_yaml = _flatten(self.config.model_dump(mode="json"))
        if self.overrides:
            self.config = config_from_dict(apply_overrides(recorded["resolved"], self.overrides),
                                           file=f"{where} with --set")
            check_confined(self.config, self.project.root, base=own)
        else:
            self.config = own
        changed = [k for k, v in _flatten(self.config.model_dump(mode="json")).items() if from_yaml.get(k, v) != v]
        if changed:
            logger.warning("--resume %s continues with the config that run recorded (its --set overrides "
                           "included), not blase.yaml, which differs in %s; to run blase.yaml as it is "
                           "now, use `blase run --from STEP`", run_id, ", ".join(changed[:5]))
        self.overrides = apply_overrides(recorded.get("overrides") or {}, self.overrides)
        if self._memory_arg is None:
            self.memory = recorded.get("memory", self.config.memory)

    # -- caching --------------------------------------------------------------------------

    def step_key(self, step: str, outputs: dict[str, str] | None = None) -> Any:
        """The :class:`~blase.cache.StepKey` of ``step`` given the upstream output digests."""
        from blase.cache import step_key

        return step_key(step, self.config, project_root=self.project.root, code_root=self.code_root,
                        upstream=outputs or {}, stat_cache=_stat_cache(self.project))

    def _run_step(
        self, step: str, track: Any, done: dict[str, StepResult], outputs: dict[str, str],
        store: Any, cache: bool,
    ) -> tuple[StepResult, str | None]:
        """Run or fetch one step; returns its result and, for a cache hit, the run that made it."""
        if step == "deploy":
            same = self._deployed_already(done) if cache else None
            if same is not None:
                return same, same.details["cache"]["from_run"] or ""
            return self.deploy(track=track, done=done), None
        from blase.cache import StoreWriteError, explain
        from blase.cache._store import rebase_result

        looked = time.perf_counter()
        key = self.step_key(step, outputs)
        entry, why = (store.lookup(key.digest) if cache and key.cacheable else (None, None))
        last = _last_components(self.project)
        if entry is not None:
            step_result = self._from_entry(step, entry, track)
            step_result.details["cache"] = {
                "key": key.digest, "hit": True, "from_run": entry.run_id, "output": entry.output,
                "original_seconds": entry.result.seconds,
            }
            step_result.seconds = time.perf_counter() - looked
            reasons: list[str] = []
            logger.info("%s: cached (made by run %s)", step, entry.run_id)
        else:
            if not cache:
                reasons = ["--no-cache"]
            elif why:
                reasons = [why]
            elif not key.cacheable:
                reasons = ["its inputs cannot be content-hashed"]
            else:
                reasons = explain(last.get(step), key.components) or [
                    "its cached result is gone (garbage-collected)"]
            self.reasons[step] = reasons
            logger.info("%s: running (%s)", step, "; ".join(reasons))
            staging, unstored = None, None
            if key.cacheable:
                try:
                    staging = store.staging(step)
                except StoreWriteError as exc:  # the store cannot take even a folder: run uncached
                    unstored = exc.message
            if staging is not None:
                self._staged[step] = staging
                step_result = getattr(self, step)(track=track, done=done)
                exposed = None
                if step == "evaluate":
                    exposed = self.project.outputs_dir / track.run_id
                    _link_tree(exposed, staging / "out")
                try:
                    entry = store.publish(staging, key=key.digest, step=step, components=key.components,
                                          result=step_result, run_id=track.run_id, out_dir=exposed,
                                          fallback=self.project.state_dir / "work" / track.run_id / step)
                except StoreWriteError as exc:  # the result is right, only not stored (disk full, read-only)
                    entry, unstored = exc.entry, exc.message
                self._staged.pop(step, None)
                if exposed is None:  # this run's result, with paths into the published entry
                    for old_dir, new_dir in ((staging / "out", entry.out_dir),
                                             (self.project.relative(staging / "out"), self.project.relative(entry.out_dir))):
                        step_result = rebase_result(step_result, str(old_dir), str(new_dir))
                step_result.details["cache"] = {"key": key.digest, "hit": False, "output": entry.output,
                                                "stored": entry.stored}
            else:
                step_result = getattr(self, step)(track=track, done=done)
            if unstored is not None:
                step_result.warnings.append(unstored)  # record_step logs it as a `warning` event
        if entry is not None:
            outputs[step] = entry.output
        track.log_event(
            "step_cache", step=step, key=key.digest, hit=entry is not None and not reasons,
            from_run=entry.run_id if entry is not None else None, reasons=reasons,
            components=key.components, output=entry.output if entry is not None else None,
            files=entry.file_hashes() if entry is not None else {},
        )
        _remember_components(self.project, step, key.components)
        return step_result, (entry.run_id or "") if entry is not None and not reasons else None

    def _deployed_already(self, done: dict[str, StepResult]) -> StepResult | None:
        """The deploy step as a no-op when a version of the model already packages exactly
        these step results under this config (and is current, when ``deploy.promote`` asks
        for that); None when a new version is due."""
        from blase.deploy import current_version, load_package
        from blase.hashing import hash_config

        keys = {f"step:{s}": r.details["cache"]["key"] for s, r in done.items() if isinstance(r.details.get("cache"), dict)}
        if not {"step:extract", "step:transform", "step:prepare", "step:train"} <= keys.keys():
            return None
        name = self.config.deploy.name or self.project.name
        folder = self.project.models_dir / name
        current = current_version(self.project, name)
        versions = sorted((p for p in folder.glob("v*") if p.name[1:].isdigit()), key=lambda p: -int(p.name[1:])) \
            if folder.is_dir() else []
        wanted = {**keys, "config": hash_config(self.config)}
        for path in versions:
            try:
                package = load_package(path)
            except BlaseError:
                continue
            hashes = package.info.get("lineage", {}).get("hashes", {})
            recorded = {k: v for k, v in hashes.items() if k.startswith("step:") or k == "config"}
            if recorded != wanted or (self.config.deploy.promote and current != package.version):
                continue
            files = sorted(p.name for p in package.path.iterdir())
            logger.info("deploy: %s %s already packages these results", name, package.version)
            return StepResult(
                step="deploy", inputs={"run": package.run_id or ""},
                outputs={self.project.relative(package.path): json.dumps(files)},
                details={"model": name, "deployed": True,
                         "reason": "it already packages these results",
                         "version": package.version, "path": str(package.path), "promoted": False,
                         "previous": current, "onnx": package.info.get("onnx"),
                         "cache": {"hit": True, "from_run": package.run_id}},
            )
        return None

    def _from_entry(self, step: str, entry: Any, track: Any) -> StepResult:
        """A stored result as this run's: evaluate's files appear under ``outputs/<run>``, and
        the metrics train and evaluate log are logged into this run too."""
        if step == "evaluate":
            exposed = self.project.outputs_dir / track.run_id
            _link_tree(entry.out_dir, exposed)
            result = _rebased(entry, exposed)
            details = result.details
            split = details.get("split", "test")
            metrics = {f"{split}.{k}": v for k, v in details.get("metrics", {}).items() if _is_number(v)}
            metrics |= {f"baseline.{k}": v for k, v in details.get("baseline", {}).items() if _is_number(v)}
            track.log_metrics(metrics)
            for path in sorted(p for p in exposed.iterdir() if p.is_file()):
                track.log_artifact(path, name=f"evaluate/{path.name}")
            return result
        if step == "train":
            history = entry.out_dir / "history.json"
            try:
                for row in json.loads(history.read_text(encoding="utf-8")):
                    track.log_metrics({k: v for k, v in row.items() if k not in ("epoch", "best_epoch")
                                       and _is_number(v)}, step=row.get("epoch"))
            except (OSError, ValueError, TypeError, AttributeError):
                logger.debug("no readable history in %s", history)
        return _rebased(entry, None)

    def _snapshot(self, todo: tuple[str, ...]) -> dict[str, str]:
        """Store the scripts this run uses (user modules are imported first, so helpers they
        import from elsewhere in the project are found too)."""
        from blase.cache._key import user_code
        from blase.cache._snapshot import snapshot_code

        extra: list[Path] = []
        for step in ("transform", "train"):
            if step not in todo:
                continue
            try:
                refs = user_code(step, self.config, self.code_root)
            except BlaseError:
                continue  # the step itself reports it, with its own message
            extra += [self.code_root / ref.rpartition(":")[0] for ref in refs]
        return snapshot_code(self.project, self.code_root, extra)

    def _checkpoint_dir(self, run_id: str) -> Path:
        return self.project.state_dir / "checkpoints" / run_id / "train" / "checkpoint"

    def _keep_checkpoint(self, step: str, track: Any) -> None:
        """A train step that failed or was interrupted keeps its last complete checkpoint, so
        ``blase run --resume RUN`` continues from that epoch instead of starting over."""
        if step != "train":
            return
        source = self._work(track, "train") / "checkpoint"
        if source.is_dir():
            _mirror(source, self._checkpoint_dir(track.run_id))
            logger.info("kept the train checkpoint of run %s for --resume", track.run_id)

    def _kept_checkpoint(self, run_id: str) -> Path | None:
        """The checkpoint run ``run_id`` left for ``--resume``: the mirrored folder, or the
        previous one when the run died between the two renames of a mirror."""
        folder = self._checkpoint_dir(run_id)
        if folder.is_dir():
            return folder
        old = sorted(folder.parent.glob(f".{folder.name}.old-*"), key=lambda p: p.stat().st_mtime)
        return old[-1] if old else None

    def _discard_staging(self, step: str) -> None:
        staging = self._staged.pop(step, None)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

    # -- the steps (each callable alone with the outputs of the steps before it) ------------

    def _work(self, track: Any, step: str) -> Path:
        staged = self._staged.get(step)
        if staged is not None:
            return staged / "out"
        return self.project.state_dir / "work" / track.run_id / step

    def extract(self, *, track: Any, done: dict[str, StepResult]) -> StepResult:
        from blase.extract import Extract

        if not self.config.data.source:
            raise PipelineError("data.source is not set in blase.yaml",
                                hint="add data: {source: data/FILE.csv, label: COLUMN}")
        extract = Extract.from_config(self.config.data, self.project)
        result = extract.to_parquet(self._work(track, "extract"), memory=self.memory)
        schema = extract.schema()
        result.details.setdefault("schema", {f.name: str(f.type) for f in schema})
        result.details.setdefault("data_dir", str(self._work(track, "extract")))
        result.details["extract_options"] = extract.options.model_dump(mode="json") if hasattr(
            extract, "options") and hasattr(extract.options, "model_dump") else {}
        return result

    def transform(self, *, track: Any, done: dict[str, StepResult]) -> StepResult:
        from blase.transform import from_step_config

        data = self.config.data
        exclude = [c for c in (data.label, data.key) if c]
        transform = from_step_config(self.config.transform, self.code_root, exclude=exclude)
        source = Path(done["extract"].details["data_dir"])
        out = self._work(track, "transform")
        # Fit only: prepare applies the transform while writing shards, so the (often wide)
        # transformed table is never written and read back. `blase restore --step
        # transform` writes it when someone wants to see it.
        result = transform.run(source, out, memory=self.memory, write_data=False)
        result.details.setdefault("state_file", str(out / "transform.json"))
        return result

    def prepare(self, *, track: Any, done: dict[str, StepResult]) -> StepResult:
        from blase.prepare import Prepare
        from blase.transform import Transform

        data, prep = self.config.data, self.config.prepare
        if not data.label:
            raise PipelineError("data.label is not set in blase.yaml", hint="name the column to predict")
        prepare = Prepare(
            label=data.label, features=prep.features, key=data.key, split=prep.split,
            seed=self.config.seed, stratify=prep.stratify, shard_rows=prep.shard_rows,
            drop_null_label=prep.drop_null_label,
        )
        out = self._work(track, "prepare")
        transform = Transform.load(done["transform"].details["state_file"], project_root=self.code_root)
        name = f"{data.source} (after the transform)" if self.config.transform else str(data.source)
        result = prepare.run(Path(done["extract"].details["data_dir"]), out, memory=self.memory,
                             transform=transform, source_name=name)
        result.details.setdefault("shards_dir", str(out))
        return result

    def train(self, *, track: Any, done: dict[str, StepResult]) -> StepResult:
        from blase.train import Train

        trainer = Train(self.config.train, seed=self.config.seed, project_root=self.code_root)
        trainer.set_model(self.config.train.model)
        out = self._work(track, "train")
        shards = Path(done["prepare"].details["shards_dir"])
        kept = self._kept_checkpoint(self._resume_from) if self._resume_from else None
        # each epoch's checkpoint is mirrored (hard links) outside the step's staging folder,
        # which the next run removes when this process dies: so a SIGKILL keeps it too
        mirror = self._checkpoint_dir(track.run_id)

        def keep_epoch(**_: Any) -> None:
            _mirror(out / "checkpoint", mirror)

        result = None
        if kept is not None:
            from blase.train import TrainError

            out.mkdir(parents=True, exist_ok=True)
            shutil.copytree(kept, out / "checkpoint", dirs_exist_ok=True)
            try:
                result = trainer.fit(shards, out, resume=True, track=track, on_epoch_end=keep_epoch)
                result.details["resumed_from_run"] = self._resume_from
            except TrainError as exc:  # config, model or data changed since: start over
                logger.warning("cannot resume training from run %s (%s); training from the start",
                               self._resume_from, exc.message)
                shutil.rmtree(out / "checkpoint", ignore_errors=True)
        if result is None:
            result = trainer.fit(shards, out, track=track, on_epoch_end=keep_epoch)
        shutil.rmtree(mirror.parent.parent, ignore_errors=True)  # trained to the end: not needed
        result.details.setdefault("model_dir", str(out))
        return result

    def evaluate(self, *, track: Any, done: dict[str, StepResult]) -> StepResult:
        from blase.evaluate import evaluate_live
        from blase.train import load_model

        model = load_model(Path(done["train"].details["model_dir"]))
        out = self.project.outputs_dir / track.run_id
        return evaluate_live(
            model, Path(done["prepare"].details["shards_dir"]), out,
            plots=self.config.evaluate.plots, track=track, memory=self.memory,
        )

    def deploy(self, *, track: Any, done: dict[str, StepResult]) -> StepResult:
        from blase.deploy import deploy_from_steps

        return deploy_from_steps(self.project, self.config, track.run_id, done)

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _bounds(from_step: str | None, to_step: str | None) -> tuple[str, str]:
        for value in (from_step, to_step):
            if value is not None and value not in STEPS:
                import difflib

                close = difflib.get_close_matches(value, STEPS, n=1)
                raise PipelineError(
                    f"unknown step {value!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                    hint=f"steps: {', '.join(STEPS)}",
                )
        first, last = from_step or STEPS[0], to_step or STEPS[-1]
        if STEPS.index(first) > STEPS.index(last):
            raise PipelineError(f"--from {first} comes after --to {last}", hint=f"order: {' -> '.join(STEPS)}")
        return first, last

def _mirror(source: Path, target: Path) -> None:
    """Put a copy of the folder ``source`` at ``target``, whole (hard links where the
    filesystem allows: checkpoint files are written new each epoch, never changed in place)."""
    from blase._fs import replace_dir

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(source, tmp, copy_function=link_or_copy)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _step_from_event(fields: dict[str, Any]) -> StepResult:
    known = StepResult.__dataclass_fields__
    return StepResult(**{k: v for k, v in fields.items() if k in known})


def _outputs_exist(result: StepResult) -> bool:
    for key in ("data_dir", "state_file", "shards_dir", "model_dir"):
        path = result.details.get(key)
        if path and not Path(path).exists():
            return False
    return True


def finished_steps(project: Project, ref: str) -> tuple[str, dict[str, StepResult]]:
    """The steps run ``ref`` finished (its own or reused ones) whose outputs still exist."""
    from blase.track import load_run

    run = load_run(ref, [project.root], history=False)
    found: dict[str, StepResult] = {}
    for record in run.event_list:
        name, fields = record.get("event"), record.get("data") or {}
        if fields.get("step") not in STEPS:
            continue
        if name == "step":
            found[fields["step"]] = _step_from_event(fields)
        elif name == "step_reused":
            found[fields["step"]] = StepResult(step=fields["step"], outputs=fields.get("outputs", {}),
                                               details=fields.get("details", {}))
    # only a prefix of steps is reusable, and only while its outputs still exist
    usable: dict[str, StepResult] = {}
    for step in STEPS:
        if step not in found or not _outputs_exist(found[step]):
            break
        usable[step] = found[step]
    return run.id, usable

def latest_with(project: Project, steps: tuple[str, ...]) -> tuple[str | None, dict[str, StepResult]]:
    from blase.track import list_runs

    for summary in list_runs([project.root]):
        if summary.kind != "pipeline":
            continue
        run_id, usable = finished_steps(project, summary.id)
        if all(s in usable for s in steps):
            return run_id, usable
    return None, {}


def step_records(project: Project, ref: str) -> dict[str, dict[str, Any]]:
    """``{step: step_cache event data}`` of run ``ref``: key, components, output digest and
    output files of each step it ran or took from the cache."""
    from blase.track import load_run

    run = load_run(ref, [project.root], history=False)
    return {
        (e.get("data") or {}).get("step"): e.get("data") or {}
        for e in run.event_list
        if e.get("event") == "step_cache"
    }


# -- small helpers ---------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _store(project: Project) -> Any:
    from blase.cache import StepStore

    return StepStore(project, _stat_cache(project))


def _stat_cache(project: Project) -> Any:
    from blase.hashing import StatCache

    return StatCache.for_project(project)


def _rebased(entry: Any, exposed: Path | None) -> StepResult:
    from blase.cache._store import rebase_result

    if exposed is None:
        return StepResult(**entry.result.to_json())  # a copy the run may annotate
    return rebase_result(entry.result, str(entry.out_dir), str(exposed))


def _link_tree(src: Path, dst: Path) -> None:
    """Hard-link (or copy, across file systems) every file of ``src`` into ``dst``."""
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


_LAST = "steps-last.json"


def _last_components(project: Project) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads((project.cache_dir / _LAST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember_components(project: Project, step: str, components: dict[str, Any]) -> None:
    """Keep the components of each step's latest key, to explain the next re-run."""
    from blase.track._layout import write_json_atomic

    data = _last_components(project)
    data[step] = components
    try:
        project.cache_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(project.cache_dir / _LAST, data)
    except OSError as exc:
        logger.debug("could not record the step keys: %s", exc)
