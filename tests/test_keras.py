"""The keras model plugin: Keras 3 on the torch backend (and TensorFlow where it is installed)
through train, evaluate, deploy, predict, monitor, update, reproduce, diff and gc.

Real Keras on real data: the bundled penguins CSV (what `blase create` ships) and
scikit-learn's bundled breast cancer and diabetes sets. The tests skip only when Keras is not
importable (the `keras` extra, in `dev`); the TensorFlow ones only when TensorFlow is not
(the `tensorflow` extra). Keras picks its backend once per process: this process uses torch,
and the TensorFlow backend runs in subprocesses.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml

from blase.errors import ConfigError
from blase.model import FitContext, TrainError, TrainingData, fit_model, load_trained, model_kind
from blase.plugins import PluginError
from tests.conftest import update_project

pytestmark = pytest.mark.skipif(importlib.util.find_spec("keras") is None,
                                reason="keras is not installed (pip install 'blase[keras]')")
needs_tensorflow = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                      reason="tensorflow is not installed (pip install 'blase[tensorflow]')")

FAST = {"epochs": 30, "batch_size": 32, "lr": 0.01, "early_stopping": 5}


@pytest.fixture(autouse=True, scope="module")
def _keras_on_its_backend():
    """Keras loaded as a fit would load it (torch unless KERAS_BACKEND says otherwise), before
    a test imports a module that imports Keras."""
    from blase.contrib._keras_setup import import_keras, resolve_backend

    import_keras(resolve_backend(None), strict=False)


def _configure(project, **train) -> None:
    config = yaml.safe_load(project.config_path.read_text())
    config["train"] = {**config.get("train", {}), **train}
    config["deploy"] = {**config.get("deploy", {}), "promote": True}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    """The penguins project of `blase create`, trained and deployed with a Keras MLP."""
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(tmp_path_factory.mktemp("keras") / "penguins")
    _configure(project, model="keras", options=FAST)
    return project, Pipeline(project).run()


# -- the pipeline ---------------------------------------------------------------------------------


def test_the_pipeline_trains_evaluates_and_deploys_a_keras_model(penguins):
    _, result = penguins
    assert result.steps["evaluate"].output.metrics["accuracy"] > 0.9
    trained = result.steps["train"].output
    assert (trained.kind, trained.name, trained.files) == ("plugin", "keras", ["model.keras"])
    spec = json.loads(trained.path("model.json").read_text())
    assert spec["options"]["epochs"] == 30 and spec["options"]["backend"] == "torch"
    assert spec["versions"]["keras_backend"] == "torch" and spec["versions"]["keras"].startswith("3.")
    details = result.steps["train"].details
    assert details["model"] == "keras" and details["backend"] == "torch" and details["monitor"] == "val_loss"
    assert 1 <= details["best_epoch"] <= details["epochs"] <= 30
    package = result.steps["deploy"].output.package_dir
    assert (package / "model.keras").is_file() and not (package / "model.safetensors").exists()
    info = json.loads((package / "package.json").read_text())
    assert "model.keras" in info["integrity"]["files"] and info["model_files"] == ["model.keras"]
    if info["onnx"] is not None:  # onnx installed: the package runs on ONNX Runtime too
        assert info["onnx"]["exported"] and info["onnx"]["max_abs_diff"] < 1e-4
        assert (package / "model.onnx").is_file()
    with zipfile.ZipFile(package / "model.keras") as archive:  # Keras's own format, no pickle
        assert sorted(archive.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]


def test_a_second_run_is_cached_and_a_new_option_retrains(penguins):
    from blase.pipeline import Pipeline

    project, _ = penguins
    again = Pipeline(project).run()
    assert set(again.cached) >= {"extract", "transform", "prepare", "train", "evaluate"}
    changed = Pipeline(project, overrides=["train.options.epochs=3"]).run()
    assert "prepare" in changed.cached and "train" not in changed.cached
    assert any("train.options.epochs" in reason for reason in changed.reasons["train"])
    assert changed.steps["train"].details["epochs"] <= 3


def test_the_backend_is_in_the_train_key_whoever_picks_it(penguins, monkeypatch):
    from blase.pipeline import Pipeline

    project, _ = penguins
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert Pipeline(project).step_key("train").components["env.keras_backend"] == "torch"
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # a different model: not the cached one
    assert Pipeline(project).step_key("train").components["env.keras_backend"] == "tensorflow"
    pinned = Pipeline(project, overrides=["train.options.backend=torch"]).step_key("train")
    assert pinned.components["env.keras_backend"] == "torch"


def test_predict_and_monitor_run_the_deployed_model(penguins, cli, tmp_path):
    project, result = penguins
    version = result.steps["deploy"].output.version
    name = project.config().deploy.name or project.name
    out = tmp_path / "predictions.parquet"
    predicted = cli("predict", f"{name}@{version}", "data/penguins.csv", "--out", str(out), cwd=project.root)
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_parquet(out)
    truth = pd.read_csv(project.root / "data" / "penguins.csv")["species"]
    assert (frame["prediction"].to_numpy() == truth.to_numpy()).mean() > 0.9
    assert np.allclose(frame[["prob_Adelie", "prob_Chinstrap", "prob_Gentoo"]].sum(axis=1), 1.0, atol=1e-5)
    checked = cli("monitor", f"{name}@{version}", "data/penguins.csv", "--json", cwd=project.root)
    assert checked.exit_code == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["prediction"] and report["metrics"]["accuracy"] > 0.9


def test_reproduce_is_bit_for_bit_and_diff_and_gc_work(penguins, cli):
    project, result = penguins
    again = cli("reproduce", result.run_id, "--verify", "--json", cwd=project.root)
    assert again.exit_code == 0, again.stderr
    out = json.loads(again.stdout)
    assert out["identical"] and out["weights_identical"] and out["compared"]["train"]
    diff = cli("diff", result.run_id, out["run_id"], cwd=project.root)
    assert diff.exit_code == 0, diff.stderr
    collected = cli("gc", "--keep-last", "1", cwd=project.root)
    assert collected.exit_code == 0, collected.stderr
    name = project.config().deploy.name or project.name
    assert cli("models", cwd=project.root).stdout.count(name) >= 1


def test_blase_plugin_check_passes(cli, project):
    checked = cli("plugin", "check", "keras", "--json", cwd=project.root)
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    (report,) = json.loads(checked.stdout)
    assert report["kind"] == "model" and len(report["checks"]) >= 8
    assert all(c["passed"] for c in report["checks"]), checked.stdout


# -- fitting --------------------------------------------------------------------------------------


def _prepared(tmp_path, frame: pd.DataFrame, label: str, *, shard_rows: int = 262_144):
    from blase.prepare import Prepare

    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "data.parquet"
    frame.to_parquet(source)
    out = tmp_path / "shards"
    Prepare(label, split=(0.7, 0.15, 0.15), seed=3, shard_rows=shard_rows).run(source, out)
    return out


def _bunch(name: str) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.rename(columns=str)
    features = [c for c in frame.columns if c != "target"]
    frame[features] = (frame[features] - frame[features].mean()) / frame[features].std()  # an MLP wants scaled inputs
    return frame


def test_the_same_seed_gives_the_same_bytes(tmp_path):
    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target")
    options = {**FAST, "epochs": 4, "dropout": 0.2}
    digests = []
    for folder, seed in (("a", 1), ("b", 1), ("c", 2)):
        fit_model(model_kind("keras", options), shards, FitContext(out_dir=tmp_path / folder, seed=seed))
        digests.append((tmp_path / folder / "model.keras").read_bytes())
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_binary_scores_are_logits_and_regression_scores_are_in_the_label_units(tmp_path):
    from blase.evaluate import evaluate_live

    binary = _prepared(tmp_path / "bc", _bunch("breast_cancer"), "target")
    fit_model(model_kind("keras", FAST), binary, FitContext(out_dir=tmp_path / "bc" / "model", seed=0))
    x, y = TrainingData(binary).matrix("test")
    scores = load_trained(tmp_path / "bc" / "model").predict(x)
    assert scores.shape == (len(x),) and ((scores > 0) == y).mean() > 0.9
    shards = _prepared(tmp_path / "diabetes", _bunch("diabetes"), "target")
    fit_model(model_kind("keras", {**FAST, "epochs": 60}), shards, FitContext(out_dir=tmp_path / "model", seed=0))
    result = evaluate_live(load_trained(tmp_path / "model"), shards, tmp_path / "eval", plots=False)
    assert result.details["metrics"]["r2"] > 0.25
    assert result.details["metrics"]["mae"] < 60  # the label is a disease score of 25-346


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                    reason="onnxruntime is not installed (pip install 'blase[onnx]')")
@pytest.mark.parametrize(("dataset", "shape"), [("breast_cancer", 1), ("wine", 2), ("diabetes", 1)])
def test_the_onnx_export_gives_the_native_scores(dataset, shape, tmp_path):
    """Logits, per-class logits, or the prediction in the label's units (the scale is in the graph)."""
    import onnxruntime as ort

    shards = _prepared(tmp_path, _bunch(dataset), "target")
    fit_model(model_kind("keras", {**FAST, "epochs": 3}), shards, FitContext(out_dir=tmp_path / "model", seed=0))
    model = load_trained(tmp_path / "model")
    x, _ = TrainingData(shards).matrix("test")
    model.export_onnx(tmp_path / "model.onnx", x.shape[1])
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["features"]
    got, want = session.run(None, {"features": x})[0], model.predict(x)
    assert want.ndim == shape and got.size == want.size  # binary/regression: [n, 1] in ONNX, [n] from predict
    assert np.allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5), np.abs(got.reshape(want.shape) - want).max()
    assert want.std() > 0


