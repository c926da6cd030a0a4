"""Reinforcement learning through the plugin contract: the ``ppo`` model kind and the
``rl_evaluate`` step.

``train.model: ppo`` trains a policy in the Gymnasium environment ``train.options.env`` names
(a registered id such as ``CartPole-v1``, or ``scripts/env.py:make_env``). The project's data
are observations of that environment, one column per observation value and the action taken
as the label: they fix the policy's inputs and outputs (``blase predict`` maps observations to
actions), give evaluate an agreement score, and give monitor its reference. Every episode is a
row of the run (an ``episode`` event with its return, length, time and seed, and the
``episode_return``/``episode_length`` metrics); checkpoints go where the train step keeps them,
so ``blase run --resume`` continues from the last one. The policy is saved as
``model.safetensors`` (never pickle) and scores like a classifier: the action logits (one
logit, action 1 against action 0, for two actions).

The ``rl_evaluate`` step (after evaluate) plays N seeded episodes with the trained policy
(greedy) and with a random policy on the same seeds, and writes ``rl_evaluation.json`` and the
learning curve ``learning_curve.png``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from blase._fs import replace_dir, write_json_atomic
from blase.contrib._rl_options import PPOOptions, RLEvalOptions
from blase.model import FitContext, FitReport, ModelKind, ModelSpec, TrainingData, load_trained
from blase.steps import Step, StepContext, StepOutput, StepResult, TrainedModel, measure_step

__all__ = ["PPOModel", "RLEvaluateStep", "RLEvaluation"]

WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint"


def _torch() -> Any:
    import torch

    return torch


class PPOModel(ModelKind):
    """A PPO policy trained in a Gymnasium environment; options: :class:`PPOOptions`."""

    name = "ppo"
    config_model = PPOOptions
    files = (WEIGHTS,)
    can_continue = True

    def __init__(self, options: PPOOptions | None = None) -> None:
        super().__init__(options if options is not None else PPOOptions())

    @classmethod
    def example(cls) -> tuple[str, dict[str, Any]]:
        return "rl", {"steps": 1024}

    # -- fit ----------------------------------------------------------------------------------

    def fit(self, data: TrainingData, ctx: FitContext) -> PPOModel:
        from blase.contrib._ppo import Policy, PPOState, check_spaces, make_env, ppo_train

        torch = _torch()
        o: PPOOptions = self.options  # type: ignore[assignment]
        env = make_env(o.env, ctx.project_root, o.env_kwargs)
        n_obs, n_actions = check_spaces(env, o.env, data.n_features, data.n_classes or None)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small nets: one thread is fastest, and the same sums every time
        try:
            torch.manual_seed(ctx.seed)
            policy = Policy(n_obs, n_actions, o.hidden)
            if ctx.init is not None:
                policy.load_state_dict(ctx.init.policy_.state_dict())  # type: ignore[attr-defined]
            opt = torch.optim.Adam(policy.parameters(), lr=o.lr, eps=1e-5)
            state = PPOState()
            ckpt = Path(ctx.out_dir) / CHECKPOINT
            if ctx.resume and (ckpt / WEIGHTS).is_file():
                state = _load_checkpoint(ckpt, policy, opt)
            track = _track(ctx)
            if track is not None:
                track.log_event("train_start", model=self.name, env=o.env, steps=o.steps, resumed_at=state.steps)

            def on_episode(ep: Any) -> None:
                if track is not None:
                    track.log_event("episode", **ep.row(), seconds=round(ep.seconds, 6))
                    track.log_metrics({"episode_return": ep.ret, "episode_length": ep.length}, step=ep.index)

            def on_update(st: Any) -> None:
                if st.updates % o.checkpoint_every == 0 or st.steps >= o.steps:
                    _save_checkpoint(ckpt, policy, opt, st)
                    if ctx.on_epoch_end is not None:
                        ctx.on_epoch_end(epoch=st.updates)

            state = ppo_train(env, policy, opt, o, ctx.seed, state, on_episode=on_episode, on_update=on_update)
        finally:
            torch.set_num_threads(threads)
            env.close()
        self.policy_ = policy.eval()
        returns = [e["return"] for e in state.episodes]
        write_json_atomic(Path(ctx.out_dir) / "history.json", state.episodes)
        self.report_ = FitReport(history=None, details={
            "env": o.env, "steps": state.steps, "updates": state.updates, "episodes": len(returns),
            "last_20_return_mean": float(np.mean(returns[-20:])) if returns else None})
        return self

    # -- save, load, predict ------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in self.policy_.state_dict().items()}, str(Path(folder) / WEIGHTS))

    @classmethod
    def load(cls, folder: Path, spec: ModelSpec) -> PPOModel:
        from safetensors.torch import load_file

        from blase.contrib._ppo import Policy

        model = cls(PPOOptions.model_validate(spec.options or {}))
        n_actions = max(len(spec.classes or []), spec.n_outputs, 2)
        policy = Policy(spec.n_features, n_actions, model.options.hidden)  # type: ignore[union-attr]
        policy.load_state_dict(load_file(str(Path(folder) / WEIGHTS)))
        model.policy_ = policy.eval()
        return model

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Action logits; for two actions the one logit of action 1 against action 0."""
        torch = _torch()
        with torch.no_grad():
            logits = self.policy_.pi(torch.as_tensor(np.asarray(x, dtype=np.float32))).numpy()
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def act(self, obs: np.ndarray) -> int:
        """The greedy action for one observation."""
        torch = _torch()
        with torch.no_grad():
            return int(torch.argmax(self.policy_.pi(torch.tensor(np.asarray(obs, dtype=np.float32)))))

    def versions(self) -> dict[str, str]:
        import gymnasium

        return {"gymnasium": gymnasium.__version__, "torch": _torch().__version__}

    def code(self, root: Path | None) -> dict[str, Any]:
        """The environment script, when ``env`` names one: an edit retrains."""
        spec = self.options.env  # type: ignore[union-attr]
        if ":" not in spec or root is None:
            return {}
        rel, _, func = spec.rpartition(":")
        from blase._pyfile import exec_file

        path = Path(rel) if Path(rel).is_absolute() else Path(root) / rel
        if not path.is_file():
            return {}
        module = exec_file(path, "blase_user_env_code")
        module.__blase_code_name__ = rel  # type: ignore[attr-defined]
        return {spec: getattr(module, func, module)}


