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

from blase.testing._files import hash_tree as _hash_tree
from blase.testing._files import options_checks
from blase.testing._files import pickle_files as _pickles
from blase.testing._kinds import drift_test_checks, operation_checks, source_checks
from blase.testing._model import model_checks

__all__ = ["CheckResult", "check_plugin", "plugin_checks"]

#: The first bytes of a pickle (protocols 2-5), which no plugin may write.


@dataclass
class CheckResult:
    """One check of the suite."""

    name: str
    passed: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


Check = Callable[[], str | None]  # returns a failure text, or None when the rule holds


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

            template, overrides = self.step.example() or ("tabular", ["train.epochs=2"])
            project = create_project(self.tmp / "proj", template=template)
            pipe = Pipeline(project, overrides=[*overrides, "evaluate.plots=false"])
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
    options = step.config_model() if step.config_model is not None else None
    yield from options_checks(step.config_model)
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
    by_kind = {"step": _step_checks, "hooks": _hooks_checks, "operation": operation_checks,
               "source": source_checks, "drift_test": drift_test_checks, "model": model_checks}
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
