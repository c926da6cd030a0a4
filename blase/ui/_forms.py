"""The builder's forms: a JSON schema for each step, section and transform operation.

The schemas are pydantic's own (``model_json_schema``) of the models that read ``blase.yaml``:
the section each built-in step reads, a plugin step's ``config_model``, the keys each built-in
operation reads (from :class:`~blase.config.TransformStep`), an operation plugin's options
model. The page turns each schema into a form.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from blase.config import (
    AgentConfig,
    DataConfig,
    DeployConfig,
    EvaluateConfig,
    MonitorConfig,
    PrepareConfig,
    ProjectConfig,
    RayConfig,
    TrackConfig,
    TrainConfig,
    TransformStep,
    UpdateConfig,
)
from blase.errors import BlaseError
from blase.project import Project

__all__ = ["SECTIONS", "operation_forms", "section_forms", "step_forms"]

#: The section of ``blase.yaml`` each built-in step reads, and its model (the built-in steps
#: read the project config; a plugin step has its own ``config_model``).
SECTIONS: dict[str, tuple[str, type[BaseModel]]] = {
    "extract": ("data", DataConfig),
    "transform": ("transform", TransformStep),
    "prepare": ("prepare", PrepareConfig),
    "train": ("train", TrainConfig),
    "evaluate": ("evaluate", EvaluateConfig),
    "deploy": ("deploy", DeployConfig),
}


def step_forms(project: Project, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The pipeline's steps in the registry's order, each with the section of blase.yaml it
    reads (``data``, ..., or ``plugins[i]`` for a plugin step) and that section's JSON schema
    (a plugin step's is its ``config_model``'s, for its ``options``)."""
    from blase.pipeline import Pipeline
    from blase.steps import Step

    try:
        registry = Pipeline(project).registry
    except BlaseError:  # an invalid file still opens: `blase check`'s problems say why
        return [{"name": n, "origin": "blase", "section": s, "schema": _section_schema(n, m)}
                for n, (s, m) in SECTIONS.items()]
    plugins = {}
    if any(name not in SECTIONS for name in registry.order()):
        plugins = {p.load_class(Step).name: p for p in project.plugins().active("step")}
    entries = doc.get("plugins") if isinstance(doc.get("plugins"), list) else []
    forms = []
    for name in registry.order():
        form: dict[str, Any] = {"name": name, "origin": registry.origin(name), "section": None, "schema": None}
        if name in SECTIONS:
            form.update(section=SECTIONS[name][0], schema=_section_schema(name, SECTIONS[name][1]))
        elif name in plugins:
            refs = [e if isinstance(e, str) else (e.get("path") or e.get("name")) for e in entries]
            at = next((i for i, ref in enumerate(refs) if ref in (plugins[name].name, plugins[name].origin)), None)
            model = type(registry.get(name)).config_model
            if at is not None and model is not None:
                form.update(section=f"plugins[{at}]", entry=at, schema=model.model_json_schema())
        forms.append(form)
    return forms


#: The sections of blase.yaml no step reads, edited on their own (the top-level keys as "project").
OTHER_SECTIONS: dict[str, type[BaseModel]] = {
    "monitor": MonitorConfig, "update": UpdateConfig, "track": TrackConfig, "agent": AgentConfig,
    "ray": RayConfig,
}


def section_forms() -> list[dict[str, Any]]:
    """Forms of what no step reads: the top-level keys (``project``, ``seed``, ``memory``,
    ``executor``; section ``""``) and ``monitor:``, ``update:``, ``track:``, ``agent:``, ``ray:``."""
    top = ProjectConfig.model_json_schema()
    scalars = {k: v for k, v in top["properties"].items() if k in ("project", "seed", "memory", "executor")}
    forms = [{"name": "project", "section": "", "schema": {"type": "object", "properties": scalars,
                                                           "required": ["project"]}}]
    forms += [{"name": name, "section": name, "schema": model.model_json_schema()}
              for name, model in OTHER_SECTIONS.items()]
    return forms


def _section_schema(step: str, model: type[BaseModel]) -> dict[str, Any] | None:
    return None if step == "transform" else model.model_json_schema()  # transform: one form per operation


def operation_forms(project: Project) -> dict[str, dict[str, Any]]:
    """``{op: {"schema": JSON schema, "kind": builtin|call|plugin, "help": text}}``: the form
    of each built-in operation (the keys it reads, from :class:`~blase.config.TransformStep`),
    of a user function (``call``), and of each operation plugin the project can use (its
    options model)."""
    from blase.config import BUILTIN_OPS
    from blase.transform import OPERATIONS, UserFunction

    full = TransformStep.model_json_schema()
    props = full["properties"]
    keys: dict[str, tuple[str, ...]] = TransformStep._OP_KEYS
    forms: dict[str, dict[str, Any]] = {}
    for op in BUILTIN_OPS:
        forms[op] = {"kind": "builtin", "help": _first_line(OPERATIONS[op].__doc__), "schema": _object(
            {k: props[k] for k in keys.get(op, ())} | {"params": props["params"]}, full.get("$defs"))}
    forms["call"] = {"kind": "call", "help": _first_line(UserFunction.__doc__),
                     "schema": _object({"call": props["call"], "params": props["params"]}, None, required=["call"])}
    forms.update(_plugin_forms(project))
    return forms


def _plugin_forms(project: Project) -> dict[str, dict[str, Any]]:
    from blase.config import options_model
    from blase.transform import Operation

    forms: dict[str, dict[str, Any]] = {}
    try:
        plugins = project.plugins().of_kind("operation")
    except BlaseError:
        return forms
    for plugin in plugins:
        try:
            model = options_model(plugin.load_class(Operation, name_attr="op_name"), from_signature=True)
        except (BlaseError, ImportError):
            continue  # `blase check` names a plugin that does not load
        forms[plugin.name] = {"kind": "plugin", "schema": model.model_json_schema(),
                              "help": f"operation plugin {plugin.name} ({plugin.origin})"}
    return forms


def _first_line(doc: str | None) -> str:
    """A docstring's first sentence, without reST markup."""
    line = " ".join((doc or "").strip().split("\n\n")[0].split())
    return line.replace("``", "")


def _object(properties: dict[str, Any], defs: Any, required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": required or []}
    if defs:
        schema["$defs"] = defs
    return schema