def test_training_reads_batches_of_the_shards_never_a_whole_split(tmp_path, monkeypatch):
    from blase.contrib._keras_data import ShardBatches

    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target", shard_rows=40)
    data = TrainingData(shards)
    assert len(data.shards("train")) >= 9
    batches = ShardBatches(data, "train", 16, seed=0, shuffle=True)
    first = [batches[i] for i in range(len(batches))]
    assert len(first) == sum(-(-s.rows // 16) for s in data.shards("train"))
    assert sum(len(x) for x, _ in first) == data.rows("train") and all(len(x) <= 16 for x, _ in first)
    x_all, _ = data.matrix("train")
    seen = np.concatenate([x for x, _ in first])
    assert np.array_equal(np.sort(seen, axis=0), np.sort(x_all, axis=0))  # every row once per epoch
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][0], first[0][0])  # reshuffled from (seed, epoch)

    def whole(*_a, **_k):
        raise AssertionError("the Keras model read a whole split into memory")

    monkeypatch.setattr(TrainingData, "matrix", whole)
    fit_model(model_kind("keras", {**FAST, "epochs": 2}), shards, FitContext(out_dir=tmp_path / "m", seed=0))
    assert (tmp_path / "m" / "model.keras").is_file()


# -- a project's own network ----------------------------------------------------------------------

