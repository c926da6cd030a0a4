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
