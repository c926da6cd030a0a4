"""`blase agent eval`: the scorers on hand-made transcripts, pass^k, recording and the auto warning.

Every scorer is shown a correct transcript (it passes) and each kind of mistake (it fails):
a scorer that cannot fail measures nothing.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("langgraph")

from blase.agent._eval import (
    Attempt,
    EvalResult,
    eval_on_record,
    score_irrelevance,
    score_single,
    score_state,
    snapshot,
    unevaluated_warning,
)
from blase.agent.eval_tasks import (
    IRRELEVANCE,
    MULTI,
    SINGLE,
    TASKS,
    EvalTask,
    StateCheck,
    suite_hash,
)

from blase.track import Track

FACTS = {"run": "aaaa11112222", "run2": "bbbb33334444", "model": "proj"}
TASK = {t.id: t for t in TASKS}


def c(tool_name, /, **args):
    return {"name": tool_name, "args": args}


# ---------------------------------------------------------------------- the suite


def test_suite_has_thirty_tasks_in_three_categories():
    assert len(TASKS) >= 30
    assert {t.category for t in TASKS} == {"single", "irrelevance", "multi"}
    assert len({t.id for t in TASKS}) == len(TASKS)
    assert all(t.expected for t in SINGLE) and all(t.checks for t in MULTI)
    assert not any(t.expected or t.checks for t in IRRELEVANCE)
    assert len(suite_hash()) == 12


def test_every_single_task_has_a_correct_answer_that_validates():
    """The expected calls are themselves valid tool calls (else no model could pass)."""
    from blase.tools import get_tool

    for task in SINGLE:
        exp = task.expected[0]
        args = {k: v[0] for k, v in exp.args.items() if v[0] != "<any>"}
        args = json.loads(json.dumps(args).replace("{run}", FACTS["run"]).replace("{run2}", FACTS["run2"])
                          .replace("{model}", FACTS["model"]))
        get_tool(exp.tool).validate(args)
        assert score_single(task, [c(exp.tool, **args)], FACTS).passed, task.id


# ---------------------------------------------------------------------- single calls


@pytest.mark.parametrize(
    ("task", "calls", "why"),
    [
        ("s01-list-runs", [], "no tool call"),
        ("s01-list-runs", [c("inspect_run", run="latest")], "wrong tool"),
        ("s01-list-runs", [c("list_runs", limit=10)], "not an accepted value"),
        ("s01-list-runs", [c("list_runs", limit="five")], "invalid arguments"),  # type
        ("s01-list-runs", [c("list_runs", limit=5, sort="-accuracy")], "unexpected argument"),
        ("s01-list-runs", [c("list_runs", limit=5, colour="red")], "invalid arguments"),  # unknown key
        ("s01-list-runs", [c("list_runs", limit=5), c("list_runs", limit=5)], "2 tool calls"),
        ("s01-list-runs", [{"name": "list_runs", "args": None, "invalid": "bad JSON"}], "malformed"),
        ("s03-inspect", [c("inspect_run")], "invalid arguments"),  # required field missing
        ("s03-inspect", [c("inspect_run", run="bbbb33334444")], "not an accepted value"),
        ("s13-run-step", [c("run_step", step="training", overrides=["train.epochs=3"])], "invalid arguments"),  # enum
        ("s13-run-step", [c("run_step", step="train")], "missing argument 'overrides'"),
        ("s16-deploy", [c("deploy", run="aaaa11112222", name="other")], "not an accepted value"),
        ("s21-gc", [c("gc", keep_last=3, dry_run=False)], "not an accepted value"),
    ],
)
def test_single_scorer_fails_each_kind_of_mistake(task, calls, why):
    score = score_single(TASK[task], calls, FACTS)
    assert not score.passed and why in score.reason


@pytest.mark.parametrize(
    ("task", "call"),
    [
        ("s01-list-runs", c("list_runs", limit=5)),
        ("s01-list-runs", c("list_runs", limit=5, kind=None)),  # a default value is no extra argument
        ("s02-failed-runs", c("list_runs", status="failed")),
        ("s02-failed-runs", c("list_runs", where="status = 'failed'", limit=20)),  # the other accepted form
        ("s06-compare", c("compare_runs", runs=["bbbb33334444", "aaaa11112222"])),  # order does not matter
        ("s07-diff", c("diff_runs", a="bbbb33334444", b="aaaa11112222")),
        ("s08-preview", c("preview_data", path="./data/penguins.csv", rows=10)),
        ("s13-run-step", c("run_step", step="train", overrides=["train.epochs = 3"])),
        ("s14-run-pipeline", c("run_pipeline", overrides=["train.lr=0.05"], to_step="deploy")),
        ("s16-deploy", c("deploy", run="aaaa11112222")),
        ("s21-gc", c("gc", keep_last=3)),  # dry_run defaults to true
    ],
)
def test_single_scorer_passes_correct_calls(task, call):
    score = score_single(TASK[task], [call], FACTS)
    assert score.passed, score.reason


# ---------------------------------------------------------------------- irrelevance


def test_irrelevance_scorer():
    task = IRRELEVANCE[0]
    assert score_irrelevance(task, [], "Paris.").passed
    assert not score_irrelevance(task, [c("list_runs")], "").passed
    assert not score_irrelevance(task, [{"name": "(none)", "args": None, "invalid": "x"}], "").passed


# ---------------------------------------------------------------------- final state


def _run(project, *, params, status="finished", metrics=None, kind="pipeline"):
    track = Track("r", project=project, kind=kind, params=params, sample_resources=False)
    track.start()
    if metrics:
        track.log_metrics(metrics)
    track.end(status)
    return track.run_id


def _versions(project, name, versions, current):
    folder = project.models_dir / name
    for v in versions:
        (folder / v).mkdir(parents=True, exist_ok=True)
    (folder / "current").write_text(current + "\n")


def test_state_scorer_new_run(project):
    task = EvalTask("t", "multi", "", checks=(StateCheck("new_run", {"params": {"train.epochs": 3}, "evaluated": True}),))
    before = snapshot(project)
    assert score_state(task, project, before, FACTS).reason == "no new pipeline run"
    _run(project, params={"train.epochs": 3}, status="failed")
    assert "did not finish" in score_state(task, project, before, FACTS).reason
    _run(project, params={"train.epochs": 4}, metrics={"test.accuracy": 0.9})
    assert "train.epochs=3" in score_state(task, project, before, FACTS).reason
    _run(project, params={"train.epochs": 3})
    assert score_state(task, project, before, FACTS).reason == "the new run was not evaluated"
    _run(project, params={"train.epochs": 3}, metrics={"test.accuracy": 0.9})
    assert score_state(task, project, before, FACTS).passed
    # runs from before the task do not count
    assert not score_state(task, project, snapshot(project), FACTS).passed
    steps = EvalTask("t", "multi", "", checks=(StateCheck("new_run", {"steps": "evaluate"}),))
    before = snapshot(project)
    _run(project, params={"run.steps": "evaluate,deploy"})
    assert "ran exactly evaluate" in score_state(steps, project, before, FACTS).reason
    _run(project, params={"run.steps": "evaluate"})
    assert score_state(steps, project, before, FACTS).passed


def test_state_scorer_versions_current_and_files(project):
    _versions(project, "proj", ["v1"], "v1")
    added = EvalTask("t", "multi", "", checks=(StateCheck("version_added", {"model": "{model}", "count": 1}),))
    before = snapshot(project)
    assert not score_state(added, project, before, FACTS).passed
    _versions(project, "proj", ["v1", "v2"], "v1")
    assert score_state(added, project, before, FACTS).passed
    _versions(project, "proj", ["v1", "v2", "v3"], "v1")
    assert "2 new versions" in score_state(added, project, before, FACTS).reason

    current = EvalTask("t", "multi", "", checks=(StateCheck("current_version", {"model": "{model}", "version": "v2"}),))
    assert "current version is v1" in score_state(current, project, before, FACTS).reason
    _versions(project, "proj", ["v1", "v2", "v3"], "v2")
    assert score_state(current, project, before, FACTS).passed

    rows = EvalTask("t", "multi", "", checks=(StateCheck("file_rows", {"path": "outputs/p.csv", "min_rows": 2}),))
    assert "does not exist" in score_state(rows, project, before, FACTS).reason
    (project.root / "outputs").mkdir(exist_ok=True)
    (project.root / "outputs" / "p.csv").write_text("a\n1\n")
    assert "has 1 rows" in score_state(rows, project, before, FACTS).reason
    (project.root / "outputs" / "p.csv").write_text("a\n1\n2\n")
    assert score_state(rows, project, before, FACTS).passed


def test_state_scorer_best_deployed(project):
    """Real runs, real packages: the scorer reads the run id each deployed version records."""
    from blase.deploy import deploy_run
    from blase.pipeline import Pipeline
    from blase.track import load_run

    accuracy = {}
    for overrides in (["train.epochs=1", "train.lr=0.00001"], ["train.epochs=20", "train.lr=0.01"]):
        run_id = Pipeline(project, overrides=overrides).run(to_step="evaluate").run_id
        accuracy[run_id] = load_run(run_id, [project.root]).metrics["test.accuracy"]
    worse, better = sorted(accuracy, key=accuracy.get)
    assert accuracy[worse] < accuracy[better]
    task = EvalTask("t", "multi", "", checks=(StateCheck("best_deployed", {"model": "{model}", "metric": "test.accuracy"}),))
    before = snapshot(project)
    assert score_state(task, project, before, FACTS).reason == "model proj has no versions"
    deploy_run(project, worse)
    reason = score_state(task, project, before, FACTS).reason
    assert reason == (f"proj v1 packages run {worse}, not a run with the best test.accuracy "
                      f"{accuracy[better]:.4g}")
    deploy_run(project, better)
    assert score_state(task, project, before, FACTS).passed


# ---------------------------------------------------------------------- pass^k and the record


def _attempt(task, category, repeat, passed):
    return Attempt(task, category, repeat, passed, "ok" if passed else "no", 1.0, 1, [1.0])


def test_pass_rate_and_pass_hat_k():
    result = EvalResult("p", "m", "p:m", 2, ["a", "b", "c"], attempts=[
        _attempt("a", "single", 0, True), _attempt("a", "single", 1, True),
        _attempt("b", "single", 0, True), _attempt("b", "single", 1, False),
        _attempt("c", "irrelevance", 0, False), _attempt("c", "irrelevance", 1, False),
    ])
    cats = result.per_category()
    assert cats["single"]["pass_rate"] == 0.75 and cats["single"]["pass_k"] == 0.5
    assert cats["irrelevance"]["pass_rate"] == 0.0 and cats["irrelevance"]["pass_k"] == 0.0
    assert cats["all"]["pass_rate"] == pytest.approx(0.5) and cats["all"]["pass_k"] == pytest.approx(1 / 3)


def _eval_run(project, score, *, complete=True, provider="ollama", model="qwen2.5:7b"):
    with Track("agent-eval", project=project, kind="agent-eval", sample_resources=False,
               params={"provider": provider, "model": model, "k": 1, "complete": complete}) as t:
        t.log_metrics({"pass_rate.all": score})
        return t.run_id


def test_auto_warns_until_a_complete_eval_passes_the_threshold(project):
    from blase.agent import ProviderSpec

    spec = ProviderSpec("ollama", "qwen2.5:7b", source="flag")
    assert "no complete agent eval on record" in unevaluated_warning(project, spec)
    partial = _eval_run(project, 0.95, complete=False)
    assert partial in unevaluated_warning(project, spec)  # a subset does not count
    low = _eval_run(project, 0.5)
    assert low in unevaluated_warning(project, spec) and "below agent.eval_threshold 80%" in unevaluated_warning(project, spec)
    _eval_run(project, 0.9, model="another")
    assert unevaluated_warning(project, spec) is not None  # another model's eval does not count
    _eval_run(project, 0.85)
    assert unevaluated_warning(project, spec) is None
    assert [f["score"] for f in eval_on_record(project, "ollama", "qwen2.5:7b")][:2] == [0.85, 0.5]


def test_eval_command_on_a_subset_with_a_scripted_model(project, cli, monkeypatch):
    """`blase agent eval` end to end: scratch project, scoring, table and the agent-eval run."""
    import blase.agent._providers as providers
    from blase.agent._fake import ScriptedChatModel, call
    from langchain_core.messages import HumanMessage, ToolMessage

    from blase.track import list_runs

    def oracle(messages):
        if isinstance(messages[-1], ToolMessage):
            return "done."
        text = next(m for m in reversed(messages) if isinstance(m, HumanMessage)).content
        if "5 most recent" in text:
            return call("list_runs", {"limit": 5})
        if "train.epochs=3" in text:
            return call("run_pipeline", {"overrides": ["train.epochs=3"], "to_step": "train"})
        if "Which runs failed" in text:
            return call("list_runs", {"status": "finished"})  # a wrong value
        return "I can't help with that."

    monkeypatch.setattr(providers, "make_chat_model", lambda spec: ScriptedChatModel(repeat=oracle))
    result = cli("agent", "eval", "--provider", "openai", "--model", "fake", "--task", "s01", "--task", "s02",
                 "--task", "i01", "--task", "m01", "--project", str(project.root), "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    outcome = {a["task"]: a["passed"] for a in data["attempts"]}
    assert outcome == {"s01-list-runs": True, "s02-failed-runs": False, "i01-capital": True, "m01-epochs": True}
    assert data["categories"]["single"]["pass_rate"] == 0.5 and data["complete"] is False
    recorded = [r for r in list_runs([project.root]) if r.kind == "agent-eval"]
    assert [r.id for r in recorded] == [data["run_id"]]
    assert recorded[0].params["provider"] == "openai" and recorded[0].params["k"] == 1
    assert recorded[0].metrics["pass_rate.single"] == 0.5 and recorded[0].metrics["pass_k.multi"] == 1.0
