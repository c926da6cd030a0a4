"""Tool retrieval, argument grounding and facts answers for small models (no model needed).

The paraphrases and off-topic requests here are this file's own wording, not the eval suite's:
retrieval must find the tool for requests it was never shown, and the suite's prompts must not
be a lookup table.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

pytest.importorskip("langgraph")

from blase.agent._decode import NONE, decide_call, rank_tools
from blase.agent._eval import fill
from blase.agent._facts import lead_is_safe, parse_result, render_facts
from blase.agent._retrieval import MAX_SHOWN, ToolIndex
from blase.agent._values import ProjectValues, ground, literals
from blase.agent.eval_tasks import SINGLE
from blase.tools import get_tool, tool_schemas

RUN, RUN2 = "53071046dedf", "9eda4a1df875"
FACTS = {"run": RUN, "run2": RUN2, "model": "shop"}
VALUES = ProjectValues(runs=(RUN2, RUN), models=("shop",), versions={"shop": ("v1", "v2")},
                       data_files=("data/fresh.csv", "data/train.csv"), columns=("price", "island", "species"))

#: (tool, request, the arguments a person means): this file's own wording.
PARAPHRASES = [
    ("list_runs", "Give me an overview of the last 10 experiments.", {"limit": 10}),
    ("list_runs", "Did any of my runs crash? List only the failed runs.", {"status": "failed"}),
    ("inspect_run", "What parameters and metrics does run {run} have?", {"run": RUN}),
    ("read_run_log", "Print the last 3 log events of run {run2}.", {"run": RUN2, "tail": 3}),
    ("read_run_log", "What happened in run {run}? Show its step_failed events.", {"run": RUN, "event": "step_failed"}),
    ("compare_runs", "Put runs {run2} and {run} next to each other and compare their metrics.", {"runs": [RUN2, RUN]}),
    ("diff_runs", "Why did run {run2} come out different from {run}? Show the diff.", {"a": RUN2, "b": RUN}),
    ("preview_data", "Peek at 3 rows of data/train.csv.", {"path": "data/train.csv", "rows": 3}),
    ("suggest_schema", "Which column kinds would you suggest for data/train.csv with island as label?",
     {"path": "data/train.csv", "label": "island"}),
    ("show_config", "Print the configuration of the project.", {}),
    ("list_models", "What model versions do we have deployed?", {}),
    ("check_drift", "Has data/fresh.csv shifted compared to the training data of model shop?",
     {"model": "shop", "data": "data/fresh.csv"}),
    ("run_step", "Only run the prepare step.", {"step": "prepare"}),
    ("run_pipeline", "Run the full pipeline again with seed=3.", {"overrides": ["seed=3"]}),
    ("evaluate", "Evaluate run {run2} on the test split again.", {"run": RUN2}),
    ("reproduce", "Re-execute run {run2} and verify that it is reproducible.", {"run": RUN2, "verify": True}),
    ("deploy", "Package run {run2} as a new version.", {"run": RUN2}),
    ("predict", "Use model shop to score data/fresh.csv into outputs/scores.csv.",
     {"model": "shop", "data": "data/fresh.csv", "out": "outputs/scores.csv"}),
    ("trigger_update", "Retrain model shop from scratch on the labelled rows of data/fresh.csv.",
     {"model": "shop", "data": "data/fresh.csv", "mode": "retrain"}),
    ("promote", "Switch model shop so that v2 serves.", {"name": "shop", "version": "v2"}),
    ("rollback", "Revert model shop to its previous version.", {"name": "shop"}),
    ("gc", "Clean up the cache but keep the last 5 runs.", {"keep_last": 5}),
]

OFF_TOPIC = [
    "Who wrote Pride and Prejudice?", "Compose a short poem about the sea.", "How do you say thank you in German?",
    "Will it rain in London this weekend?", "Reserve two seats for the cinema tonight.",
    "Text my colleague that I am late.", "What is the square root of 144?", "Buy me a new laptop online.",
    "Tell me something funny about cats.", "How do I sort a dictionary by value in Python?",
    "What time is it in Tokyo?", "Recommend a good book about history.",
]


class NoModel:
    """A ConstrainedLM that fails the test if the decoder asks it anything."""

    def pick(self, *a, **k):
        raise AssertionError("the model was asked to pick a tool")

    def json(self, *a, **k):
        raise AssertionError("the model was asked for arguments")


def _rank(request: str) -> list[str]:
    return [r.name for r in rank_tools(request, tool_schemas(), VALUES)]


@pytest.mark.parametrize("task", SINGLE, ids=lambda t: t.id)
def test_retrieval_finds_the_tool_of_every_single_task_in_its_top_8(task):
    top = _rank(fill(task.prompt, FACTS))[:MAX_SHOWN]
    assert {e.tool for e in task.expected} & set(top), top


@pytest.mark.parametrize(("tool", "request_", "args"), PARAPHRASES, ids=[p[1][:40] for p in PARAPHRASES])
def test_retrieval_finds_paraphrases_it_was_never_shown(tool, request_, args):
    assert tool in _rank(fill(request_, FACTS))[:3]


def test_retrieval_ranks_the_right_tool_first_for_most_paraphrases():
    first = [tool == _rank(fill(req, FACTS))[0] for tool, req, _ in PARAPHRASES]
    assert sum(first) >= 0.85 * len(first), [p[1] for p, ok in zip(PARAPHRASES, first, strict=True) if not ok]


@pytest.mark.parametrize(("tool", "request_", "args"), PARAPHRASES, ids=[p[1][:40] for p in PARAPHRASES])
def test_paraphrases_get_the_arguments_they_name_without_a_model_call(tool, request_, args):
    decision = decide_call(fill(request_, FACTS), tool_schemas(), VALUES, NoModel())
    if decision.tool == tool:  # a wrong first rank is counted by the test above
        assert decision.args == args
        get_tool(tool).validate(decision.args)


@pytest.mark.parametrize("request_", OFF_TOPIC)
def test_off_topic_requests_get_no_tool(request_):
    decision = decide_call(request_, tool_schemas(), VALUES, NoModel())
    assert decision.tool is None, decision.trace


def test_a_request_naming_a_project_value_is_never_off_topic():
    """Words alone say little ("have a look at 9eda4a1df875"): a run id it names says it all."""
    decision = decide_call(f"and {RUN2}?", tool_schemas(), VALUES, NoModel())
    assert decision.tool is not None and RUN2 in json.dumps(decision.args)


def test_the_index_is_built_from_the_registry_not_from_prompts():
    index = ToolIndex(tool_schemas())
    assert set(index.names) == {s["function"]["name"] for s in tool_schemas()}
    # a tool renamed by a plugin is still found by its description
    spec = {"type": "function", "function": {"name": "zz_unknown", "description": "Send a pager alert to on-call.",
                                             "parameters": {"type": "object", "properties": {}}}}
    assert ToolIndex([*tool_schemas(), spec]).retrieve("page the on-call person with an alert")[0].name == "zz_unknown"


# ---------------------------------------------------------------------- grounding


def test_literals_keep_override_and_path_words_out_of_the_words():
    lit = literals("Run the train step with train.lr=0.05 on data/new.csv, memory 2GB, v3")
    assert lit.overrides == ("train.lr=0.05",) and lit.paths == ("data/new.csv",)
    assert lit.sizes == ("2GB",) and lit.versions == ("v3",)
    assert lit.words.count("train") == 1  # the step word, not the one inside the override


def test_ground_offers_project_values_for_required_arguments_it_cannot_fill():
    params = get_tool("deploy").schema()["function"]["parameters"]
    g = ground("package the best run", params, VALUES)
    assert "run" not in g.fixed and g.choices["run"] == ["latest", RUN2, RUN]
    g = ground("package the latest run", params, VALUES)
    assert g.fixed == {"run": "latest"} and g.complete


def test_ground_leaves_out_optional_arguments_the_request_does_not_name():
    params = get_tool("read_run_log").schema()["function"]["parameters"]
    g = ground(f"show the log of {RUN}", params, VALUES)
    assert g.fixed == {"run": RUN} and g.complete


# ---------------------------------------------------------------------- facts


def test_facts_state_the_result_and_invent_nothing(project):
    """A real list_runs result: every run id and metric in the facts is in the result."""
    from blase.tools import ToolContext, call_tool

    from blase.track import Track

    ids = []
    for accuracy in (0.8125, 0.90625):
        with Track("pipeline", project=project, kind="pipeline", sample_resources=False) as track:
            track.log_metrics({"test.accuracy": accuracy, "test.n": 64})
            ids.append(track.run_id)
    result = call_tool("list_runs", {"limit": 5}, ToolContext.for_project(project)).model_dump(mode="json")
    text = "\n".join(render_facts("list_runs", result))
    assert all(rid in text for rid in ids)
    assert "test.accuracy=0.8125" in text and "test.accuracy=0.9062" in text
    assert not lead_is_safe("Your best run is 0.123456 accurate.", text)
    assert lead_is_safe("Here are your recent runs.", text)


def test_facts_from_a_result_cut_to_its_size_budget():
    full = {"runs": [{"id": f"run{i:08d}", "status": "finished", "metrics": {"acc": i / 10}} for i in range(40)],
            "notes": []}
    text = json.dumps(full)[:900] + " ... [result truncated: 2000 more characters]"
    parsed = parse_result(text)
    assert parsed["runs"][0]["id"] == "run00000000" and len(parsed["runs"]) < 40
    assert "run00000000" in "\n".join(render_facts("list_runs", parsed))
    assert parse_result("Tool error: no run abc") is None


def test_none_is_a_choice_the_decoder_reports():
    decision = decide_call("What is the capital of France?", tool_schemas(), VALUES, NoModel())
    assert decision.tool is None and decision.trace["choice"].startswith(NONE)


def test_ground_never_gives_two_run_arguments_the_same_named_run():
    params = get_tool("diff_runs").schema()["function"]["parameters"]
    g = ground(f"what changed in run {RUN} since then?", params, VALUES)
    assert g.fixed == {"a": RUN} and g.choices == {"b": ["latest", RUN2, RUN]}


def test_an_old_run_named_in_a_request_is_known_however_many_runs_came_after(project):
    """Found by a second suite: after 30 newer runs, a request naming the first run lost it."""
    import os
    import time

    from blase.agent._values import MAX_OFFERED_RUNS, project_values

    ids = [f"{n:012x}" for n in range(MAX_OFFERED_RUNS + 5)]
    for n, rid in enumerate(ids):
        (project.runs_dir / rid).mkdir(parents=True)
        os.utime(project.runs_dir / rid, (time.time() + n, time.time() + n))
    values = project_values(project)
    decision = decide_call(f"Show me the details of run {ids[0]}.", tool_schemas(), values, NoModel())
    assert (decision.tool, decision.args) == ("inspect_run", {"run": ids[0]})
    params = get_tool("deploy").schema()["function"]["parameters"]
    offered = ground("package the best run", params, values).choices["run"]
    assert len(offered) == MAX_OFFERED_RUNS + 1 and offered[1] == ids[-1]  # 'latest', then the newest


# ---------------------------------------------------------------------- structure: ranges, questions, metrics, clauses

METRIC_VALUES = replace(VALUES, metrics=("test.accuracy", "val.loss"))


@pytest.mark.parametrize(("request_", "tool", "args"), [
    ("Execute the steps transform through train.", "run_pipeline", {"from_step": "transform", "to_step": "train"}),
    ("Do prepare and train, with seed=4.", "run_pipeline",
     {"from_step": "prepare", "to_step": "train", "overrides": ["seed=4"]}),
    ("Run the pipeline until the train step.", "run_pipeline", {"to_step": "train"}),
    ("Start the pipeline from prepare.", "run_pipeline", {"from_step": "prepare"}),
    ("Execute just the evaluate step.", "run_step", {"step": "evaluate"}),
])
def test_steps_named_alone_or_as_a_range_pick_the_tool_that_holds_them(request_, tool, args):
    """One step named alone is run_step's; two steps, or one after "from"/"until", are the ends
    of run_pipeline's range (in pipeline order, whatever order the request names them in)."""
    decision = decide_call(request_, tool_schemas(), VALUES, NoModel())
    assert (decision.tool, decision.args) == (tool, args)


