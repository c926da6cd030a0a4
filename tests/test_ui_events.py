"""A live run's Server-Sent Events: a real server, a real HTTP client reading the stream while a
real Track writer logs, and the run page in Chromium updating from the stream."""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time

import pytest

import tests.test_ui as test_ui
from blase.track import Track
from blase.ui import Dashboard
from tests.test_ui import SCREENSHOTS, Client

browser_page = test_ui.browser_page


@pytest.fixture
def live(tmp_path):
    from blase.scaffold import create_project

    project = create_project(tmp_path / "live", example=False)
    client = Client(Dashboard([project.root]))
    yield project, client
    client.close()


def _read_stream(base: str, path: str, headers: dict[str, str] | None = None) -> queue.Queue:
    """Messages ``(id, event, data)`` of an event stream, read in a thread; ``None`` at its end."""
    host, port = base.removeprefix("http://").split(":")
    out: queue.Queue = queue.Queue()

    def read() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        conn.request("GET", path, headers=headers or {})
        res = conn.getresponse()
        out.put(("status", res.status, res.getheader("Content-Type")))
        message: dict[str, str] = {}
        for raw in res:
            line = raw.decode().rstrip("\n")
            if not line:
                if "event" in message:
                    out.put((message.get("id"), message["event"], json.loads(message["data"])))
                message = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                message[key] = value
        conn.close()
        out.put(None)

    threading.Thread(target=read, daemon=True).start()
    return out


def _until(messages: queue.Queue, want, timeout: float = 30.0) -> list:
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = messages.get(timeout=max(0.01, deadline - time.monotonic()))
        got.append(item)
        if want(item):
            return got
    raise AssertionError(f"timed out; got {got}")


def test_a_client_reads_points_and_events_as_the_writer_logs_them_then_the_end(live):
    project, client = live
    with Track("live", project=project.root, sample_resources=False) as run:
        run.log_metric("loss", 1.0, step=0)
        run.flush()
        status, page = client.json(f"/api/runs/{run.run_id}")
        assert status == 200 and page["status"] == "running" and page["stream_from"]
        assert [p["value"] for p in page["metric_history"]["loss"]] == [1.0]
        stream = _read_stream(client.base, f"/api/runs/{run.run_id}/events?from={page['stream_from']}")
        assert stream.get(timeout=30) == ("status", 200, "text/event-stream; charset=utf-8")
        for step in range(1, 40):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
            if step % 10 == 0:
                run.flush()  # a few batches, as a training loop's flushes would come
        run.flush()
        got = _until(stream, lambda m: m[1] == "metrics" and m[2]["points"][-1]["step"] == 39)
        points = [p for m in got if m[1] == "metrics" for p in m[2]["points"]]
        assert [p["step"] for p in points] == list(range(1, 40))  # each point once, in order, none from before
        assert points[8]["value"] == 0.1 and points[0]["name"] == "loss"
        run.log_event("step", step="train", seconds=1.5)
        got = _until(stream, lambda m: m[1] == "log")
        assert {"kind": "event", "event": "step"}.items() <= got[-1][2]["records"][0].items()
        resume_from = next(m[0] for m in got if m[1] == "log")
    ended = _until(stream, lambda m: m is None)
    assert ended[-2][1] == "end" and ended[-2][2] == {"status": "finished"}  # then the server closed it
    assert any(r.get("kind") == "status" and r.get("status") == "finished"
               for m in ended if m and m[1] == "log" for r in m[2]["records"])
    # a browser that reconnects with Last-Event-ID gets only what came after, then the end
    again = _read_stream(client.base, f"/api/runs/{run.run_id}/events", {"Last-Event-ID": resume_from})
    rest = _until(again, lambda m: m is None)
    assert [m[1] for m in rest[1:-1]] == ["log", "end"] and not any(
        m[1] == "metrics" for m in rest[1:-1])


def test_a_bad_stream_position_is_refused_with_the_fix(live):
    project, client = live
    with Track("live", project=project.root, sample_resources=False) as run:
        status, err = client.json(f"/api/runs/{run.run_id}/events?from=soon")
        assert status == 400 and "'soon' is not a stream position" in err["error"] and "stream_from" in err["hint"]
        status, err = client.json("/api/runs/nosuchrun/events")
        assert status == 404


@pytest.mark.slow
def test_browser_a_live_run_page_draws_new_points_from_the_stream(live, browser_page):
    from playwright.sync_api import expect

    project, client = live
    page = browser_page
    with Track("live", project=project.root, sample_resources=False) as run:
        run.log_metric("loss", 1.0, step=0)
        run.flush()
        time.sleep(1.2)  # the index's background refresh sees the run
        page.goto(client.base + f"/run/{run.run_id}")
        expect(page.locator(".points[data-metric=loss]")).to_have_text("1")
        expect(page.locator("#live-mode")).to_have_text("live (events)")
        for step in range(1, 30):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.flush()
        expect(page.locator(".points[data-metric=loss]")).to_have_text("30")
        page.screenshot(path=str(SCREENSHOTS / "run-live-events.png"), full_page=True)
    expect(page.locator("#run-status")).to_have_text("finished")


