"""Training on a shared CPU: torch's thread count comes from the cores free, `train.threads` wins."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from blase.config import config_from_text
from blase.errors import ConfigError
from blase.resources import choose_threads
from blase.train import Train
from tests.test_train import _sklearn, _split, write_shards

BUSY_LOOP = "import time\nend = time.time() + 60\nwhile time.time() < end:\n    pass\n"


@pytest.fixture
def shards(tmp_path):
    X, y, task = _sklearn("binary")
    return write_shards(tmp_path / "bc", _split(X, y), task)


def _threads_seen():
    seen: list[int] = []

    def hook(*, epoch, metrics, model):
        seen.append(torch.get_num_threads())

    return seen, hook


def _fit(shards, out, **cfg):
    base = {"epochs": 2, "lr": 0.01, "batch_size": 64, "device": "cpu", "hidden": [256, 256]}
    base.update(cfg)
    seen, hook = _threads_seen()
    result = Train(base).fit(shards, out, on_epoch_end=hook)
    return result, seen


def test_every_core_busy_elsewhere_trains_on_one_thread(shards, tmp_path):
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(cpus)]
    try:
        time.sleep(0.5)  # let them reach the loop
        before = torch.get_num_threads()
        result, seen = _fit(shards, tmp_path / "m")
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert result.details["threads"] == 1
    assert result.details["threads_reason"].startswith("auto: ")
    assert "core(s) free" in result.details["threads_reason"]
    assert seen == [1, 1]  # what torch really used, each epoch
    assert torch.get_num_threads() == before  # restored after training


def test_train_threads_in_the_config_overrides_the_choice(shards, tmp_path):
    before = torch.get_num_threads()
    result, seen = _fit(shards, tmp_path / "m", threads=2)
    assert result.details["threads"] == 2
    assert result.details["threads_reason"] == "config: train.threads is 2"
    assert seen == [2, 2]
    assert torch.get_num_threads() == before


def test_the_thread_count_does_not_change_the_weights(shards, tmp_path):
    _fit(shards, tmp_path / "one", threads=1)
    _fit(shards, tmp_path / "two", threads=2)
    one = (tmp_path / "one" / "model.safetensors").read_bytes()
    assert one == (tmp_path / "two" / "model.safetensors").read_bytes()


def test_train_threads_is_validated_in_blase_yaml():
    cfg = config_from_text("project: p\ndata:\n  source: d.csv\n  label: y\ntrain:\n  threads: 3\n")
    assert cfg.train.threads == 3
    with pytest.raises(ConfigError, match=r"train\.threads"):
        config_from_text("project: p\ndata:\n  source: d.csv\n  label: y\ntrain:\n  threads: 0\n")
    with pytest.raises(ConfigError, match=r"thread"):
        config_from_text("project: p\ndata:\n  source: d.csv\n  label: y\ntrain:\n  thread: 2\n")


def test_the_choice_counts_free_cores_and_the_batch_work():
    cpus = choose_threads(1024, 0, busy_elsewhere=0.0).cpus
    assert choose_threads(1024, 0, busy_elsewhere=0.0).threads == cpus
    assert choose_threads(1024, 0, busy_elsewhere=float(cpus)).threads == 1  # at least one
    assert choose_threads(1024, 0, busy_elsewhere=cpus - 1.0).threads == 1
    small = choose_threads(32, 3_000, busy_elsewhere=0.0)  # a tiny MLP on 32 rows
    assert small.threads == 1
    if cpus > 1:
        assert "too little work" in small.reason
    assert choose_threads(32, 3_000, requested=4).threads == 4


def test_setting_train_threads_reuses_the_cached_model(project):
    from blase.pipeline import Pipeline

    first = Pipeline(project, overrides=["train.epochs=1"]).run(to_step="train")
    assert "train" not in first.cached
    again = Pipeline(project, overrides=["train.epochs=1", "train.threads=1"]).run(to_step="train")
    assert "train" in again.cached  # the thread count changes the speed, not the weights
