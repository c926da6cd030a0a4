"""`blase run --autonomy semi` proposals answered from `blase ui` or the terminal: first answer wins.

A real autopilot (the penguins pipeline, two epochs, a scripted model) waits in a thread the way
the CLI waits in its process; the page answers through the real HTTP server; the gate records
who decided.
"""

from __future__ import annotations

import importlib.util
import threading
import time

import pytest

import tests.test_ui as test_ui
from blase.ui import Dashboard
from tests.test_ui import SCREENSHOTS, Client
from tests.test_ui_scale import _gates

browser_page = test_ui.browser_page

pytestmark = pytest.mark.skipif(importlib.util.find_spec("langgraph") is None,
                                reason="the agent extra is not installed (pip install -e '.[dev]')")

QUICK = ["train.epochs=2"]


def _change(key: str, value: str) -> dict:
    from blase.agent._fake import call

    return call("propose_config_change", {"key": key, "value": value, "reason": f"try {key}={value}"})


def _pilot_llm():
    """Proposes a change at transform and another at evaluate; accepts every other step."""
    import re

    from blase.agent._fake import ScriptedChatModel, call
    from langchain_core.messages import HumanMessage

    plan = {"transform": [_change("transform.1.strategy", "most_frequent")],
            "evaluate": [_change("train.class_weights", "balanced")]}

    def respond(messages):
        human = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
        step = re.search(r"Decide for step (\w+)", human.content).group(1)
        return plan[step].pop(0) if plan.get(step) else call("accept_step", {"reason": "fine"})

    return ScriptedChatModel(repeat=respond)


def _wait_for(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_page_and_terminal_answer_a_waiting_autopilot_first_one_wins(project):
    from blase.agent import AnswerBox, Autopilot

    asked: list[str] = []
    terminal_may_go = threading.Event()

    def terminal(pending, answered):
        """The terminal's prompt: waits until the page answered (first proposal), or until the
        test lets it give up (second proposal, which another terminal answered)."""
        asked.append(pending.tool)
        while not answered():
            time.sleep(0.05)
        terminal_may_go.wait(30)
        return None

    outcome: dict = {}

    def drive():
        with Autopilot(project, autonomy="semi", llm=_pilot_llm(), overrides=QUICK) as pilot:
            outcome["sid"] = pilot.session_id
            result = pilot.start()
            while result.pending is not None:
                result = pilot.wait_for_person(terminal, poll=0.05, timeout=60)
            outcome["report"] = result.report

    pilot_thread = threading.Thread(target=drive, daemon=True)
    pilot_thread.start()
    client = Client(Dashboard([project.root]))
    try:
        sid = _wait_for(lambda: outcome.get("sid"), "the session")
        box = AnswerBox(project, sid)
        # 1. the page answers first: the waiting process applies it, the terminal's prompt gives up
        first = _wait_for(lambda: box.waiting(), "the pilot to wait")
        status, session = client.json(f"/api/sessions/{sid}")
        assert status == 200 and session["autopilot"] and session["pending"]["tool"] == "propose_config_change"
        assert session["pending"]["answered"] is None
        status, data = client.json(f"/api/sessions/{sid}/decide", {"action": "reject", "note": "keep the median"})
        assert status == 200, data
        assert data["by"] == "person (blase ui)" and data["decision"] == "reject"
        terminal_may_go.set()
        # 2. the second proposal: another place (the terminal) answers first; the page is told
        second = _wait_for(lambda: (w := box.waiting()) and w["call_id"] != first["call_id"] and w, "proposal 2")
        terminal_may_go.clear()
        assert box.claim(second["call_id"], {"action": "approve", "by": "person"}).won
        status, data = client.json(f"/api/sessions/{sid}/decide", {"action": "reject"})
        assert status == 409 and "already answered: approve by person" in data["error"]
        terminal_may_go.set()
        pilot_thread.join(120)
        assert not pilot_thread.is_alive()
        status, data = client.json(f"/api/sessions/{sid}/decide", {"action": "approve"})
        assert status == 400 and "waits on no call" in data["error"]  # nothing waits any more
    finally:
        terminal_may_go.set()
        client.close()
    report = outcome["report"]
    assert [r["note"] for r in report.rejected] == ["keep the median"]
    assert [d["summary"] for d in report.done] == ["train.class_weights=balanced"]
    gates = [g for g in _gates(project, sid) if g[1] in ("approved", "rejected")]
    assert gates == [("propose_config_change", "rejected", "person (blase ui)"),
                     ("propose_config_change", "approved", "person")]
    assert asked == ["propose_config_change", "propose_config_change"]


def test_a_proposal_whose_process_is_gone_is_refused_with_the_fix(project):
    from blase.agent import AnswerBox, Autopilot

    with Autopilot(project, autonomy="semi", llm=_pilot_llm(), overrides=QUICK) as pilot:
        result = pilot.start()
        sid = pilot.session_id
        assert result.pending is not None
        # the process that asked died before answering (a waiting note with a dead pid)
        box = AnswerBox(project, sid)
        box.open(result.pending.call_id)
        note = box.folder / "waiting.json"
        note.write_text(note.read_text().replace(f'"pid": {__import__("os").getpid()}', '"pid": 999999999'))
        client = Client(Dashboard([project.root]))
        try:
            status, data = client.json(f"/api/sessions/{sid}/decide", {"action": "approve"})
        finally:
            client.close()
        assert status == 409 and "no `blase run --autonomy` process waits" in data["error"]
        assert "blase run --autonomy semi" in data["hint"]
        assert box.answer(result.pending.call_id) is None  # nothing was recorded as an answer


def test_the_terminal_prompt_reads_a_line_or_gives_way_to_the_page(monkeypatch, capsys):
    import os
    import sys

    from blase.cli._assistant import _prompt_until

    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "r") as stdin, os.fdopen(write_end, "w") as writer:
        monkeypatch.setattr(sys, "stdin", stdin)
        answered = threading.Event()
        threading.Timer(0.3, answered.set).start()
        started = time.monotonic()
        assert _prompt_until("approve?", "n", answered.is_set) is None  # the page answered first
        assert time.monotonic() - started < 5
        writer.write("y\n")
        writer.flush()
        assert _prompt_until("approve?", "n", lambda: False) == "y"
        writer.write("\n")
        writer.flush()
        assert _prompt_until("approve?", "n", lambda: False) == "n"  # the default
    assert "approve? [n]:" in capsys.readouterr().out


