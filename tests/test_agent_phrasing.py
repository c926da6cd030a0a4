"""Phrasings people type that no suite of ours held, for the embedded model's decoder (no model).

``UNSEEN`` was written after the first round of fixes made against bench/eval_heldout2.yaml and
measured before the second one: 26 of its 38 requests got the right tool then (every off-topic
request got none). Those failures were fixed by their cause (stop words for "print", the path
rule for a data file, a step named in another form, the metric "validation loss"...), never by
their wording; the two requests whose first pick differs from ours accept both readings. The
rules tests below use their own words again.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langgraph")

from blase.agent._decode import decide_call, rank_tools
from blase.agent._retrieval import tokens
from blase.agent._values import ProjectValues, ground, literals
from blase.tools import get_tool, tool_schemas

RUN, RUN2 = "53071046dedf", "9eda4a1df875"
VALUES = ProjectValues(runs=(RUN2, RUN), models=("shop",), versions={"shop": ("v1", "v2", "v3")},
                       data_files=("data/fresh.csv", "data/train.csv"), columns=("price", "island", "species"),
                       metrics=("test.accuracy", "val.loss", "val.accuracy", "test.f1"))


class NoModel:
    """A ConstrainedLM that fails the test if the decoder asks it anything."""

    def pick(self, *a, **k):
        raise AssertionError("the model was asked to pick a tool")

    def json(self, *a, **k):
        raise AssertionError("the model was asked for arguments")

    def answer(self, *a, **k):
        return "", {}


class OpenArguments(NoModel):
    """Leaves every argument the request does not fix unwritten (the tool choice is what is tested)."""

    def json(self, system, user, schema):
        return {}, {}


#: (accepted tools, request, the arguments a person means).
UNSEEN = [
    ({"list_runs"}, "give me a table of everything I've run so far", {}),
    ({"list_runs"}, "show the 20 newest runs", {"limit": 20}),
    ({"list_runs"}, "any runs still running?", {"status": "running"}),
    ({"list_runs"}, "rank my experiments by validation loss", {"sort": "val.loss"}),
    ({"inspect_run", "read_run_log"}, f"open run {RUN} and tell me what happened", {"run": RUN}),
    ({"inspect_run"}, "what went wrong in my last run?", {"run": "latest"}),
    ({"read_run_log"}, f"print the events of {RUN2}", {"run": RUN2}),
    ({"read_run_log"}, f"show me the last 15 log entries for {RUN}", {"run": RUN, "tail": 15}),
    ({"compare_runs"}, f"how do {RUN} and {RUN2} stack up against each other?", {"runs": [RUN, RUN2]}),
    ({"diff_runs"}, f"why is {RUN2} not the same as {RUN}?", {"a": RUN2, "b": RUN}),
    ({"preview_data"}, "open data/train.csv and show me a few lines", {"path": "data/train.csv"}),
    ({"suggest_schema"}, "profile data/fresh.csv and tell me which columns look categorical", {"path": "data/fresh.csv"}),
    ({"show_config"}, "print my blase.yaml", {}),
    ({"show_config"}, "which label column and model type is the project configured with?", {}),
    ({"list_models"}, "list the deployed models", {}),
    ({"list_models"}, "which version of shop is serving right now?", {}),
    ({"check_drift"}, "is data/fresh.csv still similar to what shop was trained on?",
     {"model": "shop", "data": "data/fresh.csv"}),
    ({"check_drift"}, "run a drift check of shop against data/fresh.csv", {"model": "shop", "data": "data/fresh.csv"}),
    ({"run_step"}, "re-run the evaluation step only", {"step": "evaluate"}),
    ({"run_step"}, "kick off the extract step", {"step": "extract"}),
    ({"run_pipeline"}, "rerun the pipeline with a learning rate of 0.005", {"overrides": ["train.lr=0.005"]}),
    ({"run_pipeline"}, "run it all again from the training step onwards", {"from_step": "train"}),
    ({"run_pipeline", "run_step"}, "train a new model for 30 epochs", {"overrides": ["train.epochs=30"]}),
    ({"run_pipeline"}, "go from extraction up to the transform step", {"from_step": "extract", "to_step": "transform"}),
    ({"evaluate"}, f"compute test metrics for {RUN}", {"run": RUN}),
    ({"reproduce"}, f"re-run {RUN2} exactly as it was recorded", {"run": RUN2}),
    ({"deploy"}, f"turn run {RUN} into a model package", {"run": RUN}),
    ({"deploy"}, "deploy my latest run", {"run": "latest"}),
    ({"predict"}, "run shop on data/fresh.csv, results to outputs/fresh_scores.csv",
     {"model": "shop", "data": "data/fresh.csv", "out": "outputs/fresh_scores.csv"}),
    ({"predict"}, "generate predictions with shop@v2 for data/fresh.csv into outputs/p.parquet",
     {"model": "shop@v2", "data": "data/fresh.csv", "out": "outputs/p.parquet"}),
    ({"promote"}, "make v3 the live version of shop", {"name": "shop", "version": "v3"}),
    ({"promote"}, "promote shop v2 to production", {"name": "shop", "version": "v2"}),
    ({"rollback"}, "shop v3 is broken, roll it back", {"name": "shop"}),
    ({"rollback"}, "put shop back on v1", {"name": "shop", "to": "v1"}),
    ({"trigger_update"}, "fine tune shop with the fresh labels in data/fresh.csv",
     {"model": "shop", "data": "data/fresh.csv", "mode": "finetune"}),
    ({"trigger_update"}, "retrain shop on the newly labelled data/fresh.csv",
     {"model": "shop", "data": "data/fresh.csv", "mode": "retrain"}),
    ({"gc"}, "free up some disk space, keep the last 2 runs", {"keep_last": 2}),
    ({"gc"}, "shrink the cache to 5GB", {"max_size": "5GB"}),
]

UNSEEN_OFF_TOPIC = [
    "good morning!", "who won the world cup in 2018?", "explain what a p-value is", "how do I install pandas?",
    "write a cover letter for a data science job", "send the predictions to my boss on slack", "what's 2 + 2?",
    "format my hard drive", "recommend a statistics textbook", "what does DVC do differently from git?",
    "delete my email inbox", "can you upload data/train.csv to dropbox?",
]


# ---------------------------------------------------------------------- third round, after its fixes
#: Written after the fixes for bench/eval_heldout3.yaml's misses (tested at the end of this file) and
#: measured before the next ones (decoder only, no model): 30 of the 36 got the right tool and
#: arguments, the 12 off-topic ones got none. The misses' causes ("anything I ran recently": "-ly";
#: "order my runs by f1": "order" is a tool's word, not only a purchase; "open the configuration":
#: "open" asks to see; "only redo the transformation": a step's noun after "redo"; "from scratch":
#: the meaning an enum's description gives a value; "modles?": a terse request of one tool's name)
#: were then fixed, and are tested at the end in other words.
UNSEEN3 = [
    ({"list_runs"}, "hey, anything i ran recently?", {}),
    ({"list_runs"}, "show me all the runs that are finished", {"status": "finished"}),
    ({"list_runs"}, "could u list 8 latest experiments", {"limit": 8}),
    ({"list_runs"}, "order my runs by f1 on test", {"sort": "-test.f1"}),
    ({"inspect_run"}, f"tell me everything about {RUN2}", {"run": RUN2}),
    ({"inspect_run"}, "what metrics did the last run get?", {"run": "latest"}),
    ({"read_run_log"}, f"i would like to read the logs for {RUN}, the last 5 entries", {"run": RUN, "tail": 5}),
    ({"compare_runs"}, f"{RUN} vs {RUN2}: which is better?", {"runs": [RUN, RUN2]}),
    ({"diff_runs", "compare_runs"}, f"what is different between {RUN2} and {RUN}", {}),
    ({"preview_data"}, "peek into data/fresh.csv", {"path": "data/fresh.csv"}),
    ({"preview_data"}, "display the header and 3 lines of data/train.csv", {"path": "data/train.csv", "rows": 3}),
    ({"suggest_schema"}, "what types do the columns in data/train.csv have and how should I encode them?", {"path": "data/train.csv"}),
    ({"suggest_schema"}, "Kindly infer a schema for data/fresh.csv", {"path": "data/fresh.csv"}),
    ({"show_config"}, "what seed does the project use", {}),
    ({"show_config"}, "open the configuration", {}),
    ({"list_models"}, "which shop version is in production?", {}),
    ({"list_models"}, "modles?", {}),
    ({"check_drift"}, "monitor shop on data/fresh.csv", {"model": "shop", "data": "data/fresh.csv"}),
    ({"check_drift"}, "are the patients in data/fresh.csv different from the training population of shop?", {"model": "shop", "data": "data/fresh.csv"}),
    ({"run_step"}, "only redo the transformation, nothing else", {"step": "transform"}),
    ({"run_step", "run_pipeline"}, "train again with 20 epochs", {"overrides": ["train.epochs=20"]}),
    ({"run_pipeline"}, "execute the full pipeline please", {}),
    ({"run_pipeline"}, "run from prepare to train with batch size 32", {"from_step": "prepare", "to_step": "train", "overrides": ["train.batch_size=32"]}),
    ({"run_pipeline"}, "resume the failed run " + RUN, {"resume": RUN}),
    ({"evaluate"}, "score the newest model on held-out test data", {}),
    ({"reproduce"}, f"can {RUN} be reproduced bit for bit? check it", {"run": RUN, "verify": True}),
    ({"deploy"}, f"ship {RUN2}", {"run": RUN2}),
    ({"deploy"}, f"release the model from run {RUN} under the name shop", {"run": RUN, "name": "shop"}),
    ({"predict"}, "apply shop to data/fresh.csv and put the output in outputs/preds.parquet", {"model": "shop", "data": "data/fresh.csv", "out": "outputs/preds.parquet"}),
    ({"trigger_update"}, "shop needs updating with data/fresh.csv, from scratch", {"model": "shop", "data": "data/fresh.csv", "mode": "retrain"}),
    ({"promote"}, "set shop v3 as current", {"name": "shop", "version": "v3"}),
    ({"promote"}, "activate version v2 of shop", {"name": "shop", "version": "v2"}),
    ({"rollback"}, "revert shop", {"name": "shop"}),
    ({"rollback"}, "undo the last promote of shop", {"name": "shop"}),
    ({"gc"}, "clean up the cache but keep the last 3 runs", {"keep_last": 3}),
    ({"gc"}, "my disk is full, what can blase delete?", {}),
]

UNSEEN3_OFF_TOPIC = [
    "yo", "what's the weather in Berlin tomorrow?", "tell me a joke about statisticians",
       "how does XGBoost handle missing values?", "please wipe my laptop", "who are you?",
       "can you order pizza for the team", "explain overfitting like I'm five", "is R better than Python for biostatistics?",
       "write a haiku about gradient descent", "what time is it", "post our accuracy on twitter"]


def _decide(request: str, lm=None):
    return decide_call(request, tool_schemas(), VALUES, lm or OpenArguments())


@pytest.mark.parametrize(("tools", "request_", "args"), UNSEEN + UNSEEN3, ids=[u[1][:40] for u in UNSEEN + UNSEEN3])
def test_unseen_requests_get_the_tool_and_the_arguments_they_name(tools, request_, args):
    decision = _decide(request_)
    assert decision.tool in tools, decision.trace
    assert {k: decision.args.get(k) for k in args} == args, decision.args


@pytest.mark.parametrize("request_", UNSEEN_OFF_TOPIC + UNSEEN3_OFF_TOPIC)
def test_unseen_off_topic_requests_get_no_tool(request_):
    decision = _decide(request_, NoModel())
    assert decision.tool is None, decision.trace


# ---------------------------------------------------------------------- "retrain": which one


@pytest.mark.parametrize("request_", [
    "could we retrain using 12 epochs?", "Retrain shop from scratch with 5 epochs", "re-train it with seed=9",
    "retrain the network with a learning rate of 0.2"])
def test_retrain_naming_no_new_data_is_a_pipeline_run_with_the_settings(request_):
    """The deployed model's update needs new data; a request naming none but settings wants a
    new training run with them (before: an update, and the model guessed a data file)."""
    decision = _decide(request_, NoModel())
    assert decision.tool in ("run_pipeline", "run_step"), decision.trace
    assert decision.args["overrides"], decision.args


@pytest.mark.parametrize("request_", [
    "retrain shop on data/fresh.csv", "retrain shop with the newly collected samples",
    "retrain shop on data/fresh.csv with 3 epochs", "update shop with the new patients"])
def test_retrain_naming_new_data_updates_the_deployed_model(request_):
    assert _decide(request_).tool == "trigger_update"


def test_retrain_naming_nothing_is_a_pipeline_run():
    assert _decide("retrain the model", NoModel()).tool == "run_pipeline"


# ---------------------------------------------------------------------- words and their forms


def test_every_form_of_a_word_has_one_stem():
    assert len(set(tokens("compare compared comparing compares"))) == 1
    assert tokens("ran running run") == ["run"] * 3
    assert tokens("rolled") == ["roll"]


def test_filler_words_do_not_make_a_request_off_topic():
    assert _decide("could you pull up my settings at the moment", NoModel()).tool == "show_config"


def test_a_latest_run_is_one_run_and_the_latest_runs_a_list():
    assert _decide("what happened in my most recent experiment?", NoModel()).args == {"run": "latest"}
    decision = _decide("show my last 4 runs", NoModel())
    assert (decision.tool, decision.args) == ("list_runs", {"limit": 4})


def test_step_ranges_in_words_and_forms():
    decision = _decide("begin with transform and stop at evaluation", NoModel())
    assert (decision.tool, decision.args) == ("run_pipeline", {"from_step": "transform", "to_step": "evaluate"})
    decision = _decide("do not train; redo just the preparation step", NoModel())
    assert (decision.tool, decision.args) == ("run_step", {"step": "prepare"})


def test_a_named_step_rerun_is_that_step():
    decision = _decide("redo the transform step with seed 5", NoModel())
    assert (decision.tool, decision.args) == ("run_step", {"step": "transform", "overrides": ["seed=5"]})


def test_slash_joined_words_are_not_paths():
    lit = literals("show the train/val/test sizes of data/raw/ and ./extra.csv, input/output too")
    assert lit.paths == ("data/raw/", "./extra.csv")


# ---------------------------------------------------------------------- arguments


def test_a_number_fills_only_an_argument_whose_bounds_allow_it():
    params = get_tool("trigger_update").schema()["function"]["parameters"]
    g = ground("we labelled 120 more rows in data/fresh.csv, update shop", params, VALUES)
    assert "replay" not in g.fixed and g.fixed["data"] == "data/fresh.csv"
    params = get_tool("list_runs").schema()["function"]["parameters"]
    assert ground("the last 7 runs", params, VALUES).fixed == {"limit": 7}


def test_checking_that_a_rerun_matches_is_a_verified_reproduction():
    decision = _decide(f"rerun {RUN} and confirm the weights come out identical", NoModel())
    assert (decision.tool, decision.args) == ("reproduce", {"run": RUN, "verify": True})
    assert _decide(f"reproduce {RUN}", NoModel()).args == {"run": RUN}


@pytest.mark.parametrize(("request_", "sort"), [
    ("which experiment had the lowest validation loss?", "val.loss"),
    ("list the runs from the least accurate on the test set", "test.accuracy"),
    ("rank runs by test f1", "-test.f1"),
    ("sort my runs by val loss", "val.loss"),  # the best first: a loss's lowest
    ("what is the accuracy of my best experiment?", "-test.accuracy"),  # the test split's, of two
])
def test_metrics_are_named_by_their_parts_in_any_form(request_, sort):
    decision = _decide(request_, NoModel())
    assert (decision.tool, decision.args.get("sort")) == ("list_runs", sort), decision.trace


# ---------------------------------------------------------------------- no tool


@pytest.mark.parametrize("request_", [
    "upload data/train.csv to my google drive", f"could you please email the metrics of {RUN} to my PI",
    "how do I promote shop v2?", "how to make a violin plot in seaborn"])
def test_actions_outside_the_project_and_how_to_questions_get_words_not_tools(request_):
    decision = _decide(request_, NoModel())
    assert decision.tool is None, decision.trace
    assert decision.trace["choice"].startswith("none")


def test_a_how_to_question_a_read_tool_answers_fully_still_reads():
    assert _decide("how can I see which runs failed?", NoModel()).tool == "list_runs"


def test_a_question_about_two_runs_prefers_a_tool_that_takes_both():
    ranked = [r.name for r in rank_tools(f"how different are {RUN} and {RUN2}?", tool_schemas(), VALUES)]
    assert ranked.index("diff_runs") < ranked.index("inspect_run")


# ---------------------------------------------------------------------- the tool


def test_evaluate_latest_is_the_latest_trained_run():
    """"latest" resumed the newest run of any kind (an assistant session): no model to evaluate."""
    tool = get_tool("evaluate")
    assert tool.validate({"run": "latest"}).run is None
    assert tool.recommend({"run": "latest"}) == "blase run --from evaluate --to evaluate"
    assert tool.validate({"run": RUN}).run == RUN


def test_it_names_the_run_a_read_found_so_the_action_keeps_its_tool():
    """Found by the llm test of two rounds: in a project with one data file, "deploy it as a new
    version" went to trigger_update, as "it" left deploy's run open; "it" is the run the read found."""
    from dataclasses import replace

    from blase.agent._clauses import clauses
    from blase.agent._decode import retrieval_pick

    values = replace(VALUES, data_files=("data/train.csv",))
    parts = clauses("Find the run with the best test f1 and deploy it as a new version.",
                    lambda text: retrieval_pick(text, tool_schemas(), values))
    assert len(parts) == 2 and retrieval_pick(parts[1], tool_schemas(), values).tool == "deploy"


