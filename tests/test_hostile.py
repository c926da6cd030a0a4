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
    never printed: `blase run` says it once, as it happens, and `blase inspect` lists it."""
    import csv

    rows = list(csv.DictReader((project.root / "data" / "penguins.csv").open()))
    rows[3]["species"], rows[5]["species"] = " Adelie", "adelie"
    with (project.root / "data" / "ws.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import os
    import subprocess

    from tests.test_wrong_results import _blase_cmd

    p = subprocess.run([*_blase_cmd(), "run", "--to", "prepare", "--set", "data.source=data/ws.csv"],
                       cwd=project.root, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "COLUMNS": "300", "BLASE_PROGRESS": "0"})
    assert p.returncode == 0, p.stderr
    said = " ".join((p.stdout + p.stderr).split())
    assert said.count("label 'species' has values that differ only by whitespace or case") == 1
    assert "' Adelie' / 'Adelie' / 'adelie'" in said
    r = cli("inspect", "latest", "--project", str(project.root))
    said = " ".join(r.stdout.split())
    assert "warning: prepare: label 'species' has values that differ only by whitespace or case" in said


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A project with one deployed model (a short training run)."""
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project
    from tests.conftest import pin_mlp

    project = pin_mlp(create_project(tmp_path_factory.mktemp("hostile") / "peng"))
    Pipeline(project, overrides=["train.epochs=3"]).run()
    return project


def _new_rows(project, name, column, value):
    """Twenty labelled-less rows of the template data with ``value`` written in row 1 of ``column``."""
    import csv

    rows = [r for r in csv.DictReader((project.root / "data" / "penguins.csv").open()) if "NA" not in r.values()]
    rows = [{k: v for k, v in r.items() if k != "species"} for r in rows[:20]]
    rows[1][column] = value
    path = project.root / "data" / name
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("value", ["inf", "-inf", "1e400", "1e300"])
def test_predict_refuses_an_infinite_input_instead_of_writing_a_prediction(deployed, cli, tmp_path, value):
    """An 'inf' (or a number beyond float32) in new data came out as a confident class with NaN
    probabilities: refuse, naming the column and the row."""
    _new_rows(deployed, "new_inf.csv", "body_mass_g", value)
    out = tmp_path / "p.csv"
    r = cli("predict", "peng", "data/new_inf.csv", "--out", str(out), "--project", str(deployed.root))
    assert r.exit_code != 0
    said = " ".join(r.stderr.split())
    assert "feature 'body_mass_g' is infinite or NaN in 1 row(s) of data/new_inf.csv" in said
    assert "first at row_id 1" in said and "Traceback" not in said
    assert not out.exists()
    # the same rows without the bad value are scored, every probability a number
    _new_rows(deployed, "new_ok.csv", "body_mass_g", "4000")
    r = cli("predict", "peng", "data/new_ok.csv", "--out", str(out), "--project", str(deployed.root))
    assert r.exit_code == 0, r.stderr
    assert "nan" not in out.read_text().lower()


def test_file_size_limit_during_predict_and_a_runs_record_names_the_file(deployed):
    """EFBIG while writing predictions, or a run's own log (monitor, deploy, run), was 'internal
    error ... this is a bug in Blase'."""
    from tests.test_wrong_results import _blase_limited

    root = deployed.root
    p = _blase_limited(root, 2000, "predict", "peng", "data/penguins.csv", "--out", "outputs/p.csv")
    err = " ".join(p.stderr.split())
    assert p.returncode == 1, p.stdout + p.stderr
    assert "cannot write the predictions outputs/p.csv: file too large" in err and "ulimit -f" in err
    assert "internal error" not in err and "Traceback" not in err
    assert not [f for f in (root / "outputs").iterdir() if f.name.startswith(("p.csv", ".p.csv"))]
    p = _blase_limited(root, 2000, "monitor", "peng", "data/penguins.csv")
    err = " ".join(p.stderr.split())
    assert p.returncode == 1, p.stdout + p.stderr
    assert "cannot write the record of run" in err and "log.jsonl: file too large" in err
    assert "internal error" not in err and "Traceback" not in err


