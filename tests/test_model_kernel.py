"""``train.model: kernel``: an RBF kernel machine (Nystroem features + glm) on real shards,
checked against scikit-learn's own Nystroem + Ridge, on boundaries a linear model cannot
draw, through ONNX, and as one of ``auto``'s candidates on small data only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from blase.config import TrainConfig
from blase.model import FitContext, TrainingData, fit_model, load_trained, model_kind
from tests.test_auto_model import _fit, _prepared, _scaled


def _rings(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Two noisy concentric rings: no straight line separates them."""
    rng = np.random.default_rng(seed)
    outer = rng.random(n) < 0.5
    radius = np.where(outer, 2.0, 1.0) + 0.15 * rng.normal(size=n)
    angle = rng.uniform(0, 2 * np.pi, n)
    return pd.DataFrame({"a": radius * np.cos(angle), "b": radius * np.sin(angle), "ring": outer.astype(int)})


def _accuracy(model, shards) -> float:
    x, y = TrainingData(shards).matrix("test")
    z = np.asarray(model.predict(x))
    guess = (z > 0).astype(int) if z.ndim == 1 else z.argmax(axis=1)
    return float((guess == y).mean())


def test_kernel_separates_rings_that_a_linear_model_cannot(tmp_path):
    shards = _prepared(tmp_path, _rings(), "ring")
    _, glm = _fit(tmp_path, shards, "glm")
    result, kernel = _fit(tmp_path, shards, "kernel")
    assert _accuracy(glm, shards) < 0.7  # a straight line: about chance
    assert _accuracy(kernel, shards) >= 0.95
    details = result.details
    assert details["landmarks"] == TrainingData(shards).rows("train")  # few rows: every one is a landmark
    assert details["gamma"] == pytest.approx(1.0 / (2 * details["gamma_variance"]))
    assert details["alpha_chosen_by"] == "the val split's log loss"


def test_kernel_regression_is_scikit_learns_nystroem_and_ridge(tmp_path):
    """With every training row a landmark and the penalty fixed, the fit is exact kernel ridge
    with an intercept: the same predictions as scikit-learn's Nystroem + Ridge on the same rows."""
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline

    frame = _scaled("diabetes")
    frame["target"] = frame["target"].astype(float)
    shards = _prepared(tmp_path, frame, "target")
    _, model = _fit(tmp_path, shards, "kernel", {"alpha": 0.5, "gamma": 0.05}, refit=False)
    data = TrainingData(shards)
    xtr, ytr = data.matrix("train")
    xte, _ = data.matrix("test")
    ref = make_pipeline(Nystroem(gamma=0.05, n_components=len(xtr)), Ridge(alpha=0.5)).fit(xtr, ytr)
    got, want = np.asarray(model.predict(xte), dtype=np.float64), ref.predict(xte)
    assert np.max(np.abs(got - want)) <= 1e-3 * np.max(np.abs(want))


def test_kernel_chooses_its_width_from_gamma_factors_by_the_val_split(tmp_path):
    shards = _prepared(tmp_path, _rings(), "ring")
    result, _ = _fit(tmp_path, shards, "kernel", {"gamma_factors": [0.01, 1.0, 4.0]})
    tried = result.details["gamma_scores"]
    assert len(tried) == 3
    best = min(tried, key=tried.get)
    assert float(best) == pytest.approx(result.details["gamma"], rel=1e-5)
    assert tried[min(tried, key=float)] > tried[best]  # a kernel 100x too wide cannot bend around the rings


def test_kernel_samples_landmarks_by_seed_and_keeps_memory_to_them(tmp_path):
    shards = _prepared(tmp_path, _rings(1500), "ring")
    first, _ = _fit(tmp_path / "a", shards, "kernel", {"landmarks": 200})
    again, _ = _fit(tmp_path / "b", shards, "kernel", {"landmarks": 200})
    assert first.details["landmarks"] == again.details["landmarks"] == 200
    assert (tmp_path / "a/kernel/model.safetensors").read_bytes() == (tmp_path / "b/kernel/model.safetensors").read_bytes()


@pytest.mark.parametrize("data", ["breast_cancer", "wine"])  # binary (one logit), multiclass
def test_kernel_saves_loads_and_exports_onnx_with_the_same_scores(tmp_path, data):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    shards = _prepared(tmp_path, _scaled(data), "target")
    result = fit_model(model_kind("kernel", {}), shards, FitContext(out_dir=tmp_path / "k", seed=0, train=TrainConfig()))
    assert json.loads((tmp_path / "k/model.json").read_text())["name"] == "kernel"
    model = load_trained(tmp_path / "k")
    assert _accuracy(model, shards) >= 0.9
    x, _ = TrainingData(shards).matrix("test")
    x = np.concatenate([x, 5 * x]).astype(np.float32)  # far from every landmark too
    model.export_onnx(tmp_path / "k.onnx", x.shape[1])
    got = ort.InferenceSession(str(tmp_path / "k.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"features": x})[0]
    want = np.asarray(model.predict(x), dtype=np.float64)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-4 * max(1.0, np.max(np.abs(want)))
    assert result.outputs.keys() >= {"model.json", "model.safetensors"}


def test_auto_compares_kernel_on_small_data_only(tmp_path):
    shards = _prepared(tmp_path, _rings(), "ring")
    result, model = _fit(tmp_path / "small", shards, "auto", {"candidates": ["glm", "kernel"]})
    auto = result.details["auto"]
    assert set(auto["candidates"]) >= {"glm", "kernel"}
    assert auto["chosen"] in {"kernel", "ensemble"}, auto["reason"]
    assert _accuracy(model, shards) >= 0.95
    result, _ = _fit(tmp_path / "large", shards, "auto", {"candidates": ["glm", "kernel"], "small_rows": 100})
    auto = result.details["auto"]
    assert set(auto["candidates"]) == {"glm"} and auto["rule"]["not_compared_above_small_rows"] == ["kernel"]
    assert not auto["skipped"] and not any("kernel" in w for w in result.warnings)


def test_a_kernel_project_runs_deploys_and_predicts_raw_rows(cli, tmp_path):
    from blase.scaffold import create_project

    project = create_project(tmp_path / "proj")
    done = cli("run", "--set", "train.model=kernel", cwd=project.root)
    assert done.exit_code == 0, done.stdout + done.stderr
    spec = json.loads((project.root / "models/proj/v1/model.json").read_text())
    assert spec["name"] == "kernel"
    out = tmp_path / "scores.csv"
    done = cli("predict", "proj", "data/penguins.csv", "--out", str(out), cwd=project.root)
    assert done.exit_code == 0, done.stdout + done.stderr
    scores = pd.read_csv(out)
    truth = pd.read_csv(project.root / "data/penguins.csv")["species"]
    assert len(scores) == len(truth)
    assert (scores["prediction"].astype(str) == truth.astype(str)).mean() >= 0.9
