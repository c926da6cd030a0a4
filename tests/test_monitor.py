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
    ColumnProfile,
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
from blase.profile import NEW_KEY, grouped_counts


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


def test_distances_without_scipy_equal_scipy():
    """Jensen-Shannon and the z-test's p-value are numpy/math (no scipy import on large data)."""
    rng = np.random.default_rng(2)
    for _ in range(5):
        a, b = rng.integers(0, 50, 12).astype(float), rng.integers(0, 50, 12).astype(float)
        a[rng.integers(0, 12, 3)] = 0  # empty bins on either side
        b[rng.integers(0, 12, 3)] = 0
        ref, cur = dict(enumerate(a)), dict(enumerate(b))
        assert jensen_shannon(ref, cur) == pytest.approx(distance.jensenshannon(a, b), abs=1e-12)
    z, p = z_test({"x": 10, "y": 990}, {"x": 400, "y": 600})
    assert p == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9, abs=1e-300)


def test_one_pass_counts_match_the_reference_and_keep_sample_values_exact():
    """Keys made after grouping equal the reference's; the sample comes back value for value."""
    import duckdb

    x = [0.2, 0.3, None, float("nan"), float("inf"), -float("inf"), 1e300, -1e300, 7.74, 0.2]
    c = ["a", "b", None, "zz", "it's, {x}", "NULL", "a", "b", "a", "zz"]
    table = pa.table({"x": pa.array(x, pa.float64()), "c": pa.array(c, pa.string()),
                      "t": pa.array(list(range(10)), pa.timestamp("s"))})
    num = ColumnProfile("x", "numeric", "double", 10, 1, 9, {}, lo=0.0, width=0.5)
    cat = ColumnProfile("c", "categorical", "string", 10, 1, 5, {"a": 3, "b": 2})
    con = duckdb.connect()
    try:
        con.register("new", table)
        con.execute(f"CREATE TYPE known AS ENUM ('a', 'b', '{NEW_KEY}')")
        keys = {"x": (num.scan_expr("x"), num.key_expr), "c": (cat.scan_expr("c"), lambda v: cat.key_expr(v, "known"))}
        out = grouped_counts(con, "new", keys, sample="TRUE", sample_columns=["t", "c", "x"])
    finally:
        con.close()
    # round(x / 0.5), clamped to +-1e6; NaN sorts above every number in DuckDB
    assert out["x"] == {0: 2, 1: 1, None: 1, 1_000_000: 3, -1_000_000: 2, 15: 1}
    assert out["c"] == {"a": 3, "b": 2, NEW_KEY: 4, None: 1}
    sample = out["__sample__"]
    assert sample.schema == table.select(["t", "c", "x"]).schema
    got = sorted(sample.to_pylist(), key=lambda r: r["t"])
    want = table.select(["t", "c", "x"]).to_pylist()
    assert [r["c"] for r in got] == c and [r["t"] for r in got] == [r["t"] for r in want]
    assert all(a == b or (a != a and b != b) for a, b in zip([r["x"] for r in got], x, strict=True))
    # the reference is keyed by the same two-step SQL, so the same data gives the same counts
    profile = ReferenceProfile.build(table, {"x": "double", "c": "string", "t": "timestamp[s]"})
    con = duckdb.connect()
    try:
        con.register("same", table)
        same = grouped_counts(con, "same", {k: (p.scan_expr(k), p.key_expr) for k, p in profile.columns.items()})
    finally:
        con.close()
    for name, col in profile.columns.items():
        assert {k: v for k, v in same[name].items() if k is not None} == col.counts


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


def test_large_integers_keep_a_key_per_value():
    """Integers spanning few values are keyed from their minimum, so values above the +-1e6
    key clamp (ids, codes) still get a key each, and a shift of half their range drifts."""
    import duckdb

    from blase.monitor._drift import column_drift
    from blase.profile import CurrentColumn

    rng = np.random.default_rng(0)
    ref = pa.table({"code": pa.array(5_000_000 + rng.integers(0, 100, 5000), pa.int64())})
    col = ReferenceProfile.build(ref, {"code": "int64"}).columns["code"]
    assert (col.lo, col.width, len(col.counts)) == (5_000_000.0, 1.0, 100)

    def check(offset):
        new = pa.table({"code": pa.array(offset + rng.integers(0, 100, 5000), pa.int64())})
        con = duckdb.connect()
        try:
            con.register("new", new)
            counts = grouped_counts(con, "new", {"code": (col.scan_expr("code"), col.key_expr)})["code"]
        finally:
            con.close()
        return column_drift(col, CurrentColumn("code", 5000, 0, counts))

    assert not check(5_000_000).drifted
    shifted = check(5_000_050)
    assert shifted.drifted and shifted.test == "wasserstein" and shifted.statistic > 1.0


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


