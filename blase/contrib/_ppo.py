"""A compact PPO (clipped objective, GAE) in torch for Gymnasium environments with a vector
observation and a discrete action space, deterministic on CPU for a given seed.

Every episode starts from ``env.reset(seed=...)`` with its own recorded seed, and every
random draw of the algorithm comes from one seeded ``torch.Generator``, so the same seed,
options and environment give the same weights bit for bit. An environment that raises is
reported with the episode, the step and the seed that reproduces it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from blase._pyfile import exec_file, functions_of
from blase.contrib._rl_options import PPOOptions
from blase.model import TrainError

__all__ = ["Episode", "PPOState", "Policy", "check_spaces", "make_env", "ppo_train", "run_episodes"]


class EnvError(TrainError):
    """The environment cannot be made, or raised while it ran."""


# --------------------------------------------------------------------------- the environment


def make_env(spec: str, root: Path | None, kwargs: dict[str, Any] | None = None) -> Any:
    """A Gymnasium environment: ``gymnasium.make(spec)`` for a registered id, or the function
    ``scripts/FILE.py:FUNC`` of the project (called with ``kwargs``)."""
    import gymnasium as gym

    kwargs = dict(kwargs or {})
    if ":" in spec and spec.split(":")[0].endswith(".py"):
        return _env_from_script(spec, root, kwargs)
    try:
        return gym.make(spec, **kwargs)
    except gym.error.Error as exc:
        known = sorted(k for k in gym.envs.registry if "/" not in k)[:12]
        raise EnvError(f"train.options.env: no Gymnasium environment {spec!r} ({exc})",
                       hint=f"use a registered id ({', '.join(known)}, ...) or scripts/env.py:make_env "
                       "returning your environment") from None


def _env_from_script(spec: str, root: Path | None, kwargs: dict[str, Any]) -> Any:
    rel, _, func = spec.rpartition(":")
    path = Path(rel) if Path(rel).is_absolute() else (root or Path.cwd()) / rel
    if not path.is_file():
        raise EnvError(f"train.options.env: {rel} does not exist (looked for {path})",
                       hint=f"create it with `def {func}(**kwargs)` returning a gymnasium.Env, or set a registered id")
    name = "blase_user_env_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    try:
        module = exec_file(path, name)
    except Exception as exc:
        raise EnvError(f"train.options.env: {rel} raised on import: {type(exc).__name__}: {exc}",
                       hint=f"fix {rel}") from exc
    if not callable(getattr(module, func, None)):
        defined = ", ".join(functions_of(module)) or "no functions"
        raise EnvError(f"train.options.env: {rel} has no function {func!r} (it defines {defined})",
                       hint=f"define `def {func}(**kwargs)` returning a gymnasium.Env in {rel}")
    try:
        return getattr(module, func)(**kwargs)
    except Exception as exc:
        raise EnvError(f"train.options.env: {spec} raised: {type(exc).__name__}: {exc}", hint=f"fix {rel}") from exc


def check_spaces(env: Any, spec: str, n_features: int | None = None, n_actions: int | None = None) -> tuple[int, int]:
    """The observation size and the number of actions; a clear error when the environment
    is not a vector-observation, discrete-action one, or disagrees with the data's columns."""
    import gymnasium as gym

    obs, act = env.observation_space, env.action_space
    if not isinstance(act, gym.spaces.Discrete):
        raise EnvError(f"environment {spec} has action space {act}; the built-in PPO needs Discrete actions",
                       hint="wrap it to discrete actions, or use an environment such as CartPole-v1")
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise EnvError(f"environment {spec} has observation space {obs}; the built-in PPO needs a vector (Box of 1 dim)",
                       hint="flatten the observation with gymnasium.wrappers.FlattenObservation in scripts/env.py")
    size, actions = int(obs.shape[0]), int(act.n)
    if n_features is not None and n_features != size:
        raise EnvError(f"environment {spec} observes {size} values but the data has {n_features} feature columns",
                       hint="the data (data.source) holds one column per observation value, in the environment's "
                       "order, and the label: the action")
    if n_actions is not None and n_actions != actions:
        raise EnvError(f"environment {spec} has {actions} actions but the label of the data has {n_actions} values",
                       hint="the label column holds the action taken (0 .. n-1); record rows with every action")
    return size, actions


