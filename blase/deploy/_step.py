"""The deploy step: package a run's typed step outputs as ``models/NAME/vN/``.

The pipeline's deploy makes a new version only when :func:`~blase.deploy.decide_deploy` says
so (the first version, ``deploy.promote``, ``deploy.always``, or a better test metric than the
current version's), and is a no-op when a version already packages exactly these step results
(:func:`deployed_already`). ``blase deploy RUN`` (:func:`deploy_run`) always packages.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from blase._fs import disk_cause, disk_guard, write_bytes_atomic
from blase.deploy._decide import DeployDecision, decide_deploy
from blase.deploy._package import (
    DeployError,
    ModelPackage,
    build_package,
    load_package,
    seal_package,
)
from blase.deploy._predict import package_features
from blase.deploy._registry import current_version, model_folder, promote
from blase.deploy._runner import EMBEDDING_ROWS, EMBEDDINGS_FILE, embedding_model
from blase.errors import BlaseError
from blase.project import Project
from blase.steps import (
    Evaluation,
    Extracted,
    FittedTransform,
    Package,
    Shards,
    StepOutput,
    StepResult,
    TrainedModel,
    finished_steps,
    latest_with,
    step_records,
)

__all__ = ["deploy_outputs", "deploy_run", "deployed_already"]

logger = logging.getLogger(__name__)

#: The steps whose outputs a package needs (a run that finished them has a model to deploy).
_MODEL_STEPS = ("extract", "transform", "prepare", "train")

#: The steps whose outputs a package is made of.
_PACKAGED = ("extract", "transform", "prepare", "train")


def deploy_outputs(
    project: Project,
    config: Any,
    run_id: str,
    inputs: Mapping[str, StepOutput],
    *,
    keys: Mapping[str, str] | None = None,
    name: str | None = None,
    promote_it: bool | None = None,
    asked: bool = False,
) -> StepResult:
    """Package the outputs of a run's finished steps (the pipeline's ``deploy`` step).

    ``inputs`` are the typed outputs of extract, transform, prepare, train and (optionally)
    evaluate; ``keys`` their step-store keys (recorded in the package's lineage, which
    ``blase trace`` and ``blase gc`` follow). The pipeline's deploy (``asked`` false) makes a
    new version only when :func:`decide_deploy` says so; the result says why either way.
    """
    from blase.hashing import hash_config

    missing = [s for s in _PACKAGED if s not in inputs]
    if missing:
        raise DeployError(
            f"run {run_id} did not finish {', '.join(missing)}; there is no model to deploy",
            hint="run the pipeline to the train step first: `blase run --to train`",
        )
    started = time.perf_counter()
    name = name or config.deploy.name or project.name
    extracted = _typed(inputs, "extract", Extracted)
    shards = _typed(inputs, "prepare", Shards)
    evaluation = inputs.get("evaluate") if isinstance(inputs.get("evaluate"), Evaluation) else None
    label = config.data.label
    input_schema = {c: t for c, t in extracted.schema.items() if c not in (label, config.data.key)}
    metrics = dict(evaluation.metrics) if evaluation else {}
    hashes = {f"data:{k}": v for k, v in extracted.sources.items()}
    hashes["config"] = hash_config(config)
    hashes |= {f"step:{s}": k for s, k in (keys or {}).items() if k}
    previous = current_version(project, name)
    decision = _decide(project, config, shards, name, metrics, previous, promote_it=promote_it, asked=asked)
    if not decision.deploy:
        return StepResult(
            step="deploy", inputs={"run": run_id}, outputs={}, seconds=time.perf_counter() - started,
            details={"model": name, "deployed": False, "reason": decision.reason, "version": None,
                     "path": None, "promoted": False, "previous": previous},
            output=Package(root=project.models_dir / name, model=name, reason=decision.reason, previous=previous),
        )
    with disk_guard("the model package into", model_folder(project, name), DeployError):
        package = _package_run(project, config, run_id, inputs, name, input_schema, hashes)
    if decision.promote:
        promote(project, name, package.version,
                reason="first version" if previous is None else f"deployed from run {run_id}")
    return _deployed(project, package, run_id, started, reason=decision.reason, promoted=decision.promote,
                     previous=previous)


def _deployed(project: Project, package: ModelPackage, run_id: str, started: float, *, reason: str,
              promoted: bool, previous: str | None, cache: dict[str, Any] | None = None) -> StepResult:
    files = sorted(p.name for p in package.path.iterdir())
    details: dict[str, Any] = {
        "model": package.name, "deployed": True, "reason": reason, "version": package.version,
        "path": str(package.path), "promoted": promoted, "previous": previous, "onnx": package.info.get("onnx"),
    }
    if cache is not None:
        details["cache"] = cache
    return StepResult(
        step="deploy",
        inputs={"run": run_id},
        outputs={project.relative(package.path): json.dumps(files)},
        seconds=time.perf_counter() - started,
        details=details,
        output=Package(root=package.path, model=package.name, deployed=True, version=package.version,
                       promoted=promoted, reason=reason, previous=previous),
    )


def deployed_already(project: Project, config: Any, keys: Mapping[str, str]) -> StepResult | None:
    """The deploy step as a no-op when a version of the model already packages exactly
    these step results under this config (and is current, when ``deploy.promote`` asks
    for that); None when a new version is due."""
    from blase.hashing import hash_config

    steps = {f"step:{s}": k for s, k in keys.items() if k}
    if not {f"step:{s}" for s in _PACKAGED} <= steps.keys():
        return None
    name = config.deploy.name or project.name
    folder = project.models_dir / name
    current = current_version(project, name)
    versions = sorted((p for p in folder.glob("v*") if p.name[1:].isdigit()), key=lambda p: -int(p.name[1:])) \
        if folder.is_dir() else []
    wanted = {**steps, "config": hash_config(config)}
    for path in versions:
        try:
            package = load_package(path)
        except BlaseError:
            continue
        hashes = package.info.get("lineage", {}).get("hashes", {})
        recorded = {k: v for k, v in hashes.items() if k.startswith("step:") or k == "config"}
        if recorded != wanted or (config.deploy.promote and current != package.version):
            continue
        logger.info("deploy: %s %s already packages these results", name, package.version)
        result = _deployed(project, package, package.run_id or "", time.perf_counter(),
                           reason="it already packages these results", promoted=False, previous=current,
                           cache={"hit": True, "from_run": package.run_id})
        return result
    return None


def deploy_run(
    project: Project, run: str, *, name: str | None = None, promote_it: bool = False
) -> ModelPackage:
    """``blase deploy RUN``: package a finished (or partly finished) pipeline run.

    ``latest`` (or ``last``) is the newest pipeline run with a trained model: a newer run that
    has none (evaluate only, a deploy, an assistant session) has nothing to package."""
    from blase.config import load_config
    from blase.track import Track

    if name is not None:
        model_folder(project, name)  # a name, never a path: refused before any run is recorded
    if run.strip().lower() in ("latest", "last"):
        run_id, done = latest_with(project, _MODEL_STEPS)
        if run_id is None:
            raise DeployError("no pipeline run has a trained model to package yet",
                              hint="train one with `blase run`, then `blase deploy latest`")
    else:
        run_id, done = finished_steps(project, run)
    keys = {s: rec.get("key") for s, rec in step_records(project, run_id).items() if s in done}
    inputs = {s: r.output for s, r in done.items() if r.output is not None}
    config = load_config(project.config_path)
    with Track(f"deploy-{run_id}", project=project, parent=run_id, kind="deploy",
               sample_resources=False) as track:
        result = deploy_outputs(project, config, run_id, inputs, keys=keys, name=name, promote_it=promote_it,
                                asked=True)
        track.log_event("step", **result.to_json())
    package = result.output if isinstance(result.output, Package) else None
    if package is None or package.package_dir is None:  # an asked deploy always packages
        raise DeployError(f"run {run_id} was not deployed" + (f": {package.reason}" if package else ""),
                          hint="see `blase models` for the versions there are")
    return load_package(package.package_dir)


# -- helpers -----------------------------------------------------------------------------------


def _typed(inputs: Mapping[str, StepOutput], step: str, kind: type[StepOutput]) -> Any:
    value = inputs.get(step)
    if not isinstance(value, kind):
        raise DeployError(f"deploy needs {step}'s {kind.__name__} output, got {type(value).__name__}",
                          hint="run the pipeline again: `blase run`")
    return value


def _package_run(project: Project, config: Any, run_id: str, inputs: Mapping[str, StepOutput], name: str,
                 input_schema: dict[str, str], hashes: dict[str, str]) -> ModelPackage:
    """Write ``models/NAME/vN/`` with its reference profile, sealed: whole or absent."""
    from blase.hashing import environment_fingerprint

    extracted = _typed(inputs, "extract", Extracted)
    evaluation = inputs.get("evaluate") if isinstance(inputs.get("evaluate"), Evaluation) else None
    package = build_package(
        project,
        name=name,
        run_id=run_id,
        train_dir=_typed(inputs, "train", TrainedModel).model_dir,
        transform_file=_typed(inputs, "transform", FittedTransform).state_file,
        manifest_file=_typed(inputs, "prepare", Shards).manifest_file,
        input_schema=input_schema,
        extract_options=extracted.options,
        metrics=dict(evaluation.metrics) if evaluation else {},
        baseline=dict(evaluation.baseline) if evaluation else {},
        hashes=hashes,
        environment=environment_fingerprint(),
        onnx=config.deploy.onnx,
    )
    try:
        _save_reference_profile(package, extracted, evaluation, config)
        _save_reference_embeddings(package, extracted, config)
        seal_package(package.path)  # the profile is a package file too: record its hash
    except BaseException:  # a version is whole or absent
        shutil.rmtree(package.path, ignore_errors=True)
        raise
    return package


def _decide(project: Project, config: Any, shards: Shards, name: str, metrics: dict[str, Any],
            current: str | None, *, promote_it: bool | None, asked: bool) -> DeployDecision:
    """:func:`decide_deploy` for this run against the model's current version."""
    from blase.prepare import read_manifest

    current_metrics = None
    if current is not None:
        try:
            current_metrics = load_package(model_folder(project, name) / current, verify=False).metrics
        except BlaseError:  # an unreadable current version has nothing to compare with
            current_metrics = None
    task = read_manifest(shards.manifest_file).task
    return decide_deploy(
        name=name, task=task, metrics=metrics, current=current, current_metrics=current_metrics, asked=asked,
        promote=config.deploy.promote if promote_it is None else promote_it, always=config.deploy.always,
    )


