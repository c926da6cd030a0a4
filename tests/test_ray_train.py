"""train.distributed.launcher: ray: Ray Train's TorchTrainer runs the DDP loop in 2 CPU workers (gloo)
on a local Ray; rank 0 writes the model and the run's records; a seed gives the same weights."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from blase.train import Train
from tests.test_ddp import _cfg, shards  # noqa: F401 - the 2-process shards fixture
from tests.test_train import _bytes

ray = pytest.importorskip("ray.train.torch", reason="the ray extra with Ray Train (pip install 'blase[ray]')")

pytestmark = [pytest.mark.ray, pytest.mark.slow]

RAY_DDP = {"nproc_per_node": 2, "backend": "gloo", "launcher": "ray"}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_train_workers_learn_the_weights_of_torchrun_bit_for_bit(shards, tmp_path):  # noqa: F811
    """2 Ray Train workers (gloo) give the weights of 2 torchrun processes for the same seed: the
    same loop and rank split, whichever launcher; and torchrun's are the same run after run
    (tests/test_ddp.py), so a seed fixes them."""
    from blase.track import Track, load_run

    (tmp_path / "blase.yaml").write_text("project: proj\n")
    with Track("ray-train", project=tmp_path, sample_resources=False) as run:
        result = Train(_cfg(distributed=RAY_DDP), seed=5).fit(shards, tmp_path / "ray")
    assert result.details["world_size"] == 2 and result.details["launcher"] == "ray"
    assert result.details["final"]["val_accuracy"] > 0.9
    assert not (tmp_path / "ray" / ".ddp").exists()  # the job folder is gone after a success
    recorded = load_run(run.run_id, [tmp_path])
    assert [p["step"] for p in recorded.metric_history["train_loss"]] == [1, 2, 3]  # rank 0's, replayed
    assert recorded.events.get("train_start") == recorded.events.get("train_end") == 1

    Train(_cfg(), seed=5).fit(shards, tmp_path / "torchrun")
    assert _bytes(tmp_path / "ray") == _bytes(tmp_path / "torchrun")


def test_the_launcher_is_checked_and_torchrun_configs_hash_as_before():
    from blase.config import TrainConfig
    from blase.errors import ConfigError

    assert "launcher" not in TrainConfig(distributed={"nproc_per_node": 2}).model_dump()["distributed"]
    assert TrainConfig(distributed=RAY_DDP).model_dump()["distributed"]["launcher"] == "ray"
    with pytest.raises((ConfigError, ValueError), match="Ray places the workers"):
        TrainConfig(distributed={**RAY_DDP, "nnodes": 2})


# -- kill -9 of `blase run` with launcher: ray, then `blase run --resume RUN` ---------------------

RAY_SETS = ("--nproc", "2", "--set", "train.distributed.launcher=ray", "--set", "train.distributed.backend=gloo",
            "--set", "train.device=cpu", "--set", "train.epochs=20", "--to", "train")


def _train_step(root, run_id: str) -> dict:
    from blase.track import load_run

    run = load_run(run_id, [root])
    return next(e["data"] for e in run.event_list if e.get("event") == "step" and e["data"]["step"] == "train")


def test_kill_9_of_blase_run_stops_its_local_ray_and_resume_ends_with_the_same_weights(project, cli, tmp_path):
    """`kill -9` of a `blase run` training through Ray Train on the local Ray it started: every
    Ray process it started (raylet, agents, the Train workers) is gone within seconds, the run
    shows as interrupted, and `blase run --resume RUN` starts a fresh local Ray, continues from
    the last complete epoch and ends with the weights of an uninterrupted Ray Train run."""
    from blase.track import list_runs
    from tests.test_ddp import kill_9_when
    from tests.test_wrong_results import _blase_cmd

    root = project.root
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own local Ray, not the tests'
    with open(tmp_path / "killed.log", "wb") as log:
        killed = subprocess.Popen([*_blase_cmd(), "run", *RAY_SETS], cwd=root, env=env, stdout=log, stderr=log)
        gone = kill_9_when(killed, lambda: any(root.glob(".blase/checkpoints/*/train/checkpoint/state.json")))
    assert any("raylet" in t for t in gone) and any("RayTrainWorker" in t for t in gone), gone
    (cut,) = list_runs([root])
    assert cut.status == "interrupted"

    r = cli("run", "--resume", cut.id, "--to", "train", "--json", cwd=root)  # on the tests' Ray
    assert r.exit_code == 0, r.stdout + r.stderr
    resumed = json.loads(r.stdout)["id"]
    train = _train_step(root, resumed)
    assert train["details"]["resumed_from_run"] == cut.id and train["details"]["launcher"] == "ray"
    assert 1 <= train["details"]["resumed_from_epoch"] < 20 and train["details"]["epochs_run"] == 20

    r = cli("run", "--no-cache", *RAY_SETS, "--json", cwd=root)  # uninterrupted
    assert r.exit_code == 0, r.stdout + r.stderr
    full = _train_step(root, json.loads(r.stdout)["id"])
    assert full["details"]["resumed_from_epoch"] is None
    assert full["outputs"]["model.safetensors"] == train["outputs"]["model.safetensors"]


def _kill_ray_workers_after(epoch: int):
    """An epoch hook that kills this process's Ray Train workers (a lost node, an OOM kill)."""
    import psutil

    def hook(*, epoch: int, metrics: dict, model: None, _at: int = epoch) -> None:
        if epoch == _at:
            for proc in psutil.Process().children(recursive=True):
                if "RayTrainWorker" in proc.name():
                    proc.kill()

    return hook


def test_killed_ray_train_workers_fail_naming_resume_and_the_run_resumes(shards, tmp_path):  # noqa: F811
    """Workers lost mid-run (a node, an OOM kill): the error says how to resume, and resume
    continues from the last whole checkpoint to the end (that it ends on the uninterrupted
    weights is the test above, whichever way the run died)."""
    from blase.train import TrainError

    cfg = _cfg(distributed=RAY_DDP, epochs=12)
    out = tmp_path / "cut"
    with pytest.raises(TrainError, match="Ray Train ended without a result") as err:
        Train(cfg, seed=5).fit(shards, out, on_epoch_end=_kill_ray_workers_after(1))
    assert "blase run --resume RUN" in err.value.hint
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert 1 <= state["epoch"] < 12

    resumed = Train(cfg, seed=5).fit(shards, out, resume=True)
    assert resumed.details["resumed_from_epoch"] == state["epoch"] and resumed.details["epochs_run"] == 12
    assert (out / "model.safetensors").is_file() and not (out / ".ddp").exists()
