"""Generate the `rl` template's data: CartPole-v1 observations and the action a simple
balancing controller took in each (shipped as blase/datasets/cartpole.csv).

The controller pushes the cart toward the side the pole falls to (pole angle plus half its
angular velocity), with a 10 % chance of a random action so that both actions appear in every
kind of state; each episode starts from `env.reset(seed=i)` and stops after 150 steps.

    python bench/rlgen.py --episodes 30 --out blase/datasets/cartpole.csv
"""

from __future__ import annotations

import argparse
import csv

import gymnasium as gym
import numpy as np

COLUMNS = ["cart_position", "cart_velocity", "pole_angle", "pole_angular_velocity"]


def rows(episodes: int, max_steps: int = 150, seed: int = 0):
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        for _ in range(max_steps):
            action = int(obs[2] + 0.5 * obs[3] > 0) if rng.random() > 0.1 else int(rng.integers(2))
            yield [*(round(float(v), 6) for v in obs), action]
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*COLUMNS, "action"])
        n = sum(1 for row in rows(args.episodes) if writer.writerow(row) or True)
    print(n, "rows")
