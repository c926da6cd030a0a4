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
