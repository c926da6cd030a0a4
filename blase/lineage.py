"""Lineage: what each step of a run read, ran and wrote, and the walk back from a model.

:func:`run_lineage` lists, per step of a pipeline run, its cache key, its inputs (raw files
or the output digest of the step before), the user code and config it hashed, and its
output files with their hashes (from the run's ``step_cache`` events).
:func:`trace` starts from a deployed model (``NAME``, ``NAME@vN``) or an artifact (a file
path or a hash, or a prefix of one) and walks back to the raw files and code that made it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.project import Project

__all__ = ["LineageError", "RunLineage", "StepLineage", "Trace", "run_lineage", "trace"]

logger = logging.getLogger(__name__)

class LineageError(BlaseError):
    """A run has no lineage, or a model or artifact cannot be traced."""


@dataclass
class StepLineage:
    """One step of a run: key, inputs, code, config and outputs (hashes)."""

    step: str
    key: str
    cached: bool
    from_run: str | None
    inputs: dict[str, str] = field(default_factory=dict)
    code: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    config_hash: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    output: str | None = None
    in_store: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunLineage:
    """The lineage of one pipeline run."""

    run_id: str
    steps: list[StepLineage]
    code_snapshot: dict[str, str]
    deployed: dict[str, Any] | None = None
    parent: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def step(self, name: str) -> StepLineage | None:
        return next((s for s in self.steps if s.step == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "parent": self.parent, "tags": self.tags,
                "steps": [s.to_json() for s in self.steps], "code_snapshot": self.code_snapshot,
                "deployed": self.deployed}


def _events(run: Any, name: str) -> list[dict[str, Any]]:
    return [e.get("data") or {} for e in run.event_list if e.get("event") == name]


def _step_lineage(data: dict[str, Any], store: Any) -> StepLineage:
    from blase.hashing import hash_config

    comps = data.get("components") or {}
    inputs = {k.partition(".")[2]: v for k, v in comps.items() if k.startswith(("data.", "input."))}
    code = {k.partition(".")[2]: v for k, v in comps.items() if k.startswith("code.")}
    config = {k.partition(".")[2]: v for k, v in comps.items() if k.startswith("config.")}
    key = data.get("key", "")
    return StepLineage(
        step=data.get("step", "?"), key=key, cached=bool(data.get("hit")), from_run=data.get("from_run"),
        inputs=inputs, code=code, config=config, config_hash=hash_config(config),
        outputs=dict(data.get("files") or {}), output=data.get("output"),
        in_store=bool(key) and (store.root / key / "entry.json").is_file(),
    )


def run_lineage(project: Project, ref: str) -> RunLineage:
    """The :class:`RunLineage` of run ``ref`` (id, prefix, name or ``latest``).

    Raises
    ------
    LineageError
        When the run recorded no step keys (it is not a pipeline run, or predates them).
    """
    from blase.cache import StepStore
    from blase.track import load_run

    run = load_run(ref, [project.root], history=False)
    store = StepStore(project)
    steps = [_step_lineage(d, store) for d in _events(run, "step_cache")]
    if not steps:
        raise LineageError(
            f"run {run.id} has no step lineage (kind {run.kind!r})",
            hint="lineage is recorded by pipeline runs: `blase run`; list them with `blase runs`",
        )
    snapshot = next((d.get("files") or {} for d in _events(run, "code_snapshot")), {})
    deployed = next((d.get("details") for d in _events(run, "step") if _made_version(d)), None)
    if deployed is not None:  # what was deployed; not the runner's memory bookkeeping around the step
        deployed = {k: v for k, v in deployed.items() if k != "memory_release"}
    return RunLineage(run.id, steps, dict(snapshot), deployed, run.parent, dict(run.tags))


def _made_version(data: dict[str, Any]) -> bool:
    """Whether a ``step`` event records a step that packaged a model version."""
    from blase.steps import Package, StepOutput, StepOutputError

    try:
        output = StepOutput.from_json(data["output"]) if isinstance(data.get("output"), dict) else None
    except StepOutputError:
        return False
    return isinstance(output, Package) and output.deployed


# --------------------------------------------------------------------------- trace


@dataclass
class Trace:
    """Where an artifact came from: the step that wrote it, the steps before, the raw
    files (with whether they still match) and the code snapshot."""

    target: str
    kind: str
    run_id: str
    step: str
    file: str | None
    chain: list[StepLineage]
    raw: dict[str, dict[str, Any]]
    code: dict[str, str]
    model: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "kind": self.kind, "run_id": self.run_id, "step": self.step,
                "file": self.file, "chain": [s.to_json() for s in self.chain], "raw": self.raw,
                "code": self.code, "model": self.model}


def _is_hash(text: str) -> bool:
    return 6 <= len(text) <= 32 and all(c in "0123456789abcdef" for c in text.lower())


def _find_hash(project: Project, digest: str) -> tuple[str, str, str | None, str] | None:
    """``(run_id, step, file, kind)`` of the newest run that wrote or read ``digest``."""
    from blase.track import list_runs, load_run

    digest = digest.lower()
    for summary in list_runs([project.root]):
        if summary.kind != "pipeline":
            continue
        try:
            run = load_run(summary.id, [project.root], history=False)
        except BlaseError:
            continue
        for data in _events(run, "step_cache"):
            for rel, h in (data.get("files") or {}).items():
                if h.startswith(digest):
                    return run.id, data.get("step", "?"), rel, "artifact"
        for art in run.artifacts:
            if str(art.get("hash", "")).startswith(digest):
                return run.id, "evaluate", str(art.get("name")), "artifact"
        for data in _events(run, "step_cache"):
            for name, h in (data.get("components") or {}).items():
                if name.startswith("data.") and str(h).startswith(digest):
                    return run.id, "extract", name[5:], "raw"
    return None


def _model_target(project: Project, target: str) -> Any | None:
    from blase.deploy import resolve_model

    if "/" in target and not Path(target, "package.json").is_file():
        return None
    try:
        return resolve_model(project, target)
    except BlaseError:
        return None


def trace(project: Project, target: str) -> Trace:
    """Walk back from a deployed model or an artifact to the raw files and code.

    Parameters
    ----------
    target:
        ``NAME`` or ``NAME@vN`` of a deployed model, a file (an output of some step, a
        prediction file, a raw data file) or a content hash (or a prefix of at least 6).

    Raises
    ------
    LineageError
        When nothing in the project's runs matches ``target``.
    """
    from blase.hashing import StatCache, hash_file

    model_info = None
    package = _model_target(project, target)
    if package is not None:
        run_id = package.run_id
        if not run_id:
            raise LineageError(f"model {target} records no run in its package.json",
                               hint="redeploy it from a pipeline run: `blase deploy RUN`")
        files = package.info.get("model_files") or ["model.safetensors"]  # a model plugin's own file
        found: tuple[str, str, str | None, str] = (run_id, "train", str(files[0]), "model")
        model_info = {"name": package.name, "version": package.version, "path": str(package.path),
                      "hashes": package.info.get("lineage", {}).get("hashes", {})}
    else:
        path = Path(target)
        if not path.is_absolute():
            path = (Path.cwd() / path) if (Path.cwd() / path).exists() else project.root / path
        if path.is_file():
            digest = hash_file(path, cache=StatCache.for_project(project))
        elif _is_hash(target):
            digest = target
        else:
            raise LineageError(
                f"{target!r} is not a deployed model, a file or a content hash",
                hint="pass NAME or NAME@vN (see `blase models`), a path, or a hash from `blase inspect RUN --lineage`",
            )
        hit = _find_hash(project, digest)
        if hit is None:
            raise LineageError(
                f"no run of {project.root} wrote or read {target} (hash {digest[:12]})",
                hint="only outputs of `blase run` steps are traced; check `blase runs`",
            )
        found = hit
    run_id, step, file, kind = found
    lineage = run_lineage(project, run_id)
    wanted = {step}
    order = [s.step for s in lineage.steps]  # the run's steps, in the order they ran
    chain: list[StepLineage] = []
    for name in reversed(order):
        s = lineage.step(name)
        if s is None or name not in wanted:
            continue
        chain.append(s)
        wanted |= {k for k in s.inputs if k in order}
    raw: dict[str, dict[str, Any]] = {}
    cache = StatCache.for_project(project)
    for s in chain:
        for name, recorded in s.inputs.items():
            if name in order:
                continue
            path = project.root / name
            try:
                now = hash_file(path, cache=cache) if path.is_file() else None
            except BlaseError:
                now = None
            state = "missing" if now is None else ("unchanged" if now == recorded else "changed")
            raw[name] = {"hash": recorded, "now": state}
    return Trace(target, kind, run_id, step, file, chain, raw, lineage.code_snapshot, model_info)
