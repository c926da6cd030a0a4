"""The sequential runner: extract, transform, prepare, train, evaluate, deploy (and any
plugin steps, each after the step it follows).

No DAG: the steps run in the registry's order (:mod:`blase.pipeline._registry`), each a
:class:`~blase.steps.Step` wired to the steps before it by name: a step gets the typed
outputs of the steps in its ``needs`` and a fresh output folder. One ``blase run`` is one tracked run (kind ``pipeline``) whose record shows every step: a
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.pipeline._registry import StepRegistry, project_registry
from blase.plugins import HookRunner
from blase.project import Project, find_project
from blase.resources import MemoryRelease, memory_budget, release_memory
from blase.steps import (
    BUILTIN_STEPS,
    Step,
    StepContext,
    StepOutput,
    StepResult,
    finished_steps,
    latest_with,
    record_step,
    step_records,
)

__all__ = ["STEPS", "Pipeline", "PipelineError", "PipelineResult"]

logger = logging.getLogger(__name__)

#: The built-in pipeline's steps, in order (plugin steps come from the registry).
STEPS: tuple[str, ...] = BUILTIN_STEPS


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

    def outputs(self) -> list[StepOutput]:
        """The typed outputs of this run's steps, in step order."""
        return [r.output for r in self.steps.values() if r.output is not None]

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


