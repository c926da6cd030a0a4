"""Reproduce, diff, lineage, restore and gc on real runs of the penguins project."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from blase.cache import SnapshotError
from blase.diff import diff_runs
from blase.gc import collect, pin, pinned
from blase.lineage import run_lineage, trace
from blase.pipeline import Pipeline, step_records
from blase.reproduce import ReproduceError, RestoreError, reproduce, restore

FAST = ["train.model=mlp", "train.epochs=2", "evaluate.plots=false", "deploy.onnx=false"]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """One full run (deployed as v1) of a fresh penguins project."""
    from blase.scaffold import create_project

    project = create_project(tmp_path_factory.mktemp("repro") / "proj")
    result = Pipeline(project, overrides=FAST).run()
    return project, result


def test_reproduce_verify_of_a_cpu_run_is_bit_identical(deployed, cli):
    project, first = deployed
    result = reproduce(project, first.run_id, verify=True)
    assert result.identical, result.summary
    assert result.weights_identical is True
    assert result.compared == {s: True for s in ("extract", "transform", "prepare", "train", "evaluate")}
    assert result.summary.startswith("reproduced bit for bit")
    from blase.track import load_run

    new = load_run(result.run_id, [project.root])
    assert new.parent == first.run_id and new.tags["reproduce_of"] == first.run_id
    assert all(not e["data"]["hit"] for e in new.event_list if e.get("event") == "step_cache")  # no cache

    r = cli("inspect", first.run_id, "--lineage", "--json", cwd=project.root)
    assert r.exit_code == 0, r.stderr
    lineage = json.loads(r.stdout)
    assert [s["step"] for s in lineage["steps"]] == ["extract", "transform", "prepare", "train", "evaluate"]
    assert lineage["steps"][0]["inputs"] == {"data/penguins.csv": lineage["steps"][0]["inputs"]["data/penguins.csv"]}
    assert "scripts/transforms.py:bill_ratio" in lineage["steps"][1]["code"]


def test_trace_walks_from_the_model_to_raw_data_and_code(deployed):
    project, first = deployed
    found = trace(project, "proj@v1")
    assert found.run_id == first.run_id and found.step == "train"
    assert [s.step for s in found.chain] == ["train", "prepare", "transform", "extract"]
    assert found.raw["data/penguins.csv"]["now"] == "unchanged"
    assert "scripts/transforms.py" in found.code
    predictions = str(first.steps["evaluate"].output.predictions_file)
    by_file = trace(project, predictions)
    assert by_file.step == "evaluate"  # made by the first run, and bit for bit by its reproduction
    assert [s.step for s in by_file.chain] == ["evaluate", "train", "prepare", "transform", "extract"]


def test_diff_shows_exactly_one_param_and_one_script_line(deployed, cli):
    project, first = deployed
    script = project.root / "scripts" / "transforms.py"
    original = script.read_text()
    script.write_text(original.replace('"""Add bill length / bill depth', '"""Add bill length over bill depth'))
    try:
        second = Pipeline(project, overrides=[*FAST, "train.lr=0.02"]).run(to_step="evaluate")
    finally:
        script.write_text(original)
    d = diff_runs(project, first.run_id, second.run_id)
    assert d.params == {"train.lr": [0.01, 0.02]}
    assert list(d.code) == ["scripts/transforms.py"]
    changed = [line for line in d.code["scripts/transforms.py"].splitlines()
               if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    assert len(changed) == 2 and "bill length / bill depth" in changed[0] and "over" in changed[1]
    assert d.data == {} and d.environment == {} and d.config_file is None
    assert d.metrics["test.accuracy"]["delta"] is not None
    assert 0.5 <= d.predictions["agreement"] <= 1.0 and d.predictions["rows"] == 66
    r = cli("diff", first.run_id, second.run_id, cwd=project.root)
    assert r.exit_code == 0, r.stderr
    assert "train.lr" in r.stdout and "bill length over bill depth" in r.stdout and "predictions" in r.stdout


def test_gc_never_breaks_predict_of_a_deployed_model(deployed, cli):
    project, first = deployed
    again = Pipeline(project, overrides=FAST).run()  # unchanged: every step cached, deploy a no-op
    assert set(again.cached) == {"extract", "transform", "prepare", "train", "evaluate", "deploy"}
    assert again.steps["deploy"].details["version"] == "v1"
    report = collect(project, keep_last=0)
    assert report.protected[first.run_id] == "deployed as proj@v1"
    assert step_records(project, first.run_id)
    for record in step_records(project, first.run_id).values():
        assert (project.store_dir / "steps" / record["key"] / "entry.json").is_file()
    out = project.root / "outputs" / "scored.parquet"
    r = cli("predict", "proj", "data/penguins.csv", "--out", str(out), cwd=project.root)
    assert r.exit_code == 0, r.stderr
    assert pq.read_table(out).num_rows == 344


def test_restore_from_the_store_then_recomputed_then_a_clear_message(project, tmp_path, cli):
    data = project.root / "data" / "penguins.csv"
    original = data.read_text()
    a = Pipeline(project).run(to_step="transform")
    data.write_text(original.replace("39.1", "99.9"))

    from_store = restore(project, a.run_id, "transform", tmp_path / "a")
    assert from_store.source == "store"
    assert (tmp_path / "a" / "transform.json").is_file()
    assert pq.read_table(tmp_path / "a" / "part-00000.parquet").num_rows == 344
    restored_raw = restore(project, a.run_id, "extract", tmp_path / "a_raw")
    assert 39.1 in pq.read_table(tmp_path / "a_raw").column("bill_length_mm").to_pylist()

    Pipeline(project).run(to_step="transform")  # run B, on the changed data
    report = collect(project, keep_last=1)
    assert {e["run"] for e in report.entries} == {a.run_id}
    with pytest.raises(RestoreError, match=r"data/penguins\.csv changed \(recorded hash"):
        restore(project, a.run_id, "extract", tmp_path / "gone")
    r = cli("restore", a.run_id, "--step", "extract", "--out", str(tmp_path / "gone"), cwd=project.root)
    assert r.exit_code == 1 and "garbage-collected" in r.stderr and "Traceback" not in r.stderr

    data.write_text(original)  # the raw input is back: restore recomputes it
    again = restore(project, a.run_id, "extract", tmp_path / "again")
    assert again.source == "recomputed" and again.matches_record
    assert pq.read_table(tmp_path / "again").equals(pq.read_table(tmp_path / "a_raw"))
    assert restored_raw.source == "store"


def test_unknown_runs_and_collected_snapshots_give_clear_errors(project, tmp_path):
    with pytest.raises(ReproduceError, match="no run matches 'nope'"):
        reproduce(project, "nope")
    with pytest.raises(ReproduceError, match="no run matches 'nope'"):
        restore(project, "nope", "transform", tmp_path / "x")
    a = Pipeline(project).run(to_step="extract")
    with pytest.raises(RestoreError, match="has no record of step transform"):
        restore(project, a.run_id, "transform", tmp_path / "x")
    script = project.root / "scripts" / "transforms.py"
    script.write_text(script.read_text() + "\n\ndef other(batch):\n    return batch\n")
    Pipeline(project).run(to_step="extract")
    pin(project, "latest")
    collect(project, keep_last=0)  # only the pinned run is kept; a's old script is collected
    assert len(pinned(project)) == 1
    with pytest.raises(SnapshotError, match=r"snapshot of scripts/transforms\.py used by run .* is no longer"):
        reproduce(project, a.run_id)
    lineage = run_lineage(project, a.run_id)
    assert lineage.steps[0].in_store  # the pinned run took a's extract from the cache: kept
