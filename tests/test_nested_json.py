"""Nested JSON: the `nested_json` source (one schema across files, bad records named by file
and line, quarantine), the `flatten` and `explode` operations (against pandas' json_normalize
and explode), and the `json` template through create, check, run, inspect, reproduce --verify,
diff, deploy, predict on raw records, monitor and update."""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from blase.contrib._flatten import Explode, Flatten
from blase.contrib._nested_json import NestedJSONOptions, NestedJSONReader
from blase.errors import ExtractError
from blase.extract import Extract, PluginOptions
from blase.transform import Transform


def _ndjson(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


RECORDS = [
    {"id": 1, "user": {"name": "ann", "age": 30, "address": {"city": "Lyon", "geo": {"lat": 45.7}}},
     "tags": ["a", "b"], "items": [{"sku": "p1", "qty": 2}, {"sku": "p2", "qty": 1}]},
    {"id": 2, "user": {"name": "bob"}, "tags": [], "items": []},
    {"id": 3, "user": {"name": "cy", "age": 41.5}, "score": 0.5, "items": [{"sku": "p3", "qty": 5, "gift": True}]},
]


@pytest.fixture
def nested(tmp_path):
    """RECORDS as the nested_json source reads them (one schema over every record)."""
    return _read(_ndjson(tmp_path / "records.ndjson", RECORDS)).preview(10)


def _read(source, **options):
    bad = options.pop("bad_rows", "error")
    return Extract(str(source), PluginOptions(options=options, bad_rows=bad), format="nested_json")


def test_one_schema_across_files_missing_fields_are_null_and_numbers_widen(tmp_path):
    _ndjson(tmp_path / "a.ndjson", RECORDS[:2])
    (tmp_path / "b.json").write_text(json.dumps(RECORDS[2:], indent=2))  # a pretty-printed JSON array
    table = _read(tmp_path / "*").preview(10)
    assert table.column_names == ["id", "user", "tags", "items", "score"]
    assert table.schema.field("user").type.field("age").type == pa.float64()  # 30 and 41.5
    rows = table.to_pylist()
    assert [r["user"]["age"] for r in rows] == [30.0, None, 41.5]
    assert rows[0]["score"] is None and rows[2]["score"] == 0.5  # only in the second file
    assert rows[2]["items"][0] == {"sku": "p3", "qty": 5, "gift": True}
    assert rows[0]["items"][0]["gift"] is None


def test_a_record_that_is_not_an_object_names_file_and_line(tmp_path):
    _ndjson(tmp_path / "a.ndjson", [RECORDS[0], RECORDS[1], "[1, 2]", RECORDS[2]])
    with pytest.raises(ExtractError) as err:
        _read(tmp_path / "a.ndjson").to_parquet(tmp_path / "out")
    assert "a.ndjson, line 3: a JSON list, not an object" in err.value.message
    assert "bad_rows: quarantine" in err.value.hint
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.parquet"))


def test_a_field_whose_type_changes_names_the_first_line_of_each_type(tmp_path):
    _ndjson(tmp_path / "a.ndjson", [{"id": 1, "user": {"age": 30}}, {"id": 2, "user": {"age": None}}])
    _ndjson(tmp_path / "b.ndjson", [{"id": 3, "user": {}}, {"id": 4, "user": {"age": "unknown"}}])
    with pytest.raises(ExtractError) as err:
        _read(tmp_path / "*.ndjson").schema()
    message = err.value.message
    assert f"{tmp_path}/b.ndjson, line 2: field 'user.age' is text here but number in {tmp_path}/a.ndjson, line 1" \
        in message
    assert "text_fields: [user.age]" in err.value.hint
    # the fix the hint names: the field read as text, numbers included
    table = _read(tmp_path / "*.ndjson", text_fields=["user.age"]).preview(10)
    assert [r["user"]["age"] for r in table.to_pylist()] == ["30", None, None, "unknown"]


def test_quarantine_sets_bad_records_aside_and_counts_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _ndjson(tmp_path / "a.ndjson", [{"id": 1, "n": 1}, "not json", {"id": 2, "n": "two"}, "7", {"id": 3, "n": 3.5}])
    result = _read(tmp_path / "a.ndjson", bad_rows="quarantine").to_parquet(tmp_path / "out")
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (5, 3, 2) or \
        (result.rows_in, result.rows_out, result.rows_rejected) == (5, 2, 3)
    rejects = [json.loads(line) for line in (tmp_path / "outputs/rejects/a.ndjson").read_text().splitlines()]
    kept = pq.read_table(tmp_path / "out").to_pylist()
    assert len(rejects) + len(kept) == 5 and len(rejects) == result.rows_rejected
    assert {r["line"] for r in rejects} >= {2, 4}
    assert [r["id"] for r in kept] == [1, 3] if len(kept) == 2 else [1, 2, 3]
    by_line = {r["line"]: r for r in rejects}
    assert "not valid JSON" in by_line[2]["error"] and "not an object" in by_line[4]["error"]
    assert by_line[2]["record"] == "not json"


def test_the_schema_pass_reads_block_by_block(tmp_path):
    """Blocks far smaller than the file: the same rows, and a type change in a late block is
    still found with its line."""
    records = [{"id": i, "v": {"x": i}} for i in range(2000)] + [{"id": 2000, "v": {"x": "late"}}]
    _ndjson(tmp_path / "big.ndjson", records)
    reader = NestedJSONReader(NestedJSONOptions(block_bytes=4096))
    with pytest.raises(ExtractError, match=r"big.ndjson, line 2001: field 'v.x' is text here but number in "
                                           r".*big.ndjson, line 1"):
        reader.begin([tmp_path / "big.ndjson"])
    _ndjson(tmp_path / "big.ndjson", records[:-1])
    reader.begin([tmp_path / "big.ndjson"])
    batches = list(reader.read(tmp_path / "big.ndjson", batch_rows=500))
    assert max(b.num_rows for b in batches) <= 500
    assert pa.Table.from_batches(batches).column("id").to_pylist() == list(range(2000))


@pytest.mark.parametrize("max_depth", [1, 2, 3])
def test_flatten_equals_pandas_json_normalize(max_depth, nested):
    table = nested
    flat = Transform([Flatten(max_depth=max_depth, lists="keep")]).fit(table).apply(table)
    oracle = pd.json_normalize(RECORDS, max_level=max_depth)
    for name in oracle.columns:
        if isinstance(oracle[name].dropna().iloc[0], (dict, list)):
            continue  # a deeper object: pandas keeps a dict, flatten JSON text; lists: tested below
        assert name in flat.column_names
        want = [None if (isinstance(v, float) and math.isnan(v)) else v for v in oracle[name]]
        assert flat.column(name).to_pylist() == want, name
    deeper = {1: "user.address", 2: "user.address.geo"}.get(max_depth)
    if deeper:  # the object below the depth limit: its JSON text
        assert pa.types.is_string(flat.schema.field(deeper).type)
        assert json.loads(flat.column(deeper)[0].as_py()) == _at(RECORDS[0], deeper)
    else:
        assert flat.column("user.address.geo.lat").to_pylist() == [45.7, None, None]


def _at(record, dotted):
    for part in dotted.split("."):
        record = record[part]
    return record


def test_flatten_lists_modes_and_inference_with_a_field_missing(nested):
    table = nested
    op = Transform([Flatten(max_depth=3)]).fit(table)
    out = op.apply(table)
    assert out.column("tags").to_pylist() == [2, 0, None] and out.column("items").to_pylist() == [2, 0, 1]
    assert Transform([Flatten(lists="drop")]).fit(table).apply(table).column_names == \
        ["id", "user.name", "user.age", "user.address.city", "user.address.geo.lat", "score"]
    assert json.loads(Transform([Flatten(lists="json")]).fit(table).apply(table).column("items")[0].as_py()) == \
        [{"sku": "p1", "qty": 2, "gift": None}, {"sku": "p2", "qty": 1, "gift": None}]
    # new records without user.address: the same columns, nulls there
    new = pa.Table.from_pylist([{"id": 9, "user": {"name": "dee"}, "tags": ["x"], "items": [{"sku": "q"}],
                                 "score": 1.0}])
    again = op.apply(new)
    assert again.column_names == out.column_names
    assert again.column("user.address.city").to_pylist() == [None]


def test_explode_equals_pandas_explode_and_keeps_empty_lists(nested):
    table = nested
    out = Transform([Explode(column="items")]).fit(table).apply(table).to_pydict()
    oracle = pd.DataFrame(RECORDS).explode("items", ignore_index=True)
    assert out["id"] == oracle["id"].tolist() == [1, 1, 2, 3]
    items = [it if isinstance(it, dict) else {} for it in oracle["items"]]
    assert out["items.sku"] == [it.get("sku") for it in items]
    assert out["items.qty"] == [it.get("qty") for it in items]
    dropped = Transform([Explode(column="items", keep_empty=False)]).fit(table).apply(table)
    assert dropped.column("id").to_pylist() == [1, 1, 3]
    with pytest.raises(Exception, match="'user' is struct"):
        Transform([Explode(column="user")]).fit(table)


@pytest.mark.slow
def test_json_template_through_the_whole_sequence(tmp_path, cli):
    root = tmp_path / "shop"
    assert cli("create", str(root), "--template", "json").exit_code == 0
    assert (root / "data/orders.ndjson").is_file() and (root / "scripts/items.py").is_file()
    orders = root / "data/orders.ndjson"  # the first 800 of the 3,000 orders: a faster test
    orders.write_text("".join(orders.read_text().splitlines(keepends=True)[:800]))
    check = cli("check", cwd=root)
    assert check.exit_code == 0 and "warning" not in check.stdout + check.stderr
    run = cli("run", "--set", "train.epochs=3", "--json", cwd=root)
    assert run.exit_code == 0, run.stderr
    first = json.loads(run.stdout)
    run_id = first["run_id"] if "run_id" in first else first["id"]
    inspect = json.loads(cli("inspect", run_id, "--json", cwd=root).stdout)
    assert inspect["status"] == "finished"
    verify = cli("reproduce", run_id, "--verify", cwd=root)
    assert verify.exit_code == 0 and "bit for bit" in verify.stdout
    second = cli("run", "--set", "train.epochs=4", "--set", "transform.0.lists=json", "--json", cwd=root)
    assert second.exit_code == 0, second.stderr
    other = json.loads(second.stdout)
    other_id = other["run_id"] if "run_id" in other else other["id"]
    diff = cli("diff", run_id, other_id, cwd=root)
    assert diff.exit_code == 0 and "train.epochs" in diff.stdout
    assert cli("deploy", run_id, "--name", "shop", "--promote", cwd=root).exit_code == 0
    # raw nested records, one without customer.age and one with no customer at all
    lines = (root / "data/orders.ndjson").read_text().splitlines()[:20]
    first_rec = json.loads(lines[0])
    first_rec["customer"].pop("age", None)
    new = root / "data/new.ndjson"
    new.write_text("\n".join([json.dumps(first_rec), *lines[1:], json.dumps({"order_id": "x", "items": []})]) + "\n")
    predict = cli("predict", "shop", "data/new.ndjson", "--out", "outputs/new.csv", cwd=root)
    assert predict.exit_code == 0, predict.stderr
    scored = pd.read_csv(root / "outputs/new.csv")
    assert len(scored) == 21 and scored["prob_True"].between(0, 1).all()
    monitor = cli("monitor", "shop", "data/new.ndjson", "--json", cwd=root)
    assert monitor.exit_code == 0, monitor.stderr
    notes = json.loads(monitor.stdout)["notes"]
    assert any(n.startswith("not compared: customer, items, payment, shipping (nested") for n in notes), notes
    update = cli("update", "shop", "data/orders.ndjson", "--mode", "finetune", cwd=root)
    assert update.exit_code == 0, update.stderr
    # a bad record in new data: named with its line, no traceback
    new.write_text(lines[0] + "\n" + "[1, 2]\n")
    bad = cli("predict", "shop", "data/new.ndjson", "--out", "outputs/bad.csv", cwd=root)
    assert bad.exit_code != 0 and "new.ndjson, line 2: a JSON list, not an object" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr and not (root / "outputs/bad.csv").exists()


@pytest.mark.parametrize("name", ["nested_json", "flatten", "explode"])
def test_the_plugins_pass_their_conformance_checks(cli, name):
    result = cli("plugin", "check", name)
    assert result.exit_code == 0 and "all checks passed" in result.stdout, result.stdout


def test_a_run_quarantines_bad_records_and_counts_them_in_the_run(tmp_path, cli):
    root = tmp_path / "shop"
    assert cli("create", str(root), "--template", "json").exit_code == 0
    orders = root / "data/orders.ndjson"
    lines = orders.read_text().splitlines()[:200]
    changed = json.loads(lines[10])
    changed["payment"]["installments"] = "three"
    orders.write_text("\n".join([*lines[:5], "[1, 2]", *lines[5:10], json.dumps(changed), *lines[11:]]) + "\n")
    failed = cli("run", "--to", "extract", cwd=root)
    assert failed.exit_code != 0 and "data/orders.ndjson, line 6: a JSON list, not an object" in failed.stderr
    run = cli("run", "--to", "extract", "--set", "data.bad_rows=quarantine", "--json", cwd=root)
    assert run.exit_code == 0, run.stderr
    out = json.loads(run.stdout)
    info = json.loads(cli("inspect", out.get("run_id") or out["id"], "--json", cwd=root).stdout)
    assert info["metrics"]["extract.rows_rejected"] == 2 and info["metrics"]["extract.rows_out"] == 199
    rejects = [json.loads(x) for x in (root / "outputs/rejects/orders.ndjson").read_text().splitlines()]
    assert [(r["file"], r["line"]) for r in rejects] == [("data/orders.ndjson", 6), ("data/orders.ndjson", 12)]
    assert "payment.installments" in rejects[1]["error"]
