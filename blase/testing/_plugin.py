"""The plugin conformance suite: named checks per kind, run all at once.

::

    from blase.testing import check_plugin
    results = check_plugin(plugin)            # a blase.plugins.Plugin
    assert all(r.passed for r in results), [r for r in results if not r.passed]

A step plugin is run for real: a small project (the bundled penguins data) is run up to the
step the plugin follows, then the plugin's step runs twice on the same inputs. The checks:
the contract (a :class:`~blase.steps.Step` subclass named as its manifest, ``after`` and
``needs`` naming steps, a :class:`~blase.steps.StepOutput` dataclass), a JSON round trip of
its options and of its output, the same input giving the same files (by content hash), no
pickle among its files, and a clear error for options it does not know.

A model plugin is fitted for real on the same data, prepared into shards: the contract (a
:class:`~blase.model.ModelKind` subclass named as its manifest, naming its files), its options'
JSON round trip and refusal of unknown ones, scores of the right shape, the same scores after
a save and load, the same files from a second fit with the same seed, and no pickle.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CheckResult", "check_plugin", "plugin_checks"]

#: The first bytes of a pickle (protocols 2-5), which no plugin may write.
_PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@dataclass
class CheckResult:
    """One check of the suite."""

    name: str
    passed: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Check = Callable[[], str | None]  # returns a failure text, or None when the rule holds


def _hash_tree(folder: Path) -> dict[str, str]:
    from blase.hashing import hash_file

    return {p.relative_to(folder).as_posix(): hash_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _pickles(folder: Path) -> list[str]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(path, "rb") as f:
            head = f.read(2)
        if path.suffix in (".pkl", ".pickle", ".joblib") or head in _PICKLE_MAGIC:
            found.append(path.relative_to(folder).as_posix())
    return found


class _StepHarness:
    """A small real project run up to the step a plugin step follows."""

    def __init__(self, step: type) -> None:
        self.step = step
        self._ready: tuple[Any, Any, dict[str, Any]] | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix="blase-plugin-check-"))

    def inputs(self) -> tuple[Any, Any, dict[str, Any]]:
        if self._ready is None:
            from blase.pipeline import Pipeline
            from blase.scaffold import create_project
            from blase.steps import StepContext

            project = create_project(self.tmp / "proj")
            pipe = Pipeline(project, overrides=["train.epochs=2", "evaluate.plots=false"])
            upto = self.step.after or pipe.steps[-1]
            result = pipe.run(to_step=upto)
            inputs = {n: result.steps[n].output for n in self.step.needs if n in result.steps}
            ctx = StepContext(project=project, config=pipe.config, code_root=project.root)
            self._ready = (project, ctx, inputs)
        return self._ready

    def run(self, options: Any, folder: str) -> Any:
        _project, ctx, inputs = self.inputs()
        out = self.tmp / folder
        out.mkdir(parents=True, exist_ok=True)
        return self.step(options).run(inputs, out, ctx), out


def _step_checks(plugin: Any, step: Any) -> Iterator[tuple[str, Check]]:
    from pydantic import BaseModel, ValidationError

    from blase.steps import BUILTIN_STEPS, Step, StepOutput, StepResult

    def contract() -> str | None:
        if not (isinstance(step, type) and issubclass(step, Step)):
            return f"{plugin.target} is not a blase.steps.Step subclass"
        if getattr(step, "name", None) != plugin.name:
            return f"the step class is named {getattr(step, 'name', None)!r}, the manifest {plugin.name!r}"
        if step.after not in BUILTIN_STEPS:
            return f"after = {step.after!r} is not a built-in step ({', '.join(BUILTIN_STEPS)})"
        late = [n for n in step.needs if n not in BUILTIN_STEPS[: BUILTIN_STEPS.index(step.after) + 1]]
        if late:
            return f"needs {', '.join(late)}, which do not run before it"
        if not (isinstance(step.output_type, type) and issubclass(step.output_type, StepOutput)
                and dataclasses.is_dataclass(step.output_type)):
            return "output_type is not a StepOutput dataclass"
        return None

    yield "contract", contract
    if not (isinstance(step, type) and issubclass(step, Step)):
        return
    model = step.config_model
    options = model() if model is not None else None

    def options_round_trip() -> str | None:
        if model is None:
            return None
        if not issubclass(model, BaseModel):
            return "config_model is not a pydantic model"
        again = model.model_validate(json.loads(json.dumps(options.model_dump(mode="json"))))
        return None if again == options else f"options change in a JSON round trip: {options!r} -> {again!r}"

    def bad_options() -> str | None:
        if model is None:
            return None
        try:
            model.model_validate({"no_such_option__": 1})
        except ValidationError:
            return None
        return "an unknown option is accepted silently (set model_config = ConfigDict(extra='forbid'))"

    yield "options_round_trip", options_round_trip
    yield "bad_options_refused", bad_options
    harness = _StepHarness(step)
    runs: dict[str, tuple[Any, Path]] = {}

    def runs_on_real_inputs() -> str | None:
        runs["a"] = harness.run(options, "a")
        result = runs["a"][0]
        if not isinstance(result, StepResult) or not isinstance(result.output, step.output_type):
            return f"run() returned {type(result).__name__}, not a StepResult with a {step.output_type.__name__}"
        return None

    def output_round_trip() -> str | None:
        if "a" not in runs:
            return "not run"
        result, out = runs["a"]
        output = result.output.at(out)
        again = StepOutput.from_json(json.loads(json.dumps(output.to_json())))
        return None if again == output else f"the output changes in a JSON round trip: {output!r} -> {again!r}"

    def deterministic() -> str | None:
        if "a" not in runs:
            return "not run"
        runs["b"] = harness.run(options, "b")
        a, b = _hash_tree(runs["a"][1]), _hash_tree(runs["b"][1])
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        return None if not differ else f"the same input gave other files: {', '.join(differ)}"

    def no_pickle() -> str | None:
        found = [f for key in runs for f in _pickles(runs[key][1])]
        return None if not found else f"pickle files written: {', '.join(sorted(set(found)))}"

    yield "runs_on_real_inputs", runs_on_real_inputs
    yield "output_round_trip", output_round_trip
    yield "deterministic", deterministic
    yield "no_pickle", no_pickle


def _hooks_checks(plugin: Any, cls: Any) -> Iterator[tuple[str, Check]]:
    from blase.plugins import Hooks

    def contract() -> str | None:
        return None if isinstance(cls, type) and issubclass(cls, Hooks) else \
            f"{plugin.target} is not a blase.plugins.Hooks subclass"

    def future_kwargs() -> str | None:
        hook = cls()
        try:
            hook.on_step_start(step="extract", run_id="check", added_later=1)
            hook.on_step_end(step="extract", run_id="check", state="done", result={}, added_later=1)
            hook.on_run_end(run_id="check", status="finished", added_later=1)
        except TypeError as exc:
            return f"a hook does not take **future_kwargs: {exc}"
        return None

    yield "contract", contract
    if isinstance(cls, type) and issubclass(cls, Hooks):
        yield "future_kwargs", future_kwargs


def _operation_checks(plugin: Any, cls: Any) -> Iterator[tuple[str, Check]]:
    from blase.testing._operation import check_operation
    from blase.transform import Operation

    def contract() -> str | None:
        return None if isinstance(cls, type) and issubclass(cls, Operation) else \
            f"{plugin.target} is not a blase.transform.Operation subclass"

    def operation_contract() -> str | None:
        try:
            check_operation(cls())
        except AssertionError as exc:
            return str(exc)
        return None

    yield "contract", contract
    if isinstance(cls, type) and issubclass(cls, Operation):
        yield "operation_contract", operation_contract


class _ModelHarness:
    """The bundled penguins data prepared into shards by a small real project."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="blase-plugin-check-"))
        self._shards: Path | None = None

    def shards(self) -> Path:
        if self._shards is None:
            from blase.pipeline import Pipeline
            from blase.scaffold import create_project

            project = create_project(self.tmp / "proj")
            result = Pipeline(project).run(to_step="prepare")
            self._shards = result.steps["prepare"].output.root
        return self._shards

    def fit(self, kind: Any, folder: str) -> tuple[Any, Path]:
        from blase.model import FitContext, fit_model

        out = self.tmp / folder
        fit_model(kind, self.shards(), FitContext(out_dir=out, seed=42))
        return kind, out


