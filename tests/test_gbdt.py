"""Model plugins: xgboost and lightgbm (Blase's reference plugins) and a project's own model,
through train, evaluate, deploy, predict, monitor, update, reproduce, diff and gc.

Real libraries on real data: the bundled penguins CSV (what `blase create` ships) and
scikit-learn's bundled breast cancer and diabetes sets. A test of a library skips only when
that library is not importable (the `xgboost` and `lightgbm` extras; CI installs both).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import yaml

from blase.errors import ConfigError
from blase.model import FitContext, TrainError, TrainingData, fit_model, load_trained, model_kind
from blase.plugins import PluginError
from tests.conftest import update_project


def _lib(name: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(importlib.util.find_spec(name) is None,
                              reason=f"{name} is not installed (pip install 'blase[{name}]')")


LIBS = [pytest.param("xgboost", marks=_lib("xgboost")), pytest.param("lightgbm", marks=_lib("lightgbm"))]
FAST = {"n_estimators": 80, "early_stopping_rounds": 10}


def _configure(project, **train) -> None:
    config = yaml.safe_load(project.config_path.read_text())
    config["train"] = {**config.get("train", {}), **train}
    config["deploy"] = {**config.get("deploy", {}), "promote": True}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module", params=LIBS)
def penguins(request, tmp_path_factory):
    """The penguins project of `blase create`, trained and deployed with a boosting model."""
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(tmp_path_factory.mktemp(request.param) / "penguins")
    _configure(project, model=request.param, options=FAST)
    result = Pipeline(project).run()
    return request.param, project, result


# -- the pipeline ---------------------------------------------------------------------------------


def test_the_pipeline_trains_evaluates_and_deploys_a_boosting_model(penguins):
    lib, _, result = penguins
    assert result.steps["evaluate"].output.metrics["accuracy"] > 0.9
    trained = result.steps["train"].output
    file = {"xgboost": "model.ubj", "lightgbm": "model.txt"}[lib]
    assert (trained.kind, trained.name, trained.files) == ("plugin", lib, [file])
    spec = json.loads(trained.path("model.json").read_text())
    assert spec["options"]["n_estimators"] == 80 and lib in spec["versions"]
    details = result.steps["train"].details
    assert details["model"] == lib and details["trees"] <= 80 and details["monitor"]
    package = result.steps["deploy"].output.package_dir
    assert (package / file).is_file() and not (package / "model.safetensors").exists()
    info = json.loads((package / "package.json").read_text())
    assert file in info["integrity"]["files"] and info["model_files"] == [file]
    if info["onnx"] is not None and importlib.util.find_spec("onnxmltools"):  # the package runs on ONNX too
        assert info["onnx"]["exported"] and info["onnx"]["max_abs_diff"] < 1e-4
        assert (package / "model.onnx").is_file()


def test_a_second_run_is_cached_and_a_new_option_retrains(penguins):
    from blase.pipeline import Pipeline

    _, project, _ = penguins
    again = Pipeline(project).run()
    assert set(again.cached) >= {"extract", "transform", "prepare", "train", "evaluate"}
    changed = Pipeline(project, overrides=["train.options.n_estimators=40"]).run()
    assert "prepare" in changed.cached and "train" not in changed.cached
    assert any("train.options.n_estimators" in reason for reason in changed.reasons["train"])
    assert changed.steps["train"].details["trees"] <= 40


def test_predict_and_monitor_run_the_deployed_model(penguins, cli, tmp_path):
    _, project, result = penguins
    version = result.steps["deploy"].output.version
    name = project.config().deploy.name or project.name
    out = tmp_path / "predictions.parquet"
    predicted = cli("predict", f"{name}@{version}", "data/penguins.csv", "--out", str(out), cwd=project.root)
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_parquet(out)
    truth = pd.read_csv(project.root / "data" / "penguins.csv")["species"]
    assert (frame["prediction"].to_numpy() == truth.to_numpy()).mean() > 0.9
    assert np.allclose(frame[["prob_Adelie", "prob_Chinstrap", "prob_Gentoo"]].sum(axis=1), 1.0)
    checked = cli("monitor", f"{name}@{version}", "data/penguins.csv", "--json", cwd=project.root)
    assert checked.exit_code == 0, checked.stderr
    report = json.loads(checked.stdout)
    assert report["prediction"] and report["metrics"]["accuracy"] > 0.9


def test_reproduce_is_bit_for_bit_and_diff_and_gc_work(penguins, cli):
    _, project, result = penguins
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


@pytest.mark.parametrize("lib", LIBS)
def test_blase_plugin_check_passes(lib, cli, project):
    checked = cli("plugin", "check", lib, "--json", cwd=project.root)
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    (report,) = json.loads(checked.stdout)
    assert report["kind"] == "model" and len(report["checks"]) >= 8
    assert all(c["passed"] for c in report["checks"]), checked.stdout


# -- fitting --------------------------------------------------------------------------------------


def _prepared(tmp_path, frame: pd.DataFrame, label: str, *, shard_rows: int = 262_144):
    from blase.prepare import Prepare

    source = tmp_path / "data.parquet"
    frame.to_parquet(source)
    out = tmp_path / "shards"
    Prepare(label, split=(0.7, 0.15, 0.15), seed=3, shard_rows=shard_rows).run(source, out)
    return out


def _bunch(name: str) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    return bunch.frame.rename(columns=str)


@pytest.mark.parametrize("lib", LIBS)
def test_the_same_seed_gives_the_same_bytes(lib, tmp_path):
    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target")
    options = {**FAST, "subsample": 0.7}
    digests = []
    for folder, seed in (("a", 1), ("b", 1), ("c", 2)):
        fit_model(model_kind(lib, options), shards, FitContext(out_dir=tmp_path / folder, seed=seed))
        spec = json.loads((tmp_path / folder / "model.json").read_text())
        digests.append((tmp_path / folder / spec["files"][0]).read_bytes())
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


@pytest.mark.parametrize("lib", LIBS)
def test_regression_scores_are_in_the_label_units(lib, tmp_path):
    from blase.evaluate import evaluate_live

    shards = _prepared(tmp_path, _bunch("diabetes"), "target")
    fit_model(model_kind(lib, {"n_estimators": 200, "learning_rate": 0.05}), shards,
              FitContext(out_dir=tmp_path / "model", seed=0))
    result = evaluate_live(load_trained(tmp_path / "model"), shards, tmp_path / "eval", plots=False)
    assert result.details["metrics"]["r2"] > 0.25
    assert result.details["metrics"]["mae"] < 60  # the label is a disease score of 25-346


@_lib("xgboost")
def test_xgboost_out_of_core_matches_xgboost_in_memory(tmp_path):
    """Many small shards through the DataIter: the same trees' quality as one in-memory matrix."""
    import xgboost as xgb

    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target", shard_rows=40)
    data = TrainingData(shards)
    assert len(data.shards("train")) >= 9
    report = fit_model(model_kind("xgboost", {**FAST, "external_memory": True}), shards,
                       FitContext(out_dir=tmp_path / "ooc", seed=0))
    assert report.details["matrix"].startswith("external memory")
    x, y = data.matrix("train")
    xv, yv = data.matrix("val")
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist", "seed": 0, "eta": 0.1}
    booster = xgb.train(params, xgb.QuantileDMatrix(x, y), 80, evals=[(xgb.DMatrix(xv, yv), "val")],
                        early_stopping_rounds=10, verbose_eval=False)
    xt, yt = data.matrix("test")
    in_memory = ((booster.predict(xgb.DMatrix(xt), iteration_range=(0, booster.best_iteration + 1)) > 0.5) == yt).mean()
    ours = ((load_trained(tmp_path / "ooc").predict(xt) > 0) == yt).mean()
    assert abs(ours - in_memory) <= 0.03


