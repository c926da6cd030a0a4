"""Bad data files get messages that say what is wrong with them, through the real CLI."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


@pytest.mark.parametrize(("name", "content", "message"), [
    ("empty.csv", b"", "data/empty.csv is empty (0 bytes)"),
    ("blank.csv", b"\n\n", "data/blank.csv holds only blank lines"),
    ("header.csv", b"a,b,y\n", "data/header.csv has a header but no rows"),
    ("empty.json", b"", "data/empty.json is empty (0 bytes)"),
])
def test_empty_and_header_only_files_are_named_as_such(cli, project, name, content, message):
    (project.root / "data" / name).write_bytes(content)
    for args in (["schema", f"data/{name}", "--label", "y"],
                 ["run", "--set", f"data.source=data/{name}", "--set", "data.label=y"]):
        r = cli(*args, cwd=project.root)
        assert r.exit_code == 1, (args, r.stdout, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        for misleading in ("Sniffer", "constant", "is string", "internal error", ".blase/store"):
            assert misleading not in r.stdout + r.stderr, (args, r.stdout, r.stderr)


def test_a_parquet_file_without_rows(cli, project):
    pq.write_table(pa.table({"a": pa.array([], pa.float64()), "y": pa.array([], pa.string())}),
                   project.root / "data" / "zero.parquet")
    r = cli("schema", "data/zero.parquet", "--label", "y", cwd=project.root)
    assert r.exit_code == 1 and "data/zero.parquet has no rows" in r.stderr
    assert "constant" not in r.stdout + r.stderr
    r = cli("run", "--set", "data.source=data/zero.parquet", "--set", "data.label=y", cwd=project.root)
    assert r.exit_code == 1 and "data/zero.parquet has no rows" in r.stderr


def _project_on(project, table: pa.Table, transform: str) -> None:
    pq.write_table(table, project.root / "data" / "d.parquet")
    (project.root / "blase.yaml").write_text(
        "project: p\ndata:\n  source: data/d.parquet\n  label: y\n"
        f"transform:\n{transform}prepare:\n  split: {{train: 0.7, val: 0.15, test: 0.15}}\n"
    )


def _table(a: list[float]) -> pa.Table:
    return pa.table({"a": pa.array(a, pa.float64()), "b": pa.array([float(i) for i in range(len(a))]),
                     "y": pa.array([i % 2 for i in range(len(a))], pa.int64())})


def test_a_number_too_large_for_a_double_is_reported_as_infinite_not_nan(cli, project):
    csv = project.root / "data" / "penguins.csv"
    lines = csv.read_text().splitlines()
    lines[1] = lines[1].replace(",3750,", ",1e400,")  # overflows a DOUBLE: inf
    csv.write_text("\n".join(lines) + "\n")
    r = cli("run", "--to", "prepare", cwd=project.root)
    assert r.exit_code == 1, r.stdout
    assert "scale: column 'body_mass_g' holds infinite values (1 x inf" in r.stderr
    assert "1e400" in r.stderr and 'isinf(body_mass_g) IS NOT TRUE' in r.stderr
    assert "NaNs" not in r.stderr
    assert "add an `impute`" not in r.stderr


def test_infinite_features_after_the_transform_name_the_column_and_the_users_file(cli, project):
    _project_on(project, _table([1.0, float("-inf"), *range(38)]), "  - op: impute\n    strategy: median\n")
    r = cli("run", "--to", "prepare", cwd=project.root)
    assert r.exit_code == 1, r.stdout
    assert ("features with infinite values in data/d.parquet (after the transform) (40 rows): "
            "'a' has 1 infinite value(s)") in r.stderr
    assert ".blase/store" not in r.stderr and "NaNs" not in r.stderr
    assert "add an `impute`" not in r.stderr


def test_nans_made_after_an_impute_do_not_ask_for_an_impute(cli, project):
    # log1p of a value below -1 is NaN: the impute before it cannot have filled it
    _project_on(project, _table([-5.0, None, *range(38)]),
                "  - op: impute\n    strategy: median\n  - op: log1p\n    columns: [a]\n")
    r = cli("run", "--to", "prepare", cwd=project.root)
    assert r.exit_code == 1, r.stdout
    assert "features with missing values in data/d.parquet (after the transform)" in r.stderr
    assert "'a' has 1 NaNs" in r.stderr
    assert "an impute covers 'a', so a later transform operation made these values" in r.stderr
    assert "add an `impute`" not in r.stderr and ".blase/store" not in r.stderr


def test_missing_values_without_an_impute_still_ask_for_one(cli, project):
    _project_on(project, _table([None, *range(39)]), "  - op: log1p\n    columns: [b]\n")
    r = cli("run", "--to", "prepare", cwd=project.root)
    assert r.exit_code == 1, r.stdout
    assert "'a' has 1 nulls" in r.stderr and "add an `impute` transform" in r.stderr
    assert "data/d.parquet (after the transform)" in r.stderr


@pytest.mark.parametrize("before", [1_000, 25_000])  # inside and after the sniffer's sample
def test_a_line_too_long_is_reported_at_its_line(cli, project, before):
    rows = "".join(f"{i},x{i},{i % 2}\n" for i in range(before))
    big = "1," + "z" * 3_000_000 + ",1\n"  # DuckDB's limit is 2,000,000 bytes a line
    (project.root / "data" / "big.csv").write_text("a,b,y\n" + rows + big + "2,x,0\n3,y,1\n")
    args = ["run", "--to", "extract", "--set", "data.source=data/big.csv", "--set", "data.label=y"]
    r = cli(*args, cwd=project.root)
    assert r.exit_code == 1, r.stdout
    line = before + 2
    assert f"data/big.csv, line {line}: the line is 3,000,004 bytes long" in r.stderr
    assert "Line: 1" not in r.stderr
    assert "blase run --set data.max_line_size=4194304" in r.stderr
    r = cli(*args, "--set", "data.max_line_size=4194304", cwd=project.root)
    assert r.exit_code == 0, r.stderr  # the hint's fix reads the file


def test_a_bad_value_after_the_sniffers_sample_names_its_line(cli, project):
    rows = "".join(f"{i},x{i},{i % 2}\n" for i in range(25_000))
    (project.root / "data" / "late.csv").write_text("a,b,y\n" + rows + "abc,x,1\n2,x,0\n")
    r = cli("run", "--to", "extract", "--set", "data.source=data/late.csv", "--set", "data.label=y",
            cwd=project.root)
    assert r.exit_code == 1, r.stderr  # was 2: pyarrow's OSError read as a bug in Blase
    assert "line 25002: abc,x,1" in r.stderr and "bug in Blase" not in r.stderr
