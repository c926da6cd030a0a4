"""The model contract: what every kind of model (built-in or a plugin's) does.

A kind follows scikit-learn's habits: ``__init__`` only stores the validated options, ``fit``
learns (state in attributes ending in ``_``) and returns ``self``, ``save`` writes the
learned state into a folder in the library's own format (never pickle), the class method
``load`` reads it back, and ``predict`` maps a float32 feature matrix to scores::

    class MyModel(ModelKind):
        name = "my_model"               # train.model: my_model
        config_model = MyOptions        # train.options, a pydantic model (extra="forbid")
        files = ("model.txt",)          # what save() writes

        def fit(self, data, ctx):       # data: TrainingData; ctx: FitContext
            ...
            self.booster_ = ...
            self.report_ = FitReport(details={...}, history=[...])
            return self

        def save(self, folder): ...
        @classmethod
        def load(cls, folder, spec): ...
        def predict(self, x): ...       # float32 [n, d] -> scores

Scores are what the built-in models give, so evaluate, predict and monitor read every kind
alike: one logit per row for binary (or two, through a softmax), one logit per class for
multiclass, the prediction for regression. Blase writes ``model.json`` (:class:`ModelSpec`)
beside the files, naming the kind by :attr:`ModelKind.name`; a package is loaded by that name
from the registry, never from a code path recorded in it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel

from blase.model._data import TrainingData
from blase.model._errors import ExportUnsupported
from blase.model._spec import ModelSpec

__all__ = ["REFIT_AUTO_ROWS", "FitContext", "FitReport", "ModelKind"]

#: ``train.refit: auto`` refits on train + val when they hold at most this many rows.
REFIT_AUTO_ROWS = 50_000


@dataclass
class FitContext:
    """What a fit may know besides the data.

    Attributes
    ----------
    out_dir:
        The train step's folder: ``save`` writes here (a kind may keep checkpoints here).
    seed:
        The project's seed: the same seed, data and options give the same model bytes.
    train:
        The whole ``train:`` section (a :class:`~blase.config.TrainConfig`); the torch kinds
        read their shape and optimiser from it, a plugin reads :attr:`ModelKind.options`.
    init:
        A fitted model of the same kind to continue from (``blase update`` in finetune mode),
        given only to kinds whose :attr:`ModelKind.can_continue` is true.
    memory:
        The memory budget in bytes (None: the default share): how much data a kind may hold.
    tmp_dir:
        A scratch folder for the library's caches (removed after the fit).
    project_root:
        Where the project's code is: a kind or plugin resolves scripts and build functions
        here. Under ``blase reproduce`` with changed scripts this is a copy of the run's code
        snapshot, not the project.
    data_root:
        The project's own folder, for paths an option names that are not code (XGBoost's
        ``cache_dir``); None: ``project_root``.
    """

    out_dir: Path
    seed: int = 42
    train: Any = None
    init: ModelKind | None = None
    memory: int | None = None
    tmp_dir: Path | None = None
    project_root: Path | None = None
    data_root: Path | None = None
    track: Any = None
    resume: bool = False
    #: The project's ``plugins:`` entries (a kind that builds other kinds, such as ``auto``,
    #: finds project model plugins through them).
    plugins: list[Any] = field(default_factory=list)

    def refits(self, data: TrainingData) -> bool:
        """Whether ``train.refit`` asks to fit again on train + val once the val split has
        chosen what it chooses (epochs, rounds, a penalty): ``auto`` when they hold at most
        :data:`REFIT_AUTO_ROWS` rows; never without a val split."""
        if not data.rows("val"):
            return False
        setting = getattr(self.train, "refit", "auto") if self.train is not None else "auto"
        if setting == "auto":
            return data.rows("train") + data.rows("val") <= REFIT_AUTO_ROWS
        return bool(setting)
    on_epoch_end: Callable[..., None] | None = None


@dataclass
class FitReport:
    """What a fit tells the run, besides its files.

    ``details`` go into the train step's record (``best_iteration``, ``rounds``...);
    ``history`` holds one dict of metrics per epoch or boosting round (``{"round": 3,
    "val_logloss": 0.31}``), written to ``history.json`` and logged to the run (None: the
    kind wrote ``history.json`` itself); ``warnings`` are shown and recorded.
    """

    details: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] | None = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The step's input hashes when the kind knows better than the driver (a script's code).
    inputs: dict[str, str] = field(default_factory=dict)


class ModelKind(ABC):
    """A kind of model: fit on prepared shards, save, load, predict in batches.

    Class attributes
    ----------------
    name:
        What ``train.model`` calls it; the registry name ``model.json`` records.
    config_model:
        The pydantic model of ``train.options`` (``extra="forbid"``), or None for a kind
        without options.
    files:
        The files :meth:`save` writes (relative to the folder), which a package copies and
        hashes with ``model.json``.
    can_continue:
        Whether :meth:`fit` can continue from ``ctx.init`` (more boosting rounds, more
        epochs from the deployed weights); ``blase update`` retrains from scratch otherwise.
    epochs_option:
        The option of :attr:`config_model` that counts passes over the data (``epochs`` for a
        network, ``n_estimators`` for boosted trees). ``blase update`` sets it from
        ``update.epochs``: with :attr:`can_continue`, that many more epochs or rounds on top of
        the deployed model. None: the kind counts none, and ``update.epochs`` does not apply.
    check_template:
        The project template (``blase create --template``) whose data ``blase plugin check``
        fits the kind on: ``tabular`` (the penguins), ``images``...
    """

    name: ClassVar[str] = ""
    config_model: ClassVar[type[BaseModel] | None] = None
    files: ClassVar[tuple[str, ...]] = ()
    can_continue: ClassVar[bool] = False
    epochs_option: ClassVar[str | None] = None
    check_template: ClassVar[str] = "tabular"

    def __init__(self, options: BaseModel | None = None) -> None:
        self.options = options

    @classmethod
    def example(cls) -> tuple[str, dict[str, Any]] | None:
        """The project template whose bundled data the conformance checks (``blase plugin
        check``) fit on, and the options they use, for a kind that needs other data than the
        tabular template's (a policy for an environment). Default: :attr:`check_template` with
        the default options (None for ``tabular``)."""
        return None if cls.check_template == "tabular" else (cls.check_template, {})

    @abstractmethod
    def fit(self, data: TrainingData, ctx: FitContext) -> ModelKind:
        """Learn from ``data``'s train split (its val split for early stopping); set
        :attr:`report_`; return ``self``."""

    @abstractmethod
    def save(self, folder: Path) -> None:
        """Write the learned state (the files in :attr:`files`) into ``folder``."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, spec: ModelSpec) -> ModelKind:
        """The fitted model saved in ``folder`` (``spec`` is its ``model.json``)."""

    @abstractmethod
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores of a float32 batch ``[n, n_features]``: ``[n]`` or ``[n, n_outputs]``."""

    def export_onnx(self, path: Path, n_features: int) -> None:
        """Write the model as ONNX (input ``features``, float32 ``[batch, n_features]``).

        Raises
        ------
        ExportUnsupported
            When this kind has no ONNX export (the default).
        """
        raise ExportUnsupported(
            f"model kind {self.name!r} has no ONNX export",
            hint="the package keeps the model in its own format, which `blase predict` runs",
        )

    def code(self, root: Path | None) -> dict[str, Any]:
        """The project code this model calls, ``{"scripts/net.py:build": function}`` (a network
        factory its options name, resolved under ``root``, the project's code folder). The
        train step hashes it into its cache key (so an edit retrains) and snapshots the files
        with the run. Default: none."""
        return {}

    def cache_inputs(self) -> dict[str, str]:
        """What else decides the fitted model besides the data, ``train.options``, the seed and
        the versions of :attr:`~blase.plugins.Plugin.requires` (``{"keras_backend": "torch"}``
        when an environment variable picks it): keys of the train step's cache key, as
        ``env.<name>``. Default: none."""
        return {}

    def describe(self, data: TrainingData) -> ModelSpec:
        """``model.json`` for this fitted model. The default names the kind as a plugin
        (found again by :attr:`name`) with its options, files and library versions."""
        manifest = data.manifest
        options = self.options.model_dump(mode="json") if self.options is not None else {}
        return ModelSpec(
            kind="plugin", name=self.name, task=data.task, n_features=data.n_features,
            n_outputs=data.n_outputs, label=manifest.label, label_mapping=manifest.label_mapping,
            classes=manifest.classes, features=manifest.features, options=options,
            files=list(self.files), versions=self.versions(),
        )

    def versions(self) -> dict[str, str]:
        """Versions of the libraries the model depends on (recorded in ``model.json``)."""
        return {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.predict(x)

    #: Set by :meth:`fit`.
    report_: FitReport