# --------------------------------------------------------------------------- the policy


class Policy(nn.Module):
    """Separate tanh MLPs for the action logits and the state value."""

    def __init__(self, n_obs: int, n_actions: int, hidden: list[int]) -> None:
        super().__init__()
        self.pi = _mlp(n_obs, hidden, n_actions, last_gain=0.01)
        self.v = _mlp(n_obs, hidden, 1, last_gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pi(x)


def _mlp(n_in: int, hidden: list[int], n_out: int, *, last_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.Tanh()]
        n_in = width
    layers.append(nn.Linear(n_in, n_out))
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain=last_gain if layer is layers[-1] else float(np.sqrt(2)))
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------- episodes


@dataclass
class Episode:
    """One finished episode: a row of the run's record."""

    index: int
    seed: int
    ret: float
    length: int
    seconds: float

    def row(self) -> dict[str, Any]:
        """The episode without its wall time (files that must reproduce bit for bit)."""
        return {"episode": self.index, "seed": self.seed, "return": self.ret, "length": self.length}


def _step(env: Any, action: int, spec: str, episode: int, t: int, seed: int) -> tuple[Any, float, bool]:
    try:
        obs, reward, terminated, truncated, _ = env.step(action)
    except Exception as exc:
        raise EnvError(f"environment {spec} raised in step() at episode {episode}, step {t} (reset seed {seed}): "
                       f"{type(exc).__name__}: {exc}",
                       hint=f"fix the environment's step(); env.reset(seed={seed}) and the same actions "
                       "reproduce it") from exc
    return obs, float(reward), bool(terminated or truncated)


def _reset(env: Any, spec: str, episode: int, seed: int) -> Any:
    try:
        obs, _ = env.reset(seed=seed)
    except Exception as exc:
        raise EnvError(f"environment {spec} raised in reset(seed={seed}) at episode {episode}: "
                       f"{type(exc).__name__}: {exc}", hint="fix the environment's reset()") from exc
    return obs


def run_episodes(env: Any, spec: str, act: Callable[[np.ndarray], int], seeds: list[int]) -> list[Episode]:
    """Play one episode per seed with ``act`` (observation -> action)."""
    out = []
    for i, seed in enumerate(seeds):
        start = time.perf_counter()
        obs, total, t, done = _reset(env, spec, i, seed), 0.0, 0, False
        while not done:
            obs, reward, done = _step(env, act(np.asarray(obs, dtype=np.float32)), spec, i, t, seed)
            total += reward
            t += 1
        out.append(Episode(i, seed, total, t, time.perf_counter() - start))
    return out


# --------------------------------------------------------------------------- training


@dataclass
class PPOState:
    """What a checkpoint holds besides the weights: progress and the random generator."""

    steps: int = 0
    updates: int = 0
    episodes: list[dict[str, Any]] = field(default_factory=list)
    generator: torch.Tensor | None = None


