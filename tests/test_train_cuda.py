"""Train on a CUDA GPU: AMP, resume, and a GPU-trained model used on the CPU.

These tests skip on a machine without a GPU (CI has none); they ran on a lent H100/H200
(see the README's GPU notes for when and with which results).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_train import _cfg, _sklearn, _split, _stop_after, write_shards

from blase.train import Train, load_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def shards(tmp_path):
    X, y, task = _sklearn("binary")
    return write_shards(tmp_path / "bc", _split(X, y), task, shard_rows=150)


def _accuracy(model, shards) -> float:
    X = np.concatenate([np.load(p) for p in sorted((shards / "test").glob("shard-*[0-9].npy"))])
    y = np.concatenate([np.load(p) for p in sorted((shards / "test").glob("shard-*.labels.npy"))])
    with torch.no_grad():
        logits = model(torch.from_numpy(X)).reshape(-1).numpy()
    return float(((logits > 0) == (y == 1)).mean())


@pytest.mark.parametrize("amp", [False, True])
def test_training_on_cuda_learns_and_the_model_runs_on_the_cpu(shards, tmp_path, amp):
    r = Train(_cfg(device="cuda", epochs=8, mixed_precision=amp, hidden=[32])).fit(shards, tmp_path / "o")
    assert r.details["device"].startswith("cuda")
    assert r.details["mixed_precision"] is amp
    history = json.loads((tmp_path / "o" / "history.json").read_text())
    assert all(np.isfinite(row["train_loss"]) for row in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    model = load_model(tmp_path / "o")  # the package is device-free: loads on the CPU
    assert next(model.parameters()).device.type == "cpu"
    assert _accuracy(model, shards) > 0.9  # breast cancer: a linear model gets ~0.97


def test_cuda_resume_after_ctrl_c_matches_an_uninterrupted_cuda_run(shards, tmp_path):
    cfg = _cfg(device="cuda", epochs=4, hidden=[16], schedule="cosine")
    Train(cfg).fit(shards, tmp_path / "full")
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        Train(cfg).fit(shards, out, on_epoch_end=_stop_after(2))
    r = Train(cfg).fit(shards, out, resume=True)
    assert r.details["resumed_from_epoch"] == 2
    a = load_model(tmp_path / "full")
    b = load_model(out)
    for pa_, pb in zip(a.parameters(), b.parameters(), strict=True):
        # cuDNN/cuBLAS may pick other kernels after a restart: equal to float32 rounding
        assert torch.allclose(pa_, pb, atol=1e-5)


def test_cuda_and_cpu_training_agree_in_quality(shards, tmp_path):
    cfg = dict(epochs=8, hidden=[32])
    Train(_cfg(device="cpu", **cfg)).fit(shards, tmp_path / "cpu")
    Train(_cfg(device="cuda", **cfg)).fit(shards, tmp_path / "gpu")
    cpu, gpu = _accuracy(load_model(tmp_path / "cpu"), shards), _accuracy(load_model(tmp_path / "gpu"), shards)
    assert abs(cpu - gpu) <= 0.03
