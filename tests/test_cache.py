"""The step cache: keys that follow code, data and config; a store that is never trusted blindly.

Runs go to ``prepare`` (no torch) on the bundled penguins data, so each takes a second or two.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from blase.cache import StepStore, StoreWriteError
from blase.hashing import hash_file
from blase.pipeline import Pipeline, step_records
from blase.steps import FittedTransform, StepResult
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
    # (prepare may also read extract's output, which changed too)
    assert {"transform output changed", "seed 42 -> 7"} <= set(changed.reasons["prepare"])


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
    assert pq.read_table(second.steps["extract"].output.data_dir).num_rows == 344


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


# -- a store that cannot be written --------------------------------------------------------------


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Let this process write no file past ``limit`` bytes (RLIMIT_FSIZE): the kernel fails
    the write with EFBIG, as a full disk fails it with ENOSPC, and root is held to it too."""
    resource = pytest.importorskip("resource", reason="RLIMIT_FSIZE needs a POSIX system")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write(), not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def staged(store: StepStore, step: str = "transform") -> tuple[Path, StepResult]:
    staging = store.staging(step)
    (staging / "out" / "part-00000.parquet").write_bytes(os.urandom(3000))
    (staging / "out" / "state.json").write_text('{"mean": 1.5}')
    out = staging / "out"
    result = StepResult(step=step, rows_out=7, output=FittedTransform(root=out, state="state.json"))
    return staging, result


def publish(store: StepStore, staging: Path, result: StepResult, **kwargs):
    # components big enough that entry.json outgrows the limits below, as real ones do
    return store.publish(staging, key="k" * 32, step=result.step, components={"config": "x" * 2000},
                         result=result, run_id="run-1", **kwargs)


def test_a_store_write_failure_keeps_the_result_stores_nothing_and_says_why(proj):
    store = StepStore(proj)
    staging, result = staged(store)
    data = (staging / "out" / "part-00000.parquet").read_bytes()
    fallback = proj.state_dir / "work" / "run-1" / "transform"
    with file_size_limit(1024), pytest.raises(StoreWriteError) as caught:
        publish(store, staging, result, fallback=fallback)
    error = caught.value
    assert error.message == ("cache: could not store transform's output in .blase/store/steps (File too large); "
                             "the next run will recompute it")
    assert error.step == "transform" and error.cause == "File too large" and error.hint
    # the result is intact, outside the store, with its hashes
    entry = error.entry
    assert entry is not None and not entry.stored and entry.path == fallback
    assert (fallback / "out" / "part-00000.parquet").read_bytes() == data
    assert entry.result.output.state_file == fallback / "out" / "state.json"  # the output moved with its files
    assert set(entry.files) == {"part-00000.parquet", "state.json"} and entry.output
    # nothing half-written under the key, nothing left in the store but the marker
    assert not staging.exists() and not (fallback / "entry.json").exists()
    assert not (store.root / error.key).exists()
    assert [p.name for p in store.root.iterdir()] == [f".unstored-{error.key}.json"]
    assert store.lookup(error.key) == (None, "not stored: the earlier run run-1 could not write it (File too large)")
    # with room again the same result is stored, and the marker goes
    staging, result = staged(store)
    (staging / "out" / "part-00000.parquet").write_bytes(data)
    stored = publish(store, staging, result)
    assert stored.stored and stored.output == entry.output
    found, why = store.lookup(stored.key)
    assert found is not None and why is None
    assert not (store.root / f".unstored-{stored.key}.json").exists()


def test_a_failed_publish_with_no_room_for_the_marker_still_stores_nothing(proj):
    store = StepStore(proj)
    staging, result = staged(store)
    with file_size_limit(16), pytest.raises(StoreWriteError) as caught:
        publish(store, staging, result)  # no fallback: the outputs stay in their .tmp- folder
    entry = caught.value.entry
    assert entry.path == staging and (staging / "out" / "state.json").exists()
    assert not (staging / "entry.json").exists()
    assert not (store.root / caught.value.key).exists()
    # the marker is cut short (or empty): the reason loses its cause, not its meaning
    assert store.lookup(caught.value.key) == (None, "not stored: an earlier run could not write it")
    assert store.clean_stale() == []  # the folder belongs to this live process
    assert staging.exists()


def _read_only_holds(folder: Path) -> bool:
    """Whether this user is refused a write into a read-only ``folder`` (root is not)."""
    probe = folder / ".probe"
    try:
        probe.touch()
    except PermissionError:
        return True
    probe.unlink()
    return False


def test_a_read_only_store_fails_loudly_and_stores_nothing(proj):
    store = StepStore(proj)
    staging, result = staged(store)
    store.root.chmod(0o555)
    try:
        if not _read_only_holds(store.root):
            pytest.skip("this user (root or CAP_DAC_OVERRIDE) writes into read-only folders, so a "
                        "read-only store cannot be provoked; the RLIMIT_FSIZE tests cover the failure")
        with pytest.raises(StoreWriteError, match=r"could not store transform's output .*Permission denied"):
            publish(store, staging, result)
        with pytest.raises(StoreWriteError, match=r"could not make a folder for extract's output") as made:
            store.staging("extract")
        assert made.value.entry is None
    finally:
        store.root.chmod(0o755)
    assert not (store.root / ("k" * 32)).exists() and not (staging / "entry.json").exists()
    assert (staging / "out" / "state.json").exists()  # the outputs stay where the step wrote them


def test_a_run_whose_store_is_full_finishes_and_the_next_run_says_why_it_recomputes(proj, monkeypatch):
    real = StepStore.publish

    def cramped(self, staging, **kwargs):
        if kwargs["step"] != "transform":
            return real(self, staging, **kwargs)
        with file_size_limit(1024):
            return real(self, staging, **kwargs)

    monkeypatch.setattr(StepStore, "publish", cramped)
    quiet = ["track.sample_resources=false"]  # no sampler writing while the limit holds
    first = run(proj, overrides=quiet)
    assert first.status == "finished"
    assert first.steps["prepare"].rows_out == 344  # prepare used the unstored transform
    assert first.steps["transform"].details["cache"]["stored"] is False
    state = first.steps["transform"].output.state_file
    assert state.is_file() and state.is_relative_to(proj.state_dir / "work" / first.run_id)  # kept with the run
    warning = "cache: could not store transform's output in .blase/store/steps (File too large)"
    assert any(w.startswith(warning) for w in first.steps["transform"].warnings)
    record = load_run(first.run_id, [proj.root])
    assert any(e.get("event") == "warning" and e["data"]["message"].startswith(warning) for e in record.event_list)
    monkeypatch.setattr(StepStore, "publish", real)
    second = run(proj, overrides=quiet)
    assert set(second.cached) == {"extract", "prepare"}  # same transform output: same prepare key
    assert second.reasons["transform"] == [
        f"not stored: the earlier run {first.run_id} could not write it (File too large)"]
    assert set(run(proj, overrides=quiet).cached) == {"extract", "transform", "prepare"}
