"""Extract: every source kind on small real files, bad-row policies, bad input, memory."""

from __future__ import annotations

import gzip
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from blase.errors import ExtractError
from blase.extract import (
    ArrowOptions,
    CSVOptions,
    Extract,
    JSONOptions,
    ParquetOptions,
    PostgresOptions,
    TableOptions,
)

ROWS = [
    {"id": 1, "city": "Oslo", "temp": 3.5},
    {"id": 2, "city": "Lima", "temp": None},
    {"id": 3, "city": "Pune", "temp": 31.0},
    {"id": 4, "city": None, "temp": -2.25},
]


def rows(table: pa.Table | pa.RecordBatch) -> list[dict]:
    return table.to_pylist()


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def cities_csv(tmp_path: Path) -> Path:
    return write(
        tmp_path / "cities.csv", "id,city,temp\n1,Oslo,3.5\n2,Lima,NA\n3,Pune,31\n4,,-2.25\n"
    )


@pytest.fixture
def arrow_table() -> pa.Table:
    return pa.Table.from_pylist(ROWS)


def numbers_csv(path: Path, n: int, bad_lines: dict[int, str] | None = None) -> Path:
    """``n`` data rows ``i,i*2,name_i``; ``bad_lines`` maps a data row index to its text."""
    bad_lines = bad_lines or {}
    lines = ["a,b,name"] + [bad_lines.get(i, f"{i},{i * 2},name_{i}") for i in range(n)]
    return write(path, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- CSV


def test_csv_schema_preview_count_and_default_nulls(cities_csv: Path) -> None:
    ex = Extract(cities_csv)
    schema = ex.schema()
    assert schema.names == ["id", "city", "temp"]
    assert pa.types.is_integer(schema.field("id").type)
    assert pa.types.is_floating(schema.field("temp").type)  # "NA" did not make it text
    assert rows(ex.preview(10)) == ROWS
    assert rows(ex.preview(2)) == ROWS[:2]
    assert ex.count() == 4


def test_csv_every_default_null_token(tmp_path: Path) -> None:
    path = write(tmp_path / "n.csv", "x,y\n1,a\nNA,b\nN/A,c\nnull,d\nNaN,e\n,f\n7,g\n")
    table = Extract(path).preview(10)
    assert table.column("x").to_pylist() == [1, None, None, None, None, None, 7]


def test_csv_custom_null_values(tmp_path: Path) -> None:
    path = write(tmp_path / "n.csv", "x,y\n1,NA\n-,b\n3,\n")
    table = Extract(path, CSVOptions(null_values=["-"])).preview(10)
    assert table.column("x").to_pylist() == [1, None, 3]
    assert table.column("y").to_pylist() == ["NA", "b", ""]


def test_csv_delimiter_quoting_and_header_false(tmp_path: Path) -> None:
    path = write(tmp_path / "q.txt", '1;"Smith; John";"said ""hi"""\n2;Doe;plain\n')
    ex = Extract(path, CSVOptions(delimiter=";", header=False))
    assert ex.schema().names == ["column0", "column1", "column2"]
    assert rows(ex.preview()) == [
        {"column0": 1, "column1": "Smith; John", "column2": 'said "hi"'},
        {"column0": 2, "column1": "Doe", "column2": "plain"},
    ]


def test_tsv_detected(tmp_path: Path) -> None:
    path = write(tmp_path / "t.tsv", "a\tb\n1\tx\n2\ty\n")
    assert rows(Extract(path).preview()) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_csv_gzip_and_zstd(tmp_path: Path, cities_csv: Path) -> None:
    gz = tmp_path / "cities.csv.gz"
    gz.write_bytes(gzip.compress(cities_csv.read_bytes()))
    assert rows(Extract(gz).preview()) == ROWS
    zst = tmp_path / "cities.csv.zst"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * FROM read_csv('{cities_csv}')) TO '{zst}' (FORMAT csv, COMPRESSION zstd)"
    )
    assert rows(Extract(zst).preview()) == ROWS


def test_csv_dtype_overrides(cities_csv: Path) -> None:
    ex = Extract(cities_csv, CSVOptions(dtypes={"id": "DOUBLE", "temp": "VARCHAR"}))
    schema = ex.schema()
    assert schema.field("id").type == pa.float64()
    assert schema.field("temp").type == pa.string()
    assert ex.preview(1).column("temp").to_pylist() == ["3.5"]


