"""Which steps a pipeline has, in which order, and where each came from.

The built-in steps are registered here exactly as a plugin's steps are (:meth:`StepRegistry.register`).
A plugin step names the step it follows (:attr:`~blase.steps.Step.after`); a name can be
registered once, so a plugin can never replace a built-in step, and two plugins claiming one
name is an error naming both.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from blase.errors import BlaseError
from blase.steps import BUILTIN_STEPS, Step

__all__ = ["StepRegistry", "StepRegistryError", "default_registry", "project_registry"]


class StepRegistryError(BlaseError):
    """A step cannot be registered or found (a taken name, an unknown ``after``)."""


class StepRegistry:
    """Steps by name, with their origin (``blase`` for the built-ins, a plugin's name)."""

    def __init__(self) -> None:
        self._steps: dict[str, type[Step]] = {}
        self._origin: dict[str, str] = {}
        self._options: dict[str, Any] = {}

    def register(self, step: type[Step], *, origin: str, options: dict[str, Any] | None = None) -> None:
        """Add ``step`` (a :class:`~blase.steps.Step` subclass) from ``origin``, with the
        ``options`` blase.yaml gives it (validated by its ``config_model``)."""
        if not (isinstance(step, type) and issubclass(step, Step)):
            raise StepRegistryError(f"{origin}: {step!r} is not a blase.steps.Step subclass",
                                    hint="subclass blase.steps.Step and set name, needs and output_type")
        name = getattr(step, "name", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise StepRegistryError(f"{origin}: step class {step.__name__} has no valid name ({name!r})",
                                    hint="set `name = \"my_step\"` (an identifier) on the class")
        if name in self._steps:
            raise StepRegistryError(
                f"step {name!r} of {origin} is already registered by {self._origin[name]}",
                hint="a plugin cannot replace a step; give the plugin's step another name",
            )
        if origin != "blase":
            after = step.after
            if after is None or after not in self._steps:
                raise StepRegistryError(
                    f"step {name!r} of {origin} follows {after!r}, which is not a step",
                    hint=f"set `after` to one of: {', '.join(self._steps)}",
                )
            unknown = [n for n in step.needs if n not in self._steps]
            if unknown:
                raise StepRegistryError(f"step {name!r} of {origin} needs {', '.join(unknown)}, not a step",
                                        hint=f"steps: {', '.join(self._steps)}")
        self._options[name] = _validated(step, origin, options or {})
        self._steps[name] = step
        self._origin[name] = origin

    def order(self) -> tuple[str, ...]:
        """The pipeline's steps in the order they run: the built-ins, each plugin step right
        after the step it follows (in registration order when several follow one)."""
        ordered = [n for n in self._steps if self._origin[n] == "blase"]
        for name in self._steps:
            if self._origin[name] == "blase":
                continue
            anchor = self._steps[name].after
            at = ordered.index(anchor) + 1  # type: ignore[arg-type]
            while at < len(ordered) and self._steps[ordered[at]].after == anchor and self._origin[ordered[at]] != "blase":
                at += 1  # behind the plugin steps placed after the same step before it
            ordered.insert(at, name)
        return tuple(ordered)

    def get(self, name: str) -> Step:
        """A fresh instance of step ``name``."""
        try:
            return self._steps[name](self._options[name])
        except KeyError:
            raise self.unknown(name) from None

    def origin(self, name: str) -> str:
        return self._origin[name]

    def unknown(self, name: str) -> StepRegistryError:
        close = difflib.get_close_matches(name, list(self._steps), n=1)
        return StepRegistryError(
            f"unknown step {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
            hint=f"steps: {', '.join(self.order())}",
        )

    def __contains__(self, name: object) -> bool:
        return name in self._steps

    def __iter__(self) -> Iterable[str]:  # type: ignore[override]
        return iter(self.order())


def _validated(step: type[Step], origin: str, options: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    model = step.config_model
    if model is None:
        if options:
            raise StepRegistryError(f"step {step.name!r} of {origin} takes no options, but blase.yaml gives "
                                    f"{', '.join(sorted(options))}", hint="remove its `options:` in blase.yaml")
        return None
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(options)'}: {e['msg']}" for e in exc.errors())
        fields = ", ".join(model.model_fields)
        raise StepRegistryError(f"plugins: options of step {step.name!r} ({origin}) are not valid: {problems}",
                                hint=f"its options: {fields or 'none'}") from None


def default_registry() -> StepRegistry:
    """The built-in steps, registered as a plugin's are."""
    from blase.pipeline._builtin import BUILTIN

    registry = StepRegistry()
    for step in BUILTIN:
        registry.register(step, origin="blase")
    assert registry.order() == BUILTIN_STEPS
    return registry


def project_registry(root: Any, entries: list[Any]) -> tuple[StepRegistry, list[tuple[str, Any]]]:
    """The built-in steps plus the step plugins ``blase.yaml`` lists under ``plugins:``, and
    the hooks plugins it lists (``[(name, Hooks instance)]``)."""
    from blase.plugins import Hooks, plugin_set

    registry = default_registry()
    if not entries:
        return registry, []
    plugins = plugin_set(root, entries)
    for plugin in plugins.active("step"):
        step = plugin.load_class(Step)
        registry.register(step, origin=f"plugin {plugin.name} ({plugin.origin})", options=plugins.options.get(plugin.name))
    hooks: list[tuple[str, Any]] = []
    for plugin in plugins.active("hooks"):
        cls = plugin.load_class(Hooks, name_attr=None)
        hooks.append((plugin.name, cls()))
    return registry, hooks
