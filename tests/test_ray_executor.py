"""executor: ray: extract and prepare partitioned by file and row group as Ray tasks on a local
Ray (2 CPUs), giving the local executor's shards bit for bit and the same step keys."""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

from blase.config import config_from_text
from blase.errors import ConfigError, ExtractError
from blase.pipeline import Pipeline, step_records
from blase.track import load_run

ray = pytest.importorskip("ray", reason="the ray extra (pip install 'blase[ray]')")

pytestmark = pytest.mark.ray

#: impute, scale and a final one-hot: prepare applies them in its tasks' SQL; stratified split
SQL_TRANSFORM = ("transform=[{op: impute, strategy: median}, {op: scale, method: standard}, "
                 "{op: onehot, columns: [cat]}]")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module (started as a run would start it, with 2 CPUs)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def data_project(tmp_path_factory):
    """A project whose data is three CSV files and the same rows as one Parquet file of 9 row groups."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from blase.scaffold import create_project
    from tests.conftest import pin_mlp

    project = pin_mlp(create_project(tmp_path_factory.mktemp("ray") / "proj"))
    rng = np.random.default_rng(7)
    n = 9_000
    table = pa.table({
        "x1": rng.normal(size=n), "x2": rng.integers(0, 100, n).astype(float),
        "cat": rng.choice(["a", "b", "c"], n), "y": rng.choice(["yes", "no", "maybe"], n, p=[0.6, 0.3, 0.1]),
    })
    table = table.set_column(1, "x2", pa.array(np.where(rng.random(n) < 0.1, np.nan, table["x2"])))
    (project.root / "data" / "parts").mkdir()
    for i in range(3):
        pcsv.write_csv(table.slice(i * 3000, 3000), project.root / "data" / "parts" / f"p{i}.csv")
    pq.write_table(table, project.root / "data" / "big.parquet", row_group_size=1000)
    # one CSV file (~340 KB) with quoted fields holding the delimiter and doubled quotes: cut at
    # line starts into ranges of 64 KB when a task has 256 KB
    quoted = table.set_column(2, "cat", pa.array(np.array(["a", "b, c", 'say "d"'])[rng.integers(0, 3, n)]))
    pcsv.write_csv(quoted, project.root / "data" / "one.csv")
    return project


def _run(project, executor: str, *sets: str):
    overrides = ["prepare.stratify=true", "prepare.shard_rows=1500",
                 f"executor={executor}", "ray.partition_size=20KB", *sets]
    result = Pipeline(project.root, overrides=overrides).run(to_step="prepare", cache=False)
    assert result.status == "finished"
    return result, step_records(project, result.run_id)


def _same_outputs(project, local, on_ray) -> None:
    """The same step keys, extract parts and shard files (bytes); the manifests differ only in their date."""
    (lres, lrec), (rres, rrec) = local, on_ray
    for step in ("extract", "transform", "prepare"):
        assert lrec[step]["key"] == rrec[step]["key"], step
    assert lrec["extract"]["files"] == rrec["extract"]["files"]
    shards = {f: h for f, h in lrec["prepare"]["files"].items() if f != "manifest.json"}
    assert len(shards) > 6 and shards == {f: h for f, h in rrec["prepare"]["files"].items() if f != "manifest.json"}
    assert lres.steps["prepare"].outputs["shards"] == rres.steps["prepare"].outputs["shards"]
    manifests = [json.loads((r.steps["prepare"].output.root / "manifest.json").read_text()) for r in (lres, rres)]
    for m in manifests:
        m.pop("created_at")
    assert manifests[0] == manifests[1]
    assert rres.steps["extract"].details["executor"] == rres.steps["prepare"].details["executor"] == "ray"
    assert lres.steps["prepare"].details["executor"] == "local"


@pytest.mark.parametrize("source", ["data/parts/*.csv", "data/big.parquet", "data/one.csv"])
def test_ray_tasks_write_the_local_executors_shards_bit_for_bit(data_project, source):
    sets = (f"data.source={source}", "data.label=y", SQL_TRANSFORM)
    local = _run(data_project, "local", *sets)
    # one.csv is over half of a task's memory: cut at line starts, not read here
    on_ray = _run(data_project, "ray", *sets, *(["ray.task_memory=256KB"] if source == "data/one.csv" else []))
    _same_outputs(data_project, local, on_ray)
    assert not [w for w in on_ray[0].steps["extract"].warnings if "not in Ray tasks" in w]
    if source.endswith(".parquet"):  # 9 row groups of ~20 KB: the file was read in several tasks
        from blase.extract import ResolvedSource, plan_parts

        parts = plan_parts(ResolvedSource(source, "parquet", (data_project.root / source,)), 20_000)
        assert len(parts) > 3 and parts[0].rows is not None
    if source == "data/one.csv":  # ~340 KB in ranges of 64 KB
        assert on_ray[0].steps["extract"].details["tasks"] >= 5


def test_a_transform_without_sql_runs_here_and_the_tasks_read_its_output(data_project):
    """The template's transform starts with a Python `call`: prepare's tasks read what it wrote."""
    template = data_project.config_path.read_text()
    assert "call: scripts/transforms.py" in template
    local = _run(data_project, "local")
    on_ray = _run(data_project, "ray")
    _same_outputs(data_project, local, on_ray)


def test_blase_run_executor_ray_trains_on_the_shards(data_project, cli):
    res = cli("run", "--executor", "ray", "--no-cache", "--set", "train.epochs=1", "--set", "evaluate.plots=false",
              "--to", "evaluate", "--json", cwd=data_project.root)
    assert res.exit_code == 0, res.stdout + res.stderr
    run = json.loads(res.stdout)
    assert run["status"] == "finished" and "test.accuracy" in run["metrics"]
    steps = {e["data"]["step"]: e["data"] for e in load_run(run["id"], [data_project.root]).event_list
             if e.get("event") == "step"}
    assert steps["extract"]["details"]["executor"] == steps["prepare"]["details"]["executor"] == "ray"


def test_a_bad_row_in_one_task_is_the_local_error_and_nothing_is_written(data_project, tmp_path):
    from blase.executor import RayExecutor
    from blase.extract import Extract

    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "a.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    (folder / "b.csv").write_text("x,y\n1,0\n2,1\nthree,0\n")
    with pytest.raises(ExtractError) as local:
        Extract(f"{folder}/*.csv", format="csv").to_parquet(tmp_path / "local", memory="512MB")
    with pytest.raises(ExtractError) as on_ray:
        Extract(f"{folder}/*.csv", format="csv").to_parquet(tmp_path / "out", memory="512MB",
                                                             executor=RayExecutor(task_memory="256MB"))
    assert "b.csv" in str(on_ray.value) and "line 4" in str(on_ray.value)
    assert re.sub(r"\s+", " ", str(on_ray.value)) == re.sub(r"\s+", " ", str(local.value))
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))

    # in a byte range of a file cut at line starts: the line of the file, not of the range
    rows = [f"{i},{i % 2}\n" for i in range(30_000)]
    rows[21_000] = "three,0\n"
    (folder / "big.csv").write_text("x,y\n" + "".join(rows))
    with pytest.raises(ExtractError) as local:
        Extract(folder / "big.csv").to_parquet(tmp_path / "local", memory="512MB")
    with pytest.raises(ExtractError) as on_ray:
        Extract(folder / "big.csv").to_parquet(tmp_path / "out", memory="512MB",
                                               executor=RayExecutor(task_memory="256KB"))
    assert "big.csv, line 21002" in str(on_ray.value)
    assert re.sub(r"\s+", " ", str(on_ray.value)) == re.sub(r"\s+", " ", str(local.value))
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))


def test_a_file_too_big_for_a_task_and_a_table_source_are_read_here_with_a_warning(data_project, tmp_path):
    import sqlite3

    from blase.executor import RayExecutor
    from blase.extract import Extract

    # a quoted field holds a line break on line 1502: a line start may be inside a row, so the
    # file is not cut, and too big for a task it is read here
    csv = tmp_path / "notes.csv"
    notes = [f'{i},"note {i}{", continued" + chr(10) + "on the next line" if i == 1500 else ""}"\n' for i in range(3000)]
    csv.write_text("x,note\n" + "".join(notes))
    local = Extract(csv).to_parquet(tmp_path / "local", memory="512MB")
    small = Extract(csv).to_parquet(tmp_path / "small", memory="512MB", executor=RayExecutor(task_memory="64KB"))
    assert small.details["executor"] == "local" and local.rows_out == small.rows_out == 3000
    assert any("notes.csv" in w and "over half of a task's memory" in w and "a quoted field spans lines" in w
               and "line 1502" in w for w in small.warnings), small.warnings
    assert list(small.outputs.values()) == list(local.outputs.values())
    with sqlite3.connect(tmp_path / "t.sqlite") as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
    table = Extract(f"{tmp_path}/t.sqlite:t").to_parquet(tmp_path / "table", executor=RayExecutor(task_memory="256MB"))
    assert table.rows_out == 10 and table.details["executor"] == "local"
    assert any("sqlite sources are read as one stream" in w for w in table.warnings)


def test_ray_settings_are_checked_with_the_key_and_the_fix():
    with pytest.raises(ConfigError, match="executor"):
        config_from_text("project: p\nexecutor: spark\n")
    with pytest.raises(ConfigError, match="task_memory"):
        config_from_text("project: p\nexecutor: ray\nray: {task_memory: lots}\n")
    from blase.executor import ExecutorError, RayExecutor

    with pytest.raises(ExecutorError, match=r"more than the .* of memory the Ray cluster has free"):
        RayExecutor(task_memory="100TB").memory_per_task(1 << 30)


def _rows(n: int, newline: str = "\n") -> str:
    return "".join(f'{i},{i * 0.5},"t{i % 7}, é"{newline}' for i in range(n))


#: (file name, bytes, CSVOptions, why it is not cut or None): what a file looks like at a line start
CSV_SHAPES = {
    "crlf": ("a.csv", ("x,y,t\r\n" + _rows(4000, "\r\n")).encode(), {}, None),
    "no final newline": ("a.csv", ("x,y,t\n" + _rows(4000)).rstrip("\n").encode(), {}, None),
    "bom and skipped lines": ("a.csv", ("\ufeffexported 2026\nby blase\nx,y,t\n" + _rows(4000)).encode(),
                              {"skip_rows": 2}, None),
    "blank and comment lines": ("a.csv", ("x,y,t\n" + _rows(2000) + "\n# half way\n" + _rows(2000)).encode(),
                                {"comment": "#"}, None),
    "semicolons, no header": ("a.txt", _rows(4000).replace(",", ";").encode(), {"header": False, "delimiter": ";"},
                              None),
    "backslash escapes": ("a.csv", ("x,y,t\n" + _rows(4000).replace('"t3', '"\\"t3\\"')).encode(),
                          {"escape": "\\"}, "quotes are escaped with \\ (line 5)"),
    "gzip": ("a.csv.gz", gzip.compress(("x,y,t\n" + _rows(60_000)).encode(), mtime=0), {},
             "a compressed file is read whole"),
}


@pytest.mark.parametrize("shape", list(CSV_SHAPES))
def test_a_csv_file_cut_at_line_starts_reads_the_rows_of_the_whole_file(shape, tmp_path):
    """Each shape read in 64 KB tasks gives the local executor's Parquet bytes: cut at line
    starts where every line start is a row start, else read here whole, with the reason."""
    from blase.executor import RayExecutor
    from blase.extract import CSVOptions, Extract

    name, data, options, refused = CSV_SHAPES[shape]
    (tmp_path / name).write_bytes(data)
    local = Extract(tmp_path / name, CSVOptions(**options)).to_parquet(tmp_path / "local", memory="512MB")
    on_ray = Extract(tmp_path / name, CSVOptions(**options)).to_parquet(
        tmp_path / "ray", memory="512MB", executor=RayExecutor(task_memory="64KB"))
    assert local.rows_out == on_ray.rows_out >= 4000
    assert list(on_ray.outputs.values()) == list(local.outputs.values())
    if refused is None:
        assert on_ray.details["executor"] == "ray" and on_ray.details["tasks"] >= 4, on_ray.warnings
    else:
        assert on_ray.details["executor"] == "local"
        assert any("over half of a task's memory" in w and refused in w for w in on_ray.warnings), on_ray.warnings


def test_a_ray_task_started_inside_the_assistants_confinement_is_confined_too(data_project, tmp_path):
    """A tool call confines DuckDB to the project; its Ray tasks run in other processes, where
    the confinement must travel with them (a transform's SQL runs in prepare's tasks)."""
    import duckdb

    from blase._duck import confined_files
    from blase.executor import RayExecutor

    def _count_rows(path: str) -> int:  # a local function: Ray ships it by value
        from blase._duck import connect

        return connect("256MB").execute(f"SELECT count(*) FROM read_csv('{path}')").fetchone()[0]

    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n2\n")
    inside = data_project.root / "data" / "parts" / "p0.csv"
    executor = RayExecutor(task_memory="256MB")
    assert list(executor.map(_count_rows, [str(outside)], memory=256 << 20)) == [2]  # not confined: read
    with confined_files(data_project.root):
        assert list(executor.map(_count_rows, [str(inside)], memory=256 << 20)) == [3000]
        with pytest.raises(Exception, match=r"secret\.csv") as err:
            list(executor.map(_count_rows, [str(outside)], memory=256 << 20))
    assert isinstance(getattr(err.value, "cause", err.value), duckdb.PermissionException), err.value
