"""The typed tools: registry, schemas (golden file), outputs, budgets and path confinement.

Tools are plain Python: these tests call them without LangGraph. Regenerate the golden file
after an intended schema change with ``BLASE_UPDATE_GOLDEN=1 pytest tests/test_tools.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from blase.agent._facts import render_facts
from blase.tools import RISKS, TOOLS, ToolContext, ToolError, call_tool, get_tool, tool_schemas

from blase.track import Track
from tests.conftest import check_golden

GOLDEN = Path(__file__).parent / "golden" / "tool_schemas.json"

REQUIRED = {
    "list_runs", "inspect_run", "read_run_log", "compare_runs", "diff_runs", "preview_data",
    "suggest_schema", "run_step", "run_pipeline", "evaluate", "deploy", "predict", "check_drift",
    "trigger_update", "promote", "rollback", "gc",
}


@pytest.fixture
def ctx(project):
    return ToolContext.for_project(project, max_rows=5)


def _runs(project, n: int, **metrics) -> list[str]:
    ids = []
    for i in range(n):
        with Track(f"run-{i}", project=project, params={"lr": 0.1 * (i + 1), "seed": 1},
                   sample_resources=False) as t:
            t.log_metric("test_accuracy", 0.5 + i / 100)
            for k, v in metrics.items():
                t.log_metric(k, v)
            for j in range(30):
                t.log_event("step", step=f"s{j}", rows=j)
            ids.append(t.run_id)
    return ids


# ---------------------------------------------------------------------- registry and schemas


def test_registry_has_every_capability_with_a_risk_class():
    assert set(TOOLS) >= REQUIRED
    for name, tool in TOOLS.items():
        assert tool.risk in RISKS, name
        assert len(tool.description) > 30, f"{name} needs a docstring the model can use"
        assert get_tool(name) is tool
    risks = {n: t.risk for n, t in TOOLS.items()}
    assert {n for n, r in risks.items() if r == "destructive"} == {"promote", "rollback", "gc"}
    assert risks["run_pipeline"] == risks["deploy"] == risks["trigger_update"] == "write"
    assert risks["check_drift"] == risks["preview_data"] == "read"


def test_schemas_match_the_golden_file():
    schemas = tool_schemas()
    text = json.dumps(schemas, indent=2, sort_keys=True) + "\n"
    check_golden(GOLDEN, text, "the tool schemas")


def test_a_missing_or_stale_golden_file_fails_and_says_how_to_regenerate(tmp_path, monkeypatch):
    monkeypatch.delenv("BLASE_UPDATE_GOLDEN", raising=False)
    golden = tmp_path / "g.json"
    with pytest.raises(pytest.fail.Exception, match="is missing: regenerate it with BLASE_UPDATE_GOLDEN=1 pytest"):
        check_golden(golden, "{}\n", "the schemas")
    assert not golden.exists()  # never written on the fly
    golden.write_text("{}\n")
    check_golden(golden, "{}\n", "the schemas")
    with pytest.raises(AssertionError, match="the schemas changed: if intended, regenerate it"):
        check_golden(golden, "[]\n", "the schemas")
    monkeypatch.setenv("BLASE_UPDATE_GOLDEN", "1")
    check_golden(golden, "[]\n", "the schemas")
    assert golden.read_text() == "[]\n"


def test_schemas_are_flat_openai_function_specs():
    for spec in tool_schemas():
        assert spec["type"] == "function"
        params = spec["function"]["parameters"]
        assert params["type"] == "object" and params["additionalProperties"] is False
        for prop in params["properties"].values():
            assert "anyOf" not in prop and "title" not in prop, spec["function"]["name"]


def test_unknown_tool_and_bad_arguments(ctx):
    with pytest.raises(ToolError, match="unknown tool 'list_run'; did you mean 'list_runs'"):
        call_tool("list_run", {}, ctx)
    with pytest.raises(ToolError, match="limit"):
        call_tool("list_runs", {"limit": 0}, ctx)
    with pytest.raises(ToolError, match="Extra inputs"):
        call_tool("list_runs", {"colour": "red"}, ctx)


# ---------------------------------------------------------------------- read tools


def test_list_runs_truncates_with_a_count(project, ctx):
    _runs(project, 8)
    out = call_tool("list_runs", {"limit": 50}, ctx)
    assert len(out.runs) == 5 and out.total == 8
    assert any("5 of 8 runs" in n and "3 left out" in n for n in out.notes)
    best = call_tool("list_runs", {"sort": "-test_accuracy", "limit": 1}, ctx)
    assert best.runs[0].name == "run-7" and best.runs[0].metrics["test_accuracy"] == pytest.approx(0.57)
    with pytest.raises(ToolError, match="unknown key"):
        call_tool("list_runs", {"where": "metrics.nope > 1"}, ctx)


def test_inspect_and_read_run_log(project, ctx):
    (run_id,) = _runs(project, 1)
    detail = call_tool("inspect_run", {"run": run_id[:5]}, ctx)
    assert detail.id == run_id and detail.status == "finished" and detail.events == {"step": 30}
    log = call_tool("read_run_log", {"run": run_id, "tail": 3}, ctx)
    assert [e.data["step"] for e in log.events] == ["s27", "s28", "s29"]
    assert log.matched == 30 and "27 left out" in log.notes[0]
    only = call_tool("read_run_log", {"run": run_id, "contains": "S1"}, ctx)
    assert only.matched == 11  # s1, s10..s19
    with pytest.raises(ToolError, match="no run matches"):
        call_tool("inspect_run", {"run": "zzzz"}, ctx)


def test_compare_and_diff_runs(project, ctx):
    a, b = _runs(project, 2)
    cmp = call_tool("compare_runs", {"runs": [a, b]}, ctx)
    assert cmp.params == {"lr": [0.1, 0.2]} and cmp.same_params == 1
    assert cmp.metrics["test_accuracy"] == [0.5, 0.51]
    diff = call_tool("diff_runs", {"a": a, "b": b}, ctx)
    lr = diff.changed["params"]["lr"]
    assert lr in ([0.1, 0.2], {"a": 0.1, "b": 0.2})  # the engine's diff, or the Track fallback
    assert diff.a == a and diff.b == b


def test_preview_data_and_schema(project, ctx):
    out = call_tool("preview_data", {"path": "data/penguins.csv", "rows": 3}, ctx)
    assert len(out.rows) == 3 and out.columns["species"] == "string"
    (project.root / "data" / "long.csv").write_text("a,b\n1," + "x" * 5000 + "\n")
    long = call_tool("preview_data", {"path": "data/long.csv"}, ctx)
    assert "more characters truncated" in long.rows[0]["b"] and len(long.rows[0]["b"]) < 200
    report = call_tool("suggest_schema", {"path": "data/penguins.csv", "label": "species"}, ctx)
    assert report.rows == 344 and report.label == "species"
    assert any(c.name == "island" and "encode:onehot" in c.suggestions for c in report.columns)
    assert report.transform  # usable as blase.yaml transform entries
    assert "penguins" in call_tool("show_config", {}, ctx).text


@pytest.mark.parametrize("path", ["../outside.csv", "/etc/passwd", "data/../../x.csv", "~/x.csv"])
def test_paths_are_confined_to_the_project(ctx, path):
    with pytest.raises(ToolError, match="outside the project"):
        call_tool("preview_data", {"path": path}, ctx)


def test_symlink_out_of_the_project_is_refused(project, ctx, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    (project.root / "data" / "link.csv").symlink_to(secret)
    with pytest.raises(ToolError, match="outside the project"):
        call_tool("preview_data", {"path": "data/link.csv"}, ctx)


@pytest.mark.parametrize("tool", ["preview_data", "suggest_schema"])
@pytest.mark.parametrize("path", ["data/*.csv", "data", "data/**/*.csv"])
def test_a_glob_or_folder_that_reaches_outside_through_a_symlink_is_refused(project, ctx, tmp_path, tool, path):
    """The pattern lies inside the project; a file it expands to does not."""
    secret = tmp_path / "secret.csv"
    secret.write_text("bill_length_mm,species\n1,x\n")
    (project.root / "data" / "zz-link.csv").symlink_to(secret)
    with pytest.raises(ToolError, match=r"zz-link\.csv.*outside the project"):
        call_tool(tool, {"path": path}, ctx)
    (project.root / "data" / "zz-link.csv").unlink()
    assert call_tool(tool, {"path": path}, ctx).source == path  # without the link it reads


def test_predict_refuses_paths_outside_and_overwrites(project, ctx):
    with pytest.raises(ToolError, match="outside the project"):
        call_tool("predict", {"model": "m", "data": "data/penguins.csv", "out": "/tmp/out.csv"}, ctx)
    with pytest.raises(ToolError, match="does not overwrite"):
        call_tool("predict", {"model": "m", "data": "data/penguins.csv", "out": "data/penguins.csv"}, ctx)


# ---------------------------------------------------------------------- write tools


def test_run_step_creates_a_linked_tagged_run(project):
    from blase.track import load_run

    with Track("session", project=project, kind="agent-session", sample_resources=False) as session:
        ctx = ToolContext.for_project(project, session_id=session.run_id, session_track=session)
        out = call_tool("run_step", {"step": "extract"}, ctx)
    assert out.status == "finished" and out.steps[0].rows_out == 344
    assert out.runs_started == [out.run_id] == ctx.started_runs
    run = load_run(out.run_id, [project.root])
    assert run.tags["agent_session"] == session.run_id and run.tags["agent_tool"] == "run_step"
    linked = [e["data"] for e in load_run(session.run_id, [project.root]).event_list if e["event"] == "linked_run"]
    assert linked == [{"run": out.run_id, "tool": "run_step"}]


def test_a_failing_step_names_its_run(project, ctx):
    with pytest.raises(ToolError, match=r"cannot start at train.*") as err:
        call_tool("run_step", {"step": "train"}, ctx)
    assert err.value.hint


@pytest.mark.parametrize(
    "override",
    ["deploy.promote=true", "agent.autonomy=auto", "data.source=/etc/passwd",
     "data.source=postgresql://host/db", "train.model=../evil.py:build"],
)
def test_pipeline_overrides_cannot_escape(ctx, override):
    with pytest.raises(ToolError):
        call_tool("run_pipeline", {"overrides": [override]}, ctx)


def test_recommended_commands_are_real_blase_commands():
    assert get_tool("run_pipeline").recommend({"to_step": "train", "overrides": ["train.epochs=3"]}) == (
        "blase run --to train --set train.epochs=3 --set deploy.promote=false"
    )
    assert get_tool("rollback").recommend({"name": "churn", "to": "v2"}) == "blase rollback churn --to v2"
    assert get_tool("deploy").recommend({"run": "3fa9"}) == "blase deploy 3fa9"
    assert get_tool("list_runs").recommend({"where": "status = 'failed'"}) == (
        "blase runs --where 'status = '\"'\"'failed'\"'\"'' --limit 10"
    )


def test_gc_dry_run_is_a_read():
    gc = get_tool("gc")
    assert gc.risk == "destructive"
    assert gc.risk_for(gc.validate({})) == "read"
    assert gc.risk_for(gc.validate({"dry_run": False})) == "destructive"


def test_gc_dry_run_and_drift_over_the_engine(project, ctx):
    from blase.tools._engine import has_engine_attr

    if has_engine_attr("gc"):
        out = call_tool("gc", {"dry_run": True, "keep_last": 1}, ctx)
        assert out.dry_run is True and "freed_bytes" in out.result
    if has_engine_attr("Monitor"):
        with pytest.raises(ToolError, match="no model named"):
            call_tool("check_drift", {"model": "nope", "data": "data/penguins.csv"}, ctx)
    if has_engine_attr("Update"):
        with pytest.raises(ToolError, match="no model named"):
            call_tool("trigger_update", {"model": "nope", "data": "data/penguins.csv"}, ctx)
    with pytest.raises(ToolError, match="outside the project"):
        call_tool("check_drift", {"model": "nope", "data": "../x.csv"}, ctx)


def test_a_pipeline_run_that_makes_no_new_version_says_so(ctx, project):
    """The assistant reads a pipeline run's result: when its deploy step made no version (the
    model did not beat the current one), the result says so and names the command that
    packages it anyway (before, only rows_out=0 on the deploy step told)."""
    first = call_tool("run_pipeline", {"overrides": ["train.epochs=2"]}, ctx)
    assert first.notes == [], first.notes
    worse = call_tool("run_pipeline", {"overrides": ["train.epochs=1", "train.lr=0.0000001"]}, ctx)
    deploy = next(s for s in worse.steps if s.step == "deploy")
    assert deploy.details["deployed"] is False and "does not beat" in deploy.details["reason"]
    [note] = worse.notes
    assert "no new version" in note and f"blase deploy {worse.run_id}" in note
    assert "does not beat" in "\n".join(render_facts("run_pipeline", worse.model_dump(mode="json")))
