"""`blase ui` at scale and live: the run index, quick filters and columns, compare 2-10 runs,
registered projects and saved views, monitor history, the assistant's approvals, a live writer.

Real servers on 127.0.0.1, real HTTP, real Track runs written by Track's writer (in another
process where the test is about concurrency), real pipeline runs and a real ``Monitor`` check
for the pages that show them, and a real Chromium for the browser tests.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import time
import urllib.parse
from pathlib import Path

import pytest

import tests.test_ui as test_ui
from blase.pipeline import Pipeline
from blase.track import RunFilter, RunIndex, Track
from blase.ui import Dashboard, RegistryError, UserRegistry
from tests.test_ui import SCREENSHOTS, Client

FAST = ["train.epochs=2", "deploy.onnx=false"]
#: test_ui's fixture ``browser_page`` (one headless Chromium page; page errors fail the module)
browser_page = test_ui.browser_page


def _track_run(root: Path, name: str, params: dict, curves: dict[str, list[float]], **kwargs) -> str:
    with Track(name, project=root, params=params, sample_resources=False, **kwargs) as run:
        for metric, values in curves.items():
            for step, value in enumerate(values):
                run.log_metric(metric, value, step=step)
        return run.run_id


@pytest.fixture
def sweep(tmp_path):
    """Project ``sweep`` with three runs whose lr, depth and val_loss curves differ."""
    from blase.scaffold import create_project

    project = create_project(tmp_path / "sweep", example=False)
    ids = [
        _track_run(project.root, "a", {"lr": 0.1, "depth": 2, "optimizer": "adam"},
                   {"val_loss": [0.9, 0.5, 0.7], "accuracy": [0.5, 0.7, 0.6]}, tags={"model": "mlp"}),
        _track_run(project.root, "b", {"lr": 0.01, "depth": 4, "optimizer": "sgd"},
                   {"val_loss": [0.8, 0.3, 0.35], "accuracy": [0.6, 0.8, 0.79]}, tags={"model": "mlp"}),
        _track_run(project.root, "c", {"lr": 0.001, "depth": 8, "optimizer": "adam"},
                   {"val_loss": [1.0, 0.6, 0.4], "accuracy": [0.4, 0.6, 0.9]}, tags={"model": "gbdt"}),
    ]
    return project, ids


# ---------------------------------------------------------------------- the index


def _as_written_before_metric_stats(root: Path) -> None:
    """Drop ``metric_stats`` from every run's summary.json: runs as a Blase before 0.x wrote them
    (the index must then read their metrics.csv for min and max)."""
    for summary in (root / "runs").glob("*/summary.json"):
        data = json.loads(summary.read_text())
        data.pop("metric_stats", None)
        summary.write_text(json.dumps(data))


def test_an_ended_run_brings_its_min_max_in_its_summary(tmp_path, monkeypatch):
    import blase.track._index as index_module
    from blase.scaffold import create_project

    project = create_project(tmp_path / "p", example=False)
    ids = [_track_run(project.root, f"r{i}", {"i": i}, {"loss": [1.0, 0.2 - i / 100, 0.5], "acc": [i]})
           for i in range(9)]

    def no_pass(batch, **kwargs):
        raise AssertionError(f"{len(batch)} runs read from metrics.csv")

    monkeypatch.setattr(index_module, "stats_in_parallel", no_pass)
    monkeypatch.setattr(index_module, "read_new_metrics", no_pass)
    index = RunIndex([project.root])
    index.refresh()
    run = index.get(ids[4])
    assert (run.metric("loss", "min"), run.metric("loss", "max"), run.metric("loss")) == (0.16, 1.0, 0.5)
    assert run.stats["loss"].count == 3 and run.metric("acc", "best") == 4
    assert [r.id for r in index.query(sort="min(loss)")][:2] == [ids[8], ids[7]]
    assert index.progress()["stats_total"] == 0


def test_index_keeps_min_max_best_and_sorts_by_them(sweep):
    project, (a, b, c) = sweep
    index = RunIndex([project.root])
    runs = {r.id: r for r in index.runs()}
    assert runs[a].metric("val_loss") == 0.7 and runs[a].metric("val_loss", "min") == 0.5
    assert runs[a].metric("val_loss", "max") == 0.9 and runs[a].stats["val_loss"].count == 3
    assert runs[c].metric("accuracy", "best") == 0.9 and runs[a].metric("val_loss", "best") == 0.5
    assert [r.id for r in index.query(sort="min(val_loss)")] == [b, c, a]  # 0.3, 0.4, 0.5
    assert [r.id for r in index.query(sort="-best(accuracy)")] == [c, b, a]
    assert [r.id for r in index.query(sort="-val_loss")] == [a, c, b]  # latest: 0.7, 0.4, 0.35
    assert [r.id for r in index.query(where='"min(metrics.val_loss)" < 0.45')] == [c, b]  # newest first


def test_index_sees_new_finished_and_removed_runs(sweep):
    import shutil

    project, (a, b, c) = sweep
    index = RunIndex([project.root])
    assert len(index.runs()) == 3
    d = _track_run(project.root, "d", {"lr": 0.5}, {"val_loss": [0.2]})
    assert {r.id for r in index.runs()} == {a, b, c, d}
    shutil.rmtree(project.root / "runs" / a)
    assert {r.id for r in index.runs()} == {b, c, d}


def test_a_new_index_starts_from_the_saved_copy_and_rereads_changed_runs(sweep, monkeypatch):
    import blase.track._index as index_module

    project, (a, b, c) = sweep
    RunIndex([project.root]).runs()
    assert (project.root / ".blase" / "run-index.json").is_file()
    read: list[str] = []
    real = index_module.index_run
    monkeypatch.setattr(index_module, "index_run", lambda run_dir, *rest: read.append(run_dir.name) or real(run_dir, *rest))
    again = RunIndex([project.root])
    assert {r.id for r in again.runs()} == {a, b, c} and read == []  # nothing read from the run folders
    assert again.get(a).metric("val_loss", "min") == 0.5 and again.get(a).summary.params["lr"] == 0.1
    with open(project.root / "runs" / b / "log.jsonl", "a") as f:
        f.write("\n")  # b's log changed after the copy was saved
    assert len(RunIndex([project.root]).runs()) == 3 and read == [b]


def test_a_first_index_lists_runs_before_their_min_and_max_are_read(tmp_path, monkeypatch):
    import threading

    import blase.track._index as index_module
    from blase.scaffold import create_project

    project = create_project(tmp_path / "many", example=False)
    ids = [_track_run(project.root, f"r{i}", {"i": i}, {"loss": [1.0, 0.5 - i / 100]}) for i in range(10)]
    _as_written_before_metric_stats(project.root)
    reading, release = threading.Event(), threading.Event()
    real = index_module.stats_in_parallel

    def slow_pass(batch, **kwargs):
        reading.set()
        release.wait(30)
        real(batch, **kwargs)

    monkeypatch.setattr(index_module, "stats_in_parallel", slow_pass)
    index = RunIndex([project.root])
    worker = threading.Thread(target=index.refresh)
    worker.start()
    try:
        assert reading.wait(30)
        listed = {r.id: r for r in index.runs(max_age=60)}  # the snapshot published before the pass
        assert set(listed) == set(ids) and listed[ids[3]].metric("loss") == 0.47
        assert listed[ids[3]].metric("loss", "min") is None
        assert index.progress() == {**index.progress(), "ready": True, "listed": 10, "to_list": 10,
                                    "stats_done": 0, "stats_total": 10, "stats_pending": True}
    finally:
        release.set()
        worker.join(30)
    assert index.get(ids[3]).metric("loss", "min") == 0.47 and index.get(ids[3]).metric("loss", "max") == 1.0
    assert index.progress()["stats_done"] == 10 and not index.progress()["stats_pending"]


def test_the_first_listing_reports_its_progress_while_a_query_waits_for_it(tmp_path, monkeypatch):
    import threading

    import blase.track._index as index_module
    from blase.scaffold import create_project

    project = create_project(tmp_path / "many", example=False)
    ids = [_track_run(project.root, f"r{i}", {"i": i}, {"loss": [1.0, 0.5]}) for i in range(6)]
    halfway, release = threading.Event(), threading.Event()
    real, calls = index_module.index_run, []

    def slow_index_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # three run folders read, the fourth waits
            halfway.set()
            release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(index_module, "index_run", slow_index_run)
    client = Client(Dashboard([project.root]))  # its index lists the runs in the background
    try:
        assert halfway.wait(30)
        status, progress = client.json("/api/index")  # answers at once while /api/runs would wait
        assert status == 200 and progress["ready"] is False and progress["listing"] is True
        assert (progress["listed"], progress["to_list"]) == (3, 6)
        threading.Timer(0.5, release.set).start()
        status, runs = client.json("/api/runs")  # waits for the listing, not longer
        assert status == 200 and runs["total"] == 6 and {r["id"] for r in runs["runs"]} == set(ids)
        assert runs["index"]["ready"] is True and runs["index"]["listed"] == 6
    finally:
        release.set()
        client.close()


def test_the_parallel_min_max_pass_equals_reading_every_line(tmp_path):
    """Oracle: the Python reader that folds every line of metrics.csv into min/max/count."""
    import copy
    import random

    from blase.scaffold import create_project
    from blase.track._indexed import read_new_metrics, stats_in_parallel

    project = create_project(tmp_path / "many", example=False)
    rng = random.Random(7)
    for i in range(12):
        curves = {name: [rng.uniform(-5, 5) for _ in range(rng.randint(1, 40))]
                  for name in ("loss", "test.acc", "odd, name")}  # a name CSV must quote
        _track_run(project.root, f"r{i}", {"i": i}, curves)
    damaged = sorted((project.root / "runs").iterdir())[3] / "metrics.csv"
    with open(damaged, "a") as f:  # a damaged line in an ended run (written by hand, say)
        f.write("1.0,2,loss\n")
    index = RunIndex([project.root])
    index.refresh()
    entries = [index.get(r.id) for r in index.runs()]
    oracle = []
    for entry in entries:
        fresh = copy.deepcopy(entry)
        fresh.stats, fresh.metrics_offset = {}, 0
        read_new_metrics(fresh)
        oracle.append(fresh)
    for entry in entries:
        entry.stats, entry.metrics_offset = {}, 0
    stats_in_parallel(entries, threads=3)
    for entry, want in zip(entries, oracle, strict=True):
        assert entry.metrics_offset == want.metrics_offset > 0
        assert {k: (v.min, v.max, v.count) for k, v in entry.stats.items()} == {
            k: (v.min, v.max, v.count) for k, v in want.stats.items()}  # repr'd floats read back exactly
        assert set(entry.stats) == {"loss", "test.acc", "odd, name"}


def test_quick_filters_by_model_date_and_hash_prefix(sweep):
    project, (a, b, c) = sweep
    with Track("hashed", project=project.root, sample_resources=False) as run:
        run.log_hashes({"data": "f00dfeed" + "0" * 56})
        hashed = run.run_id
    index = RunIndex([project.root])
    assert [r.id for r in index.query(filters=RunFilter(model="gbdt"))] == [c]
    assert {r.id for r in index.query(filters=RunFilter(model="mlp"))} == {a, b}
    assert [r.id for r in index.query(filters=RunFilter(hash="f00dfe"))] == [hashed]
    assert [r.id for r in index.query(filters=RunFilter(hash=b[:5]))] == [b]
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert len(index.query(filters=RunFilter(since=today, until=today))) == 4
    assert index.query(filters=RunFilter(until="2001-01-01")) == []


# ---------------------------------------------------------------------- the runs API


@pytest.fixture
def sweep_ui(sweep):
    client = Client(Dashboard([sweep[0].root]))
    yield client
    client.close()


def test_runs_api_columns_quick_filters_and_aggregate_sort(sweep_ui, sweep):
    _project, (a, b, c) = sweep
    cols = urllib.parse.quote("val_loss:min,accuracy:best,params.lr")
    status, data = sweep_ui.json(f"/api/runs?cols={cols}&sort=min(val_loss)")
    assert status == 200 and [r["id"] for r in data["runs"]] == [b, c, a]
    assert data["columns"] == ["val_loss:min", "accuracy:best", "params.lr"]
    assert data["runs"][0]["cols"] == {"val_loss:min": 0.3, "accuracy:best": 0.8, "params.lr": 0.01}
    status, data = sweep_ui.json("/api/runs?model=mlp&sort=-params.lr")
    assert [r["id"] for r in data["runs"]] == [a, b]
    status, data = sweep_ui.json("/api/runs?cols=val_loss:median")
    assert status == 400 and "median" in data["error"] and "latest|min|max|best" in data["hint"]
    status, data = sweep_ui.json("/api/runs?sort=-best(nope)")
    assert status == 400 and "nope" in data["error"]


def test_compare_three_runs_gives_overlays_and_parallel_axes(sweep_ui, sweep):
    _project, (a, b, c) = sweep
    status, d = sweep_ui.json(f"/api/compare?runs={a},{b},{c}")
    assert status == 200 and [r["id"] for r in d["runs"]] == [a, b, c]
    assert d["params"]["lr"] == [0.1, 0.01, 0.001] and d["params"]["optimizer"] == ["adam", "sgd", "adam"]
    assert set(d["axes"]) == {"lr", "depth"}  # the numeric params that differ
    assert [len(series) for series in d["history"]["val_loss"]] == [3, 3, 3]
    assert d["history"]["val_loss"][1] == [[0, 0.8], [1, 0.3], [2, 0.35]]
    assert "diff" not in d  # `blase diff` is for two runs
    status, d = sweep_ui.json(f"/api/compare?runs={a}")
    assert status == 400 and "2 to 10" in d["error"]


def test_a_run_page_shows_the_assistants_decision_after_its_step(sweep_ui, sweep):
    project, _ids = sweep
    with Track("pilot", project=project.root, kind="agent-session", sample_resources=False) as session:
        with Track("pipeline", project=project.root, kind="pipeline", sample_resources=False,
                   tags={"agent_session": session.run_id}) as run:
            run.log_event("step_start", step="train")
            run.log_event("step", step="train", rows_in=10, rows_out=10, seconds=0.1)
        session.log_event("agent_decision", run=run.run_id, step="train", tool="propose_config_change",
                          summary="train.lr=0.01", decision="approved", by="person", reason="val_loss rose")
    status, data = sweep_ui.json(f"/api/runs/{run.run_id}")
    (train,) = data["steps"]
    assert status == 200 and train["step"] == "train" and train["status"] == "done"
    (decision,) = train["decisions"]
    assert decision["tool"] == "propose_config_change" and decision["decision"] == "approved"
    assert decision["by"] == "person" and decision["reason"] == "val_loss rose"


# ---------------------------------------------------------------------- user-level registry


def test_blase_create_registers_and_blase_ui_shows_every_registered_project(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("BLASE_HOME", str(tmp_path / "home"))
    assert cli("create", str(tmp_path / "one"), "--no-example").exit_code == 0
    assert cli("create", str(tmp_path / "two"), "--no-example").exit_code == 0
    registry = UserRegistry()
    assert registry.projects() == [(tmp_path / "one").resolve(), (tmp_path / "two").resolve()]
    _track_run(tmp_path / "two", "x", {}, {"loss": [1.0]})
    dash = Dashboard(registry=registry)  # from anywhere: nothing given, the registry's projects
    assert [p.name for p in dash.projects] == ["one", "two"]
    client = Client(dash)
    try:
        status, data = client.json("/api/runs")
        assert status == 200 and [r["project_name"] for r in data["runs"]] == ["two"]
        body = {"name": "low loss", "query": "where=metrics.loss+<+2&cols=loss:min"}
        status, saved = client.json("/api/views", body)
        assert status == 200 and saved["views"] == {"low loss": "where=metrics.loss+<+2&cols=loss:min"}
        assert client.json("/api/info")[1]["views"]["low loss"].startswith("where=")
        assert json.loads((tmp_path / "home" / "views.json").read_text())["views"]["low loss"]
        status, bad = client.json("/api/views", {"name": "../x", "query": ""})
        assert status == 400 and "not usable" in bad["error"]
    finally:
        client.close()


def test_a_damaged_registry_is_named_with_the_fix(tmp_path):
    (tmp_path / "projects.json").write_text("{not json")
    with pytest.raises(RegistryError, match=r"projects\.json") as err:
        UserRegistry(tmp_path).projects()
    assert "mv " in err.value.hint


# ---------------------------------------------------------------------- a live writer

WRITER = textwrap.dedent("""
    import sys
    import time
    from blase.track import Track
    run = Track("live", project=sys.argv[1], sample_resources=False).start()
    print(run.run_id, flush=True)
    sys.stdin.readline()
    for i in range(100_000):
        run.log_metric("loss", 1.0 / (i + 1), step=i)
        if i % 2000 == 1999:  # a training loop's pace: points arrive over seconds, not all at once
            run.flush()
            time.sleep(0.05)
    run.end()
