"""Update: a candidate trained on shifted data wins and is promoted; useless data is not
promoted; a failed update leaves the current model current and is recorded in Track."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from blase.deploy import current_version, resolve_model
from blase.update import Update, UpdateError
from tests.test_monitor import make_rows, shared_project


@pytest.fixture(scope="module")
def deployed(request, tmp_path_factory):
    project, result = shared_project(request, tmp_path_factory)
    new = make_rows(900, 1, lo=3.0, hi=8.0)  # the same rule where the model never saw data
    new.to_csv(project.root / "data" / "new.csv", index=False)
    junk = new.copy()
    junk["y"] = np.random.default_rng(5).permutation(junk["y"].to_numpy())
    junk.to_csv(project.root / "data" / "junk.csv", index=False)
    return project, result


def test_shifted_data_gives_a_better_candidate_that_is_promoted(deployed):
    project, result = deployed
    out = Update("syn@v1", project=project).run("data/new.csv", promote_if_better=True)
    assert out.wins and out.promoted
    assert current_version(project, "syn") == out.candidate_version
    assert out.holdout["candidate"]["accuracy"] > out.holdout["current"]["accuracy"] + 0.1
    assert out.rows["replay"] > 0 and out.original_test  # replay and the original test set were used
    package = resolve_model(project, f"syn@{out.candidate_version}")
    assert package.info["lineage"]["parent_version"] == "v1"
    assert package.info["lineage"]["update_run_id"] == out.run_id
    assert (package.path / "reference_profile.json").is_file()
    from blase.track import load_run

    run = load_run(out.run_id, [project.root])
    assert run.kind == "update" and run.parent == result.run_id and run.status == "finished"


def test_useless_data_is_not_promoted_via_monitor_act(deployed, cli):
    """`blase monitor --act` runs the update when a trigger fires; shuffled labels never win."""
    project, _ = deployed
    before = current_version(project, "syn")
    r = cli("monitor", "syn@v1", "data/junk.csv", "--act", "--promote-if-better", "--json",
            "--project", str(project.root))
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["retrain"] and {"drift_share", "metric_drop"} <= set(out["fired"])
    update = out["update"]
    assert update is not None and not update["promoted"] and update["candidate_version"] not in (None, before)
    assert current_version(project, "syn") == before
    assert any("forgets too much" in reason or "does not win" in reason for reason in update["reasons"])


def test_an_update_that_promotes_nothing_does_not_offer_to_undo_a_promotion(deployed, cli):
    project, _ = deployed
    before = current_version(project, "syn")
    r = cli("update", "syn", "data/junk.csv", "--epochs", "2", "--project", str(project.root))
    assert r.exit_code == 0, r.stderr
    assert current_version(project, "syn") == before
    assert "kept as a candidate" in r.stdout
    assert "rollback" not in r.stdout
    candidate = re.search(r"candidate (v\d+)", r.stdout).group(1)
    assert f"`blase promote syn {candidate}`" in r.stdout


def test_failed_training_keeps_the_current_model(deployed):
    """A learning rate of 1e30 makes the fine-tuning loss non-finite in its first epoch: a
    real training failure, which leaves the current model current and is recorded."""
    from blase.track import list_runs, load_run

    project, _ = deployed
    before = current_version(project, "syn")
    config = project.config_path.read_text()
    assert "lr: 0.01," in config
    project.config_path.write_text(config.replace("lr: 0.01,", "lr: 1.0e+30,"))
    try:
        with pytest.raises(UpdateError, match=rf"TrainError: the loss became nan .*; syn {before} stays current") as info:
            Update("syn", project=project).run("data/new.csv", promote_if_better=True)
    finally:
        project.config_path.write_text(config)
    assert "lower train.lr" in info.value.hint
    assert current_version(project, "syn") == before
    failed = list_runs([project.root], where="kind = 'update'", status="failed")
    assert failed
    events = [e.get("event") for e in load_run(failed[0].id, [project.root]).event_list]
    assert "update_failed" in events


def test_unlabelled_data_is_refused(deployed, tmp_path, cli):
    project, _ = deployed
    path = tmp_path / "nolabel.csv"
    make_rows(50, 2).drop(columns=["y"]).to_csv(path, index=False)
    with pytest.raises(UpdateError, match="no label column 'y'"):
        Update("syn", project=project).run(path)
    r = cli("update", "syn", str(path), "--project", str(project.root))
    assert r.exit_code != 0 and "no label column 'y'" in (r.stdout + r.stderr)


def test_prepare_fixed_classes_keep_codes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from blase.errors import PrepareError
    from blase.prepare import Prepare, read_manifest

    pq.write_table(pa.table({"f": [1.0, 2.0, 3.0, 4.0], "y": ["b", "c", "b", "c"]}), tmp_path / "d.parquet")
    Prepare("y", split=(1.0, 0.0, 0.0), task="multiclass", classes=["a", "b", "c"]).run(
        tmp_path / "d.parquet", tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    assert manifest.label_mapping == {"a": 0, "b": 1, "c": 2}
    y = np.load(tmp_path / "out" / manifest.shards["train"][0].labels_file)
    assert sorted(set(y.tolist())) == [1, 2]
    with pytest.raises(PrepareError, match="not among the fixed classes"):
        Prepare("y", split=(1.0, 0.0, 0.0), task="multiclass", classes=["a", "b"]).run(
            tmp_path / "d.parquet", tmp_path / "out2")