# -- ONNX -----------------------------------------------------------------------------------------

needs_onnxmltools = pytest.mark.skipif(
    importlib.util.find_spec("onnxmltools") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="onnxmltools/onnxruntime are not installed (pip install 'blase[onnx]')")


@needs_onnxmltools
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize(("dataset", "shape"), [("breast_cancer", 1), ("wine", 2), ("diabetes", 1)])
def test_the_onnx_export_gives_the_native_scores(lib, dataset, shape, tmp_path):
    """Margins, not probabilities: the same scores as predict on the same rows (binary: one per
    row; multiclass: one per class; regression: the prediction in the label's units)."""
    import onnxruntime as ort

    shards = _prepared(tmp_path, _bunch(dataset), "target")
    fit_model(model_kind(lib, {"n_estimators": 40}), shards, FitContext(out_dir=tmp_path / "model", seed=0))
    model = load_trained(tmp_path / "model")  # from its files, as deploy exports it
    x, _ = TrainingData(shards).matrix("test")
    model.export_onnx(tmp_path / "model.onnx", x.shape[1])
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"features": x})[0]
    want = model.predict(x)
    assert got.ndim == want.ndim == shape and got.shape == want.shape
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5), np.abs(got - want).max()
    assert want.std() > 0  # real, varying scores