""")


def test_the_server_keeps_answering_while_a_run_writes_100k_points(sweep_ui, sweep):
    project, _ids = sweep
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(project.root)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    run_id = writer.stdout.readline().strip()
    writer.stdin.write("go\n")
    writer.stdin.flush()
    latencies, seen_counts = [], []
    try:
        while writer.poll() is None:
            for path in ("/api/runs?sort=-val_loss&cols=loss:min", f"/api/runs/{run_id}"):
                t = time.perf_counter()
                status, data = sweep_ui.json(path)
                latencies.append(time.perf_counter() - t)
                assert status == 200, data
                if "metric_counts" in data:
                    seen_counts.append(data["metric_counts"].get("loss", 0))
    finally:
        writer.wait(120)
    assert writer.returncode == 0
    assert len(latencies) >= 4 and max(latencies) < 10.0, latencies  # bounded, on a loaded 2-core box
    assert seen_counts == sorted(seen_counts)  # the page only ever sees more points
    status, run = sweep_ui.json(f"/api/runs/{run_id}")
    assert run["status"] == "finished" and run["metric_counts"]["loss"] == 100_000
    assert len(run["metric_history"]["loss"]) == 500  # thinned for the page
    deadline = time.monotonic() + 10  # the runs table's index is refreshed every second
    while True:
        status, data = sweep_ui.json(f"/api/runs?hash={run_id}&cols=loss:min,loss:max")
        if (data["runs"] and data["runs"][0]["status"] == "finished") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert data["runs"][0]["cols"] == {"loss:min": 1.0 / 100_000, "loss:max": 1.0}


# ---------------------------------------------------------------------- pipeline runs, monitor


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Project ``alpha``: run 1, run 2 (train.lr changed), run 3 (train.lr changed and the raw
    data file lost its last row, so its hash differs); then two monitor checks of the model, on
    the same data and on data whose bill lengths drifted."""
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    from blase.monitor import Monitor
    from blase.scaffold import create_project

    alpha = create_project(tmp_path_factory.mktemp("uis") / "alpha")
    first = Pipeline(alpha, overrides=FAST).run()
    second = Pipeline(alpha, overrides=[*FAST, "train.lr=0.02"]).run()
    data = next((alpha.root / "data").glob("*.csv"))
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(lines[:-1]))
    third = Pipeline(alpha, overrides=[*FAST, "train.lr=0.03"]).run()
    Monitor("alpha", project=alpha).check(str(data))
    shifted = data.with_name("shifted.csv")  # bill lengths 30 mm longer: that column drifts
    table = pacsv.read_csv(data)
    column = table.column("bill_length_mm")
    table = table.set_column(table.schema.get_field_index("bill_length_mm"), "bill_length_mm", pc.add(column, 30.0))
    pacsv.write_csv(table, shifted)
    Monitor("alpha", project=alpha, plots=False).check(str(shifted))
    return {"alpha": alpha, "first": first.run_id, "second": second.run_id, "third": third.run_id}