def test_csv_timestamp_dtype(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "when,v\n2024-01-02 03:04:05,1\n2024-02-03 00:00:00,2\n")
    ex = Extract(path, CSVOptions(dtypes={"when": "TIMESTAMP", "v": "BIGINT"}))
    assert pa.types.is_timestamp(ex.schema().field("when").type)


def test_unknown_dtype_column_lists_columns_and_close_match(cities_csv: Path) -> None:
    with pytest.raises(ExtractError) as info:
        Extract(cities_csv, CSVOptions(dtypes={"temperature": "DOUBLE"})).schema()
    text = str(info.value)
    assert "'temperature'" in text and "did you mean 'temp'" in text
    assert "id, city, temp" in text


def test_unknown_dtype_type(cities_csv: Path) -> None:
    with pytest.raises(ExtractError, match="unknown type 'FLOATY'"):
        Extract(cities_csv, CSVOptions(dtypes={"temp": "FLOATY"})).schema()


def test_options_forbid_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        CSVOptions(delimeter=";")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        CSVOptions(bad_rows="ignore")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- other sources


def test_parquet_file_folder_and_glob(tmp_path: Path, arrow_table: pa.Table) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(arrow_table.slice(0, 2), folder / "a.parquet")
    pq.write_table(arrow_table.slice(2), folder / "b.parquet")
    assert rows(Extract(folder / "a.parquet").preview()) == ROWS[:2]
    assert rows(Extract(folder).preview()) == ROWS
    assert rows(Extract(str(folder / "*.parquet")).preview()) == ROWS
    assert Extract(folder).count() == 4
    ex = Extract(folder, ParquetOptions(dtypes={"id": "VARCHAR"}))
    assert ex.preview(1).column("id").to_pylist() == ["1"]


def test_parquet_glob_with_other_columns_fails_naming_both(
    tmp_path: Path, arrow_table: pa.Table
) -> None:
    pq.write_table(arrow_table, tmp_path / "a.parquet")
    pq.write_table(arrow_table.rename_columns(["id", "town", "temp"]), tmp_path / "b.parquet")
    with pytest.raises(ExtractError) as info:
        Extract(str(tmp_path / "*.parquet")).schema()
    text = str(info.value)
    assert "a.parquet" in text and "b.parquet" in text and "'city'" in text and "'town'" in text
    both = Extract(str(tmp_path / "*.parquet"), ParquetOptions(union_by_name=True))
    assert set(both.schema().names) == {"id", "city", "temp", "town"}


def test_json_array_and_ndjson(tmp_path: Path) -> None:
    arr = write(tmp_path / "a.json", json.dumps(ROWS))
    nd = write(tmp_path / "b.ndjson", "\n".join(json.dumps(r) for r in ROWS) + "\n")
    assert rows(Extract(arr).preview()) == ROWS
    assert rows(Extract(nd).preview()) == ROWS
    assert (
        Extract(nd, JSONOptions(dtypes={"temp": "VARCHAR"})).schema().field("temp").type
        == pa.string()
    )


def test_ndjson_skip_counts_bad_lines(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in ROWS]
    lines.insert(2, '{"id": 9, "city": ')
    nd = write(tmp_path / "b.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(ExtractError, match=r"b\.jsonl"):
        list(Extract(nd).batches())
    ex = Extract(nd, JSONOptions(bad_rows="skip"))
    out = [r for b in ex.batches() for r in rows(b)]
    assert out == ROWS
    assert (ex.stats.rows_in, ex.stats.rows_out, ex.stats.rows_rejected) == (5, 4, 1)


def test_arrow_ipc_file_stream_and_feather(tmp_path: Path, arrow_table: pa.Table) -> None:
    ipc = tmp_path / "t.arrow"
    with pa.ipc.new_file(ipc, arrow_table.schema) as w:
        w.write_table(arrow_table, max_chunksize=2)
    stream = tmp_path / "t.arrows"
    with pa.ipc.new_stream(stream, arrow_table.schema) as w:
        w.write_table(arrow_table, max_chunksize=3)
    fea = tmp_path / "t.feather"
    feather.write_feather(arrow_table, fea)
    for path in (ipc, stream, fea):
        ex = Extract(path)
        assert rows(ex.preview()) == ROWS
        assert ex.count() == 4
        assert [r for b in ex.batches() for r in rows(b)] == ROWS
    ex = Extract(fea, ArrowOptions(dtypes={"temp": "VARCHAR"}))
    assert ex.schema().field("temp").type == pa.string()


def test_sqlite_table(tmp_path: Path) -> None:
    db = tmp_path / "w.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE weather (id INTEGER, city TEXT, temp REAL, seen DATETIME)")
    con.executemany(
        "INSERT INTO weather VALUES (?, ?, ?, '2024-01-01 00:00:00')",
        [(r["id"], r["city"], r["temp"]) for r in ROWS],
    )
    con.commit()
    con.close()
    ex = Extract(f"{db}:weather")
    assert [{k: r[k] for k in ("id", "city", "temp")} for r in rows(ex.preview())] == ROWS
    assert ex.count() == 4
    ex = Extract(db, TableOptions(table="weather", dtypes={"seen": "TIMESTAMP"}, batch_rows=3))
    assert pa.types.is_timestamp(ex.schema().field("seen").type)
    assert sum(b.num_rows for b in ex.batches(batch_rows=2)) == 4
    with pytest.raises(ExtractError, match="did you mean 'weather'"):
        Extract(f"{db}:wether").schema()