@pytest.mark.parametrize("lib", LIBS)
def test_onnx_export_without_onnxmltools_names_the_extra(lib, tmp_path, monkeypatch):
    from blase.model import ExportUnsupported

    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target")
    fit_model(model_kind(lib, {"n_estimators": 5}), shards, FitContext(out_dir=tmp_path / "model", seed=0))
    monkeypatch.setitem(sys.modules, "onnxmltools", None)  # what importlib sees when it is not installed
    with pytest.raises(ExportUnsupported, match=r"needs onnxmltools, which is not installed") as err:
        load_trained(tmp_path / "model").export_onnx(tmp_path / "model.onnx", 30)
    assert "pip install 'blase[onnx]'" in err.value.hint and not (tmp_path / "model.onnx").exists()


# -- update ---------------------------------------------------------------------------------------


def _first_tree(model) -> object:
    booster = model.booster_
    return booster.get_dump()[0] if hasattr(booster, "get_dump") else booster.dump_model()["tree_info"][0]


def _rounds(model) -> int:
    booster = model.booster_
    return booster.num_boosted_rounds() if hasattr(booster, "num_boosted_rounds") else booster.current_iteration()


@pytest.mark.parametrize("lib", LIBS)
def test_update_continues_boosting_for_update_epochs_more_rounds(lib, tmp_path):
    """finetune: update.epochs more rounds on top of the deployed trees (kept as they were);
    the same update again gives the same model bytes."""
    from blase.pipeline import Pipeline
    from blase.update import Update

    frame = _bunch("breast_cancer")
    project = update_project(tmp_path / "bc", frame, {"model": lib, "options": {"n_estimators": 30, "early_stopping_rounds": None}}, {"mode": "finetune", "replay": 0.3, "epochs": 7})
    Pipeline(project).run()
    out = Update("bc@v1", project=project).run("data/new.csv")
    assert out.candidate_version == "v2" and out.holdout["candidate"]["accuracy"] > 0.85
    assert any("7 more epochs or rounds" in note for note in out.notes)
    parent, child = (load_trained(project.models_dir / "bc" / v) for v in ("v1", "v2"))
    assert (_rounds(parent), _rounds(child)) == (30, 37)
    assert _first_tree(child) == _first_tree(parent)
    again = Update("bc@v1", project=project).run("data/new.csv", epochs=3)
    assert _rounds(load_trained(project.models_dir / "bc" / again.candidate_version)) == 33
    same = Update("bc@v1", project=project).run("data/new.csv")
    model_file = json.loads((project.models_dir / "bc" / "v2" / "model.json").read_text())["files"][0]
    assert ((project.models_dir / "bc" / "v2" / model_file).read_bytes()
            == (project.models_dir / "bc" / same.candidate_version / model_file).read_bytes())