def _save_reference_embeddings(package: ModelPackage, extracted: Extracted, config: Any) -> None:
    """Write ``reference_embeddings.npy``: the model's embeddings of a seeded sample of the
    training data, for a model kind that has them (:mod:`blase.monitor._embedding`)."""
    import numpy as np

    model = embedding_model(package)
    if model is None or not Path(extracted.data_dir).is_dir():
        return
    table = _sample_rows(Path(extracted.data_dir), list(package.input_schema), EMBEDDING_ROWS, config.seed)
    x = package_features(package, package.load_transform(), table, source=str(extracted.data_dir))
    write_bytes_atomic(package.path / EMBEDDINGS_FILE, _npy_bytes(np.asarray(model.embeddings(x), np.float32)))


def _npy_bytes(array: Any) -> bytes:
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _sample_rows(data_dir: Path, columns: list[str], n: int, seed: int) -> Any:
    """A seeded sample of ``n`` rows (at most) of the Parquet parts in ``data_dir``, reading
    only ``columns`` of the parts that hold a sampled row."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = sorted(data_dir.glob("*.parquet"))
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in parts]
    total = sum(sizes)
    pick = np.sort(np.random.default_rng(seed).choice(total, min(n, total), replace=False))
    tables, at = [], 0
    for part, size in zip(parts, sizes, strict=True):
        mine = pick[(pick >= at) & (pick < at + size)] - at
        if len(mine):
            f = pq.ParquetFile(part)
            tables.append(f.read(columns=[c for c in columns if c in f.schema_arrow.names]).take(mine))
        at += size
    return pa.concat_tables(tables)


def _save_reference_profile(package: ModelPackage, extracted: Extracted, evaluation: Evaluation | None,
                            config: Any) -> None:
    """Write ``reference_profile.json`` (what ``blase monitor`` compares new data with).

    A run whose extracted data is gone still deploys (predict works); monitor then asks for
    a redeploy from a run that has its data.
    """
    from blase.profile import PROFILE_FILE, ReferenceProfile

    predictions = evaluation.predictions_file if evaluation else None
    try:
        profile = ReferenceProfile.build(
            extracted.data_dir, package.input_schema, label=config.data.label, task=package.task,
            classes=package.classes, predictions=str(predictions) if predictions else None,
            metrics=package.metrics, baseline=evaluation.baseline if evaluation else None,
            memory=config.memory, seed=config.seed,
        )
        profile.save(package.path / PROFILE_FILE)
    except (BlaseError, OSError) as exc:
        if disk_cause(exc) is not None:  # the disk is full: the deploy fails whole, not without a profile
            raise
        logger.warning("no reference profile saved for %s %s: %s", package.name, package.version, exc)