def test_duckdb_table(tmp_path: Path, arrow_table: pa.Table) -> None:
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.register("src", arrow_table)
    con.execute("CREATE TABLE weather AS SELECT * FROM src")
    con.close()
    ex = Extract(f"{db}:weather")
    assert rows(ex.preview()) == ROWS
    assert ex.count() == 4
    assert Extract(db, TableOptions(table="weather")).schema().names == ["id", "city", "temp"]


def test_postgres_needs_extension_or_is_skipped() -> None:
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    try:
        con.execute("LOAD postgres")
    except duckdb.Error:
        ex = Extract("postgresql://nobody@localhost:1/none", PostgresOptions(table="t"))
        with pytest.raises(ExtractError, match="postgres' extension"):
            ex.schema()
        return
    pytest.skip("DuckDB's postgres extension is installed but no Postgres server is available")


# --------------------------------------------------------------------------- batches


@pytest.mark.parametrize("batch_rows", [1, 7, 2048, 100_000])
def test_batches_keep_order_and_total(tmp_path: Path, batch_rows: int) -> None:
    path = numbers_csv(tmp_path / "n.csv", 5000)
    batches = list(Extract(path).batches(memory="256MB", batch_rows=batch_rows))
    assert all(b.num_rows <= batch_rows for b in batches)
    a = [v for b in batches for v in b.column(0).to_pylist()]
    assert a == list(range(5000))


def test_batches_default_size_follows_budget(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path / "n.csv", 20_000)
    ex = Extract(path)
    small = list(ex.batches(memory="64MB"))
    assert sum(b.num_rows for b in small) == 20_000
    assert ex.stats.batch_rows % 2048 == 0
    small_rows = ex.stats.batch_rows
    list(ex.batches(memory="4GB"))
    assert ex.stats.batch_rows > small_rows


def test_sql_source_in_a_query(cities_csv: Path) -> None:
    from blase._duck import connect

    ex = Extract(cities_csv, CSVOptions(dtypes={"id": "DOUBLE"}))
    con = connect("256MB")
    total = con.sql(f"SELECT sum(id), count(temp) FROM {ex.sql_source(con)}").fetchall()
    assert total == [(10.0, 3)]


# --------------------------------------------------------------------------- bad rows


def bad_file(tmp_path: Path) -> Path:
    # data rows 0..9; line numbers in the file are row + 2 (line 1 is the header)
    return numbers_csv(
        tmp_path / "bad.csv", 10, {3: "3,6", 5: "5,10,name_5,extra", 8: "x,16,name_8"}
    )


def test_bad_rows_error_names_file_line_and_column(tmp_path: Path) -> None:
    path = bad_file(tmp_path)
    ex = Extract(path, CSVOptions(dtypes={"a": "BIGINT"}))
    with pytest.raises(ExtractError) as info:
        list(ex.batches())
    err = info.value
    assert "bad.csv, line 5, column 'name'" in str(err)  # data row 3 -> line 5
    assert "skip" in err.hint and "quarantine" in err.hint


def test_bad_rows_skip(tmp_path: Path) -> None:
    path = bad_file(tmp_path)
    ex = Extract(path, CSVOptions(bad_rows="skip", dtypes={"a": "BIGINT"}))
    a = [v for b in ex.batches() for v in b.column("a").to_pylist()]
    assert a == [0, 1, 2, 4, 6, 7, 9]
    assert (ex.stats.rows_in, ex.stats.rows_out, ex.stats.rows_rejected) == (10, 7, 3)
    assert ex.count() == 7
    assert not (tmp_path / "outputs").exists()


