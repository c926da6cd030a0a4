"""The fixed task suite of ``blase agent eval``.

Three categories, after the Berkeley Function Calling Leaderboard and tau-bench:

- ``single``: one request, one right tool call, scored on the call itself: the tool's name,
  arguments that validate against its schema (types, required fields, allowed values), and
  values among the accepted ones (BFCL's "possible answers"). Arguments not named in the
  expectation must be absent or equal to their default.
- ``irrelevance``: requests no tool fits; the right answer calls nothing.
- ``multi``: a goal that takes one or more tool calls that act on the project, scored by the
  final state (a run exists with these params, this version is current), not by the calls.

Prompts and accepted values may name ``{run}``, ``{run2}`` (two pipeline runs of the scratch
project), ``{model}`` (its model), filled in when the suite runs. Changing a task changes the
suite's hash, which every recorded eval carries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ANY", "TASKS", "EvalTask", "ExpectedCall", "StateCheck", "suite_hash"]

#: An accepted value meaning "present, any value that validates".
ANY = "<any>"


@dataclass(frozen=True)
class ExpectedCall:
    """One acceptable call: the tool and, per argument, the accepted values."""

    tool: str
    args: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()
    unordered: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StateCheck:
    """One fact the project must show after a multi-step task.

    ``kind``: ``new_run`` (a pipeline run started during the task, finished, with ``params``
    and, if given, ``steps``), ``version_added`` (the model has ``count`` more versions),
    ``current_version`` (the model's current version is ``version``), ``file_rows`` (a file
    with at least ``min_rows`` rows), ``best_deployed`` (the newest version packages the run
    with the best ``metric``).
    """

    kind: str
    spec: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalTask:
    """One task of the suite."""

    id: str
    category: str
    prompt: str
    expected: tuple[ExpectedCall, ...] = ()
    checks: tuple[StateCheck, ...] = ()
    setup: str | None = None


def _one(tool: str, optional: tuple[str, ...] = (), unordered: tuple[str, ...] = (), **args: Any) -> tuple[ExpectedCall, ...]:
    return (ExpectedCall(tool, {k: v if isinstance(v, tuple) else (v,) for k, v in args.items()},
                         frozenset(optional), frozenset(unordered)),)


SINGLE: tuple[EvalTask, ...] = (
    EvalTask("s01-list-runs", "single", "List the 5 most recent runs.", _one("list_runs", limit=5)),
    EvalTask("s02-failed-runs", "single", "Which runs failed? Only list the failed ones.",
             _one("list_runs", optional=("limit",), status="failed", limit=ANY)
             + _one("list_runs", optional=("limit",), where=("status = 'failed'", "status='failed'"), limit=ANY)),
    EvalTask("s03-inspect", "single", "Show me the details of run {run}.", _one("inspect_run", run="{run}")),
    EvalTask("s04-log-tail", "single", "Show the last 5 events of run {run}.",
             _one("read_run_log", run="{run}", tail=5)),
    EvalTask("s05-log-event", "single", "Show the step_failed events of run {run}.",
             _one("read_run_log", optional=("tail",), run="{run}", event="step_failed", tail=ANY)),
    EvalTask("s06-compare", "single", "Compare the metrics of runs {run} and {run2} side by side.",
             _one("compare_runs", unordered=("runs",), runs=(["{run}", "{run2}"],))),
    EvalTask("s07-diff", "single", "What changed between run {run} and run {run2}? Diff them.",
             _one("diff_runs", a="{run}", b="{run2}") + _one("diff_runs", a="{run2}", b="{run}")),
    EvalTask("s08-preview", "single", "Show me the first 10 rows of data/penguins.csv.",
             _one("preview_data", path="data/penguins.csv", rows=10)),
    EvalTask("s09-schema", "single", "Suggest a schema for data/penguins.csv; the label is species.",
             _one("suggest_schema", path="data/penguins.csv", label="species")),
    EvalTask("s10-config", "single", "Show me this project's blase.yaml configuration.", _one("show_config")),
    EvalTask("s11-models", "single", "Which models are deployed, and which version of each is current?",
             _one("list_models")),
    EvalTask("s12-drift", "single", "Check data/new.csv for drift against model {model}.",
             _one("check_drift", model="{model}", data="data/new.csv")),
    EvalTask("s13-run-step", "single", "Run only the train step, with train.epochs=3.",
             _one("run_step", optional=("memory",), step="train", overrides=(["train.epochs=3"],), memory=ANY)),
    EvalTask("s14-run-pipeline", "single", "Run the whole pipeline with the override train.lr=0.05.",
             _one("run_pipeline", optional=("from_step", "to_step"), overrides=(["train.lr=0.05"],),
                  from_step="extract", to_step="deploy")),
    EvalTask("s15-evaluate", "single", "Evaluate the model of run {run} on the test split.",
             _one("evaluate", run="{run}")),
    EvalTask("s16-deploy", "single", "Deploy run {run} as a new model version.",
             _one("deploy", optional=("name",), run="{run}", name="{model}")),
    EvalTask("s17-predict", "single", "Predict data/new.csv with model {model} and write the predictions to outputs/pred.csv.",
             _one("predict", model=("{model}",), data="data/new.csv", out="outputs/pred.csv")),
    EvalTask("s18-promote", "single", "Make version v1 of model {model} the current version.",
             _one("promote", name="{model}", version="v1")),
    EvalTask("s19-rollback", "single", "Roll model {model} back to version v1.",
             _one("rollback", name="{model}", to="v1")),
    EvalTask("s20-update", "single", "Fine-tune model {model} on the new labelled data in data/new.csv.",
             _one("trigger_update", optional=("mode", "replay"), model="{model}", data="data/new.csv",
                  mode="finetune", replay=ANY)),
    EvalTask("s21-gc", "single", "Which cached files would garbage collection delete if we keep the last 3 runs? Do not delete anything.",
             _one("gc", optional=("dry_run",), keep_last=3, dry_run=True)),
    EvalTask("s22-reproduce", "single", "Reproduce run {run} and verify the result is identical.",
             _one("reproduce", run="{run}", verify=True)),
)

IRRELEVANCE: tuple[EvalTask, ...] = tuple(
    EvalTask(f"i{n:02d}-{slug}", "irrelevance", prompt)
    for n, (slug, prompt) in enumerate((
        ("capital", "What is the capital of France?"),
        ("haiku", "Write a haiku about penguins."),
        ("translate", "Translate 'good morning' into Spanish."),
        ("weather", "What will the weather be in Paris tomorrow?"),
        ("restaurant", "Book a table for two at an Italian restaurant tonight."),
        ("email", "Send an email to my manager saying the model is ready."),
        ("arithmetic", "What is 17 times 23?"),
        ("shopping", "Order a new GPU for me from an online shop."),
        ("joke", "Tell me a joke about statistics."),
        ("python", "How do I reverse a list in Python?"),
    ), start=1)
)

MULTI: tuple[EvalTask, ...] = (
    EvalTask("m01-epochs", "multi", "Retrain the model with 3 epochs: run the pipeline with train.epochs=3.",
             checks=(StateCheck("new_run", {"params": {"train.epochs": 3}}),)),
    EvalTask("m02-seed", "multi", "Run the pipeline again with seed 7 (override seed=7).",
             checks=(StateCheck("new_run", {"params": {"seed": 7}}),)),
    EvalTask("m03-class-weights", "multi", "Train with balanced class weights (train.class_weights=balanced) and evaluate the result.",
             checks=(StateCheck("new_run", {"params": {"train.class_weights": "balanced"}, "evaluated": True}),)),
    EvalTask("m04-package", "multi", "Package the latest pipeline run as a new version of model {model}.",
             checks=(StateCheck("version_added", {"model": "{model}", "count": 1}),)),
    EvalTask("m05-promote-v1", "multi", "Make v1 the current version of model {model}.",
             checks=(StateCheck("current_version", {"model": "{model}", "version": "v1"}),), setup="current_not_v1"),
    EvalTask("m06-rollback", "multi", "Roll model {model} back to the version that was current before the last promotion.",
             checks=(StateCheck("current_version", {"model": "{model}", "version": "{previous}"}),),
             setup="promote_latest"),
    EvalTask("m07-predict", "multi", "Score data/new.csv with model {model} and save the predictions to outputs/eval-pred.csv.",
             checks=(StateCheck("file_rows", {"path": "outputs/eval-pred.csv", "min_rows": 10}),), setup="no_predictions"),
    EvalTask("m08-evaluate", "multi", "Evaluate the most recently trained model again on the test split.",
             checks=(StateCheck("new_run", {"steps": "evaluate"}),)),
    EvalTask("m09-deploy-best", "multi", "Find the pipeline run with the best test accuracy and deploy it as a new version of model {model}.",
             checks=(StateCheck("version_added", {"model": "{model}", "count": 1}),
                     StateCheck("best_deployed", {"model": "{model}", "metric": "test.accuracy"}))),
)

#: The whole suite, in the order it runs (nothing acts before the multi-step tasks).
TASKS: tuple[EvalTask, ...] = SINGLE + IRRELEVANCE + MULTI


def suite_hash(tasks: tuple[EvalTask, ...] = TASKS) -> str:
    """A short hash of the suite; recorded with every eval so scores compare like with like."""
    text = json.dumps([asdict(t) for t in tasks], default=lambda o: sorted(o) if isinstance(o, frozenset) else str(o),
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
