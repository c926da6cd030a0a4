"""train.distributed.launcher: ray: Ray Train's TorchTrainer runs the DDP loop in 2 CPU workers (gloo)
on a local Ray; rank 0 writes the model and the run's records; a seed gives the same weights."""

from __future__ import annotations

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