def test_schema_calls_an_all_null_column_empty_not_constant(project, cli):
    """A column with no value in any row is not 'a single value in every row'."""
    (project.root / "data" / "nulls.csv").write_text("a,b,c\n1,,x\n2,,y\n3,,x\n")
    r = cli("schema", "data/nulls.csv", "--project", str(project.root))
    said = " ".join(r.stdout.split())
    assert "column 'b': empty: no value in any row (every row is null)" in said
    assert "column 'b': constant" not in said
    (project.root / "data" / "same.csv").write_text("a,b\n1,k\n2,k\n3,k\n")
    r = cli("schema", "data/same.csv", "--project", str(project.root))
    assert "column 'b': constant: a single value in every row" in " ".join(r.stdout.split())


@pytest.mark.parametrize("override", ["ray.address=203.0.113.7:6379", "ray={address: 'ray://203.0.113.7:10001'}"])
def test_an_override_cannot_send_the_run_to_a_cluster_blase_yaml_does_not_name(project, override):
    """The assistant's run_step/run_pipeline could point the run (its code, paths and data) at any
    Ray cluster; like a file outside the project, a cluster is the person's choice in blase.yaml."""
    ctx = ToolContext.for_project(project)
    for tool, args in (("run_pipeline", {"overrides": ["executor=ray", override]}),
                       ("run_step", {"step": "extract", "overrides": ["executor=ray", override]})):
        with pytest.raises(ToolError, match=r"ray\.address: '.*203\.0\.113\.7.*' is a cluster blase.yaml does not name"):
            call_tool(tool, args, ctx)
    assert not list(project.runs_dir.glob("*"))  # refused before any run started
    # the cluster blase.yaml names is the person's choice, and stays allowed
    from blase.config import check_confined, config_from_dict

    named = config_from_dict({"project": "p", "ray": {"address": "ray://203.0.113.7:10001"}})
    check_confined(named, project.root, base=named)


def test_a_bad_tool_value_is_not_answered_with_the_list_of_fields(project):
    """'model name '../x' is not a name' came with 'hint: allowed fields: model, data', which
    sends the model (and a person reading the log) to the wrong fix."""
    ctx = ToolContext.for_project(project)
    with pytest.raises(ToolError) as info:
        call_tool("check_drift", {"model": "../x", "data": "data/penguins.csv"}, ctx)
    assert "is not a name" in info.value.message and "allowed fields" not in (info.value.hint or "")
    with pytest.raises(ToolError) as info:
        call_tool("check_drift", {"modle": "peng", "data": "data/penguins.csv"}, ctx)
    assert info.value.hint == "allowed fields: model, data"


def test_a_null_value_holding_the_delimiter_names_the_key(project, cli):
    """data.null_values: ['12,5'] gave DuckDB's 'Binder Error: DELIMITER must not appear in the
    NULL specification' with a hint about format, dtypes and delimiter."""
    r = cli("run", "--to", "extract", "--set", "data.null_values=['NA', '12,5']", "--project", str(project.root))
    said = " ".join(r.stderr.split())
    assert r.exit_code != 0
    assert "data.null_values holds the file's delimiter ('12,5')" in said and "Binder Error" not in said


def test_predict_fills_a_missing_date_where_training_had_none(tmp_path, cli):
    """A missing date in new data (a `datetime` op's column) refused the whole file: it gets the
    training mean date, as a numeric column gets its mean."""
    import csv
    import datetime as dt
    import random

    from tests.test_wrong_results import _config, _project, _write_csv

    root = _project(tmp_path, _config("y", "  - op: datetime\n    columns: [d]\n    parts: [year]\n"
                                           "  - op: scale\n    method: standard\n", epochs=3))
    rng = random.Random(2)
    days = [dt.date(1970, 1, 1) + dt.timedelta(days=rng.randrange(0, 12 * 365)) for _ in range(200)]
    _write_csv(root / "data" / "d.csv", ["d", "a", "y"],
               [[d.isoformat(), i % 7, round(i % 7 + (d.year - 1970) / 6, 3)] for i, d in enumerate(days)])
    r = cli("run", cwd=root)
    assert r.exit_code == 0, r.stdout + r.stderr
    new = _write_csv(tmp_path / "new.csv", ["d", "a"], [["", 0.5], ["1975-06-01", 0.2]])
    out = tmp_path / "new.pred.csv"
    r = cli("predict", "p", str(new), "--out", str(out), cwd=root)
    assert r.exit_code == 0, r.stdout + r.stderr
    said = " ".join(r.stdout.split())
    assert "1 missing value(s) of column 'd' filled with its training mean 197" in said  # a date, 1970-1981
    with out.open() as f:
        assert len([float(row["prediction"]) for row in csv.DictReader(f)]) == 2


