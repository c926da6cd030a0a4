"""The sequential runner: extract, transform, prepare, train, evaluate, deploy.

No DAG: the steps run in that order, each as a plain method that can also be called alone.
One ``blase run`` is one tracked run (kind ``pipeline``) whose record shows every step: a
``step_start`` event, then the step's :class:`~blase.steps.StepResult` (``step`` event) or a
``step_failed`` event with the error. Step outputs live under ``.blase/work/<run>/<step>/``;
user-facing outputs (predictions, plots, rejected rows) under ``outputs/``.

``--resume RUN`` starts a new run linked to ``RUN`` (its parent) that reuses the outputs of the
steps ``RUN`` finished and continues from the first one it did not. ``--from STEP`` reuses the
earlier steps of the latest run that finished them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.project import Project, find_project
from blase.steps import StepResult, record_step

__all__ = ["STEPS", "Pipeline", "PipelineError", "PipelineResult", "finished_steps", "latest_with"]

logger = logging.getLogger(__name__)

STEPS: tuple[str, ...] = ("extract", "transform", "prepare", "train", "evaluate", "deploy")


class PipelineError(BlaseError):
    """A pipeline cannot start or continue (unknown step, nothing to resume, a step failed)."""


@dataclass
class PipelineResult:
    run_id: str
    status: str
    steps: dict[str, StepResult] = field(default_factory=dict)
    reused: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "steps": {k: v.to_json() for k, v in self.steps.items()},
            "reused": self.reused,
        }


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out |= _flatten(value, f"{prefix}{key}.")
        return out
    return {prefix[:-1]: data}


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
    """

    def __init__(
        self,
        project: Project | str | Path | None = None,
        *,
        overrides: list[str] | dict[str, Any] | None = None,
        memory: int | str | None = None,
    ) -> None:
        import yaml

        from blase.config import config_from_dict, config_from_text, parse_overrides

        self.project = project if isinstance(project, Project) else find_project(project)
        text = self.project.config_path.read_text(encoding="utf-8")
        config_from_text(text, file=self.project.config_path.name)  # line-aware errors first
        raw = yaml.safe_load(text) or {}
        self.overrides = parse_overrides(overrides) if isinstance(overrides, list) else dict(overrides or {})
        self.config = config_from_dict(_merge(raw, self.overrides), file="blase.yaml with --set")
        self.memory = memory if memory is not None else self.config.memory

    # -- public --------------------------------------------------------------------------

    def run(
        self,
        *,
        from_step: str | None = None,
        to_step: str | None = None,
        resume: str | None = None,
        name: str | None = None,
        on_step: Callable[[str, str], None] | None = None,
    ) -> PipelineResult:
        """Run the steps ``from_step`` .. ``to_step`` (default: all) and return the result.

        ``on_step(step, state)`` is called with ``state`` in ``start``, ``done``, ``reused``,
        ``failed`` (the CLI uses it to print progress).
        """
        from blase.hashing import environment_fingerprint, environment_hash, hash_config
        from blase.track import Track

        first, last = self._bounds(from_step, to_step)
        reuse: dict[str, StepResult] = {}
        parent = None
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
        missing = [s for s in needed if s not in reuse]
        if missing:
            raise PipelineError(
                f"cannot start at {first}: no earlier run finished {', '.join(missing)}",
                hint="run the whole pipeline once with `blase run`",
            )
        todo = STEPS[STEPS.index(first) : STEPS.index(last) + 1]
        params = _flatten(self.config.model_dump(mode="json"))
        params["run.steps"] = ",".join(todo)
        if self.overrides:
            params["run.overrides"] = _flatten(self.overrides)
        tags = {"pipeline": "blase run"}
        result = None
        with Track(
            name or f"{self.project.name}-pipeline",
            project=self.project,
            params=params,
            tags=tags,
            parent=parent,
            kind="pipeline",
            sample_resources=self.config.track.sample_resources,
            sample_interval=self.config.track.sample_interval,
        ) as track:
            result = PipelineResult(track.run_id, "running")
            track.log_hashes({"config": hash_config(self.config), "environment": environment_hash()})
            track.log_event("environment", **environment_fingerprint())
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
                    step_result = getattr(self, step)(track=track, done=done)
                except BaseException as exc:
                    track.log_event("step_failed", step=step, error=f"{type(exc).__name__}: {exc}",
                                    seconds=time.time() - started)
                    if on_step:
                        on_step(step, "failed")
                    raise
                record_step(track, step_result)
                done[step] = step_result
                result.steps[step] = step_result
                if on_step:
                    on_step(step, "done")
            result.status = "finished"
        return result

    # -- the steps (each callable alone with the outputs of the steps before it) ------------

    def _work(self, track: Any, step: str) -> Path:
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
        transform = from_step_config(self.config.transform, self.project.root, exclude=exclude)
        source = Path(done["extract"].details["data_dir"])
        out = self._work(track, "transform")
        result = transform.run(source, out, memory=self.memory)
        result.details.setdefault("data_dir", str(out))
        result.details.setdefault("state_file", str(out / "transform.json"))
        return result

    def prepare(self, *, track: Any, done: dict[str, StepResult]) -> StepResult:
        from blase.prepare import Prepare

        data, prep = self.config.data, self.config.prepare
        if not data.label:
            raise PipelineError("data.label is not set in blase.yaml", hint="name the column to predict")
        prepare = Prepare(
            label=data.label, features=prep.features, key=data.key, split=prep.split,
            seed=self.config.seed, stratify=prep.stratify, shard_rows=prep.shard_rows,
        )
        out = self._work(track, "prepare")
        result = prepare.run(Path(done["transform"].details["data_dir"]), out, memory=self.memory)
        result.details.setdefault("shards_dir", str(out))
        return result

    def train(self, *, track: Any, done: dict[str, StepResult]) -> StepResult:
        from blase.train import Train

        trainer = Train(self.config.train, seed=self.config.seed, project_root=self.project.root)
        trainer.set_model(self.config.train.model)
        out = self._work(track, "train")
        result = trainer.fit(Path(done["prepare"].details["shards_dir"]), out, track=track)
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

    run = load_run(ref, [project.root])
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
