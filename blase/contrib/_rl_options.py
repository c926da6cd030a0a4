"""The options of the reinforcement-learning plugins (``train.options`` of ``train.model: ppo``
and ``options`` of the ``rl_evaluate`` step). Pydantic only, so the manifests publish their
schemas without importing torch or Gymnasium."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PPOOptions", "RLEvalOptions"]


class PPOOptions(BaseModel):
    """PPO (clipped objective, GAE) for a Gymnasium environment with a discrete action space."""

    model_config = ConfigDict(extra="forbid")

    env: str = Field(default="CartPole-v1",
                     description="a registered Gymnasium id (CartPole-v1), or scripts/FILE.py:FUNC returning an env")
    env_kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of gymnasium.make or FUNC")
    steps: int = Field(default=30_000, ge=1, description="environment steps to train for")
    n_steps: int = Field(default=256, ge=8, description="steps per rollout (one policy update each)")
    epochs: int = Field(default=10, ge=1, description="passes over each rollout")
    minibatch: int = Field(default=64, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    gamma: float = Field(default=0.98, gt=0, le=1)
    gae_lambda: float = Field(default=0.8, ge=0, le=1)
    clip: float = Field(default=0.2, gt=0)
    ent_coef: float = Field(default=0.0, ge=0)
    vf_coef: float = Field(default=0.5, ge=0)
    max_grad_norm: float = Field(default=0.5, gt=0)
    hidden: list[int] = Field(default_factory=lambda: [64, 64], description="tanh layers of the policy and value nets")
    checkpoint_every: int = Field(default=10, ge=1, description="rollouts between checkpoints")

    @field_validator("env")
    @classmethod
    def _an_env(cls, value: str) -> str:
        if ":" in value and value.split(":")[0].endswith(".py"):
            return value  # a project script: checked when it is imported
        try:
            import gymnasium
        except ImportError:  # the model kind says how to install it
            return value
        if value not in gymnasium.envs.registry:
            import difflib

            close = difflib.get_close_matches(value, list(gymnasium.envs.registry), n=1)
            raise ValueError(f"no Gymnasium environment {value!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                             + " (a registered id such as CartPole-v1, or scripts/FILE.py:FUNC)")
        return value


class RLEvalOptions(BaseModel):
    """``rl_evaluate``: seeded evaluation episodes of the trained policy and of a random one."""

    model_config = ConfigDict(extra="forbid")

    episodes: int = Field(default=20, ge=1, description="evaluation episodes (each its own seed)")
    seed_offset: int = Field(default=1_000_000, ge=0,
                             description="evaluation seeds are seed + seed_offset + i, apart from training's")
