"""A built-in model scores in numpy exactly as its torch module does (no torch import needed
to monitor or predict with it); other models go through torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from blase.deploy._runner import numpy_runner
from blase.train import ModelSpec, build_builtin_model
from blase.train._checkpoint import write_tensors


def _save(folder, model, **spec):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps(ModelSpec(**spec).to_json()))
    write_tensors(folder / "model.safetensors", model.state_dict())


@pytest.mark.parametrize(
    ("name", "hidden", "dropout", "batch_norm", "outputs", "extra"),
    [
        ("linear", [], 0.0, False, 1, {}),
        ("mlp", [32, 16], 0.0, False, 1, {}),
        ("mlp", [24], 0.3, True, 4, {}),  # batch norm with learnt running statistics, dropout
        ("mlp", [8, 8, 8], 0.1, False, 1, {}),
        ("mlp", [32, 16], 0.0, False, 3, {"linear_skip": True}),  # wide and deep
        ("mlp", [16], 0.0, True, 1, {"linear_skip": True, "task": "regression",
                                     "target_mean": 23.5, "target_std": 7.8}),
        ("linear", [], 0.0, False, 1, {"task": "regression", "target_mean": -4.0, "target_std": 0.5}),
    ],
)
def test_numpy_forward_equals_torch(tmp_path, name, hidden, dropout, batch_norm, outputs, extra):
    extra = dict(extra)
    task = extra.pop("task", "multiclass" if outputs > 1 else "binary")
    torch.manual_seed(0)
    model = build_builtin_model(name, 12, outputs, hidden=hidden, dropout=dropout,
                                batch_norm=batch_norm, **extra)
    with torch.no_grad():  # the skip path starts with a zero head: give every weight a value
        for p in model.parameters():
            p.normal_(0, 0.5)
    model.train()
    x = torch.randn(512, 12) * 3 + 1
    for _ in range(5):  # moves batch norm's running mean and variance off 0 and 1
        model(x)
    model.eval()
    _save(tmp_path, model, kind="builtin", name=name, task=task, n_features=12,
          n_outputs=outputs, hidden=hidden, dropout=dropout, batch_norm=batch_norm, **extra)
    run = numpy_runner(tmp_path)
    assert run is not None
    new = np.random.default_rng(1).normal(size=(1000, 12)).astype(np.float32) * 2
    with torch.inference_mode():
        expected = model(torch.from_numpy(new)).numpy()
    got = run(new)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_other_models_are_left_to_torch(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh(), torch.nn.Linear(2, 1))
    _save(tmp_path / "script", model, kind="script", name="build_model", task="binary",
          n_features=3, n_outputs=1, ref="scripts/model.py:build_model")
    assert numpy_runner(tmp_path / "script") is None
    # a file named as a built-in model whose weights are not a built-in model's
    _save(tmp_path / "odd", model, kind="builtin", name="mlp", task="binary", n_features=3,
          n_outputs=1, hidden=[2])
    assert numpy_runner(tmp_path / "odd") is None
    assert numpy_runner(tmp_path / "missing") is None
    # bfloat16 weights: numpy holds them only with ml_dtypes installed; then they run in
    # float32, else torch runs the model (no error either way)
    half = build_builtin_model("mlp", 3, 1, hidden=[2]).to(torch.bfloat16)
    _save(tmp_path / "bf16", half, kind="builtin", name="mlp", task="binary", n_features=3,
          n_outputs=1, hidden=[2])
    run = numpy_runner(tmp_path / "bf16")
    if run is not None:
        x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3)
        with torch.inference_mode():
            expected = half.float()(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(run(x), expected, rtol=1e-5, atol=1e-5)


def test_numpy_runner_does_not_import_torch(tmp_path):
    model = build_builtin_model("mlp", 4, 1, hidden=[3])
    _save(tmp_path, model, kind="builtin", name="mlp", task="binary", n_features=4, n_outputs=1, hidden=[3])
    code = (
        "import sys, numpy as np\n"
        "from blase.deploy._runner import numpy_runner\n"
        f"run = numpy_runner({str(tmp_path)!r})\n"
        "print(run(np.ones((2, 4), np.float32)).shape, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["(2,", "1)", "False"]