BUILD = '''
import keras

WIDTH = 24


def build_model(n_features, n_outputs, task):
    return keras.Sequential([
        keras.Input(shape=(n_features,)),
        keras.layers.Dense(WIDTH, activation="tanh"),
        keras.layers.Dense(n_outputs),
    ])
'''


def test_a_build_script_is_trained_cached_by_its_code_and_snapshotted(project, cli):
    from blase.pipeline import Pipeline

    (project.root / "scripts" / "keras_model.py").write_text(textwrap.dedent(BUILD))
    _configure(project, model="keras", options={**FAST, "build": "scripts/keras_model.py:build_model"})
    first = Pipeline(project).run()
    assert first.steps["evaluate"].output.metrics["accuracy"] > 0.9
    with zipfile.ZipFile(first.steps["train"].output.path("model.keras")) as archive:
        assert '"units": 24' in archive.read("config.json").decode()
    assert "train" in Pipeline(project).run().cached
    (project.root / "scripts" / "keras_model.py").write_text(textwrap.dedent(BUILD).replace("WIDTH = 24", "WIDTH = 20"))
    edited = Pipeline(project).run()
    assert edited.reasons["train"] == ["scripts/keras_model.py:build_model changed"]
    diff = cli("diff", first.run_id, edited.run_id, cwd=project.root)
    assert diff.exit_code == 0 and "WIDTH = 20" in diff.stdout, diff.stdout + diff.stderr


@pytest.mark.parametrize(("build", "script", "message"), [
    ("../outside.py:build_model", None, r"train\.options\.build '\.\./outside\.py:build_model' points outside the project"),
    ("scripts/nope.py:build_model", None, r"train\.options\.build names scripts/nope\.py, which does not exist"),
    ("scripts/k.py:build_model", "def make(n_features, n_outputs, task): pass",
     r"scripts/k\.py has no function 'build_model' \(it defines make\)"),
    ("scripts/k.py:build_model", "import keras\ndef build_model(n_features, n_outputs, task):\n"
     "    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(n_outputs, activation='softmax')])",
     r"ends in a softmax; Blase trains on logits"),
    ("scripts/k.py:build_model", "import keras\ndef build_model(n_features, n_outputs, task):\n"
     "    return keras.Sequential([keras.Input((n_features,)), keras.layers.Dense(7)])",
     r"outputs shape \[None, 7\]; the multiclass task needs \[batch, 3\]"),
])
def test_a_bad_build_script_is_a_clear_error(project, cli, build, script, message):
    if script is not None:
        (project.root / "scripts" / "k.py").write_text(script)
    _configure(project, model="keras", options={**FAST, "build": build})
    ran = cli("run", cwd=project.root)
    assert ran.exit_code != 0 and "Traceback" not in ran.stderr
    assert __import__("re").search(message, ran.stderr), ran.stderr


