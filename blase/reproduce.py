"""Reproduce a run from what it recorded, and restore the data of one of its steps.

:func:`reproduce` re-executes a pipeline run from its recorded config (the ``config``
event) and code snapshot (the ``code_snapshot`` event), bypassing the step cache, as a new
run whose parent is the original and whose tag ``reproduce_of`` names it. With ``verify``
it compares the output hashes of every step and the final weights, and names the first
divergence and its cause: data changed, code changed, config or environment differs, or a
nondeterministic operation.

:func:`restore` writes the data as it was after one step of a run into a folder: from the
step store when the entry is still there, else recomputed from the raw inputs when they
still hash the same, else a :class:`RestoreError` that names what changed.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blase._fs import replace_dir
from blase.errors import BlaseError
from blase.project import Project

__all__ = ["Divergence", "ReproduceError", "ReproduceResult", "RestoreError", "RestoreResult",
           "reproduce", "restore"]

logger = logging.getLogger(__name__)

_STEPS = ("extract", "transform", "prepare", "train", "evaluate")
WEIGHTS = "model.safetensors"


class ReproduceError(BlaseError):
    """A run cannot be reproduced (unknown run, no recorded config, collected snapshots)."""


class RestoreError(ReproduceError):
    """A step's data cannot be restored (collected from the store and its inputs changed)."""


@dataclass
class Divergence:
    """The first step whose outputs differ from the original run's, and why."""

    step: str
    files: list[str]
    cause: str
    detail: list[str] = field(default_factory=list)


@dataclass
class ReproduceResult:
    """The new run, and with ``verify`` how its outputs compare with the original's."""

    original: str
    run_id: str
    steps: list[str]
    verified: bool = False
    identical: bool | None = None
    weights_identical: bool | None = None
    divergence: Divergence | None = None
    compared: dict[str, bool] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        if not self.verified:
            return f"reproduced run {self.original} as {self.run_id} (not verified)"
        if self.identical:
            return f"reproduced bit for bit: run {self.run_id} matches {self.original} in every step"
        d = self.divergence
        assert d is not None
        return f"diverged at {d.step}: {d.cause}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary
        return data


# --------------------------------------------------------------------------- shared


def _load(project: Project, ref: str) -> Any:
    from blase.errors import RunNotFoundError
    from blase.track import load_run

    try:
        return load_run(ref, [project.root], history=False)
    except RunNotFoundError as exc:
        raise ReproduceError(exc.message,
                             hint="list runs with `blase runs`; pass an id, a unique prefix or 'latest'") from None


def _event(run: Any, name: str) -> dict[str, Any] | None:
    for e in run.event_list:
        if e.get("event") == name:
            return e.get("data") or {}
    return None


@contextmanager
def recorded_code(project: Project, run: Any) -> Iterator[tuple[dict[str, Any], Path]]:
    """The recorded config of ``run`` and a folder holding the scripts it ran.

    The project itself when its scripts still match the snapshot, else a temporary copy
    materialised from the content store (removed afterwards).
    """
    from blase.cache import materialise, read_snapshot_file, same_as_project

    config = _event(run, "config")
    snapshot = _event(run, "code_snapshot")
    if config is None or snapshot is None or "resolved" not in config:
        raise ReproduceError(
            f"run {run.id} recorded no config and code snapshot (kind {run.kind!r})",
            hint="only pipeline runs made by `blase run` can be reproduced",
        )
    files = {k: v for k, v in (snapshot.get("files") or {}).items()}
    for rel, digest in files.items():  # fail early, naming the first collected file
        read_snapshot_file(project, digest, rel, run.id)
    code = {k: v for k, v in files.items() if k != "blase.yaml"}
    if not same_as_project(project, code):
        yield config["resolved"], project.root
        return
    folder = project.tmp_dir / f"code-{run.id}-{secrets.token_hex(3)}"
    try:
        materialise(project, files, folder, run.id)
        yield config["resolved"], folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _steps_of(run: Any) -> list[str]:
    ran = str(run.params.get("run.steps", "")).split(",")
    last = max((_STEPS.index(s) for s in ran if s in _STEPS), default=len(_STEPS) - 1)
    return list(_STEPS[: last + 1])


