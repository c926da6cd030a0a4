"""End to end: raw CSV -> extract -> transform -> prepare -> train -> evaluate -> deploy -> predict.

Runs on the bundled Palmer penguins data (real measurements, with NAs and categories).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from blase.pipeline import STEPS, Pipeline, PipelineError
from blase.track import load_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One full pipeline run on the penguins project (shared by the tests of this module)."""
    from blase.scaffold import create_project

    project = create_project(tmp_path_factory.mktemp("pipeline") / "proj")
    result = Pipeline(project, overrides=["train.epochs=40"]).run()
    return project, result


def test_full_pipeline_beats_the_baseline_and_records_every_step(trained):
    project, result = trained
    assert result.status == "finished"
    assert list(result.steps) == list(STEPS)
    evaluation = result.steps["evaluate"].details
    assert evaluation["metrics"]["accuracy"] > evaluation["baseline"]["accuracy"] + 0.3
    run = load_run(result.run_id, [project.root])
    assert run.status == "finished"
    assert run.kind == "pipeline"
    steps = [e["data"]["step"] for e in run.event_list if e.get("event") == "step"]
    assert steps == list(STEPS)
    assert run.params["train.epochs"] == 40  # the --set override is recorded
    assert run.params["run.overrides"] == {"train.epochs": 40}
    extract = result.steps["extract"]
    assert extract.rows_in == extract.rows_out + extract.rows_rejected == 344
    assert "config" in run.hashes and "environment" in run.hashes
    package = result.steps["deploy"].details
    assert package["promoted"] is True and package["version"] == "v1"


def test_predict_on_raw_test_rows_matches_evaluate(trained, blase_exe):
    project, result = trained
    predictions = pq.read_table(result.steps["evaluate"].output.predictions_file).to_pandas()
    raw = pacsv.read_csv(project.root / "data" / "penguins.csv").to_pandas()
    test_rows = raw.iloc[predictions["row_id"].to_numpy()]
    new_data = project.root / "data" / "new.csv"
    test_rows.drop(columns=["species"]).to_csv(new_data, index=False, na_rep="NA")

    out = project.root / "outputs" / "new.parquet"
    r = blase_exe("predict", "proj", "data/new.csv", "--out", str(out), "--json", cwd=project.root)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["rows"] == len(test_rows)
    got = pq.read_table(out).to_pandas()
    assert got["prediction"].tolist() == predictions["prediction"].tolist()
    prob_cols = [c for c in predictions.columns if c.startswith("prob_")]
    np.testing.assert_allclose(got[prob_cols].to_numpy(), predictions[prob_cols].to_numpy(), atol=1e-5)


def test_predict_refuses_a_missing_column(trained, blase_exe):
    project, _ = trained
    raw = pacsv.read_csv(project.root / "data" / "penguins.csv").to_pandas()
    bad = project.root / "data" / "bad.csv"
    raw.drop(columns=["species", "bill_depth_mm"]).head(5).to_csv(bad, index=False)
    out = project.root / "outputs" / "bad.parquet"
    r = blase_exe("predict", "proj", "data/bad.csv", "--out", str(out), cwd=project.root)
    assert r.exit_code == 1
    assert "missing column(s) 'bill_depth_mm'" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_predict_refuses_to_overwrite_an_existing_out_without_force(trained, cli):
    project, _ = trained
    out = project.root / "outputs" / "kept.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("my earlier predictions\n")
    r = cli("predict", "proj", "data/penguins.csv", "--out", str(out), cwd=project.root)
    assert r.exit_code == 1
    assert "already exists" in r.stderr and "--force" in r.stderr
    assert out.read_text() == "my earlier predictions\n"

    r = cli("predict", "proj", "data/penguins.csv", "--out", str(out), "--force", cwd=project.root)
    assert r.exit_code == 0, r.stderr
    assert len(pacsv.read_csv(out)) == 344


def test_a_failed_step_can_be_resumed(project):
    cfg = project.config_path
    original = cfg.read_text()
    cfg.write_text(original.replace("model: mlp", "model: scripts/model.py:build_model"))
    with pytest.raises(Exception, match=r"scripts/model\.py"):
        Pipeline(project, overrides=["train.epochs=2"]).run()
    failed = load_run("latest", [project.root])
    assert failed.status == "failed"
    assert any(e.get("event") == "step_failed" and e["data"]["step"] == "train" for e in failed.event_list)

    cfg.write_text(original)  # resume keeps the run's recorded config: a --set on top fixes it
    resumed = Pipeline(project, overrides=["train.model=mlp"]).run(resume=failed.id)
    assert resumed.reused == {s: failed.id for s in ("extract", "transform", "prepare")}
    assert list(resumed.steps) == ["train", "evaluate", "deploy"]
    record = load_run(resumed.run_id, [project.root])
    assert record.parent == failed.id
    assert record.params["train.model"] == "mlp" and record.params["train.epochs"] == 2  # the run's --set


def test_unknown_step_and_bad_override(project):
    with pytest.raises(PipelineError, match="did you mean 'train'"):
        Pipeline(project).run(from_step="trian")
    from blase.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train\.epochs"):
        Pipeline(project, overrides=["train.epochs=zero"])


MODEL_THAT_IS_INTERRUPTED = '''
from pathlib import Path

import torch

FLAG = Path(__file__).with_name("interrupt.flag")


class Net(torch.nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.lin = torch.nn.Linear(n_features, n_outputs)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 12 and FLAG.exists():  # a person presses Ctrl-C in epoch 3 or so
            FLAG.unlink()
            raise KeyboardInterrupt
        return self.lin(x)


def build_model(n_features, n_outputs, task):
    return Net(n_features, n_outputs)
'''


def test_ctrl_c_during_training_resumes_from_the_last_checkpoint(project):
    (project.scripts_dir / "model.py").write_text(MODEL_THAT_IS_INTERRUPTED)
    (project.scripts_dir / "interrupt.flag").touch()
    cfg = project.config_path
    cfg.write_text(cfg.read_text().replace("model: mlp", "model: scripts/model.py:build_model"))
    with pytest.raises(KeyboardInterrupt):
        Pipeline(project, overrides=["train.epochs=6"]).run()
    stopped = load_run("latest", [project.root])
    assert stopped.status == "interrupted"

    resumed = Pipeline(project, overrides=["train.epochs=6"]).run(resume=stopped.id)
    train = resumed.steps["train"].details
    assert train["resumed_from_run"] == stopped.id
    assert train["resumed_from_epoch"] >= 1
    assert resumed.steps["evaluate"].details["metrics"]["accuracy"] > 0
