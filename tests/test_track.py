"""Tests of blase.track: recording runs, reading them back, surviving crashes and damage."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from blase.errors import ProjectError, RunNotFoundError, TrackError
from blase.track import ContentStore, Track, active_run, list_runs, load_run

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "blase.yaml").write_text("project: t\n")
    return root


def _track(project: Path, name: str | None = None, **kw) -> Track:
    kw.setdefault("sample_resources", False)
    return Track(name, project=project, **kw)


def _wait_for(predicate, timeout: float = 10.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every)


# ---------------------------------------------------------------------- lifecycle


def test_finished_run_round_trips(project: Path) -> None:
    with _track(
        project, "base", params={"lr": 0.01, "layers": [64, 32]}, tags={"team": "a"}
    ) as run:
        assert active_run() is run
        assert len(run.run_id) == 12 and run.run_dir.parent == project / "runs"
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metrics({"acc": np.float32(0.5), "f1": np.array(0.25)}, step=4)
        run.log_metric("flag", True)
        run.log_metric("bad", float("nan"))
        run.log_metric("big", float("inf"))
        run.log_param("opt", "adam")
        run.log_params({"lr": 0.01})  # same value again is fine
        run.set_tag("note", 3)
        run.log_event("llm_call", model="m", tokens=12)
        run.log_event("llm_call", model="m", tokens=3)
        run.log_event("tool_call", tool="list_runs")
        run.log_hashes({"data": "abc", "code": "def"})
    assert active_run() is None

    [summary] = list_runs([project])
    assert summary.status == "finished" and summary.name == "base"
    assert summary.params == {"lr": 0.01, "layers": [64, 32], "opt": "adam"}
    assert summary.tags == {"team": "a", "note": "3"}
    assert summary.metrics["loss"] == pytest.approx(0.2)
    assert summary.metrics["acc"] == 0.5 and summary.metrics["flag"] == 1
    assert math.isnan(summary.metrics["bad"]) and summary.metrics["big"] == math.inf
    data = summary.to_json()
    for key in (
        "id",
        "name",
        "status",
        "started_at",
        "ended_at",
        "params",
        "metrics",
        "tags",
        "project",
    ):
        assert key in data
    assert data["project"] == str(project.resolve())
    json.dumps(data, allow_nan=False)  # valid strict JSON

    detail = load_run(summary.id[:4], [project])
    assert [p["step"] for p in detail.metric_history["loss"]] == [0, 1, 2, 3, 4]
    assert detail.metric_history["loss"][0]["value"] == 1.0
    assert detail.metric_history["flag"][0]["step"] is None
    assert detail.events == {"llm_call": 2, "tool_call": 1}
    assert detail.event_list[0]["data"] == {"model": "m", "tokens": 12}
    assert detail.hashes == {"data": "abc", "code": "def"}
    assert detail.damage == [] and detail.error is None
    full = detail.to_json()
    for key in ("metric_history", "artifacts", "events", "hashes", "resources", "damage"):
        assert key in full
    assert load_run("latest", [project]).id == summary.id


def test_failed_run_records_the_exception(project: Path) -> None:
    with pytest.raises(ValueError, match="boom"), _track(project, "bad") as run:
        run.log_metric("x", 1)
        raise ValueError("boom")
    detail = load_run(run.run_id, [project])
    assert detail.status == "failed"
    assert detail.error["type"] == "ValueError" and detail.error["message"] == "boom"
    assert "raise ValueError" in detail.error["traceback"]
    assert detail.metrics == {"x": 1}


def test_keyboard_interrupt_marks_interrupted_and_reraises(project: Path) -> None:
    with pytest.raises(KeyboardInterrupt), _track(project) as run:
        run.log_metric("x", 2)
        raise KeyboardInterrupt
    [summary] = list_runs([project])
    assert summary.status == "interrupted" and summary.metrics == {"x": 2}


def test_start_and_end_without_with(project: Path) -> None:
    run = _track(project, "manual").start()
    run.log_metric("x", 1.5)
    assert list_runs([project])[0].status == "running"
    run.end()
    assert list_runs([project])[0].status == "finished"
    with pytest.raises(TrackError, match="has ended"):
        run.log_metric("x", 2.0)
    with pytest.raises(TrackError, match="already been started"):
        run.start()


def test_changing_a_param_is_refused(project: Path) -> None:
    with _track(project, params={"lr": 0.1}) as run, pytest.raises(TrackError, match="'lr'"):
        run.log_param("lr", 0.2)


def test_non_numeric_metric_is_refused(project: Path) -> None:
    with _track(project) as run:
        with pytest.raises(TrackError, match=r"'acc'.*'high'"):
            run.log_metric("acc", "high")
        with pytest.raises(TrackError, match="'acc'"):
            run.log_metric("acc", np.array([1.0, 2.0]))
        with pytest.raises(TrackError, match="step"):
            run.log_metric("acc", 1.0, step="one")
        run.log_metric("acc", np.int64(3), step=np.int64(1))
        run.log_metric("acc", 0.75)
    detail = load_run(run.run_id, [project])
    assert [p["value"] for p in detail.metric_history["acc"]] == [3, 0.75]


def test_odd_metric_names_round_trip(project: Path) -> None:
    names = ["val/loss", 'a,b "c"', " padded "]
    with _track(project) as run:
        for i, name in enumerate(names):
            run.log_metric(name, i)
        with pytest.raises(TrackError, match="not valid"):
            run.log_metric("two\nlines", 1)
    assert load_run(run.run_id, [project]).metrics == {n: i for i, n in enumerate(names)}


# ---------------------------------------------------------------------- queries


def test_where_sort_limit_and_unknown_keys(project: Path) -> None:
    for lr, acc in [(0.01, 0.95), (0.1, 0.80), (0.001, 0.91)]:
        with _track(project, f"lr{lr}", params={"lr": lr, "opt": "adam"}) as run:
            run.log_metric("acc", acc)
    with _track(project, "noacc", params={"lr": 0.5}) as run:
        run.log_metric("loss", 1.0)

    names = lambda runs: [r.name for r in runs]  # noqa: E731
    assert names(list_runs([project], where="metrics.acc > 0.9", sort="acc")) == [
        "lr0.001",
        "lr0.01",
    ]
    assert names(list_runs([project], where="params.lr = 0.01 and status = 'finished'")) == [
        "lr0.01"
    ]
    assert names(list_runs([project], where="params.opt = 'adam'", sort="-acc", limit=2)) == [
        "lr0.01",
        "lr0.001",
    ]
    assert names(list_runs([project], sort="acc desc"))[-1] == "noacc"  # nulls last
    assert names(list_runs([project], sort="metrics.acc"))[-1] == "noacc"
    assert names(list_runs([project], sort="lr")) == ["lr0.001", "lr0.01", "lr0.1", "noacc"]
    assert names(list_runs([project], limit=1)) == ["noacc"]  # newest first by default
    assert len(list_runs([project], status="finished")) == 4
    assert list_runs([project], status="failed") == []

    with pytest.raises(TrackError, match=r"metrics\.accuracy.*did you mean 'metrics\.acc'") as info:
        list_runs([project], where="metrics.accuracy > 0.9")
    assert "params.lr" in (info.value.hint or "")
    with pytest.raises(TrackError, match="unknown column 'nope'"):
        list_runs([project], where="nope = 1")
    with pytest.raises(TrackError, match="unknown"):
        list_runs([project], sort="-accuracyy")
    with pytest.raises(TrackError, match=";"):
        list_runs([project], where="1=1; DROP TABLE runs")


def test_several_projects(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "blase.yaml").write_text("project: o\n")
    with _track(project, "here"):
        pass
    with _track(other, "there"):
        pass
    runs = list_runs([project, other / "runs"])
    assert {r.name for r in runs} == {"here", "there"}
    assert {r.project for r in runs} == {str(project.resolve()), str(other.resolve())}
    assert load_run("there", [project, other]).name == "there"
    with pytest.raises(ProjectError):
        list_runs([tmp_path])


def test_unknown_and_ambiguous_prefix(project: Path) -> None:
    ids = []
    for i in range(17):  # 17 ids over 16 first characters: two must share one
        with _track(project, f"r{i}") as run:
            ids.append(run.run_id)
    firsts = [i[0] for i in ids]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(RunNotFoundError) as info:
        load_run(shared, [project])
    message = str(info.value)
    assert "matches" in message and all(i in message for i in ids if i[0] == shared)
    assert "started" in message
    with pytest.raises(RunNotFoundError, match="no run matches 'zz'") as info:
        load_run("zz", [project])
    assert "blase runs" in (info.value.hint or "")
    assert load_run(ids[3], [project]).name == "r3"


# ---------------------------------------------------------------------- crashes and damage

_VICTIM = textwrap.dedent(
    """
    import sys, time
    from blase.track import Track

    with Track("victim", project=sys.argv[1], sample_interval=0.05) as run:
        for i in range(100):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        print(run.run_id, flush=True)
        time.sleep(120)
    """
)


def test_sigkill_leaves_an_interrupted_readable_run(project: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _VICTIM, str(project)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id, "the child did not start a run"
        # The flusher writes within a second, without the child doing anything more.
        _wait_for(lambda: load_run(run_id, [project]).metric_counts.get("loss") == 100)
        assert load_run(run_id, [project]).status == "running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    detail = load_run(run_id, [project])
    assert detail.status == "interrupted" and detail.ended_at is not None
    assert detail.metric_counts == {"loss": 100} and detail.metrics["loss"] == 0.01
    assert detail.resources["samples"] >= 1
    assert detail.damage == []
    assert list_runs([project], status="interrupted")[0].id == run_id


def test_concurrent_reader_sees_all_points(project: Path) -> None:
    n = 1_000_000
    started = threading.Event()
    errors: list[BaseException] = []
    box: dict[str, str] = {}

    def write() -> None:
        try:
            with _track(project, "busy", flush_interval=0.05) as run:
                box["id"] = run.run_id
                started.set()
                log = run.log_metric
                for i in range(n):
                    log("loss", 0.5, i)
        except BaseException as exc:
            errors.append(exc)
            started.set()

    writer = threading.Thread(target=write)
    writer.start()
    started.wait(10)
    seen = []
    while writer.is_alive():
        [summary] = list_runs([project])
        assert summary.damage == []
        detail = load_run(box["id"], [project], history=False)
        assert detail.damage == [], detail.damage
        seen.append(detail.metric_counts.get("loss", 0))
    writer.join()
    assert not errors
    assert seen == sorted(seen)  # never goes backwards
    final = load_run(box["id"], [project], history=False)
    assert final.status == "finished" and final.metric_counts == {"loss": n}


def test_damaged_logs_are_reported_and_the_rest_loads(project: Path) -> None:
    with _track(project, "hurt", params={"lr": 0.1}) as run:
        for i in range(3):
            run.log_metric("loss", float(i), step=i)
    log = run.run_dir / "log.jsonl"
    metrics = run.run_dir / "metrics.csv"
    with open(log, "a") as f:
        f.write("{not json\n")
        f.write('{"t": 1, "kind": "tag", "key": "late", "value": "x"}\n')
        f.write('{"t": 1, "kind": "ta')  # truncated by a crash
    with open(metrics, "a") as f:
        f.write("1.0,3,loss,not-a-number\n")
        f.write("1.0,4,loss,4.0\n")
        f.write("1.0,5,lo")
    [summary] = list_runs([project])
    assert summary.params == {"lr": 0.1} and summary.tags == {"late": "x"}
    assert summary.metrics == {"loss": 4.0}
    joined = "\n".join(summary.damage)
    log_lines = len(log.read_text().splitlines())
    assert f"log.jsonl line {log_lines - 2}" in joined and f"log.jsonl line {log_lines}" in joined
    assert "metrics.csv line 4" in joined and "metrics.csv line 6" in joined
    detail = load_run(run.run_id, [project])
    assert [p["step"] for p in detail.metric_history["loss"]] == [0, 1, 2, 4]
    assert len(detail.damage) == 4


def test_damaged_large_metrics_file_goes_through_duckdb(project: Path) -> None:
    with _track(project, "large") as run:
        for i in range(60_000):  # > 1 MiB of metrics.csv
            run.log_metric("loss", i * 0.5, step=i)
    metrics = run.run_dir / "metrics.csv"
    assert metrics.stat().st_size > 1 << 20
    with open(metrics, "a") as f:
        f.write("oops,1,loss,2\n1.0,60000,loss,7.5\n1.0,60001,lo")
    detail = load_run(run.run_id, [project])
    assert detail.metric_counts == {"loss": 60_001}
    assert detail.metrics == {"loss": 7.5}
    joined = "\n".join(detail.damage)
    assert "metrics.csv line 60001" in joined and "metrics.csv line 60003" in joined
    assert list_runs([project])[0].metrics == {"loss": 7.5}


def test_missing_meta_does_not_crash_listing(project: Path) -> None:
    with _track(project, "ok"):
        pass
    broken = project / "runs" / "0123456789ab"
    broken.mkdir()
    (broken / "log.jsonl").write_text('{"t": 1, "kind": "status", "status": "running"}\n')
    runs = {r.id: r for r in list_runs([project])}
    assert runs["0123456789ab"].status == "interrupted"
    assert any("meta.json" in d for d in runs["0123456789ab"].damage)


# ---------------------------------------------------------------------- bad input


def test_missing_artifact_is_refused(project: Path) -> None:
    with _track(project) as run, pytest.raises(TrackError, match="does not exist"):
        run.log_artifact(project / "nope.bin")


def test_runs_folder_that_is_a_file(project: Path) -> None:
    (project / "runs").write_text("not a folder")
    with pytest.raises(TrackError, match="runs") as info:
        _track(project).start()
    assert "move it away" in (info.value.hint or "")
    assert (project / "runs").read_text() == "not a folder"


def test_artifacts_are_stored_once(project: Path) -> None:
    model = project / "model.bin"
    model.write_bytes(b"weights" * 1000)
    folder = project / "plots"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.txt").write_text("b")
    ids = []
    for _ in range(2):
        with _track(project) as run:
            [rec] = run.log_artifact(model)
            run.log_artifact(folder, name="figs")
            ids.append(run.run_id)
    objects = [p for p in (project / ".blase" / "store" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 3
    store = ContentStore(project / ".blase" / "store")
    assert store.has(rec["hash"])
    with store.open(rec["hash"]) as f:
        assert f.read() == model.read_bytes()
    detail = load_run(ids[1], [project])
    assert {a["name"] for a in detail.artifacts} == {"model.bin", "figs/a.txt", "figs/sub/b.txt"}
    assert detail.artifacts[0] == {
        "name": "model.bin",
        "path": "model.bin",
        "hash": rec["hash"],
        "size": 7000,
    }


def test_resource_samples_are_recorded(project: Path) -> None:
    with Track(project=project, sample_interval=0.01) as run:
        time.sleep(0.15)
    res = load_run(run.run_id, [project]).resources
    assert res["samples"] >= 3
    assert res["peak_rss_bytes"] > 0 and res["min_available_bytes"] > 0
    assert res["min_disk_free_bytes"] > 0 and res["mean_cpu_percent"] >= 0
    if _cuda_in_use():
        assert isinstance(res["peak_gpu_mem_bytes"], int) and res["peak_gpu_mem_bytes"] >= 0
    else:  # no CUDA context made by this process: nothing to report, and no made-up 0
        assert res["peak_gpu_mem_bytes"] is None


def _cuda_in_use() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized())


def test_summary_cache_is_ignored_when_logs_grew(project: Path) -> None:
    with _track(project) as run:
        run.log_metric("x", 1.0)
    with open(run.run_dir / "metrics.csv", "a") as f:
        f.write("2.0,,x,2.0\n")
    assert list_runs([project])[0].metrics == {"x": 2.0}
