"""Evaluate: streaming metrics equal scikit-learn's on the predictions written to Parquet."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.exceptions import UndefinedMetricWarning

from blase.evaluate import (
    ClassificationMetrics,
    EvaluateError,
    RegressionMetrics,
    compute_metrics,
    evaluate_live,
)
from blase.hashing import hash_file
from blase.prepare import Manifest, Prepare, ShardInfo

REL = 1e-9
ABS = 1e-12
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def approx(value: float) -> object:
    return pytest.approx(value, rel=REL, abs=ABS)


# -- shards and models -------------------------------------------------------------------------


def write_shards(
    root: Path,
    task: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    classes: list | None = None,
    shard_rows: int = 1000,
    ids: dict[str, np.ndarray] | None = None,
    class_counts: bool = True,
) -> Path:
    """Shards and a manifest in Prepare's layout, from arrays (labels are codes or targets)."""
    root.mkdir(parents=True, exist_ok=True)
    shards: dict[str, list[ShardInfo]] = {}
    counts: dict[str, dict[str, int]] = {}
    n_features = next(iter(splits.values()))[0].shape[1]
    for name, (x, y) in splits.items():
        (root / name).mkdir(exist_ok=True)
        shards[name] = []
        for i, start in enumerate(range(0, len(x), shard_rows)):
            base = f"{name}/shard-{i:05d}"
            np.save(root / f"{base}.npy", x[start : start + shard_rows].astype(np.float32))
            ydt = np.float32 if task == "regression" else np.int64
            np.save(root / f"{base}.labels.npy", y[start : start + shard_rows].astype(ydt))
            if ids is not None and name in ids:
                np.save(root / f"{base}.ids.npy", ids[name][start : start + shard_rows].astype(np.int64))
            shards[name].append(ShardInfo(
                file=f"{base}.npy", labels_file=f"{base}.labels.npy",
                rows=len(x[start : start + shard_rows]), hash=hash_file(root / f"{base}.npy"),
                labels_hash=hash_file(root / f"{base}.labels.npy"),
            ))
        if task != "regression" and class_counts:
            counts[name] = {str(c): int((y == c).sum()) for c in range(len(classes or []))}
    classes = classes or []
    manifest = Manifest(
        task=task, label="target", label_dtype="VARCHAR" if classes and isinstance(classes[0], str) else "BIGINT",
        label_mapping={str(c): i for i, c in enumerate(classes)}, classes=classes,
        features=[f"f{j}" for j in range(n_features)],
        dtypes={f"f{j}": "DOUBLE" for j in range(n_features)}, n_features=n_features,
        y_dtype="float32" if task == "regression" else "int64",
        counts={k: len(v[0]) for k, v in splits.items()}, class_counts=counts, shards=shards,
        seed=0, split={"train": 0.8, "val": 0.1, "test": 0.1}, stratify=False, key=None,
        shard_rows=shard_rows, source="arrays", source_hash="0" * 32, created_at="2024-01-01T00:00:00+00:00",
    )
    (root / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=2))
    return root


