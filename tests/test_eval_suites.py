"""User-defined eval suites: `blase agent eval --tasks FILE` and the format's errors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("langgraph")

from blase.agent.eval_tasks import BUILTIN_SUITE, TASKS, EvalSuiteError, load_suite, suite_hash

SUITE = """\
tasks:
  - id: my-runs
    category: single
    prompt: Show me the 4 newest runs.
    expected:
      - tool: list_runs
        args: {limit: 4}
  - id: my-inspect
    category: single
    prompt: Inspect run {run}.
    expected:
      - tool: inspect_run
        args: {run: {one_of: ['{run}', latest]}}
  - id: my-offtopic
    category: irrelevance
    prompt: Sing me a song.
  - id: my-epochs
    category: multi
    prompt: Run the pipeline with train.epochs=2.
    checks:
      - new_run: {params: {train.epochs: 2}}
"""


def test_the_builtin_suite_is_a_file_in_the_documented_format():
    assert load_suite(BUILTIN_SUITE) == TASKS
    assert suite_hash() == "cc3dfaa26c58"  # the suite the recorded evals ran; changing it changes this


def test_yaml_and_json_suites_load_the_same(tmp_path):
    import yaml

    (tmp_path / "s.yaml").write_text(SUITE, encoding="utf-8")
    (tmp_path / "s.json").write_text(json.dumps(yaml.safe_load(SUITE)), encoding="utf-8")
    tasks = load_suite(tmp_path / "s.yaml")
    assert tasks == load_suite(tmp_path / "s.json")
    assert [t.category for t in tasks] == ["single", "single", "irrelevance", "multi"]
    assert tasks[1].expected[0].args["run"] == ("{run}", "latest")


@pytest.mark.parametrize(("change", "message"), [
    (("category: single", "category: singel", 1), "task 1 (my-runs).category: unknown category 'singel'"),
    (("tool: list_runs", "tool: list_run", 1), "no tool 'list_run'"),
    (("args: {limit: 4}", "argz: {limit: 4}", 1), "unknown key 'argz'"),
    (("    checks:\n      - new_run: {params: {train.epochs: 2}}\n", "", 1), "a multi task needs at least one state check"),
    (("id: my-inspect", "id: my-runs", 1), "task my-runs: duplicate id"),
    (("new_run:", "new_runs:", 1), "unknown key 'new_runs'"),
    (("{one_of: ['{run}', latest]}", "{any: [x]}", 1), "must be {one_of: [value, ...]}"),
])
def test_a_bad_suite_names_the_task_and_key(tmp_path, change, message):
    old, new, count = change
    path = tmp_path / "bad.yaml"
    path.write_text(SUITE.replace(old, new, count), encoding="utf-8")
    with pytest.raises(EvalSuiteError) as err:
        load_suite(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert err.value.hint


def test_the_cli_runs_a_users_suite_and_reports_a_bad_one_without_a_traceback(project, cli, monkeypatch, tmp_path):
    import blase.agent._providers as providers
    from blase.agent._fake import ScriptedChatModel, call
    from langchain_core.messages import HumanMessage, ToolMessage

    from blase.track import list_runs

    def oracle(messages):
        if isinstance(messages[-1], ToolMessage):
            return "done."
        text = next(m for m in reversed(messages) if isinstance(m, HumanMessage)).content
        if "4 newest" in text:
            return call("list_runs", {"limit": 4})
        if text.startswith("Inspect run"):
            return call("inspect_run", {"run": text.split()[-1].rstrip(".")})
        return "I can only help with this project."

    monkeypatch.setattr(providers, "make_chat_model", lambda spec: ScriptedChatModel(repeat=oracle))
    suite = tmp_path / "mine.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    result = cli("agent", "eval", "--provider", "openai", "--model", "fake", "--tasks", str(suite),
                 "--category", "single", "--category", "irrelevance", "--project", str(project.root), "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert {a["task"]: a["passed"] for a in data["attempts"]} == {"my-runs": True, "my-inspect": True,
                                                                   "my-offtopic": True}
    assert data["suite"] == suite_hash(load_suite(suite)) and data["suite_file"] == str(suite)
    recorded = next(r for r in list_runs([project.root]) if r.kind == "agent-eval")
    assert recorded.params["suite_file"] == str(suite)

    suite.write_text(SUITE.replace("category: multi", "category: multiple"), encoding="utf-8")
    result = cli("agent", "eval", "--provider", "openai", "--model", "fake", "--tasks", str(suite),
                 "--project", str(project.root))
    assert result.exit_code != 0 and "Traceback" not in result.stdout + result.stderr
    assert "unknown category 'multiple'" in result.stdout + result.stderr
