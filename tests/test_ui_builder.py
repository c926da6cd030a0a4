"""The pipeline builder of `blase ui`: a real server, real projects, real DuckDB previews, a real
pipeline run, and headless Chromium dragging operations around (tests/test_ui.py has the rest of
the web app)."""

from __future__ import annotations

import re
import time
from importlib import resources
from pathlib import Path

import pytest
import yaml

from blase.pipeline import Pipeline
from blase.scaffold import create_project
from blase.track import list_runs
from blase.ui import Dashboard
from blase.ui._yamledit import load_document, render
from tests.test_ui import SCREENSHOTS, Client, browser_page  # noqa: F401 (a fixture)

pytest.importorskip("ruamel.yaml", reason="the builder needs the ui extra (pip install -e '.[ui]')")

#: Fast training for the runs, written as a user would (comments kept): one small MLP.
FAST = {r"^  model: .*$": "  model: mlp           # one small model: a test",
        r"^  epochs: .*$": "  epochs: 2             # few epochs: a test"}


def _project(root: Path, name: str):
    project = create_project(root / name)
    text = project.config_path.read_text()
    for old, new in FAST.items():
        text, found = re.subn(old, new, text, count=1, flags=re.M)
        assert found, f"the template has no line like {old!r}"
    project.config_path.write_text(text + "\ndeploy:\n  onnx: false           # no ONNX export in tests\n")
    return project


@pytest.fixture
def alpha(tmp_path):
    return _project(tmp_path, "alpha")


@pytest.fixture
def ui(alpha):
    client = Client(Dashboard([alpha.root]))
    yield client
    client.close()


def _state(ui):
    status, state = ui.json("/api/builder/state")
    assert status == 200, state
    return state


# ---------------------------------------------------------------------- blase.yaml round trip


def test_an_unchanged_document_writes_the_file_back_byte_for_byte(alpha):
    text = alpha.config_path.read_text()
    assert render(text, load_document(text, origins=True)) == text
    assert render(text, load_document(text)) == text


def test_moved_operations_keep_their_comments_and_sections_their_blank_lines(alpha):
    text = alpha.config_path.read_text()
    doc = load_document(text, origins=True)
    doc["transform"].append(doc["transform"].pop(0))  # the commented `call:` goes last
    doc["transform"].insert(0, {"op": "impute", "strategy": "constant", "value": 0})
    del doc["memory"]
    doc["evaluate"] = {"plots": False}
    out = render(text, doc)
    lines = out.splitlines()
    call = next(i for i, line in enumerate(lines) if "call: scripts/transforms.py:bill_ratio" in line)
    assert lines[call].endswith("# your own function over a batch")
    assert lines[call + 1] == "" and lines[call + 2] == "prepare:"  # the section still ends with its blank line
    assert "memory:" not in out and "# one seed for splits" in out
    assert out.endswith("evaluate:\n  plots: false\n") and "\n\nevaluate:" in out
    assert yaml.safe_load(out)["transform"][0] == {"op": "impute", "strategy": "constant", "value": 0}
    keys = list(yaml.safe_load(out))
    assert keys == ["version", "project", "seed", "data", "transform", "prepare", "train", "deploy", "evaluate"]


# ---------------------------------------------------------------------- the JSON API


def test_state_has_the_registry_steps_and_a_form_per_operation(ui):
    state = _state(ui)
    assert [s["name"] for s in state["steps"]] == ["extract", "transform", "prepare", "train", "evaluate", "deploy"]
    train = next(s for s in state["steps"] if s["name"] == "train")
    assert train["section"] == "train" and train["schema"]["properties"]["optimizer"]["enum"] == ["adam", "adamw", "sgd"]
    impute = state["operations"]["impute"]["schema"]["properties"]
    assert set(impute) == {"columns", "strategy", "value", "params"}
    assert state["valid"] is True and state["doc"]["transform"][1] == {"op": "impute", "strategy": "median", "__from": 1}
    assert [s["name"] for s in state["sections"]] == ["project", "monitor", "update", "track", "agent", "ray"]
    assert set(state["sections"][0]["schema"]["properties"]["executor"]["enum"]) == {"local", "ray"}
    assert "Fill nulls" in state["operations"]["impute"]["help"]


