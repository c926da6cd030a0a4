"""``train.model: glm``: ridge regression, or L2 logistic / softmax regression, fitted exactly.

The torch ``linear`` model learns by SGD for a fixed number of epochs, which on a small data
set leaves it short of the linear model scikit-learn users compare with (``RidgeCV``,
``LogisticRegression``): the gap is the penalty, which those choose or fix, not the model
class. This kind fits the same model class the way they do:

- **regression**: ridge in closed form from one pass over the shards (the sums ``X'X``,
  ``X'y``, ``y'y`` in float64, ``d x d`` memory whatever the rows), the intercept unpenalised;
  the penalty ``alpha`` is chosen from ``alphas`` by generalised cross-validation on the
  training rows (one eigen-decomposition serves every alpha: what ``RidgeCV`` does);
- **classification**: the penalised log-likelihood (binary logistic, or multinomial for more
  classes, sklearn's ``LogisticRegression`` with ``C = 1 / alpha``) minimised by L-BFGS, the
  gradient summed over the shards chunk by chunk (in memory when the rows fit a quarter of the
  memory budget); ``alpha`` is chosen by the val split's log loss, each fit warm-started from
  the previous, larger alpha, or on small data by cross-validation with the one-standard-error
  rule (see :func:`_cv_alpha`).

With a val split and ``train.refit`` (``auto``: at most 50,000 rows), the model is fitted again
on train + val with the chosen alpha, as the ``*CV`` estimators refit. ``train.class_weights:
balanced`` weighs the rows. Deterministic: the same shards give the same weights, bit for bit.
Weights are saved as ``model.safetensors`` (float64, safetensors), and the model exports to ONNX.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from blase.model._contract import FitContext, FitReport, ModelKind
from blase.model._data import TrainingData
from blase.model._errors import TrainError
from blase.model._spec import ModelSpec

__all__ = ["GLMModel", "GLMOptions"]

WEIGHTS_FILE = "model.safetensors"  # every model.* file but model.json is the weights (reproduce --verify)
#: Splits whose rows take at most this share of the memory budget are held in memory.
_IN_MEMORY_SHARE = 0.25
_DEFAULT_MEMORY = 2 << 30


class GLMOptions(BaseModel):
    """``train.options`` of ``train.model: glm``."""

    model_config = ConfigDict(extra="forbid")

    alpha: float | None = Field(
        default=None, gt=0, description="the L2 penalty; default: chosen from `alphas` (GCV for "
        "regression, the val split's log loss for classification)")
    alphas: list[float] = Field(
        default_factory=lambda: [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3],
        min_length=1, description="the penalties to choose from")
    max_iter: int = Field(default=500, ge=1, description="classification: L-BFGS iterations per fit")
    tol: float = Field(default=1e-6, gt=0, description="classification: L-BFGS gradient tolerance")
    cv_folds: int = Field(
        default=5, ge=0, description="classification: choose alpha by this many folds of "
        "cross-validation on train + val when they hold at most cv_rows rows (0 or 1: the val split)")
    cv_rows: int = Field(default=10_000, ge=0, description="the most rows (train + val) for cv_folds")


class GLMModel(ModelKind):
    """A linear model with its L2 penalty chosen like scikit-learn's; options: :class:`GLMOptions`."""

    name = "glm"
    config_model = GLMOptions
    files = (WEIGHTS_FILE,)

    def __init__(self, options: GLMOptions | None = None) -> None:
        super().__init__(options if options is not None else GLMOptions())

    # -- fit ---------------------------------------------------------------------------------

    def fit(self, data: TrainingData, ctx: FitContext) -> GLMModel:
        o: GLMOptions = self.options  # type: ignore[assignment]
        weighted = _class_weights(data, ctx.train)
        source = _Rows(data, ctx.memory, weighted)
        has_val = data.rows("val") > 0
        refit = ctx.refits(data)
        alphas = [o.alpha] if o.alpha is not None else sorted(o.alphas, reverse=True)
        scores: dict[str, float] = {}
        if data.task != "regression" and not has_val and o.alpha is None:
            alphas = [1.0]  # nothing to choose by: scikit-learn's C = 1
        if data.task == "regression":
            stats = _RidgeStats.of(source.chunks("train"), data.n_features)
            alpha, scores = (alphas[0], scores) if len(alphas) == 1 else stats.choose(alphas)
            w, b = stats.solve(alpha)
            val = _rmse(source, "val", w, b) if has_val else None
            if refit:
                both = stats + _RidgeStats.of(source.chunks("val"), data.n_features)
                if o.alpha is None:
                    alpha, scores = both.choose(alphas)
                w, b = both.solve(alpha)
            metric, how = "val_rmse", "generalised cross-validation on the training rows"
        else:
            k = data.n_outputs
            folds = _cv_folds(source, data, o, ctx.seed) if has_val and len(alphas) > 1 else None
            if folds is not None:
                alpha, scores = _cv_alpha(folds, data, k, alphas, o)
                how = f"{o.cv_folds}-fold cross-validation log loss on train + val, one-standard-error rule"
                w, b, _ = _logistic(source, ("train",), data.task, k, alpha, o, np.zeros((data.n_features + 1) * k))
                val = _logloss(source, "val", data.task, w, b)
            else:
                w, b, alpha, val = None, None, alphas[0], None
                how = "the val split's log loss"
                start = np.zeros((data.n_features + 1) * k)
                for a in alphas:  # the largest penalty first: each fit warm-starts the next
                    wa, ba, start = _logistic(source, ("train",), data.task, k, a, o, start)
                    loss = _logloss(source, "val", data.task, wa, ba) if has_val else None
                    if loss is not None:
                        scores[_fmt(a)] = loss
                    if w is None or (loss is not None and loss < val - 1e-12):
                        w, b, alpha, val = wa, ba, a, loss
            if refit:
                init = np.concatenate([w.ravel(), np.atleast_1d(b)])
                w, b, _ = _logistic(source, ("train", "val"), data.task, k, alpha, o, init)
            metric = "val_logloss"
        self.weight_, self.bias_ = np.asarray(w, dtype=np.float64), np.atleast_1d(np.asarray(b, dtype=np.float64))
        details: dict[str, Any] = {
            "alpha": alpha, "alpha_chosen_by": how if o.alpha is None and len(alphas) > 1 else "train.options.alpha",
            "alpha_scores": scores, "refit": bool(refit), "best_metric": val,
            "monitor": metric if val is not None else None, "weighted": weighted is not None,
        }
        history = [{"round": 1, metric: val}] if val is not None else []
        self.report_ = FitReport(details=details, history=history)
        return self

    # -- files -------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        save_file({"weight": np.ascontiguousarray(self.weight_), "bias": self.bias_},
                  str(Path(folder) / WEIGHTS_FILE))

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> GLMModel:
        path = Path(folder) / WEIGHTS_FILE
        tensors = read_weights(path, ("weight", "bias"))
        model = cls(GLMOptions.model_validate(spec.options))
        model.weight_, model.bias_ = tensors["weight"], tensors["bias"]
        if model.weight_.shape[0] != spec.n_features:
            raise TrainError(f"{path} holds weights for {model.weight_.shape[0]} features; model.json "
                             f"says {spec.n_features}", hint="the package was changed: deploy it again")
        return model

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.asarray(x, dtype=np.float64) @ self.weight_ + self.bias_
        out = z[:, 0] if z.shape[1] == 1 else z
        return out.astype(np.float32)

    def export_onnx(self, path: Path, n_features: int) -> None:
        import torch

        layer = torch.nn.Linear(n_features, self.weight_.shape[1])
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(self.weight_.T.astype(np.float32)))
            layer.bias.copy_(torch.from_numpy(self.bias_.astype(np.float32)))
        net: torch.nn.Module = layer if self.weight_.shape[1] > 1 else torch.nn.Sequential(layer, torch.nn.Flatten(0))
        export_net(net, path, n_features)

    def versions(self) -> dict[str, str]:
        import scipy

        return {"numpy": np.__version__, "scipy": scipy.__version__}


