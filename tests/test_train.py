"""Train: real torch training on small data, determinism, resume, checkpoints and faults."""

from __future__ import annotations

import errno
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from blase.config import TrainConfig, config_from_text
from blase.errors import ConfigError
from blase.prepare import Manifest, ShardInfo
from blase.train import ModelSpec, Train, TrainError, _checkpoint, build_builtin_model, load_model

# -- fixtures -------------------------------------------------------------------------------


def write_shards(
    root: Path,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    task: str,
    *,
    shard_rows: int | None = None,
) -> Path:
    """Write the layout Prepare writes: {split}/shard-NNNNN(.labels).npy and manifest.json."""
    root.mkdir(parents=True, exist_ok=True)
    d = next(iter(splits.values()))[0].shape[1]
    shards: dict[str, list[ShardInfo]] = {}
    counts: dict[str, int] = {}
    class_counts: dict[str, dict[str, int]] = {}
    for split, (X, y) in splits.items():
        (root / split).mkdir(exist_ok=True)
        step = shard_rows or max(len(X), 1)
        infos = []
        for i, start in enumerate(range(0, len(X), step)):
            f, lf = f"{split}/shard-{i:05d}.npy", f"{split}/shard-{i:05d}.labels.npy"
            np.save(root / f, np.ascontiguousarray(X[start : start + step], dtype=np.float32))
            ydt = np.float32 if task == "regression" else np.int64
            np.save(root / lf, y[start : start + step].astype(ydt))
            rows = len(X[start : start + step])
            infos.append(ShardInfo(file=f, labels_file=lf, rows=rows, hash="-", labels_hash="-"))
        shards[split], counts[split] = infos, len(X)
        if task != "regression":
            values, n = np.unique(y, return_counts=True)
            class_counts[split] = {str(int(k)): int(v) for k, v in zip(values, n, strict=True)}
    classes = [] if task == "regression" else sorted({int(v) for v in splits["train"][1]})
    manifest = Manifest(
        task=task,
        label="y",
        label_dtype="BIGINT",
        label_mapping={str(c): i for i, c in enumerate(classes)},
        classes=classes,
        features=[f"f{i}" for i in range(d)],
        dtypes={f"f{i}": "DOUBLE" for i in range(d)},
        n_features=d,
        y_dtype="float32" if task == "regression" else "int64",
        counts=counts,
        class_counts=class_counts,
        shards=shards,
        seed=0,
        split={"train": 0.7, "val": 0.15, "test": 0.15},
        stratify=False,
        key=None,
        shard_rows=shard_rows or 0,
        source="synthetic",
        source_hash="-",
        created_at="2024-01-01T00:00:00Z",
    )
    (root / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=2))
    return root


def _split(X: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    p = rng.permutation(len(X))
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    a, b = int(0.7 * len(X)), int(0.85 * len(X))
    return {
        "train": (X[p[:a]], y[p[:a]]),
        "val": (X[p[a:b]], y[p[a:b]]),
        "test": (X[p[b:]], y[p[b:]]),
    }


def _sklearn(name: str) -> tuple[np.ndarray, np.ndarray, str]:
    from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

    loader, task = {
        "binary": (load_breast_cancer, "binary"),
        "multiclass": (load_wine, "multiclass"),
        "regression": (load_diabetes, "regression"),
    }[name]
    X, y = loader(return_X_y=True)
    return X, y, task


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread, and far faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def binary_shards(tmp_path) -> Path:
    X, y, task = _sklearn("binary")
    return write_shards(tmp_path / "bc", _split(X, y), task, shard_rows=150)


def _cfg(**kw) -> dict:
    base = {"epochs": 4, "lr": 0.01, "batch_size": 32, "device": "cpu", "hidden": [16]}
    base.update(kw)
    return base


def _bytes(out: Path) -> dict[str, bytes]:
    return {
        "model": (out / "model.safetensors").read_bytes(),
        "last": (out / "checkpoint" / "weights.safetensors").read_bytes(),
        "optimizer": (out / "checkpoint" / "optimizer.safetensors").read_bytes(),
    }


def _predict(model: nn.Module, X: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(X, dtype=np.float32)))


