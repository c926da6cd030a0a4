"""Sweeps: a grid (or a random sample of it) of ``--set`` values, each a tracked pipeline run.

``--set train.lr=0.001,0.01,0.1 --set train.hidden=[32],[64,32]`` is six configurations. The
first runs alone so that the data steps it shares with the others (extract, transform,
prepare: whatever the swept keys leave unchanged) land in the step store; the others then run
in a process pool of ``parallel`` workers and take those steps from the cache. Each is a
separate run tagged ``sweep=<id>``; :func:`sweep` returns them with their metrics.
"""

from __future__ import annotations

import itertools
import random
import secrets
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.project import Project

__all__ = ["EXECUTORS", "SweepError", "SweepResult", "SweepRun", "grid", "parse_sweep", "sweep"]


#: Where the configurations after the first run: a local process pool, or Ray tasks.
EXECUTORS = ("local", "ray")


class SweepError(BlaseError):
    """A sweep's ``--set`` values cannot be read, or no configuration is left to run."""


@dataclass
class SweepRun:
    """One configuration of a sweep and how its run went."""

    overrides: dict[str, str]
    run_id: str | None = None
    status: str = "pending"
    metrics: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class SweepResult:
    sweep_id: str
    keys: list[str]
    runs: list[SweepRun]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _split_values(text: str) -> list[str]:
    """``0.001,0.01`` -> two values; ``[32],[64,32]`` -> two lists (commas inside brackets stay)."""
    values, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += ch
    values.append(current.strip())
    return values


def parse_sweep(sets: list[str]) -> dict[str, list[str]]:
    """``["train.lr=0.1,0.01"]`` -> ``{"train.lr": ["0.1", "0.01"]}``, in the order given."""
    axes: dict[str, list[str]] = {}
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise SweepError(f"--set {item!r} is not KEY=VALUE[,VALUE...]",
                             hint="e.g. --set train.lr=0.001,0.01,0.1 --set train.hidden=[32],[64,32]")
        values = _split_values(text)
        if any(not v for v in values):
            raise SweepError(f"--set {item!r} has an empty value", hint="separate values with single commas")
        if key in axes:
            raise SweepError(f"--set names {key!r} twice", hint=f"give all its values once: {key}=A,B,C")
        axes[key] = values
    if not axes:
        raise SweepError("a sweep needs at least one --set KEY=A,B", hint="e.g. blase sweep --set train.lr=0.001,0.01")
    return axes


def grid(axes: dict[str, list[str]], *, sample: int | None = None, seed: int = 0) -> list[dict[str, str]]:
    """Every combination of ``axes`` (the last key varying fastest), or ``sample`` of them
    drawn at random with ``seed`` (in grid order)."""
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    if sample is not None:
        if sample < 1:
            raise SweepError(f"--sample must be 1 or more, got {sample}", hint="e.g. --sample 4")
        if sample < len(combos):
            picked = sorted(random.Random(seed).sample(range(len(combos)), sample))
            combos = [combos[i] for i in picked]
    return combos


def _run_one(root: str, overrides: dict[str, str], base: list[str], memory: str | None, to_step: str | None,
             tags: dict[str, str]) -> dict[str, Any]:
    """One configuration, in a worker process: its run id, status, metrics and cached steps."""
    from blase.pipeline import Pipeline
    from blase.track import load_run

    pipeline = Pipeline(Path(root), overrides=[*base, *(f"{k}={v}" for k, v in overrides.items())], memory=memory)
    try:
        result = pipeline.run(to_step=to_step, tags=tags)
    except BlaseError as exc:
        return {"run_id": pipeline.run_id, "status": "failed", "error": str(exc).splitlines()[0]}
    run = load_run(result.run_id, [Path(root)], history=False)
    return {"run_id": result.run_id, "status": result.status, "metrics": run.metrics, "cached": sorted(result.cached)}


def sweep(project: Project, sets: list[str], *, parallel: int = 1, sample: int | None = None, seed: int = 0,
          overrides: list[str] | None = None, memory: str | None = None, to_step: str | None = "evaluate",
          executor: str = "local", on_run: Callable[[SweepRun], None] | None = None) -> SweepResult:
    """Run each configuration of the grid ``sets`` describes as its own tracked run.

    ``parallel`` worker processes (after the first configuration, which runs alone so its
    data steps are cached for the rest); ``to_step`` stops before deploy by default, so a
    sweep does not make a model version per configuration (`blase deploy RUN` the best one).

    ``executor="ray"`` runs the configurations as Ray tasks (one CPU each, at most
    ``parallel`` at a time) on the cluster ``ray.address`` in blase.yaml or ``RAY_ADDRESS``
    names, else on a local Ray; every node must see the project folder at the same path (a
    shared filesystem).
    """
    from blase.config import parse_overrides
    from blase.pipeline import Pipeline

    if executor not in EXECUTORS:
        raise SweepError(f"unknown executor {executor!r}", hint=f"use one of {', '.join(EXECUTORS)}")
    axes = parse_sweep(sets)
    combos = grid(axes, sample=sample, seed=seed)
    base = list(overrides or [])
    for combo in combos:  # every configuration is checked before the first one runs
        Pipeline(project, overrides=[*base, *(f"{k}={v}" for k, v in combo.items())])
    parse_overrides(base)
    sweep_id = secrets.token_hex(4)
    runs = [SweepRun(overrides=c) for c in combos]
    tags = {"sweep": sweep_id}
    args = (str(project.root),)

    def finish(run: SweepRun, out: dict[str, Any]) -> None:
        run.run_id, run.status = out.get("run_id"), out["status"]
        run.metrics, run.cached, run.error = out.get("metrics", {}), out.get("cached", []), out.get("error")
        if on_run:
            on_run(run)

    finish(runs[0], _run_one(*args, runs[0].overrides, base, memory, to_step, tags))
    rest = runs[1:]
    if rest and executor == "ray":
        _on_ray(rest, finish, parallel, (*args,), base, memory, to_step, tags)
    elif rest and parallel > 1:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no inherited DuckDB or torch threads
        with ProcessPoolExecutor(max_workers=min(parallel, len(rest)), mp_context=context) as pool:
            futures = {pool.submit(_run_one, *args, r.overrides, base, memory, to_step, tags): r for r in rest}
            for future in as_completed(futures):
                finish(futures[future], future.result())
    else:
        for run in rest:
            finish(run, _run_one(*args, run.overrides, base, memory, to_step, tags))
    return SweepResult(sweep_id, list(axes), runs)


def _on_ray(runs: list[SweepRun], finish: Callable[[SweepRun, dict[str, Any]], None], parallel: int,
            args: tuple[str], base: list[str], memory: str | None, to_step: str | None, tags: dict[str, str]) -> None:
    """Run ``runs`` as Ray tasks, at most ``parallel`` in flight, calling ``finish`` as each ends."""
    from blase.executor import RayExecutor
    from blase.pipeline import Pipeline

    # the cluster of `ray:` in blase.yaml (ray.address, else RAY_ADDRESS, else a local Ray)
    ray = RayExecutor.from_config(Pipeline(args[0], overrides=base).config.ray).start()
    task = ray.remote(num_cpus=1)(_run_one)
    pending: dict[Any, SweepRun] = {}
    queue = list(runs)
    while queue or pending:
        while queue and len(pending) < max(parallel, 1):
            run = queue.pop(0)
            pending[task.remote(*args, run.overrides, base, memory, to_step, tags)] = run
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            finish(pending.pop(ref), ray.get(ref))