def test_ignored_columns_are_left_out_of_drift(deployed):
    """monitor.ignore: a column that moves by design (here x1, shifted) is not compared and
    does not count in the drift share; predictions still use it; a wrong name is refused."""
    from blase.config import MonitorConfig

    project, _ = deployed
    df = make_rows(600, 7)  # a fresh sample (no drift: see above), then x1 moved
    df["x1"] = df["x1"] + 2.0
    kept = Monitor("syn@v1", project=project, plots=False, config=MonitorConfig(ignore=["x1"]))
    result = kept.check(pa.Table.from_pandas(df))
    assert [c.column for c in result.columns] == ["x2", "c"]
    assert result.drifted_columns == [] and result.drift_share == 0.0
    assert result.prediction is not None and result.metrics["accuracy"] < 0.8  # x1 still scored
    wrong = Monitor("syn@v1", project=project, plots=False, config=MonitorConfig(ignore=["x_1"]))
    with pytest.raises(MonitorError, match=r"monitor\.ignore names 'x_1'") as info:
        wrong.check(pa.Table.from_pandas(df))
    assert "did you mean 'x1'" in info.value.hint


def test_datetime_columns_are_compared_only_when_included(tmp_path):
    """A datetime input column of later data always lies beyond the training dates, so by
    default (as in Evidently's drift table) it is not compared, and the check says so;
    monitor.include compares it (and it drifts). The new data must still have it."""
    import pydantic

    from blase.config import MonitorConfig
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(tmp_path / "dated", example=False)
    old = make_rows(600, 0)
    old.insert(0, "when", pd.date_range("2024-01-01", periods=600, freq="h"))
    old.to_csv(project.root / "data" / "old.csv", index=False)
    (project.root / "blase.yaml").write_text(
        "project: dated\nseed: 1\ndata: {source: data/old.csv, label: y}\n"
        "transform:\n  - {op: drop, columns: [when]}\n  - {op: scale, method: standard}\n  - {op: onehot}\n"
        "train: {model: mlp, hidden: [16], epochs: 5, lr: 0.01, batch_size: 64}\ndeploy: {onnx: false}\n"
    )
    Pipeline(project).run()
    later = make_rows(600, 7)
    later.insert(0, "when", pd.date_range("2025-06-01", periods=600, freq="h"))
    new = pa.Table.from_pandas(later)

    default = Monitor("dated", project=project, plots=False).check(new)
    assert [c.column for c in default.columns] == ["x1", "x2", "c"]
    assert not default.dataset_drift and default.drift_share == 0.0
    assert any(n.startswith("not compared: when (datetime") for n in default.notes)

    included = Monitor("dated", project=project, plots=False, config=MonitorConfig(include=["when"])).check(new)
    by = {c.column: c for c in included.columns}
    assert set(by) == {"when", "x1", "x2", "c"} and by["when"].drifted
    assert not any(n.startswith("not compared") for n in included.notes)

    needless = Monitor("dated", project=project, plots=False, config=MonitorConfig(include=["x1"])).check(new)
    assert [c.column for c in needless.columns] == ["x1", "x2", "c"]
    assert any(n.startswith("monitor.include names x1, compared anyway") for n in needless.notes)
    with pytest.raises(MonitorError, match=r"monitor\.include names 'wen'") as info:
        Monitor("dated", project=project, plots=False, config=MonitorConfig(include=["wen"])).check(new)
    assert "did you mean 'when'" in info.value.hint
    with pytest.raises(pydantic.ValidationError, match="both name when"):
        MonitorConfig(ignore=["when"], include=["when"])
    with pytest.raises(MonitorError, match="when"):
        Monitor("dated", project=project, plots=False).check(new.drop_columns(["when"]))


def test_unlabelled_data_and_csv_path(deployed, tmp_path, monkeypatch):
    project, _ = deployed
    path = tmp_path / "new.csv"
    make_rows(300, 9).drop(columns=["y"]).to_csv(path, index=False)
    result = Monitor("syn@v1", project=project, plots=False).check(path)
    assert result.rows == 300 and result.metrics == {} and result.prediction is not None
    # a relative path is read from the current folder when the file is there
    monkeypatch.chdir(tmp_path)
    assert Monitor("syn@v1", project=project, plots=False, track=False).check("new.csv").rows == 300