# -- errors ---------------------------------------------------------------------------------------


@_lib("xgboost")
def test_bad_options_are_config_errors_naming_the_key(project, cli):
    with pytest.raises(ConfigError, match=r"train\.options\.max_depht: .*did you mean 'max_depth'"):
        model_kind("xgboost", {"max_depht": 3})
    with pytest.raises(ConfigError, match=r"train\.options\.learning_rate: Input should be greater than 0"):
        model_kind("xgboost", {"learning_rate": 0})
    with pytest.raises(ConfigError, match=r"train\.options\.n_estimators: model 'mlp' takes no options"):
        model_kind("mlp", {"n_estimators": 3})
    run = cli("run", "--set", "train.model=xgboost", "--set", "train.options.n_estimator=5", cwd=project.root)
    assert run.exit_code != 0 and "Traceback" not in run.stderr
    assert "train.options.n_estimator" in run.stderr and "did you mean 'n_estimators'" in run.stderr
    config = yaml.safe_load(project.config_path.read_text())
    config["train"] = {"model": "xgboost", "options": {"max_depht": 3}}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    checked = cli("check", cwd=project.root)  # before anything runs, with the line
    assert checked.exit_code != 0 and "Traceback" not in checked.stderr
    assert re.search(r"train\.options\.max_depht \(line \d+\): .*did you mean 'max_depth'", checked.stderr)


def test_unknown_models_suggest_the_closest_name():
    with pytest.raises(TrainError, match=r"unknown model 'xgbost' \(did you mean 'xgboost'\?\)"):
        model_kind("xgbost")
    with pytest.raises(TrainError, match=r"unknown model 'mpl' \(did you mean 'mlp'\?\)"):
        model_kind("mpl")


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm"])
def test_a_missing_library_names_the_pip_extra(lib, monkeypatch):
    monkeypatch.setitem(sys.modules, lib, None)  # what importlib sees when it is not installed
    with pytest.raises(PluginError, match=rf"needs {lib}, which is not installed") as err:
        model_kind(lib)
    assert err.value.hint == f"install it: pip install 'blase[{lib}]'"