class TinyNet(nn.Module):
    """A user module importable by class path (this test module)."""

    def __init__(self, n_features: int = 30, width: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, width), nn.Tanh(), nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class NaNAfter(nn.Module):
    """Returns NaN from the ``after``-th training forward pass on."""

    def __init__(self, n_features: int, after: int) -> None:
        super().__init__()
        self.lin = nn.Linear(n_features, 1)
        self.after = after
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls >= self.after:
                return self.lin(x) * float("nan")
        return self.lin(x)


# -- learning -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_each_task_learns_and_beats_a_trivial_baseline(kind, tmp_path):
    X, y, task = _sklearn(kind)
    parts = _split(X, y)
    shards = write_shards(tmp_path / "s", parts, task)
    r = Train(_cfg(epochs=15, hidden=[32])).fit(shards, tmp_path / "out")
    assert r.step == "train" and r.details["task"] == task
    Xte, yte = parts["test"]
    pred = _predict(load_model(tmp_path / "out"), Xte)
    if task == "regression":
        rmse = float(torch.sqrt(((pred.reshape(-1) - torch.from_numpy(yte).float()) ** 2).mean()))
        baseline = float(np.sqrt(((yte - parts["train"][1].mean()) ** 2).mean()))
        assert rmse < 0.85 * baseline
        assert "val_rmse" in r.details["final"]
    else:
        guess = pred.reshape(-1) > 0 if task == "binary" else pred.argmax(dim=1)
        accuracy = float((guess.long().numpy() == yte).mean())
        majority = float(np.bincount(yte.astype(int)).max() / len(yte))
        assert accuracy >= 0.85 and accuracy > majority + 0.3
        assert r.details["final"]["val_accuracy"] > 0.9
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert len(history) == 15 and history[-1]["train_loss"] < history[0]["train_loss"]
    spec = ModelSpec.model_validate_json((tmp_path / "out" / "model.json").read_text())
    assert (spec.kind, spec.name, spec.task, spec.n_features) == (
        "builtin",
        "mlp",
        task,
        X.shape[1],
    )
    assert spec.features[:2] == ["f0", "f1"]


