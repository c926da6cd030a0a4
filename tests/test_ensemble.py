"""``train.model: ensemble`` (a weighted average of kinds) and ``auto`` keeping one when the
blend of its candidates scores better than the best of them, on real shards, a real project,
a real package and `blase predict`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from blase.config import TrainConfig
from blase.errors import ConfigError
from blase.model import FitContext, TrainingData, fit_model, load_trained, model_kind
from blase.model._ensemble import blend_scores, probabilities, select_weights
from blase.model._select import choose
from tests.test_auto_model import _prepared


def test_the_blend_averages_probabilities_and_returns_scores():
    a, b = np.array([2.0, -1.0, 0.0]), np.array([-2.0, 3.0, 0.0])
    blended = blend_scores([a, b], np.array([0.25, 0.75]), "binary")
    p = 0.25 / (1 + np.exp(-a)) + 0.75 / (1 + np.exp(-b))
    assert np.allclose(blended, np.log(p / (1 - p)))
    za, zb = np.array([[1.0, 2.0, 0.5]]), np.array([[0.0, -1.0, 3.0]])
    soft = lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)  # noqa: E731
    multi = blend_scores([za, zb], np.array([0.5, 0.5]), "multiclass")
    assert np.allclose(np.exp(multi), 0.5 * soft(za) + 0.5 * soft(zb))
    assert np.allclose(blend_scores([np.array([1.0, 2.0]), np.array([3.0, 6.0])], np.array([0.5, 0.5]), "regression"),
                       [2.0, 4.0])
    # a binary kind that gives two logits (through a softmax) means the same probability
    assert np.allclose(probabilities(np.array([[0.0, 2.0]]), "binary"), probabilities(np.array([2.0]), "binary"))


def test_greedy_selection_mixes_models_whose_errors_cancel_and_keeps_a_perfect_one_alone():
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    high, low = y + 1.0 + 0.1 * rng.normal(size=500), y - 1.0 + 0.1 * rng.normal(size=500)
    weights = select_weights({"high": high, "low": low}, y, "regression")
    assert set(weights) == {"high", "low"} and abs(weights["high"] - 0.5) <= 0.08
    blend = blend_scores([high, low], np.array([weights["high"], weights["low"]]), "regression")
    assert np.mean((blend - y) ** 2) < 0.1 * min(np.mean((high - y) ** 2), np.mean((low - y) ** 2))
    assert select_weights({"noisy": high, "perfect": y.copy()}, y, "regression") == {"perfect": 1.0}


def test_the_lowest_loss_wins_between_candidates_and_prefer_simpler_keeps_one_within_a_standard_error():
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    e1, e2 = rng.normal(size=300), rng.normal(size=300)
    e2 *= np.sqrt(0.98 * np.mean(e1**2) / np.mean(e2**2))  # other errors, 2 % lower squared error: noise
    simple, close = [y + e1], [y + e2]  # one repeat of the folds each
    far = [y + 0.5 * e1]  # clearly better
    # the default: the lowest loss, however small the margin
    kept = choose({"glm": simple, "mlp": close}, y, "regression", order=["glm", "mlp"], ensemble=False)
    assert kept.chosen == "mlp" and kept.reason == "the lowest squared error"
    # prefer_simpler: the one-standard-error rule keeps the simpler one within noise of the best
    kept = choose({"glm": simple, "mlp": close}, y, "regression", order=["glm", "mlp"], ensemble=False, simpler=True)
    assert kept.chosen == "glm" and "within one standard error" in kept.reason
    assert kept.scores["mlp"]["loss"] < kept.scores["glm"]["loss"] <= kept.scores["mlp"]["loss"] + kept.scores["glm"]["se"]
    for simpler in (False, True):
        kept = choose({"glm": simple, "mlp": far}, y, "regression", order=["glm", "mlp"], ensemble=False,
                      simpler=simpler)
        assert kept.chosen == "mlp" and kept.reason == "the lowest squared error"
    # the order is the simplicity: named the other way round, the other one is the simpler and stays
    assert choose({"glm": simple, "mlp": close}, y, "regression", order=["mlp", "glm"], ensemble=False,
                  simpler=True).chosen == "mlp"
    assert choose({"glm": close, "mlp": simple}, y, "regression", order=["mlp", "glm"], ensemble=False,
                  simpler=True).chosen == "mlp"


def test_the_average_is_kept_only_when_it_beats_the_best_candidate_by_more_than_its_noise():
    rng = np.random.default_rng(1)
    y = rng.normal(size=400)
    a, b = [y + rng.normal(size=400)], [y + rng.normal(size=400)]  # independent errors: the mean halves them
    kept = choose({"glm": a, "mlp": b}, y, "regression", order=["glm", "mlp"], seed=0)
    assert kept.chosen == "ensemble" and set(kept.weights) == {"glm", "mlp"}
    assert "by more than one standard error" in kept.reason
    assert kept.scores["ensemble"]["loss"] < 0.7 * min(kept.scores[n]["loss"] for n in ("glm", "mlp"))
    # nearly the same errors: the average is compared, recorded, and not kept
    twin = [a[0] + 0.05 * rng.normal(size=400)]
    kept = choose({"glm": a, "mlp": twin}, y, "regression", order=["glm", "mlp"], seed=0)
    assert kept.chosen in ("glm", "mlp") and "ensemble" in kept.scores and kept.scores["ensemble"]["weights"]
    if kept.scores["ensemble"]["loss"] < kept.scores[kept.chosen]["loss"]:
        assert "the average's is lower by less than one standard error" in kept.reason
    # the weights are the mean over bootstrap resamples: seeded, and summing to 1
    again = choose({"glm": a, "mlp": b}, y, "regression", order=["glm", "mlp"], seed=0)
    assert again.weights == choose({"glm": a, "mlp": b}, y, "regression", order=["glm", "mlp"], seed=0).weights
    assert abs(sum(again.weights.values()) - 1) < 1e-3


def test_classification_compares_the_log_loss_so_a_confidently_wrong_model_loses():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, size=400)
    right = rng.random(400) < 0.9  # both models get the same 90 % of rows right
    sign = np.where(right, 1.0, -1.0) * np.where(y == 1, 1.0, -1.0)
    calibrated, overconfident = [1.5 * sign], [8.0 * sign]  # logits: the same argmax, other confidences
    by_loss = choose({"mlp": overconfident, "glm": calibrated}, y, "binary", order=["mlp", "glm"], ensemble=False)
    assert by_loss.chosen == "glm" and by_loss.reason == "the lowest log loss"
    assert by_loss.scores["glm"]["cv_accuracy"] == by_loss.scores["mlp"]["cv_accuracy"]
    # on accuracy they tie: the log loss breaks the tie; with prefer_simpler the simpler one stays
    by_accuracy = choose({"mlp": overconfident, "glm": calibrated}, y, "binary", order=["mlp", "glm"],
                         ensemble=False, metric="accuracy")
    assert by_accuracy.chosen == "glm" and by_accuracy.reason == "the lowest error rate"
    by_accuracy = choose({"mlp": overconfident, "glm": calibrated}, y, "binary", order=["mlp", "glm"],
                         ensemble=False, metric="accuracy", simpler=True)
    assert by_accuracy.chosen == "mlp"


def test_ensemble_options_are_checked():
    with pytest.raises(ConfigError, match="cannot be a member of an ensemble"):
        model_kind("ensemble", {"members": [{"kind": "auto", "weight": 1}, {"kind": "glm", "weight": 1}]})
    with pytest.raises(ConfigError, match="members"):
        model_kind("ensemble", {"members": [{"kind": "glm", "weight": 1}]})  # one is not an average
    with pytest.raises(ConfigError, match="weight"):
        model_kind("ensemble", {"members": [{"kind": "glm", "weight": 0}, {"kind": "mlp", "weight": 1}]})


def _mixed(n: int = 900) -> pd.DataFrame:
    """A target with a linear part over 12 features (what glm gets exactly and trees only in
    steps) and a sign interaction (what trees get and glm cannot): each kind alone misses a
    part, with errors of a similar size that the average of both partly cancels."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 14))
    y = x[:, :12] @ np.linspace(1.0, 0.4, 12) + np.sign(x[:, 12]) * np.sign(x[:, 13]) + 0.3 * rng.normal(size=n)
    return pd.DataFrame(x, columns=[f"f{i}" for i in range(14)]).assign(y=y)


