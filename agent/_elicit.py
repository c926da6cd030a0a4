"""The approval form ``blase mcp`` shows a person: approve, decline, or edit the arguments.

MCP elicitation asks for a flat object of primitive fields (string, number, integer, boolean,
a string enum). :func:`approval_form` turns a waiting :class:`~agent._calls.Proposal` into one:
``approve`` and ``note``, then one field per argument of the tool, typed from the tool's JSON
schema (enums keep their values) with the proposed value as its default. An argument that is
not a primitive (a list of overrides, a list of runs) is a text field holding JSON.

:func:`read_form` turns the person's answer back into the answer the gate takes
(:meth:`~agent._calls.CallGate.answer`): ``reject`` with the note, ``approve`` when no argument
changed, ``edit`` with the new arguments otherwise. A field left out keeps the proposed value;
an empty (or null) field clears an optional argument. The gate then validates the edit against the
tool's own pydantic model, exactly as for an edit in ``blase chat`` or ``blase ui``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from blase.tools import Tool

from ._calls import Proposal

__all__ = ["CONTROLS", "ApprovalForm", "approval_form", "read_form"]

#: The form's own fields; an argument with one of these names gets the suffix ``_argument``.
CONTROLS = ("approve", "note")
_PRIMITIVE = ("string", "integer", "number", "boolean")


@dataclass
class ApprovalForm:
    """An elicitation form for one proposal: its JSON schema and how fields map to arguments."""

    schema: dict[str, Any]
    #: form field -> tool argument
    arguments: dict[str, str] = field(default_factory=dict)
    #: form fields that hold JSON text (arguments that are not primitives)
    json_fields: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)
    #: form field -> the default it showed for an argument the proposal left out
    shown: dict[str, Any] = field(default_factory=dict)


def _plain(spec: dict[str, Any]) -> dict[str, Any]:
    """A property's schema without the ``null`` branch of an optional value."""
    branches = [b for b in spec.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        return {**{k: v for k, v in spec.items() if k != "anyOf"}, **branches[0]}
    return spec


def _field(name: str, spec: dict[str, Any], value: Any, has_value: bool) -> tuple[dict[str, Any], bool]:
    """One argument as a primitive form field (and whether it holds JSON text)."""
    spec = _plain(spec)
    about = spec.get("description", "")
    kind = spec.get("type")
    if kind in _PRIMITIVE:
        out: dict[str, Any] = {"type": kind, "title": name}
        if spec.get("enum") and kind == "string":
            out["enum"] = list(spec["enum"])
        default = value if has_value else spec.get("default")
        if default is not None:
            out["default"] = default
        if about:
            out["description"] = about
        return out, False
    example = json.dumps(value) if has_value else ""
    out = {"type": "string", "title": name,
           "description": (f"{about} " if about else "") + "As JSON (e.g. a list: [\"a\", \"b\"]); empty to leave out."}
    if example:
        out["default"] = example
    return out, True


def approval_form(p: Proposal, tool: Tool) -> ApprovalForm:
    """The form for proposal ``p`` of ``tool``: approve, note, and every argument to edit."""
    params = tool.schema()["function"]["parameters"]
    properties: dict[str, Any] = {
        "approve": {"type": "boolean", "title": "Approve", "description": "Run this call now (with the values below)?"},
        "note": {"type": "string", "title": "Note", "description": "Optional: why, or what to do instead."},
    }
    form = ApprovalForm(schema={})
    for name, spec in (params.get("properties") or {}).items():
        key = f"{name}_argument" if name in CONTROLS else name
        properties[key], is_json = _field(name, spec, p.args.get(name), name in p.args)
        form.arguments[key] = name
        if name not in p.args and "default" in properties[key]:
            form.shown[key] = properties[key]["default"]
        if is_json:
            form.json_fields.add(key)
        if name in (params.get("required") or []):
            form.required.add(name)
    form.schema = {"type": "object", "properties": properties, "required": ["approve"]}
    return form


def read_form(p: Proposal, form: ApprovalForm, content: dict[str, Any] | None, *, by: str) -> dict[str, Any]:
    """The gate's answer (``action``, ``args``, ``note``, ``by``) from the person's form."""
    content = content or {}
    note = str(content.get("note") or "").strip() or None
    if content.get("approve") is not True:
        return {"action": "reject", "by": by, "note": note}
    args = dict(p.args)
    for key, name in form.arguments.items():
        if key not in content:
            continue
        value = content[key]
        if key in form.shown and value == form.shown[key]:
            continue  # the tool's default, shown and left alone
        if (value is None or (isinstance(value, str) and not value.strip())) and name not in form.required:
            args.pop(name, None)  # cleared: the tool's default applies
            continue
        if key in form.json_fields and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass  # the gate's validation names the argument and the type it needs
        args[name] = value
    if args == p.args:
        return {"action": "approve", "by": by, "note": note}
    return {"action": "edit", "args": args, "by": by, "note": note}