def test_blase_help_imports_no_model_library():
    code = ("import runpy, sys; sys.argv = ['blase', '--help']\n"
            "try:\n    runpy.run_module('blase', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('IMPORTED', sorted(m for m in ('xgboost', 'lightgbm', 'blase.contrib.xgboost') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("IMPORTED []")


# -- a project's own model kind -------------------------------------------------------------------

PRIOR = '''
import json

import numpy as np
from pydantic import BaseModel, ConfigDict

from blase.model import FitReport, ModelKind
from blase.plugins import Plugin


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    smoothing: float = 1.0


class Prior(ModelKind):
    """Predicts the training class frequencies, whatever the features."""

    name = "prior"
    config_model = Options
    files = ("prior.json",)

    def fit(self, data, ctx):
        counts = np.full(data.n_classes, self.options.smoothing)
        for _, y in data.chunks("train"):
            counts += np.bincount(y, minlength=data.n_classes)
        self.logits_ = np.log(counts / counts.sum())
        self.report_ = FitReport(details={"classes": data.n_classes})
        return self

    def save(self, folder):
        (folder / "prior.json").write_text(json.dumps(self.logits_.tolist()))

    @classmethod
    def load(cls, folder, spec):
        model = cls(Options(**spec.options))
        model.logits_ = np.array(json.loads((folder / "prior.json").read_text()))
        return model

    def predict(self, x):
        return np.tile(self.logits_, (len(x), 1))


plugin = Plugin(name="prior", kind="model", target=":Prior")
'''


def test_a_project_model_plugin_trains_deploys_and_predicts(project, cli, tmp_path):
    (project.root / "scripts" / "prior.py").write_text(textwrap.dedent(PRIOR))
    config = yaml.safe_load(project.config_path.read_text())
    config["plugins"] = ["scripts/prior.py"]
    config["train"] = {"model": "prior", "options": {"smoothing": 2.0}}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    ran = cli("run", cwd=project.root)
    assert ran.exit_code == 0, ran.stderr
    from blase.pipeline import Pipeline

    again = Pipeline(project).run()  # cached: the plugin file's code is part of the key
    assert "train" in again.cached
    assert again.steps["train"].output.name == "prior"
    evaluation = again.steps["evaluate"].output
    assert evaluation.metrics["accuracy"] == pytest.approx(evaluation.baseline["accuracy"])
    (project.root / "scripts" / "prior.py").write_text(textwrap.dedent(PRIOR).replace("smoothing: float = 1.0",
                                                                                       "smoothing: float = 1.5"))
    edited = Pipeline(project).run()
    assert edited.reasons["train"] == ["scripts/prior.py:Prior changed"]
    predicted = cli("predict", project.name, "data/penguins.csv", "--out", str(tmp_path / "p.parquet"),
                    cwd=project.root)
    assert predicted.exit_code == 0, predicted.stderr
    assert pd.read_parquet(tmp_path / "p.parquet")["prediction"].nunique() == 1


WRONG_ONNX = '''
    epochs_option = "n_rounds"

    def export_onnx(self, path, n_features):  # a graph of zeros: not the model's scores
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            [helper.make_node("Mul", ["features", "zero"], ["scores"])], "zeros",
            [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])],
            [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, n_features])],
            [helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))

    def predict(self, x):'''


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
def test_the_checker_fails_a_wrong_onnx_export_and_an_epochs_option_that_is_no_option(project):
    from blase.plugins import project_plugins
    from blase.testing import check_plugin

    config = yaml.safe_load(project.config_path.read_text())
    project.config_path.write_text(yaml.safe_dump({**config, "plugins": ["scripts/prior.py"]}, sort_keys=False))

    def failed(body: str) -> dict[str, str]:
        (project.root / "scripts" / "prior.py").write_text(body)
        results = check_plugin(project_plugins(project.root, ["scripts/prior.py"])[0])
        return {r.name: r.detail for r in results if not r.passed}

    good = failed(textwrap.dedent(PRIOR))  # no export (optional), no epochs_option: both pass
    assert good == {}, good  # a project's own model plugin reloads from its folder too
    bad = failed(textwrap.dedent(PRIOR).replace("\n    def predict(self, x):",
                                                 textwrap.dedent(WRONG_ONNX).replace("\n", "\n    ")))
    assert set(bad) - set(good) == {"onnx_export", "epochs_option"}, bad
    assert "differ from predict" in bad["onnx_export"]
    assert bad["epochs_option"] == "epochs_option names 'n_rounds', which is not one of the options (smoothing)"


@_lib("xgboost")
def test_xgboost_keeps_small_quantised_data_in_memory_and_goes_to_disk_past_the_budget(tmp_path):
    """auto: a quarter of the memory budget decides; both ways give the same model's scores."""
    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target", shard_rows=40)
    rows = TrainingData(shards)
    small = fit_model(model_kind("xgboost", FAST), shards, FitContext(out_dir=tmp_path / "mem", seed=0))
    # 398 rows x 30 features x 2 bytes is ~24 kB: over a quarter of a 64 kB budget
    tight = fit_model(model_kind("xgboost", FAST), shards,
                      FitContext(out_dir=tmp_path / "disk", seed=0, memory=64 << 10, tmp_dir=tmp_path))
    assert small.details["matrix"] == "quantised in memory"
    assert tight.details["matrix"].startswith("external memory")
    # XGBoost's per-row state does not page out: past half the budget the fit says so
    # (398 rows x 40 B is 16 kB: over half of a 16 kB budget)
    tiny = fit_model(model_kind("xgboost", {**FAST, "n_estimators": 3}), shards,
                     FitContext(out_dir=tmp_path / "tiny", seed=0, memory=16 << 10, tmp_dir=tmp_path))
    assert not any("per training row" in w for w in small.warnings + tight.warnings)
    assert any("bytes per training row in memory whatever the matrix mode" in w and "raise --memory" in w
               for w in tiny.warnings)
    x, _ = rows.matrix("test")
    a, b = load_trained(tmp_path / "mem").predict(x), load_trained(tmp_path / "disk").predict(x)
    assert np.allclose(a, b, atol=1e-5)


# -- XGBoost's external-memory cache: where it goes, and a disk too small for it -----------------


@_lib("xgboost")
def test_xgboost_cache_dir_holds_the_cache_and_its_estimate_bounds_what_xgboost_writes(tmp_path):
    """`train.options.cache_dir` moves the disk cache (a fresh folder removed after the fit);
    the size Blase checks for is at least what XGBoost really writes."""
    import xgboost as xgb

    from blase.contrib._xgb_cache import _SLACK_BYTES, cache_bytes
    from blase.contrib.xgboost import ShardIter

    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target", shard_rows=40)
    data = TrainingData(shards)
    cache = tmp_path / "big-disk" / "xgb"
    report = fit_model(model_kind("xgboost", {**FAST, "external_memory": True, "cache_dir": str(cache)}), shards,
                       FitContext(out_dir=tmp_path / "m", seed=0, tmp_dir=tmp_path))
    assert report.details["matrix"].startswith("external memory")
    assert cache.is_dir() and list(cache.iterdir()) == []  # made, used, cleaned up
    # what XGBoost writes for a train split, against the estimate without its fixed slack
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(20_000, 12)), columns=[f"x{i}" for i in range(12)])
    frame = frame.assign(y=rng.normal(size=20_000))
    (tmp_path / "wide").mkdir()
    data = TrainingData(_prepared(tmp_path / "wide", frame, "y"))
    pages = tmp_path / "pages"
    pages.mkdir()
    for max_bin in (256, 1024):
        matrix = xgb.ExtMemQuantileDMatrix(
            ShardIter(data, "train", str(pages / f"p{max_bin}"), batch_bytes=8 << 20), max_bin=max_bin)
        written = sum(f.stat().st_size for f in pages.glob(f"p{max_bin}*"))  # removed with the matrix
        del matrix
        assert 0 < written <= cache_bytes(data.rows("train"), data.n_features, max_bin) - _SLACK_BYTES