@pytest.mark.parametrize(("request_", "sort"), [
    ("Which run scored the highest test accuracy?", "-test.accuracy"),
    ("Show the run with the lowest test accuracy.", "test.accuracy"),
    ("Sort my runs by val loss, best first.", "val.loss"),  # lower is better for a loss
])
def test_a_metric_the_project_logs_sorts_the_run_list(request_, sort):
    decision = decide_call(request_, tool_schemas(), METRIC_VALUES, NoModel())
    assert decision.tool == "list_runs" and decision.args["sort"] == sort
    get_tool("list_runs").validate(decision.args)


def test_a_question_prefers_a_read_tool_and_a_tools_own_common_words_count():
    from blase.agent._decode import is_question

    assert is_question("What model versions do we have deployed?") and not is_question("Can you deploy run x?")
    assert _rank("What model versions do we have deployed?")[0] == "list_models"
    # "make" and "only" are stop words elsewhere, but words of promote's and run_step's own vocabulary
    assert decide_call("Make v2 the version that serves for shop.", tool_schemas(), VALUES, NoModel()).args == {
        "name": "shop", "version": "v2"}
    assert _rank("Rerun only the transform step.")[0] == "run_step"


def _split(request: str) -> list[str]:
    from blase.agent._clauses import clauses
    from blase.agent._decode import retrieval_pick

    return clauses(request, lambda text: retrieval_pick(text, tool_schemas(), METRIC_VALUES))