def _rollouts(env: Any, spec: str, policy: Policy, o: PPOOptions, seed: int, state: PPOState,
              gen: torch.Generator, on_episode: Callable[[Episode], None]) -> Iterator[dict[str, torch.Tensor]]:
    """Rollouts of ``o.n_steps`` steps; the episode in progress when a run resumes starts anew."""
    episode = len(state.episodes)
    ep_seed = seed + episode
    obs = _reset(env, spec, episode, ep_seed)
    ret, length, started = 0.0, 0, time.perf_counter()
    while state.steps < o.steps:
        n = min(o.n_steps, o.steps - state.steps)
        buf: dict[str, list[Any]] = {k: [] for k in ("obs", "act", "logp", "rew", "done", "val")}
        for _ in range(n):
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32))
            with torch.no_grad():
                logits, value = policy.pi(x), policy.v(x)[0]
                probs = torch.softmax(logits, -1)
                action = int(torch.multinomial(probs, 1, generator=gen))
            obs, reward, done = _step(env, action, spec, episode, length, ep_seed)
            for k, v in zip(buf, (x, action, torch.log(probs[action]), reward, done, value), strict=True):
                buf[k].append(v)
            ret, length = ret + reward, length + 1
            state.steps += 1
            if done:
                on_episode(Episode(episode, ep_seed, ret, length, time.perf_counter() - started))
                episode += 1
                ep_seed = seed + episode
                obs = _reset(env, spec, episode, ep_seed)
                ret, length, started = 0.0, 0, time.perf_counter()
        with torch.no_grad():
            last = policy.v(torch.as_tensor(np.asarray(obs, dtype=np.float32)))[0]
        yield _advantages(buf, last, o)


def _advantages(buf: dict[str, list[Any]], last: torch.Tensor, o: PPOOptions) -> dict[str, torch.Tensor]:
    rew = torch.tensor(buf["rew"], dtype=torch.float32)
    done = torch.tensor(buf["done"], dtype=torch.float32)
    val = torch.stack(buf["val"])
    adv = torch.zeros_like(rew)
    gae = torch.zeros(())
    for t in reversed(range(len(rew))):
        nxt = last if t == len(rew) - 1 else val[t + 1]
        delta = rew[t] + o.gamma * nxt * (1 - done[t]) - val[t]
        gae = delta + o.gamma * o.gae_lambda * (1 - done[t]) * gae
        adv[t] = gae
    return {"obs": torch.stack(buf["obs"]), "act": torch.tensor(buf["act"]), "logp": torch.stack(buf["logp"]),
            "adv": adv, "ret": adv + val}


def _update(policy: Policy, opt: torch.optim.Optimizer, batch: dict[str, torch.Tensor], o: PPOOptions,
            gen: torch.Generator) -> None:
    n = len(batch["act"])
    for _ in range(o.epochs):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, o.minibatch):
            idx = order[start:start + o.minibatch]
            adv = batch["adv"][idx]
            if len(idx) > 1:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            logits = policy.pi(batch["obs"][idx])
            logp_all = torch.log_softmax(logits, -1)
            logp = logp_all.gather(1, batch["act"][idx, None])[:, 0]
            ratio = torch.exp(logp - batch["logp"][idx])
            pg = -torch.min(ratio * adv, torch.clamp(ratio, 1 - o.clip, 1 + o.clip) * adv).mean()
            vf = ((policy.v(batch["obs"][idx])[:, 0] - batch["ret"][idx]) ** 2).mean()
            entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
            loss = pg + o.vf_coef * vf - o.ent_coef * entropy
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(policy.parameters(), o.max_grad_norm)
            opt.step()


def ppo_train(env: Any, policy: Policy, opt: torch.optim.Optimizer, o: PPOOptions, seed: int, state: PPOState, *,
              on_episode: Callable[[Episode], None], on_update: Callable[[PPOState], None]) -> PPOState:
    """Train ``policy`` in ``env`` until ``o.steps`` steps (from ``state``, a fresh or a
    checkpointed one); ``on_episode`` gets every finished episode, ``on_update`` the state
    after every policy update."""
    gen = torch.Generator().manual_seed(seed)
    if state.generator is not None:
        gen.set_state(state.generator)

    def episode_done(ep: Episode) -> None:
        state.episodes.append(ep.row())
        on_episode(ep)

    for batch in _rollouts(env, o.env, policy, o, seed, state, gen, episode_done):
        _update(policy, opt, batch, o, gen)
        state.updates += 1
        state.generator = gen.get_state()
        on_update(state)
    return state