@pytest.fixture(scope="module")
def alpha_ui(pipeline):
    client = Client(Dashboard([pipeline["alpha"].root]))
    yield client
    client.close()


def test_a_pipeline_run_has_its_lineage_graph_and_resources(alpha_ui, pipeline):
    status, run = alpha_ui.json(f"/api/runs/{pipeline['first']}")
    assert status == 200
    graph = run["lineage"]
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    assert kinds["step:extract"] == "step" and kinds["model"] == "model"
    assert any(k == "code" for k in kinds.values())
    edges = {tuple(e) for e in graph["edges"]}
    assert ("step:extract", "step:transform") in edges and ("step:evaluate", "model") in edges
    assert ("data:data/penguins.csv", "step:extract") in edges
    assert {("step:extract", "step:prepare"), ("step:transform", "step:prepare")} <= edges  # both feed prepare
    assert next(n for n in graph["nodes"] if n["id"] == "model")["label"] == "alpha v1"
    assert run["resource_series"]["rss_bytes"][0][1] > 0


def test_two_runs_compare_with_the_diff_and_the_data_hash(alpha_ui, pipeline):
    status, d = alpha_ui.json(f"/api/compare?runs={pipeline['first']},{pipeline['third']}")
    assert status == 200 and d["diff"]["params"] == {"train.lr": [0.01, 0.03]}
    (name, (hash_a, hash_b)), = d["diff"]["data"].items()
    assert name.endswith("penguins.csv") and hash_a != hash_b