def test_a_read_then_an_action_on_what_it_found_is_two_clauses():
    assert _split("Which run has the lowest val loss? Reproduce it and verify.") == [
        "Which run has the lowest val loss", "Reproduce it and verify."]
    assert _split("Look up the run with the highest test accuracy, then package it as a new version of shop.") == [
        "Look up the run with the highest test accuracy", "package it as a new version of shop."]
    # one clause: a conditional action (a small model cannot judge "if needed"), an action that
    # refers to nothing found, a write first, a range of steps, two runs of one comparison
    for whole in ["Check the drift of data/fresh.csv against model shop and retrain it if needed.",
                  "List my runs and deploy run 9eda4a1df875 as shop.",
                  "Train with seed=3 and evaluate it.",
                  f"Put runs {RUN2} and {RUN} next to each other and compare their metrics."]:
        assert _split(whole) == [whole]


def test_the_second_round_acts_on_the_run_the_first_one_found():
    from blase.agent._turns import tool_turn
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    tools = tool_schemas()
    asked = [HumanMessage("Find the run with the best test accuracy and deploy it as a new version of model shop.")]
    first = tool_turn(NoModel(), asked, tools, None, METRIC_VALUES, "retrieval")
    call = first[0]["tool_calls"][0]["function"]
    assert call["name"] == "list_runs" and json.loads(call["arguments"]) == {"sort": "-test.accuracy"}
    listed = json.dumps({"notes": [], "runs": [{"id": RUN, "name": "b"}, {"id": RUN2, "name": "a"}]})
    history = [*asked, AIMessage("", tool_calls=[{"name": "list_runs", "args": {}, "id": "c1"}]),
               ToolMessage(listed, tool_call_id="c1", name="list_runs")]
    second = tool_turn(NoModel(), history, tools, None, METRIC_VALUES, "retrieval")
    call = second[0]["tool_calls"][0]["function"]
    assert call["name"] == "deploy" and json.loads(call["arguments"]) == {"run": RUN, "name": "shop"}
    assert second[2]["clause"] == {"index": 1, "of": 2, "text": f"deploy run {RUN} as a new version of model shop."}
    done = [*history, AIMessage("", tool_calls=[{"name": "deploy", "args": {}, "id": "c2"}]),
            ToolMessage('{"name": "shop", "version": "v3"}', tool_call_id="c2", name="deploy")]
    assert tool_turn(NoModel(), done, tools, None, METRIC_VALUES, "retrieval") is None  # now the answer
    # a read that found nothing, or a refused action, ends the question: nothing acts on a guess
    failed = [*asked, AIMessage("", tool_calls=[{"name": "list_runs", "args": {}, "id": "c1"}]),
              ToolMessage("Tool error: no runs", tool_call_id="c1", name="list_runs", status="error")]
    assert tool_turn(NoModel(), failed, tools, None, METRIC_VALUES, "retrieval") is None


