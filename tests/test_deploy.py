"""Model packages, promotion and rollback, and `blase predict` on good and bad new data."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from blase.deploy import (
    DeployError,
    current_version,
    deploy_run,
    list_models,
    predict,
    resolve_model,
    rollback,
)
from blase.pipeline import Pipeline
from tests.conftest import pin_mlp


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    from blase.scaffold import create_project

    project = pin_mlp(create_project(tmp_path_factory.mktemp("deploy") / "peng"))
    result = Pipeline(project, overrides=["train.epochs=30"]).run()
    return project, result


def _raw(project):
    return pacsv.read_csv(project.root / "data" / "penguins.csv").to_pandas()


def test_package_holds_everything_predict_needs_and_no_pickle(deployed):
    project, result = deployed
    package = resolve_model(project, "peng")
    files = {p.name for p in package.path.iterdir()}
    assert {"model.safetensors", "model.json", "transform.json", "manifest.json", "package.json",
            "README.md", "model.onnx", "scripts"} <= files
    assert not [p for p in package.path.rglob("*") if p.suffix in (".pkl", ".pt", ".pth", ".pickle")]
    info = json.loads((package.path / "package.json").read_text())
    assert info["lineage"]["run_id"] == result.run_id
    assert info["input_schema"]["bill_length_mm"] == "double"
    assert "species" not in info["input_schema"]
    assert info["onnx"]["exported"] is True and info["onnx"]["max_abs_diff"] < 1e-4
    card = (package.path / "README.md").read_text()
    assert "| accuracy |" in card and result.run_id in card


def test_predict_with_onnx_matches_torch(deployed, tmp_path):
    project, _ = deployed
    data = project.root / "data" / "penguins.csv"
    a = predict(project, "peng", data, tmp_path / "torch.parquet")
    b = predict(project, "peng", data, tmp_path / "onnx.csv", use_onnx=True)
    assert a.rows == b.rows == 344
    ta = pq.read_table(tmp_path / "torch.parquet").to_pandas()
    tb = pacsv.read_csv(tmp_path / "onnx.csv").to_pandas()
    assert ta["prediction"].tolist() == tb["prediction"].tolist()
    np.testing.assert_allclose(ta["prob_Adelie"], tb["prob_Adelie"], atol=1e-5)
    assert "truth" in ta.columns  # the label was present, so it is carried along


def test_promote_and_rollback(deployed):
    project, result = deployed
    assert current_version(project, "peng") == "v1"
    second = deploy_run(project, result.run_id, promote_it=True)
    assert second.version == "v2" and current_version(project, "peng") == "v2"
    (info,) = list_models(project)
    assert info.versions == ["v1", "v2"] and info.current == "v2"
    assert rollback(project, "peng") == ("v2", "v1")
    assert current_version(project, "peng") == "v1"
    with pytest.raises(DeployError, match="no earlier promoted version"):
        rollback(project, "peng")
    assert rollback(project, "peng", to="v2") == ("v1", "v2")
    with pytest.raises(DeployError, match="has no version 'v9'"):
        resolve_model(project, "peng@v9")
    with pytest.raises(DeployError, match="no model named 'nope'"):
        resolve_model(project, "nope")


def test_predict_extra_column_and_new_category(deployed, tmp_path):
    project, _ = deployed
    raw = _raw(project).head(20)
    raw["comment"] = "extra"
    raw.loc[0, "island"] = "Atlantis"  # never seen at fit time
    path = tmp_path / "new.csv"
    raw.to_csv(path, index=False, na_rep="NA")
    result = predict(project, "peng", path, tmp_path / "out.parquet")
    assert result.rows == 20
    notes = " ".join(result.warnings)
    assert "comment" in notes
    assert "island" in notes  # the unseen category is reported, not silent


def test_predict_wrong_type_is_refused(deployed, tmp_path):
    project, _ = deployed
    raw = _raw(project).head(10)
    raw["bill_length_mm"] = "long"
    path = tmp_path / "typed.csv"
    raw.to_csv(path, index=False)
    out = tmp_path / "never.parquet"
    with pytest.raises(DeployError, match="'bill_length_mm' is string but the model was trained on double"):
        predict(project, "peng", path, out)
    assert not out.exists()


def test_cli_models_and_run_json(deployed, cli):
    project, _ = deployed
    r = cli("models", "--json", "--project", str(project.root))
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)[0]["name"] == "peng"
    r = cli("run", "--from", "evaluate", "--to", "evaluate", "--json", "--project", str(project.root))
    assert r.exit_code == 0, r.stderr
    run = json.loads(r.stdout)
    for key in ("id", "name", "status", "started_at", "ended_at", "params", "metrics", "tags", "project"):
        assert key in run
    assert run["status"] == "finished"
    assert run["metrics"]["test.accuracy"] > run["metrics"]["baseline.accuracy"]


def test_predict_fractions_in_an_integer_column_through_a_transform_function(deployed, tmp_path):
    # flipper_length_mm was int64 in training; the template's bill_ratio function passes it on
    project, _ = deployed
    raw = _raw(project).head(20)
    raw["flipper_length_mm"] = raw["flipper_length_mm"].astype("float64")
    raw.loc[1, "flipper_length_mm"] = 186.5
    path = tmp_path / "frac.csv"
    raw.to_csv(path, index=False, na_rep="NA")
    result = predict(project, "peng", path, tmp_path / "frac.parquet")
    assert result.rows == 20
    assert pq.read_table(tmp_path / "frac.parquet").num_rows == 20


def test_a_function_that_returns_another_type_names_the_column(tmp_path):
    import pyarrow as pa

    from blase.errors import TransformError
    from blase.transform import Transform, UserFunction

    (tmp_path / "fn.py").write_text(
        "import pyarrow as pa\n"
        "def tag(batch):\n"
        "    if max(batch['n'].to_pylist()) > 100:\n"
        "        return batch.set_column(0, 'n', pa.array(['big'] * batch.num_rows))\n"
        "    return batch\n"
    )
    t = Transform([UserFunction("fn.py:tag", project_root=tmp_path)], project_root=tmp_path)
    t.fit(pa.table({"n": pa.array([1, 2, 3], pa.int64()), "y": [0, 1, 0]}))
    with pytest.raises(TransformError, match="returned column 'n' as string, but at fit time it was int64"):
        t.apply(pa.table({"n": pa.array([1, 2000], pa.int64()), "y": [0, 1]}))


def test_deploy_latest_is_the_newest_pipeline_run_with_a_model(deployed, tmp_path):
    """A newer run without a model (a note, an assistant session, an evaluate-only run) is not
    what `blase deploy latest` packages."""
    import shutil

    from blase.project import find_project
    from blase.scaffold import create_project
    from blase.track import Track, list_runs, load_run

    project, _ = deployed
    copy = find_project(shutil.copytree(project.root, tmp_path / "peng"))
    newest_pipeline = next(r.id for r in list_runs([copy.root]) if r.kind == "pipeline")  # newest first
    with Track("a note", project=copy) as note:
        note.log_event("note", text="newer than every pipeline run")
    assert load_run("latest", [copy.root]).id == note.run_id
    package = deploy_run(copy, "latest", name="peng")
    assert package.run_id == newest_pipeline
    empty = create_project(tmp_path / "empty")
    with pytest.raises(DeployError, match="no pipeline run has a trained model") as caught:
        deploy_run(empty, "latest")
    assert "blase run" in caught.value.hint