@_lib("xgboost")
def test_a_disk_too_small_for_the_xgboost_cache_is_a_clear_error_before_xgboost_writes(
        project, cli, tmp_path, monkeypatch):
    """Checked against the real folder's free space (the margin Blase keeps free raised to all
    of it, so any cache is too big): an error naming the folder, the bytes and the fix, from
    the API and from `blase run`, with nothing written there and no traceback."""
    import shutil

    from blase.contrib import _xgb_cache

    shards = _prepared(tmp_path, _bunch("breast_cancer"), "target")
    cache = tmp_path / "small-disk"
    cache.mkdir()
    monkeypatch.setattr(_xgb_cache, "MIN_FREE_BYTES", shutil.disk_usage(cache).free)
    kind = model_kind("xgboost", {**FAST, "external_memory": True, "cache_dir": str(cache)})
    with pytest.raises(TrainError) as caught:
        fit_model(kind, shards, FitContext(out_dir=tmp_path / "m", seed=0, tmp_dir=tmp_path))
    message = f"{caught.value}"
    assert str(cache) in message and "needs about" in message and "bytes) free" in message
    assert "train.options.cache_dir" in caught.value.hint and "free space" in caught.value.hint
    assert list(cache.iterdir()) == []  # XGBoost was never called
    # in memory (auto on small data) needs no cache: the same project trains
    fit_model(model_kind("xgboost", {**FAST, "cache_dir": str(cache)}), shards,
              FitContext(out_dir=tmp_path / "m2", seed=0, tmp_dir=tmp_path))
    run = cli("run", "--set", "train.model=xgboost", "--set", "train.options.external_memory=true",
              "--set", f"train.options.cache_dir={cache}", "--set", "train.options.n_estimators=5",
              cwd=project.root)
    assert run.exit_code != 0 and "Traceback" not in run.stderr
    assert "external-memory cache needs about" in run.stderr and "cache_dir" in run.stderr
    # a cache_dir that cannot be a folder names the option
    (tmp_path / "a-file").write_text("x")
    bad = model_kind("xgboost", {**FAST, "external_memory": True, "cache_dir": str(tmp_path / "a-file")})
    with pytest.raises(TrainError, match=r"train\.options\.cache_dir: cannot write XGBoost's cache in .*a-file"):
        fit_model(bad, shards, FitContext(out_dir=tmp_path / "m3", seed=0, tmp_dir=tmp_path))