def test_auto_keeps_the_blend_when_it_scores_better_than_each_candidate(tmp_path):
    shards = _prepared(tmp_path, _mixed(900), "y")
    options = {"candidates": ["glm", "lightgbm"], "cv_folds": 3, "cv_repeats": 1}  # one partition: 3 fits each
    result = fit_model(model_kind("auto", options), shards,
                       FitContext(out_dir=tmp_path / "auto", seed=0, train=TrainConfig(epochs=5)))
    auto = result.details["auto"]
    assert auto["chosen"] == "ensemble", auto
    blend, singles = auto["candidates"]["ensemble"], [auto["candidates"][k] for k in ("glm", "lightgbm")]
    assert blend["cv_mse"] < min(c["cv_mse"] for c in singles)
    assert set(blend["weights"]) == {"glm", "lightgbm"} and abs(sum(blend["weights"].values()) - 1) < 1e-9
    assert "average" in auto["reason"] and "3-fold cross-validation" in auto["reason"]
    spec = json.loads((tmp_path / "auto" / "model.json").read_text())
    assert spec["name"] == "ensemble" and [m["kind"] for m in spec["options"]["members"]] == ["glm", "lightgbm"]
    assert {"members/0-glm/model.json", "members/1-lightgbm/model.json"} <= set(spec["files"])
    # the saved model is the weighted average of its members, each loaded by its own kind
    model = load_trained(tmp_path / "auto")
    data = TrainingData(shards)
    x, y = data.matrix("test")
    members = [load_trained(tmp_path / "auto" / "members" / f) for f in ("0-glm", "1-lightgbm")]
    weights = np.array([m["weight"] for m in spec["options"]["members"]])
    expected = blend_scores([m.predict(x) for m in members], weights / weights.sum(), "regression")
    assert np.allclose(model.predict(x), expected, rtol=1e-5)
    test_mse = [float(np.mean((np.asarray(m.predict(x)).ravel() - y) ** 2)) for m in (model, *members)]
    assert test_mse[0] < min(test_mse[1:]), test_mse  # and it is better on rows no model saw
    # ensemble: false keeps one candidate (scored on the val split here: one fit each)
    off = fit_model(model_kind("auto", {**options, "ensemble": False, "cv_folds": 0}), shards,
                    FitContext(out_dir=tmp_path / "single", seed=0, train=TrainConfig(epochs=5)))
    assert off.details["auto"]["chosen"] in ("glm", "lightgbm")
    assert "ensemble" not in off.details["auto"]["candidates"]