def test_models_page_has_the_monitor_history_with_drift_per_column(alpha_ui, pipeline):
    status, data = alpha_ui.json("/api/models")
    model = next(m for m in data["models"] if m["name"] == "alpha")
    same, shifted = model["monitor"]  # oldest first
    assert same["columns"] and all(isinstance(v, float) for v in same["columns"].values())
    assert set(same["tests"]) == set(same["columns"]) and "bill_length_mm" not in same["drifted"]
    assert "bill_length_mm" in shifted["drifted"] and shifted["drift_share"] > same["drift_share"]
    assert shifted["columns"]["bill_length_mm"] > same["columns"]["bill_length_mm"]
    check = same
    assert 0.0 <= check["drift_share"] <= 1.0 and check["version"] in model["versions"]
    status, head, body = alpha_ui.call(f"/api/runs/{check['run_id']}/artifacts/monitor/report.html")
    assert status == 200 and head["Content-Type"].startswith("text/html") and b"<html" in body.lower()


# ---------------------------------------------------------------------- the assistant

needs_agent = pytest.mark.skipif(importlib.util.find_spec("langgraph") is None,
                                 reason="the agent extra is not installed (pip install -e '.[dev]')")


@pytest.fixture
def spy_write(monkeypatch):
    """A write tool the assistant may propose; ``calls`` records what actually ran."""
    from blase.tools import TOOLS, ToolInput, ToolOutput
    from blase.tools._base import Tool
    from pydantic import Field

    class SpyInput(ToolInput):
        target: str = Field("all", description="what to act on")

    class SpyOutput(ToolOutput):
        done: str

    calls: list[dict] = []

    def fn(args, ctx):
        calls.append(args.model_dump())
        return SpyOutput(done=f"wrote {args.target}")

    monkeypatch.setitem(TOOLS, "spy_write", Tool(
        name="spy_write", func=fn, input_model=SpyInput, output_model=SpyOutput, risk="write",
        description="spy write tool", command=lambda a: f"blase spy {a.target}"))
    return calls