def test_through_real_prepare_shards(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from blase.prepare import Prepare

    X, y, _ = _sklearn("binary")
    X = (X - X.mean(0)) / X.std(0)
    cols = {f"x{i}": X[:, i] for i in range(X.shape[1])}
    pq.write_table(
        pa.table({**cols, "label": np.where(y == 1, "yes", "no")}), tmp_path / "d.parquet"
    )
    Prepare(label="label", split=(0.7, 0.15, 0.15), shard_rows=100).run(
        tmp_path / "d.parquet", tmp_path / "sh"
    )
    r = Train(_cfg(epochs=8)).set_model("linear").fit(tmp_path / "sh", tmp_path / "out")
    assert r.details["final"]["val_accuracy"] > 0.9
    spec = json.loads((tmp_path / "out" / "model.json").read_text())
    assert spec["task"] == "binary" and spec["label_mapping"] == {"no": 0, "yes": 1}
    assert spec["features"][0] == "x0" and spec["label"] == "label"


# -- determinism and resume -----------------------------------------------------------------


def test_same_config_twice_gives_bit_identical_weights(binary_shards, tmp_path):
    cfg = _cfg(hidden=[16, 8], dropout=0.2, batch_norm=True, epochs=3)
    Train(cfg, seed=3).fit(binary_shards, tmp_path / "a")
    Train(cfg, seed=3).fit(binary_shards, tmp_path / "b")
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    Train(cfg, seed=4).fit(binary_shards, tmp_path / "c")
    assert _bytes(tmp_path / "c")["last"] != _bytes(tmp_path / "a")["last"]


def _stop_after(epoch: int):
    def hook(*, epoch: int, metrics: dict, model: nn.Module, _stop: int = epoch) -> None:
        if epoch == _stop:
            raise KeyboardInterrupt

    return hook


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(binary_shards, tmp_path):
    from blase.track import Track, load_run

    root = tmp_path / "proj"
    root.mkdir()
    (root / "blase.yaml").write_text("project: proj\n")
    cfg = _cfg(
        hidden=[16], dropout=0.3, schedule="cosine", epochs=5, optimizer="adamw", weight_decay=0.01
    )
    Train(cfg).fit(binary_shards, tmp_path / "full")

    out = tmp_path / "cut"
    with (
        pytest.raises(KeyboardInterrupt),
        Track("cut", project=root, sample_resources=False) as run,
    ):
        Train(cfg).fit(binary_shards, out, on_epoch_end=_stop_after(2))
    assert load_run(run.run_id, [root]).status == "interrupted"
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 2
    assert not list(out.glob(".*tmp*"))

    r = Train(cfg).fit(binary_shards, out, resume=True)
    assert r.details["resumed_from_epoch"] == 2 and r.details["epochs_run"] == 5
    assert _bytes(out) == _bytes(tmp_path / "full")
    timing = {"samples_per_s", "data_wait_share", "train_seconds"}

    def strip(h):
        return [{k: v for k, v in e.items() if k not in timing} for e in h]

    full = json.loads((tmp_path / "full" / "history.json").read_text())
    assert strip(json.loads((out / "history.json").read_text())) == strip(full)


def test_resume_refuses_a_checkpoint_from_another_config(binary_shards, tmp_path):
    Train(_cfg(epochs=2)).fit(binary_shards, tmp_path / "o")
    with pytest.raises(TrainError, match=r"different setup: config\.lr: 0\.01 then, 0\.05 now"):
        Train(_cfg(epochs=3, lr=0.05)).fit(binary_shards, tmp_path / "o", resume=True)
    # without a schedule, more epochs may be added to a finished run
    r = Train(_cfg(epochs=3)).fit(binary_shards, tmp_path / "o", resume=True)
    assert r.details["resumed_from_epoch"] == 2 and r.details["epochs_run"] == 3


def test_resume_without_a_checkpoint_starts_fresh(binary_shards, tmp_path, caplog):
    r = Train(_cfg(epochs=1)).fit(binary_shards, tmp_path / "o", resume=True)
    assert r.details["resumed_from_epoch"] is None and "no checkpoint" in caplog.text


# -- training options -----------------------------------------------------------------------


def test_early_stopping_stops_when_val_loss_stops_improving(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(900, 20)).astype(np.float32)
    y = rng.integers(0, 2, 900)  # pure noise: a big MLP only overfits
    parts = {"train": (X[:600], y[:600]), "val": (X[600:], y[600:])}
    shards = write_shards(tmp_path / "s", parts, "binary")
    r = Train(_cfg(epochs=40, hidden=[128, 128], lr=0.01, early_stopping=3)).fit(
        shards, tmp_path / "o"
    )
    d = r.details
    assert d["stopped_early"] and d["epochs_run"] < 40
    assert d["epochs_run"] == d["best_epoch"] + 3
    history = json.loads((tmp_path / "o" / "history.json").read_text())
    assert min(h["val_loss"] for h in history) == pytest.approx(d["best_metric"])


def test_cosine_and_step_schedules_change_the_learning_rate(binary_shards, tmp_path):
    r = Train(_cfg(epochs=4, lr=0.1, schedule="cosine")).fit(binary_shards, tmp_path / "c")
    lrs = [h["lr"] for h in json.loads((tmp_path / "c" / "history.json").read_text())]
    assert lrs == pytest.approx([0.1 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)])
    assert r.details["epochs_run"] == 4
    Train(_cfg(epochs=6, lr=0.1, schedule="step")).fit(binary_shards, tmp_path / "s")
    lrs = [h["lr"] for h in json.loads((tmp_path / "s" / "history.json").read_text())]
    assert lrs == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001])  # step_size = epochs // 3