def test_an_ensemble_project_deploys_predicts_and_its_package_verifies_every_member(cli, tmp_path):
    from blase.scaffold import create_project

    project = create_project(tmp_path / "ens")
    config = yaml.safe_load(project.config_path.read_text())
    config["train"].update(model="ensemble", epochs=3,
                           options={"members": [{"kind": "glm", "weight": 1}, {"kind": "mlp", "weight": 3}]})
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    done = cli("run", cwd=project.root)
    assert done.exit_code == 0, done.stdout + done.stderr
    package = project.models_dir / "ens" / "v1"
    info = json.loads((package / "package.json").read_text())
    assert {"members/0-glm/model.json", "members/1-mlp/model.safetensors"} <= set(info["model_files"])
    assert {"members/0-glm/model.json", "members/1-mlp/model.safetensors"} <= set(info["integrity"]["files"])
    if info["onnx"] is not None:  # onnx and onnxruntime installed: one graph of both members
        assert info["onnx"]["exported"] is True, info["onnx"]
    out = tmp_path / "scores.csv"
    done = cli("predict", "ens", "data/penguins.csv", "--out", str(out), cwd=project.root)
    assert done.exit_code == 0, done.stdout + done.stderr
    scores = pd.read_csv(out)
    assert len(scores) == 344
    # the members' probabilities, averaged 1:3, are the probabilities predict wrote
    import pyarrow as pa

    from blase.deploy import load_package
    from blase.deploy._predict import package_features

    pkg = load_package(package)
    raw = pa.Table.from_pandas(pd.read_csv(project.root / "data" / "penguins.csv"), preserve_index=False)
    x = package_features(pkg, pkg.load_transform(), raw)
    glm, mlp = (load_trained(package / "members" / f) for f in ("0-glm", "1-mlp"))
    p = 0.25 * probabilities(glm.predict(x), "multiclass") + 0.75 * probabilities(mlp.predict(x), "multiclass")
    assert np.allclose(scores[[f"prob_{c}" for c in pkg.classes]].to_numpy(), p, atol=1e-5)
    assert not np.allclose(p, probabilities(mlp.predict(x), "multiclass"), atol=1e-3)  # glm's share shows
    # a member's weights changed after deploy: the package refuses to load, naming the file
    weights = package / "members" / "1-mlp" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    done = cli("predict", "ens", "data/penguins.csv", "--out", str(tmp_path / "again.csv"), cwd=project.root)
    assert done.exit_code != 0
    assert "members/1-mlp/model.safetensors" in done.stderr


@pytest.mark.parametrize(("data", "label", "members"), [
    ("breast_cancer", "target", ["glm", "lightgbm"]),  # binary: glm's logit, lightgbm's margin
    ("wine", "target", ["glm", "mlp"]),  # multiclass: a torch network's export beside glm's
    ("diabetes", "target", ["glm", "lightgbm"]),  # regression
])
def test_an_ensemble_exports_one_onnx_graph_that_scores_as_it_does(tmp_path, data, label, members):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from tests.test_auto_model import _scaled

    frame = _scaled(data)
    if data == "diabetes":
        frame[label] = frame[label].astype(float)
    shards = _prepared(tmp_path, frame, label)
    options = {"members": [{"kind": k, "weight": w} for k, w in zip(members, (0.3, 0.7), strict=True)]}
    fit_model(model_kind("ensemble", options), shards,
              FitContext(out_dir=tmp_path / "ens", seed=0, train=TrainConfig(epochs=3)))
    model = load_trained(tmp_path / "ens")
    x, _ = TrainingData(shards).matrix("test")
    # far outside the training rows too: members sure of their answer must not make the blend's
    # log-odds or log-probabilities differ between numpy and ONNX's float32
    x = np.concatenate([x, 8 * x]).astype(np.float32)
    model.export_onnx(tmp_path / "ens.onnx", x.shape[1])
    got = ort.InferenceSession(str(tmp_path / "ens.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"features": x})[0]
    want = np.asarray(model.predict(x), dtype=np.float64)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= 1e-4 * max(1.0, np.max(np.abs(want)))
