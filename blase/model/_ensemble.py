"""``train.model: ensemble``: a weighted average of a few kinds' predictions.

Averaging models that err differently (a penalised linear model, an MLP, boosted trees) is
the most reliable way to beat the best of them: what AutoGluon's weighted ensemble and
scikit-learn's ``VotingClassifier(voting="soft")`` / ``VotingRegressor`` do. Each member is
fitted as its own kind would be (early stopping, refit on train + val); predictions are
averaged as probabilities for classification (then returned as scores again: the log-odds
for binary, log-probabilities per class for multiclass, so evaluate, predict and monitor
read an ensemble like any kind) and as values for regression::

    train:
      model: ensemble
      options:
        members:
          - {kind: glm, weight: 0.6}
          - {kind: lightgbm, weight: 0.4}

``train.model: auto`` builds one when the blend of its candidates scores better than the
best single candidate on the same cross-validation (see :mod:`blase.model._auto`): the
weights come from greedy ensemble selection with replacement (Caruana et al., 2004) on the
candidates' out-of-fold predictions.

Each member is saved in its own folder under ``members/`` with its ``model.json``, and is
loaded by the kind that names, like any model: nothing in the package names code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from blase.model._contract import FitContext, FitReport, ModelKind
from blase.model._data import TrainingData
from blase.model._errors import ExportUnsupported, TrainError
from blase.model._spec import MODEL_JSON, ModelSpec, read_spec, write_spec

__all__ = ["EnsembleMember", "EnsembleModel", "EnsembleOptions", "blend_scores", "nll", "probabilities",
           "select_weights"]

MEMBERS = "members"


class EnsembleMember(BaseModel):
    """One model of an ensemble: its kind and its weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(description="a model kind (glm, mlp, lightgbm, a plugin's); not auto or ensemble")
    weight: float = Field(gt=0, description="its share of the average (weights are normalised)")
    options: dict[str, Any] = Field(default_factory=dict, description="its train.options")


class EnsembleOptions(BaseModel):
    """``train.options`` of ``train.model: ensemble``."""

    model_config = ConfigDict(extra="forbid")

    members: list[EnsembleMember] = Field(min_length=2, description="the kinds averaged, with their weights")

    @field_validator("members")
    @classmethod
    def _plain_kinds(cls, value: list[EnsembleMember]) -> list[EnsembleMember]:
        nested = [m.kind for m in value if m.kind in ("auto", "ensemble")]
        if nested:
            raise ValueError(f"{nested[0]!r} cannot be a member of an ensemble; name plain kinds (glm, mlp, ...)")
        return value


def _folder(i: int, kind: str) -> str:
    return f"{MEMBERS}/{i}-{kind}"