def test_balanced_class_weights_raise_minority_recall(tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    y = (rng.random(n) < 0.08).astype(np.int64)
    X = rng.normal(size=(n, 5)) + y[:, None] * 0.9  # overlapping classes, 8% positives
    parts = {"train": (X[:2400], y[:2400]), "val": (X[2400:], y[2400:])}
    shards = write_shards(tmp_path / "s", parts, "binary")
    recall = {}
    for cw in ("none", "balanced"):
        Train(_cfg(epochs=5, class_weights=cw)).set_model("linear").fit(shards, tmp_path / cw)
        pred = _predict(load_model(tmp_path / cw), X[2400:]).reshape(-1) > 0
        recall[cw] = float(pred.numpy()[y[2400:] == 1].mean())
    assert recall["balanced"] > recall["none"] + 0.3
    with pytest.raises(TrainError, match="regression"):
        reg = write_shards(tmp_path / "r", {"train": (X, X[:, 0])}, "regression")
        Train(_cfg(class_weights="balanced")).fit(reg, tmp_path / "rr")


def test_mixed_precision_is_ignored_off_cuda(binary_shards, tmp_path):
    r = Train(_cfg(epochs=1, mixed_precision=True)).fit(binary_shards, tmp_path / "o")
    assert r.details["mixed_precision"] is False and r.details["device"] == "cpu"


def test_cuda_asked_for_without_a_gpu_is_a_clear_error(binary_shards, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TrainError, match="torch sees no CUDA GPU"):
        Train(_cfg(device="cuda")).fit(binary_shards, tmp_path / "o")


def test_no_val_split_keeps_the_last_weights(tmp_path):
    X, y, task = _sklearn("binary")
    shards = write_shards(tmp_path / "s", {"train": _split(X, y)["train"]}, task)
    r = Train(_cfg(epochs=2, early_stopping=1)).fit(shards, tmp_path / "o")
    assert r.details["epochs_run"] == 2 and any("no val split" in w for w in r.warnings)
    assert _bytes(tmp_path / "o")["model"] == _bytes(tmp_path / "o")["last"]


# -- models ---------------------------------------------------------------------------------


def test_set_model_with_a_module_round_trips_through_load_model(binary_shards, tmp_path):
    net = TinyNet(30, width=8)
    Train(_cfg(epochs=2)).set_model(net, init_kwargs={"n_features": 30, "width": 8}).fit(
        binary_shards, tmp_path / "o"
    )
    spec = json.loads((tmp_path / "o" / "model.json").read_text())
    assert spec["kind"] == "module" and spec["class_path"].endswith(":TinyNet")
    loaded = load_model(tmp_path / "o")
    X = np.random.default_rng(0).normal(size=(50, 30))
    best = TinyNet(30, 8)
    best.load_state_dict(_checkpoint.load_tensors(tmp_path / "o" / "model.safetensors"))
    assert torch.equal(_predict(loaded, X), _predict(best.eval(), X))


def test_a_module_that_cannot_be_rebuilt_points_at_a_factory_script(binary_shards, tmp_path):
    class Local(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(30, 1)

        def forward(self, x):
            return self.lin(x)

    Train(_cfg(epochs=1)).set_model(Local()).fit(binary_shards, tmp_path / "o")
    with pytest.raises(TrainError, match="cannot import the model class") as err:
        load_model(tmp_path / "o")
    assert "scripts/model.py:build_model" in str(err.value)
    assert isinstance(load_model(tmp_path / "o", model=Local()), Local)


def _project_with_script(tmp_path: Path, body: str) -> Path:
    root = tmp_path / "proj"
    (root / "scripts").mkdir(parents=True)
    (root / "blase.yaml").write_text("project: proj\n")
    (root / "scripts" / "model.py").write_text(body)
    return root


SCRIPT = """
import torch

def build_model(n_features, n_outputs, task):
    assert task == "binary"
    return torch.nn.Sequential(torch.nn.Linear(n_features, 8), torch.nn.ReLU(), torch.nn.Linear(8, n_outputs))
"""


def test_set_model_with_a_factory_script_and_load_model(binary_shards, tmp_path):
    root = _project_with_script(tmp_path, SCRIPT)
    tr = Train(_cfg(epochs=3, model="scripts/model.py:build_model"), project_root=root)
    r = tr.fit(binary_shards, root / "models" / "m")
    assert "code" in r.inputs and r.details["final"]["val_accuracy"] > 0.85
    spec = json.loads((root / "models" / "m" / "model.json").read_text())
    assert spec["kind"] == "script" and spec["ref"] == "scripts/model.py:build_model"
    X = np.random.default_rng(0).normal(size=(20, 30))
    a = _predict(load_model(root / "models" / "m"), X)  # finds the project from out_dir
    b = _predict(load_model(root / "models" / "m", project_root=root), X)
    assert torch.equal(a, b) and a.shape == (20, 1)


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (None, r"model script scripts/model\.py does not exist"),
        (
            "raise ValueError('no GPU here, sorry')\n",
            r"model script scripts/model\.py raised ValueError while being imported: no GPU here, sorry",
        ),
        (
            "def make(n_features, n_outputs, task): pass\n",
            r"scripts/model\.py has no function 'build_model' \(it defines: make\)",
        ),
        (
            "def build_model(n_features, n_outputs, task):\n    raise RuntimeError('bad width')\n",
            r"model factory scripts/model\.py:build_model raised RuntimeError: bad width",
        ),
        (
            "def build_model(n_features, n_outputs, task):\n    return 3\n",
            "returned int, not a torch nn.Module",
        ),
    ],
)
def test_a_broken_model_script_is_a_clear_error(binary_shards, tmp_path, body, pattern):
    root = _project_with_script(tmp_path, body or "")
    if body is None:
        (root / "scripts" / "model.py").unlink()
    tr = Train(_cfg(), project_root=root).set_model("scripts/model.py:build_model")
    with pytest.raises(TrainError, match=pattern):
        tr.fit(binary_shards, tmp_path / "o")


