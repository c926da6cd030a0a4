"""Monitor: drift statistics equal scipy's, the binned path stays close, and `blase monitor`
flags shifted means, new categories and changed null rates but not a fresh sample."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from scipy.spatial import distance

from blase.monitor import (
    PROFILE_FILE,
    Monitor,
    MonitorError,
    ReferenceProfile,
    chi_square_test,
    jensen_shannon,
    ks_test,
    monitor_history,
    wasserstein_binned,
    wasserstein_norm,
    z_test,
)


def make_rows(n: int, seed: int, *, lo: float = -3.0, hi: float = 3.0) -> pd.DataFrame:
    """x2 above cos(x1) is 'yes'; c is noise the model may use."""
    r = np.random.default_rng(seed)
    x1 = r.uniform(lo, hi, n)
    x2 = r.uniform(-1.5, 1.5, n)
    c = r.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    y = np.where(x2 > np.cos(x1), "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "c": c, "y": y})


def make_project(root, *, rows: int = 900):
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(root, example=False)
    make_rows(rows, 0).to_csv(project.root / "data" / "old.csv", index=False)
    (project.root / "blase.yaml").write_text(
        "project: syn\nseed: 1\ndata: {source: data/old.csv, label: y}\n"
        "transform:\n  - {op: impute, strategy: median}\n  - {op: scale, method: standard}\n  - {op: onehot}\n"
        "train: {model: mlp, hidden: [32, 16], epochs: 25, lr: 0.01, batch_size: 64}\n"
        "deploy: {onnx: false}\nupdate: {replay: 0.5, epochs: 15, tolerance: 0.05}\n"
        "monitor: {retrain_when: {drift_share: 0.3, metric_drop: 0.05}}\n"
    )
    result = Pipeline(project).run()
    return project, result


def shared_project(request, tmp_path_factory):
    """One deployed model for the monitor and update tests (they pin ``syn@v1``), kept on the
    pytest config so both test modules get the same one whichever runs first."""
    built = getattr(request.config, "_blase_syn_project", None)
    if built is None:
        built = make_project(tmp_path_factory.mktemp("monitor") / "syn")
        request.config._blase_syn_project = built
    return built


@pytest.fixture
def deployed(request, tmp_path_factory):
    return shared_project(request, tmp_path_factory)


# -- statistics ------------------------------------------------------------------------------


def test_statistics_equal_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 300), rng.normal(0.2, 1.3, 500)
    d, p = ks_test(a, b)
    want = stats.ks_2samp(a, b)
    assert d == pytest.approx(want.statistic, abs=1e-6) and p == pytest.approx(want.pvalue, abs=1e-6)
    assert wasserstein_norm(a, b) == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a), abs=1e-6)
    ref, cur = {"a": 50, "b": 30, "c": 20}, {"a": 30, "b": 45, "c": 25}
    stat, p = chi_square_test(ref, cur)
    want = stats.chisquare([30, 45, 25], np.array([50, 30, 20]) * 100 / 100)
    assert stat == pytest.approx(want.statistic, abs=1e-6) and p == pytest.approx(want.pvalue, abs=1e-6)
    assert jensen_shannon(ref, cur) == pytest.approx(distance.jensenshannon([50, 30, 20], [30, 45, 25]), abs=1e-6)
    # a category the reference never had cannot be expected: infinite statistic, p = 0
    assert chi_square_test(ref, {**cur, "new": 5}) == (np.inf, 0.0)
    # two-proportion z-test against its textbook form
    z, p = z_test({"x": 40, "y": 60}, {"x": 60, "y": 40})
    pooled = 0.5
    want_z = (0.4 - 0.6) / np.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert z == pytest.approx(want_z, abs=1e-6) and p == pytest.approx(2 * stats.norm.sf(abs(want_z)), abs=1e-6)


@pytest.mark.parametrize("shift", [0.0, 0.3, 1.0])
def test_binned_wasserstein_is_within_tolerance_of_exact(shift):
    """The large-reference path bins both sides on the reference grid: within 0.01 (normed)."""
    rng = np.random.default_rng(1)
    ref_values = rng.gamma(2.0, 3.0, 20_000)
    cur_values = rng.gamma(2.0, 3.0, 30_000) + shift * ref_values.std()
    profile = ReferenceProfile.build(pa.table({"v": ref_values}), {"v": "double"})
    col = profile.columns["v"]
    assert col.rows == 20_000 and not col.sample_complete and len(col.sample) == 1000
    keys, counts = np.unique(col.key_of(cur_values), return_counts=True)
    binned = wasserstein_binned(col.counts, dict(zip(keys.tolist(), counts.tolist(), strict=True)), col.width)
    exact = wasserstein_norm(ref_values, cur_values)
    assert binned / col.std == pytest.approx(exact, abs=0.01)


# -- checks against a deployed model ---------------------------------------------------------


def _check(project, df, **kwargs):
    return Monitor("syn@v1", project=project, plots=False).check(pa.Table.from_pandas(df), **kwargs)


def test_profile_is_in_the_package(deployed):
    project, _ = deployed
    data = json.loads((project.root / "models" / "syn" / "v1" / PROFILE_FILE).read_text())
    assert set(data["columns"]) == {"x1", "x2", "c"}
    assert data["rows"] == 900 and data["label"]["counts"] and data["prediction"]["counts"]
    assert data["columns"]["x1"]["sample_complete"] is True  # a small reference keeps every value
    assert data["metrics"]["accuracy"] > 0.8


def test_fresh_sample_does_not_drift_and_ks_equals_scipy(deployed):
    project, _ = deployed
    fresh = make_rows(600, 7)
    result = _check(project, fresh)
    assert result.drifted_columns == [] and not result.dataset_drift and not result.retrain
    x1 = next(c for c in result.columns if c.column == "x1")
    ref = pd.read_csv(project.root / "data" / "old.csv")["x1"]
    assert x1.test == "ks" and x1.p_value == pytest.approx(stats.ks_2samp(ref, fresh["x1"]).pvalue, abs=1e-6)
    c = next(c for c in result.columns if c.column == "c")
    assert c.test == "chisquare"
    assert result.metrics["accuracy"] > 0.8 and result.metric_drop is not None and result.metric_drop < 0.05


def test_shifted_mean_new_category_and_null_rate_drift(deployed):
    project, _ = deployed
    df = make_rows(600, 8)
    df["x1"] = df["x1"] + 2.0
    df.loc[df.index[:150], "c"] = "zz"
    df.loc[df.index[::3], "x2"] = np.nan
    result = _check(project, df)
    by = {c.column: c for c in result.columns}
    assert by["x1"].drifted and by["x1"].distribution_drift
    assert by["c"].drifted and by["c"].unseen_rows == 150 and "zz" in by["c"].unseen_examples
    assert by["x2"].null_drift and by["x2"].current_null_rate == pytest.approx(200 / 600)
    assert result.dataset_drift and result.retrain
    assert any("input columns drifted" in r for r in result.reasons)


def test_unlabelled_data_and_csv_path(deployed, tmp_path):
    project, _ = deployed
    path = tmp_path / "new.csv"
    make_rows(300, 9).drop(columns=["y"]).to_csv(path, index=False)
    result = Monitor("syn@v1", project=project, plots=False).check(path)
    assert result.rows == 300 and result.metrics == {} and result.prediction is not None


def test_bad_input_is_refused(deployed, tmp_path):
    project, _ = deployed
    with pytest.raises(MonitorError, match="missing column"):
        _check(project, make_rows(50, 1).drop(columns=["x2"]))
    typed = make_rows(50, 1)
    typed["x1"] = "high"
    with pytest.raises(MonitorError, match=r"'x1' is (large_)?string but the model was trained on double"):
        _check(project, typed)
    copy = tmp_path / "v-old"
    shutil.copytree(project.root / "models" / "syn" / "v1", copy)
    (copy / PROFILE_FILE).unlink()
    with pytest.raises(MonitorError, match="redeploy it with this version of Blase"):
        Monitor(str(copy), project=project).check(pa.Table.from_pandas(make_rows(50, 1)))


def test_history_plots_report_and_cli(deployed, tmp_path, cli):
    project, result = deployed
    Monitor("syn@v1", project=project).check(pa.Table.from_pandas(make_rows(300, 11)))
    report = tmp_path / "report.html"
    r = cli("monitor", "syn@v1", str(project.root / "data" / "old.csv"), "--json", "--report", str(report),
            "--project", str(project.root))
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rows"] == 900 and out["drifted_columns"] == [] and out["update"] is None
    page = report.read_text()
    assert "data:image/png;base64," in page and "drift-scores.png" in page and "history.png" in page
    history = monitor_history(project, "syn")
    assert len(history) >= 2
    from blase.track import list_runs

    runs = list_runs([project.root], where="kind = 'monitor'")
    assert runs and all(run.parent == result.run_id for run in runs)
    r = cli("monitor", "nope", "x.csv", "--project", str(project.root))
    assert r.exit_code != 0 and "no model named 'nope'" in (r.stdout + r.stderr)