def test_check_gives_blase_checks_problems_with_key_and_line(ui):
    doc = _state(ui)["doc"]
    doc["transform"].append({"op": "onehot", "max_categories": 0})
    status, result = ui.json("/api/builder/check", {"doc": doc})
    assert status == 200 and result["valid"] is False
    [problem] = result["problems"]
    assert problem["key"] == "transform[4].max_categories" and "greater than or equal to 1" in problem["message"]
    text = ui.json("/api/builder/diff", {"doc": doc})[1]["text"]  # the line is the line of the file to be written
    assert text.splitlines()[problem["line"] - 1].strip() == "max_categories: 0"
    doc["transform"][-1]["max_categories"] = 5
    doc["data"]["label"] = "specie"  # the column names come next, as in `blase check`
    status, result = ui.json("/api/builder/check", {"doc": doc})
    assert [p["key"] for p in result["problems"]] == ["data.label"]
    assert "did you mean 'species'" in result["problems"][0]["message"]


def test_save_shows_a_diff_then_writes_keeping_comments_and_order(ui, alpha):
    state = _state(ui)
    before = alpha.config_path.read_text()
    doc = state["doc"]
    doc["transform"].append({"op": "onehot", "columns": ["island"]})
    doc["train"]["lr"] = 0.02
    status, diff = ui.json("/api/builder/diff", {"doc": doc})
    assert status == 200 and diff["valid"] and alpha.config_path.read_text() == before  # nothing written yet
    assert "-  lr: 0.01\n+  lr: 0.02\n" in diff["diff"] and "+  - op: onehot\n" in diff["diff"]
    status, saved = ui.json("/api/builder/save", {"doc": doc, "base": state["base"]})
    assert status == 200 and saved["saved"]
    after = alpha.config_path.read_text()
    assert after == diff["text"] and "# one seed for splits, shuffling and weight init" in after
    assert list(yaml.safe_load(after)) == list(yaml.safe_load(before))
    assert not [p for p in alpha.root.iterdir() if p.name.startswith(".blase.yaml.tmp")]
    # the page's copy is now stale: a second save from it is refused, and nothing is written
    status, err = ui.json("/api/builder/save", {"doc": doc, "base": state["base"]})
    assert status == 409 and "changed on disk" in err["error"] and alpha.config_path.read_text() == after


def test_an_invalid_document_is_not_saved(ui, alpha):
    state = _state(ui)
    before = alpha.config_path.read_text()
    state["doc"]["train"]["epochs"] = 0
    status, err = ui.json("/api/builder/save", {"doc": state["doc"], "base": state["base"]})
    assert status == 400 and "train.epochs" in err["error"] and alpha.config_path.read_text() == before


def test_previews_of_the_source_a_suggestion_and_the_data_after_an_operation(ui):
    doc = _state(ui)["doc"]
    status, src = ui.json("/api/builder/source", {"source": "data/penguins.csv"})
    assert status == 200 and [c["name"] for c in src["columns"]][:2] == ["species", "island"] and len(src["rows"]) == 20
    status, sug = ui.json("/api/builder/suggest", {"source": "data/penguins.csv", "label": "species"})
    assert status == 200 and any(s["op"] == "onehot" for s in sug["transform"])
    doc["transform"] = [{"op": "onehot", "columns": ["island"]}, {"op": "filter", "where": "bill_length_mm > 45"}]
    status, one = ui.json("/api/builder/preview", {"doc": doc, "upto": 0})
    names = [c["name"] for c in one["columns"]]
    assert status == 200 and "island" not in names and any(n.startswith("island") for n in names)
    assert one["rows_in"] == one["rows_out"] == 344
    status, two = ui.json("/api/builder/preview", {"doc": doc, "upto": 1})
    assert status == 200 and 0 < two["rows_out"] < 344
    status, err = ui.json("/api/builder/preview", {"doc": doc, "upto": 5})
    assert status == 400 and "no operation 5" in err["error"]