# --------------------------------------------------------------------------- reproduce


def reproduce(project: Project, ref: str, *, verify: bool = False, memory: int | str | None = None) -> ReproduceResult:
    """Re-execute run ``ref`` from its recorded config and code as a new, linked run.

    Parameters
    ----------
    ref:
        The run (id, unique prefix, name or ``latest``).
    verify:
        Compare every step's output hashes and the final weights with the original's.
    memory:
        Budget for the data steps (outputs do not depend on it).

    Raises
    ------
    ReproduceError
        For an unknown run, a run without a recorded config, or collected snapshots.
    """
    from blase.pipeline import Pipeline, step_records

    run = _load(project, ref)
    steps = _steps_of(run)
    with recorded_code(project, run) as (config, code_root):
        pipeline = Pipeline(project, config=config, code_root=code_root, memory=memory)
        new = pipeline.run(to_step=steps[-1], cache=False, parent=run.id, tags={"reproduce_of": run.id},
                           name=f"reproduce-{run.id}")
    result = ReproduceResult(run.id, new.run_id, steps)
    if verify:
        _verify(result, step_records(project, run.id), step_records(project, new.run_id))
    logger.info("%s", result.summary)
    return result


def _cause(step: str, old: dict[str, Any], new: dict[str, Any], files: list[str]) -> tuple[str, list[str]]:
    from blase.cache import explain

    a, b = old.get("components") or {}, new.get("components") or {}
    changed = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
    detail = explain(a, b) if a else []
    for prefix, what in (("data.", "data changed"), ("code.", "code changed"), ("config.", "config differs"),
                         ("env.", "environment differs"), ("input.", "its input differs")):
        hits = [k for k in changed if k.startswith(prefix)]
        if hits:
            return f"{what}: " + "; ".join(explain({k: a.get(k) for k in hits}, {k: b.get(k) for k in hits})), detail
    if any(k in ("blase", "step_version") for k in changed):
        return "Blase's version differs: " + "; ".join(detail), detail
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (f"nondeterministic op in {step}: the same inputs, config, code and environment gave "
            f"different bytes in {shown}"), detail


def _model_files(files: dict[str, Any]) -> list[str]:
    """The model's own files among a train step's (``model.safetensors``, or a model
    plugin's such as ``model.ubj``): every ``model.*`` but ``model.json``."""
    return sorted(f for f in files if f.startswith("model.") and f != "model.json") or (
        [WEIGHTS] if WEIGHTS in files else [])