def _track(ctx: FitContext) -> Any:
    if ctx.track is not None:
        return ctx.track
    from blase.track import active_run

    return active_run()


def _save_checkpoint(folder: Path, policy: Any, opt: Any, state: Any) -> None:
    """Weights, optimiser moments, the generator and the episodes so far: written beside,
    then renamed into place (a kill never leaves half a checkpoint)."""
    from safetensors.torch import save_file

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in policy.state_dict().items()}, str(tmp / WEIGHTS))
    optim = opt.state_dict()
    tensors = {f"{i}.{k}": v for i, s in optim["state"].items() for k, v in s.items()}
    tensors["generator"] = state.generator
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    write_json_atomic(tmp / "state.json", {"steps": state.steps, "updates": state.updates,
                                           "episodes": state.episodes, "param_groups": optim["param_groups"]})
    replace_dir(tmp, folder)


def _load_checkpoint(folder: Path, policy: Any, opt: Any) -> Any:
    from safetensors.torch import load_file

    from blase.contrib._ppo import PPOState

    policy.load_state_dict(load_file(str(folder / WEIGHTS)))
    meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    moments: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key != "generator":
            i, _, name = key.partition(".")
            moments.setdefault(int(i), {})[name] = value
    opt.load_state_dict({"state": moments, "param_groups": meta["param_groups"]})
    return PPOState(steps=meta["steps"], updates=meta["updates"], episodes=meta["episodes"],
                    generator=tensors["generator"])


# --------------------------------------------------------------------------- rl_evaluate


@dataclass(kw_only=True)
class RLEvaluation(StepOutput):
    """``rl_evaluate``: the evaluation episodes and the learning curve."""

    file: str = "rl_evaluation.json"
    plot: str = "learning_curve.png"
    metrics: dict[str, float] = field(default_factory=dict)