@_lib("xgboost")
def test_a_relative_cache_dir_is_the_projects_folder_also_when_reproduce_runs_a_code_snapshot(project, cli):
    """`train.options.cache_dir: cache/xgb` is relative to the project. `blase reproduce` of a
    run whose scripts have changed since runs a temporary copy of the run's code; the cache
    still goes to the project's cache/xgb, not into that copy."""
    cache = project.root / "cache" / "xgb"
    options = ["--set", "train.model=xgboost", "--set", "train.options.external_memory=true",
               "--set", "train.options.cache_dir=cache/xgb", "--set", "train.options.n_estimators=5"]
    run = cli("run", *options, "--json", cwd=project.root)
    assert run.exit_code == 0, run.stderr
    assert cache.is_dir() and list(cache.iterdir()) == []  # made, used, cleaned up
    shutil.rmtree(project.root / "cache")
    script = project.root / "scripts" / "transforms.py"
    script.write_text(script.read_text() + "\n\ndef unused(batch):\n    return batch\n")
    first = json.loads(run.stdout)
    again = cli("reproduce", first.get("run_id") or first["id"], "--json", cwd=project.root)
    assert again.exit_code == 0, again.stderr
    assert cache.is_dir() and list(cache.iterdir()) == []
    assert not list((project.root / ".blase" / "tmp").glob("code-*"))  # the snapshot's copy is gone


@_lib("xgboost")
def test_xgboost_reads_a_split_that_is_one_batch_from_the_shards_once(tmp_path, monkeypatch):
    """XGBoost walks its DataIter three times for a training matrix (shape, sketch, pages) and
    twice for val: a split that fits in one batch is expanded from the shards once."""
    import xgboost as xgb

    from blase.contrib.xgboost import ShardIter

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(3000, 4)), columns=list("abcd")).assign(y=rng.integers(0, 2, 3000))
    shards = _prepared(tmp_path, frame, "y")
    reads: list[str] = []
    real = TrainingData.chunks

    def counted(self, split, rows=65_536):
        reads.append(split)  # once per pass over the split
        return real(self, split, rows)

    monkeypatch.setattr(TrainingData, "chunks", counted)
    fit_model(model_kind("xgboost", {**FAST, "external_memory": True}), shards,
              FitContext(out_dir=tmp_path / "m", seed=0))
    assert sorted(reads) == ["train", "val"]
    data = TrainingData(shards)
    for batch_bytes, passes in ((64 << 20, 1), (1, 3)):  # 1 byte: batches of 1,024 of ~2,100 rows
        reads.clear()
        it = ShardIter(data, "train", str(tmp_path / f"c{batch_bytes}"), batch_bytes=batch_bytes)
        matrix = xgb.ExtMemQuantileDMatrix(it, max_bin=256)
        it.release()
        assert reads == ["train"] * passes and matrix.num_row() == data.rows("train")
