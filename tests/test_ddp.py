"""Distributed training: 2 CPU processes with gloo through torchrun, the rank split of the shards,
and the config and launch errors."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from torch import nn

from blase.config import TrainConfig, config_from_text
from blase.errors import ConfigError
from blase.prepare import ShardDataset
from blase.train import Train, TrainError
from tests.test_train import _bytes, _sklearn, _split, write_shards

DDP = {"nproc_per_node": 2, "backend": "gloo"}


def _cfg(**kw) -> dict:
    base = {"epochs": 3, "lr": 0.01, "batch_size": 32, "device": "cpu", "hidden": [16],
            "dropout": 0.1, "distributed": DDP}
    return base | kw


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    X, y, task = _sklearn("binary")
    return write_shards(tmp_path_factory.mktemp("ddp") / "bc", _split(X, y), task, shard_rows=150)


@pytest.fixture(scope="module")
def full_run(shards, tmp_path_factory) -> Path:
    """An uninterrupted 2-process run, recorded in a Track run."""
    from blase.track import Track

    root = tmp_path_factory.mktemp("proj")
    (root / "blase.yaml").write_text("project: proj\n")
    out = root / "full"
    with Track("ddp", project=root, sample_resources=False) as run:
        result = Train(_cfg(), seed=5).fit(shards, out)
    (out / "run_id").write_text(run.run_id)
    (out / "result.json").write_text(json.dumps(result.details, default=str))
    return out


# -- the rank split (no processes) -------------------------------------------------------------


def _rows(ds: ShardDataset) -> list[bytes]:
    """Every row read, in order, as its bytes (rows are distinct in this data)."""
    return [row.tobytes() for xb, _ in ds for row in xb.numpy()]


def test_ranks_read_disjoint_seeded_shares_of_every_shard(shards):
    kw = {"batch_size": 16, "shuffle": True, "seed": 3}
    whole = _rows(ShardDataset(shards, "train", **kw))
    assert len(set(whole)) == len(whole) == 398
    parts = [ShardDataset(shards, "train", rank=r, world_size=2, **kw) for r in (0, 1)]
    got = [_rows(p) for p in parts]
    assert len(parts[0]) == len(parts[1])  # DDP steps together: the same number of batches
    assert not set(got[0]) & set(got[1])
    # 398 train rows in shards of 150, 150, 98: nothing dropped (all even)
    assert sorted(got[0] + got[1]) == sorted(whole)
    again = ShardDataset(shards, "train", rank=0, world_size=2, **kw)
    assert _rows(again) == got[0]
    again.set_epoch(1)
    assert _rows(again) != got[0] and sorted(_rows(again)) != sorted(got[0])


def test_uneven_shards_drop_a_row_for_training_but_not_for_evaluation(shards):
    train = [ShardDataset(shards, "val", rank=r, world_size=3, batch_size=8) for r in range(3)]
    assert len({len(t) for t in train}) == 1 and len({t.rows for t in train}) == 1
    assert sum(t.rows for t in train) == 85 - 85 % 3  # 85 val rows, one shard
    evals = [ShardDataset(shards, "val", rank=r, world_size=3, even=False, shuffle=False)
             for r in range(3)]
    assert sum(e.rows for e in evals) == 85
    seen = [row for e in evals for row in _rows(e)]
    assert sorted(seen) == sorted(_rows(ShardDataset(shards, "val", shuffle=False)))


# -- config and launch errors --------------------------------------------------------------------


def test_distributed_refuses_models_that_are_not_torch():
    text = "project: p\ndata:\n  source: x.csv\ntrain:\n  model: auto\n  distributed:\n    nproc_per_node: 2\n"
    with pytest.raises(ConfigError, match=r"train \(line 4\).*not model 'auto'.*model: mlp"):
        config_from_text(text)


def test_a_single_process_config_dumps_as_before():
    """No ``distributed`` key: the step cache and checkpoint fingerprints are unchanged."""
    assert "distributed" not in TrainConfig().model_dump(mode="json")
    assert TrainConfig(distributed={"nproc_per_node": 2}).model_dump()["distributed"]["backend"] == "auto"


def test_a_module_cannot_be_sent_to_the_workers(shards, tmp_path):
    with pytest.raises(TrainError, match=r"not an nn\.Module") as err:
        Train(_cfg()).set_model(nn.Linear(30, 1)).fit(shards, tmp_path / "m")
    assert "scripts/model.py:build_model" in err.value.hint
    assert not (tmp_path / "m").exists()


# -- real 2-process training (torchrun, gloo) ----------------------------------------------------


@pytest.mark.slow
def test_two_gloo_processes_learn_and_give_the_same_weights_twice(shards, full_run, tmp_path):
    from blase.track import load_run

    details = json.loads((full_run / "result.json").read_text())
    assert details["world_size"] == 2 and details["epochs_run"] == 3
    assert details["final"]["val_accuracy"] > 0.9
    assert not (full_run / ".ddp").exists()  # the job folder is gone after a success
    run = load_run((full_run / "run_id").read_text(), [full_run.parent])
    assert [p["step"] for p in run.metric_history["train_loss"]] == [1, 2, 3]
    assert run.events.get("train_start") == 1 and run.events.get("train_end") == 1

    Train(_cfg(), seed=5).fit(shards, tmp_path / "again")
    assert _bytes(tmp_path / "again") == _bytes(full_run)


def _kill_workers_after(epoch: int):
    def hook(*, epoch: int, metrics: dict, model: None, _at: int = epoch) -> None:
        assert model is None  # the weights live in the workers
        if epoch == _at:
            for child in psutil.Process().children(recursive=True):
                child.kill()

    return hook


@pytest.mark.slow
def test_killed_workers_resume_to_the_weights_of_an_uninterrupted_run(shards, tmp_path):
    # 12 epochs: the parent hears of epoch 1 while the workers train on; with 3 tiny epochs they
    # could finish before the kill on a fast machine (seen in CI), and nothing would be cut
    cfg = _cfg(epochs=12)
    full = tmp_path / "full"
    Train(cfg, seed=5).fit(shards, full)
    out = tmp_path / "cut"
    with pytest.raises(TrainError, match="torchrun exited"):
        Train(cfg, seed=5).fit(shards, out, on_epoch_end=_kill_workers_after(1))
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert 1 <= state["epoch"] < 12

    r = Train(cfg, seed=5).fit(shards, out, resume=True)
    assert r.details["resumed_from_epoch"] == state["epoch"]
    assert _bytes(out) == _bytes(full)


# -- through the pipeline and the CLI ----------------------------------------------------------


def test_run_nproc_with_train_model_auto_is_a_clear_error(cli, project):
    r = cli("run", "--nproc", "2", "--set", "train.model=auto", cwd=project.root)
    assert r.exit_code == 1
    assert "train.distributed trains the torch models" in r.stderr and "model: mlp" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_blase_run_nproc_trains_the_train_step_in_two_processes(cli, project):
    from blase.track import load_run

    r = cli("run", "--nproc", "2", "--set", "train.model=mlp", "--set", "train.epochs=2",
            "--set", "train.device=cpu", "--to", "train", "--json", cwd=project.root)
    assert r.exit_code == 0, r.stderr
    run = load_run(json.loads(r.stdout)["id"], [project.root])
    assert run.status == "finished"
    assert [p["step"] for p in run.metric_history["val_loss"]] == [1, 2]  # rank 0's, replayed
    steps = [e["data"] for e in run.event_list if e.get("event") == "step"]
    train = next(d for d in steps if d["step"] == "train")
    assert train["details"]["world_size"] == 2 and train["details"]["epochs_run"] == 2
    assert any("model.safetensors" in k for k in train["outputs"]), train["outputs"]  # rank 0 wrote


def kill_9_when(parent: subprocess.Popen, ready: Callable[[], bool], *, timeout: float = 240,
                grace: float = 30) -> list[str]:
    """SIGKILL ``parent`` once ``ready()`` (say, its first checkpoint is on disk), then wait for
    every process it started to exit, as nothing may go on running or writing after it: fails
    if one is still alive after ``grace`` s; returns their names and titles (all gone)."""
    seen: dict[int, psutil.Process] = {}
    titles: dict[int, str] = {}

    def look() -> None:
        try:
            for child in psutil.Process(parent.pid).children(recursive=True):
                seen.setdefault(child.pid, child)
                with contextlib.suppress(psutil.Error):
                    titles[child.pid] = f"{child.name()} {' '.join(child.cmdline()[:2])}"
        except psutil.NoSuchProcess:
            pass

    deadline = time.monotonic() + timeout
    try:
        while not ready() and parent.poll() is None and time.monotonic() < deadline:
            look()
            time.sleep(0.05)
        assert parent.poll() is None, "the run ended before it could be killed"
        assert ready(), f"not ready after {timeout} s"
        look()
    finally:
        parent.kill()
        parent.wait()
    _, alive = psutil.wait_procs(list(seen.values()), timeout=grace)
    assert not alive, [titles.get(p.pid, p.pid) for p in alive]
    return list(titles.values())


_FIT_SCRIPT = """
import json, sys
from blase.train import Train
cfg = json.loads(sys.argv[3])
Train(cfg, seed=5).fit(sys.argv[1], sys.argv[2], resume=True)
"""


@pytest.mark.slow
def test_kill_9_of_the_launching_process_stops_the_workers_and_resumes(shards, full_run, tmp_path):
    """What `kill -9` of `blase run` does: torchrun and its workers follow it (no orphan goes
    on writing), and the next run resumes from the last whole checkpoint."""
    out = tmp_path / "killed"
    state = out / "checkpoint" / "state.json"
    parent = subprocess.Popen([sys.executable, "-c", _FIT_SCRIPT, str(shards), str(out),
                               json.dumps(_cfg())], cwd=Path(__file__).parents[1])
    kill_9_when(parent, state.is_file)
    assert 1 <= json.loads(state.read_text())["epoch"] <= 3

    Train(_cfg(), seed=5).fit(shards, out, resume=True)
    assert _bytes(out) == _bytes(full_run)



@pytest.mark.slow
def test_an_error_in_the_workers_is_the_train_steps_error_naming_the_rank(shards, tmp_path):
    root = tmp_path / "proj"
    (root / "scripts").mkdir(parents=True)
    (root / "scripts" / "model.py").write_text(
        "def build_model(n_features, n_outputs, task):\n    raise RuntimeError('bad width')\n"
    )
    cfg = _cfg(model="scripts/model.py:build_model")
    with pytest.raises(TrainError, match=r"failed on rank 0: model factory .*bad width"):
        Train(cfg, project_root=root).fit(shards, tmp_path / "m")
    assert not (tmp_path / "m" / "model.safetensors").exists()