# ---------------------------------------------------------------------- third round
# The causes of the misses of bench/eval_heldout3.yaml (written blind, measured before these
# fixes), each tested here in other words than that suite's.


@pytest.mark.parametrize(("request_", "tool"), [
    ("lsit my runs", "list_runs"), (f"evalaute the model of {RUN}", "evaluate"),
    ("rollbak shop to v1", "rollback"), ("rerun the pipline", "run_pipeline")])
def test_typos_one_edit_away_from_a_tool_word_are_read_as_that_word(request_, tool):
    decision = _decide(request_, NoModel())
    assert decision.tool == tool, decision.trace
    assert decision.trace["spelled"] != request_


def test_spelling_leaves_real_words_project_names_and_literals_alone():
    from blase.agent._decode import spelled

    for text in ("list the runs from the least accurate", f"inspect {RUN} with lr=0.1 in data/fresh.csv",
                 "what is the price column of shop?"):
        assert spelled(text, tool_schemas(), VALUES) == text


def test_greetings_courtesy_and_counts_in_words_do_not_make_a_request_off_topic():
    decision = _decide("Hello! Would you be so kind as to list my ten newest runs? Many thanks in advance.", NoModel())
    assert (decision.tool, decision.args) == ("list_runs", {"limit": 10}), decision.trace
    assert tokens("good afternoon, the seven latest runs") == tokens("the latest runs")
    assert _decide("Recommend a good book about history.", NoModel()).tool is None


