"""Step keys: what a step's result depends on, as named components and one digest.

A key is a flat mapping of *components* (``config.train.lr``, ``code.scripts/model.py:f``,
``data.data/flights.csv``, ``input.prepare``, ``env.torch``, ...) to JSON values, and the
digest of that mapping. Keeping the components, not only the digest, lets Blase say *why* a
step runs again: :func:`explain` compares two component sets and names what changed.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase._version import __version__
from blase.hashing import StatCache, code_hash, environment_fingerprint, hash_config, hash_file
from blase.project import Project

__all__ = ["STEP_VERSIONS", "StepKey", "explain", "step_key"]

logger = logging.getLogger(__name__)

#: Bump a step's number when its behaviour changes in a way its config does not show.
STEP_VERSIONS: dict[str, int] = {"extract": 1, "transform": 2, "prepare": 2, "train": 1, "evaluate": 1}

#: The upstream steps whose *outputs* each step reads.
UPSTREAM: dict[str, tuple[str, ...]] = {
    "extract": (),
    "transform": ("extract",),
    "prepare": ("extract", "transform"),
    "train": ("prepare",),
    "evaluate": ("train", "prepare"),
}

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


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Dicts by key and lists of dicts by index; other lists stay whole values."""
    if isinstance(value, Mapping):
        if not value:
            out[prefix] = {}
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for i, v in enumerate(value):
            _flatten(f"{prefix}[{i}]", v, out)
    else:
        out[prefix] = value


def config_sections(step: str, config: Any) -> dict[str, Any]:
    """The parts of ``blase.yaml`` a step reads (and nothing it does not, such as memory)."""
    data = config.data.model_dump(mode="json")
    label_key = {"label": data.get("label"), "key": data.get("key")}
    if step == "extract":
        return {"data": {k: v for k, v in data.items() if k not in ("label", "key")}}
    if step == "transform":
        steps = [s.model_dump(mode="json", exclude_none=True) for s in config.transform]
        return {"transform": steps, "data": label_key}
    if step == "prepare":
        return {"prepare": config.prepare.model_dump(mode="json"), "seed": config.seed, "data": label_key}
    if step == "train":
        # The thread count changes the speed, not the weights (see blase.train's fit).
        return {"train": config.train.model_dump(mode="json", exclude={"threads"}), "seed": config.seed}
    if step == "evaluate":
        return {"evaluate": config.evaluate.model_dump(mode="json")}
    raise ValueError(f"step {step!r} has no cache key")


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


def _device(config: Any) -> str:
    """The device training runs on (results differ between CPU and each GPU model).

    Without a GPU in sight (no ``nvidia-smi`` device, not a Mac) ``auto`` means the CPU,
    which spares a cached run the import of torch.
    """
    import platform

    want = config.train.device
    if want == "cpu":
        return "cpu"
    if want == "auto" and "torch" not in sys.modules and platform.system() != "Darwin":
        gpu = environment_fingerprint().get("gpu") or {}
        if not gpu.get("devices"):
            return "cpu"
    from blase.train._device import resolve_device

    device = resolve_device(config.train.device)
    if device.type == "cuda":
        import torch

        return f"cuda:{torch.cuda.get_device_name(device)}"
    return device.type


def _data_files(config: Any, root: Path, stat_cache: StatCache) -> dict[str, Any]:
    from blase.extract._sources import resolve_source

    data = config.data
    fmt = None if data.format == "auto" else data.format
    source = resolve_source(data.source, format=fmt, base_dir=root, project_root=root)
    if source.format == "postgres" or not source.files:
        return {f"data.{data.source}": UNCACHEABLE}
    out: dict[str, Any] = {}
    for path in source.files:
        try:
            rel = Path(path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = str(path)
        out[f"data.{rel}"] = hash_file(path, cache=stat_cache)
    return out


def user_code(step: str, config: Any, code_root: Path) -> dict[str, Any]:
    """``{"scripts/x.py:func": object}`` for the user functions a step calls."""
    found: dict[str, Any] = {}
    if step == "transform":
        from blase.transform._user import load_reference

        for item in config.transform:
            if item.call:
                found[item.call] = load_reference(item.call, code_root)
    elif step == "train" and ":" in config.train.model:
        from blase.train._models import load_script_factory

        func, _ = load_script_factory(config.train.model, code_root)
        module = sys.modules.get(getattr(func, "__module__", ""))
        if module is not None:  # a location-free name, so a moved copy hashes the same
            module.__blase_code_name__ = config.train.model.rpartition(":")[0]  # type: ignore[attr-defined]
        found[config.train.model] = func
    return found


def step_key(
    step: str,
    config: Any,
    *,
    project_root: Path,
    code_root: Path | None = None,
    upstream: Mapping[str, str] | None = None,
    stat_cache: StatCache | None = None,
) -> StepKey:
    """The cache key of ``step`` under ``config``.

    Parameters
    ----------
    step:
        ``extract`` .. ``evaluate`` (``deploy`` is never cached).
    config:
        The resolved :class:`~blase.config.ProjectConfig`.
    project_root:
        Where the raw data paths start.
    code_root:
        Where user scripts are loaded from (default ``project_root``; reproduce points it at
        a snapshot of the scripts).
    upstream:
        ``{step: output digest}`` of the steps this one reads.
    stat_cache:
        Remembers file digests by stat, so unchanged raw files are not read again.
    """
    code_root = code_root or project_root
    parts: dict[str, Any] = {"step": step, "step_version": STEP_VERSIONS[step], "blase": __version__}
    _flatten("config", config_sections(step, config), flat := {})
    parts |= flat
    for ref, obj in user_code(step, config, code_root).items():
        parts[f"code.{ref}"] = code_hash(obj, project_root=code_root).digest
    if step == "extract":
        parts |= _data_files(config, project_root, stat_cache or StatCache.for_project(Project(project_root)))
    for name in UPSTREAM[step]:
        parts[f"input.{name}"] = (upstream or {}).get(name, UNCACHEABLE)
    parts |= dict(_environment())
    if step in ("train", "evaluate"):
        parts["env.device"] = _device(config)
    return StepKey(step, hash_config(parts), parts)


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
