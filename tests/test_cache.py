"""The step cache: keys that follow code, data and config; a store that is never trusted blindly.

Runs go to ``prepare`` (no torch) on the bundled penguins data, so each takes a second or two.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from blase.cache import StepStore
from blase.hashing import hash_file
from blase.pipeline import Pipeline, step_records
from blase.track import ContentStore, load_run

TRANSFORMS = '''
import os
import time

import pyarrow as pa
import pyarrow.compute as pc


def _ratio(a, b):
    return pc.divide(pc.cast(a, pa.float64()), pc.cast(b, pa.float64()))


def bill_ratio(batch: pa.Table) -> pa.Table:
    if os.environ.get("BLASE_TEST_HANG"):
        open(os.environ["BLASE_TEST_HANG"], "w").close()
        time.sleep(120)
    return batch.append_column("bill_ratio", _ratio(batch["bill_length_mm"], batch["bill_depth_mm"]))


def unused(batch):
    return batch
'''


@pytest.fixture
def proj(project):
    (project.root / "scripts" / "transforms.py").write_text(TRANSFORMS)
    return project


def run(project, **kwargs):
    return Pipeline(project, overrides=kwargs.pop("overrides", None)).run(to_step="prepare", **kwargs)


def test_unchanged_project_reuses_every_step_and_says_so(proj, cli):
    first = run(proj)
    assert first.cached == {}
    assert set(first.reasons) == {"extract", "transform", "prepare"}
    r = cli("run", "--to", "prepare", cwd=proj.root)
    assert r.exit_code == 0, r.stderr
    for step in ("extract", "transform", "prepare"):
        assert f"cached {step}" in r.stdout
    again = load_run("latest", [proj.root])
    cache_events = [e["data"] for e in again.event_list if e.get("event") == "step_cache"]
    assert [(e["step"], e["hit"], e["from_run"]) for e in cache_events] == [
        (s, True, first.run_id) for s in ("extract", "transform", "prepare")]
    # the cached run points at the same stored outputs
    assert step_records(proj, again.id)["prepare"]["output"] == step_records(proj, first.run_id)["prepare"]["output"]
    forced = run(proj, cache=False)
    assert forced.cached == {} and forced.reasons["extract"] == ["--no-cache"]


def test_editing_a_helper_invalidates_transform_and_after_but_not_before(proj):
    run(proj)
    script = proj.root / "scripts" / "transforms.py"
    # a function the transform does not call, and comments, change nothing
    script.write_text(script.read_text().replace("return batch\n", "return batch  # as is\n"))
    assert run(proj).cached.keys() == {"extract", "transform", "prepare"}
    script.write_text(script.read_text().replace("pa.float64()))", "pa.float32()))"))
    edited = run(proj)
    assert list(edited.cached) == ["extract"]
    assert edited.reasons["transform"] == ["scripts/transforms.py:bill_ratio changed"]
    assert edited.reasons["prepare"] == ["transform output changed"]


def test_touching_data_does_not_invalidate_but_changing_it_or_config_does(proj):
    run(proj)
    data = proj.root / "data" / "penguins.csv"
    later = time.time() + 5
    os.utime(data, (later, later))
    assert run(proj).cached.keys() == {"extract", "transform", "prepare"}
    data.write_text(data.read_text().replace("39.1", "39.2", 1))
    changed = run(proj, overrides=["seed=7"])
    assert changed.cached == {}
    assert changed.reasons["extract"] == ["data/penguins.csv changed"]
    assert changed.reasons["prepare"] == ["transform output changed", "seed 42 -> 7"] or \
        changed.reasons["prepare"] == ["seed 42 -> 7", "transform output changed"]


def test_a_corrupted_store_entry_is_detected_and_recomputed(proj):
    first = run(proj)
    store = StepStore(proj)
    key = step_records(proj, first.run_id)["extract"]["key"]
    part = store.root / key / "out" / "part-00000.parquet"
    good = part.read_bytes()
    part.write_bytes(good[:100] + bytes(len(good) - 100))  # same size, other bytes
    second = run(proj)
    assert "extract" not in second.cached
    assert second.reasons["extract"][0].startswith("cached result damaged: part-00000.parquet")
    assert part.read_bytes() == good  # recomputed and stored again, intact
    assert store.lookup(key)[0] is not None
    assert pq.read_table(second.steps["extract"].details["data_dir"]).num_rows == 344


def test_a_half_written_entry_is_never_trusted_and_is_cleaned(proj):
    first = run(proj)
    store = StepStore(proj)
    key = step_records(proj, first.run_id)["transform"]["key"]
    # a folder under the key without entry.json (as if renamed by hand mid-way)
    entry = store.root / key
    (entry / "entry.json").unlink()
    second = run(proj)
    assert second.reasons["transform"] == ["its cached result was incomplete"]
    assert store.lookup(key)[0] is not None


def test_a_run_killed_during_a_step_leaves_nothing_a_later_run_trusts(proj):
    marker = proj.root / "hanging"
    exe = Path(sys.executable).with_name("blase")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "blase"]
    child = subprocess.Popen([*cmd, "run", "--to", "transform"], cwd=proj.root,
                             env={**os.environ, "BLASE_TEST_HANG": str(marker)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the child never reached the transform step"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    store = StepStore(proj)
    leftovers = [p.name for p in store.root.iterdir() if p.name.startswith(".tmp-transform-")]
    assert leftovers, "the killed run should have left its temporary folder"
    killed = load_run("latest", [proj.root])
    assert killed.status == "interrupted"
    later = run(proj)
    assert "transform" not in later.cached  # nothing half-written was used
    assert later.reasons["transform"]
    assert not [p for p in store.root.iterdir() if p.name.startswith(".tmp-")]


def test_each_run_records_a_snapshot_of_its_code(proj):
    first = run(proj)
    record = load_run(first.run_id, [proj.root])
    snapshot = next(e["data"]["files"] for e in record.event_list if e.get("event") == "code_snapshot")
    script = proj.root / "scripts" / "transforms.py"
    assert snapshot["scripts/transforms.py"] == hash_file(script)
    script.write_text("# gone\n")
    stored = ContentStore(proj.store_dir).path_for(snapshot["scripts/transforms.py"])
    assert stored.read_text() == TRANSFORMS
    config = next(e["data"] for e in record.event_list if e.get("event") == "config")
    assert config["resolved"]["seed"] == 42