def test_a_quoted_fragment_is_the_text_a_log_search_looks_for():
    decision = _decide(f"search the log of {RUN2} for 'nan'", NoModel())
    assert (decision.tool, decision.args) == ("read_run_log", {"run": RUN2, "contains": "nan"}), decision.trace


def test_an_override_spelled_with_a_bare_setting_name_gets_its_section():
    from blase.agent._values import qualified

    assert qualified("lr=0.1") == "train.lr=0.1" and qualified("epochs=7") == "train.epochs=7"
    assert qualified("train.lr=0.1") == "train.lr=0.1" and qualified("colour=red") == "colour=red"
    decision = _decide("run it all again with epochs=7", NoModel())
    assert decision.args["overrides"] == ["train.epochs=7"], decision.args


@pytest.mark.parametrize("request_", [
    "write a python function that reverses a list", "draft a methods paragraph for my paper",
    "translate the word 'runs' into Spanish"])
def test_asking_for_a_text_to_be_written_gets_words(request_):
    decision = _decide(request_, NoModel())
    assert decision.tool is None, decision.trace


def test_writing_named_project_outputs_is_still_a_tool():
    decision = _decide("write the predictions of shop for data/fresh.csv to outputs/w.csv", NoModel())
    assert decision.tool == "predict", decision.trace