def train_linear(x: np.ndarray, y: np.ndarray, out: int, task: str, steps: int = 40) -> torch.nn.Module:
    """A tiny real model: nn.Linear trained a few full-batch Adam steps."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only add overhead (and contention)
    try:
        return _train_linear(x, y, out, task, steps)
    finally:
        torch.set_num_threads(threads)


def _train_linear(x: np.ndarray, y: np.ndarray, out: int, task: str, steps: int) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], out)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    xt = torch.from_numpy(x.astype(np.float32))
    if task == "binary":
        loss_fn, yt = torch.nn.BCEWithLogitsLoss(), torch.from_numpy(y.astype(np.float32))[:, None]
    elif task == "multiclass":
        loss_fn, yt = torch.nn.CrossEntropyLoss(), torch.from_numpy(y.astype(np.int64))
    else:
        loss_fn, yt = torch.nn.MSELoss(), torch.from_numpy(y.astype(np.float32))[:, None]
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()
    return model


def least_squares(x: np.ndarray, y: np.ndarray) -> torch.nn.Module:
    """A real regression model with fixed weights: nn.Linear set to the least-squares fit."""
    a = np.column_stack([x.astype(np.float64), np.ones(len(x))])
    coef = np.linalg.lstsq(a, y.astype(np.float64), rcond=None)[0]
    model = torch.nn.Linear(x.shape[1], 1)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(coef[:-1])[None, :])
        model.bias.fill_(float(coef[-1]))
    return model


def classification_data(n: int, k: int, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 1.5, size=(k, d))
    y = rng.integers(0, k, size=n)
    x = centers[y] + rng.normal(0, 1.5, size=(n, d))
    return x.astype(np.float32), y


def regression_data(n: int, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = 1000.0 + x @ rng.normal(size=d) * 3 + rng.normal(0, 1.0, size=n)
    return x.astype(np.float32), y.astype(np.float32)


@pytest.fixture(scope="module")
def multiclass_model() -> torch.nn.Module:
    x, y = classification_data(1500, 3)
    return train_linear(x[:900], y[:900], 3, "multiclass")


@pytest.fixture
def multiclass_shards(tmp_path: Path, multiclass_model: torch.nn.Module) -> tuple[Path, torch.nn.Module, list]:
    x, y = classification_data(1500, 3)
    classes = [10, 20, 30]
    root = write_shards(
        tmp_path / "shards", "multiclass",
        {"train": (x[:900], y[:900]), "val": (x[900:1000], y[900:1000]), "test": (x[1000:], y[1000:])},
        classes=classes, shard_rows=170,
        ids={"test": np.arange(1000, 1500) * 7},
    )
    return root, multiclass_model, classes


def read_predictions(path: str | Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def assert_classification_matches_sklearn(m: dict, truth, pred, proba, classes, *, binary: bool) -> None:
    assert m["n"] == len(truth)
    assert m["accuracy"] == approx(skm.accuracy_score(truth, pred))
    assert m["balanced_accuracy"] == approx(skm.balanced_accuracy_score(truth, pred))
    for avg in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(truth, pred, average=avg, zero_division=0)
        assert m[f"precision_{avg}"] == approx(p)
        assert m[f"recall_{avg}"] == approx(r)
        assert m[f"f1_{avg}"] == approx(f)
    if binary:
        assert m["precision"] == approx(skm.precision_score(truth, pred, pos_label=classes[1], zero_division=0))
        assert m["recall"] == approx(skm.recall_score(truth, pred, pos_label=classes[1], zero_division=0))
        assert m["f1"] == approx(skm.f1_score(truth, pred, pos_label=classes[1], zero_division=0))
    assert m["log_loss"] == approx(skm.log_loss(truth, proba, labels=classes))
    assert m["confusion_matrix"] == skm.confusion_matrix(truth, pred, labels=classes).tolist()


# -- classification ----------------------------------------------------------------------------


def test_binary_from_prepare_matches_sklearn(tmp_path: Path) -> None:
    x, y = classification_data(2000, 2, d=4, seed=1)
    source = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(target=np.where(y == 1, "yes", "no"))
    source.to_parquet(tmp_path / "data.parquet")
    shards = tmp_path / "shards"
    Prepare(label="target", shard_rows=64, seed=3).run(tmp_path / "data.parquet", shards)
    train = np.load(shards / "train" / "shard-00000.npy")
    train_y = np.load(shards / "train" / "shard-00000.labels.npy")
    model = train_linear(train, train_y, 1, "binary")

    result = evaluate_live(model, shards, tmp_path / "outputs", batch_size=50)
    assert result.step == "evaluate" and result.details["task"] == "binary"
    assert model.training  # the model's mode is restored
    m = result.details["metrics"]
    df = read_predictions(result.details["predictions"])
    assert list(df.columns) == ["row_id", "truth", "prediction", "prob_no", "prob_yes"]
    assert set(df["truth"]) == {"no", "yes"}
    assert len(df) == result.rows_out == m["n"] > 0
    # row ids are Prepare's (the source row index): each truth is that source row's label
    assert df["row_id"].is_unique and (df["truth"].to_numpy() == source.loc[df["row_id"], "target"].to_numpy()).all()
    proba = df[["prob_no", "prob_yes"]].to_numpy()
    assert_classification_matches_sklearn(m, df["truth"], df["prediction"], proba, ["no", "yes"], binary=True)
    assert m["roc_auc"] == approx(skm.roc_auc_score(df["truth"] == "yes", df["prob_yes"]))
    assert 0.5 < m["roc_auc"] <= 1.0

    # the baseline: DummyClassifier fitted on the train labels, scored on the same rows
    from blase.prepare import read_manifest

    man = read_manifest(shards)
    train_labels = np.concatenate([np.load(shards / s.labels_file) for s in man.shards["train"]])
    classes = np.array(["no", "yes"], dtype=object)
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((len(train_labels), 1)), classes[train_labels])
    b_pred = dummy.predict(np.zeros((len(df), 1)))
    b_proba = dummy.predict_proba(np.zeros((len(df), 1)))
    most = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(train_labels), 1)), classes[train_labels])
    assert (most.predict(np.zeros((len(df), 1))) == b_pred).all()
    b = result.details["baseline"]
    assert result.details["baseline_source"] == "train"
    assert_classification_matches_sklearn(b, df["truth"], b_pred, b_proba, ["no", "yes"], binary=True)
    assert b["roc_auc"] == approx(skm.roc_auc_score(df["truth"] == "yes", b_proba[:, 1])) == 0.5

    saved = json.loads(Path(result.details["metrics_file"]).read_text())
    assert saved["metrics"] == m and saved["baseline"] == b and saved["task"] == "binary"


def test_multiclass_matches_sklearn(multiclass_shards) -> None:
    root, model, classes = multiclass_shards
    out = root.parent / "outputs"
    result = evaluate_live(model, root, out, batch_size=64)
    m = result.details["metrics"]
    df = read_predictions(out / "predictions.parquet")
    assert list(df.columns) == ["row_id", "truth", "prediction", "prob_10", "prob_20", "prob_30"]
    assert len(df) == 500 and set(df["truth"]) <= set(classes)
    assert (df["row_id"].to_numpy() == np.arange(1000, 1500) * 7).all()  # from the ids files
    proba = df[["prob_10", "prob_20", "prob_30"]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert_classification_matches_sklearn(m, df["truth"], df["prediction"], proba, classes, binary=False)
    assert "precision" not in m  # positive-class scores are for binary only
    assert m["roc_auc"] == approx(skm.roc_auc_score(df["truth"], proba, multi_class="ovr", average="macro",
                                                    labels=classes))
    assert m["accuracy"] > 0.5

    train_y = np.asarray(classes)[np.concatenate([np.load(root / f"train/shard-{i:05d}.labels.npy")
                                                  for i in range(6)])]
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((len(train_y), 1)), train_y)
    zeros = np.zeros((len(df), 1))
    b = result.details["baseline"]
    assert_classification_matches_sklearn(b, df["truth"], dummy.predict(zeros), dummy.predict_proba(zeros),
                                          classes, binary=False)
    assert b["roc_auc"] == approx(skm.roc_auc_score(df["truth"], dummy.predict_proba(zeros), multi_class="ovr",
                                                    labels=classes))


def test_roc_auc_counts_ties_half_like_sklearn(tmp_path: Path) -> None:
    x, y = classification_data(3000, 2, d=3, seed=5)
    root = write_shards(tmp_path / "s", "binary", {"train": (x[:100], y[:100]), "test": (x[100:], y[100:])},
                        classes=[0, 1], shard_rows=700)
    # a callable model with few distinct scores: many tied rows across shards and batches
    result = evaluate_live(lambda xb: np.round(xb[:, :1] * 2) / 2, root, tmp_path / "out", batch_size=333)
    df = read_predictions(result.details["predictions"])
    assert df["prob_1"].nunique() < 40
    assert result.details["metrics"]["roc_auc"] == approx(skm.roc_auc_score(df["truth"], df["prob_1"]))
    assert result.details["metrics"]["log_loss"] == approx(skm.log_loss(df["truth"], df["prob_1"]))


def test_callable_model_gives_the_module_metrics(multiclass_shards) -> None:
    root, model, _ = multiclass_shards
    a = evaluate_live(model, root, root.parent / "a", plots=False)

    def as_numpy(xb: np.ndarray) -> np.ndarray:
        assert xb.dtype == np.float32 and xb.ndim == 2
        with torch.no_grad():
            return model(torch.from_numpy(xb)).numpy()

    b = evaluate_live(as_numpy, root, root.parent / "b", plots=False)
    assert a.details["metrics"] == b.details["metrics"]
    assert a.details["plots"] == [] and "model" in a.inputs and "model" not in b.inputs


# -- regression --------------------------------------------------------------------------------


def test_regression_matches_sklearn(tmp_path: Path) -> None:
    x, y = regression_data(1200)
    y[1000] = 0.0  # MAPE divides by max(|y|, eps) there, like sklearn
    root = write_shards(tmp_path / "s", "regression",
                        {"train": (x[:900], y[:900]), "test": (x[900:], y[900:])}, shard_rows=128)
    model = least_squares(x[:900], y[:900])
    result = evaluate_live(model, root, tmp_path / "out", batch_size=37)
    m = result.details["metrics"]
    df = read_predictions(result.details["predictions"])
    assert list(df.columns) == ["row_id", "truth", "prediction"] and len(df) == 300
    t, p = df["truth"].to_numpy(), df["prediction"].to_numpy()
    assert m["mae"] == approx(skm.mean_absolute_error(t, p))
    assert m["rmse"] == approx(skm.root_mean_squared_error(t, p))
    assert m["r2"] == approx(skm.r2_score(t, p))
    assert m["mape"] == approx(skm.mean_absolute_percentage_error(t, p))
    assert m["mape"] > 1e10  # the zero target dominates MAPE (and R2)

    train_y = np.concatenate([np.load(root / s) for s in sorted(root.glob("train/*.labels.npy"))])
    dummy = DummyRegressor(strategy="mean").fit(np.zeros((900, 1)), train_y.astype(np.float64))
    bp = dummy.predict(np.zeros((len(t), 1)))
    b = result.details["baseline"]
    assert b["mae"] == approx(skm.mean_absolute_error(t, bp))
    assert b["rmse"] == approx(skm.root_mean_squared_error(t, bp))
    assert b["r2"] == approx(skm.r2_score(t, bp))
    assert b["mape"] == approx(skm.mean_absolute_percentage_error(t, bp))
    assert b["r2"] < m["r2"]

    names = sorted(Path(p).name for p in result.details["plots"])
    assert names == ["pred_vs_true.png", "residuals.png"]


def test_regression_without_train_uses_the_evaluated_mean(tmp_path: Path) -> None:
    x, y = regression_data(200)
    root = write_shards(tmp_path / "s", "regression", {"test": (x, y)}, shard_rows=64)
    result = evaluate_live(lambda xb: xb[:, 0], root, tmp_path / "out", plots=False)
    assert result.details["baseline_source"] == "test"
    assert result.details["baseline"]["r2"] == approx(0.0)
    assert result.details["baseline"]["rmse"] == approx(float(np.std(y.astype(np.float64))))


# -- streaming, outputs, tracking --------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_small_batches_give_the_one_batch_metrics(multiclass_shards, batch_size: int) -> None:
    root, model, _ = multiclass_shards
    one = evaluate_live(model, root, root.parent / "one", batch_size=100_000, plots=False).details
    many = evaluate_live(model, root, root.parent / f"b{batch_size}", batch_size=batch_size, plots=False).details
    for key, value in one["metrics"].items():
        assert many["metrics"][key] == (value if not isinstance(value, float) else pytest.approx(value, rel=1e-12))
    assert one["baseline"] == many["baseline"]


def test_streaming_regression_equals_in_memory() -> None:
    rng = np.random.default_rng(0)
    y = 1e6 + rng.normal(size=10_000)  # a large offset: R2 needs a stable variance
    p = y + rng.normal(0.0, 0.5, size=y.size)
    acc = RegressionMetrics()
    for start in range(0, y.size, 333):
        acc.update(y[start : start + 333], p[start : start + 333])
    whole = compute_metrics("regression", y, p)
    assert acc.result() == pytest.approx(whole, rel=1e-12)
    assert whole["r2"] == approx(skm.r2_score(y, p))


def test_plots_are_png_files(multiclass_shards) -> None:
    root, model, _ = multiclass_shards
    result = evaluate_live(model, root, root.parent / "out", split="val")
    paths = [Path(p) for p in result.details["plots"]]
    assert sorted(p.name for p in paths) == ["confusion_matrix-val.png", "roc_curve-val.png"]
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 5_000
    assert Path(result.details["predictions"]).name == "predictions-val.parquet"
    assert not list((root.parent / "out").glob(".*"))  # no temporary files left behind


def test_metrics_and_artifacts_go_to_the_active_run(multiclass_shards, tmp_path: Path) -> None:
    from blase.track import Track, load_run

    root, model, _ = multiclass_shards
    project = tmp_path / "proj"
    project.mkdir()
    (project / "blase.yaml").write_text("project: t\n")
    with Track("eval", project=project, sample_resources=False) as run:
        result = evaluate_live(model, root, project / "outputs")
    detail = load_run(run.run_id, [project])
    m = result.details["metrics"]
    assert detail.metrics["test.accuracy"] == approx(m["accuracy"])
    assert detail.metrics["test.roc_auc"] == approx(m["roc_auc"])
    assert detail.metrics["baseline.log_loss"] == approx(result.details["baseline"]["log_loss"])
    assert "test.confusion_matrix" not in detail.metrics
    names = {a["name"] for a in detail.artifacts}
    assert {"evaluate/predictions.parquet", "evaluate/metrics.json", "evaluate/roc_curve.png",
            "evaluate/confusion_matrix.png"} <= names


# -- bad input ---------------------------------------------------------------------------------


def test_no_manifest(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EvaluateError, match=r"no manifest\.json") as err:
        evaluate_live(lambda xb: xb, tmp_path / "empty", tmp_path / "out")
    assert str(tmp_path / "empty") in str(err.value) and "run prepare first" in str(err.value)


def test_broken_manifest(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "manifest.json").write_text("{not json")
    with pytest.raises(EvaluateError, match="cannot read") as err:
        evaluate_live(lambda xb: xb, tmp_path / "s", tmp_path / "out")
    assert "prepare" in str(err.value)


def test_output_width_must_fit_the_task(multiclass_shards) -> None:
    root, _, _ = multiclass_shards
    with pytest.raises(EvaluateError, match=r"gives 1 output\(s\) per row.*multiclass with 3 classes"):
        evaluate_live(torch.nn.Linear(5, 1), root, root.parent / "out")
    with pytest.raises(EvaluateError, match="must take float32 inputs of width 5"):
        evaluate_live(torch.nn.Linear(4, 3), root, root.parent / "out")
    with pytest.raises(EvaluateError, match="NaN or infinite"):
        evaluate_live(lambda xb: np.full((len(xb), 3), np.nan), root, root.parent / "out")
    assert not (root.parent / "out" / "predictions.parquet").exists()  # nothing half-written


def test_binary_takes_one_or_two_logits(tmp_path: Path) -> None:
    x, y = classification_data(300, 2, d=3)
    root = write_shards(tmp_path / "s", "binary", {"train": (x[:200], y[:200]), "test": (x[200:], y[200:])},
                        classes=[False, True])
    one = evaluate_live(lambda xb: xb[:, 0] - xb[:, 1], root, tmp_path / "a", plots=False).details
    two = evaluate_live(lambda xb: np.column_stack([xb[:, 1], xb[:, 0]]), root, tmp_path / "b", plots=False).details
    assert one["metrics"]["accuracy"] == two["metrics"]["accuracy"]
    assert one["metrics"]["roc_auc"] == pytest.approx(two["metrics"]["roc_auc"], rel=1e-12)
    df = read_predictions(Path(tmp_path / "a" / "predictions.parquet"))
    assert df["truth"].dtype == bool and list(df.columns)[3:] == ["prob_False", "prob_True"]
    with pytest.raises(EvaluateError, match="needs 1 or 2"):
        evaluate_live(lambda xb: xb, root, tmp_path / "c")


def test_empty_and_unknown_split(tmp_path: Path) -> None:
    x, y = classification_data(50, 2)
    root = write_shards(tmp_path / "s", "binary", {"train": (x, y), "test": (x[:0], y[:0])}, classes=[0, 1])
    with pytest.raises(EvaluateError, match=r"split 'test' of .* has no rows"):
        evaluate_live(lambda xb: xb[:, 0], root, tmp_path / "out")
    with pytest.raises(EvaluateError, match="split 'holdout' is not in") as err:
        evaluate_live(lambda xb: xb[:, 0], root, tmp_path / "out", split="holdout")
    assert "train, test" in str(err.value)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_single_class_test_set_reports_null_roc_auc(tmp_path: Path, caplog, multiclass_model) -> None:
    x, y = classification_data(400, 3)
    test = y == 1
    root = write_shards(tmp_path / "s", "multiclass", {"train": (x, y), "test": (x[test], y[test])},
                        classes=["a", "b", "c"], class_counts=False)
    model = multiclass_model
    with caplog.at_level(logging.WARNING, logger="blase.evaluate"):
        result = evaluate_live(model, root, tmp_path / "out")
    m = result.details["metrics"]
    assert m["roc_auc"] is None and any("ROC-AUC is undefined" in w for w in result.warnings)
    assert "ROC-AUC is undefined" in caplog.text
    with pytest.warns(UndefinedMetricWarning):  # sklearn: NaN and a warning
        assert np.isnan(skm.roc_auc_score(np.ones(10), np.linspace(0, 1, 10)))
    df = read_predictions(result.details["predictions"])
    proba = df[["prob_a", "prob_b", "prob_c"]].to_numpy()
    assert_classification_matches_sklearn(m, df["truth"], df["prediction"], proba, ["a", "b", "c"], binary=False)
    # no train counts in the manifest: the baseline's majority class is the evaluated rows'
    assert result.details["baseline_source"] == "test"
    assert result.details["baseline"]["accuracy"] == 1.0 and result.details["baseline"]["roc_auc"] is None
    assert json.loads(Path(result.details["metrics_file"]).read_text())["metrics"]["roc_auc"] is None


# -- compute_metrics (in memory) ---------------------------------------------------------------


def test_compute_metrics_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, size=500)
    logits = rng.normal(size=(500, 4)) + np.eye(4)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = ["w", "x", "y", "z"]
    truth = np.asarray(labels)[y]
    m = compute_metrics("multiclass", truth, proba, labels=labels)
    pred = np.asarray(labels)[proba.argmax(axis=1)]
    assert_classification_matches_sklearn(m, truth, pred, proba, labels, binary=False)
    assert m["roc_auc"] == approx(skm.roc_auc_score(truth, proba, multi_class="ovr", labels=labels))

    hard = compute_metrics("multiclass", y, proba.argmax(axis=1))
    assert hard["accuracy"] == m["accuracy"] and hard["log_loss"] is None and hard["roc_auc"] is None

    yb = rng.integers(0, 2, size=300)
    score = np.round(rng.random(300) * 0.5 + yb * 0.3, 1)  # ties
    b = compute_metrics("binary", yb, score)
    assert b["roc_auc"] == approx(skm.roc_auc_score(yb, score))
    assert b["log_loss"] == approx(skm.log_loss(yb, score))
    assert b["f1"] == approx(skm.f1_score(yb, score > 0.5))

    with pytest.raises(EvaluateError, match="unknown task"):
        compute_metrics("ranking", y, proba)
    with pytest.raises(EvaluateError, match="'q', which is not one of labels"):
        compute_metrics("multiclass", np.array(["q"] * 500), proba, labels=labels)


def test_accumulator_excludes_absent_classes_like_sklearn() -> None:
    # class 2 never occurs: macro averages skip it, as sklearn does with its default labels
    acc = ClassificationMetrics(3)
    acc.update(np.array([0, 1, 1, 0]), y_pred=np.array([0, 1, 0, 0]))
    m = acc.result()
    assert m["f1_macro"] == approx(skm.f1_score([0, 1, 1, 0], [0, 1, 0, 0], average="macro"))
    assert m["balanced_accuracy"] == approx(skm.balanced_accuracy_score([0, 1, 1, 0], [0, 1, 0, 0]))
    with pytest.raises(EvaluateError, match="no rows"):
        ClassificationMetrics(2).result()


def test_parquet_types_and_running_row_ids(multiclass_shards) -> None:
    root, model, _ = multiclass_shards
    result = evaluate_live(model, root, root.parent / "out", split="val", plots=False)
    schema = pq.read_schema(result.details["predictions"])
    assert schema.field("row_id").type == pa.int64() and schema.field("truth").type == pa.int64()
    assert schema.field("prob_10").type == pa.float64()
    # no ids files for val: the running row index within the split
    assert (read_predictions(result.details["predictions"])["row_id"].to_numpy() == np.arange(100)).all()
