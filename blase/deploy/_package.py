"""A model package: everything ``blase predict`` needs, in one versioned folder.

``models/NAME/VERSION/`` holds the model's files (safetensors weights, or a model plugin's
own format such as XGBoost's ``model.ubj``), ``model.json`` (what the model is and which kind
loads it, by name), an ONNX export checked against the model when its kind has one, the
fitted transform (JSON), the raw input schema, the label mapping, metrics, lineage,
environment, and a model card (``README.md``). Nothing in it is ever unpickled.

A version folder is assembled under a temporary name that reserves its version number (see
``_versions``: two deploys at once get two versions) and renamed into place, so a failed deploy
leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from blase._formats import FORMATS, check_format
from blase._fs import write_json_atomic
from blase.deploy._versions import reserve_version
from blase.errors import BlaseError
from blase.project import Project

__all__ = ["DeployError", "ModelPackage", "build_package", "load_package", "seal_package", "verify_package"]

logger = logging.getLogger(__name__)

PACKAGE_VERSION = FORMATS["package"].current


class DeployError(BlaseError):
    """A model cannot be packaged, found, promoted or used for prediction."""


@dataclass(frozen=True)
class ModelPackage:
    """A deployed model version on disk (see the module docstring for its files)."""

    path: Path
    name: str
    version: str
    info: dict[str, Any]
    #: Resolved with ``--trust-package``: a ``module`` model may import its class.
    trusted: bool = False

    @property
    def input_schema(self) -> dict[str, str]:
        return dict(self.info["input_schema"])

    @property
    def label(self) -> str:
        return self.info["label"]

    @property
    def task(self) -> str:
        return self.info["task"]

    @property
    def classes(self) -> list[Any]:
        return list(self.info.get("classes", []))

    @property
    def features(self) -> list[str]:
        return list(self.info["features"])

    @property
    def key(self) -> str | None:
        """The training data's key column (``data.key``: an id, an image's path), which
        predictions carry beside ``row_id`` so each row can be matched to its input."""
        try:
            key = json.loads((self.path / "manifest.json").read_text()).get("key")
        except (OSError, ValueError):
            return None
        return key if isinstance(key, str) else None

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.info.get("metrics", {}))

    @property
    def run_id(self) -> str | None:
        return self.info.get("lineage", {}).get("run_id")

    @property
    def has_onnx(self) -> bool:
        return (self.path / "model.onnx").is_file()

    def load_model(self):  # -> torch.nn.Module, or a blase.model.ModelKind
        """The model, rebuilt only from the package's own files: a torch module, or a model
        plugin's fitted kind (:meth:`load_trained`).

        A built-in model needs no code; a script model imports the copy of its script that
        the package holds (covered by the recorded hashes); a ``module`` model would import
        whatever class ``model.json`` names, so only a trusted package may be one.
        """
        spec = _model_spec(self.path)
        kind = spec.get("kind")
        if kind == "plugin":
            return self.load_trained()
        from blase.train import load_model

        if kind == "script":
            _package_file(self.path, str(spec.get("ref") or "").rpartition(":")[0], "model script")
        elif kind == "module" and not self.trusted:
            raise DeployError(
                f"{self.path / 'model.json'} names a Python class to import "
                f"({spec.get('class_path')!r}); a package only rebuilds built-in and script models",
                hint="train with a factory script (train.model: scripts/model.py:build_model) and "
                "`blase deploy RUN` again, or pass --trust-package if you trust this package",
            )
        elif kind not in ("builtin", "module"):
            raise DeployError(f"{self.path / 'model.json'}: unknown model kind {kind!r}",
                              hint="redeploy the run with `blase deploy RUN`")
        return load_model(self.path, project_root=self.path)

    def load_trained(self):  # -> blase.model.ModelKind
        """The fitted model as its :class:`~blase.model.ModelKind`, found by the name
        ``model.json`` records (built-ins, installed model plugins, and the ``plugins:`` of the
        project the package lies in); nothing named in the package is imported."""
        from blase.model import load_trained

        return load_trained(self.path)

    def load_transform(self):  # -> blase.transform.Transform
        from blase.transform import Transform

        return Transform.load(self.path / "transform.json", project_root=self.path)


def _model_spec(folder: Path) -> dict[str, Any]:
    try:
        spec = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError) as exc:
        raise DeployError(f"{folder / 'model.json'} cannot be read: {exc}",
                          hint="redeploy the run with `blase deploy RUN`") from None
    return spec if isinstance(spec, dict) else {}


def _package_file(folder: Path, rel: str, what: str) -> Path:
    """``folder/rel`` when ``rel`` is a relative path that stays inside ``folder``."""
    path = folder / rel
    if not rel or Path(rel).is_absolute() or not _is_inside(path, folder):
        raise DeployError(f"{folder}: the {what} {rel!r} is not a file inside the package",
                          hint="redeploy the run with `blase deploy RUN`")
    if not path.is_file():
        raise DeployError(f"{folder} has no copy of its {what} {rel}",
                          hint="the package predates script copies; redeploy the run with `blase deploy RUN`")
    return path


def _is_inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def build_package(
    project: Project,
    *,
    name: str,
    run_id: str,
    train_dir: Path,
    transform_file: Path,
    manifest_file: Path,
    input_schema: dict[str, str],
    extract_options: dict[str, Any],
    metrics: dict[str, Any],
    baseline: dict[str, Any],
    hashes: dict[str, str],
    environment: dict[str, Any],
    onnx: bool = True,
) -> ModelPackage:
    """Write ``models/NAME/vN/`` from the outputs of a pipeline run."""
    from blase.config import check_model_name
    from blase.prepare import read_manifest

    try:
        check_model_name(name)
    except ValueError as exc:
        raise DeployError(str(exc), hint="pass --name NAME to `blase deploy`, or set deploy.name "
                          "in blase.yaml") from None
    manifest = read_manifest(manifest_file)
    version, staging = reserve_version(project.models_dir / name)
    folder = staging.parent
    try:
        for file in ("model.json", *_model_files(train_dir)):
            source = train_dir / file
            if not source.is_file():
                raise DeployError(
                    f"run {run_id} has no {file} in {train_dir}",
                    hint="the train step did not finish; run `blase run --from train` first",
                )
            (staging / file).parent.mkdir(parents=True, exist_ok=True)  # an ensemble's members/
            shutil.copyfile(source, staging / file)
        shutil.copyfile(transform_file, staging / "transform.json")
        _copy_user_code(project, transform_file, staging)
        _copy_model_script(project, staging)
        shutil.copyfile(manifest_file, staging / "manifest.json")
        info: dict[str, Any] = {
            "package_version": PACKAGE_VERSION,
            "name": name,
            "version": version,
            "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "task": manifest.task,
            "label": manifest.label,
            "classes": manifest.classes,
            "label_mapping": manifest.label_mapping,
            "features": manifest.features,
            "input_schema": input_schema,
            "extract_options": extract_options,
            "metrics": metrics,
            "baseline": baseline,
            "lineage": {"run_id": run_id, "hashes": hashes, "project": str(project.root)},
            "environment": environment,
            "onnx": None,
            "model_files": _model_files(staging),
        }
        if onnx:
            info["onnx"] = _export_onnx(staging, manifest.n_features)
        (staging / "README.md").write_text(_model_card(info))
        info = _sealed(staging, info)
        write_json_atomic(staging / "package.json", info, default=str, newline=False)
        final = folder / version
        os.replace(staging, final)  # `final` is reserved and absent: a version is never overwritten
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("packaged %s %s at %s", name, version, final)
    return ModelPackage(final, name, version, info)


def _copy_user_code(project: Project, transform_file: Path, staging: Path) -> None:
    """Copy the user scripts a transform calls, so the package runs without the project."""
    state = json.loads(Path(transform_file).read_text())
    for op in state.get("operations", []):
        ref = (op.get("params") or {}).get("ref") or op.get("ref")
        if not isinstance(ref, str) or ":" not in ref:
            continue
        rel = ref.rpartition(":")[0]
        source = project.root / rel
        if not Path(rel).is_absolute() and _is_inside(source, project.root) and source.is_file():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def _copy_model_script(project: Project, staging: Path) -> None:
    """Copy a script model's factory file into the package: the package rebuilds the
    network from its own copy, never from a path recorded at training time."""
    spec = _model_spec(staging)
    if spec.get("kind") == "module":
        logger.warning("the model is a Python class (%s): the package needs --trust-package to "
                       "load; a factory script (train.model: scripts/model.py:fn) avoids that",
                       spec.get("class_path"))
    if spec.get("kind") != "script":
        return
    rel = str(spec.get("ref") or "").rpartition(":")[0]
    source = project.root / rel
    if not rel or Path(rel).is_absolute() or not _is_inside(source, project.root) or not source.is_file():
        raise DeployError(
            f"the model script {rel!r} is not a file inside the project {project.root}",
            hint="keep train.model inside the project (e.g. scripts/model.py:build_model) and "
            "`blase run` again",
        )
    target = staging / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _model_files(folder: Path) -> list[str]:
    """The model's own files that ``model.json`` names (inside the folder, never a path out)."""
    files = [str(f) for f in _model_spec(folder).get("files") or ["model.safetensors"]]
    for rel in files:
        if Path(rel).is_absolute() or not _is_inside(folder / rel, folder):
            raise DeployError(f"{folder / 'model.json'} names the model file {rel!r}, which is not inside "
                              "the model folder", hint="train again: `blase run --from train`")
    return files