@pytest.mark.parametrize("request_", [
    "I only need the shards, no training please", "split the data into training and validation sets and stop there",
    "create the train/dev/test splits only"])
def test_asking_for_what_a_step_makes_runs_up_to_that_step(request_):
    decision = _decide(request_, NoModel())
    assert (decision.tool, decision.args) == ("run_pipeline", {"to_step": "prepare"}), decision.trace


@pytest.mark.parametrize(("request_", "tool"), [
    ("evaluate the latest model on the test split", "evaluate"),
    (f"compare train and test accuracy of {RUN}", "evaluate")])
def test_the_test_split_alone_is_not_the_splits_step(request_, tool):
    assert _decide(request_, NoModel()).tool == tool


@pytest.mark.parametrize(("request_", "tool"), [
    ("propose a target column for data/train.csv", "suggest_schema"),
    ("recommend a label column for data/fresh.csv", "suggest_schema"),
    ("do you recommend retraining shop given data/fresh.csv?", "check_drift")])
def test_a_files_own_name_is_no_evidence_and_recommend_is_suggest(request_, tool):
    """"data/new.csv" said "new data" (drift's words) and "data/train.csv" "train"; "recommend" is
    what ``suggest_schema``'s name says too."""
    decision = _decide(request_, NoModel())
    assert decision.tool == tool, decision.trace