def test_a_model_with_the_wrong_input_size_names_both_sizes(tmp_path):
    X, y, task = _sklearn("binary")
    shards = write_shards(tmp_path / "s", _split(X[:, :9], y), task)
    with pytest.raises(TrainError) as err:
        Train(_cfg()).set_model(nn.Sequential(nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 1))).fit(
            shards, tmp_path / "o"
        )
    msg = str(err.value)
    assert "expects 12 inputs but the shards have 9 features (manifest " in msg
    assert str(shards / "manifest.json") in msg


def test_a_model_with_the_wrong_output_size_is_a_clear_error(tmp_path):
    X, y, task = _sklearn("multiclass")
    shards = write_shards(tmp_path / "s", _split(X, y), task)
    with pytest.raises(TrainError, match=r"multiclass task needs 3 outputs per row"):
        Train(_cfg()).set_model(nn.Linear(13, 2)).fit(shards, tmp_path / "o")


def test_unknown_builtin_and_bad_config_are_clear_errors():
    with pytest.raises(TrainError, match=r"unknown model 'mpl' \(did you mean 'mlp'\?\)"):
        Train().set_model("mpl")
    with pytest.raises(ConfigError, match=r"train\.optimizer"):
        Train({"optimizer": "lbfgs"})
    project = config_from_text("project: p\nseed: 7\ntrain:\n  model: linear\n  epochs: 3\n")
    tr = Train.from_config(project)
    assert (tr.seed, tr.config.model, tr.config.epochs) == (7, "linear", 3)
    assert isinstance(Train(TrainConfig(epochs=2)).config, TrainConfig)
    assert isinstance(build_builtin_model("linear", 4, 1), nn.Module)
    assert Train.train is Train.fit


# -- faults ---------------------------------------------------------------------------------


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(binary_shards, tmp_path):
    out = tmp_path / "o"
    from blase.prepare import ShardDataset

    steps_per_epoch = len(ShardDataset(binary_shards, "train", batch_size=32))
    model = NaNAfter(30, after=steps_per_epoch + 3)  # NaN from step 3 of epoch 2
    with pytest.raises(TrainError) as err:
        Train(_cfg(epochs=4)).set_model(model).fit(binary_shards, out)
    msg = str(err.value)
    assert (
        "the loss became nan at epoch 2, step 3" in msg and "checkpoint of epoch 1 is intact" in msg
    )
    assert "learning rate" in msg and "grad_clip" in msg
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1
    weights = _checkpoint.load_tensors(out / "checkpoint" / "weights.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(
    binary_shards, tmp_path, monkeypatch
):
    cfg = _cfg(epochs=3, dropout=0.1)
    Train(cfg).fit(binary_shards, tmp_path / "full")
    out = tmp_path / "o"
    real = _checkpoint.write_bytes_atomic
    before: dict[str, bytes] = {}

    def failing(path: Path, data: bytes) -> None:
        if path.parent.name.startswith(".checkpoint.tmp") and path.name == "optimizer.safetensors":
            state = out / "checkpoint" / "state.json"
            if state.exists() and json.loads(state.read_text())["epoch"] == 1:
                before.update(_bytes(out))
                raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(_checkpoint, "write_bytes_atomic", failing)
    with pytest.raises(
        TrainError, match=r"disk filled up while writing the checkpoint of epoch 2"
    ) as err:
        Train(cfg).fit(binary_shards, out)
    assert "previous checkpoint is intact" in str(err.value) and "resume=True" in str(err.value)
    assert json.loads((out / "checkpoint" / "state.json").read_text())["epoch"] == 1
    assert (out / "checkpoint" / "weights.safetensors").read_bytes() == before["last"]
    assert not list(out.glob(".*tmp*"))
    monkeypatch.setattr(_checkpoint, "write_bytes_atomic", real)
    Train(cfg).fit(binary_shards, out, resume=True)
    assert _bytes(out) == _bytes(tmp_path / "full")