# -- loading runs no code -------------------------------------------------------------------------


def _with_config(src, dest, edit) -> None:
    with zipfile.ZipFile(src) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(dest, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(("edit", "named"), [
    (lambda c: c["config"]["layers"][1].update(module="os", class_name="system"), "os.system"),
    (lambda c: c["config"]["layers"][1]["config"].update(
        activation={"module": "builtins", "class_name": "__lambda__", "config": {"value": "x"}}), "a Python lambda"),
])
def test_loading_refuses_a_file_that_names_code_outside_keras(penguins, tmp_path, edit, named):
    import shutil

    _, result = penguins
    trained = result.steps["train"].output.root
    folder = tmp_path / "model"
    shutil.copytree(trained, folder)
    (folder / "model.keras").unlink()
    _with_config(trained / "model.keras", folder / "model.keras", edit)
    with pytest.raises(TrainError, match=f"names {named}, which Blase will not import or run"):
        load_trained(folder)


# -- update ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["finetune", "retrain"])
def test_update_continues_the_deployed_network_or_retrains(mode, tmp_path):
    from blase.pipeline import Pipeline
    from blase.update import Update

    frame = _bunch("breast_cancer")
    project = update_project(tmp_path / "bc", frame, {"model": "keras", "options": {**FAST, "epochs": 10}}, {"mode": mode, "replay": 0.3})
    Pipeline(project).run()
    out = Update("bc@v1", project=project).run("data/new.csv")
    assert out.candidate_version == "v2" and out.holdout["candidate"]["accuracy"] > 0.85
    parent, child = (load_trained(project.models_dir / "bc" / v) for v in ("v1", "v2"))
    assert parent.network_.get_config()["layers"] == child.network_.get_config()["layers"]
    steps = [int(np.asarray(m.network_.optimizer.iterations)) for m in (parent, child)]
    epochs = json.loads((project.models_dir / "bc" / "v2" / "model.json").read_text())["options"]["epochs"]
    if mode == "finetune":  # Adam's step count (and its moments) go on from the deployed model's
        assert steps[1] > steps[0]
    else:  # a new network: its steps are this fit's only (at most epochs x batches of the new mix)
        assert steps[1] <= epochs * -(-(330 + 239) // 32)
        assert not np.array_equal(parent.network_.get_weights()[0], child.network_.get_weights()[0])


def test_update_epochs_trains_that_many_more_epochs_the_same_way_twice(tmp_path):
    from blase.pipeline import Pipeline
    from blase.update import Update

    frame = _bunch("breast_cancer")
    project = update_project(tmp_path / "bc", frame, {"model": "keras", "options": {**FAST, "epochs": 4, "early_stopping": None}}, {"mode": "finetune", "replay": 0.3, "epochs": 3})
    Pipeline(project).run()
    first = Update("bc@v1", project=project).run("data/new.csv")
    second = Update("bc@v1", project=project).run("data/new.csv")
    parent, child = (load_trained(project.models_dir / "bc" / v) for v in ("v1", first.candidate_version))
    steps = [int(np.asarray(m.network_.optimizer.iterations)) for m in (parent, child)]
    batches = -(-sum(first.rows[k] for k in ("new_train", "replay")) // 32)  # the fit's share of the mix
    assert 0 < steps[1] - steps[0] <= 3 * batches and (steps[1] - steps[0]) % 3 == 0  # 3 whole epochs
    assert json.loads((project.models_dir / "bc" / "v2" / "model.json").read_text())["options"]["epochs"] == 3
    files = [project.models_dir / "bc" / v / "model.keras" for v in (first.candidate_version, second.candidate_version)]
    assert files[0].read_bytes() == files[1].read_bytes()


# -- errors ---------------------------------------------------------------------------------------


def test_bad_options_are_config_errors_naming_the_key(project, cli):
    with pytest.raises(ConfigError, match=r"train\.options\.epoch: .*did you mean 'epochs'"):
        model_kind("keras", {"epoch": 3})
    with pytest.raises(ConfigError, match=r"train\.options\.backend: Input should be 'torch', 'tensorflow' or 'jax'"):
        model_kind("keras", {"backend": "theano"})
    with pytest.raises(ConfigError, match=r"hidden shape the built-in MLP; with build, scripts/k\.py:build makes"):
        model_kind("keras", {"build": "scripts/k.py:build", "hidden": [8]})
    run = cli("run", "--set", "train.model=keras", "--set", "train.options.dropuot=0.1", cwd=project.root)
    assert run.exit_code != 0 and "Traceback" not in run.stderr
    assert "train.options.dropuot" in run.stderr and "did you mean 'dropout'" in run.stderr


def test_a_missing_keras_names_the_pip_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # what importlib sees when it is not installed
    with pytest.raises(PluginError, match=r"needs keras, which is not installed") as err:
        model_kind("keras")
    assert err.value.hint == "install it: pip install 'blase[keras]'"


def test_a_missing_tensorflow_names_the_tensorflow_extra(monkeypatch, tmp_path):
    from blase.contrib import _keras_setup

    monkeypatch.setattr(_keras_setup, "_installed", lambda module: module != "tensorflow")
    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target")
    with pytest.raises(TrainError, match=r"the Keras backend 'tensorflow' needs tensorflow, which is not installed") as err:
        fit_model(model_kind("keras", {"backend": "tensorflow"}), shards, FitContext(out_dir=tmp_path / "m"))
    assert "pip install 'blase[tensorflow]'" in err.value.hint


def test_blase_help_imports_no_keras():
    code = ("import runpy, sys; sys.argv = ['blase', '--help']\n"
            "try:\n    runpy.run_module('blase', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('IMPORTED', sorted(m for m in ('keras', 'tensorflow', 'blase.contrib.keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("IMPORTED []")


# -- the TensorFlow backend -----------------------------------------------------------------------

TF_FIT = '''
import hashlib, json, sys
from pathlib import Path
import numpy as np
from blase.model import FitContext, TrainingData, fit_model, load_trained, model_kind

shards, out = sys.argv[1], Path(sys.argv[2])
digests = []
for name in ("a", "b"):
    fit_model(model_kind("keras", {"backend": "tensorflow", "epochs": 4, "batch_size": 32, "dropout": 0.2}),
              shards, FitContext(out_dir=out / name, seed=5))
    digests.append(hashlib.sha256((out / name / "model.keras").read_bytes()).hexdigest())
x, _ = TrainingData(shards).matrix("test")
np.save(out / "scores.npy", load_trained(out / "a").predict(x))
from blase.model import ExportUnsupported
try:  # tf2onnx (the tensorflow extra), through Keras's export
    load_trained(out / "a").export_onnx(out / "tf.onnx", x.shape[1])
    onnx = "exported"
except ExportUnsupported as exc:
    onnx = exc.message + " | " + exc.hint
import keras
print(json.dumps({"digests": digests, "backend": keras.backend.backend(), "torch": "torch" in sys.modules,
                  "onnx": onnx}))
'''


@needs_tensorflow
@pytest.mark.slow
def test_the_tensorflow_backend_trains_deterministically_and_its_file_runs_on_torch(tmp_path):
    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", TF_FIT, str(shards), str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == "tensorflow" and out["digests"][0] == out["digests"][1]
    spec = json.loads((tmp_path / "a" / "model.json").read_text())
    assert spec["options"]["backend"] == "tensorflow" and "tensorflow" in spec["versions"]
    x, y = TrainingData(shards).matrix("test")
    here = load_trained(tmp_path / "a")  # this process runs Keras on torch: a .keras file runs on any backend
    assert here.backend_ == "torch"
    assert np.allclose(here.predict(x), np.load(tmp_path / "scores.npy"), atol=1e-5)
    assert ((here.predict(x) > 0) == y).mean() > 0.85
    if importlib.util.find_spec("tf2onnx") is None:  # the export says which extra has the converter
        assert "needs tf2onnx" in out["onnx"] and "blase[tensorflow]" in out["onnx"]
    elif importlib.util.find_spec("onnxruntime") is not None:  # tf2onnx's graph gives TensorFlow's scores
        import onnxruntime as ort

        assert out["onnx"] == "exported"
        session = ort.InferenceSession(str(tmp_path / "tf.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(None, {"features": x})[0]
        assert np.allclose(got.reshape(-1), np.load(tmp_path / "scores.npy"), rtol=1e-5, atol=1e-5)


@needs_tensorflow
def test_asking_for_tensorflow_where_keras_runs_on_torch_says_how(tmp_path):
    import keras

    if keras.backend.backend() == "tensorflow":
        pytest.skip("this process runs Keras on TensorFlow")
    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target")
    with pytest.raises(TrainError, match=r"Keras is already loaded on 'torch' in this process") as err:
        fit_model(model_kind("keras", {"backend": "tensorflow"}), shards, FitContext(out_dir=tmp_path / "m"))
    assert err.value.hint == "run it in a new process, e.g. `KERAS_BACKEND=tensorflow blase run`"