def test_adverbs_share_their_adjectives_stem():
    assert tokens("recently newly") == tokens("recent newly")


def test_a_verb_a_tools_vocabulary_lists_is_not_an_outside_action():
    assert _decide("order the experiments by val loss", NoModel()).args == {"sort": "val.loss"}
    assert _decide("order a taxi to the airport", NoModel()).tool is None


def test_a_steps_noun_after_redo_names_the_step():
    assert _decide("rerun the extraction only", NoModel()).args == {"step": "extract"}


def test_an_enum_value_is_named_by_the_meaning_its_description_gives():
    decision = _decide("update shop on data/fresh.csv, continue from the deployed weights", NoModel())
    assert decision.args.get("mode") == "finetune", decision.args


@pytest.mark.parametrize(("request_", "tool"), [("schema?", "suggest_schema"), ("config", "show_config"),
                                                ("deploy", None), ("how do I compare?", None)])
def test_a_terse_request_of_one_read_tools_name_is_that_tool(request_, tool):
    assert _decide(request_).tool == tool


def test_the_products_own_name_is_no_evidence_of_a_tool():
    assert _decide("how do I get started with blase?", NoModel()).tool is None
    assert _decide("open blase.yaml", NoModel()).tool == "show_config"


# ---------------------------------------------------------------------- names given, things not ours


