"""blase sweep: a grid of configurations as separate tracked runs sharing the cached data steps."""

from __future__ import annotations

import pytest

from blase.sweep import SweepError, grid, parse_sweep
from blase.track import list_runs, load_run


def test_grid_splits_values_on_top_level_commas_and_samples_reproducibly():
    axes = parse_sweep(["train.lr=0.001,0.01,0.1", "train.hidden=[32],[64,32]"])
    assert axes == {"train.lr": ["0.001", "0.01", "0.1"], "train.hidden": ["[32]", "[64,32]"]}
    combos = grid(axes)
    assert len(combos) == 6 and combos[1] == {"train.lr": "0.001", "train.hidden": "[64,32]"}
    assert grid(axes, sample=3, seed=1) == grid(axes, sample=3, seed=1)
    assert len(grid(axes, sample=3, seed=1)) == 3 and grid(axes, sample=99) == combos
    with pytest.raises(SweepError, match="is not KEY=VALUE"):
        parse_sweep(["train.lr"])
    with pytest.raises(SweepError, match=r"names 'train\.lr' twice"):
        parse_sweep(["train.lr=1", "train.lr=2"])


@pytest.mark.slow
def test_a_sweep_of_four_runs_in_a_pool_shares_the_data_steps(project, cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    res = cli("sweep", "--set", "train.lr=0.01,0.05", "--set", "train.hidden=[8],[16,8]", "--set", "train.epochs=2",
              "--set", "evaluate.plots=false", "--parallel", "2", cwd=project.root)
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "4 run(s)" in res.stdout and "test.accuracy" in res.stdout and "train.hidden" in res.stdout
    runs = [r for r in list_runs([project.root]) if r.tags.get("sweep")]
    assert len(runs) == 4 and all(r.status == "finished" for r in runs)
    assert {(r.params.get("train.lr"), str(r.params.get("train.hidden"))) for r in runs} == {
        (0.01, "[8]"), (0.01, "[16, 8]"), (0.05, "[8]"), (0.05, "[16, 8]")}
    ran_data = 0
    for run in runs:
        hits = {e["data"]["step"]: e["data"]["hit"] for e in load_run(run.id, [project.root]).event_list
                if e.get("event") == "step_cache"}
        ran_data += not hits["extract"]
        assert hits["train"] is False
    assert ran_data == 1, "the data steps ran once, in the first run; the others took them from the cache"
    assert all("test.accuracy" in r.metrics for r in runs)
    assert not (project.models_dir / project.name).exists()  # a sweep deploys nothing


def test_a_bad_value_fails_before_any_run(project, cli):
    res = cli("sweep", "--set", "train.lr=0.01,fast", cwd=project.root)
    assert res.exit_code == 1 and "Traceback" not in res.stdout + res.stderr
    assert list_runs([project.root]) == []


@pytest.mark.slow
def test_the_ray_executor_runs_the_configurations_as_ray_tasks(project):
    ray = pytest.importorskip("ray", reason="the ray extra (pip install 'blase[ray]')")
    from blase.sweep import sweep

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = sweep(project, ["train.lr=0.01,0.05,0.1", "train.epochs=1", "evaluate.plots=false"],
                       executor="ray", parallel=2)
    finally:
        ray.shutdown()
    assert [r.status for r in result.runs] == ["finished"] * 3
    runs = [r for r in list_runs([project.root]) if r.tags.get("sweep") == result.sweep_id]
    assert sorted(r.params["train.lr"] for r in runs) == [0.01, 0.05, 0.1]
    assert all({"extract", "transform", "prepare"} <= set(r.cached) for r in result.runs[1:])