def _export_onnx(staging: Path, n_features: int) -> dict[str, Any] | None:
    """Export to ONNX through the model's kind and check it against the model itself; None
    when onnx/onnxruntime are missing, ``exported: False`` with the reason when the kind has
    no export (the package then runs the model in its own format)."""
    import importlib.util

    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        logger.info("onnx/onnxruntime not installed: no ONNX export (pip install 'blase[onnx]')")
        return None
    import numpy as np
    import onnxruntime as ort

    from blase.model import ExportUnsupported, load_trained

    model = load_trained(staging)
    x = np.random.default_rng(0).normal(size=(64, n_features)).astype(np.float32)
    path = staging / "model.onnx"
    try:
        model.export_onnx(path, n_features)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {"features": x})[0]
        want = np.asarray(model.predict(x))
        diff = float(np.max(np.abs(got.reshape(want.shape) - want)))
    except ExportUnsupported as exc:
        path.unlink(missing_ok=True)
        logger.info("no ONNX export: %s", exc.message)
        return {"exported": False, "error": exc.message}
    except Exception as exc:  # an export failure must not block a deploy of the model itself
        path.unlink(missing_ok=True)
        logger.warning("ONNX export failed (%s); the package keeps the model's own files only", exc)
        return {"exported": False, "error": f"{type(exc).__name__}: {exc}"}
    # float32 scores in the label's units (a price in the 10,000s) differ by their rounding
    ok = diff <= 1e-4 * max(1.0, float(np.max(np.abs(want), initial=0.0)))
    if not ok:
        path.unlink(missing_ok=True)
        logger.warning("ONNX output differs from the model by %.3g; ONNX file dropped", diff)
    return {"exported": ok, "max_abs_diff": diff, "opset": None}


