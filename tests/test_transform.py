"""Transform: standard operations against numpy/pandas/scikit-learn, out-of-core fitting,
saved state, user code, and the errors a user sees."""

from __future__ import annotations

import datetime as dt
import json
import logging
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from blase.errors import TransformError
from blase.testing import check_operation, sample_table
from blase.transform import (
    Cast,
    Clip,
    DatetimeParts,
    Drop,
    Filter,
    HashEncode,
    Impute,
    Log1p,
    NotFittedError,
    OneHot,
    Operation,
    Ordinal,
    Rename,
    Scale,
    Select,
    SQLExpr,
    Transform,
    UserFunction,
    _stats,
    from_step_config,
    transform_function,
)

# --------------------------------------------------------------------------- fixtures


def make_frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(5, 2, n)
    a[rng.random(n) < 0.1] = np.nan
    c = rng.choice(["x", "y", "z", "w", "v"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]).astype(object)
    c[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "a": a,
            "b": rng.integers(0, 100, n),
            "skew": rng.lognormal(0, 2, n),
            "c": c,
            "d": rng.choice(["p", "q", "r"], n),
            "ts": pd.date_range("2024-01-01", periods=n, freq="37min"),
            "label": rng.integers(0, 2, n),
        }
    )


def to_table(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)


def write_parts(folder: Path, table: pa.Table, parts: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), folder / f"part-{i:05d}.parquet")
    return folder


def read_parts(folder: Path) -> pa.Table:
    return pq.read_table(sorted(str(p) for p in Path(folder).glob("part-*.parquet")))


@pytest.fixture
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture
def source(tmp_path, frame) -> Path:
    return write_parts(tmp_path / "extracted", to_table(frame))


def fitted(op: Operation, table: pa.Table, exclude=("label",)) -> Operation:
    return op.fit(table, exclude=exclude)


# --------------------------------------------------------------------------- numeric ops


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_impute_matches_sklearn(frame, strategy):
    from sklearn.impute import SimpleImputer

    op = fitted(Impute(strategy=strategy, value=-1.5, columns=["a"]), to_table(frame))
    got = op.apply(to_table(frame))["a"].to_numpy()
    ref = SimpleImputer(strategy=strategy, fill_value=-1.5).fit_transform(frame[["a"]])[:, 0]
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    if strategy == "median":  # exact median, bit for bit
        assert op.statistics_["a"] == np.nanmedian(frame["a"])


