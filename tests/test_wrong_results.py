"""Wrong results and crashes found on data Blase did not write (issue [1/7] part 3).

Each test builds a real project with `blase create`, writes a small CSV, and drives the real CLI.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blase.scaffold import create_project


def _config(label: str, transform: str, *, source: str = "data/d.csv", epochs: int = 30,
            extra: str = "") -> str:
    return (
        "project: p\nseed: 42\n"
        f"data:\n  source: {source}\n  label: {label}\n"
        f"transform:\n{transform}"
        "prepare:\n  split: {train: 0.7, val: 0.15, test: 0.15}\n"
        f"train:\n  model: mlp\n  hidden: [8]\n  epochs: {epochs}\n  lr: 0.05\n"
        f"{extra}"
    )


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _project(tmp_path: Path, config: str) -> Path:
    root = create_project(tmp_path / "p").root
    (root / "blase.yaml").write_text(config)
    return root


def _categorical_rows(n: int = 240) -> list[list[object]]:
    rng = random.Random(0)
    rows = []
    for _ in range(n):
        color = rng.choice(["red", "green", "blue"])
        rows.append([color, rng.choice(["square", "circle"]), "hit" if color == "red" else "miss"])
    return rows


def test_every_feature_categorical_prepares_trains_and_predicts(tmp_path, cli):
    """One-hot only (no dense column left): prepare used to crash in memoryview.cast."""
    root = _project(tmp_path, _config("outcome", "  - op: onehot\n", epochs=60))
    _write_csv(root / "data" / "d.csv", ["color", "shape", "outcome"], _categorical_rows())
    r = cli("run", cwd=root)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr

    new = _write_csv(tmp_path / "new.csv", ["color", "shape"], [["red", "circle"], ["blue", "square"]])
    out = tmp_path / "pred.csv"
    r = cli("predict", "p", str(new), "--out", str(out), cwd=root)
    assert r.exit_code == 0, r.stdout + r.stderr
    with out.open() as f:
        preds = [row["prediction"] for row in csv.DictReader(f)]
    assert preds == ["hit", "miss"]  # the one-hot codes reach the model


def test_from_train_refuses_a_data_override_it_would_not_use(project, cli):
    """`--from train --set data.source=X` reused the old extract yet recorded X as the source."""
    r = cli("run", "--set", "train.epochs=2", cwd=project.root)
    assert r.exit_code == 0, r.stdout + r.stderr
    runs_before = sorted(p.name for p in (project.root / "runs").iterdir())
    other = project.root / "data" / "other.csv"
    other.write_text((project.root / "data" / "penguins.csv").read_text())

    r = cli("run", "--from", "train", "--set", "data.source=data/other.csv", cwd=project.root)
    assert r.exit_code == 1
    assert "--set data.source=data/other.csv changes what extract reads" in r.stderr
    assert "`blase run --set data.source=data/other.csv` (without --from)" in r.stderr
    assert sorted(p.name for p in (project.root / "runs").iterdir()) == runs_before  # nothing recorded

    r = cli("run", "--from", "train", "--set", "train.epochs=1", cwd=project.root)  # train keys are fine
    assert r.exit_code == 0, r.stdout + r.stderr


def test_a_filter_on_the_label_is_training_only(project, cli):
    """The null-label hint suggests `filter: label IS NOT NULL`; predict data has no label."""
    cfg = project.config_path
    cfg.write_text(cfg.read_text().replace(
        "transform:             # applied in order, fitted on the data\n",
        "transform:             # applied in order, fitted on the data\n"
        "  - op: filter\n    where: species IS NOT NULL\n"
        "  - op: filter\n    where: island <> 'Biscoe'\n"))
    r = cli("run", "--set", "train.epochs=3", "--json", cwd=project.root)
    assert r.exit_code == 0, r.stdout + r.stderr

    rows = list(csv.DictReader((project.root / "data" / "penguins.csv").open()))[::10]
    new = project.root / "data" / "new.csv"
    with new.open("w", newline="") as f:
        w = csv.DictWriter(f, [c for c in rows[0] if c != "species"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    out = project.root / "outputs" / "new.csv"
    r = cli("predict", "proj", str(new), "--out", str(out), cwd=project.root)
    assert r.exit_code == 0, r.stdout + r.stderr
    with out.open() as f:
        got = list(csv.DictReader(f))
    # the label filter is skipped (no label here); the filter on a feature still applies
    assert len(got) == sum(row["island"] != "Biscoe" for row in rows) > 0


def test_predict_fills_a_missing_value_where_training_had_none(tmp_path, cli):
    """`schema --write` imputes only the columns with nulls; new data can miss any of them."""
    transform = ("  - op: impute\n    strategy: mean\n    columns: [a]\n"
                 "  - op: scale\n    method: standard\n    columns: [a, b]\n")
    root = _project(tmp_path, _config("y", transform, epochs=5))
    rng = random.Random(1)
    rows = []
    for i in range(300):
        a, b = rng.random(), rng.random()
        rows.append(["" if i % 17 == 0 else round(a, 3), round(b, 3), round(a + 2 * b, 3)])
    _write_csv(root / "data" / "d.csv", ["a", "b", "y"], rows)
    r = cli("run", cwd=root)
    assert r.exit_code == 0, r.stdout + r.stderr
    mean_b = sum(row[1] for row in rows) / len(rows)

    new = _write_csv(tmp_path / "new.csv", ["a", "b"], [[0.5, ""], ["", 0.2], [0.1, 0.3]])
    same = _write_csv(tmp_path / "same.csv", ["a", "b"], [[0.5, mean_b], ["", 0.2], [0.1, 0.3]])
    outs = []
    for data in (new, same):
        out = tmp_path / f"{data.stem}.pred.csv"
        r = cli("predict", "p", str(data), "--out", str(out), cwd=root)
        assert r.exit_code == 0, r.stdout + r.stderr
        with out.open() as f:
            outs.append([float(row["prediction"]) for row in csv.DictReader(f)])
        if data is new:
            assert "1 missing value(s) of column 'b' filled with its training mean" in " ".join(r.stdout.split())
    assert outs[0] == pytest.approx(outs[1], abs=1e-4)  # the fill is the training mean of b


def _blase_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("blase")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "blase"]


def _last_run(root: Path) -> str:
    from blase.track import list_runs

    return list_runs([root])[0].id


def test_deploys_at_once_get_their_own_versions_and_gc_clears_a_killed_one(project, cli):
    """Two deploys used to pick the same vN: `Errno 39 Directory not empty .vN.tmp -> vN`."""
    from blase.deploy import load_package

    r = cli("run", "--set", "train.epochs=2", cwd=project.root)
    assert r.exit_code == 0, r.stdout + r.stderr
    run_id = _last_run(project.root)
    procs = [subprocess.Popen([*_blase_cmd(), "deploy", run_id], cwd=project.root, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    folder = project.root / "models" / "proj"
    assert sorted(p.name for p in folder.glob("v*")) == ["v1", "v2", "v3", "v4"]
    assert sorted(load_package(folder / v).version for v in ("v2", "v3", "v4")) == ["v2", "v3", "v4"]

    # a deploy killed while it writes leaves its staging folder; gc removes it, and only it
    killed = subprocess.Popen([*_blase_cmd(), "deploy", run_id], cwd=project.root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(folder.glob(".v*.tmp-*")) and time.time() < deadline and killed.poll() is None:
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    left = list(folder.glob(".v5.tmp-*"))
    assert left, "the deploy finished before it could be killed"
    sleeper = subprocess.Popen(["sleep", "60"])  # a deploy still running keeps its folder
    try:
        busy = folder / f".v6.tmp-{sleeper.pid}-0a1b2c3d"
        busy.mkdir()
        r = cli("deploy", run_id, cwd=project.root)  # the next version skips the busy one
        assert r.exit_code == 0, r.stdout + r.stderr
        assert "deployed proj v7" in r.stdout
        r = cli("gc", "--json", cwd=project.root)
        assert r.exit_code == 0, r.stdout + r.stderr
        assert not any(p.exists() for p in left) and busy.is_dir()
        assert str(left[0]) in json.loads(r.stdout)["temporary"]
    finally:
        sleeper.kill()
        sleeper.wait()
    r = cli("gc", cwd=project.root)
    assert not busy.exists()
    assert sorted(p.name for p in folder.glob("v*"))[-1] == "v7"


def test_a_run_deploys_only_when_first_asked_or_better(project, cli):
    """Every `blase run` used to add a model version, so gc could free nothing."""
    folder = project.root / "models" / "proj"

    def versions() -> list[str]:
        return sorted((p.name for p in folder.glob("v*")), key=lambda v: int(v[1:]))

    r = cli("run", "--set", "train.epochs=2", cwd=project.root)
    assert r.exit_code == 0, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    assert "deployed proj v1" in out and "(current): first version of proj" in out

    r = cli("run", "--no-cache", "--set", "train.epochs=2", cwd=project.root)  # the same model again
    assert r.exit_code == 0, r.stdout + r.stderr
    same_run = _last_run(project.root)
    out = " ".join(r.stdout.split())
    assert "not deployed: test accuracy" in out and "does not beat" in out and "of proj v1 (current)" in out
    assert f"`blase deploy {same_run}`" in out and versions() == ["v1"]

    r = cli("run", "--no-cache", "--set", "train.epochs=2", "--set", "deploy.always=true", cwd=project.root)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "deployed proj v2" in r.stdout and "deploy.always is set" in r.stdout
    r = cli("deploy", same_run, cwd=project.root)  # asked for: always deploys
    assert r.exit_code == 0, r.stdout + r.stderr
    assert versions() == ["v1", "v2", "v3"]

    r = cli("run", "--set", "train.epochs=40", cwd=project.root)  # a better model
    assert r.exit_code == 0, r.stdout + r.stderr
    out = " ".join(r.stdout.split())
    assert "deployed proj v4" in out and "beats" in out and "`blase promote proj v4`" in out
    assert (folder / "current").read_text().strip() == "v1" and versions()[-1] == "v4"

    r = cli("inspect", same_run, "--json", cwd=project.root)  # the reason is in the run's record
    assert "does not beat" in r.stdout


def test_resume_after_sigkill_uses_the_runs_config_and_its_checkpoint(project, cli):
    """`--resume` dropped the run's --set overrides, and after SIGKILL restarted from epoch 0."""
    from blase.track import load_run

    root = project.root
    cmd = [*_blase_cmd(), "run", "--set", "train.epochs=300", "--set", "train.lr=0.002", "--set",
           "train.batch_size=16"]
    killed = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    try:
        while time.time() < deadline and killed.poll() is None:
            if any(p.stat().st_size for p in (root / ".blase").glob("**/checkpoint/state.json")):
                time.sleep(1.0)  # a few epochs more
                break
            time.sleep(0.05)
        assert killed.poll() is None, "training finished before it could be killed"
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    run_id = _last_run(root)

    r = cli("run", "--resume", run_id, "--to", "train", "--json", cwd=root)
    assert r.exit_code == 0, r.stdout + r.stderr
    resumed = load_run(_last_run(root), [root])
    assert resumed.parent == run_id and resumed.status == "finished"
    assert resumed.params["train.epochs"] == 300 and resumed.params["train.lr"] == 0.002
    train = next(e["data"] for e in resumed.event_list if e.get("event") == "step" and e["data"]["step"] == "train")
    assert train["details"]["resumed_from_epoch"] > 0 and train["details"]["epochs_run"] == 300
    # the interrupted run's checkpoint stays until the run it belongs to is resumed to the end
    assert list((root / ".blase").glob(f"checkpoints/{run_id}/train/checkpoint/state.json"))


