"""The byte-range sample of a big CSV: real rows, typed as the full read types them, spread
over the whole file, the same every time; None where it cannot sample."""

from __future__ import annotations

import gzip

import pytest

import blase._sample as sampling
from blase._duck import connect
from blase.extract import CSVOptions, Extract


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "rows.csv"
    with open(path, "w") as f:
        f.write("# exported 2026-11-28\nid,when,group,value\n")
        for i in range(200_000):
            f.write(f"{i},2024-01-01 00:00:{i % 60:02d},{'g' + str(i % 7)},{i / 3:.4f}\n")
    return path


def _relation(con, path):
    return Extract(str(path), CSVOptions(skip_rows=1, bad_rows="skip")).sql_source(con)


def test_sample_is_real_typed_rows_from_the_whole_file(csv, monkeypatch):
    monkeypatch.setattr(sampling, "MIN_BYTES", 0)
    con = connect("256MB")
    relation = _relation(con, csv)
    full_types = con.sql(f"SELECT * FROM {relation} LIMIT 0").to_arrow_table().schema
    sample = sampling.byte_range_sample(con, csv, relation, 6_400, tmp_dir=csv.parent)
    again = sampling.byte_range_sample(con, csv, relation, 6_400, tmp_dir=csv.parent)
    assert sample.schema == full_types
    assert 6_000 <= sample.num_rows <= 6_400 and sample.equals(again)
    ids = sample.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    assert min(ids) < 1_000 and max(ids) > 195_000  # blocks from the start to the end
    for row in sample.slice(0, 50).to_pylist() + sample.slice(sample.num_rows - 50).to_pylist():
        i = row["id"]  # every value is the one written on that line
        assert row["group"] == f"g{i % 7}" and row["value"] == pytest.approx(i / 3, abs=1e-4)
    assert not list(csv.parent.glob("blase-sample-*"))


def test_a_symlinked_file_is_sampled_as_its_relation_names_it(csv, tmp_path, monkeypatch):
    monkeypatch.setattr(sampling, "MIN_BYTES", 0)
    link = tmp_path / "data" / "rows.csv"
    link.parent.mkdir()
    link.symlink_to(csv)  # data/ holding a link to a big file elsewhere (bench/ui_builder.py does)
    con = connect("256MB")
    sample = sampling.byte_range_sample(con, link, _relation(con, link), 1000, tmp_dir=tmp_path)
    assert sample is not None and 900 <= sample.num_rows <= 1000 and max(sample.column("id").to_pylist()) > 195_000


def test_no_sample_where_it_cannot_read_by_position(csv, tmp_path, monkeypatch):
    con = connect("256MB")
    relation = _relation(con, csv)
    assert sampling.byte_range_sample(con, csv, relation, 1000) is None  # small: sample in the scan
    monkeypatch.setattr(sampling, "MIN_BYTES", 0)
    packed = tmp_path / "rows.csv.gz"
    packed.write_bytes(gzip.compress(csv.read_bytes()))
    assert sampling.byte_range_sample(con, packed, _relation(con, packed), 1000) is None
    other = tmp_path / "other.csv"
    other.write_text("a\n1\n")
    assert sampling.byte_range_sample(con, other, relation, 1000) is None  # relation reads another file


def test_row_estimates(csv, tmp_path):
    """Exact for Parquet (marker and hidden files skipped), within a few % for lines of text,
    and None where a cheap estimate would be a guess."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "parts"
    folder.mkdir()
    for k in range(3):
        pq.write_table(pa.table({"x": list(range(1000 * (k + 1)))}), folder / f"part-{k}.parquet")
    (folder / "_SUCCESS").write_text("")
    (folder / ".part-0.parquet.crc").write_bytes(b"\0")
    assert [f.name for f in sampling.data_files(folder)] == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert sampling.estimate_rows(sampling.data_files(folder)) == 6000

    assert sampling.estimate_rows(sampling.data_files(csv)) == pytest.approx(200_002, rel=0.05)
    copy = tmp_path / "more.csv"
    copy.write_bytes(csv.read_bytes())
    both = sampling.data_files(str(tmp_path / "*.csv"))
    assert [f.name for f in both] == ["more.csv", "rows.csv"]
    assert sampling.estimate_rows(both) == pytest.approx(400_004, rel=0.05)

    packed = tmp_path / "rows.csv.gz"
    packed.write_bytes(gzip.compress(csv.read_bytes()[:100_000]))
    one_line = tmp_path / "one.csv"
    one_line.write_text("a,b\n")
    assert sampling.estimate_rows(sampling.data_files(packed)) is None
    assert sampling.estimate_rows(sampling.data_files(one_line)) is None
    assert sampling.estimate_rows(sampling.data_files(tmp_path / "missing.csv")) is None
