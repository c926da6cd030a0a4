"""Step keys: what a step's result depends on, as named components and one digest.

A key is a flat mapping of *components* (``config.train.lr``, ``code.scripts/model.py:f``,
``data.data/flights.csv``, ``input.prepare``, ``env.torch``, ...) to JSON values, and the
digest of that mapping. Keeping the components, not only the digest, lets Blase say *why* a
step runs again: :func:`explain` compares two component sets and names what changed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from blase._version import __version__
from blase.hashing import code_hash, environment_fingerprint, hash_config
from blase.steps import Step, StepContext

__all__ = ["UNCACHEABLE", "StepKey", "explain", "flatten_components", "step_key"]

logger = logging.getLogger(__name__)

#: Components with this value make a key that is never looked up (unhashable inputs).
UNCACHEABLE = "<uncacheable>"


@dataclass(frozen=True)
class StepKey:
    """A step's cache key: its digest and the named components it hashes."""

    step: str
    digest: str
    components: dict[str, Any] = field(default_factory=dict)

    @property
    def cacheable(self) -> bool:
        return UNCACHEABLE not in self.components.values()

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "key": self.digest, "components": dict(self.components)}


def flatten_components(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Dicts by key and lists of dicts by index; other lists stay whole values."""
    if isinstance(value, Mapping):
        if not value:
            out[prefix] = {}
        for k, v in value.items():
            flatten_components(f"{prefix}.{k}", v, out)
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for i, v in enumerate(value):
            flatten_components(f"{prefix}[{i}]", v, out)
    else:
        out[prefix] = value


@functools.lru_cache(maxsize=1)
def _environment() -> tuple[tuple[str, Any], ...]:
    fp = environment_fingerprint()
    env: dict[str, Any] = {
        "env.python": fp["python"]["version"],
        "env.platform": f"{fp['platform']['system']}-{fp['platform']['machine']}",
    }
    for name, version in sorted(fp["packages"].items()):
        if name != "blase":
            env[f"env.{name}"] = version
    return tuple(env.items())


def step_key(step: Step, ctx: StepContext, upstream: Mapping[str, str] | None = None) -> StepKey:
    """The cache key of ``step`` in the run ``ctx`` describes.

    The components: the step's name, :attr:`~blase.steps.Step.version` and Blase's version;
    ``config.*``, the sections of the config it reads (:meth:`~blase.steps.Step.config_sections`);
    ``code.<ref>``, the code hash of each user function it calls (:meth:`~blase.steps.Step.code`);
    what :meth:`~blase.steps.Step.cache_inputs` adds (raw data files, the device);
    ``input.<step>``, the output digest of each step it reads (``upstream``); and ``env.*``,
    the key package versions.
    """
    parts: dict[str, Any] = {"step": step.name, "step_version": step.version, "blase": __version__}
    flatten_components("config", dict(step.config_sections(ctx.config)), flat := {})
    parts |= flat
    for ref, obj in step.code(ctx).items():
        parts[f"code.{ref}"] = code_hash(obj, project_root=ctx.code_root).digest
    parts |= dict(step.cache_inputs(ctx))
    for name in step.needs:
        parts[f"input.{name}"] = (upstream or {}).get(name, UNCACHEABLE)
    parts |= dict(_environment())
    return StepKey(step.name, hash_config(parts), parts)


# --------------------------------------------------------------------------- reasons


def _short(value: Any) -> str:
    text = str(value)
    if isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value):
        return value[:8]
    return text if len(text) <= 40 else text[:37] + "..."


def explain(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """Why a key with components ``new`` differs from one with ``old``, one line per change.

    ``transform: scripts/transforms.py:clean changed``-style texts: config values as
    ``train.lr 0.001 -> 0.01``, code as ``<ref> changed``, data as ``<file> changed``,
    upstream outputs as ``<step> output changed``, packages as ``torch 2.1 -> 2.2``.
    """
    if not old:
        return ["no earlier result"]
    reasons: list[str] = []
    for name in sorted(set(old) | set(new), key=_order):
        a, b = old.get(name, None), new.get(name, None)
        if a == b:
            continue
        kind, _, rest = name.partition(".")
        if name not in old:
            reasons.append(f"{rest or name} added" if kind in ("code", "data") else f"{rest or name} = {_short(b)}")
        elif name not in new:
            reasons.append(f"{rest or name} removed")
        elif kind in ("code", "data"):
            reasons.append(f"{rest} changed")
        elif kind == "input":
            reasons.append(f"{rest} output changed")
        elif kind in ("config", "env"):
            reasons.append(f"{rest} {_short(a)} -> {_short(b)}")
        else:
            reasons.append(f"{name} {_short(a)} -> {_short(b)}")
    return reasons


def _order(name: str) -> tuple[int, str]:
    rank = {"data": 0, "code": 1, "config": 2, "input": 3, "env": 4}
    return rank.get(name.partition(".")[0], 5), name