def test_facts_of_a_run_log_show_times_and_event_data_as_pairs_not_raw_json():
    from blase.tools._base import clip_value

    data = {"step": "evaluate", "inputs": {"shards": "ab" * 16, "model": "cd" * 16}, "outputs": {"p": "x" * 400}}
    clipped = clip_value(data, 200)  # what read_run_log sends for a long event: cut JSON text
    assert isinstance(clipped, str) and clipped.startswith('{"step"')
    result = {"run": RUN, "events": [{"time": 1796652000.5, "event": "step", "data": clipped}], "matched": 1, "total": 9}
    lines = render_facts("read_run_log", parse_result(json.dumps(result)))
    row = next(line for line in lines if line.startswith("- event step"))
    assert "time=2026-12-07 " in row and row.count("UTC") == 1
    assert "data: step=evaluate, inputs=(shards=" + "ab" * 16 in row and '{"' not in row


@pytest.mark.parametrize(("request_", "overrides"), [
    ("Run the pipeline again with a learning rate of 0.05.", ["train.lr=0.05"]),
    ("Rerun everything with seed 11.", ["seed=11"]),
    ("Run the full pipeline, three epochs and dropout 0.2 this time.", ["train.dropout=0.2", "train.epochs=3"]),
    ("Run the pipeline with train.epochs=3 and batch size 16.", ["train.epochs=3", "train.batch_size=16"]),
])
def test_settings_stated_in_words_become_overrides_from_the_configs_own_keys(request_, overrides):
    from blase.agent._values import pipeline_settings

    assert pipeline_settings()["epochs"] == "train.epochs" and "version" not in pipeline_settings()
    decision = decide_call(request_, tool_schemas(), VALUES, NoModel())
    assert decision.tool == "run_pipeline" and sorted(decision.args["overrides"]) == sorted(overrides)
    get_tool("run_pipeline").validate(decision.args)