class EnsembleModel(ModelKind):
    """A weighted average of fitted kinds; options: :class:`EnsembleOptions`."""

    name = "ensemble"
    config_model = EnsembleOptions

    def __init__(self, options: EnsembleOptions | None = None) -> None:
        if options is None:
            raise TrainError("train.model ensemble needs train.options.members",
                             hint="e.g. members: [{kind: glm, weight: 0.5}, {kind: mlp, weight: 0.5}]")
        super().__init__(options)

    @property
    def opts(self) -> EnsembleOptions:
        return self.options  # type: ignore[return-value]

    def fit(self, data: TrainingData, ctx: FitContext) -> EnsembleModel:
        from blase.model._registry import model_kind

        fitted = []
        for i, member in enumerate(self.opts.members):
            kind = model_kind(member.kind, member.options, root=ctx.project_root, entries=ctx.plugins)
            folder = Path(ctx.out_dir) / _folder(i, member.kind)  # a torch member trains there
            folder.mkdir(parents=True, exist_ok=True)
            # members train from the start: the step keeps only its own folder's checkpoint for --resume
            sub = dataclasses.replace(ctx, out_dir=folder, init=None, resume=False, on_epoch_end=None)
            fitted.append(kind.fit(data, sub))
        return self.of_fitted(fitted, data)

    def of_fitted(self, members: list[ModelKind], data: TrainingData) -> EnsembleModel:
        """This ensemble made of ``members`` already fitted on ``data`` (one per
        ``options.members``, in order): what ``auto`` does with the candidates it fitted."""
        self.task_ = data.task
        self.members_ = list(members)
        self.specs_ = [m.describe(data) for m in self.members_]
        total = sum(m.weight for m in self.opts.members)
        self.weights_ = np.array([m.weight / total for m in self.opts.members])
        details: dict[str, Any] = {}
        warnings: list[str] = []
        for member, kind in zip(self.opts.members, self.members_, strict=True):
            report = getattr(kind, "report_", None) or FitReport()
            details[member.kind] = {k: v for k, v in report.details.items() if _small(v)}
            warnings.extend(f"{member.kind}: {w}" for w in report.warnings)
        val = _val_summary(self, data) if data.rows("val") else {}
        weights = {f"{i}-{m.kind}": round(float(w), 4)
                   for i, (m, w) in enumerate(zip(self.opts.members, self.weights_, strict=True))}
        self.report_ = FitReport(details={"members": details, "weights": weights,
                                          **({"best_metric": next(iter(val.values()))} if val else {})},
                                 history=[{"round": 1, **val}] if val else [], warnings=warnings)
        return self

    def save(self, folder: Path) -> None:
        for i, (member, kind, spec) in enumerate(zip(self.opts.members, self.members_, self.specs_, strict=True)):
            dst = Path(folder) / _folder(i, member.kind)
            dst.mkdir(parents=True, exist_ok=True)
            kind.save(dst)
            write_spec(dst, spec)

    def describe(self, data: TrainingData) -> ModelSpec:
        files = [f"{_folder(i, m.kind)}/{rel}" for i, (m, spec) in enumerate(zip(self.opts.members, self.specs_, strict=True))
                 for rel in [*spec.files, MODEL_JSON]]
        return super().describe(data).model_copy(update={"files": files})

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> EnsembleModel:
        from blase.model._registry import _project_around, kind_class

        model = cls(EnsembleOptions.model_validate(spec.options))
        model.task_, model.specs_ = spec.task, []
        root, entries = _project_around(Path(folder))
        model.members_ = []
        for i, member in enumerate(model.opts.members):
            sub = Path(folder) / _folder(i, member.kind)
            member_spec = read_spec(sub)
            if member_spec.kind in ("script", "module") or member_spec.name != member.kind:
                raise TrainError(f"{sub / MODEL_JSON} names {member_spec.kind} model {member_spec.name!r}, "
                                 f"not the ensemble's member {member.kind!r}",
                                 hint="train again: `blase run --from train`")
            model.members_.append(kind_class(member_spec, root=root, entries=entries).load(sub, member_spec))
            model.specs_.append(member_spec)
        total = sum(m.weight for m in model.opts.members)
        model.weights_ = np.array([m.weight / total for m in model.opts.members])
        return model

    def predict(self, x: np.ndarray) -> np.ndarray:
        return blend_scores([np.asarray(m.predict(x), dtype=np.float64) for m in self.members_],
                            self.weights_, self.task_).astype(np.float32)

    def export_onnx(self, path: Path, n_features: int) -> None:
        """One ONNX graph: each member's own export (prefixed ``m<i>_``) fed the same
        ``features``, then the weighted average as :func:`blend_scores` computes it.

        Raises
        ------
        ExportUnsupported
            When a member has no ONNX export, or the members' graphs cannot be joined.
        """
        import tempfile

        from blase.model._onnx_blend import join_members

        with tempfile.TemporaryDirectory(prefix="blase-ensemble-onnx-") as tmp:
            files = []
            for i, (member, kind) in enumerate(zip(self.opts.members, self.members_, strict=True)):
                file = Path(tmp) / f"{i}-{member.kind}.onnx"
                try:
                    kind.export_onnx(file, n_features)
                except ExportUnsupported as exc:
                    raise ExportUnsupported(f"the ensemble's member {member.kind!r}: {exc.message}",
                                            hint=exc.hint) from None
                files.append(file)
            join_members(files, [float(w) for w in self.weights_], self.task_, Path(path))

    def versions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for member in self.members_:
            out.update(member.versions())
        return out

    def code(self, root: Path | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for member in self.members_ if hasattr(self, "members_") else []:
            out.update(member.code(root))
        return out


def _small(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) or value is None


def _val_summary(model: EnsembleModel, data: TrainingData) -> dict[str, float]:
    """The blend's val loss (``val_rmse`` or ``val_logloss``)."""
    scores, labels = [], []
    for x, y in data.chunks("val"):
        scores.append(np.asarray(model.predict(x), dtype=np.float64))
        labels.append(np.asarray(y))
    z, y = np.concatenate(scores), np.concatenate(labels)
    if data.task == "regression":
        return {"val_rmse": float(np.sqrt(np.mean((z.reshape(len(y)) - y.astype(np.float64)) ** 2)))}
    p = probabilities(z, data.task)
    return {"val_logloss": float(np.mean(nll(p, y, data.task)))}


# ---------------------------------------------------------------------------- blending


def probabilities(scores: np.ndarray, task: str) -> np.ndarray:
    """What a kind's scores mean: the prediction (regression), P(class 1) (binary: one
    logit per row, or two through a softmax) or the class probabilities (multiclass)."""
    z = np.asarray(scores, dtype=np.float64)
    n = z.shape[0]
    if task == "regression":
        return z.reshape(n)
    if task == "binary":
        if z.ndim == 2 and z.shape[1] == 2:
            z = z[:, 1] - z[:, 0]
        return 1.0 / (1.0 + np.exp(-np.clip(z.reshape(n), -500, 500)))
    z = z.reshape(n, -1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


_EPS = 1e-15
#: The least probability the blend's scores take (the ONNX graph computes the same in float32).
_TINY = 1e-30


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def blend_scores(scores: list[np.ndarray], weights: np.ndarray, task: str) -> np.ndarray:
    """The weighted average of the members' predictions, as scores again: values for
    regression; log-probabilities for multiclass; for binary the log-odds of the average,
    ``log(sum w sigmoid(z)) - log(sum w sigmoid(-z))`` (no ``1 - p`` that rounds to 0 when a
    member is sure)."""
    if task == "regression":
        return np.asarray(sum(w * probabilities(s, task) for w, s in zip(weights, scores, strict=True)))
    if task == "binary":
        z = [np.asarray(s, dtype=np.float64) for s in scores]
        z = [(s[:, 1] - s[:, 0]) if s.ndim == 2 and s.shape[1] == 2 else s.reshape(len(s)) for s in z]
        yes = sum(w * _sigmoid(s) for w, s in zip(weights, z, strict=True))
        no = sum(w * _sigmoid(-s) for w, s in zip(weights, z, strict=True))
        return np.log(np.maximum(yes, _TINY)) - np.log(np.maximum(no, _TINY))
    p = sum(w * probabilities(s, task) for w, s in zip(weights, scores, strict=True))
    return np.log(np.maximum(p, _TINY))


def nll(p: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    if task == "binary":
        t = np.asarray(y, dtype=np.float64).reshape(len(p))
        q = np.clip(p, _EPS, 1 - _EPS)
        return -(t * np.log(q) + (1 - t) * np.log1p(-q))
    return -np.log(np.clip(p[np.arange(len(y)), np.asarray(y, dtype=np.int64)], _EPS, 1.0))


def select_weights(scores: dict[str, np.ndarray], y: np.ndarray, task: str, *, rounds: int = 25) -> dict[str, float]:
    """Greedy ensemble selection with replacement (Caruana et al., 2004): start from nothing,
    add the model whose addition lowers the blend's loss most, up to ``rounds`` times; each
    model's weight is its share of the picks. The loss is the one ``auto`` ranks candidates
    by: the squared error, or the error rate with the log loss breaking ties (as AutoGluon's
    weighted ensemble optimises the metric it is judged by). Ties keep the model earlier in
    ``scores`` (the simpler)."""
    names = list(scores)
    probs = {n: probabilities(s, task) for n, s in scores.items()}
    y = np.asarray(y)

    def loss(p: np.ndarray) -> tuple[float, float]:
        if task == "regression":
            return float(np.mean((p - y.astype(np.float64)) ** 2)), 0.0
        wrong = (p > 0.5) != (y > 0.5) if task == "binary" else p.argmax(axis=1) != y
        return float(np.mean(wrong)), float(np.mean(nll(p, y, task)))

    picks: dict[str, int] = dict.fromkeys(names, 0)
    total: np.ndarray | None = None
    for k in range(1, rounds + 1):
        trial = {n: loss(((total if total is not None else 0) + probs[n]) / k) for n in names}
        best = min(names, key=lambda n: (trial[n], names.index(n)))
        picks[best] += 1
        total = probs[best] if total is None else total + probs[best]
    return {n: c / rounds for n, c in picks.items() if c}