def _waiting_session(project) -> str:
    from blase.agent import Session
    from blase.agent._fake import ScriptedChatModel, call

    llm = ScriptedChatModel(responses=[call("spy_write", {"target": "a"})])
    with Session(project, autonomy="semi", llm=llm) as session:
        turn = session.send("write a")
        assert turn.pending is not None
        return session.session_id


def _assistant_ui(project):
    from blase.agent._fake import ScriptedChatModel

    return Client(Dashboard([project.root], assistant_llm=lambda: ScriptedChatModel(responses=["written."])))


def _gates(project, sid: str) -> list[tuple[str, str, str]]:
    """(tool, decision, by) of every gate event of session ``sid``'s runs."""
    from blase.track import list_runs, load_run

    out = []
    for r in list_runs([project.root], where="kind = 'agent-session'"):
        if r.tags.get("session") == sid:
            out += [(e["data"]["tool"], e["data"]["decision"], e["data"]["by"])
                    for e in load_run(r.id, [project.root]).event_list if e["event"] == "gate"]
    return out


@needs_agent
def test_a_semi_proposal_is_approved_through_the_gate_by_a_person(project, spy_write):
    sid = _waiting_session(project)
    client = _assistant_ui(project)
    try:
        status, data = client.json("/api/sessions")
        (session,) = data["sessions"]
        assert session["pending"]["tool"] == "spy_write" and session["pending"]["args"] == {"target": "a"}
        status, turn = client.json(f"/api/sessions/{sid}/decide", {"action": "edit", "args": {"target": "b"}})
        assert status == 200 and turn["answer"] == "written." and turn["pending"] is None
        assert spy_write == [{"target": "b"}]
        assert client.json(f"/api/sessions/{sid}")[1]["pending"] is None
        status, again = client.json(f"/api/sessions/{sid}/decide", {"action": "approve"})
        assert status == 400 and "waits on no call" in again["error"]
    finally:
        client.close()
    assert ("spy_write", "approved", "person (blase ui)") in _gates(project, sid)