@pytest.mark.parametrize("strategy", ["mean", "median"])
def test_nan_counts_as_missing_as_in_sklearn(tmp_path, strategy):
    """Parquet written from numpy keeps NaN as a value, not a null: impute fills it and the
    statistics skip it, on the SQL path (files) and the Arrow path (a batch) alike."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    x = rng.normal(3, 2, 2000)
    x[rng.random(2000) < 0.1] = np.nan
    table = pa.table({"x": pa.array(x, from_pandas=False), "label": rng.integers(0, 2, 2000)})
    assert table.column("x").null_count == 0  # NaN, not null
    pq.write_table(table, tmp_path / "nan.parquet")
    tf = Transform([Impute(strategy=strategy), Scale(method="standard")], exclude=["label"])
    tf.run(tmp_path / "nan.parquet", tmp_path / "out")
    ref = StandardScaler().fit_transform(SimpleImputer(strategy=strategy).fit_transform(x[:, None]))[:, 0]
    np.testing.assert_allclose(read_parts(tmp_path / "out")["x"].to_numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tf.apply(table)["x"].to_numpy(), ref, rtol=1e-12, atol=1e-12)


def test_impute_most_frequent_strings_and_default_columns(frame):
    table = to_table(frame)
    op = fitted(Impute(strategy="most_frequent"), table)
    assert set(op.columns_) == {"a", "b", "skew", "c", "d"}  # not the label, not the timestamp
    assert op.statistics_["c"] == frame["c"].mode()[0]
    assert op.apply(table)["c"].null_count == 0
    assert op.apply(table).schema.field("b").type == pa.int64()  # keeps the type


@pytest.mark.parametrize(
    ("method", "scaler"),
    [("standard", "StandardScaler"), ("minmax", "MinMaxScaler"), ("robust", "RobustScaler")],
)
def test_scale_matches_sklearn(frame, method, scaler):
    import sklearn.preprocessing as skp

    cols = ["a", "b", "skew"]
    op = fitted(Scale(method=method, columns=cols), to_table(frame))
    out = op.apply(to_table(frame))
    ref = getattr(skp, scaler)().fit_transform(frame[cols].astype(float))
    for i, c in enumerate(cols):
        assert out.schema.field(c).type == pa.float64()
        np.testing.assert_allclose(out[c].to_numpy(zero_copy_only=False), ref[:, i], rtol=1e-12, atol=1e-12)


def test_scale_zero_spread_and_all_null_column(caplog):
    table = pa.table({"k": [3.0, 3.0, 3.0], "n": pa.array([None, None, None], pa.float64())})
    with caplog.at_level(logging.WARNING):
        op = fitted(Scale(), table)
    assert op.scale_ == {"k": 1.0, "n": 1.0}  # a constant column is only centred (as sklearn)
    assert op.apply(table)["k"].to_pylist() == [0.0, 0.0, 0.0]
    assert op.apply(table)["n"].null_count == 3
    assert any("only nulls" in r.message for r in caplog.records)


def test_clip_and_log1p_match_numpy(frame):
    table = to_table(frame)
    clip = fitted(Clip(lower=2.0, upper=7.5, columns=["a", "b"]), table)
    out = clip.apply(table)
    np.testing.assert_array_equal(out["a"].to_numpy(zero_copy_only=False), np.clip(frame["a"], 2.0, 7.5))
    np.testing.assert_array_equal(out["b"].to_numpy(), np.clip(frame["b"], 2.0, 7.5))
    log = fitted(Log1p(columns=["skew", "a"]), table)
    out = log.apply(table)
    np.testing.assert_array_equal(out["skew"].to_numpy(), np.log1p(frame["skew"]))
    assert out["a"].null_count == frame["a"].isna().sum()
    assert log.sql(table.schema) is None  # Arrow only: DuckDB has no log1p


# --------------------------------------------------------------------------- exact quantiles


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).normal(0, 1, 20_001),
        np.random.default_rng(2).lognormal(0, 3, 10_000),  # heavy skew: several refinements
        np.random.default_rng(3).integers(0, 5, 10_000).astype(float),  # heavy ties
        np.r_[np.full(9_000, 7.0), np.random.default_rng(4).normal(0, 1e-300, 1_000)],
    ],
)
def test_exact_quantiles_out_of_core_equal_numpy(values):
    from blase.transform._base import batch_connection

    con = batch_connection()
    con.register("_q", pa.table({"v": values}))
    try:
        qs = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
        got = _stats.exact_quantiles(con, "_q", "v", qs, sort_limit=50)  # forces refinement
        whole = _stats.exact_quantiles(con, "_q", "v", qs)
    finally:
        con.unregister("_q")
    assert got == whole == [float(np.quantile(values, q)) for q in qs]


# --------------------------------------------------------------------------- encoders


def test_onehot_matches_sklearn_max_categories(frame):
    from sklearn.preprocessing import OneHotEncoder

    df = frame.dropna(subset=["c"])
    table = to_table(df)
    op = fitted(OneHot(columns=["c"], max_categories=4), table)
    out = op.apply(table)
    enc = OneHotEncoder(max_categories=4, handle_unknown="infrequent_if_exist", sparse_output=False)
    ref = enc.fit_transform(df[["c"]])
    names = [n for n in out.column_names if n.startswith("c_")]
    assert names == ["c_x", "c_y", "c_z", "c_other"]
    assert [n.replace("infrequent_sklearn", "other") for n in enc.get_feature_names_out()] == names
    np.testing.assert_array_equal(np.column_stack([out[n].to_numpy() for n in names]), ref)
    assert out.column_names.index("c_x") == table.column_names.index("c")  # in place


def test_onehot_nulls_ties_and_no_cap():
    table = pa.table({"s": ["b", "a", None, "c", "a", "b"]})  # a and b tie: ordered by value
    op = fitted(OneHot(max_categories=2), table)
    assert op.categories_ == {"s": ["a"]} and op.other_ == {"s": True}
    assert op.apply(table)["s_other"].to_pylist() == [1, 0, 0, 1, 0, 1]
    full = fitted(OneHot(), table)
    assert full.other_ == {"s": False}
    out = full.apply(table)
    assert out.column_names == ["s_a", "s_b", "s_c"]
    assert [out[c][2].as_py() for c in out.column_names] == [0, 0, 0]  # null: all zeros


def test_ordinal_matches_sklearn(frame):
    from sklearn.preprocessing import OrdinalEncoder

    df = frame.dropna(subset=["c"])
    op = fitted(Ordinal(columns=["c", "d"]), to_table(df))
    new = pd.DataFrame({"c": ["x", "NEW", None], "d": ["r", "p", "zz"]})
    out = op.apply(to_table(new))
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1).fit(df[["c", "d"]])
    ref = enc.transform(new.fillna("NEW"))
    assert out["c"].to_pylist() == [int(ref[0, 0]), -1, None]
    assert out["d"].to_pylist() == [int(v) for v in ref[:, 1]]


def test_hash_encode_counts_each_value_once(frame):
    table = to_table(frame)
    op = fitted(HashEncode(columns=["c", "d"], n_features=8), table)
    out = op.apply(table)
    hashed = np.column_stack([out[f"hash_{i}"].to_numpy() for i in range(8)])
    expected = frame["c"].notna().astype(int) + 1
    np.testing.assert_array_equal(hashed.sum(axis=1), expected)
    assert "c" not in out.column_names and "d" not in out.column_names


def test_datetime_parts_match_pandas(frame):
    table = to_table(frame)
    op = fitted(DatetimeParts(parts=["year", "month", "day", "dayofweek", "hour", "minute"]), table)
    out = op.apply(table)
    assert "ts" not in out.column_names
    for part, ref in [("year", frame.ts.dt.year), ("month", frame.ts.dt.month), ("day", frame.ts.dt.day),
                      ("dayofweek", frame.ts.dt.day_of_week), ("hour", frame.ts.dt.hour),
                      ("minute", frame.ts.dt.minute)]:
        assert out[f"ts_{part}"].to_pylist() == ref.tolist(), part
        assert out.schema.field(f"ts_{part}").type == pa.int32()


def test_datetime_parts_leave_out_the_parts_that_never_vary(tmp_path):
    # a year-only date (1 January of each year): month and day are constant, hour too, and the
    # weekday is a function of the year; none of them is a feature
    years = pa.table({"y": [dt.date(1970 + i % 12, 1, 1) for i in range(60)], "x": list(range(60))})
    op = fitted(DatetimeParts(), years)
    assert op.apply(years).column_names == ["y_year", "x"]
    assert op.sql(years.schema).select[0].endswith('AS "y_year"')
    # the learned parts are saved and come back with the fitted transform
    t = Transform([DatetimeParts()]).fit(years)
    t.save(tmp_path / "t.json")
    assert Transform.load(tmp_path / "t.json").apply(years).column_names == ["y_year", "x"]
    # daily dates keep the weekday; explicit parts are kept as asked, constant or not
    days = pa.table({"d": [dt.date(2013, 1, 1) + dt.timedelta(days=i) for i in range(800)]})
    assert fitted(DatetimeParts(), days).apply(days).column_names == ["d_year", "d_month", "d_day",
                                                                      "d_dayofweek"]
    asked = fitted(DatetimeParts(parts=["year", "hour"]), years).apply(years)
    assert asked.column_names == ["y_year", "y_hour", "x"]


# --------------------------------------------------------------------------- column ops


def test_select_drop_rename_cast_filter_sql(frame):
    table = to_table(frame)
    assert fitted(Select(["d", "a"]), table).apply(table).column_names == ["d", "a"]
    assert "b" not in fitted(Drop(["b"]), table).apply(table).column_names
    renamed = fitted(Rename({"a": "alpha"}), table).apply(table)
    assert renamed.column_names[0] == "alpha"
    cast = fitted(Cast(["b"], "float32"), table).apply(table)
    assert cast.schema.field("b").type == pa.float32()
    kept = fitted(Filter("b >= 50 AND d <> 'q'"), table).apply(table)
    assert kept.num_rows == int(((frame.b >= 50) & (frame.d != "q")).sum())
    expr = fitted(SQLExpr("b * 2 + 1", "b2"), table).apply(table)
    assert expr["b2"].to_pylist() == (frame.b * 2 + 1).tolist()
    bad = pa.table({"s": ["1", "x"]})
    with pytest.raises(TransformError, match="cast to int"):
        fitted(Cast(["s"], "int"), bad).apply(bad)
    assert fitted(Cast(["s"], "int", errors="null"), bad).apply(bad)["s"].to_pylist() == [1, None]


# --------------------------------------------------------------------------- the contract


STANDARD_OPS = [
    Select(["x", "cat", "label"]),
    Drop(["z"]),
    Rename({"x": "x_renamed"}),
    Cast(["y"], "float64"),
    Filter("y > 10"),
    SQLExpr("x * y", "xy"),
    Impute(strategy="mean"),
    Impute(strategy="median"),
    Impute(strategy="most_frequent"),
    Impute(strategy="constant", value=0.0),
    Scale(method="standard"),
    Scale(method="minmax"),
    Scale(method="robust"),
    Clip(lower=0.0, upper=12.0),
    Log1p(columns=["z"]),
    OneHot(max_categories=5),
    Ordinal(),
    HashEncode(n_features=6),
    DatetimeParts(parts=["month", "dayofweek", "hour"]),
]


@pytest.mark.parametrize("op", STANDARD_OPS, ids=lambda op: repr(op))
def test_every_standard_operation_passes_the_checker(op):
    check_operation(op)


class GroupMean(Operation):
    """A stateful user operation: add the per-group mean of a column, learned in one pass."""

    def __init__(self, value: str = "x", group: str = "cat") -> None:
        self.value = value
        self.group = group

    def fit(self, batches, **_):
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for batch in batches:
            df = batch.to_pandas()
            g = df.groupby(self.group)[self.value]
            for key, s in g.sum().items():
                sums[key] = sums.get(key, 0.0) + float(s)
            for key, n in g.count().items():
                counts[key] = counts.get(key, 0) + int(n)
        self.means_ = {k: sums[k] / counts[k] for k in sorted(sums) if counts[k]}
        return self

    def apply(self, table: pa.Table) -> pa.Table:
        self.check_fitted()
        groups = table[self.group].to_pylist()
        means = [self.means_.get(g) for g in groups]
        return table.append_column(f"{self.value}_group_mean", pa.array(means, pa.float64()))


def test_stateful_user_operation_passes_the_checker():
    check_operation(GroupMean())


class Greedy(Operation):
    def __init__(self, k: int = 1) -> None:
        self.k = k
        self.cache = {}  # work in __init__: breaks the contract

    def fit(self, batches, **_):
        self.seen_ = True
        return self

    def apply(self, table):
        return table


def test_the_checker_catches_a_broken_operation():
    with pytest.raises(AssertionError, match="store exactly its parameters"):
        check_operation(Greedy())


def test_unfitted_apply_raises_a_clear_error():
    with pytest.raises(NotFittedError, match="not fitted"):
        Scale().apply(sample_table())
    with pytest.raises(NotFittedError, match="not fitted"):
        Transform([Scale()]).apply(sample_table())


# --------------------------------------------------------------------------- Transform


def ops_for_pipeline() -> list[Operation]:
    return [
        Impute(strategy="median"),
        Scale(method="standard"),
        OneHot(columns=["c"], max_categories=4),
        Ordinal(columns=["d"]),
        DatetimeParts(columns=["ts"], parts=["month", "dayofweek", "hour"]),
        Clip(lower=-2.0, upper=2.0, columns=["a"]),
        SQLExpr("b * skew", "b_skew"),
    ]


def test_fit_out_of_core_equals_fit_in_memory(source, frame, monkeypatch):
    monkeypatch.setattr(_stats, "SORT_LIMIT", 100)  # force quantile refinement
    on_disk = Transform(ops_for_pipeline(), exclude=["label"]).fit(source, memory="256MB")
    in_memory = Transform(ops_for_pipeline(), exclude=["label"]).fit(to_table(frame))
    for a, b in zip(on_disk.operations, in_memory.operations, strict=True):
        assert a.state() == b.state()


def test_chained_fit_uses_the_output_of_earlier_steps(source, frame):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t = Transform([Impute(strategy="mean", columns=["a"]), Scale(columns=["a"])]).fit(source)
    ref = make_pipeline(SimpleImputer(), StandardScaler()).fit(frame[["a"]])
    assert t.operations[1].center_["a"] == pytest.approx(ref[1].mean_[0], rel=1e-13)
    assert t.operations[1].scale_["a"] == pytest.approx(ref[1].scale_[0], rel=1e-12)
    # the imputed mean is also the mean after imputing; the std shrinks
    assert t.operations[1].scale_["a"] < np.nanstd(frame["a"])


def test_run_sql_and_arrow_paths_and_apply_give_identical_data(source, tmp_path):
    t = Transform(ops_for_pipeline(), exclude=["label"])
    sql = t.run(source, tmp_path / "sql", memory="512MB")
    arrow = t.run(source, tmp_path / "arrow", memory="512MB", engine="arrow")
    assert sql.details["engine"] == "sql" and arrow.details["engine"] == "arrow"
    a, b = read_parts(tmp_path / "sql"), read_parts(tmp_path / "arrow")
    assert a.equals(b)
    assert t.apply(read_parts(source)).equals(a)
    assert sql.rows_in == sql.rows_out == 3000
    assert sql.outputs["data"] == arrow.outputs["data"] or a.equals(b)
    assert sql.details["columns_out"] == a.column_names
    assert sql.inputs["data"] and sql.outputs["state"]
    assert (tmp_path / "sql" / "transform.json").is_file()


def test_mixed_path_runs_sql_prefix_then_arrow(source, tmp_path):
    ops = [Impute(strategy="mean"), Log1p(columns=["skew"]), Scale(method="robust"), OneHot(columns=["c"])]
    t = Transform(ops, exclude=["label"])
    res = t.run(source, tmp_path / "mixed")
    assert res.details["engine"] == "sql+arrow" and res.details["sql_operations"] == 1
    out = read_parts(tmp_path / "mixed")
    assert t.apply(read_parts(source)).equals(out)
    # robust scaling after log1p was fitted on the log1p output (materialised in between)
    logged = np.log1p(np.nan_to_num(make_frame()["skew"]))
    assert t.operations[2].center_["skew"] == np.median(logged)


def test_filter_drops_rows_and_reports_them(source, tmp_path, frame):
    t = Transform([Filter("b < 30"), Scale(columns=["b"])])
    res = t.run(source, tmp_path / "f")
    kept = frame[frame.b < 30]
    assert res.rows_in == 3000 and res.rows_out == len(kept)
    assert res.details["rows_filtered"] == 3000 - len(kept)
    assert t.operations[1].center_["b"] == pytest.approx(kept.b.mean(), rel=1e-13)


def test_saved_state_reloads_to_bit_identical_output(source, tmp_path):
    t = Transform(ops_for_pipeline(), exclude=["label"])
    t.run(source, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "transform.json").read_text())
    assert saved["version"] == 1
    assert [e["op"] for e in saved["operations"]] == ["impute", "scale", "onehot", "ordinal", "datetime",
                                                       "clip", "sql"]
    loaded = Transform.load(tmp_path / "out")
    training = read_parts(source)
    assert loaded.apply(training).equals(t.apply(training))
    assert loaded.apply(training).equals(read_parts(tmp_path / "out"))
    # inference: no label, int32 instead of int64 input, a pandas frame
    batch = make_frame(50, seed=9).drop(columns=["label"])
    batch["b"] = batch["b"].astype("int32")
    out = loaded.apply(batch)
    assert "label" not in out.column_names and out.num_rows == 50


def test_unseen_categories_are_counted_and_reported(source, tmp_path, caplog):
    t = Transform([OneHot(columns=["c"], max_categories=3), OneHot(columns=["d"]),
                   Ordinal(columns=["label"])])
    t.fit(source)
    new = make_frame(100, seed=5)
    new.loc[:9, "c"] = "never"
    new.loc[:4, "d"] = "zz"
    new.loc[:2, "label"] = 7
    with caplog.at_level(logging.WARNING):
        out = t.apply(new)
    report = t.last_apply_report
    assert report.unseen == {"1:onehot": {"c": 10}, "2:onehot": {"d": 5}, "3:ordinal": {"label": 3}}
    assert out["c_other"][0].as_py() == 1
    assert [out[f"d_{v}"][0].as_py() for v in "pqr"] == [0, 0, 0]
    assert out["label"][0].as_py() == -1
    assert any("never seen at fit time" in r.message for r in caplog.records)
    write_parts(tmp_path / "new", to_table(new), parts=2)
    for engine in ("auto", "arrow"):
        res = t.run(tmp_path / "new", tmp_path / f"applied_{engine}", fit=False, engine=engine)
        assert res.details["unseen"] == report.unseen, engine
        assert len(res.warnings) == 3 and "sent to c_other" in res.warnings[0]


def test_unknown_column_names_step_and_close_matches(source):
    t = Transform([Impute(), Scale(columns=["a", "sekw"])])
    with pytest.raises(TransformError) as err:
        t.fit(source)
    message = str(err.value)
    assert "transform step 2 (scale)" in message and "'sekw'" in message and "'skew'" in message


def test_all_null_column_is_an_error_or_an_explicit_fill(tmp_path, caplog):
    table = pa.table({"a": [1.0, None, 3.0], "empty": pa.array([None, None, None], pa.float64())})
    with pytest.raises(TransformError, match="'empty' has only nulls") as err:
        Transform([Impute(strategy="median")]).fit(table)
    assert "all_null" in str(err.value)
    with caplog.at_level(logging.WARNING):
        t = Transform([Impute(strategy="mean", all_null="fill", value=-1)]).fit(table)
    assert t.apply(table)["empty"].to_pylist() == [-1.0, -1.0, -1.0]
    assert any("only nulls" in w for w in t.fit_warnings)
    res = t.run(table, tmp_path / "o")
    assert any("only nulls" in w for w in res.warnings)


# --------------------------------------------------------------------------- user code


SCRIPT = '''
import pyarrow as pa
import pyarrow.compute as pc
from blase.transform import transform_function


def ratio(batch: pa.Table) -> pa.Table:
    return batch.append_column("ratio", pc.divide(pc.cast(batch["b"], pa.float64()), batch["skew"]))


@transform_function(kind="pandas")
def plus(df, amount=1):
    df["b_plus"] = df["b"] + amount
    return df
'''


@pytest.fixture
def user_project(tmp_path) -> Path:
    root = tmp_path / "proj"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "transforms.py").write_text(textwrap.dedent(SCRIPT))
    return root


def test_user_function_by_path_arrow_and_pandas(user_project, source, frame, tmp_path):
    ops = [
        UserFunction("scripts/transforms.py:ratio", project_root=user_project),
        UserFunction("scripts/transforms.py:plus", project_root=user_project, params={"amount": 5}),
        Scale(columns=["ratio"]),
    ]
    t = Transform(ops, project_root=user_project)
    res = t.run(source, tmp_path / "u")
    out = read_parts(tmp_path / "u")
    assert out["b_plus"].to_pylist() == (frame.b + 5).tolist()
    ratio = frame["b"] / frame["skew"]
    np.testing.assert_allclose(out["ratio"].to_numpy(), (ratio - ratio.mean()) / ratio.std(ddof=0), rtol=1e-9)
    assert res.details["engine"] == "arrow"
    saved = json.loads((tmp_path / "u" / "transform.json").read_text())
    assert saved["operations"][0]["params"]["func"] == "scripts/transforms.py:ratio"
    assert saved["operations"][0]["state"]["code_hash_"]
    loaded = Transform.load(tmp_path / "u", project_root=user_project)
    assert loaded.apply(read_parts(source)).equals(out)


def test_changed_user_code_warns_or_fails_on_load(user_project, source, tmp_path, caplog):
    t = Transform([UserFunction("scripts/transforms.py:ratio", project_root=user_project)],
                  project_root=user_project)
    t.run(source, tmp_path / "u")
    script = user_project / "scripts" / "transforms.py"
    script.write_text(script.read_text().replace('"ratio"', '"ratio2"'))
    with caplog.at_level(logging.WARNING):
        Transform.load(tmp_path / "u", project_root=user_project)
    assert any("code changed" in r.message for r in caplog.records)
    with pytest.raises(TransformError, match="code changed"):
        Transform.load(tmp_path / "u", project_root=user_project, on_code_change="error")


@transform_function
def doubled(batch: pa.Table) -> pa.Table:
    return batch.append_column("b2", pa.compute.multiply(batch["b"], 2))


@transform_function(name="b_minus")
def minus(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(b_minus=df["b"] - 1)


def test_user_function_by_decorator(frame, tmp_path):
    assert doubled.__blase_transform__["kind"] == "arrow"
    assert minus.__blase_transform__["kind"] == "pandas"
    t = Transform([UserFunction(doubled), UserFunction("b_minus")]).fit(to_table(frame))
    out = t.apply(to_table(frame))
    assert out["b2"].to_pylist() == (frame.b * 2).tolist()
    assert out["b_minus"].to_pylist() == (frame.b - 1).tolist()
    reloaded = Transform.from_json(json.loads(json.dumps(t.to_json())))
    assert reloaded.apply(to_table(frame)).equals(out)


def test_user_function_must_keep_rows(frame):
    def halve(batch: pa.Table) -> pa.Table:
        return batch.slice(0, batch.num_rows // 2)

    with pytest.raises(TransformError, match="must keep every row"):
        Transform([UserFunction(halve)]).fit(to_table(frame))


def test_stateful_user_operation_in_a_transform(tmp_path):
    table = sample_table(500)
    write_parts(tmp_path / "in", table)
    t = Transform([Impute(strategy="most_frequent", columns=["cat"]), GroupMean(value="x", group="cat")])
    t.run(tmp_path / "in", tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "transform.json").read_text())
    assert saved["operations"][1]["op"] == "class"
    assert saved["operations"][1]["class"].endswith(":GroupMean")
    loaded = Transform.load(tmp_path / "out")
    assert loaded.apply(table).equals(read_parts(tmp_path / "out"))


# --------------------------------------------------------------------------- blase.yaml


def test_from_step_config_runs_the_template_transform(project, tmp_path):
    from pyarrow import csv

    config = project.config()
    table = csv.read_csv(project.root / config.data.source if not Path(config.data.source).is_absolute()
                         else config.data.source,
                         convert_options=csv.ConvertOptions(null_values=["NA", ""]))
    src = write_parts(tmp_path / "penguins", table, parts=2)
    t = from_step_config(config.transform, project.root, exclude=[config.data.label])
    res = t.run(src, tmp_path / "out", memory="256MB")
    out = read_parts(tmp_path / "out")
    assert res.rows_out == table.num_rows
    assert "bill_ratio" in out.column_names and config.data.label in out.column_names
    numeric = [c for c in out.column_names if out.schema.field(c).type == pa.float64()]
    assert all(out[c].null_count == 0 for c in numeric if c != "bill_ratio")
    assert any(c.startswith("island_") for c in out.column_names)


def test_step_config_errors_are_clear():
    from pydantic import ValidationError

    from blase.config import TransformStep

    with pytest.raises(ValidationError, match="does not take method"):
        TransformStep(op="impute", method="standard")
    with pytest.raises(ValidationError, match="needs lower or upper"):
        TransformStep(op="clip")
    step = TransformStep(op="ordinal", columns=["c"], params={"unknown_value": 99})
    t = from_step_config([step], None)
    assert t.operations[0].unknown_value == 99


def test_failed_run_keeps_the_previous_output(source, tmp_path):
    Transform([Scale(columns=["a"])]).run(source, tmp_path / "out")
    before = read_parts(tmp_path / "out")
    with pytest.raises(TransformError):
        Transform([Cast(["c"], "int")]).run(source, tmp_path / "out")
    assert read_parts(tmp_path / "out").equals(before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extracted", "out"]