@pytest.mark.parametrize("out", ["models/peng/v9/p.csv", "runs/0123abcd/p.csv", ".blase/p.csv"])
def test_the_predict_tool_does_not_write_into_blases_own_folders(deployed, out):
    """A predictions file under models/NAME/v9/ made a version 'v9' that `blase models` lists
    (and the next deploy numbers after); under runs/, a run that never ran."""
    from blase.deploy import list_models

    ctx = ToolContext.for_project(deployed)
    with pytest.raises(ToolError, match="which Blase manages"):
        call_tool("predict", {"model": "peng", "data": "data/penguins.csv", "out": out}, ctx)
    assert not (deployed.root / out).parent.exists() or out.startswith(".blase")
    assert [m.versions for m in list_models(deployed) if m.name == "peng"] == [["v1"]]


@pytest.mark.parametrize("source", ["data/parts", "'data/parts/*.parquet'"])
def test_an_override_naming_a_folder_with_a_symlink_to_an_outside_file_is_refused(project, tmp_path, cli, source):
    """The folder is inside the project; one of its files is a link to a file outside. The run
    read both (688 rows of 344 + 344): every file a folder or glob expands to is confined."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(project.root / "data" / "penguins.csv")
    parts = project.root / "data" / "parts"
    parts.mkdir()
    pq.write_table(table, parts / "a.parquet")
    pq.write_table(table, tmp_path / "private.parquet")
    (parts / "b.parquet").symlink_to(tmp_path / "private.parquet")
    override = f"data={{source: {source}, label: species}}"
    ctx = ToolContext.for_project(project)
    for tool, args in (("run_pipeline", {"overrides": [override]}),
                       ("run_step", {"step": "extract", "overrides": [override]})):
        with pytest.raises(ToolError, match=r"expands to .*b\.parquet, which is outside the project"):
            call_tool(tool, args, ctx)
    r = cli("run", "--to", "extract", "--set", override, "--project", str(project.root))
    assert r.exit_code != 0 and "which is outside the project" in " ".join(r.stderr.split())
    assert not list(project.runs_dir.glob("*"))  # refused before any run started


def test_predict_out_onto_a_folder_says_so_with_and_without_force(deployed, cli, tmp_path):
    """The 'already exists' hint offered --force, which then failed with 'internal error:
    IsADirectoryError' (and a folder must never be replaced by predictions)."""
    folder = tmp_path / "p.csv"
    (folder / "inner").mkdir(parents=True)
    (folder / "inner" / "keep").write_text("x")
    for force in ((), ("--force",)):
        r = cli("predict", "peng", "data/penguins.csv", "--out", str(folder), *force, "--project", str(deployed.root))
        said = " ".join(r.stderr.split())
        assert r.exit_code == 1 and f"--out {folder} is a folder; predictions are written to a file" in said
        assert "--force" not in said and "internal error" not in said
    assert (folder / "inner" / "keep").read_text() == "x"


def test_the_tools_still_read_the_data_blase_yaml_names_outside_the_project(project, secret):
    """The confinement is for what the assistant or a data file brings in: a data.source the
    person wrote in blase.yaml (a big file on another disk) is theirs to read."""
    import shutil

    outside = secret.parent / "big" / "peng.csv"
    outside.parent.mkdir()
    shutil.copyfile(project.root / "data" / "penguins.csv", outside)
    cfg = project.config_path
    cfg.write_text(cfg.read_text().replace("source: data/penguins.csv", f"source: {outside}", 1))
    ctx = ToolContext.for_project(project)
    out = call_tool("run_step", {"step": "extract"}, ctx)
    assert out.status == "finished" and out.steps[0].rows_out == 344
    # a file next to it is still outside
    _view_over(project, secret)
    with pytest.raises(ToolError, match="outside the project"):
        call_tool("preview_data", {"path": "data/evil.duckdb:v"}, ctx)


def test_a_negative_list_index_in_set_is_named(project, cli):
    """`--set transform.-1.strategy=mean` replaced the whole list with a mapping and answered
    'transform: Input should be a valid list'."""
    r = cli("run", "--to", "extract", "--set", "transform.-1.strategy=mean", "--project", str(project.root))
    said = " ".join(r.stderr.split())
    assert r.exit_code != 0 and "transform.-1: no item -1 in a list of" in said and "valid list" not in said
    assert not list(project.runs_dir.glob("*"))
