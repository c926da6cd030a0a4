"""Deploy: versioned, self-contained model packages; promotion, rollback and prediction.

``blase deploy RUN`` packages the outputs of a pipeline run as ``models/NAME/vN/``;
``blase models`` lists them; ``blase rollback NAME`` moves ``current`` back; ``blase predict
MODEL DATA --out FILE`` scores new raw data under the memory budget.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from blase._fs import disk_cause, disk_guard
from blase.deploy._decide import DeployDecision, decide_deploy
from blase.deploy._package import (
    DeployError,
    ModelPackage,
    build_package,
    load_package,
    seal_package,
)
from blase.deploy._predict import (
    PredictResult,
    check_input_schema,
    features_matrix,
    fill_unimputed,
    predict,
    scores_to_columns,
    training_means,
)
from blase.deploy._registry import (
    ModelInfo,
    current_version,
    list_models,
    model_folder,
    promote,
    resolve_model,
    rollback,
)
from blase.deploy._runner import model_runner
from blase.deploy._versions import reserve_version, stale_staging
from blase.errors import BlaseError
from blase.project import Project
from blase.steps import StepResult

__all__ = [
    "DeployDecision",
    "DeployError",
    "ModelInfo",
    "ModelPackage",
    "PredictResult",
    "build_package",
    "check_input_schema",
    "current_version",
    "decide_deploy",
    "deploy_from_steps",
    "deploy_run",
    "features_matrix",
    "fill_unimputed",
    "list_models",
    "load_package",
    "model_runner",
    "predict",
    "promote",
    "reserve_version",
    "resolve_model",
    "rollback",
    "scores_to_columns",
    "seal_package",
    "stale_staging",
    "training_means",
]


def deploy_from_steps(
    project: Project,
    config: Any,
    run_id: str,
    done: dict[str, StepResult],
    *,
    name: str | None = None,
    promote_it: bool | None = None,
    asked: bool = False,
) -> StepResult:
    """Package the outputs of a run's finished steps (the pipeline's ``deploy`` step).

    The pipeline's deploy (``asked`` false) makes a new version only when :func:`decide_deploy`
    says so; the step's details say why (``deployed``, ``reason``) either way.
    """
    from blase.hashing import hash_config

    missing = [s for s in ("extract", "transform", "prepare", "train") if s not in done]
    if missing:
        raise DeployError(
            f"run {run_id} did not finish {', '.join(missing)}; there is no model to deploy",
            hint="run the pipeline to the train step first: `blase run --to train`",
        )
    started = time.perf_counter()
    name = name or config.deploy.name or project.name
    label = config.data.label
    schema = dict(done["extract"].details.get("schema", {}))
    input_schema = {c: t for c, t in schema.items() if c not in (label, config.data.key)}
    evaluation = done.get("evaluate")
    metrics = dict(evaluation.details.get("metrics", {})) if evaluation else {}
    baseline = dict(evaluation.details.get("baseline", {})) if evaluation else {}
    hashes = {f"data:{k}": v for k, v in done["extract"].inputs.items()}
    hashes["config"] = hash_config(config)
    # the step-store keys of the run's outputs: `blase trace` and `blase gc` follow them
    hashes |= {f"step:{s}": r.details["cache"]["key"] for s, r in done.items() if isinstance(r.details.get("cache"), dict)}
    previous = current_version(project, name)
    decision = _decide(project, config, done, name, metrics, previous, promote_it=promote_it, asked=asked)
    if not decision.deploy:
        return StepResult(
            step="deploy", inputs={"run": run_id}, outputs={}, seconds=time.perf_counter() - started,
            details={"model": name, "deployed": False, "reason": decision.reason, "version": None,
                     "path": None, "promoted": False, "previous": previous},
        )
    with disk_guard("the model package into", model_folder(project, name), DeployError):
        package = _package_run(project, config, run_id, done, name, input_schema, metrics, baseline, hashes)
    if decision.promote:
        promote(project, name, package.version,
                reason="first version" if previous is None else f"deployed from run {run_id}")
    files = sorted(p.name for p in package.path.iterdir())
    return StepResult(
        step="deploy",
        inputs={"run": run_id},
        outputs={str(package.path.relative_to(project.root)): json.dumps(files)},
        seconds=time.perf_counter() - started,
        details={"model": name, "deployed": True, "reason": decision.reason, "version": package.version,
                 "path": str(package.path), "promoted": decision.promote, "previous": previous,
                 "onnx": package.info.get("onnx")},
    )


def _package_run(project: Project, config: Any, run_id: str, done: dict[str, StepResult], name: str,
                 input_schema: dict[str, str], metrics: dict[str, Any], baseline: dict[str, Any],
                 hashes: dict[str, str]) -> ModelPackage:
    """Write ``models/NAME/vN/`` with its reference profile, sealed: whole or absent."""
    from blase.hashing import environment_fingerprint

    package = build_package(
        project,
        name=name,
        run_id=run_id,
        train_dir=Path(done["train"].details["model_dir"]),
        transform_file=Path(done["transform"].details["state_file"]),
        manifest_file=Path(done["prepare"].details["shards_dir"]) / "manifest.json",
        input_schema=input_schema,
        extract_options=done["extract"].details.get("extract_options", {}),
        metrics=metrics,
        baseline=baseline,
        hashes=hashes,
        environment=environment_fingerprint(),
        onnx=config.deploy.onnx,
    )
    try:
        _save_reference_profile(package, done, config, config.data.label)
        seal_package(package.path)  # the profile is a package file too: record its hash
    except BaseException:  # a version is whole or absent
        shutil.rmtree(package.path, ignore_errors=True)
        raise
    return package


def _decide(project: Project, config: Any, done: dict[str, StepResult], name: str, metrics: dict[str, Any],
            current: str | None, *, promote_it: bool | None, asked: bool) -> DeployDecision:
    """:func:`decide_deploy` for this run against the model's current version."""
    from blase.prepare import read_manifest

    current_metrics = None
    if current is not None:
        try:
            current_metrics = load_package(model_folder(project, name) / current, verify=False).metrics
        except BlaseError:  # an unreadable current version has nothing to compare with
            current_metrics = None
    task = read_manifest(Path(done["prepare"].details["shards_dir"]) / "manifest.json").task
    return decide_deploy(
        name=name, task=task, metrics=metrics, current=current, current_metrics=current_metrics, asked=asked,
        promote=config.deploy.promote if promote_it is None else promote_it, always=config.deploy.always,
    )