def test_a_stray_string_in_a_numeric_column_goes_through_bad_rows(tmp_path, cli):
    """One "12a" in 500 rows turned the column into hundreds of junk one-hot features."""
    config = _config("y", "  - op: scale\n    method: standard\n  - op: onehot\n", epochs=3)
    root = _project(tmp_path, config)
    rng = random.Random(0)
    rows = []
    for i in range(500):
        a, c = rng.random(), rng.random()
        rows.append(["12a" if i == 137 else round(100 * a, 2), "n/a " if i == 300 else rng.randint(0, 9),
                     "x" if i % 7 == 0 else rng.randint(1, 3), "yes" if a + c > 1 else "no"])
    _write_csv(root / "data" / "d.csv", ["a", "c", "k", "y"], rows)

    r = cli("run", cwd=root)  # bad_rows: error (the default) names the row, column and value
    assert r.exit_code == 1
    err = " ".join(r.stderr.split())
    assert "bad row at data/d.csv, line 139, column 'a'" in err and '"12a"' in err, r.stderr
    assert "data.null_values" in err and "internal error" not in err

    r = cli("schema", "data/d.csv", "--json", cwd=root)
    assert r.exit_code == 0, r.stdout + r.stderr
    columns = {c["name"]: c for c in json.loads(r.stdout)["columns"]}
    assert columns["a"]["dtype"] == "DOUBLE" and columns["c"]["dtype"] == "BIGINT"
    assert columns["k"]["dtype"] == "VARCHAR"  # one value in 7 is text: a category column
    assert "1 of 500 sampled values is not a number ('12a')" in " ".join(columns["a"]["warnings"])

    r = cli("run", "--set", "data.bad_rows=quarantine", cwd=root)
    assert r.exit_code == 0, r.stdout + r.stderr
    with (root / "outputs" / "rejects" / "d.csv").open() as f:
        rejected = list(csv.DictReader(f))
    assert [(x["line"], x["column"], x["raw"]) for x in rejected] == [
        ("139", "a", ",".join(map(str, rows[137]))), ("302", "c", ",".join(map(str, rows[300])))]
    features = json.loads((root / "models" / "p" / "v1" / "package.json").read_text())["features"]
    assert "a" in features and "c" in features and "k_x" in features
    assert not [f for f in features if f.startswith(("a_", "c_"))]


