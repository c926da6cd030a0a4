"""Monitor and predict say what happened: an int column that arrives as floats is scored (not
reported as "no labels"), drift below the triggers is not "the model still fits", and the CLI's
columns each mean one thing."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

FEATURES = ["a", "b", "c", "d", "e", "f", "g"]


def _rows(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "a": r.integers(0, 10, n) + int(shift * 3),  # integers in training
        "b": r.normal(shift, 1.0, n),
        "c": r.normal(shift, 1.0, n),
        **{k: r.normal(0.0, 1.0, n) for k in FEATURES[3:]},
    })
    frame["y"] = ((frame["a"] - 4.5) / 3 + frame["b"] + frame["c"] + 0.3 * r.normal(size=n) > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def seven(tmp_path_factory):
    """A model on seven inputs, `a` read as int64 at training time."""
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(tmp_path_factory.mktemp("mon") / "seven", example=False)
    _rows(800, 0).to_csv(project.root / "data" / "old.csv", index=False)
    project.config_path.write_text(
        "project: seven\nseed: 1\ndata: {source: data/old.csv, label: y}\n"
        "transform:\n  - {op: impute, strategy: median}\n  - {op: scale, method: standard}\n"
        "train: {model: mlp, hidden: [16], epochs: 15, lr: 0.01, batch_size: 64}\ndeploy: {onnx: false}\n")
    Pipeline(project).run()
    return project


def test_an_int_column_that_arrives_as_floats_is_scored_and_its_labels_used(seven, cli, tmp_path):
    new = _rows(300, 7)
    new["a"] = new["a"] + 0.5  # the same column, now with fractions: DuckDB reads it as DOUBLE
    path = tmp_path / "floats.csv"
    new.to_csv(path, index=False)
    report = tmp_path / "report.html"
    r = cli("monitor", "seven", str(path), "--json", "--report", str(report), "--project", str(seven.root))
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert not [n for n in out["notes"] if "skipped" in n], out["notes"]
    assert out["metrics"]["accuracy"] > 0.7 and out["metrics"]["n"] == 300
    assert "has no labels" not in report.read_text()

    preds = tmp_path / "preds.csv"
    r = cli("predict", "seven", str(path), "--out", str(preds), "--project", str(seven.root))
    assert r.exit_code == 0, r.stderr


def test_a_value_of_the_wrong_type_is_reported_with_its_column(seven, cli, tmp_path):
    from blase.deploy import resolve_model

    transform = resolve_model(seven, "seven").load_transform()
    import pyarrow as pa

    from blase.errors import TransformError

    table = pa.table({**{k: pa.array([0.5, 1.0]) for k in FEATURES if k != "d"},
                      "d": pa.array(["1.0", "oops"])})
    with pytest.raises(TransformError, match=r"column 'd' is string here but the transform was fitted on double"):
        transform.apply(table)


def test_drift_below_the_triggers_is_not_called_a_fit(seven, cli, tmp_path):
    new = _rows(600, 8, shift=1.5).drop(columns=["y"])  # a, b, c move; the model's output with them
    path = tmp_path / "shifted.csv"
    new.to_csv(path, index=False)
    r = cli("monitor", "seven", str(path), "--json", "--project", str(seven.root))
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["drifted_columns"]) == {"a", "b", "c"}  # 3 of 7: under drift_share 50 %
    assert out["prediction"]["drifted"] and not out["retrain"]
    assert out["verdict"] == "drift found, no retrain trigger fired"
    assert not any("still fits" in reason for reason in out["reasons"])
    assert any("3 of 7 input columns and the predictions drifted" in reason for reason in out["reasons"])
    r = cli("monitor", "seven", str(path), "--project", str(seven.root))
    text = " ".join(r.stdout.split())  # the terminal wraps long lines
    assert "still fits" not in text
    assert "drift found, no retrain trigger fired" in text
    assert "3 of 7 input columns and the predictions drifted" in text


def test_the_cli_table_shows_each_tests_statistic_and_p_value_apart(seven, cli, tmp_path):
    new = _rows(600, 9, shift=1.0).drop(columns=["y"])
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    out = json.loads(cli("monitor", "seven", str(path), "--json", "--project", str(seven.root)).stdout)
    r = cli("monitor", "seven", str(path), "--project", str(seven.root))
    header = next(line for line in r.stdout.splitlines() if line.split()[:2] == ["column", "test"])
    assert header.split()[2:4] == ["statistic", "p-value"] and "score" not in header
    for col in out["columns"]:
        line = next(x for x in r.stdout.splitlines() if x.split()[:1] == [col["column"]])
        shown = line.split()[2]
        assert float(shown) == pytest.approx(col["statistic"], rel=2e-3, abs=1e-3), (line, col)
        if col["p_value"] is not None:  # KS: the statistic is D, not 1 - p
            assert float(line.split()[3]) == pytest.approx(col["p_value"], rel=2e-3, abs=1e-3)
    assert re.search(r"\bks\b", r.stdout)
