"""`blase ui`: a real server on 127.0.0.1, a real HTTP client, real runs of the penguins project."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from blase.deploy import current_version
from blase.pipeline import Pipeline
from blase.track import ContentStore, list_runs
from blase.ui import Dashboard, UIError, make_server

FAST = ["train.model=mlp", "train.epochs=2", "deploy.onnx=false"]


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """Project ``alpha`` with two runs (lr 0.01 deployed as v1 and current, lr 0.02 as v2) and
    project ``beta`` with one run (no plots)."""
    from blase.scaffold import create_project

    root = tmp_path_factory.mktemp("ui")
    alpha = create_project(root / "alpha")
    first = Pipeline(alpha, overrides=FAST).run()
    second = Pipeline(alpha, overrides=[*FAST, "train.lr=0.02"]).run()
    beta = create_project(root / "beta")
    third = Pipeline(beta, overrides=[*FAST, "evaluate.plots=false"]).run()
    return {"alpha": alpha, "beta": beta, "first": first.run_id, "second": second.run_id, "third": third.run_id}


class Client:
    """A running server and urllib calls to it; answers are ``(status, headers, body bytes)``."""

    def __init__(self, dashboard: Dashboard, **kwargs: Any) -> None:
        self.server, self.state = make_server(dashboard, host="127.0.0.1", port=0, **kwargs)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def call(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {},
                                     method="GET" if body is None else "POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                return res.status, res.headers, res.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def json(self, path: str, body: Any = None, token: bool = True) -> tuple[int, Any]:
        headers = {"X-Blase-Token": self.state.token} if token else {}
        status, head, raw = self.call(path, body, headers)
        assert head["Content-Type"] == "application/json", raw[:200]
        return status, json.loads(raw)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def ui(projects):
    client = Client(Dashboard([projects["alpha"].root, projects["beta"].root]))
    yield client
    client.close()


def test_runs_of_both_projects_in_one_table_with_project_and_status_filters(ui, projects):
    status, data = ui.json("/api/runs")
    assert status == 200 and data["total"] == 3
    assert {r["project_name"] for r in data["runs"]} == {"alpha", "beta"}
    assert "test.accuracy" in data["metrics"] and "train.lr" in data["params"]
    status, data = ui.json("/api/runs?project=beta&status=finished")
    assert [r["id"] for r in data["runs"]] == [projects["third"]]
    status, data = ui.json("/api/runs?per_page=2&page=2")
    assert data["total"] == 3 and len(data["runs"]) == 1


def test_filter_with_the_predicates_of_blase_runs_where(ui, projects):
    where = urllib.parse.quote("params.train.lr = 0.02 and status = 'finished'")
    status, data = ui.json(f"/api/runs?where={where}")
    assert status == 200 and [r["id"] for r in data["runs"]] == [projects["second"]]
    status, data = ui.json("/api/runs?where=" + urllib.parse.quote("metrics.nope > 1"))
    assert status == 400 and "nope" in data["error"] and "Traceback" not in json.dumps(data)


def test_sort_by_a_metric_matches_blase_runs(ui, projects):
    status, data = ui.json("/api/runs?sort=-test.accuracy")
    expected = list_runs([projects["alpha"].root, projects["beta"].root], sort="-test.accuracy")
    assert status == 200 and [r["id"] for r in data["runs"]] == [r.id for r in expected]
    accuracies = [r["metrics"]["test.accuracy"] for r in data["runs"]]
    assert accuracies == sorted(accuracies, reverse=True)


def test_a_run_page_json_and_html(ui, projects):
    run_id = projects["first"]
    status, run = ui.json(f"/api/runs/{run_id}")
    assert status == 200 and run["id"] == run_id and run["params"]["train.lr"] == 0.01
    steps = {s["step"]: s for s in run["steps"]}
    assert list(steps) == ["extract", "transform", "prepare", "train", "evaluate", "deploy"]
    assert steps["extract"]["rows_in"] == 344 and steps["extract"]["reasons"] == ["no earlier result"]
    assert steps["train"]["peak_rss_bytes"] > 0 and not steps["train"]["cached"]
    assert len(run["metric_history"]["val_loss"]) == 2
    assert any(e["event"] == "code_snapshot" for e in run["event_list"])
    status, head, html = ui.call(f"/run/{run_id}")
    assert status == 200 and head["Content-Type"].startswith("text/html")
    assert ui.state.token.encode() in html and b"/static/app.js" in html
    status, head, js = ui.call("/static/app.js")
    assert status == 200 and b"X-Blase-Token" in js and b"http" not in js.replace(b"http://www.w3.org", b"")
    status, cached = ui.json(f"/api/runs/{projects['second']}")
    assert {s["step"]: s["cached"] for s in cached["steps"]}["extract"] is True


def test_a_plot_artifact_is_served_from_the_store(ui, projects):
    status, run = ui.json(f"/api/runs/{projects['first']}")
    plot = next(a for a in run["artifacts"] if a["name"].endswith(".png"))
    assert plot["type"] == "image/png"
    status, head, body = ui.call(f"/api/runs/{projects['first']}/artifacts/{plot['name']}")
    assert status == 200 and head["Content-Type"] == "image/png" and body.startswith(b"\x89PNG")
    stored = ContentStore(projects["alpha"].store_dir).path_for(plot["hash"]).read_bytes()
    assert body == stored


@pytest.mark.parametrize("path", [
    "artifacts/../../../blase.yaml",
    "artifacts/%2e%2e/%2e%2e/blase.yaml",
    "artifacts/evaluate/..%2f..%2fblase.yaml",
    "artifacts//etc/passwd",
])
def test_paths_outside_a_runs_record_are_refused(ui, projects, path):
    status, head, body = ui.call(f"/api/runs/{projects['first']}/{path}")
    assert status == 404 and head["Content-Type"] == "application/json"
    assert b"version" not in body and b"root:" not in body


def test_static_files_are_an_allow_list(ui):
    for path in ("/static/../_api.py", "/static/%2e%2e/_api.py", "/static/index.html.bak"):
        status, _head, body = ui.call(path)
        assert status == 404 and b"import" not in body


def test_a_symlinked_store_object_is_refused(ui, projects, tmp_path):
    status, run = ui.json(f"/api/runs/{projects['first']}")
    art = next(a for a in run["artifacts"] if a["name"].endswith("metrics.json"))
    obj = ContentStore(projects["alpha"].store_dir).path_for(art["hash"])
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve me")
    aside = obj.with_name(obj.name + ".aside")
    os.replace(obj, aside)
    try:
        os.symlink(secret, obj)
        status, _head, body = ui.call(f"/api/runs/{projects['first']}/artifacts/{art['name']}")
    finally:
        obj.unlink()
        os.replace(aside, obj)
    assert status == 403 and b"do not serve me" not in body
    assert "outside the store" in json.loads(body)["error"]


def test_a_change_without_the_token_is_refused(ui, projects):
    body = {"project": "alpha", "model": "alpha", "version": "v2"}
    assert ui.json("/api/models/promote", body, token=False)[0] == 403
    status, _head, raw = ui.call("/api/models/promote", body, {"X-Blase-Token": "guess"})
    assert status == 403 and "token" in json.loads(raw)["error"]
    assert current_version(projects["alpha"], "alpha") == "v1"


def test_a_foreign_host_header_is_refused(ui):
    status, _head, raw = ui.call("/api/runs", headers={"Host": "attacker.example:80"})
    assert status == 403 and "not this machine" in json.loads(raw)["error"]


def test_read_only_refuses_promote_and_rollback(projects):
    client = Client(Dashboard([projects["alpha"].root], read_only=True))
    try:
        status, data = client.json("/api/models/promote", {"project": "alpha", "model": "alpha", "version": "v2"})
        assert status == 403 and "--read-only" in data["error"]
        status, data = client.json("/api/models/rollback", {"project": "alpha", "model": "alpha"})
        assert status == 403
        assert client.json("/api/models")[1]["read_only"] is True
    finally:
        client.close()
    assert current_version(projects["alpha"], "alpha") == "v1"


def test_promote_then_rollback_changes_the_current_version(ui, projects):
    status, data = ui.json("/api/models")
    model = next(m for m in data["models"] if m["name"] == "alpha")
    assert model["versions"] == ["v1", "v2"] and model["current"] == "v1"
    # each version's test metrics, as its package recorded them
    for version in ("v1", "v2"):
        recorded = json.loads((projects["alpha"].root / "models" / "alpha" / version / "package.json").read_text())
        assert model["metrics"][version]["accuracy"] == recorded["metrics"]["accuracy"]
    status, done = ui.json("/api/models/promote", {"project": "alpha", "model": "alpha", "version": "v2"})
    assert status == 200 and done == {"model": "alpha", "from": "v1", "to": "v2"}
    assert current_version(projects["alpha"], "alpha") == "v2"
    status, done = ui.json("/api/models/rollback", {"project": str(projects["alpha"].root), "model": "alpha"})
    assert status == 200 and done["to"] == "v1"
    assert current_version(projects["alpha"], "alpha") == "v1"
    history = next(m for m in ui.json("/api/models")[1]["models"] if m["name"] == "alpha")["history"]
    assert [(h["action"], h["to"]) for h in history[-2:]] == [("promote", "v2"), ("rollback", "v1")]
    assert history[-2]["reason"] == "blase ui"
    status, data = ui.json("/api/models/promote", {"project": "alpha", "model": "alpha", "version": "v9"})
    assert status == 400 and "v9" in data["error"]


def test_compare_shows_the_changed_config_key_and_metric_deltas(ui, projects):
    status, d = ui.json(f"/api/compare?a={projects['first']}&b={projects['second']}")
    assert status == 200 and d["params"] == {"train.lr": [0.01, 0.02]}
    assert d["metrics"]["test.accuracy"]["delta"] is not None and d["data"] == {}
    status, d = ui.json(f"/api/compare?a={projects['first']}&b={projects['third']}")
    assert status == 400 and "different projects" in d["error"]
    status, d = ui.json("/api/compare?a=nosuchrun&b=latest")
    assert status == 404 and "nosuchrun" in d["error"]


def test_bad_requests_get_json_errors(ui):
    assert ui.json("/api/runs?page=zero")[0] == 400
    assert ui.json("/api/nothing")[0] == 404
    status, _head, _raw = ui.call("/api/models/promote", None, {"X-Blase-Token": ui.state.token})
    assert status == 404  # a GET of an action is no page
    req = urllib.request.Request(ui.base + "/api/models/promote", data=b"{not json",
                                 headers={"X-Blase-Token": ui.state.token}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 400 and "not JSON" in json.loads(err.value.read())["error"]


def test_another_host_needs_a_token(projects):
    with pytest.raises(UIError, match="needs a token"):
        make_server(Dashboard([projects["beta"].root]), host="0.0.0.0", port=0)


def test_a_non_loopback_server_wants_its_token_on_every_request(projects):
    # 127.0.0.2 is loopback to the kernel but not a loopback name to `blase ui`: it binds nothing public
    server, _state = make_server(Dashboard([projects["beta"].root]), host="127.0.0.2", port=0, token="s3cret")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.2:{server.server_address[1]}"
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/api/runs", timeout=30)
        assert err.value.code == 403
        with urllib.request.urlopen(base + "/api/runs?token=s3cret", timeout=30) as res:
            assert json.loads(res.read())["total"] == 1
    finally:
        server.shutdown()
        server.server_close()


def test_blase_ui_refuses_a_public_host_without_a_token(cli, projects):
    r = cli("ui", "--project", str(projects["beta"].root), "--host", "0.0.0.0", "--port", "0")
    assert r.exit_code == 1 and "needs a token" in r.stderr and "--token" in r.stderr


def test_the_assets_ship_as_package_data():
    from importlib import resources

    import tomllib

    static = resources.files("blase.ui") / "static"
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in static.iterdir()}
    config = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "blase.ui" in config["tool"]["setuptools"]["packages"]
    assert config["tool"]["setuptools"]["package-data"]["blase.ui"] == ["static/*"]


# ---------------------------------------------------------------------- a real browser

#: Screenshots of each page, kept as a CI artifact.
SCREENSHOTS = Path(os.environ.get("BLASE_UI_SCREENSHOTS", Path(__file__).resolve().parents[1] / "test-artifacts" / "ui"))


def _chromium() -> str:
    """Debian's chromium (``apt-get install chromium``), or BLASE_CHROMIUM; skips without one."""
    import shutil

    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    for candidate in (os.environ.get("BLASE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    pytest.skip("no Chromium found: `apt-get install chromium` (Debian) or set BLASE_CHROMIUM")


@pytest.fixture(scope="module")
def browser_page():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a loaded 2-core CI box: 5 s is not always enough

    executable = _chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(20_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        browser.close()
    assert not errors, errors


@pytest.mark.slow
def test_browser_runs_table_filter_sort_and_a_run_with_its_plot(ui, projects, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(ui.base + "/")
    page.wait_for_selector("#runs tbody tr")
    assert page.locator("#runs tbody tr").count() == 3
    page.screenshot(path=str(SCREENSHOTS / "runs.png"), full_page=True)
    page.fill("input[name=where]", "params.train.lr = 0.02")
    page.click("button[type=submit]")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    assert projects["second"] in page.inner_text("#runs tbody")
    page.goto(ui.base + "/runs")
    page.click("th:text-is('test.accuracy')")
    page.wait_for_url("**sort=metrics.test.accuracy**")
    page.wait_for_selector("#runs tbody tr")
    page.click(f"a:text-is('{projects['first']}')")
    page.wait_for_selector("h2:text-is('Steps')")
    plot = page.locator("img.artifact").first
    expect(plot).to_be_visible()
    page.wait_for_load_state("load")
    assert plot.evaluate("(img) => img.complete && img.naturalWidth > 0")
    assert "train.lr" in page.inner_text("main") and page.locator("svg.chart").count() >= 1
    page.screenshot(path=str(SCREENSHOTS / "run.png"), full_page=True)


@pytest.mark.slow
def test_browser_compare_and_promote_then_roll_back(ui, projects, browser_page):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{ui.base}/compare?a={projects['first']}&b={projects['second']}")
    page.wait_for_selector("h2:text-is('Config')")
    assert "train.lr" in page.inner_text("main")
    page.screenshot(path=str(SCREENSHOTS / "compare.png"), full_page=True)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(ui.base + "/models")
    page.wait_for_selector("button.promote")
    page.locator("button.promote:not([disabled])").first.click()
    _wait_for_version(projects["alpha"], "v2")  # the click's request, not an earlier test's rows
    expect(page.locator("td:text-is('blase ui')").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "models.png"), full_page=True)
    page.click("button.rollback")
    _wait_for_version(projects["alpha"], "v1")
    expect(page.locator("td:text-is('rollback')").first).to_be_visible()


def _wait_for_version(project, version: str, seconds: float = 15.0) -> None:
    """Poll the model registry on disk until ``alpha``'s current version is ``version``."""
    import time

    deadline = time.monotonic() + seconds
    while current_version(project, "alpha") != version:
        assert time.monotonic() < deadline, f"alpha's current version never became {version}"
        time.sleep(0.1)
