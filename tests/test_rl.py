"""Reinforcement learning: the `ppo` model kind and the `rl_evaluate` step on real Gymnasium
CartPole-v1 (a few thousand steps), through the `rl` template and the CLI: create, check,
run (every episode a row of the run), inspect, reproduce --verify, diff, deploy, predict on raw
observations, monitor, update; a wrong environment id, an environment that raises in step(),
and resume from the last checkpoint."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

gym = pytest.importorskip("gymnasium")

from blase.contrib._ppo import EnvError, run_episodes  # noqa: E402
from blase.contrib.rl import PPOModel  # noqa: E402
from blase.model import load_trained  # noqa: E402

STEPS = 4000


def _project(cli, tmp_path, **options):
    root = tmp_path / "pole"
    assert cli("create", str(root), "--template", "rl").exit_code == 0
    config = yaml.safe_load((root / "blase.yaml").read_text())
    config["train"]["options"].update({"steps": STEPS, **options})
    config["plugins"][0]["options"]["episodes"] = 5
    (root / "blase.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def _run(cli, root, *args):
    result = cli("run", *args, "--json", cwd=root)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    return out.get("run_id") or out["id"]


def _events(root, run_id, name):
    """The run's events of kind ``name`` as Track wrote them (runs/ID/log.jsonl)."""
    rows = map(json.loads, (root / "runs" / run_id / "log.jsonl").read_text().splitlines())
    return [r["data"] for r in rows if r.get("kind") == "event" and r.get("event") == name]


@pytest.mark.slow
def test_rl_template_through_the_whole_sequence(tmp_path, cli):
    root = _project(cli, tmp_path)
    check = cli("check", cwd=root)
    assert check.exit_code == 0, check.stderr
    run_id = _run(cli, root)
    info = json.loads(cli("inspect", run_id, "--json", cwd=root).stdout)
    metrics = info["metrics"]
    # N seeded evaluation episodes against a random policy on the same seeds
    assert metrics["rl.episodes"] == 5
    assert metrics["rl.return_mean"] > 2 * metrics["rl.random_return_mean"] > 0
    evaluation = json.loads(next((root / "outputs").glob(f"{run_id}/rl_evaluation.json")).read_text())
    assert [e["seed"] for e in evaluation["policy"]] == [e["seed"] for e in evaluation["random"]]
    assert (root / "outputs" / run_id / "learning_curve.png").stat().st_size > 10_000
    # every training episode is a row of the run: return, length, time, seed
    episodes = _events(root, run_id, "episode")
    assert info["events"]["episode"] == len(episodes) > 10
    assert sum(e["length"] for e in episodes) <= STEPS
    assert [e["seed"] for e in episodes] == [42 + e["episode"] for e in episodes]
    assert all(e["seconds"] > 0 and e["return"] == e["length"] for e in episodes)  # CartPole: +1 a step
    assert len(info["metric_history"]["episode_return"]) == len(episodes)

    verify = cli("reproduce", run_id, "--verify", cwd=root)
    assert verify.exit_code == 0 and "bit for bit" in verify.stdout, verify.stdout
    other = _run(cli, root, "--set", "train.options.lr=0.003")
    diff = cli("diff", run_id, other, cwd=root)
    assert diff.exit_code == 0 and "train.options" in diff.stdout

    assert cli("deploy", run_id, "--name", "pole", "--promote", cwd=root).exit_code == 0
    package = next((root / "models/pole").glob("v*"))
    assert not list(package.rglob("*.pkl")) and (package / "model.safetensors").is_file()
    # raw observations in, one action each: the greedy action of the policy
    observations = pd.read_csv(root / "data/cartpole.csv").drop(columns="action").head(50)
    observations.to_csv(root / "data/new.csv", index=False)
    predict = cli("predict", "pole", "data/new.csv", "--out", "outputs/actions.csv", cwd=root)
    assert predict.exit_code == 0, predict.stderr
    actions = pd.read_csv(root / "outputs/actions.csv")["prediction"].to_numpy()
    policy = load_trained(package)
    assert isinstance(policy, PPOModel)
    greedy = [policy.act(o) for o in observations.to_numpy(np.float32)]
    assert actions.tolist() == greedy and set(greedy) == {0, 1}

    assert cli("monitor", "pole", "data/new.csv", cwd=root).exit_code == 0
    update = cli("update", "pole", "data/cartpole.csv", "--mode", "finetune", cwd=root)
    assert update.exit_code == 0, update.stderr


def test_a_wrong_environment_id_is_a_config_error_with_the_closest_id(tmp_path, cli):
    root = _project(cli, tmp_path, env="CartPol-v1")
    check = cli("check", cwd=root)
    assert check.exit_code != 0
    assert "train.options.env" in check.stderr and "did you mean 'CartPole-v1'" in check.stderr
    run = cli("run", cwd=root)
    assert run.exit_code != 0 and "Traceback" not in run.stderr and "CartPole-v1" in run.stderr


BROKEN_ENV = '''
from pathlib import Path

import gymnasium as gym


class Breaks(gym.Wrapper):
    """CartPole that raises in step() after `after` steps while the file `flag` exists."""

    def __init__(self, env, after, flag):
        super().__init__(env)
        self.after, self.flag, self.count = after, Path(flag), 0

    def step(self, action):
        self.count += 1
        if self.count > self.after and self.flag.exists():
            raise ValueError("the simulator lost its state")
        return self.env.step(action)


def make_env(after=0, flag="data/broken"):
    return Breaks(gym.make("CartPole-v1"), after, flag)
'''


@pytest.mark.slow
def test_an_environment_that_raises_names_episode_and_seed_and_resume_continues(tmp_path, cli):
    root = _project(cli, tmp_path, env="scripts/env.py:make_env", steps=1200, n_steps=128, checkpoint_every=2,
                    env_kwargs={"after": 700, "flag": str(tmp_path / "pole/data/broken")})
    (root / "scripts/env.py").write_text(BROKEN_ENV)
    (root / "data/broken").write_text("")
    failed = cli("run", cwd=root)
    assert failed.exit_code != 0 and "Traceback" not in failed.stderr
    message = failed.stderr
    found = re.search(r"scripts/env.py:make_env raised in step\(\) at episode (\d+), step \d+ \(reset seed (\d+)\)",
                      message)
    assert found and int(found[2]) == 42 + int(found[1]), message
    assert "the simulator lost its state" in message
    failed_id = json.loads(cli("runs", "--json", cwd=root).stdout)[0]["id"]
    (root / "data/broken").unlink()
    resumed = _run(cli, root, "--resume", failed_id)
    info = json.loads(cli("inspect", resumed, "--json", cwd=root).stdout)
    assert info["status"] == "finished"
    starts = _events(root, resumed, "train_start")
    assert starts and 0 < starts[-1]["resumed_at"] <= 700


def test_evaluation_episodes_are_seeded():
    env = gym.make("CartPole-v1")
    first = run_episodes(env, "CartPole-v1", lambda o: int(o[2] > 0), [5, 6, 7])
    again = run_episodes(env, "CartPole-v1", lambda o: int(o[2] > 0), [5, 6, 7])
    assert [e.ret for e in first] == [e.ret for e in again] and len({e.ret for e in first}) > 1

    def raises(_obs):
        raise EnvError("x")

    with pytest.raises(EnvError):
        run_episodes(env, "CartPole-v1", raises, [1])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ppo", "rl_evaluate"])
def test_the_plugins_pass_their_conformance_checks(cli, name):
    result = cli("plugin", "check", name)
    assert result.exit_code == 0 and "all checks passed" in result.stdout, result.stdout