@pytest.mark.slow
def test_browser_rejects_a_waiting_autopilot_proposal(project, browser_page):
    from blase.agent import AnswerBox, Autopilot
    from playwright.sync_api import expect

    outcome: dict = {}

    def drive():
        with Autopilot(project, autonomy="semi", llm=_pilot_llm(), overrides=QUICK) as pilot:
            outcome["sid"] = pilot.session_id
            result = pilot.start()
            while result.pending is not None:  # no terminal: the page answers
                result = pilot.wait_for_person(poll=0.05, timeout=90)
            outcome["report"] = result.report

    pilot_thread = threading.Thread(target=drive, daemon=True)
    pilot_thread.start()
    client = Client(Dashboard([project.root]))
    page = browser_page
    try:
        sid = _wait_for(lambda: outcome.get("sid"), "the session")
        _wait_for(lambda: AnswerBox(project, sid).waiting(), "the pilot to wait")
        page.goto(client.base + f"/session/{sid}")
        box = page.locator(".pending-box")
        expect(box).to_contain_text("propose_config_change")
        expect(box).to_contain_text("answer here or in its terminal")
        page.fill("input[name=note]", "median is fine")
        page.click("button.decide-reject")
        expect(page.locator("p.answer")).to_contain_text("reject sent to the waiting")
        page.screenshot(path=str(SCREENSHOTS / "assistant-autopilot-answered.png"), full_page=True)
        # the second proposal (at evaluate) comes; the page, polling, shows it: reject it too
        expect(page.locator(".pending-box")).to_contain_text("train.class_weights", timeout=60_000)
        page.click("button.decide-reject")
        pilot_thread.join(120)
        expect(page.locator(".pending-box")).to_have_count(0, timeout=30_000)
    finally:
        client.close()
    assert [r["note"] for r in outcome["report"].rejected] == ["median is fine", None]
    gates = [g for g in _gates(project, sid) if g[1] in ("approved", "rejected")]
    assert gates == [("propose_config_change", "rejected", "person (blase ui)")] * 2