def _save_reference_profile(package: ModelPackage, done: dict[str, StepResult], config: Any,
                            label: str | None) -> None:
    """Write ``reference_profile.json`` (what ``blase monitor`` compares new data with).

    A run whose extracted data is gone still deploys (predict works); monitor then asks for
    a redeploy from a run that has its data.
    """
    import logging

    from blase.profile import PROFILE_FILE, ReferenceProfile

    evaluation = done.get("evaluate")
    details = evaluation.details if evaluation else {}
    try:
        profile = ReferenceProfile.build(
            done["extract"].details["data_dir"], package.input_schema, label=label, task=package.task,
            classes=package.classes, predictions=details.get("predictions"), metrics=package.metrics,
            baseline=details.get("baseline"), memory=config.memory, seed=config.seed,
        )
        profile.save(package.path / PROFILE_FILE)
    except (BlaseError, OSError) as exc:
        if disk_cause(exc) is not None:  # the disk is full: the deploy fails whole, not without a profile
            raise
        logging.getLogger(__name__).warning("no reference profile saved for %s %s: %s",
                                            package.name, package.version, exc)


def deploy_run(
    project: Project, run: str, *, name: str | None = None, promote_it: bool = False
) -> ModelPackage:
    """``blase deploy RUN``: package a finished (or partly finished) pipeline run."""
    from blase.config import load_config
    from blase.pipeline import finished_steps
    from blase.track import Track

    if name is not None:
        model_folder(project, name)  # a name, never a path: refused before any run is recorded
    run_id, done = finished_steps(project, run)
    config = load_config(project.config_path)
    with Track(f"deploy-{run_id}", project=project, parent=run_id, kind="deploy",
               sample_resources=False) as track:
        result = deploy_from_steps(project, config, run_id, done, name=name, promote_it=promote_it, asked=True)
        track.log_event("step", **result.to_json())
    return load_package(result.details["path"])