def test_bad_rows_quarantine_in_a_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    bad = bad_file(tmp_path)
    (root / "data").mkdir(parents=True)
    path = root / "data" / "bad.csv"
    bad.replace(path)
    ex = Extract(
        "data/bad.csv", CSVOptions(bad_rows="quarantine", dtypes={"a": "BIGINT"}), project=root
    )
    result = ex.to_parquet("outputs/extract", memory="256MB")
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (10, 7, 3)
    assert result.rows_in == result.rows_out + result.rows_rejected
    rejects = root / "outputs" / "rejects" / "bad.csv"
    assert result.details["rejects_file"] == "outputs/rejects/bad.csv"
    assert any("3 bad rows quarantined to outputs/rejects/bad.csv" in w for w in result.warnings)
    table = (
        duckdb.connect().sql(f"SELECT * FROM read_csv('{rejects}', all_varchar=true)").fetchall()
    )
    assert [(f, int(line)) for f, line, *_ in table] == [
        ("data/bad.csv", 5),
        ("data/bad.csv", 7),
        ("data/bad.csv", 10),
    ]
    assert table[0][2] == "name" and table[0][4] == "3,6"
    assert table[2][2] == "a" and "x" in table[2][3]


def test_ragged_row_is_a_bad_row(tmp_path: Path) -> None:
    path = numbers_csv(tmp_path / "r.csv", 50, {40: "40,80,name_40,surplus"})
    with pytest.raises(ExtractError, match=r"r\.csv, line 42.*Found: 4"):
        Extract(path).count()
    assert Extract(path, CSVOptions(bad_rows="skip")).count() == 49


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", "a,b\n1,x\n2,caf\xe9\n3,z\n", encoding="latin-1")
    with pytest.raises(ExtractError) as info:
        list(Extract(path).batches())
    assert "l.csv, line 3" in str(info.value)
    assert "encoding" in info.value.hint
    fixed = Extract(path, CSVOptions(encoding="latin-1")).preview()
    assert fixed.column("b").to_pylist() == ["x", "café", "z"]


# --------------------------------------------------------------------------- bad input


def test_missing_file_names_path_and_project(tmp_path: Path) -> None:
    with pytest.raises(ExtractError) as info:
        Extract("data/nope.csv", project=tmp_path).schema()
    text = str(info.value)
    assert "data/nope.csv" in text and str(tmp_path) in text


def test_wrong_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path / "semi.csv", "a;b;c\n1;2;3\n4;5;6\n")
    with pytest.raises(ExtractError) as info:
        Extract(path, CSVOptions(delimiter=",")).schema()
    assert "';'" in str(info.value) and "delimiter" in info.value.hint
    assert Extract(path).schema().names == ["a", "b", "c"]  # detected when unset


def test_glob_with_differing_headers_names_both_files(tmp_path: Path) -> None:
    write(tmp_path / "p1.csv", "a,b,c\n1,2,3\n")
    write(tmp_path / "p2.csv", "a,b,d\n4,5,6\n")
    with pytest.raises(ExtractError) as info:
        Extract(str(tmp_path / "p*.csv")).schema()
    text = str(info.value)
    assert "p1.csv" in text and "p2.csv" in text and "'c'" in text and "'d'" in text


def test_glob_of_csv_files_keeps_file_order(tmp_path: Path) -> None:
    for i in range(3):
        numbers_csv(tmp_path / f"part{i}.csv", 3)
    ex = Extract(str(tmp_path / "part*.csv"))
    assert ex.count() == 9
    assert [v for b in ex.batches(batch_rows=2) for v in b.column("a").to_pylist()] == [0, 1, 2] * 3


def test_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "x.dat", "a\n1\n")
    with pytest.raises(ExtractError, match="format"):
        Extract(path).schema()
    assert Extract(path, CSVOptions()).count() == 1


# --------------------------------------------------------------------------- the step


def test_to_parquet_step_result(tmp_path: Path, cities_csv: Path) -> None:
    from blase.hashing import hash_file

    out = tmp_path / "out"
    ex = Extract(cities_csv, project=tmp_path)
    result = ex.to_parquet(out, memory="256MB")
    assert result.step == "extract"
    assert sorted(p.name for p in out.iterdir()) == ["part-00000.parquet"]
    assert pq.read_table(out / "part-00000.parquet").to_pylist() == ROWS
    assert result.inputs == {"cities.csv": hash_file(cities_csv)}
    assert list(result.outputs) == ["out"]
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (4, 4, 0)
    assert result.memory_budget_bytes == 256_000_000
    assert result.peak_rss_bytes and result.seconds > 0
    assert result.details["format"] == "csv"
    assert result.details["columns"] == ["id", "city", "temp"]
    first_hash = result.outputs["out"]
    again = ex.to_parquet(out, memory="256MB")  # replaces the folder, same content
    assert again.outputs["out"] == first_hash
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_to_parquet_failure_leaves_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = numbers_csv(tmp_path / "good.csv", 5)
    Extract(good).to_parquet(out)
    bad = numbers_csv(tmp_path / "bad.csv", 5, {4: "4,8"})
    with pytest.raises(ExtractError):
        Extract(bad).to_parquet(out)
    assert pq.read_table(out).num_rows == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "good.csv", "out"]


