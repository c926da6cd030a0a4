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


def _timed(func, spent: dict[str, float], key: str):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - start
    return wrapper


def through_blase(steps: int, seed: int, shards: Path, root: Path) -> tuple[float, dict, dict[str, float]]:
    """CPU seconds, the weights, and the wall seconds spent in Track calls and checkpoints
    against the whole fit (measured inside the run, so the machine's load cancels out)."""
    from blase import Track
    from blase.contrib import rl
    from blase.contrib._rl_options import PPOOptions
    from blase.model import FitContext, fit_model

    kind = rl.PPOModel(PPOOptions(steps=steps))
    spent = {"track": 0.0, "checkpoint": 0.0, "fit": 0.0}
    save = rl._save_checkpoint
    rl._save_checkpoint = _timed(save, spent, "checkpoint")
    try:
        with tempfile.TemporaryDirectory() as out, Track(project=root, name="bench-rl") as run:
            run.log_event = _timed(run.log_event, spent, "track")
            run.log_metrics = _timed(run.log_metrics, spent, "track")
            start, wall = time.process_time(), time.perf_counter()
            fit_model(kind, shards, FitContext(out_dir=Path(out), seed=seed, track=run))
            seconds = time.process_time() - start
            spent["fit"] = time.perf_counter() - wall
    finally:
        rl._save_checkpoint = save
    return seconds, kind.policy_.state_dict(), spent


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
    shares: list[dict[str, float]] = []
    for i in range(args.repeat):
        for name in ("direct", "blase") if i % 2 == 0 else ("blase", "direct"):  # alternate the order
            if name == "direct":
                t, a = direct(args.steps, 42)
            else:
                t, b, spent = through_blase(args.steps, 42, shards, project.root)
                shares.append(spent)
            times[name].append(t)
        assert all(torch.equal(a[k], b[k]) for k in a), "the two loops trained different weights"
    base = statistics.median(times["direct"])
    print(f"\nPPO on CartPole-v1, {args.steps:,} steps, median of {args.repeat} (same weights both ways)")
    print("| loop | CPU seconds | steps per CPU second | overhead |\n| --- | --- | --- | --- |")
    for name, values in times.items():
        secs = statistics.median(values)
        over = f"{(secs / base - 1) * 100:+.1f} %" if name != "direct" else ""
        print(f"| {name} | {secs:.2f} | {args.steps / secs:,.0f} | {over} |")
    track = statistics.median(100 * s["track"] / s["fit"] for s in shares)
    ckpt = statistics.median(100 * s["checkpoint"] / s["fit"] for s in shares)
    print(f"\ninside the Blase fit (wall time, median): Track calls {track:.2f} %, checkpoints {ckpt:.2f} %")


if __name__ == "__main__":
    main()