def _model_card(info: dict[str, Any]) -> str:
    metrics = info.get("metrics", {})
    baseline = info.get("baseline", {})
    lines = [
        f"# {info['name']} {info['version']}",
        "",
        f"A {info['task']} model predicting `{info['label']}`, deployed by Blase on {info['created_at']}.",
        "",
        "## Use",
        "",
        "```bash",
        f"blase predict {info['name']}@{info['version']} new_data.csv --out predictions.parquet",
        "```",
        "",
        "## Metrics on the test split",
        "",
        "| metric | model | baseline |",
        "| --- | ---: | ---: |",
    ]
    for key, value in metrics.items():
        if isinstance(value, (int, float)):
            base = baseline.get(key)
            shown = f"{base:.4g}" if isinstance(base, (int, float)) else ""
            lines.append(f"| {key} | {value:.4g} | {shown} |")
    lines += [
        "",
        "## Inputs",
        "",
        "| column | type |",
        "| --- | --- |",
        *[f"| {col} | {dtype} |" for col, dtype in info["input_schema"].items()],
        "",
        "## Lineage",
        "",
        f"- run: `{info['lineage']['run_id']}` (`blase inspect {info['lineage']['run_id']}`)",
        *[f"- {k}: `{v}`" for k, v in info["lineage"]["hashes"].items()],
        "",
        "## Files",
        "",
        f"{', '.join(f'`{f}`' for f in info.get('model_files', ['model.safetensors']))} (the model), "
        "`model.json` (what it is), `transform.json` (fitted "
        "transform), `manifest.json` (features and label mapping), `package.json` (all of the "
        "above in one place)" + (", `model.onnx`" if info.get("onnx", {}) and info["onnx"].get("exported") else "") + ".",
        "",
    ]
    return "\n".join(lines)