def _verify(result: ReproduceResult, old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> None:
    result.verified = True
    if not old:
        raise ReproduceError(f"run {result.original} recorded no output hashes to compare with",
                             hint="it predates step records; compare runs with `blase diff` instead")
    for step in result.steps:
        if step not in old or step not in new:
            continue
        a, b = old[step].get("files") or {}, new[step].get("files") or {}
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        result.compared[step] = not differ
        if step == "train":
            weights = _model_files(a)
            result.weights_identical = bool(weights) and all(a.get(f) == b.get(f) for f in weights)
        if differ and result.divergence is None:
            cause, detail = _cause(step, old[step], new[step], differ)
            result.divergence = Divergence(step, differ, cause, detail)
    result.identical = result.divergence is None and bool(result.compared)


# --------------------------------------------------------------------------- restore


@dataclass
class RestoreResult:
    """Where a step's data was restored from, and to."""

    run_id: str
    step: str
    out: Path
    source: str
    key: str
    recomputed_in: str | None = None
    matches_record: bool = True

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        return data


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RestoreError(f"{out} already exists and is not an empty folder",
                           hint="pass --out a new folder; restore never overwrites files")


def _copy_out(src: Path, out: Path) -> None:
    tmp = out.with_name(f".{out.name}.tmp-{secrets.token_hex(3)}")
    try:
        shutil.copytree(src, tmp)
        replace_dir(tmp, out)  # `out` is absent or an empty folder (_check_out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _deliver(project: Project, run: Any, step: str, stored: Path, out: Path) -> None:
    """Write a stored step output into ``out``. The transform step stores only its fitted
    state (prepare applies it on the way), so its data is that state applied, here, to the
    run's extract output (restored the same way: from the store, else recomputed)."""
    if step != "transform":
        _copy_out(stored, out)
        return
    from blase.transform import STATE_FILE, Transform

    token = secrets.token_hex(3)
    extract = out.with_name(f".{out.name}.extract-{token}")
    tmp = out.with_name(f".{out.name}.tmp-{token}")
    try:
        restore(project, run.id, "extract", extract)
        with recorded_code(project, run) as (_config, code_root):
            transform = Transform.load(stored / STATE_FILE, project_root=code_root)
            transform.write(extract, tmp)
        shutil.copyfile(stored / STATE_FILE, tmp / STATE_FILE)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(extract, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _changed_inputs(project: Project, records: dict[str, dict[str, Any]], step: str) -> list[str]:
    from blase.hashing import StatCache, hash_file

    cache = StatCache.for_project(project)
    extract = records.get("extract") or {}
    changed = []
    for name, recorded in (extract.get("components") or {}).items():
        if not name.startswith("data."):
            continue
        rel = name[5:]
        path = project.root / rel
        try:
            now = hash_file(path, cache=cache)
        except BlaseError:
            changed.append(f"{rel} is missing (recorded hash {str(recorded)[:8]})")
            continue
        if now != recorded:
            changed.append(f"{rel} changed (recorded hash {str(recorded)[:8]}, now {now[:8]})")
    return changed


def restore(project: Project, ref: str, step: str, out: str | os.PathLike[str]) -> RestoreResult:
    """Write the output folder of ``step`` in run ``ref`` as it was, into ``out`` (new).

    Raises
    ------
    RestoreError
        For an unknown run or step, an ``out`` that is not a new or empty folder, or a
        collected entry whose raw inputs changed since (the message names them).
    """
    from blase.cache import StepStore
    from blase.pipeline import Pipeline, step_records

    out_path = Path(out).resolve()
    run = _load(project, ref)
    if step not in _STEPS:
        raise RestoreError(f"unknown step {step!r}", hint=f"steps with data: {', '.join(_STEPS)}")
    records = step_records(project, run.id)
    record = records.get(step)
    if record is None:
        ran = ", ".join(records) or "none"
        raise RestoreError(f"run {run.id} has no record of step {step} (steps recorded: {ran})",
                           hint="pick a step the run ran; `blase inspect RUN --lineage` lists them")
    _check_out(out_path)
    store = StepStore(project)
    entry, _why = store.lookup(record["key"])
    if entry is not None:
        _deliver(project, run, step, entry.out_dir, out_path)
        return RestoreResult(run.id, step, out_path, "store", record["key"])
    changed = _changed_inputs(project, records, step)
    if changed:
        raise RestoreError(
            f"cannot restore {step} of run {run.id}: its stored result was garbage-collected and "
            f"its raw input changed since: {'; '.join(changed)}",
            hint=f"put the original data back and retry, or `blase pin {run.id}` runs whose data you "
            "need before `blase gc`",
        )
    with recorded_code(project, run) as (config, code_root):
        new = Pipeline(project, config=config, code_root=code_root).run(
            to_step=step, parent=run.id, tags={"restore_of": run.id}, name=f"restore-{run.id}")
    again = step_records(project, new.run_id).get(step) or {}
    entry, _why = store.lookup(again.get("key", ""))
    if entry is None:
        raise RestoreError(f"recomputing {step} of run {run.id} left no stored result",
                           hint="check free disk space under .blase/store and retry")
    _deliver(project, run, step, entry.out_dir, out_path)
    same = again.get("output") == record.get("output")
    if not same:
        logger.warning("restored %s of %s was recomputed but differs from the recorded output", step, run.id)
    return RestoreResult(run.id, step, out_path, "recomputed", entry.key, new.run_id, same)
