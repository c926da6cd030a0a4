"""Hostile inputs the first round of issue [1/7] tests did not reach (the reviewer's variants).

Real projects from `blase create`, real DuckDB files, the real tools and CLI.
"""

from __future__ import annotations

import pytest
from blase.tools import ToolContext, ToolError, call_tool


@pytest.fixture
def secret(tmp_path):
    """A CSV outside the project."""
    outside = tmp_path / "secret.csv"
    outside.write_text("ssn,name\n123-45-6789,alice\n987-65-4321,bob\n")
    return outside


def _view_over(project, outside, name="evil.duckdb"):
    import duckdb

    db = project.root / "data" / name
    con = duckdb.connect(str(db))
    con.execute(f"CREATE VIEW v AS SELECT * FROM read_csv('{outside}')")
    con.execute("CREATE TABLE t AS SELECT 1 AS a, 'x' AS b")
    con.execute("CREATE VIEW inside AS SELECT * FROM t")
    con.close()
    return db


@pytest.mark.parametrize("tool,args", [
    ("preview_data", {"path": "data/evil.duckdb", "table": "v"}),
    ("preview_data", {"path": "data/evil.duckdb:v"}),
    ("suggest_schema", {"path": "data/evil.duckdb:v"}),
    ("run_step", {"step": "extract", "overrides": ["data={source: 'data/evil.duckdb:v', label: name}"]}),
])
def test_a_duckdb_view_in_the_project_cannot_read_files_outside_it(project, secret, tool, args):
    """A path check sees data/evil.duckdb; the view inside it reads any file. The tools' reads
    stay inside the project whatever a database file in it says."""
    _view_over(project, secret)
    ctx = ToolContext.for_project(project)
    with pytest.raises(ToolError, match=r"outside the project") as info:
        call_tool(tool, args, ctx)
    assert "123-45" not in str(info.value)
    # a view over the database's own tables still reads
    out = call_tool("preview_data", {"path": "data/evil.duckdb:inside"}, ctx)
    assert out.rows == [{"a": 1, "b": "x"}]


def test_a_person_may_still_read_a_view_over_their_own_files(project, secret):
    """The confinement is the tools' (the assistant's); the engine reads what a person names."""
    from blase.extract import Extract

    db = _view_over(project, secret)
    assert Extract(f"{db}:v", project=project).preview(5).num_rows == 2


def test_blase_run_shows_what_a_step_warned_about(project, cli):
    """Prepare's warning about label variants (' Adelie' / 'adelie') was recorded in the run but
    never printed: `blase run` and `blase inspect` must show it."""
    import csv

    rows = list(csv.DictReader((project.root / "data" / "penguins.csv").open()))
    rows[3]["species"], rows[5]["species"] = " Adelie", "adelie"
    with (project.root / "data" / "ws.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    r = cli("run", "--to", "prepare", "--set", "data.source=data/ws.csv", "--project", str(project.root))
    assert r.exit_code == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert "warning: prepare: label 'species' has values that differ only by whitespace or case" in said
    assert "' Adelie' / 'Adelie' / 'adelie'" in said
    r = cli("inspect", "latest", "--project", str(project.root))
    assert "differ only by whitespace or case" in " ".join(r.stdout.split())
