"""Blase's own plugins: the `excel` source (real .xlsx files written by openpyxl) and the `mmd`
drift test (against a brute-force MMD and permutation test)."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pyarrow as pa
import pytest
import yaml

pytest.importorskip("python_calamine")
openpyxl = pytest.importorskip("openpyxl")

from blase.contrib._excel import ExcelOptions, ExcelReader  # noqa: E402
from blase.contrib._mmd import MMDOptions, MMDTest  # noqa: E402
from blase.errors import ExtractError  # noqa: E402
from blase.extract import Extract, PluginOptions  # noqa: E402
from blase.monitor import DriftSample  # noqa: E402


def _workbook(path, rows, *, sheet="Data", title=None, other=True):
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = sheet
    if title:
        ws.append([title])
    for row in rows:
        ws.append(row)
    if other:
        book.create_sheet("Notes").append(["nothing here"])
    book.save(path)
    return path


def _rows(n):
    yield ["x", "city", "when", "flag", "note"]
    for i in range(n):
        yield [i * 0.5, f"c{i % 4}" if i % 7 else None, dt.datetime(2024, 1, 1) + dt.timedelta(hours=i),
               i % 2 == 0, None if i % 5 else f"n{i}"]


def test_excel_reads_a_named_sheet_after_a_title_row_in_bounded_batches(tmp_path):
    path = _workbook(tmp_path / "sales.xlsx", _rows(1000), title="Quarterly export")
    reader = ExcelReader(ExcelOptions(sheet="Data", header_row=2))
    batches = list(reader.read(path, batch_rows=128))
    assert max(b.num_rows for b in batches) == 128 and sum(b.num_rows for b in batches) == 1000
    table = pa.Table.from_batches(batches)
    assert table.schema == pa.schema([("x", pa.float64()), ("city", pa.string()), ("when", pa.timestamp("us")),
                                      ("flag", pa.bool_()), ("note", pa.string())])
    assert table["x"].to_pylist()[:3] == [0.0, 0.5, 1.0]
    assert table["city"].null_count == len([i for i in range(1000) if i % 7 == 0])
    assert table["when"][25].as_py() == dt.datetime(2024, 1, 2, 1)


def test_excel_through_extract_by_suffix_with_dtypes_and_same_hash(tmp_path):
    path = _workbook(tmp_path / "sales.xlsx", _rows(50), title="export")
    options = PluginOptions(options={"header_row": 2}, dtypes={"x": "DOUBLE"}, batch_rows=16)
    extract = Extract(path, options)
    assert extract.resolved_source().format == "excel"
    assert extract.count() == 50
    first = extract.to_parquet(tmp_path / "a")
    second = Extract(path, options).to_parquet(tmp_path / "b")
    assert first.details["plugin"]["name"] == "excel"
    assert list(first.outputs.values()) == list(second.outputs.values())  # the same parts, bit for bit
    assert first.inputs and list(first.inputs.values()) == list(second.inputs.values())


def test_excel_errors_name_the_sheet_row_and_column(tmp_path):
    rows = [["a", "b"], *([i, f"t{i}"] for i in range(30)), ["oops", "t"]]
    path = _workbook(tmp_path / "bad.xlsx", rows)
    with pytest.raises(ExtractError) as err:
        list(ExcelReader(ExcelOptions(infer_rows=10)).read(path, batch_rows=8))
    assert "bad.xlsx, sheet 'Data', row 32, column 'a': 'oops' does not fit" in err.value.message
    assert "data.options.text: [a]" in err.value.hint
    table = pa.Table.from_batches(ExcelReader(ExcelOptions(infer_rows=10, text=["a"])).read(path, batch_rows=8))
    assert table["a"].to_pylist()[-2:] == ["29.0", "oops"]
    with pytest.raises(ExtractError, match="has no sheet 'Nope'; its sheets: Data, Notes"):
        list(ExcelReader(ExcelOptions(sheet="Nope")).read(path, batch_rows=8))
    (tmp_path / "fake.xlsx").write_text("not a zip")
    with pytest.raises(ExtractError, match=r"fake\.xlsx cannot be opened as a workbook"):
        list(ExcelReader().read(tmp_path / "fake.xlsx", batch_rows=8))


def test_a_project_on_an_excel_file_runs_predicts_and_monitors_with_mmd(project, tmp_path):
    import pandas as pd

    from blase.deploy import predict
    from blase.monitor import Monitor
    from blase.pipeline import Pipeline

    frame = pd.read_csv(project.root / "data" / "penguins.csv")
    rows = [list(frame.columns)] + [[None if pd.isna(v) else v for v in r] for r in frame.itertuples(index=False)]
    _workbook(project.root / "data" / "penguins.xlsx", rows, sheet="penguins", title="Palmer penguins")
    config = yaml.safe_load(project.config_path.read_text())
    config["data"] = {"source": "data/penguins.xlsx", "label": "species",
                      "options": {"sheet": "penguins", "header_row": 2}}
    config["train"]["epochs"] = 2
    config["monitor"] = {"tests": {"numeric": "mmd", "categorical": {"test": "mmd", "permutations": 100}}}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = Pipeline(project).run()
    assert result.status == "finished" and result.steps["extract"].rows_out == len(frame)
    # new data in the same format: read with the options the package recorded (sheet, header row)
    shifted = frame.assign(bill_length_mm=frame["bill_length_mm"] + 15)
    rows = [list(shifted.columns)] + [[None if pd.isna(v) else v for v in r] for r in shifted.itertuples(index=False)]
    new = _workbook(tmp_path / "new.xlsx", rows, sheet="penguins", title="new rows")
    assert predict(project, project.name, new, tmp_path / "p.parquet").rows == len(frame)
    check = Monitor(project.name, project=project, plots=False, track=False).check(new)
    columns = {c.column: c for c in check.columns}
    assert {c.test for c in check.columns} == {"mmd"}
    assert columns["bill_length_mm"].drifted and columns["bill_length_mm"].p_value < 0.05
    assert "344 reference and 344 new values" in columns["island"].note  # every row of a small workbook
    assert not columns["island"].drifted


def _brute_mmd(x, y, kernel):
    pooled = np.concatenate([x, y])
    n = len(x)
    k = np.array([[kernel(a, b) for b in pooled] for a in pooled])
    return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()


def test_mmd_equals_the_definition_and_is_seeded():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 1, 40), rng.normal(0.5, 1, 30)
    test = MMDTest(MMDOptions(permutations=50))
    outcome = test.test(DriftSample("v", "numeric", x), DriftSample("v", "numeric", y), seed=1)
    z = (np.concatenate([x, y]) - x.mean()) / x.std()
    d2 = (z[:, None] - z[None, :]) ** 2
    width = np.median(d2[np.triu_indices(len(z), 1)])
    brute = _brute_mmd((x - x.mean()) / x.std(), (y - x.mean()) / x.std(), lambda a, b: np.exp(-(a - b) ** 2 / width))
    assert outcome.statistic == pytest.approx(brute, rel=1e-9)
    assert outcome == test.test(DriftSample("v", "numeric", x), DriftSample("v", "numeric", y), seed=1)
    cats = np.array(list(itertools.islice(itertools.cycle("aabc"), 60)), dtype=object)
    other = np.array(list(itertools.islice(itertools.cycle("abcc"), 60)), dtype=object)
    cat = test.test(DriftSample("c", "categorical", cats), DriftSample("c", "categorical", other), seed=2)
    freq = lambda v: np.array([np.mean(v == k) for k in "abc"])  # noqa: E731
    assert cat.statistic == pytest.approx(float(np.sum((freq(cats) - freq(other)) ** 2)), rel=1e-9)
    assert cat.drifted and cat.p_value < 0.05
