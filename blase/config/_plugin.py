"""A plugin's own options in ``blase.yaml``: their model, and validation with line-aware errors.

Reading ``blase.yaml`` imports no plugin, so a plugin's options (``- op: winsorize`` and its
keys, ``data.options``, ``monitor.tests.numeric``) are kept as plain data by the config models
and validated here once the step that uses the plugin has loaded it. Errors are a
:class:`~blase.errors.ConfigError` naming the file, line and key, as any config error does.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from blase.config._load import plugin_options_error

__all__ = ["options_model", "validate_plugin_options"]


class _NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _from_signature(impl: type) -> type[BaseModel]:
    """A model of ``impl.__init__``'s keyword parameters (annotations and defaults kept)."""
    fields: dict[str, Any] = {}
    for p in list(inspect.signature(impl.__init__).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = Any if p.annotation is p.empty or isinstance(p.annotation, str) else p.annotation
        fields[p.name] = (annotation, ... if p.default is p.empty else p.default)
    return create_model(f"{impl.__name__}Options", __config__=ConfigDict(extra="forbid"), **fields)


def options_model(impl: Any, *, from_signature: bool = False) -> type[BaseModel]:
    """The pydantic model of a plugin implementation's options: its ``config_model`` class
    attribute; else, with ``from_signature`` (operations), one built from ``__init__``'s
    parameters; else a model that takes no options."""
    model = getattr(impl, "config_model", None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model
    if from_signature and isinstance(impl, type):
        return _from_signature(impl)
    return _NoOptions


def validate_plugin_options(model: type[BaseModel], options: dict[str, Any], *, at: tuple[str | int, ...],
                            what: str, config_path: str | Path | None = None) -> BaseModel:
    """``options`` validated by ``model``; a :class:`~blase.errors.ConfigError` naming the line
    and key of each problem (``at``: where they sit in ``blase.yaml``) when they are not valid."""
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        raise plugin_options_error(exc, at=at, options=dict(options), what=what,
                                   fields=list(model.model_fields), config_path=config_path) from None