@needs_agent
def test_an_autopilot_session_that_waits_on_nothing_refuses_a_decision(sweep_ui, sweep):
    # answering a waiting `blase run --autonomy` from the page: tests/test_ui_autopilot.py
    project, _ids = sweep
    with Track("autopilot", project=project.root, kind="agent-session", tags={"autopilot": "1"},
               sample_resources=False) as run:
        run.set_tag("session", run.run_id)
    status, data = sweep_ui.json(f"/api/sessions/{run.run_id}/decide", {"action": "approve"})
    assert status == 400 and "waits on no call" in data["error"]
    status, session = sweep_ui.json(f"/api/sessions/{run.run_id}")
    assert status == 200 and session["autopilot"] is True


@needs_agent
def test_read_only_refuses_an_approval(project, spy_write):
    sid = _waiting_session(project)
    client = Client(Dashboard([project.root], read_only=True))
    try:
        status, data = client.json(f"/api/sessions/{sid}/decide", {"action": "approve"})
        assert status == 403 and "--read-only" in data["error"]
    finally:
        client.close()
    assert spy_write == []


# ---------------------------------------------------------------------- a real browser


@pytest.mark.slow
def test_browser_compare_three_runs_with_parallel_coordinates(sweep_ui, sweep, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    _project, (a, b, c) = sweep
    page.goto(sweep_ui.base + "/runs")
    page.wait_for_selector("#runs tbody tr")
    for run_id in (a, b, c):
        page.check(f"input.pick[value='{run_id}']")
    page.click("button:text-is('Compare selected')")
    page.wait_for_selector("body[data-ready=compare]")
    expect(page.locator("svg.parcoords polyline.pc-line")).to_have_count(3)
    # lr spans 0.001 to 0.1: a log axis
    assert page.locator("svg.parcoords text.axis-name").all_text_contents()[:2] == ["depth", "lr (log)"]
    expect(page.locator("figure.overlay[data-metric=val_loss] polyline")).to_have_count(3)
    page.screenshot(path=str(SCREENSHOTS / "compare-3.png"), full_page=True)


@pytest.mark.slow
def test_browser_min_column_sort_quick_filter_and_a_saved_view(sweep_ui, sweep, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    _project, (a, b, c) = sweep
    page.goto(sweep_ui.base + "/runs")
    page.fill("input[name=cols]", "val_loss:min,params.lr")
    page.click("button[type=submit]")
    page.click("th:text-is('val_loss:min')")
    page.wait_for_url("**sort=min%28val_loss%29**")
    expect(page.locator("#runs tbody tr td:nth-child(8)")).to_have_text(["0.3000", "0.4000", "0.5000"])
    ids = page.locator("#runs tbody tr td:nth-child(2)").all_inner_texts()
    assert ids == [b, c, a]
    page.fill("input[name=model]", "gbdt")
    page.click("button[type=submit]")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept("gbdt runs"))
    page.click("button.save-view")
    expect(page.locator("p.views a:text-is('gbdt runs')")).to_be_visible()
    page.goto(sweep_ui.base + "/runs")  # everything again, then the view's link restores the filter
    expect(page.locator("#runs tbody tr")).to_have_count(3)
    page.click("a:text-is('gbdt runs')")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    assert c in page.inner_text("#runs tbody") and page.input_value("input[name=model]") == "gbdt"
    page.screenshot(path=str(SCREENSHOTS / "runs-view.png"), full_page=True)


@pytest.mark.slow
def test_browser_runs_page_shows_the_min_max_pass_and_fills_in_as_it_ends(tmp_path, monkeypatch, browser_page):
    import threading

    from playwright.sync_api import expect

    import blase.track._index as index_module
    from blase.scaffold import create_project

    project = create_project(tmp_path / "many", example=False)
    for i in range(10):
        _track_run(project.root, f"r{i}", {"i": i}, {"loss": [1.0, 0.5 - i / 100]})
    _as_written_before_metric_stats(project.root)
    release = threading.Event()
    real = index_module.stats_in_parallel

    def slow_pass(batch, **kwargs):
        release.wait(60)
        real(batch, **kwargs)

    monkeypatch.setattr(index_module, "stats_in_parallel", slow_pass)
    client = Client(Dashboard([project.root]))
    page = browser_page
    try:
        page.goto(client.base + "/runs?cols=loss:min,loss")
        expect(page.locator("p.index-progress")).to_contain_text("reading 0 / 10 runs' metrics")
        expect(page.locator("#runs tbody tr")).to_have_count(10)
        expect(page.locator("#runs tbody td .pending-stat")).to_have_count(10)  # min: not read yet
        assert "0.4100" in page.inner_text("#runs tbody")  # the latest values are there already
        page.screenshot(path=str(SCREENSHOTS / "runs-indexing.png"), full_page=True)
        release.set()
        expect(page.locator("p.index-progress")).to_have_count(0)  # redrawn without a reload
        expect(page.locator("#runs tbody td .pending-stat")).to_have_count(0)
        cells = page.locator("#runs tbody tr td:nth-child(8)").all_inner_texts()
        assert sorted(cells) == sorted(f"{0.5 - i / 100:.4f}" for i in range(10))
    finally:
        release.set()
        client.close()


@pytest.mark.slow
def test_browser_two_runs_show_the_changed_config_key_and_data_hash(alpha_ui, pipeline, browser_page):
    page = browser_page
    page.goto(f"{alpha_ui.base}/compare?runs={pipeline['first']},{pipeline['third']}")
    page.wait_for_selector("h2:text-is('Data hashes per step')")
    text = page.inner_text("main")
    assert "train.lr" in text and "penguins.csv" in text
    data_table = page.locator("h2:text-is('Data hashes per step') + table")
    assert data_table.locator("tbody tr").count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "compare-2-data.png"), full_page=True)
    page.goto(f"{alpha_ui.base}/run/{pipeline['first']}")
    page.wait_for_selector("svg.lineage g.node-model")
    page.screenshot(path=str(SCREENSHOTS / "run-lineage.png"), full_page=True)
    page.goto(f"{alpha_ui.base}/models")
    page.wait_for_selector("table.monitor tbody tr")
    assert page.locator("table.monitor td.drifted").count() >= 1  # bill_length_mm of the shifted check
    page.screenshot(path=str(SCREENSHOTS / "models-monitor.png"), full_page=True)