def _model_checks(plugin: Any, cls: Any) -> Iterator[tuple[str, Check]]:
    from pydantic import BaseModel, ValidationError

    from blase.model import ModelKind, TrainingData, load_trained

    def contract() -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, ModelKind)):
            return f"{plugin.target} is not a blase.model.ModelKind subclass"
        if cls.name != plugin.name:
            return f"the model class is named {cls.name!r}, the manifest {plugin.name!r}"
        return None if cls.files else "files is empty: name the files save() writes"

    yield "contract", contract
    if not (isinstance(cls, type) and issubclass(cls, ModelKind)):
        return
    model = cls.config_model
    options = model() if model is not None else None

    def options_round_trip() -> str | None:
        if model is None:
            return None
        if not issubclass(model, BaseModel):
            return "config_model is not a pydantic model"
        again = model.model_validate(json.loads(json.dumps(options.model_dump(mode="json"))))
        return None if again == options else f"options change in a JSON round trip: {options!r} -> {again!r}"

    def bad_options() -> str | None:
        if model is None:
            return None
        try:
            model.model_validate({"no_such_option__": 1})
        except ValidationError:
            return None
        return "an unknown option is accepted silently (set model_config = ConfigDict(extra='forbid'))"

    yield "options_round_trip", options_round_trip
    yield "bad_options_refused", bad_options
    harness = _ModelHarness()
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
        again = load_trained(out).predict(x)
        same = np.allclose(np.asarray(again), np.asarray(fitted.predict(x)), rtol=1e-6, atol=1e-6)
        return None if same else "the model loaded from its folder predicts other scores than the fitted one"

    def deterministic() -> str | None:
        if "a" not in fits:
            return "not fitted"
        fits["b"] = harness.fit(cls(options), "b")
        a, b = _hash_tree(fits["a"][1]), _hash_tree(fits["b"][1])
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        return None if not differ else f"the same data and seed gave other files: {', '.join(differ)}"

    def no_pickle() -> str | None:
        found = [f for key in fits for f in _pickles(fits[key][1])]
        return None if not found else f"pickle files written: {', '.join(sorted(set(found)))}"

    yield "fits_and_predicts", fits_and_predicts
    yield "save_load_round_trip", save_load_round_trip
    yield "deterministic", deterministic
    yield "no_pickle", no_pickle


def plugin_checks(plugin: Any) -> Iterator[tuple[str, Check]]:
    """``(name, check)`` pairs for ``plugin`` (a :class:`~blase.plugins.Plugin`); a check
    returns None when its rule holds, else what is wrong."""
    from blase.plugins import PluginError

    try:
        impl = plugin.load()
    except PluginError as exc:
        message = exc.message

        yield "loads", lambda: message
        return
    yield "loads", lambda: None
    by_kind = {"step": _step_checks, "hooks": _hooks_checks, "operation": _operation_checks,
               "model": _model_checks}
    maker = by_kind.get(plugin.kind)
    if maker is None:
        kind = plugin.kind

        yield "kind_supported", lambda: f"blase {kind} plugins have no conformance checks yet"
        return
    yield from maker(plugin, impl)


def check_plugin(plugin: Any) -> list[CheckResult]:
    """Run every check of ``plugin``'s kind; a check that raises fails with the error."""
    results = []
    for name, check in plugin_checks(plugin):
        try:
            problem = check()
        except Exception as exc:  # the plugin broke: that is the finding
            problem = f"{type(exc).__name__}: {exc}"
        results.append(CheckResult(name, problem is None, problem or ""))
    return results