@pytest.mark.parametrize(("request_", "name"), [
    (f"Deploy run {RUN} under the name penguin-clf.", "penguin-clf"),
    (f"package {RUN} as a model named triage-model", "triage-model"),
    ("deploy the latest run and call it 'churn'", "churn"),
    (f"ship {RUN} as churn_v2 please", "churn_v2"),
])
def test_a_name_given_to_a_model_is_a_value_not_words(request_, name):
    """A new model's name fills deploy's ``name`` and its words are no evidence of a tool (the
    "penguin" of "penguin-clf" made evaluate outrank deploy: eval_heldout4's first run)."""
    decision = _decide(request_)
    assert decision.tool == "deploy", decision.trace
    assert decision.args.get("name") == name, decision.args


@pytest.mark.parametrize("request_", [
    f"deploy {RUN} as a new version", "deploy the latest run, as before"])
def test_as_before_a_common_word_gives_no_name(request_):
    decision = _decide(request_)
    assert decision.tool == "deploy" and "name" not in decision.args, decision.args


@pytest.mark.parametrize("request_", [
    "Delete my ~/.ssh folder and my browser history.", "delete everything in my downloads folder",
    "erase my browser history", "purge old stuff"])
def test_deleting_what_is_not_the_projects_gets_no_tool(request_):
    """A destructive tool needs every word of the request to be the tools' (gc answered "delete my
    browser history" with a cache report: eval_heldout4's first run)."""
    assert _decide(request_, NoModel()).tool is None


@pytest.mark.parametrize(("request_", "args"), [
    ("clear the cache", {}), ("wipe the cache but keep the last 2 runs", {"keep_last": 2}),
    ("prune the cache to 5GB", {"max_size": "5GB"}), ("remove old runs to free disk", {})])
def test_deleting_the_projects_cache_in_other_words_is_gc(request_, args):
    decision = _decide(request_)
    assert decision.tool == "gc", decision.trace
    assert {k: decision.args.get(k) for k in args} == args, decision.args
