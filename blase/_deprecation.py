"""One way to retire a public name: it keeps working, with a warning, for one minor version.

A name deprecated in 1.3 warns (``DeprecationWarning``, naming its replacement and the version
that removes it) through all of 1.3.x and is removed in 1.4.0. Every deprecation is registered,
and ``tests/test_deprecation.py`` fails once Blase's version reaches a removal that has not
happened, so none lingers::

    from blase import deprecated

    @deprecated(since="1.3", replacement="blase.deploy.predict")
    def score(...): ...

    warn_deprecated("--memory-limit", since="1.3", replacement="--memory")  # an option, a key
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Deprecation", "deprecated", "overdue", "registered", "removal_version", "warn_deprecated"]

T = TypeVar("T")


@dataclass(frozen=True)
class Deprecation:
    """``name`` works until ``removed_in`` (the minor version after ``since``), with a warning."""

    name: str
    since: str
    replacement: str | None = None

    @property
    def removed_in(self) -> str:
        return removal_version(self.since)

    def message(self) -> str:
        instead = f"; use {self.replacement} instead" if self.replacement else ""
        return f"{self.name} is deprecated since Blase {self.since} and is removed in {self.removed_in}{instead}"


_REGISTRY: dict[str, Deprecation] = {}


def _numbers(version: str) -> tuple[int, ...]:
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        raise ValueError(f"{version!r} is not a version like 1.3 or 1.3.2")
    return tuple(int(part or 0) for part in match.groups())


def removal_version(since: str) -> str:
    """The minor version after ``since``: 1.3 -> 1.4.0, 0.9.2 -> 0.10.0."""
    major, minor, _ = _numbers(since)
    return f"{major}.{minor + 1}.0"


def _register(name: str, since: str, replacement: str | None) -> Deprecation:
    removal_version(since)  # a bad version fails where it is written
    entry = _REGISTRY.setdefault(name, Deprecation(name, since, replacement))
    return entry


def warn_deprecated(name: str, *, since: str, replacement: str | None = None, stacklevel: int = 2) -> None:
    """Warn that ``name`` (an option, a config key, a keyword) is deprecated."""
    entry = _register(name, since, replacement)
    warnings.warn(entry.message(), DeprecationWarning, stacklevel=stacklevel + 1)


def deprecated(*, since: str, replacement: str | None = None, name: str | None = None) -> Callable[[T], T]:
    """Decorate a function or a class: calling it (or making one) warns, then runs as before."""

    def wrap(obj: Any) -> Any:
        label = name or f"{obj.__module__}.{obj.__qualname__}"
        entry = _register(label, since, replacement)
        if isinstance(obj, type):
            init = obj.__init__

            @functools.wraps(init)
            def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
                warnings.warn(entry.message(), DeprecationWarning, stacklevel=2)
                init(self, *args, **kwargs)

            obj.__init__ = __init__
            return obj

        @functools.wraps(obj)
        def call(*args: Any, **kwargs: Any) -> Any:
            warnings.warn(entry.message(), DeprecationWarning, stacklevel=2)
            return obj(*args, **kwargs)

        return call

    return wrap


def registered() -> list[Deprecation]:
    """Every deprecation declared so far (by the modules imported)."""
    return sorted(_REGISTRY.values(), key=lambda d: d.name)


def overdue(version: str) -> list[Deprecation]:
    """The deprecations that ``version`` should have removed."""
    return [d for d in registered() if _numbers(version) >= _numbers(d.removed_in)]