def test_new_project_does_what_blase_create_does(ui, alpha):
    status, made = ui.json("/api/builder/new", {"name": "beta"})
    beta = alpha.root.parent / "beta"
    assert status == 200 and made["path"] == str(beta)
    assert (beta / "blase.yaml").is_file() and (beta / "data" / "penguins.csv").is_file()
    assert "beta" in [p["name"] for p in ui.json("/api/info")[1]["projects"]]
    status, err = ui.json("/api/builder/new", {"name": "beta"})
    assert status == 400 and "not empty" in err["error"]


CHANGES = [
    ("/api/builder/save", {"doc": {"project": "alpha"}, "base": "x"}),
    ("/api/builder/run", {"from_step": "extract"}),
    ("/api/builder/new", {"name": "gamma"}),
    ("/api/builder/stop", {"id": "somejob"}),
]


@pytest.mark.parametrize(("path", "body"), CHANGES)
def test_every_change_needs_the_pages_token(ui, alpha, path, body):
    before = alpha.config_path.read_text()
    status, err = ui.json(path, body, token=False)
    assert status == 403 and "token" in err["error"]
    status, _h, _raw = ui.call(path, body, {"X-Blase-Token": "guess"})
    assert status == 403
    assert alpha.config_path.read_text() == before and not (alpha.root.parent / "gamma").exists()
    assert list_runs([alpha.root]) == []


def test_read_only_refuses_save_run_and_new_project_but_still_previews(alpha):
    client = Client(Dashboard([alpha.root], read_only=True))
    before = alpha.config_path.read_text()
    try:
        state = _state(client)
        assert state["read_only"] is True
        for path, body in CHANGES:
            body = {**body, "base": state["base"], "doc": state["doc"]} if path.endswith("save") else body
            status, err = client.json(path, body)
            assert status == 403 and "--read-only" in err["error"], (path, err)
        assert client.json("/api/builder/check", {"doc": state["doc"]})[0] == 200
        assert client.json("/api/builder/source", {"source": "data/penguins.csv"})[0] == 200
    finally:
        client.close()
    assert alpha.config_path.read_text() == before and not (alpha.root.parent / "gamma").exists()
    assert list_runs([alpha.root]) == []