def test_a_crash_between_the_checkpoint_renames_is_recovered(binary_shards, tmp_path):
    out = tmp_path / "o"
    Train(_cfg(epochs=2)).fit(binary_shards, out)
    (out / "checkpoint").rename(out / ".checkpoint.old-deadbeef")
    ckpt = _checkpoint.load_checkpoint(out)
    assert ckpt is not None and ckpt.epoch == 2


# -- tracking -------------------------------------------------------------------------------


def test_track_receives_epoch_metrics_samples_per_s_and_step_losses(binary_shards, tmp_path):
    from blase.track import Track, load_run

    root = tmp_path / "proj"
    root.mkdir()
    (root / "blase.yaml").write_text("project: proj\n")
    with Track("t", project=root, sample_resources=False) as run:
        Train(_cfg(epochs=3), log_every=5).fit(binary_shards, tmp_path / "o")
    detail = load_run(run.run_id, [root])
    hist = detail.metric_history
    for name in ("train_loss", "val_loss", "val_accuracy", "samples_per_s", "lr"):
        assert [p["step"] for p in hist[name]] == [1, 2, 3], name
    assert all(p["value"] > 0 for p in hist["samples_per_s"])
    steps = [p["step"] for p in hist["batch_loss"]]
    assert steps and all(s % 5 == 0 for s in steps)
    assert detail.events.get("train_start") == 1 and detail.events.get("train_end") == 1


def test_an_explicit_track_argument_is_used(binary_shards, tmp_path):
    from blase.track import Track, load_run

    root = tmp_path / "proj"
    root.mkdir()
    (root / "blase.yaml").write_text("project: proj\n")
    run = Track("explicit", project=root, sample_resources=False).start()
    try:
        Train(_cfg(epochs=1)).fit(binary_shards, tmp_path / "o", track=run)
    finally:
        run.end()
    assert "val_loss" in load_run(run.run_id, [root]).metrics


def test_no_pickle_in_the_train_package():
    src = Path(__file__).resolve().parents[1] / "blase" / "train"
    text = "\n".join(p.read_text() for p in src.glob("*.py"))
    assert not re.search(r"torch\.(save|load)\(|import pickle|pickle\.|cloudpickle", text)


def test_an_input_on_a_far_larger_scale_than_the_others_is_warned_about(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (300, 4))
    y = X[:, 0] + X[:, 1]

    def splits(X):  # as is: _split standardises
        return {"train": (X[:200], y[:200]), "val": (X[200:250], y[200:250]), "test": (X[250:], y[250:])}

    r = Train(_cfg(epochs=1)).fit(write_shards(tmp_path / "ok", splits(X), "regression"), tmp_path / "o1")
    assert not [w for w in r.warnings if "scale" in w]
    X[:, 2] = rng.integers(1970, 1983, 300)  # an unscaled year among standardised columns
    r = Train(_cfg(epochs=1)).fit(write_shards(tmp_path / "year", splits(X), "regression"), tmp_path / "o2")
    warning = next(w for w in r.warnings if "scale far from" in w)
    assert "'f2' (~1.98e+03)" in warning and "'f0'" not in warning and "op: scale" in warning
    # many rare one-hot columns stored dense (RMS ~0.1) beside a robust-scaled column with a
    # few far values (RMS ~2.5): 0/1 columns have no scale to compare, nothing is flagged
    X = rng.normal(0, 1, (300, 4))
    X[:5, 3] = 20.0  # outliers a robust scale keeps far out
    hot = np.zeros((300, 30))
    hot[np.arange(300), rng.integers(0, 30, 300)] = 1.0
    r = Train(_cfg(epochs=1)).fit(write_shards(tmp_path / "hot", splits(np.hstack([X, hot])), "regression"),
                                  tmp_path / "o3")
    assert not [w for w in r.warnings if "scale far from" in w], r.warnings