def read_weights(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The tensors ``names`` of the safetensors file ``path``; a :class:`TrainError` naming the
    file when it cannot be read or lacks one."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
        return {n: tensors[n] for n in names}
    except (OSError, SafetensorError, KeyError) as exc:
        raise TrainError(f"cannot read {path}: {exc}",
                         hint="train again (`blase run --from train`) or redeploy") from None


def export_net(net: Any, path: Path, n_features: int) -> None:
    """Export the torch module ``net`` (float32 ``features [batch, n_features]`` -> ``logits``) to ONNX."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(2, n_features),), str(path), input_names=["features"],
                          output_names=["logits"], dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
                          dynamo=False)


# -- the rows ---------------------------------------------------------------------------------


class _Rows:
    """A split's ``(x, y, row weights)`` chunks: held in memory when they fit a quarter of
    the budget, else read again from the memory-mapped shards on every pass."""

    def __init__(self, data: TrainingData, memory: int | None, class_weights: np.ndarray | None) -> None:
        self.data, self.cw = data, class_weights
        budget = (memory or _DEFAULT_MEMORY) * _IN_MEMORY_SHARE
        self._held: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = {}
        self._fits = {s: data.rows(s) * data.n_features * 4 <= budget for s in ("train", "val")}

    def chunks(self, split: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        if split in self._held:
            yield from self._held[split]
            return
        held = [] if self._fits.get(split) else None
        for x, y in self.data.chunks(split):
            sw = self.cw[y] if self.cw is not None else None
            item = (np.asarray(x), np.asarray(y), sw)
            if held is not None:
                held.append(item)
            yield item
        if held is not None:
            self._held[split] = held


def _class_weights(data: TrainingData, train: Any) -> np.ndarray | None:
    """``balanced`` class weights (n / (k * n_c)) by class code, or None."""
    setting = getattr(train, "class_weights", "none") if train is not None else "none"
    if setting != "balanced":
        return None
    if data.task == "regression":
        raise TrainError("train.class_weights is 'balanced' but the shards hold a regression task",
                         hint="set `class_weights: none` under train: in blase.yaml (it applies to classification)")
    counts = np.bincount(data.labels("train"), minlength=data.n_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def _fmt(alpha: float) -> str:
    return f"{alpha:g}"


# -- ridge ------------------------------------------------------------------------------------


class _RidgeStats:
    """The sufficient statistics of a weighted least-squares fit."""

    def __init__(self, n: float, sx: np.ndarray, sy: float, sxx: np.ndarray, sxy: np.ndarray, syy: float) -> None:
        self.n, self.sx, self.sy, self.sxx, self.sxy, self.syy = n, sx, sy, sxx, sxy, syy

    @classmethod
    def of(cls, chunks: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]], d: int) -> _RidgeStats:
        s = cls(0.0, np.zeros(d), 0.0, np.zeros((d, d)), np.zeros(d), 0.0)
        for x, y, _ in chunks:
            x64, y64 = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
            if not (np.isfinite(x64).all() and np.isfinite(y64).all()):
                raise TrainError("the prepared rows hold NaN or infinite values",
                                 hint="add an impute operation under transform: in blase.yaml")
            s.n += len(y64)
            s.sx += x64.sum(axis=0)
            s.sy += float(y64.sum())
            s.sxx += x64.T @ x64
            s.sxy += x64.T @ y64
            s.syy += float(y64 @ y64)
        return s

    def __add__(self, other: _RidgeStats) -> _RidgeStats:
        return _RidgeStats(self.n + other.n, self.sx + other.sx, self.sy + other.sy, self.sxx + other.sxx,
                           self.sxy + other.sxy, self.syy + other.syy)

    def _centred(self) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, float]:
        mx, my = self.sx / self.n, self.sy / self.n
        c = self.sxx - self.n * np.outer(mx, mx)
        b = self.sxy - self.n * mx * my
        return c, b, self.syy - self.n * my * my, mx, my

    def solve(self, alpha: float) -> tuple[np.ndarray, float]:
        c, b, _, mx, my = self._centred()
        w = np.linalg.solve(c + alpha * np.eye(len(b)), b)
        return w[:, None], float(my - mx @ w)

    def choose(self, alphas: list[float]) -> tuple[float, dict[str, float]]:
        """The alpha with the smallest generalised cross-validation error, and each one's."""
        c, b, yy, _, _ = self._centred()
        lam, vecs = np.linalg.eigh((c + c.T) / 2)
        lam = np.clip(lam, 0.0, None)
        bt = vecs.T @ b
        scores: dict[str, float] = {}
        best, best_score = alphas[0], math.inf
        for a in sorted(alphas):
            shrink = 1.0 / (lam + a)
            rss = yy - 2 * float(bt**2 @ shrink) + float((lam * bt**2) @ shrink**2)
            dof = float((lam * shrink).sum()) + 1.0  # + the intercept
            gcv = (max(rss, 0.0) / self.n) / max(1.0 - dof / self.n, 1e-12) ** 2
            scores[_fmt(a)] = gcv
            if gcv < best_score:
                best, best_score = a, gcv
        return best, scores


def _rmse(source: _Rows, split: str, w: np.ndarray, b: float) -> float:
    total, n = 0.0, 0
    for x, y, _ in source.chunks(split):
        err = np.asarray(x, dtype=np.float64) @ w[:, 0] + b - np.asarray(y, dtype=np.float64)
        total, n = total + float(err @ err), n + len(err)
    return math.sqrt(total / max(n, 1))


# -- logistic ---------------------------------------------------------------------------------


def _scores(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64) @ w + b


def _nll_and_grad(z: np.ndarray, y: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-row negative log-likelihood and its gradient with respect to the scores ``z``."""
    if task == "binary":
        t = y.astype(np.float64)
        s = z[:, 0]
        nll = np.logaddexp(0.0, s) - t * s
        p = 0.5 * (1.0 + np.tanh(0.5 * s))  # the sigmoid, without overflow
        return nll, (p - t)[:, None]
    zmax = z.max(axis=1, keepdims=True)
    lse = zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))
    nll = lse - z[np.arange(len(y)), y]
    g = np.exp(z - lse[:, None])
    g[np.arange(len(y)), y] -= 1.0
    return nll, g


def _logistic(source: _Rows, splits: tuple[str, ...], task: str, k: int, alpha: float,
              o: GLMOptions, start: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise sum of row losses + alpha/2 |w|^2 (sklearn's C = 1/alpha) by L-BFGS."""
    from scipy.optimize import minimize

    d = source.data.n_features

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * k].reshape(d, k), theta[d * k :]
        loss, gw, gb = 0.0, np.zeros((d, k)), np.zeros(k)
        for split in splits:
            for x, y, sw in source.chunks(split):
                nll, g = _nll_and_grad(_scores(x, w, b), y, task)
                if sw is not None:
                    nll, g = nll * sw, g * sw[:, None]
                loss += float(nll.sum())
                gw += np.asarray(x, dtype=np.float64).T @ g
                gb += g.sum(axis=0)
        loss += 0.5 * alpha * float((w * w).sum())
        gw += alpha * w
        return loss, np.concatenate([gw.ravel(), gb])

    found = minimize(objective, start, jac=True, method="L-BFGS-B",
                     options={"maxiter": o.max_iter, "gtol": o.tol})
    if not np.isfinite(found.x).all():
        raise TrainError(f"the glm fit diverged (alpha {alpha:g})",
                         hint="check the prepared features for extreme values, or set train.options.alpha larger")
    theta = found.x
    w, b = theta[: d * k].reshape(d, k), theta[d * k :]
    return w, (b if k > 1 else b[:1]), theta


class _Held:
    """A :class:`_Rows` look-alike over rows already in memory (one fold of train + val)."""

    def __init__(self, data: TrainingData, splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> None:
        self.data, self.splits = data, splits

    def chunks(self, split: str) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        yield self.splits[split]


def _cv_folds(source: _Rows, data: TrainingData, o: GLMOptions, seed: int) -> list[_Held] | None:
    """Train + val cut into ``cv_folds`` stratified folds (fold i: its val split), or None when
    they are too large for it or too small for the folds."""
    from blase.model._folds import fold_ids

    rows = data.rows("train") + data.rows("val")
    if o.cv_folds < 2 or rows > o.cv_rows:
        return None
    parts = [c for split in ("train", "val") for c in source.chunks(split)]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    sw = np.concatenate([p[2] for p in parts]) if parts[0][2] is not None else None
    fold_of = fold_ids(y, o.cv_folds, seed, stratify=True)
    if fold_of is None:
        return None
    out = []
    for i in range(o.cv_folds):
        inside, held = fold_of != i, fold_of == i
        out.append(_Held(data, {
            "train": (x[inside], y[inside], sw[inside] if sw is not None else None),
            "val": (x[held], y[held], None),
        }))
    return out


def _cv_alpha(folds: list[_Held], data: TrainingData, k: int, alphas: list[float],
              o: GLMOptions) -> tuple[float, dict[str, float]]:
    """The penalty by the one-standard-error rule on the out-of-fold log loss (each row scored
    once, by the fit on the other folds; glmnet's ``lambda.1se``): the largest alpha whose loss
    is within one standard error of the lowest (the standard error of the mean per-row
    difference), and each alpha's loss. On a few hundred rows the lowest loss often belongs to
    a weak penalty by chance; the fits of one fold warm-start from the larger alpha's."""
    rows: dict[float, list[np.ndarray]] = {a: [] for a in alphas}
    # a log loss to rank penalties by: scikit-learn's tol, on the mean row loss as it scales it
    o = o.model_copy(update={"tol": max(o.tol, 1e-4) * len(folds[0].splits["train"][1])})
    for fold in folds:
        start = np.zeros((data.n_features + 1) * k)
        x, y, _ = fold.splits["val"]
        for a in alphas:
            w, b, start = _logistic(fold, ("train",), data.task, k, a, o, start)  # type: ignore[arg-type]
            rows[a].append(_nll_and_grad(_scores(x, w, b), y, data.task)[0])
    loss = {a: np.concatenate(parts) for a, parts in rows.items()}
    mean = {a: float(v.mean()) for a, v in loss.items()}
    best = min(alphas, key=lambda a: (mean[a], -a))
    n = len(loss[best])

    def within(a: float) -> bool:
        se = float((loss[a] - loss[best]).std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
        return mean[a] - mean[best] <= se

    chosen = max(a for a in alphas if within(a))  # the strongest penalty within one SE of the best
    return chosen, {_fmt(a): m for a, m in mean.items()}


def _logloss(source: _Rows, split: str, task: str, w: np.ndarray, b: np.ndarray) -> float:
    total, n = 0.0, 0
    for x, y, _ in source.chunks(split):
        nll, _ = _nll_and_grad(_scores(x, w, b), y, task)
        total, n = total + float(nll.sum()), n + len(nll)
    return total / max(n, 1)