def test_paths_outside_the_project_are_refused(ui, alpha, tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("a,b\n1,2\n")
    for source in (str(outside), "../outside.csv", "data/../../outside.csv"):
        status, err = ui.json("/api/builder/source", {"source": source})
        assert status == 400 and "outside the project" in err["error"], source
    state = _state(ui)
    before = alpha.config_path.read_text()
    doc = state["doc"]
    doc["data"]["source"] = str(outside)
    status, err = ui.json("/api/builder/save", {"doc": doc, "base": state["base"]})
    assert status == 400 and "outside the project" in err["error"] and alpha.config_path.read_text() == before
    doc = _state(ui)["doc"]
    doc["transform"] = [{"call": f"{tmp_path}/evil.py:f"}]
    (tmp_path / "evil.py").write_text("def f(batch):\n    raise SystemExit('ran code from outside')\n")
    status, err = ui.json("/api/builder/preview", {"doc": doc, "upto": 0})
    assert status == 400 and "outside the project" in err["error"]
    for name in ("../evil", "sub/dir", ".."):
        status, err = ui.json("/api/builder/new", {"name": name})
        assert status in (400, 403) and not (alpha.root.parent.parent / "evil").exists()


def test_previews_cannot_read_files_outside_the_project_through_a_database_in_it(ui, alpha, tmp_path):
    """The path check sees data/evil.duckdb; a view inside it reads any file. The builder's
    previews, schema suggestion and transform preview stay inside the project whatever a
    database file in it says (as the assistant's tools do), and still read its own tables."""
    import duckdb

    secret = tmp_path / "secret.csv"
    secret.write_text("ssn,name\n123-45-6789,alice\n987-65-4321,bob\n")
    con = duckdb.connect(str(alpha.root / "data" / "evil.duckdb"))
    con.execute(f"CREATE VIEW v AS SELECT * FROM read_csv('{secret}')")
    con.execute("CREATE TABLE t AS SELECT range AS a, 'x' || range AS b FROM range(50)")
    con.close()
    for route, body in (("source", {"source": "data/evil.duckdb:v"}),
                        ("source", {"source": "data/evil.duckdb:v", "rows": "first"}),
                        ("suggest", {"source": "data/evil.duckdb:v"})):
        status, err = ui.json(f"/api/builder/{route}", body)
        assert status == 400 and "outside the project" in err["error"] and str(secret) in err["error"], (route, err)
        assert "123-45" not in str(err)
    doc = _state(ui)["doc"]
    doc["data"] = {"source": "data/evil.duckdb:v", "label": "name"}
    doc["transform"] = [{"op": "impute", "strategy": "constant", "value": 0}]
    status, err = ui.json("/api/builder/preview", {"doc": doc, "upto": 0})
    assert status == 400 and "outside the project" in err["error"] and "123-45" not in str(err)
    status, out = ui.json("/api/builder/source", {"source": "data/evil.duckdb:t"})
    assert status == 200 and [c["name"] for c in out["columns"]] == ["a", "b"] and len(out["rows"]) > 0


# ---------------------------------------------------------------------- a real browser (tests/test_ui.py's)


@pytest.mark.slow
def test_browser_build_a_pipeline_by_drag_and_drop_fix_an_error_and_save(ui, alpha, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    # tall enough that no drag needs a scroll (Playwright scrolls the drop target into view
    # between pressing and moving, so a scroll would start the drag on another palette item)
    page.set_viewport_size({"width": 1400, "height": 2400})
    page.goto(ui.base + "/builder")
    ops = page.locator("#ops li.op")
    expect(ops).to_have_count(4)
    page.screenshot(path=str(SCREENSHOTS / "builder.png"), full_page=True)
    page.drag_and_drop(".palette-op[data-op=impute]", "#ops .op-end")
    expect(ops).to_have_count(5)
    page.drag_and_drop(".palette-op[data-op=onehot]", "#ops .op-end")
    expect(ops).to_have_count(6)
    page.click('button[aria-label="add scale"]')  # the keyboard's way: + and remove
    expect(ops).to_have_count(7)
    ops.nth(6).locator("button.remove").click()
    expect(ops).to_have_count(6)
    page.drag_and_drop("#ops li.op[data-op=impute] >> nth=1", "#ops li.op >> nth=0")  # the new impute goes first
    expect(ops.nth(0)).to_have_attribute("data-op", "impute")
    expect(ops.nth(5)).to_have_attribute("data-op", "onehot")
    first = page.locator('[data-key="transform[0]"]')
    first.locator("select[name=strategy]").select_option("constant")
    expect(first.locator(":scope > .problem")).to_contain_text("needs a value")
    first.locator("textarea[name=value]").fill("0")
    first.locator("textarea[name=value]").dispatch_event("change")
    expect(first.locator(":scope > .problem")).to_have_text("")
    field = page.locator('[data-key="transform[5].max_categories"]')
    field.locator("input").fill("0")
    field.locator("input").dispatch_event("change")
    expect(field.locator(".problem")).to_contain_text("greater than or equal to 1")
    page.screenshot(path=str(SCREENSHOTS / "builder-error.png"), full_page=True)
    field.locator("input").fill("8")
    field.locator("input").dispatch_event("change")
    expect(field.locator(".problem")).to_have_text("")
    expect(page.locator("#problems")).to_contain_text("valid")
    ops.nth(5).locator(".preview-op").click()
    expect(page.locator("#preview h3")).to_contain_text("After operation 6")
    expect(page.locator("#preview .sample-note")).to_have_text("All 344 rows of the source.")
    expect(page.locator("#preview #first-rows")).not_to_be_checked()  # the toggle: random sample by default
    assert page.locator("#preview table tbody tr").count() == 20
    page.click("#save")
    expect(page.locator("#diff")).to_contain_text("+  - op: onehot")
    page.screenshot(path=str(SCREENSHOTS / "builder-diff.png"), full_page=True)
    page.click("#confirm-save")
    expect(page.locator("#save-state")).to_have_text("saved")
    text = alpha.config_path.read_text()
    saved = yaml.safe_load(text)
    assert saved["transform"][0] == {"op": "impute", "strategy": "constant", "value": 0}
    assert saved["transform"][-1] == {"op": "onehot", "max_categories": 8}
    assert "# your own function over a batch" in text and "# few epochs: a test" in text
    assert "# one seed for splits, shuffling and weight init" in text


@pytest.mark.slow
def test_browser_run_from_here_shows_live_progress(ui, alpha, browser_page):  # noqa: F811
    from playwright.sync_api import expect

    page = browser_page
    Pipeline(alpha).run(to_step="extract")  # an earlier run that "from transform" reuses
    page.goto(ui.base + "/builder")
    page.click("#steps li[data-step=train] button.step")
    expect(page.locator('[data-key="train.epochs"] input')).to_have_value("2")
    page.click("#steps li[data-step=project] button.step")
    expect(page.locator('[data-key="seed"] input')).to_have_value("42")
    page.click("#steps li[data-step=transform] .run-from")
    expect(page.locator("#job-status")).to_contain_text("running")
    seen: set[tuple[str, ...]] = set()  # the step states shown, poll after poll
    deadline = time.monotonic() + 180
    while "finished" not in (status := page.inner_text("#job-status")):
        assert "failed" not in status and time.monotonic() < deadline, page.inner_text("#job")
        seen.add(tuple(page.locator("#job tbody tr td:nth-child(2)").all_inner_texts()))
        time.sleep(0.1)
    partial = [s for s in seen if "done" in s and ("running" in s or "waiting" in s)]
    assert partial, seen  # the page showed steps done while others still ran: live progress
    assert "train epoch 2 of 2" in status
    rows = page.locator("#job tbody tr")
    expect(rows).to_have_count(6)
    assert rows.nth(0).inner_text().split("\t")[:2] == ["extract", "reused"]  # from the earlier run
    page.screenshot(path=str(SCREENSHOTS / "builder-run.png"), full_page=True)
    runs = list_runs([alpha.root])
    latest = max(runs, key=lambda r: r.started_at or "")
    assert latest.status == "finished" and latest.tags.get("started_by") == "blase ui"
    page.click(f"a:text-is('run {latest.id}')")
    page.wait_for_selector("h2:text-is('Steps')")


def test_the_builder_assets_ship_with_the_page(ui):
    status, _head, html = ui.call("/builder")
    assert status == 200 and b"/static/builder.js" in html and b'href="/builder"' in html
    for name in ("builder.js", "builder.css"):
        status, head, body = ui.call(f"/static/{name}")
        assert status == 200 and head["Content-Type"].startswith("text/") and body and b"http" not in body
    shipped = {p.name for p in (resources.files("blase.ui") / "static").iterdir()}
    assert {"builder.js", "builder.css"} <= shipped


def _plugged(tmp_path: Path, threshold: object = 0.9):
    """A project with a step plugin (report, options validated by its config_model) and an
    operation plugin (center), both project files."""
    from tests.test_plugin_kinds import KINDS
    from tests.test_plugins import REPORT

    project = _project(tmp_path, "plugged")
    (project.root / "scripts" / "report.py").write_text(REPORT.replace("RAISE", ""))
    (project.root / "scripts" / "kinds.py").write_text(KINDS.replace("MODULE", ""))
    with project.config_path.open("a") as f:
        f.write(f"plugins:\n  - path: scripts/report.py   # the pass/fail report\n    options: {{threshold: {threshold}}}\n"
                "  - scripts/kinds.py\n")
    return project


def test_blase_check_validates_a_step_plugins_options(cli, tmp_path):
    project = _plugged(tmp_path, threshold="high")
    r = cli("check", cwd=project.root)
    line = project.config_path.read_text().splitlines().index("    options: {threshold: high}") + 1
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert f"plugins[0].options.threshold (line {line})" in r.stderr and "step plugin 'report'" in r.stderr


def test_plugin_steps_and_operations_get_forms_and_blase_checks_problems(tmp_path):
    project = _plugged(tmp_path)
    client = Client(Dashboard([project.root]))
    try:
        state = _state(client)
        report = next(s for s in state["steps"] if s["name"] == "report")
        assert report["section"] == "plugins[0]" and "threshold" in report["schema"]["properties"]
        assert [s["name"] for s in state["steps"]][-3:] == ["evaluate", "report", "deploy"]  # the registry's order
        assert state["operations"]["center"]["kind"] == "plugin"
        assert set(state["operations"]["center"]["schema"]["properties"]) == {"columns", "scale"}
        doc = state["doc"]
        doc["plugins"][0]["options"]["threshold"] = "high"
        doc["transform"].append({"op": "center", "scale": "big"})
        status, result = client.json("/api/builder/check", {"doc": doc})
        keys = {p["key"] for p in result["problems"]}
        assert status == 200 and keys == {"plugins[0].options.threshold", "transform[4].scale"}, result
        doc["plugins"][0]["options"]["threshold"] = 0.8
        doc["transform"][-1]["scale"] = 2
        status, saved = client.json("/api/builder/save", {"doc": doc, "base": state["base"]})
        assert status == 200, saved
        text = project.config_path.read_text()
        assert "  - path: scripts/report.py   # the pass/fail report\n    options: {threshold: 0.8}\n" in text
        assert "\n  - scripts/kinds.py\n" in text
    finally:
        client.close()


def test_previews_read_the_source_again_when_it_changes(ui, alpha):
    doc = _state(ui)["doc"]
    doc["transform"] = [{"op": "filter", "where": "island = 'Biscoe'"}]
    before = ui.json("/api/builder/preview", {"doc": doc, "upto": 0})[1]
    csv = alpha.root / "data" / "penguins.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(lines[:31]))  # the header and 30 rows
    after = ui.json("/api/builder/preview", {"doc": doc, "upto": 0})[1]
    assert before["rows_in"] == 344 and after["rows_in"] == 30
    assert after["rows_out"] == sum("Biscoe" in line for line in lines[1:31]) < before["rows_out"]
    assert len(ui.json("/api/builder/source", {"source": "data/penguins.csv"})[1]["rows"]) == 20


def _finished(ui, job: dict, seconds: float = 120) -> dict:
    """Poll a run job as the page does until it is no longer running."""
    deadline = time.monotonic() + seconds
    while job["status"] == "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
        job = ui.json(f"/api/builder/job?id={job['id']}")[1]
    return job


def test_run_from_a_step_no_run_has_reached_fails_with_the_reason(ui, alpha):
    status, err = ui.json("/api/builder/run", {"from_step": "trian"})
    assert status == 400 and "no step 'trian'" in err["error"] and "train" in err["hint"]
    status, job = ui.json("/api/builder/run", {"from_step": "train"})
    assert status == 200 and job["status"] in ("running", "failed")
    job = _finished(ui, job)
    assert job["status"] == "failed" and "no earlier run finished extract" in job["error"]["error"]
    assert job["error"]["hint"] and "blase run" in job["error"]["hint"]
    assert ui.json("/api/builder/job?id=nosuchjob")[0] == 404


def test_a_run_stopped_from_the_page_ends_before_its_next_step_as_interrupted(ui, alpha):
    status, job = ui.json("/api/builder/run", {"from_step": "extract"})
    assert status == 200
    status, again = ui.json("/api/builder/run", {"from_step": "extract"})
    assert status == 409 and "still going" in again["error"]
    job = ui.json("/api/builder/stop", {"id": job["id"]})[1]
    job = _finished(ui, job)
    assert job["status"] == "stopped" and "stopped from blase ui before" in job["error"]["error"]
    states = [s["state"] for s in job["steps"]]
    assert "waiting" in states and states[-1] == "waiting"  # deploy never started
    [run] = list_runs([alpha.root])
    assert run.id == job["run_id"] and run.status == "interrupted"


def test_a_blase_yaml_that_does_not_parse_gets_its_line_and_is_left_alone(ui, alpha):
    broken = alpha.config_path.read_text().replace("  label: species", "  label: [species")
    alpha.config_path.write_text(broken)
    status, err = ui.json("/api/builder/state")
    assert status == 400 and "YAML syntax error" in err["error"] and "line" in err["error"]
    assert "editor" in err["hint"] and alpha.config_path.read_text() == broken


def test_previews_read_a_seeded_random_sample_of_the_whole_file_or_its_first_rows(ui, alpha):
    n = 12_000
    (alpha.root / "data" / "big.csv").write_text(
        "id,x,island\n" + "".join(f"{i},{i % 97},{'Biscoe' if i % 4 else 'Dream'}\n" for i in range(n)))
    status, src = ui.json("/api/builder/source", {"source": "data/big.csv"})
    assert status == 200 and src["sample"]["kind"] == "sample" and src["sample"]["rows"] == 2000
    assert src["sample"]["seed"] == 0 and abs(src["sample"]["of_about"] - n) < n * 0.05
    doc = _state(ui)["doc"]
    doc["data"] = {**doc["data"], "source": "data/big.csv", "label": "island"}
    doc["transform"] = [{"op": "filter", "where": "id >= 6000"}]
    status, after = ui.json("/api/builder/preview", {"doc": doc, "upto": 0})
    # a sample of the whole file: about half its rows have id >= 6000 (the first 2,000 rows: none)
    assert status == 200 and after["rows_in"] == 2000 and 800 < after["rows_out"] < 1200
    assert after["sample"]["kind"] == "sample"
    ids = [row[0] for row in after["rows"]]
    assert ids and min(ids) >= 6000
    again = ui.json("/api/builder/preview", {"doc": doc, "upto": 0})[1]
    assert again["rows"] == after["rows"]  # seeded: the same rows on every preview
    status, first = ui.json("/api/builder/preview", {"doc": doc, "upto": 0, "rows": "first"})
    assert status == 200 and first["rows_in"] == 2000 and first["rows_out"] == 0 and first["sample"]["kind"] == "first"
    status, head = ui.json("/api/builder/source", {"source": "data/big.csv", "rows": "first"})
    assert [row[0] for row in head["rows"]] == list(range(20))
    status, err = ui.json("/api/builder/source", {"source": "data/big.csv", "rows": "random"})
    assert status == 400 and "rows 'random'" in err["error"] and "rows: first" in err["hint"]


def test_a_large_csv_is_previewed_from_blocks_spread_over_the_whole_file(ui, alpha, monkeypatch):
    import blase._sample

    monkeypatch.setattr(blase._sample, "MIN_BYTES", 10_000)  # "large": this 150 KB file, for the test
    n = 12_000
    (alpha.root / "data" / "big.csv").write_text(
        "id,x\n" + "".join(f"{i},{i % 97}\n" for i in range(n)))
    status, src = ui.json("/api/builder/source", {"source": "data/big.csv"})
    assert status == 200 and src["sample"]["kind"] == "sample" and src["sample"]["method"] == "blocks"
    assert 1500 <= src["sample"]["rows"] <= 2000
    doc = _state(ui)["doc"]
    doc["data"] = {**doc["data"], "source": "data/big.csv", "label": "x"}
    doc["transform"] = [{"op": "filter", "where": "id >= 9000"}]
    status, after = ui.json("/api/builder/preview", {"doc": doc, "upto": 0})
    assert status == 200 and 0.15 < after["rows_out"] / after["rows_in"] < 0.35  # the last quarter of the file
