"""The compatibility suite every project template passes (``blase create --template NAME``).

It is parametrised over :data:`blase.scaffold.PROJECT_TEMPLATES`, so a registered template is
checked without a line here: create, check, run, inspect (Track and Hash cover every step),
reproduce --verify, diff, deploy, predict on the template's raw new data, monitor, update.
Each command is its own test id (``test_predict[images]``), as scikit-learn's
``parametrize_with_checks`` does, so a template author sees every broken command at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from blase.project import Project
from blase.scaffold import PROJECT_TEMPLATES

pytestmark = pytest.mark.slow

#: Fewer epochs than the templates' own: the suite checks the commands, not the accuracy.
FAST = ["train.epochs=4"]


@dataclass
class Made:
    template: str
    root: Path
    run_id: str
    model: str
    new_data: str


@pytest.fixture(scope="module", params=sorted(PROJECT_TEMPLATES))
def made(request, tmp_path_factory) -> Made:
    """A project of the template, created and run once through the whole pipeline."""
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    name = request.param
    project = create_project(tmp_path_factory.mktemp(name) / f"{name}-proj", template=name)
    result = Pipeline(project, overrides=FAST).run()
    return Made(name, project.root, result.run_id, project.config().deploy.name or project.name,
                PROJECT_TEMPLATES[name].new_data)


def _json(result) -> dict:
    assert result.exit_code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_the_template_writes_its_example_data_and_scripts(made):
    template = PROJECT_TEMPLATES[made.template]
    assert (made.root / "blase.yaml").is_file() and (made.root / "README.md").is_file()
    for script in template.scripts:
        assert (made.root / "scripts" / script).stat().st_size > 0
    assert (made.root / template.new_data).exists()


def test_check(made, cli):
    checked = cli("check", cwd=made.root)
    assert checked.exit_code == 0, checked.stdout + checked.stderr


def test_inspect_shows_every_step_tracked_and_hashed(made, cli):
    lineage = _json(cli("inspect", made.run_id, "--lineage", "--json", cwd=made.root))
    steps = {s["step"]: s for s in lineage["steps"]}
    assert {"extract", "transform", "prepare", "train", "evaluate"} <= set(steps)
    assert lineage["deployed"], "the run deployed a model version"
    for name, step in steps.items():
        assert step["key"], f"step {name} has no cache key"
    assert steps["extract"]["inputs"], "the raw files' content hashes are recorded"
    run = _json(cli("inspect", made.run_id, "--json", cwd=made.root))
    assert run["status"] == "finished"
    assert any(k.startswith("test") for k in run["metrics"]), run["metrics"]


def test_reproduce_verify_is_bit_for_bit_and_diff_reads_both(made, cli):
    again = _json(cli("reproduce", made.run_id, "--verify", "--json", cwd=made.root))
    assert again["identical"] and again["weights_identical"], again
    diff = cli("diff", made.run_id, again["run_id"], cwd=made.root)
    assert diff.exit_code == 0, diff.stderr


def test_deploy_makes_a_version_and_models_lists_it(made, cli):
    deployed = cli("deploy", made.run_id, "--json", cwd=made.root)
    assert deployed.exit_code == 0, deployed.stderr
    models = _json(cli("models", "--json", cwd=made.root))
    assert made.model in json.dumps(models)


def test_predict_on_raw_new_data(made, cli, tmp_path):
    out = tmp_path / "scores.parquet"
    predicted = cli("predict", made.model, made.new_data, "--out", str(out), cwd=made.root)
    assert predicted.exit_code == 0, predicted.stderr
    table = pq.read_table(out)
    assert table.num_rows > 0 and "prediction" in table.column_names
    key = Project(made.root).config().data.key
    if key:  # each prediction names its input (an image's path), and the key is not "ignored"
        assert key in table.column_names and f"does not use: {key}" not in predicted.stdout + predicted.stderr
    if "truth" in table.column_names:  # the raw data is labelled: the model beats the majority class
        truth, pred = table["truth"].to_pylist(), table["prediction"].to_pylist()
        accuracy = sum(t == p for t, p in zip(truth, pred, strict=True)) / len(truth)
        majority = max(truth.count(t) for t in set(truth)) / len(truth)
        assert accuracy > majority + 0.05, (accuracy, majority)


def test_monitor_the_new_data(made, cli):
    report = _json(cli("monitor", made.model, made.new_data, "--json", cwd=made.root))
    assert report["rows"] > 0 and report["columns"]
    assert all("drifted" in c for c in report["columns"])


def test_update_trains_a_candidate_on_the_new_data(made, cli):
    updated = _json(cli("update", made.model, made.new_data, "--json", cwd=made.root))
    assert updated["holdout"]["candidate"] and updated["holdout"]["current"], updated