# -- integrity ---------------------------------------------------------------------------

#: Files a package folder may hold beyond the recorded ones (Python's bytecode cache of the
#: package's own scripts, temporary names of an atomic write).
_UNRECORDED = ("__pycache__",)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _info_digest(info: dict[str, Any]) -> str:
    body = {k: v for k, v in info.items() if k != "integrity"}
    text = json.dumps(json.loads(json.dumps(body, default=str)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _package_files(folder: Path) -> list[Path]:
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in _UNRECORDED or part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and rel.as_posix() != "package.json":
            out.append(path)
    return out


def _sealed(folder: Path, info: dict[str, Any]) -> dict[str, Any]:
    files = {p.relative_to(folder).as_posix(): _sha256(p) for p in _package_files(folder)}
    sealed = {k: v for k, v in info.items() if k != "integrity"}
    sealed["integrity"] = {"algorithm": "sha256", "files": files, "package_json": _info_digest(sealed)}
    return sealed


def seal_package(path: str | os.PathLike[str]) -> None:
    """Record the sha256 of every file of the package (and of package.json's own content)
    in package.json; call it again after adding a file to a package."""
    folder = Path(path)
    info = json.loads((folder / "package.json").read_text())
    write_json_atomic(folder / "package.json", _sealed(folder, info), default=str, newline=False)


def verify_package(path: Path, info: dict[str, Any]) -> None:
    """Check the files against the hashes recorded at deploy; a :class:`DeployError` names
    the first one that changed, went missing, or was added."""
    integrity = info.get("integrity")
    fix = "redeploy the run with `blase deploy RUN` (or restore the package from a backup)"
    if not isinstance(integrity, dict):
        logger.warning("%s records no file hashes (deployed by an older Blase): its files are not "
                       "verified; `blase deploy RUN` again to add them", path)
        return
    if integrity.get("package_json") != _info_digest(info):
        raise DeployError(f"{path / 'package.json'} was changed after deploy (its content no longer "
                          "matches the hash recorded in it)", hint=fix)
    recorded = dict(integrity.get("files") or {})
    present = {p.relative_to(path).as_posix(): p for p in _package_files(path)}
    for rel, digest in recorded.items():
        if rel not in present:
            raise DeployError(f"{path / rel} is missing from the package", hint=fix)
        if _sha256(present[rel]) != digest:
            raise DeployError(f"{path / rel} was changed after deploy (its sha256 differs from the "
                              "one recorded in package.json)", hint=fix)
    extra = sorted(set(present) - set(recorded))
    if extra:
        raise DeployError(f"{path / extra[0]} was added to the package after deploy", hint=fix)


def load_package(path: str | os.PathLike[str], *, verify: bool = True) -> ModelPackage:
    """Read a version folder; ``verify`` checks every file against the recorded hashes."""
    path = Path(path)
    meta = path / "package.json"
    if not meta.is_file():
        raise DeployError(f"{path} is not a model package (no package.json)",
                          hint="list deployed models with `blase models`")
    try:
        info = json.loads(meta.read_text())
    except json.JSONDecodeError as exc:
        raise DeployError(f"{meta} is damaged: {exc}", hint="redeploy the run with `blase deploy RUN`") from None
    check_format("package", info.get("package_version"), str(meta))
    if verify:
        verify_package(path, info)
    return ModelPackage(path, info["name"], info["version"], info)
