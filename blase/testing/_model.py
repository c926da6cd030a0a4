"""Conformance checks of the ``model`` plugin kind (see :func:`blase.testing.plugin_checks`).

A model kind is fitted on real shards (the bundled penguins data, prepared by a small real
project): the contract, its options' round trip and refusal of unknown ones, fit and predict
shapes, save then load giving the same scores, the same seed giving the same files, no
pickle, an ONNX export (where the kind has one) giving the model's scores, and an
``epochs_option`` that names one of its options.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from blase.testing._files import hash_tree as _hash_tree
from blase.testing._files import options_checks
from blase.testing._files import pickle_files as _pickles

__all__ = ["model_checks"]

Check = Callable[[], str | None]


class _ModelHarness:
    """A small real project's data prepared into shards: the project template the kind names
    (:attr:`~blase.model.ModelKind.check_template`; the penguins of ``tabular`` by default)."""

    def __init__(self, template: str = "tabular") -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="blase-plugin-check-"))
        self.template = template
        self._shards: Path | None = None

    def shards(self) -> Path:
        if self._shards is None:
            from blase.pipeline import Pipeline
            from blase.scaffold import create_project

            project = create_project(self.tmp / "proj", template=self.template)
            result = Pipeline(project).run(to_step="prepare")
            self._shards = result.steps["prepare"].output.root
        return self._shards

    def fit(self, kind: Any, folder: str) -> tuple[Any, Path]:
        from blase.model import FitContext, fit_model

        out = self.tmp / folder
        fit_model(kind, self.shards(), FitContext(out_dir=out, seed=42))
        return kind, out


def model_checks(plugin: Any, cls: Any) -> Iterator[tuple[str, Check]]:

    from blase.model import ModelKind, TrainingData, read_spec

    def reload(out: Path) -> Any:
        # the class under check reads its own folder (a project plugin is not found by name
        # from the harness's scratch project, so no registry lookup)
        return cls.load(out, read_spec(out))

    def contract() -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, ModelKind)):
            return f"{plugin.target} is not a blase.model.ModelKind subclass"
        if cls.name != plugin.name:
            return f"the model class is named {cls.name!r}, the manifest {plugin.name!r}"
        return None if cls.files else "files is empty: name the files save() writes"

    yield "contract", contract
    if not (isinstance(cls, type) and issubclass(cls, ModelKind)):
        return
    template, given = cls.example() or ("tabular", {})
    options = cls.config_model(**given) if cls.config_model is not None else None
    yield from options_checks(cls.config_model)
    harness = _ModelHarness(template)
    fits: dict[str, tuple[Any, Path]] = {}

    def fits_and_predicts() -> str | None:
        fits["a"] = harness.fit(cls(options), "a")
        data = TrainingData(harness.shards())
        x, _ = data.matrix("test")
        scores = np.asarray(fits["a"][0].predict(x))
        want = {(len(x),), (len(x), data.n_outputs)}
        if scores.shape not in want:
            return f"predict gave shape {list(scores.shape)} for {len(x)} rows; want [n] or [n, {data.n_outputs}]"
        return None if np.isfinite(scores).all() else "predict gave NaN or infinite scores"

    def save_load_round_trip() -> str | None:
        if "a" not in fits:
            return "not fitted"
        fitted, out = fits["a"]
        x, _ = TrainingData(harness.shards()).matrix("test")
        again = reload(out).predict(x)
        same = np.allclose(np.asarray(again), np.asarray(fitted.predict(x)), rtol=1e-6, atol=1e-6)
        return None if same else "the model loaded from its folder predicts other scores than the fitted one"

    def deterministic() -> str | None:
        if "a" not in fits:
            return "not fitted"
        fits["b"] = harness.fit(cls(options), "b")
        # the files a package keeps (training logs such as history.json hold times)
        kept = {"model.json", *cls.files}
        a, b = _hash_tree(fits["a"][1]), _hash_tree(fits["b"][1])
        differ = sorted(k for k in set(a) | set(b) if k in kept and a.get(k) != b.get(k))
        return None if not differ else f"the same data and seed gave other files: {', '.join(differ)}"

    def no_pickle() -> str | None:
        found = [f for key in fits for f in _pickles(fits[key][1])]
        return None if not found else f"pickle files written: {', '.join(sorted(set(found)))}"

    def onnx_export() -> str | None:
        import importlib.util

        from blase.model import ExportUnsupported

        if "a" not in fits or importlib.util.find_spec("onnxruntime") is None:
            return None if "a" in fits else "not fitted"
        import onnxruntime as ort

        fitted, out = fits["a"]
        x, _ = TrainingData(harness.shards()).matrix("test")
        try:  # from the saved folder, as deploy exports it
            exporter = reload(out)
        except Exception:  # save_load_round_trip reports a folder that does not load
            exporter = fitted
        try:
            exporter.export_onnx(out / "check.onnx", x.shape[1])
        except ExportUnsupported:
            return None  # optional: the package then runs the model in its own format
        session = ort.InferenceSession(str(out / "check.onnx"), providers=["CPUExecutionProvider"])
        got, want = np.asarray(session.run(None, {"features": x})[0]), np.asarray(fitted.predict(x))
        if got.size != want.size or not np.allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-4):
            return "export_onnx wrote a model whose scores differ from predict's (input `features`, first output the scores)"
        return None

    def epochs_option() -> str | None:
        name = cls.epochs_option
        if name is None:
            return None
        fields = cls.config_model.model_fields if cls.config_model is not None else {}
        return None if name in fields else (f"epochs_option names {name!r}, which is not one of the options "
                                            f"({', '.join(sorted(fields)) or 'none'})")

    yield "fits_and_predicts", fits_and_predicts
    yield "save_load_round_trip", save_load_round_trip
    yield "deterministic", deterministic
    yield "no_pickle", no_pickle
    yield "onnx_export", onnx_export
    yield "epochs_option", epochs_option