#: The share of the memory budget above which the process's resident memory is given back
#: between two steps (see :meth:`Pipeline._release_memory`).
RELEASE_SHARE = 0.125

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
    registry:
        The steps to run (default: the built-in ones; see :mod:`blase.pipeline._registry`).
    """

    def __init__(
        self,
        project: Project | str | Path | None = None,
        *,
        overrides: list[str] | dict[str, Any] | None = None,
        memory: int | str | None = None,
        config: Any = None,
        code_root: str | Path | None = None,
        registry: StepRegistry | None = None,
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
        hooks: list[tuple[str, Any]] = []
        if registry is None:
            registry, hooks = project_registry(self.project.root, self.config.plugins)
        self.registry = registry
        self.hooks = HookRunner(hooks)
        self._from_step: str | None = None
        self._first = self.registry.order()[0]
        #: Steps this pipeline has run (not cached) in this process, for :meth:`_release_memory`.
        self._executed = 0

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
        order = self.steps
        first, last = self._bounds(from_step, to_step)
        parent, reuse, last = self._reusable(order, first, last, resume, parent)
        first = self._first
        needed = order[: order.index(first)]
        self._refuse_unused_overrides(needed, first, resume)
        if resume is not None and parent is not None:
            self._adopt_recorded_config(parent)
        missing = [s for s in needed if s not in reuse]
        if missing:
            raise PipelineError(
                f"cannot start at {first}: no earlier run finished {', '.join(missing)}",
                hint="run the whole pipeline once with `blase run`",
            )
        records = step_records(self.project, parent) if needed and parent is not None else {}
        todo = order[order.index(first) : order.index(last) + 1]
        self.reasons = {}
        self.run_id = None
        store = _store(self.project)
        store.clean_stale()
        with self._track(name, todo, parent, tags) as track:
            result = PipelineResult(track.run_id, "running")
            self.run_id = track.run_id
            ctx = StepContext(project=self.project, config=self.config, code_root=self.code_root,
                              memory=self.memory, track=track, stat_cache=_stat_cache(self.project),
                              resume_from=parent if resume is not None else None)
            self._record_start(track, todo, cache)
            done: dict[str, StepResult] = {}
            outputs: dict[str, str] = {}
            for step in needed:
                done[step] = reuse[step]
                outputs[step] = records.get(step, {}).get("output") or ""
                if records.get(step, {}).get("key"):
                    ctx.keys[step] = records[step]["key"]
                result.reused[step] = parent or ""
                track.log_event("step_reused", step=step, from_run=parent, outputs=reuse[step].outputs,
                                details=reuse[step].details, output=_output_json(reuse[step]))
                if on_step:
                    on_step(step, "reused")
            status = "failed"
            try:
                for step in todo:
                    self._run_one(step, ctx, done, outputs, store, cache, result, on_step)
                status = result.status = "finished"
            except KeyboardInterrupt:
                status = "interrupted"
                raise
            finally:
                if self.hooks:
                    self.hooks.call("on_run_end", run_id=track.run_id, status=status)
                    for plugin, message in self.hooks.failures:
                        track.log_event("warning", step=None, plugin=plugin, message=message)
        return result

    def _reusable(self, order: tuple[str, ...], first: str, last: str, resume: str | None,
                  parent: str | None) -> tuple[str | None, dict[str, StepResult], str]:
        """The run to continue from and its reusable steps (``--resume`` / ``--from``); sets
        :attr:`_first` to the step this run starts at."""
        reuse: dict[str, StepResult] = {}
        if resume is not None:
            parent, reuse = finished_steps(self.project, resume, order)
            if self._from_step is None:
                pending = [s for s in order if s not in reuse]
                if not pending:
                    raise PipelineError(f"run {parent} finished every step; there is nothing to resume",
                                        hint="start a new run with `blase run`")
                first = pending[0]
                if order.index(first) > order.index(last):
                    last = first
        elif order.index(first) > 0:
            parent, reuse = latest_with(self.project, order[: order.index(first)], order)
        self._first = first
        return parent, reuse, last

    def _track(self, name: str | None, todo: tuple[str, ...], parent: str | None,
               tags: dict[str, str] | None) -> Any:
        from blase.track import Track

        params = _flatten(self.config.model_dump(mode="json"))
        params["run.steps"] = ",".join(todo)
        if self.overrides:
            params["run.overrides"] = _flatten(self.overrides)
        return Track(
            name or f"{self.project.name}-pipeline",
            project=self.project,
            params=params,
            tags={"pipeline": "blase run", **(tags or {})},
            parent=parent,
            kind="pipeline",
            sample_resources=self.config.track.sample_resources,
            sample_interval=self.config.track.sample_interval,
        )

    def _record_start(self, track: Any, todo: tuple[str, ...], cache: bool) -> None:
        """The run's config, environment and code snapshot (what reproduce and diff read)."""
        from blase.hashing import environment_fingerprint, environment_hash, hash_config

        snapshot = self._snapshot(todo)
        track.log_hashes({"config": hash_config(self.config), "environment": environment_hash(),
                          "code": hash_config(snapshot)})
        track.log_event("environment", **environment_fingerprint())
        track.log_event("config", resolved=self.config.model_dump(mode="json"), overrides=self.overrides,
                        memory=self.memory, code_root=str(self.code_root), cache=cache)
        track.log_event("code_snapshot", files=snapshot)

    def _run_one(self, step: str, ctx: StepContext, done: dict[str, StepResult], outputs: dict[str, str],
                 store: Any, cache: bool, result: PipelineResult,
                 on_step: Callable[[str, str], None] | None) -> None:
        track = ctx.track
        if on_step:
            on_step(step, "start")
        track.log_event("step_start", step=step)
        if self.hooks:
            self.hooks.call("on_step_start", step=step, run_id=track.run_id)
        started = time.time()
        try:
            step_result, hit = self._run_step(self.registry.get(step), ctx, done, outputs, store, cache)
        except BaseException as exc:
            state = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            track.log_event("step_failed", step=step, error=f"{type(exc).__name__}: {exc}",
                            seconds=time.time() - started)
            if self.hooks:
                self.hooks.call("on_step_end", step=step, run_id=track.run_id, state=state, result=None)
            if on_step:
                on_step(step, state)
            raise
        record_step(track, step_result)
        done[step] = step_result
        result.steps[step] = step_result
        if hit is not None:
            result.cached[step] = hit
        elif step in self.reasons:
            result.reasons[step] = self.reasons[step]
        state = "cached" if hit is not None else "done"
        if self.hooks:
            self.hooks.call("on_step_end", step=step, run_id=track.run_id, state=state, result=step_result.to_json())
        if on_step:
            on_step(step, state)

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

    @property
    def steps(self) -> tuple[str, ...]:
        """This pipeline's steps, in order."""
        return self.registry.order()

    def context(self, track: Any = None) -> StepContext:
        """The :class:`~blase.steps.StepContext` steps of this pipeline run with."""
        return StepContext(project=self.project, config=self.config, code_root=self.code_root,
                           memory=self.memory, track=track, stat_cache=_stat_cache(self.project))

    def step_key(self, step: str, outputs: dict[str, str] | None = None) -> Any:
        """The :class:`~blase.cache.StepKey` of ``step`` given the upstream output digests."""
        from blase.cache import step_key

        return step_key(self.registry.get(step), self.context(), outputs or {})

    def _inputs(self, step: Step, done: dict[str, StepResult]) -> dict[str, StepOutput]:
        inputs: dict[str, StepOutput] = {}
        for name in step.needs:
            output = done[name].output if name in done else None
            if output is None:
                raise PipelineError(f"step {step.name} needs the output of {name}, which this run does not have",
                                    hint="run the whole pipeline once with `blase run`")
            inputs[name] = output
        return inputs

    def _execute(self, step: Step, inputs: dict[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        """``step.run`` with the contract checked; a plugin's failure names the plugin."""
        origin = self.registry.origin(step.name)
        out_dir.mkdir(parents=True, exist_ok=True)
        released = self._release_memory(ctx)
        self._executed += 1
        try:
            result = step.run(inputs, out_dir, ctx)
        except BaseException as exc:
            step.on_failure(out_dir, ctx)
            if origin == "blase" or isinstance(exc, (BlaseError, KeyboardInterrupt, SystemExit)):
                raise
            raise PipelineError(f"step {step.name} of {origin} failed: {type(exc).__name__}: {exc}",
                                hint=f"fix the {origin}, or remove it from blase.yaml's plugins") from exc
        if not isinstance(result, StepResult) or not isinstance(result.output, step.output_type):
            got = type(getattr(result, "output", result)).__name__
            raise PipelineError(
                f"step {step.name} ({origin}) returned {got}, not a StepResult with a "
                f"{step.output_type.__name__} output", hint="return StepResult(step=..., output=...) from run()")
        if released is not None:
            result.details["memory_release"] = released.to_json()
        return result

    def _release_memory(self, ctx: StepContext) -> MemoryRelease | None:
        """Between two steps run in this process, give back what the earlier ones left
        resident (:func:`blase.resources.release_memory`: freed heap, Arrow's free pages, the
        code pages of DuckDB and the other libraries they ran), so the next step's peak starts
        from what it needs. Only when the process holds more than :data:`RELEASE_SHARE` of
        the memory budget: under a roomy budget the leftovers do not matter, and releasing
        costs a few tenths of a second (and the pages the next step reads again)."""
        if not self._executed:
            return None
        released = release_memory(above=int(memory_budget(ctx.memory) * RELEASE_SHARE))
        if released is not None:
            logger.info("before the next step: resident memory %.0f -> %.0f MB (%.2f s)",
                        released.rss_before / 1e6, released.rss_after / 1e6, released.seconds)
        return released

    def _run_step(
        self, step: Step, ctx: StepContext, done: dict[str, StepResult], outputs: dict[str, str],
        store: Any, cache: bool,
    ) -> tuple[StepResult, str | None]:
        """Run or fetch one step; returns its result and, for a cache hit, the run that made it."""
        inputs = self._inputs(step, done)
        if not step.cacheable:
            same = step.reuse(inputs, ctx) if cache else None
            if same is not None:
                return same, same.cached_from or ""
            return self._execute(step, inputs, self._work(ctx, step.name), ctx), None
        from blase.cache import step_key

        looked = time.perf_counter()
        key = step_key(step, ctx, outputs)
        entry, why = (store.lookup(key.digest) if cache and key.cacheable else (None, None))
        if entry is not None and entry.result.output is None:
            entry, why = None, "its cached result predates this Blase version"
        reasons: list[str] = []
        if entry is not None:
            step_result = self._from_entry(step, entry, ctx)
            step_result.details["cache"] = {
                "key": key.digest, "hit": True, "from_run": entry.run_id, "output": entry.output,
                "original_seconds": entry.result.seconds,
            }
            step_result.seconds = time.perf_counter() - looked
            logger.info("%s: cached (made by run %s)", step.name, entry.run_id)
        else:
            reasons = self._why(step.name, key, cache, why)
            self.reasons[step.name] = reasons
            logger.info("%s: running (%s)", step.name, "; ".join(reasons))
            step_result, entry = self._compute(step, inputs, ctx, key, store)
        if entry is not None:
            outputs[step.name] = entry.output
        ctx.keys[step.name] = key.digest
        ctx.track.log_event(
            "step_cache", step=step.name, key=key.digest, hit=entry is not None and not reasons,
            from_run=entry.run_id if entry is not None else None, reasons=reasons,
            components=key.components, output=entry.output if entry is not None else None,
            files=entry.file_hashes() if entry is not None else {},
        )
        _remember_components(self.project, step.name, key.components)
        return step_result, (entry.run_id or "") if entry is not None and not reasons else None

    def _why(self, step: str, key: Any, cache: bool, why: str | None) -> list[str]:
        from blase.cache import explain

        if not cache:
            return ["--no-cache"]
        if why:
            return [why]
        if not key.cacheable:
            return ["its inputs cannot be content-hashed"]
        return explain(_last_components(self.project).get(step), key.components) or [
            "its cached result is gone (garbage-collected)"]

    def _compute(self, step: Step, inputs: dict[str, StepOutput], ctx: StepContext, key: Any,
                 store: Any) -> tuple[StepResult, Any]:
        """Run ``step`` into a staging entry of the store and publish it under ``key``; an
        uncacheable step (or a store that cannot take a folder) runs in the run's work folder."""
        from blase.cache import StoreWriteError

        staging, unstored, entry = None, None, None
        if key.cacheable:
            try:
                staging = store.staging(step.name)
            except StoreWriteError as exc:  # the store cannot take even a folder: run uncached
                unstored = exc.message
        if staging is None:
            step_result = self._execute(step, inputs, self._work(ctx, step.name), ctx)
            self._expose(step, step_result, ctx)
        else:
            try:
                step_result = self._execute(step, inputs, staging / "out", ctx)
                try:
                    entry = store.publish(staging, key=key.digest, step=step.name, components=key.components,
                                          result=step_result, run_id=ctx.run_id,
                                          fallback=self.project.state_dir / "work" / ctx.run_id / step.name)
                except StoreWriteError as exc:  # the result is right, only not stored (disk full, read-only)
                    entry, unstored = exc.entry, exc.message
            finally:
                if entry is None or entry.path != staging:
                    shutil.rmtree(staging, ignore_errors=True)
            assert step_result.output is not None
            step_result.output = step_result.output.at(entry.out_dir)
            self._expose(step, step_result, ctx)
            step_result.details["cache"] = {"key": key.digest, "hit": False, "output": entry.output,
                                            "stored": entry.stored}
        if unstored is not None:
            step_result.warnings.append(unstored)  # record_step logs it as a `warning` event
        return step_result, entry

    def _from_entry(self, step: Step, entry: Any, ctx: StepContext) -> StepResult:
        """A stored result as this run's: a public step's files appear under
        ``outputs/<run>``, and the step logs into this run what running would have."""
        step_result = StepResult.from_json(entry.result.to_json(with_root=False), root=entry.out_dir)
        self._expose(step, step_result, ctx)
        step.replay(step_result, ctx)
        return step_result

    def _expose(self, step: Step, step_result: StepResult, ctx: StepContext) -> None:
        """A public step's files also under ``outputs/<run>/`` (hard links), and its output
        pointing there."""
        if not step.public or step_result.output is None:
            return
        exposed = self.project.outputs_dir / ctx.run_id
        if step_result.output.root.resolve() != exposed.resolve():
            _link_tree(step_result.output.root, exposed)
        step_result.output = step_result.output.at(exposed)

    def _snapshot(self, todo: tuple[str, ...]) -> dict[str, str]:
        """Store the scripts this run uses (user modules are imported first, so helpers they
        import from elsewhere in the project are found too)."""
        from blase.cache import snapshot_code

        extra: list[Path] = []
        ctx = self.context()
        for name in todo:
            try:
                refs = self.registry.get(name).code(ctx)
            except BlaseError:
                continue  # the step itself reports it, with its own message
            extra += [self.code_root / ref.rpartition(":")[0] for ref in refs]
        return snapshot_code(self.project, self.code_root, extra)

    def _work(self, ctx: StepContext, step: str) -> Path:
        return self.project.state_dir / "work" / ctx.run_id / step

    # -- helpers --------------------------------------------------------------------------

    def _bounds(self, from_step: str | None, to_step: str | None) -> tuple[str, str]:
        order = self.steps
        self._from_step = from_step
        for value in (from_step, to_step):
            if value is not None and value not in order:
                unknown = self.registry.unknown(value)
                raise PipelineError(unknown.message, hint=unknown.hint)
        first, last = from_step or order[0], to_step or order[-1]
        if order.index(first) > order.index(last):
            raise PipelineError(f"--from {first} comes after --to {last}", hint=f"order: {' -> '.join(order)}")
        return first, last


# -- small helpers ---------------------------------------------------------------------------


def _output_json(result: StepResult) -> dict[str, Any] | None:
    return result.output.to_json() if result.output is not None else None


def _store(project: Project) -> Any:
    from blase.cache import StepStore

    return StepStore(project, _stat_cache(project))


def _stat_cache(project: Project) -> Any:
    from blase.hashing import StatCache

    return StatCache.for_project(project)


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
    from blase._fs import write_json_atomic

    data = _last_components(project)
    data[step] = components
    try:
        project.cache_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(project.cache_dir / _LAST, data)
    except OSError as exc:
        logger.debug("could not record the step keys: %s", exc)