def test_from_config(tmp_path: Path) -> None:
    from blase.config import DataConfig
    from blase.project import Project

    write(tmp_path / "data" / "x.txt", "k|v\n1|-\n2|b\n3|oops|x\n")
    data = DataConfig(
        source="data/x.txt",
        format="csv",
        delimiter="|",
        null_values=["-"],
        dtypes={"k": "DOUBLE"},
        bad_rows="skip",
    )
    ex = Extract.from_config(data, Project(tmp_path))
    assert isinstance(ex.options, CSVOptions)
    assert rows(ex.preview()) == [{"k": 1.0, "v": None}, {"k": 2.0, "v": "b"}]
    with pytest.raises(ExtractError, match=r"data\.source"):
        Extract.from_config(DataConfig(), Project(tmp_path))


# --------------------------------------------------------------------------- memory


MEMORY_CHILD = textwrap.dedent("""
    import sys
    from blase.extract import Extract, CSVOptions
    from blase.steps import current_peak_rss, reset_peak_rss

    def rss():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024

    path, small, budget = sys.argv[1], sys.argv[2], sys.argv[3]
    list(Extract(small, CSVOptions(bad_rows="skip")).batches(memory=budget))  # load everything
    base = rss()
    if not reset_peak_rss():
        print("noreset")
        sys.exit(0)
    ex = Extract(path, CSVOptions(bad_rows="skip"))
    n = sum(b.num_rows for b in ex.batches(memory=budget))
    print(base, current_peak_rss(), n, ex.stats.batch_rows)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_peak_memory_stays_near_the_budget(tmp_path: Path) -> None:
    budget = 128_000_000
    line = "2024-01-01 10:00:00,carrier_{},{},{:.3f},some free text that makes the row wider\n"
    block = "".join(line.format(i % 17, i, i / 7) for i in range(20_000)).encode()
    path = tmp_path / "big.csv"
    with open(path, "wb") as f:
        f.write(b"when,carrier,n,x,text\n")
        while f.tell() < 3.5 * budget:
            f.write(block)
    small = numbers_csv(tmp_path / "small.csv", 10)
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(path), str(small), str(budget)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    if out.stdout.strip() == "noreset":
        pytest.skip("cannot reset the peak-RSS mark here")
    base, peak, n, _batch_rows = map(int, out.stdout.split())
    assert n > 1_000_000
    assert peak - base < 1.3 * budget, f"peak {peak / 1e6:.0f} MB, base {base / 1e6:.0f} MB"


def test_quarantine_without_bad_rows_writes_an_empty_rejects_file(
    tmp_path: Path, cities_csv: Path
) -> None:
    ex = Extract(cities_csv, CSVOptions(bad_rows="quarantine"), project=tmp_path)
    assert sum(b.num_rows for b in ex.batches()) == 4
    assert ex.stats.rows_rejected == 0 and not ex.stats.warnings
    assert (tmp_path / "outputs" / "rejects" / "cities.csv").read_text().splitlines() == [
        "file,line,column,error,raw"
    ]


def test_extract_writes_row_groups_of_exactly_the_batch_size_whatever_the_readers_cut():
    """DuckDB cuts batches at its own scan units (a CSV read alone is split into parallel buffers,
    read among other files it is not): extract re-cuts them, so every executor writes the same row groups."""
    import pyarrow as pa

    from blase.extract._parts import exact_batches

    table = pa.table({"x": list(range(23)), "s": [f"v{i}" for i in range(23)]})
    cuts = [table.slice(0, 3), table.slice(3, 10), table.slice(13, 1), table.slice(14, 9)]
    got = list(exact_batches((t.to_batches()[0] for t in cuts), 5))
    assert [b.num_rows for b in got] == [5, 5, 5, 5, 3]
    assert pa.Table.from_batches(got).equals(table)
    again = list(exact_batches(table.to_batches(max_chunksize=7), 5))
    assert all(a.equals(b) for a, b in zip(got, again, strict=True))
