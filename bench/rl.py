"""Environment steps per second of PPO on CartPole-v1: the algorithm called directly against
Blase's train step around it (every episode an event and two metrics of a Track run,
checkpoints every 10 updates, history.json), with the same seed and options.

Both train the same policy (the final weights are compared: the wrapper changes nothing of
the algorithm), `--repeat` times each, alternating; the table gives the median CPU time of the
process (this process's user + system time, including Track's writer thread; on a shared
machine wall time mostly measures the neighbours).

    python bench/rl.py --steps 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def direct(steps: int, seed: int) -> tuple[float, dict]:
    import torch

    from blase.contrib._ppo import Policy, PPOState, make_env, ppo_train
    from blase.contrib._rl_options import PPOOptions

    o = PPOOptions(steps=steps)
    env = make_env(o.env, None)
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    policy = Policy(4, 2, o.hidden)
    opt = torch.optim.Adam(policy.parameters(), lr=o.lr, eps=1e-5)
    start = time.process_time()
    ppo_train(env, policy, opt, o, seed, PPOState(), on_episode=lambda _e: None, on_update=lambda _s: None)
    return time.process_time() - start, policy.state_dict()


def through_blase(steps: int, seed: int, shards: Path, root: Path) -> tuple[float, dict]:
    from blase import Track
    from blase.contrib._rl_options import PPOOptions
    from blase.contrib.rl import PPOModel
    from blase.model import FitContext, fit_model

    kind = PPOModel(PPOOptions(steps=steps))
    with tempfile.TemporaryDirectory() as out, Track(project=root, name="bench-rl") as run:
        start = time.process_time()
        fit_model(kind, shards, FitContext(out_dir=Path(out), seed=seed, track=run))
        seconds = time.process_time() - start
    return seconds, kind.policy_.state_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import torch

    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    tmp = Path(tempfile.mkdtemp(prefix="bench-rl-"))
    project = create_project(tmp / "pole", template="rl")
    shards = Pipeline(project).run(to_step="prepare").steps["prepare"].output.root
    times: dict[str, list[float]] = {"direct": [], "blase": []}
    for _ in range(args.repeat):
        t, a = direct(args.steps, 42)
        times["direct"].append(t)
        t, b = through_blase(args.steps, 42, shards, project.root)
        times["blase"].append(t)
        assert all(torch.equal(a[k], b[k]) for k in a), "the two loops trained different weights"
    base = statistics.median(times["direct"])
    print(f"\nPPO on CartPole-v1, {args.steps:,} steps, median of {args.repeat} (same weights both ways)")
    print("| loop | CPU seconds | steps per CPU second | overhead |\n| --- | --- | --- | --- |")
    for name, values in times.items():
        secs = statistics.median(values)
        over = f"{(secs / base - 1) * 100:+.1f} %" if name != "direct" else ""
        print(f"| {name} | {secs:.2f} | {args.steps / secs:,.0f} | {over} |")


if __name__ == "__main__":
    main()
