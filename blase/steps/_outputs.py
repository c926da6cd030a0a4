"""Typed step outputs: what one step hands the steps after it.

A step writes its files into its output folder and returns one :class:`StepOutput` that names
them *relative to that folder*. The runner sets :attr:`StepOutput.root` to wherever the folder
is now (a step-store entry, a run's work folder after a failed store), so a result can move
without any path inside it being rewritten. Records keep outputs as JSON
(``{"type": "Shards", ...}``); :meth:`StepOutput.from_json` reads them back into the class
of that name, so a plugin's own output class round-trips too (class names are unique: a
second class with a taken name is refused when it is defined).

The built-in outputs are :class:`Extracted`, :class:`FittedTransform`, :class:`Shards`,
:class:`TrainedModel`, :class:`Evaluation` and :class:`Package`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from blase.errors import BlaseError

__all__ = [
    "Evaluation",
    "Extracted",
    "FittedTransform",
    "Package",
    "Shards",
    "StepOutput",
    "StepOutputError",
    "TrainedModel",
    "output_type",
]

_TYPES: dict[str, type[StepOutput]] = {}


class StepOutputError(BlaseError):
    """A step output record cannot be read (an unknown type, fields that do not fit)."""


@dataclass(kw_only=True)
class StepOutput:
    """Base of every step's output. Subclasses are dataclasses of JSON values; path fields
    are relative to :attr:`root` (use :meth:`path` to get a usable path)."""

    #: The step's output folder; set by whoever knows where it is, never recorded in a store.
    root: Path = field(default_factory=Path, compare=False, repr=False)

    type_name: ClassVar[str] = "StepOutput"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("type_name", cls.__name__)
        taken = _TYPES.get(name)
        if taken is not None and _where(taken) != _where(cls):
            raise StepOutputError(
                f"step output type {name!r} of {cls.__module__} is already defined by {taken.__module__}",
                hint="give the output class another name (or set its type_name)",
            )
        cls.type_name = name
        _TYPES[name] = cls

    def path(self, relative: str) -> Path:
        """``relative`` (a path the output names) inside the output folder."""
        return self.root / relative

    def at(self, root: str | Path) -> StepOutput:
        """A copy of this output whose folder is ``root``."""
        return dataclasses.replace(self, root=Path(root))

    def to_json(self, *, with_root: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type_name}
        for f in dataclasses.fields(self):
            if f.name != "root":
                data[f.name] = getattr(self, f.name)
        if with_root:
            data["dir"] = str(self.root)
        return data

    @staticmethod
    def from_json(data: dict[str, Any], *, root: str | Path | None = None) -> StepOutput:
        """The output a record describes; ``root`` wins over the record's ``dir``."""
        name = data.get("type")
        cls = _TYPES.get(str(name))
        if cls is None:
            raise StepOutputError(
                f"a step output of type {name!r} is recorded, but no loaded step defines it",
                hint="install (or list under `plugins:` in blase.yaml) the plugin whose step made it",
            )
        names = {f.name for f in dataclasses.fields(cls)} - {"root"}
        where = root if root is not None else data.get("dir") or "."
        try:
            return cls(root=Path(where), **{k: v for k, v in data.items() if k in names})
        except TypeError as exc:
            raise StepOutputError(f"the recorded {name} output does not fit its class: {exc}",
                                  hint="run the step again") from exc


def _where(cls: type) -> tuple[str, str]:
    """A class's defining file (or module) and name: the same file loaded twice, under two
    module names, defines the same class."""
    import sys

    module = sys.modules.get(cls.__module__)
    return (str(getattr(module, "__file__", None) or cls.__module__), cls.__qualname__)


def output_type(name: str) -> type[StepOutput] | None:
    """The output class recorded as ``name``, or None."""
    return _TYPES.get(name)


@dataclass(kw_only=True)
class Extracted(StepOutput):
    """Extract: the data as Parquet files in the output folder."""

    schema: dict[str, str] = field(default_factory=dict)
    #: The reader options extract used (the deployed model re-reads new data with them).
    options: dict[str, Any] = field(default_factory=dict)
    #: Content hash of each raw file read, by its path.
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root


@dataclass(kw_only=True)
class FittedTransform(StepOutput):
    """Transform: the fitted state (``transform.json``) that prepare and the model apply."""

    state: str = "transform.json"

    @property
    def state_file(self) -> Path:
        return self.path(self.state)


@dataclass(kw_only=True)
class Shards(StepOutput):
    """Prepare: train/val/test shards and their manifest."""

    manifest: str = "manifest.json"
    task: str = ""

    @property
    def shards_dir(self) -> Path:
        return self.root

    @property
    def manifest_file(self) -> Path:
        return self.path(self.manifest)


@dataclass(kw_only=True)
class TrainedModel(StepOutput):
    """Train: a model folder (``model.json`` and the model's files) its model kind loads."""

    #: ``model.json``'s kind: ``builtin``, ``plugin``, ``script`` or ``module``.
    kind: str = ""
    #: The model kind's registry name (``mlp``, ``xgboost``) or the factory's name.
    name: str = ""
    #: The model's own files beside ``model.json`` (the weights, ``model.ubj``...).
    files: list[str] = field(default_factory=list)

    @property
    def model_dir(self) -> Path:
        return self.root


@dataclass(kw_only=True)
class Evaluation(StepOutput):
    """Evaluate: metrics on a split, the baseline's, and the files it wrote."""

    split: str = "test"
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    predictions: str = ""
    plots: list[str] = field(default_factory=list)
    metrics_json: str = "metrics.json"

    @property
    def predictions_file(self) -> Path | None:
        return self.path(self.predictions) if self.predictions else None

    @property
    def plot_files(self) -> list[Path]:
        return [self.path(p) for p in self.plots]


@dataclass(kw_only=True)
class Package(StepOutput):
    """Deploy: the model version it made or found (root: the version's folder), or why none."""

    model: str = ""
    deployed: bool = False
    version: str | None = None
    promoted: bool = False
    reason: str = ""
    previous: str | None = None

    @property
    def package_dir(self) -> Path | None:
        return self.root if self.deployed and self.version else None
