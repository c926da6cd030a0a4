"""The model's side of a check: predictions on the sampled new rows, their drift and metrics.

Reading the model and its transform takes a few tenths of a second whatever the data's size
(and a second more of CPU where the model needs torch: a built-in model runs in numpy, see
:mod:`blase.deploy._runner`). :class:`ModelLoader` does it in a background thread started
before the scan of the new data, which DuckDB runs with the GIL released, so the two overlap.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from blase.evaluate import primary_metric
from blase.monitor._drift import column_drift
from blase.profile import CurrentColumn, ReferenceProfile

__all__ = ["ModelLoader", "primary_metric", "score_embeddings", "score_sample"]


def _load(package: Any, sample: Any = None, source: str = "") -> tuple[Any, Any, Any]:
    from blase.deploy import model_runner

    with contextlib.suppress(ImportError):
        # pyarrow imports pandas, when installed, at its first conversion to or from numpy
        # (0.2 s): here rather than on the main thread once the scan is done
        import pandas  # noqa: F401

    transform, run = package.load_transform(), model_runner(package)
    scores = _score(package, transform, run, sample, source) if sample is not None else None
    return transform, run, scores


def _score(package: Any, transform: Any, run: Any, sample: Any, source: str) -> np.ndarray:
    """The model's raw scores on the raw rows ``sample``."""
    from blase.deploy import package_features

    return run(package_features(package, transform, sample, source=source))


class ModelLoader:
    """Load a package's fitted transform and model in a background thread, and score a
    sample known beforehand there too.

    :meth:`start` it before the work it should overlap; :meth:`scores` waits for it. Use it
    as a context manager: leaving the block waits for the thread, so no import is left
    running.

    Parameters
    ----------
    package:
        The :class:`~blase.deploy.ModelPackage` to load.
    """

    def __init__(self, package: Any) -> None:
        self.package = package
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[tuple[Any, Any, Any]] | None = None
        self._sample: Any = None

    def start(self, sample: Any = None, *, source: str = "") -> None:
        """Begin loading in the background (once); with ``sample`` (raw rows), score it there
        as well (``source`` names the data in error messages)."""
        if self._future is None:
            self._sample = sample
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blase-monitor-model")
            self._future = self._pool.submit(_load, self.package, sample, source)

    def scores(self, sample: Any, *, source: str = "") -> np.ndarray:
        """The model's raw scores on ``sample`` (already computed when it is the sample given
        to :meth:`start`); raises what loading or scoring raised."""
        self.start()
        assert self._future is not None
        transform, run, scores = self._future.result()
        if scores is not None and sample is self._sample:
            return scores
        return _score(self.package, transform, run, sample, source)

    def transform(self) -> Any:
        """The package's fitted transform (loaded in the background)."""
        self.start()
        assert self._future is not None
        return self._future.result()[0]

    def __enter__(self) -> ModelLoader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def score_sample(package: Any, profile: ReferenceProfile, sample: Any, result: Any, loader: ModelLoader,
                 *, complete: bool) -> None:
    """Predictions on ``sample``: prediction drift, and metrics where the label is known.

    Parameters
    ----------
    package, profile:
        The model package and its reference profile.
    sample:
        The sampled new rows (an Arrow table of raw columns).
    result:
        The :class:`~blase.monitor.MonitorResult` to fill (``prediction``, ``metrics``,
        ``reference_metrics``, ``primary_metric``, ``metric_drop``, ``notes``).
    loader:
        The package's :class:`ModelLoader`.
    complete:
        Whether ``sample`` holds every new row.
    """
    import pyarrow as pa

    from blase.deploy import scores_to_columns
    from blase.evaluate import EvaluateError, compute_metrics, probabilities

    try:
        scores = loader.scores(sample, source=result.data)
    except Exception as exc:
        result.notes.append(f"predictions skipped: {getattr(exc, 'message', exc)}")
        return
    task = package.task
    preds = scores_to_columns(task, scores, package.classes)["prediction"]
    ref = profile.prediction
    if ref is not None:
        if task == "regression":
            arr = np.asarray(preds, dtype=np.float64)
            keys, n = np.unique(ref.key_of(arr), return_counts=True)
            cur = CurrentColumn("prediction", len(arr), 0, dict(zip(keys.tolist(), n.tolist(), strict=True)))
            values = arr
        else:
            text = _as_text(preds)
            uniq, n = np.unique(np.asarray(text, dtype=object), return_counts=True)
            cur = CurrentColumn("prediction", len(text), 0, dict(zip(uniq.tolist(), n.tolist(), strict=True)))
            values = None
        result.prediction = column_drift(ref, cur, values, current_complete=complete)
    name, higher = primary_metric(task)
    result.primary_metric = name
    result.reference_metrics = {k: v for k, v in (package.metrics or profile.metrics).items()
                                if isinstance(v, (int, float))}
    if package.label not in sample.column_names:
        return
    truth = sample[package.label]
    valid = np.asarray(truth.is_valid())
    if not valid.any():
        return
    try:
        y = truth.filter(pa.array(valid)).to_numpy(zero_copy_only=False)
        if task == "regression":
            metrics = compute_metrics(task, y.astype(np.float64), np.asarray(scores).reshape(-1)[valid])
        else:
            metrics = compute_metrics(task, y, probabilities(task, scores)[valid], labels=package.classes)
    except EvaluateError as exc:
        result.notes.append(f"metrics skipped: {exc.message}")
        return
    result.metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    before, now = result.reference_metrics.get(name), result.metrics.get(name)
    if isinstance(before, (int, float)) and isinstance(now, (int, float)):
        result.metric_drop = (before - now) if higher else ((now - before) / before if before else 0.0)


def _as_text(values: list[Any]) -> list[str | None]:
    """Values as DuckDB casts them to VARCHAR (how the reference keys categories).

    Text, integers and booleans (what classes almost always are) are spelt here, as DuckDB
    spells them; anything else goes through DuckDB (a connection costs ~50 ms)."""
    if all(v is None or isinstance(v, (str, int)) for v in values):  # bool is an int
        return [None if v is None else ("true" if v else "false") if isinstance(v, bool) else str(v)
                for v in values]
    import duckdb
    import pyarrow as pa

    table = pa.table({"v": pa.array(values)})
    con = duckdb.connect()
    try:
        con.register("t", table)
        return [r[0] for r in con.execute("SELECT CAST(v AS VARCHAR) FROM t").fetchall()]
    finally:
        con.close()


def score_embeddings(package: Any, sample: Any, loader: ModelLoader, result: Any, *, seed: int) -> None:
    """Embedding drift of ``sample`` (:mod:`blase.monitor._embedding`) when the package holds
    reference embeddings: ``result.embedding`` and a line in ``result.notes``."""
    from pathlib import Path

    from blase.deploy import EMBEDDINGS_FILE, embedding_model, package_features
    from blase.monitor._embedding import describe, embedding_drift

    path = Path(package.path) / EMBEDDINGS_FILE
    if not path.is_file() or sample is None or not sample.num_rows:
        return
    try:
        model = embedding_model(package)
        if model is None:
            return
        x = package_features(package, loader.transform(), sample, source=result.data)
        result.embedding = embedding_drift(np.load(path), model.embeddings(x), seed=seed)
    except Exception as exc:  # drift of the columns and predictions stands without it
        result.notes.append(f"embedding drift skipped: {getattr(exc, 'message', exc)}")
        return
    result.notes.append(describe(result.embedding))