def test_a_big_csv_is_sampled_by_byte_ranges_with_the_same_verdicts(deployed, tmp_path, monkeypatch):
    """Above blase._sample.MIN_BYTES (lowered here) the sample comes from byte ranges of the
    file instead of the scan; counts, drift verdicts and metrics stay those of the scan path."""
    import blase._sample as sampling

    project, _ = deployed
    df = make_rows(30_000, 11)
    df["x1"] = df["x1"] + 1.0
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    (project.root / "blase.yaml").write_text(
        (project.root / "blase.yaml").read_text().replace("monitor: {", "monitor: {sample_rows: 3000, ")
    )
    taken = []
    real = sampling.byte_range_sample

    def spy(*args, **kwargs):
        taken.append(real(*args, **kwargs))
        return taken[-1]

    monkeypatch.setattr(sampling, "byte_range_sample", spy)
    try:
        results = {}
        for name, floor in (("scan", 1 << 60), ("bytes", 0)):
            monkeypatch.setattr(sampling, "MIN_BYTES", floor)
            results[name] = Monitor("syn@v1", project=project, plots=False, track=False).check(path)
    finally:
        (project.root / "blase.yaml").write_text(
            (project.root / "blase.yaml").read_text().replace("monitor: {sample_rows: 3000, ", "monitor: {")
        )
    scan, by_bytes = results["scan"], results["bytes"]
    assert taken[0] is None and taken[1] is not None  # each path ran where it should
    assert by_bytes.rows == scan.rows == 30_000
    assert 2_900 <= by_bytes.sample_rows <= 3_000
    assert [c.column for c in by_bytes.columns if c.drifted] == [c.column for c in scan.columns if c.drifted]
    assert "x1" in [c.column for c in by_bytes.columns if c.drifted]
    assert by_bytes.metrics["accuracy"] == pytest.approx(scan.metrics["accuracy"], abs=0.05)


def test_unseen_categories_are_shown_as_they_are(deployed):
    """New categories count under one key; the examples keep quotes, commas and braces."""
    project, _ = deployed
    df = make_rows(400, 12)
    df.loc[df.index[:40], "c"] = "it's, {new}"
    df.loc[df.index[40:50], "c"] = 'say "hi"'
    by = {c.column: c for c in _check(project, df).columns}
    assert by["c"].unseen_rows == 50 and set(by["c"].unseen_examples) == {"it's, {new}", 'say "hi"'}


def test_bad_input_is_refused(deployed, tmp_path):
    project, _ = deployed
    with pytest.raises(MonitorError, match="missing column"):
        _check(project, make_rows(50, 1).drop(columns=["x2"]))
    typed = make_rows(50, 1)
    typed["x1"] = "high"
    with pytest.raises(MonitorError, match=r"'x1' is (large_)?string but the model was trained on double"):
        _check(project, typed)
    copy = project.root / "models" / "syn-old" / "v1"  # a package of an older Blase: no profile, no hashes
    shutil.copytree(project.root / "models" / "syn" / "v1", copy)
    (copy / PROFILE_FILE).unlink()
    info = json.loads((copy / "package.json").read_text())
    info.pop("integrity", None)
    (copy / "package.json").write_text(json.dumps(info))
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


@pytest.mark.parametrize(
    "values", [[0, 1, 1, None], [True, False, None], ["yes", "no", None], [10**12, -3], [1.5, 2.0, None]]
)
def test_prediction_text_is_spelt_as_duckdb_spells_it(values):
    """Predicted classes are keyed as the reference keyed them (DuckDB's VARCHAR cast),
    also where the common types are spelt without DuckDB."""
    import duckdb
    import pyarrow as pa

    from blase.monitor._score import _as_text

    con = duckdb.connect()
    con.register("t", pa.table({"v": pa.array(values)}))
    assert _as_text(values) == [r[0] for r in con.execute("SELECT CAST(v AS VARCHAR) FROM t").fetchall()]


def test_a_model_on_more_than_64_columns_deploys_and_monitors(tmp_path):
    """DuckDB's grouping_id takes at most 64 columns: a 70-feature table (like sklearn's
    8x8 digits) used to fail deploy with an internal 'GROUPING statement cannot have more than
    64 groups'; the reference and the monitor scan now cover every column."""
    from blase.monitor import Monitor
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(tmp_path / "wide", example=False)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(300, 70)), columns=[f"f{i}" for i in range(70)])
    frame["y"] = np.where(frame["f0"] + frame["f69"] > 0, "yes", "no")
    frame.to_csv(project.root / "data" / "wide.csv", index=False)
    (project.root / "blase.yaml").write_text(
        "project: wide\ndata: {source: data/wide.csv, label: y}\n"
        "train: {model: linear, epochs: 2}\ndeploy: {onnx: false}\n"
    )
    result = Pipeline(project).run()
    assert result.status == "finished", result
    shifted = frame.copy()
    shifted["f69"] += 3.0
    shifted.to_csv(project.root / "data" / "new.csv", index=False)
    report = Monitor("wide@v1", project=project, plots=False).check(str(project.root / "data" / "new.csv"))
    drifted = set(report.drifted_columns)
    assert "f69" in drifted and "f0" not in drifted