@pytest.mark.slow
@needs_agent
def test_browser_approves_a_semi_proposal(project, spy_write, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    sid = _waiting_session(project)
    client = _assistant_ui(project)
    try:
        page.goto(client.base + "/assistant")
        page.click(f"a:text-is('{sid}')")
        page.wait_for_selector(".pending-box")
        assert "spy_write" in page.inner_text(".pending-box")
        page.screenshot(path=str(SCREENSHOTS / "assistant-pending.png"), full_page=True)
        page.click("button.decide-approve")
        expect(page.locator("p.answer")).to_contain_text("written.")
        expect(page.locator(".pending-box")).to_have_count(0)
        page.screenshot(path=str(SCREENSHOTS / "assistant-approved.png"), full_page=True)
    finally:
        client.close()
    assert spy_write == [{"target": "a"}]
    assert ("spy_write", "approved", "person (blase ui)") in _gates(project, sid)


@pytest.mark.slow
def test_browser_a_live_run_updates_without_a_reload(sweep_ui, sweep, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    project, _ids = sweep
    run = Track("live", project=project.root, sample_resources=False).start()
    try:
        run.log_metric("loss", 1.0, step=0)
        run.log_metric("loss", 0.9, step=1)
        run.flush()
        page.goto(f"{sweep_ui.base}/run/{run.run_id}")
        expect(page.locator("span.points[data-metric=loss]")).to_have_text("2")
        assert page.locator("h1 .live").count() == 1
        for step in range(2, 7):
            run.log_metric("loss", 1.0 / step, step=step)
        run.flush()
        expect(page.locator("span.points[data-metric=loss]")).to_have_text("7")
        page.screenshot(path=str(SCREENSHOTS / "run-live.png"), full_page=True)
    finally:
        run.end()
    expect(page.locator("#run-status")).to_have_text("finished")