def _blase_limited(root: Path, limit: int, *args: str) -> subprocess.CompletedProcess:
    """The real CLI in a process whose files may not grow past ``limit`` bytes (RLIMIT_FSIZE)."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "COLUMNS": "300", "BLASE_PROGRESS": "0"}
    return subprocess.run([*_blase_cmd(), *args], cwd=root, preexec_fn=cap, env=env, text=True,
                          capture_output=True, timeout=300)


def test_file_size_limit_during_extract_prepare_and_deploy_names_the_file(tmp_path, cli):
    """EFBIG (and ENOSPC) used to be 'internal error ... this is a bug in Blase'."""
    root = _project(tmp_path, _config("y", "", epochs=1).replace("transform:\n", "transform: []\n"))
    rng = random.Random(0)
    rows = []
    for _ in range(20000):
        xs = [rng.randint(0, 9) for _ in range(20)]
        rows.append([*xs, "yes" if sum(xs) > 90 else "no"])
    _write_csv(root / "data" / "d.csv", [f"x{i}" for i in range(20)] + ["y"], rows)
    steps = root / ".blase" / "store" / "steps"

    # the extracted Parquet is ~180 KB, the train shard ~1.1 MB, the reference profile ~60 KB
    for limit, step, what in ((100_000, "extract", "cannot write the extracted data into .blase/store/steps/"),
                              (600_000, "prepare", "cannot write shards into /")):
        p = _blase_limited(root, limit, "run")
        err = " ".join(p.stderr.split())
        assert p.returncode == 1, p.stdout + p.stderr
        assert f"failed {step}" in p.stdout + p.stderr and what in err, p.stdout + p.stderr
        assert "file too large" in err and "ulimit -f" in err and "internal error" not in err
        assert not list(steps.glob(".tmp-*"))  # nothing half-written left behind

    r = cli("run", "--to", "evaluate", cwd=root)
    assert r.exit_code == 0, r.stdout + r.stderr
    run_id = _last_run(root)
    p = _blase_limited(root, 20_000, "deploy", run_id)
    err = " ".join(p.stderr.split())
    assert p.returncode == 1 and "cannot write the model package into" in err and "file too large" in err, err
    folder = root / "models" / "p"
    assert not [x.name for x in folder.iterdir() if x.name.startswith(("v", ".v"))]  # no version, no staging
    r = cli("deploy", run_id, cwd=root)  # with room, the same deploy works
    assert r.exit_code == 0 and "deployed p v1" in r.stdout, r.stdout + r.stderr