def _samples_in_file(run_dir) -> list[float]:
    """The times of every complete line of a run's resources.csv (what Track's sampler wrote)."""
    lines = (run_dir / "resources.csv").read_text().splitlines()
    return [float(line.split(",")[0]) for line in lines if line]


def test_resource_samples_stream_as_the_sampler_writes_them_and_resume(live):
    project, client = live
    with Track("live", project=project.root, sample_interval=0.1) as run:
        deadline = time.monotonic() + 20
        while not (run.run_dir / "resources.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        status, page = client.json(f"/api/runs/{run.run_id}")
        assert status == 200 and len(page["stream_from"].split(":")) == 3
        start = page["resource_start"]
        read_with_page = [start + t for t, _v in page["resource_series"].get("cpu_percent", [])]
        stream = _read_stream(client.base, f"/api/runs/{run.run_id}/events?from={page['stream_from']}")
        got = _until(stream, lambda m: m and m[1] == "resources" and m[2]["samples"][-1]["time"] > start + 1.0)
        resume_from = next(m[0] for m in got if m and m[1] == "resources")
        sample = next(m for m in got if m and m[1] == "resources")[2]["samples"][0]
        assert set(sample) == {"time", "cpu_percent", "rss_bytes", "available_bytes", "disk_free_bytes",
                               "gpu_mem_bytes", "gpu_util"}
        assert sample["rss_bytes"] > 10 << 20 and sample["cpu_percent"] >= 0 and sample["gpu_mem_bytes"] is None
    ended = _until(stream, lambda m: m is None)
    assert ended[-2][1] == "end"
    streamed = [s["time"] for m in got + ended if m and m[1] == "resources" for s in m[2]["samples"]]
    assert streamed == sorted(streamed) and len(streamed) == len(set(streamed))  # each sample once, in order
    # the page's read and the stream together hold every sample the run wrote, the last one too
    on_disk = _samples_in_file(run.run_dir)
    missed = [t for t in on_disk if t not in streamed and not any(abs(t - p) < 0.002 for p in read_with_page)]
    assert not missed and set(streamed) <= set(on_disk)
    assert streamed[-1] == on_disk[-1] and len(on_disk) >= 10
    # a client that reconnects with Last-Event-ID gets only the samples after that message
    again = _read_stream(client.base, f"/api/runs/{run.run_id}/events", {"Last-Event-ID": resume_from})
    rest = _until(again, lambda m: m is None)
    resumed = [s["time"] for m in rest[1:-1] if m[1] == "resources" for s in m[2]["samples"]]
    seen = next(i for i, m in enumerate(got) if m and m[0] == resume_from and m[1] == "resources")
    before = [s["time"] for m in got[: seen + 1] if m and m[1] == "resources" for s in m[2]["samples"]]
    assert resumed and before + resumed == streamed
    # a two-offset position (a page from before resource samples streamed) still opens the stream
    old = _until(_read_stream(client.base, f"/api/runs/{run.run_id}/events?from=0:0"), lambda m: m is None)
    assert old[0][1] == 200 and old[-2][1] == "end" and "log" in {m[1] for m in old[1:-1]}
    assert "resources" not in {m[1] for m in old[1:-1]}  # samples from the files' ends only


@pytest.mark.slow
def test_browser_a_live_run_page_draws_resource_samples_from_the_stream(live, browser_page):
    from playwright.sync_api import expect

    project, client = live
    page = browser_page
    with Track("live", project=project.root, sample_interval=0.2) as run:
        run.log_metric("loss", 1.0, step=0)
        run.flush()
        time.sleep(1.2)  # the index's background refresh sees the run; a few samples are written
        page.goto(client.base + f"/run/{run.run_id}")
        expect(page.locator("#live-mode")).to_have_text("live (events)")
        latest = page.locator("#resource-latest")
        expect(latest).to_contain_text("memory")
        first = float(latest.get_attribute("data-seconds"))
        fetched: list[str] = []  # a whole-run read after the page's first (polling would make them)
        page.on("request", lambda req: fetched.append(req.url) if req.url.endswith(f"/api/runs/{run.run_id}") else None)
        page.wait_for_function(
            "(t) => Number(document.querySelector('#resource-latest').dataset.seconds) > t + 1.5", arg=first)
        assert page.locator("figure svg").count() >= 2  # the CPU and memory charts
        assert "CPU" in latest.inner_text() and not fetched  # drawn from the stream, not read again
        page.screenshot(path=str(SCREENSHOTS / "run-live-resources.png"), full_page=True)
    expect(page.locator("#run-status")).to_have_text("finished")