class RLEvaluateStep(Step):
    """N seeded episodes of the trained policy (greedy) against a random policy on the same
    seeds: mean and spread of the return, and the learning curve of the training episodes."""

    name = "rl_evaluate"
    needs = ("train",)
    after = "evaluate"
    output_type = RLEvaluation
    config_model = RLEvalOptions
    public = True
    version: ClassVar[int] = 1

    @classmethod
    def example(cls) -> tuple[str, list[str]]:
        return "rl", ["train.options.steps=1024"]

    def config_sections(self, config: Any) -> Mapping[str, Any]:
        return {**super().config_sections(config), "seed": config.seed}

    def run(self, inputs: Mapping[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        from blase.contrib._ppo import EnvError

        trained = inputs["train"]
        assert isinstance(trained, TrainedModel)
        model = load_trained(trained.model_dir, root=ctx.code_root, entries=ctx.config.plugins)
        if not isinstance(model, PPOModel):
            raise EnvError(f"rl_evaluate needs a policy (train.model: ppo), not {trained.name!r}",
                           hint="set train.model: ppo, or remove rl_evaluate from plugins: in blase.yaml")
        out_dir.mkdir(parents=True, exist_ok=True)
        with measure_step() as meter:
            metrics = self._evaluate(model, trained.model_dir, out_dir, ctx)
        if ctx.track is not None:
            ctx.track.log_metrics({f"rl.{k}": v for k, v in metrics.items()})
        return StepResult(step=self.name, seconds=meter.seconds, peak_rss_bytes=meter.peak_rss_bytes,
                          details={"metrics": metrics}, outputs={},
                          output=RLEvaluation(root=out_dir, metrics=metrics))

    def _evaluate(self, model: PPOModel, model_dir: Path, out_dir: Path, ctx: StepContext) -> dict[str, float]:
        from blase.contrib._ppo import make_env, run_episodes

        o: RLEvalOptions = self.options  # type: ignore[assignment]
        env_spec = model.options.env  # type: ignore[union-attr]
        env = make_env(env_spec, ctx.code_root, model.options.env_kwargs)  # type: ignore[union-attr]
        seeds = [ctx.config.seed + o.seed_offset + i for i in range(o.episodes)]
        try:
            policy = run_episodes(env, env_spec, model.act, seeds)
            rng = np.random.default_rng(ctx.config.seed)
            n = int(env.action_space.n)
            random = run_episodes(env, env_spec, lambda _obs: int(rng.integers(n)), seeds)
        finally:
            env.close()
        ret, base = np.array([e.ret for e in policy]), np.array([e.ret for e in random])
        metrics = {"return_mean": float(ret.mean()), "return_std": float(ret.std()),
                   "return_min": float(ret.min()), "return_max": float(ret.max()),
                   "random_return_mean": float(base.mean()), "random_return_std": float(base.std()),
                   "episodes": float(len(seeds))}
        write_json_atomic(out_dir / "rl_evaluation.json", {
            "env": env_spec, "metrics": metrics, "policy": [e.row() for e in policy],
            "random": [e.row() for e in random]})
        history = json.loads((model_dir / "history.json").read_text(encoding="utf-8"))
        _plot_curve(history, metrics, out_dir / "learning_curve.png", env_spec)
        return metrics


def _plot_curve(history: list[dict[str, Any]], metrics: dict[str, float], path: Path, env: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    returns = np.array([row["return"] for row in history], dtype=float)
    steps = np.cumsum([row["length"] for row in history])
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if len(returns):
        ax.plot(steps, returns, ".", alpha=0.3, label="episode return")
        window = max(1, min(20, len(returns)))
        ax.plot(steps[window - 1:], np.convolve(returns, np.ones(window) / window, "valid"),
                label=f"mean of {window} episodes")
    ax.axhline(metrics["return_mean"], color="green", ls="--", label=f"evaluation {metrics['return_mean']:.1f}")
    ax.axhline(metrics["random_return_mean"], color="grey", ls=":",
               label=f"random policy {metrics['random_return_mean']:.1f}")
    ax.set(xlabel="environment steps", ylabel="return", title=f"{env}: learning curve")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