def test_linear_skip_is_recorded_and_an_old_model_json_rebuilds_without_it(tmp_path):
    from blase.train._models import ModelSpec, rebuild

    spec = {"kind": "builtin", "name": "mlp", "task": "binary", "n_features": 5,
            "n_outputs": 1, "hidden": [4]}  # a model.json written before linear_skip existed
    old = rebuild(ModelSpec.model_validate(spec))
    assert old.skip is None and "skip.weight" not in old.state_dict()
    wide = rebuild(ModelSpec.model_validate({**spec, "linear_skip": True}))
    assert wide.state_dict()["skip.weight"].shape == (1, 5)
    # the skip is the linear model: with the deep part silenced the output is x @ w
    with torch.no_grad():
        wide.head.weight.zero_()
        wide.head.bias.zero_()
        x = torch.randn(3, 5)
        torch.testing.assert_close(wide(x), x @ wide.skip.weight.T)


# -- refit on train + val -------------------------------------------------------------------


def test_refit_trains_again_on_train_and_val_for_the_best_epoch_count(tmp_path):
    """refit: auto on a small set: a second pass over train + val for the best epoch count,
    from the same start; its weights are kept, differ from the first pass's, and repeat."""
    X, y, task = _sklearn("binary")
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    binary_shards = write_shards(tmp_path / "bc", _split(X, y), task, shard_rows=150)
    cfg = _cfg(epochs=5, dropout=0.1)
    first = Train({**cfg, "refit": False}, seed=3).fit(binary_shards, tmp_path / "first")
    a = Train(cfg, seed=3).fit(binary_shards, tmp_path / "a")
    Train(cfg, seed=3).fit(binary_shards, tmp_path / "b")
    manifest = json.loads((binary_shards / "manifest.json").read_text())
    rows = manifest["counts"]["train"] + manifest["counts"]["val"]
    assert first.details["refit"] is None
    assert a.details["refit"]["epochs"] == first.details["best_epoch"] == a.details["best_epoch"]
    assert a.details["refit"]["rows"] == rows and "auto" in a.details["refit"]["reason"]
    assert _bytes(tmp_path / "a")["model"] == _bytes(tmp_path / "b")["model"]
    assert _bytes(tmp_path / "a")["model"] != _bytes(tmp_path / "first")["model"]
    # the first pass's history and checkpoint are as without refit; no refit folder is left
    assert _bytes(tmp_path / "a")["last"] == _bytes(tmp_path / "first")["last"]
    assert not (tmp_path / "a" / ".refit").exists()
    model = load_model(tmp_path / "a")
    accuracy = float(((_predict(model, X).reshape(-1) > 0).long().numpy() == y).mean())
    assert accuracy > 0.9


def test_refit_auto_skips_large_sets_and_refit_true_forces_it(binary_shards, tmp_path, monkeypatch):
    from blase.train import _refit

    monkeypatch.setattr(_refit, "REFIT_AUTO_ROWS", 100)  # the test set has 483 train + val rows
    skipped = Train(_cfg(epochs=2), seed=1).fit(binary_shards, tmp_path / "auto")
    forced = Train(_cfg(epochs=2, refit=True), seed=1).fit(binary_shards, tmp_path / "forced")
    assert skipped.details["refit"] is None
    assert forced.details["refit"]["reason"] == "train.refit is true"


def test_shard_dataset_reads_several_splits_as_one(binary_shards):
    from blase.prepare import ShardDataset

    both = ShardDataset(binary_shards, ("train", "val"), batch_size=64, shuffle=False)
    train = ShardDataset(binary_shards, "train", batch_size=64, shuffle=False)
    val = ShardDataset(binary_shards, "val", batch_size=64, shuffle=False)
    assert both.rows == train.rows + val.rows and both.split == "train+val"
    ys = torch.cat([y for _, y in both])
    assert torch.equal(ys, torch.cat([y for _, y in train] + [y for _, y in val]))
