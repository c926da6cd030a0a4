"""Schema suggestion: kinds, suggestions and warnings on data with known traits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from blase.config import config_from_dict, load_config
from blase.errors import DataError
from blase.schema import suggest_schema, write_suggestions

N = 4000


def _table(seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], N, p=[0.5, 0.45, 0.05])
    code = {"Adelie": "A-1", "Chinstrap": "C-2", "Gentoo": "G-3"}
    height = rng.normal(170, 10, N)
    height[rng.random(N) < 0.1] = np.nan  # missing values, symmetric column
    income = np.exp(rng.normal(10, 1.3, N))  # heavy positive skew
    income_nulls = rng.random(N) < 0.05
    sentences = [f"penguin number {i} was seen near the northern colony at dawn" for i in range(N)]
    return pa.table(
        {
            "penguin_id": [f"p{i:06d}" for i in range(N)],  # identifier
            "bill_length_mm": rng.normal(44, 5, N),  # plain continuous
            "flipper_count": rng.integers(0, 12, N),  # discrete
            "height": height,
            "income": pa.array(income, mask=income_nulls),
            "latency": np.where(rng.random(N) < 0.08, rng.normal(0, 50, N), rng.normal(0, 1, N)),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], N),  # categorical_low
            "zipcode": [f"z{v}" for v in rng.integers(0, 2500, N)],  # categorical_high
            "aircraft": [f"a{v}" for v in rng.integers(0, 120, N)],  # categorical_high, each value common
            "species_code": [code[s] for s in species],  # leaks the label
            "version": ["v1"] * N,  # constant
            "is_adult": rng.random(N) > 0.3,  # boolean
            "seen_at": [
                f"2024-01-{1 + i % 28:02d} {i % 24:02d}:00:00" for i in range(N)
            ],  # datetime text
            "notes": sentences,  # free text
            "species": species,  # the label
        }
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("schema")
    pacsv.write_csv(_table(), root / "penguins.csv")
    return suggest_schema(root / "penguins.csv", label="species", memory="512MB", sample_rows=3000)


def _actions(col) -> list[tuple[str, str]]:
    return [(s.action, s.detail) for s in col.suggestions]


def test_kinds(report):
    kinds = {c.name: c.kind for c in report.columns}
    assert kinds == {
        "penguin_id": "identifier",
        "bill_length_mm": "continuous",
        "flipper_count": "discrete",
        "height": "continuous",
        "income": "continuous",
        "latency": "continuous",
        "island": "categorical_low",
        "zipcode": "categorical_high",
        "aircraft": "categorical_high",
        "species_code": "categorical_low",
        "version": "constant",
        "is_adult": "boolean",
        "seen_at": "datetime",
        "notes": "text",
        "species": "categorical_low",
    }
    assert report.rows == N and 0 < report.sample_rows <= 3000


def test_stats(report):
    h = report.column("height")
    assert 0.07 < h.null_share < 0.13  # NaN counts as missing
    assert abs(h.stats["mean"] - 170) < 1 and abs(h.stats["std"] - 10) < 1
    assert set(h.stats["quantiles"]) == {"p01", "p25", "p50", "p75", "p99"}
    island = report.column("island")
    assert island.cardinality == 3 and {t["value"] for t in island.stats["top"]} == {
        "Biscoe",
        "Dream",
        "Torgersen",
    }
    assert abs(sum(t["share"] for t in island.stats["top"]) - 1) < 1e-3
    assert report.column("zipcode").cardinality > 1500
    assert report.column("income").stats["skew"] > 2


def test_suggestions(report):
    col = report.column
    assert ("impute", "mean") in _actions(col("height"))  # symmetric
    assert ("impute", "median") in _actions(col("income"))  # skewed
    assert _actions(col("income"))[-2:] == [("log1p", "log1p"), ("scale", "standard")]
    assert ("scale", "robust") in _actions(col("latency"))
    assert any(w.startswith("outliers") for w in col("latency").warnings)
    assert _actions(col("bill_length_mm")) == [("scale", "standard")]
    assert _actions(col("island")) == [("encode", "onehot")]
    assert _actions(col("zipcode"))[0][0] == "encode" and _actions(col("zipcode"))[0][1] in (
        "hash",
        "onehot",
    )
    # 120 well-populated categories: each keeps its column (a cap of 20 would lump 100 of them)
    [aircraft] = col("aircraft").suggestions
    assert (aircraft.action, aircraft.params) == ("encode", {"max_categories": 255})
    assert aircraft.reason.endswith("categories: one column each")
    assert _actions(col("seen_at")) == [("datetime", "datetime")]
    for name in ("penguin_id", "version", "notes", "species_code"):
        assert _actions(col(name)) == [("drop", "drop")], name
    assert col("species").suggestions == []  # the label is left alone
    assert all(s.reason for c in report.columns for s in c.suggestions)


def test_warnings_and_label_candidates(report):
    text = " | ".join(report.warnings)
    assert "penguin_id" in text and "identifier" in text
    assert "version" in text and "constant" in text
    assert "species_code" in text and "leak" in text
    assert "class imbalance" in text
    assert report.label_candidates[0]["name"] == "species"
    names = [c["name"] for c in report.label_candidates]
    assert "penguin_id" not in names and "species_code" not in names and "notes" not in names


def test_to_json_has_stable_keys(report):
    data = json.loads(json.dumps(report.to_json()))
    assert set(data) == {
        "source",
        "rows",
        "sample_rows",
        "label",
        "columns",
        "label_candidates",
        "warnings",
    }
    col = data["columns"][0]
    assert set(col) == {
        "name",
        "dtype",
        "kind",
        "null_share",
        "cardinality",
        "stats",
        "suggestions",
        "warnings",
    }
    assert set(col["suggestions"][0]) >= {"action", "detail", "reason"}


def test_transform_config_is_valid(report):
    steps = report.to_transform_config()
    config = config_from_dict({"project": "p", "data": {"label": "species"}, "transform": steps})
    ops = [s.op for s in config.transform]
    assert ops[0] == "drop" and set(config.transform[0].columns) == {
        "penguin_id",
        "version",
        "notes",
        "species_code",
    }
    assert "species" not in {c for s in config.transform for c in (s.columns or [])}
    by_op = {(s.op, s.strategy or s.method): s.columns for s in config.transform}
    assert by_op[("impute", "median")] == ["income"] and by_op[("impute", "mean")] == ["height"]
    assert "latency" in by_op[("scale", "robust")]
    assert by_op[("log1p", None)] == ["income"]
    assert ops.index("log1p") < ops.index("scale")


def test_write_suggestions_keeps_the_rest_of_the_file(report, tmp_path):
    path = tmp_path / "blase.yaml"
    path.write_text(
        "# my project\n"
        "project: demo   # the name\n"
        "data:\n"
        "  source: data/penguins.csv  # raw data\n"
        "  label: old\n"
        "transform:\n"
        "  - op: drop  # old step\n"
        "    columns: [x]\n"
        "\n"
        "# training settings\n"
        "train:\n"
        "  epochs: 3\n"
    )
    write_suggestions(path, report)
    text = path.read_text()
    assert "# my project" in text and "# the name" in text and "# raw data" in text
    assert "# training settings" in text and "old step" not in text
    config = load_config(path)
    # data.source names the file profiled (outside this folder: an absolute path)
    assert config.data.label == "species" and config.data.source == str(Path(report.source).resolve())
    assert "# raw data" in text
    assert config.train.epochs == 3
    assert [s.model_dump(exclude_defaults=True) for s in config.transform] == [
        config_from_dict({"project": "p", "transform": report.to_transform_config()})
        .transform[i]
        .model_dump(exclude_defaults=True)
        for i in range(len(config.transform))
    ]
    # a file without transform: or data.label gets both
    bare = tmp_path / "bare.yaml"
    bare.write_text("project: demo\ndata:\n  source: x.csv\n")
    write_suggestions(bare, report)
    assert load_config(bare).data.label == "species" and load_config(bare).transform


def test_parquet_source_and_errors(tmp_path):
    t = _table(1)
    pq.write_table(t, tmp_path / "d.parquet")
    r = suggest_schema(tmp_path / "d.parquet", sample_rows=1000)
    assert r.column("is_adult").kind == "boolean" and r.label is None
    names = [c["name"] for c in r.label_candidates]
    assert "species" in names and "island" in names and "bill_length_mm" not in names
    with pytest.raises(DataError, match="did you mean 'species'"):
        suggest_schema(tmp_path / "d.parquet", label="specie")
    with pytest.raises(DataError):
        suggest_schema(tmp_path / "missing.csv")


def test_regression_label_leak_by_correlation(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=2000)
    t = pa.table(
        {"x": x, "noise": rng.normal(size=2000), "price": 3 * x + rng.normal(0, 0.01, 2000)}
    )
    pq.write_table(t, tmp_path / "r.parquet")
    r = suggest_schema(tmp_path / "r.parquet", label="price")
    assert any("leak" in w for w in r.column("x").warnings)
    assert not r.column("noise").warnings


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_full_pass_statistics_equal_numpy(tmp_path, fmt, monkeypatch):
    """Counts, min, max, mean and std are computed over every row (not the sample) and match
    numpy, also where the first rows say little about the rest (a trend far from zero) and a
    plain CSV is sampled by position before the pass."""
    import blase._sample as sampling

    monkeypatch.setattr(sampling, "MIN_BYTES", 0)  # the byte-range sample path for the CSV
    rng = np.random.default_rng(7)
    n = 30_000
    trend = 1e9 + np.arange(n) * 0.01 + rng.normal(0, 1, n)  # mean 1e7 std: sums would cancel
    gaps = rng.normal(5, 2, n)
    gaps[rng.random(n) < 0.1] = np.nan
    counts = rng.integers(-50, 5_000, n)
    t = pa.table({"trend": trend, "gaps": gaps, "counts": counts, "label": rng.integers(0, 2, n)})
    path = tmp_path / f"d.{fmt}"
    if fmt == "csv":
        pacsv.write_csv(t, path)
        t = pacsv.read_csv(path)  # the values as written in text
    else:
        pq.write_table(t, path)
    r = suggest_schema(path, sample_rows=2000)
    assert r.rows == n and r.sample_rows <= 2000
    for name in ("trend", "gaps", "counts"):
        x = t.column(name).to_numpy(zero_copy_only=False).astype(float)
        ok = x[~np.isnan(x)]
        s = r.column(name).stats
        assert s["count"] == len(ok) and s["min"] == ok.min() and s["max"] == ok.max()
        assert s["mean"] == pytest.approx(ok.mean(), rel=1e-12)
        assert s["std"] == pytest.approx(ok.std(ddof=1), rel=1e-9)
    assert r.column("gaps").null_share == pytest.approx(np.isnan(gaps).mean(), abs=1e-6)
    # NaN (written as 'nan' in the CSV) is missing too, and counted apart from nulls
    assert r.column("gaps").stats["nans"] == np.isnan(gaps).sum()
    assert r.column("trend").stats["nans"] == 0


def _cars_like(n: int = 400, seed: int = 3) -> pa.Table:
    """A regression shaped like vega's cars: a year-only date, a nearly unique model name, and
    a label with nulls."""
    import datetime as dt

    rng = np.random.default_rng(seed)
    year = rng.integers(1970, 1983, n)
    weight = rng.normal(3000, 800, n)
    mpg = 60 - weight / 100 + (year - 1970) * 0.8 + rng.normal(0, 2, n)
    mpg_nulls = rng.random(n) < 0.03
    return pa.table({
        "Name": [f"make{i % 9} model {i}" if i % 5 else f"make{i % 9} classic" for i in range(n)],
        "Weight": weight,
        "Year": [dt.date(int(y), 1, 1) for y in year],
        "mpg": pa.array(mpg, mask=mpg_nulls),
    })


def test_suggested_transform_scales_date_parts_and_drops_constant_ones(tmp_path):
    pacsv.write_csv(_cars_like(), tmp_path / "cars.csv")
    report = suggest_schema(tmp_path / "cars.csv", label="mpg")
    steps = config_from_dict({"project": "p", "data": {"label": "mpg"},
                              "transform": report.to_transform_config()}).transform
    dates = next(s for s in steps if s.op == "datetime")
    # month, day, hour and the weekday of 1 January never vary: only the year is a feature
    assert dates.columns == ["Year"] and dates.parts == ["year"]
    scaled = [c for s in steps if s.op == "scale" for c in s.columns]
    assert "Year_year" in scaled and "Weight" in scaled
    assert [s.op for s in steps].index("datetime") < [s.op for s in steps].index("scale")
    # rows without a label are filtered out first, so `blase run` can prepare them
    assert steps[0].op == "filter" and steps[0].where == '"mpg" IS NOT NULL'


def test_nearly_unique_text_is_an_identifier_not_a_one_hot(tmp_path):
    pacsv.write_csv(_cars_like(), tmp_path / "cars.csv")
    name = suggest_schema(tmp_path / "cars.csv", label="mpg").column("Name")
    assert name.kind == "identifier"  # 80 % distinct: the 20 commonest would cover a sliver
    assert _actions(name) == [("drop", "drop")]


def test_an_integer_unique_per_row_is_an_identifier_only_when_it_numbers_the_rows(tmp_path):
    """vega's wheat: a year per row of an annual series (1565, 1570, ...) is the trend the
    label follows, and an income in whole dollars differs on every row; neither names rows.
    A row counter (0..n-1, a pandas index written out) and an id-named column do."""
    rng = np.random.default_rng(3)
    n = 120
    year = np.arange(1700, 1700 + 5 * n, 5)
    income = rng.integers(20_000, 200_000, n) * 7 + np.arange(n)  # distinct, not consecutive
    wages = 0.02 * (year - 1700) + 1e-5 * income + rng.normal(0, 0.5, n)
    pacsv.write_csv(pa.table({"Unnamed: 0": np.arange(n), "year": year, "annual": np.arange(1900, 1900 + n),
                              "income": income, "customer_id": rng.permutation(n) * 13,
                              "wages": wages}), tmp_path / "wheat.csv")
    report = suggest_schema(tmp_path / "wheat.csv", label="wages")
    kinds = {c: report.column(c).kind for c in ("Unnamed: 0", "year", "annual", "income", "customer_id")}
    assert kinds == {"Unnamed: 0": "identifier", "year": "discrete", "annual": "identifier",
                     "income": "discrete", "customer_id": "identifier"}, kinds
    steps = config_from_dict({"project": "p", "data": {"label": "wages"},
                              "transform": report.to_transform_config()}).transform
    dropped = [c for s in steps if s.op == "drop" for c in s.columns]
    scaled = [c for s in steps if s.op == "scale" for c in s.columns]
    assert set(dropped) == {"Unnamed: 0", "annual", "customer_id"} and {"year", "income"} <= set(scaled)


def test_imbalanced_label_writes_stratify_and_label_variants_are_warned(tmp_path):
    rng = np.random.default_rng(5)
    n = 600
    kind = rng.choice(["sun", "rain", "snow"], n, p=[0.6, 0.37, 0.03]).astype(object)
    kind[:12] = [" Rain", "rain ", "Sun", "sun"] * 3  # one class written several ways
    pacsv.write_csv(pa.table({"t": rng.normal(10, 5, n), "kind": kind.tolist()}), tmp_path / "w.csv")
    report = suggest_schema(tmp_path / "w.csv", label="kind")
    assert report.settings == {"prepare.stratify": True}
    assert any("class imbalance" in w for w in report.warnings)
    variants = next(w for w in report.warnings if "whitespace or case" in w)
    assert "' Rain' / 'rain' / 'rain '" in variants and "'Sun' / 'sun'" in variants
    config = tmp_path / "blase.yaml"
    config.write_text("project: p\nprepare:\n  split: {train: 0.8, val: 0.1, test: 0.1}  # mine\n")
    write_suggestions(config, report)
    loaded = load_config(config)
    assert loaded.prepare.stratify is True and loaded.prepare.split.train == 0.8
    assert "# mine" in config.read_text()
