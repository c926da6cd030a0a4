"""Benchmark the assistant page of `blase ui`: the time per turn a person waits there.

The page lists the assistant's sessions with the call each one waits on, and a person answers
it (approve, reject, edit): the server resumes the session, the gate runs the call, and the
embedded model's turn answers from the result. Side by side in one run, on one scratch project
with the embedded SmolLM2-135M (``agent.provider: llamacpp``), ``--repeat`` times:

- the anchor: the same decision in the terminal's way, in process (``Session(...).decide``,
  what ``blase chat --resume`` does), on a session that waits on the same call;
- the page: ``GET /api/sessions/ID`` (the session's replay with its waiting call) and ``POST
  /api/sessions/ID/decide`` (approve) against a real server (``blase.ui.make_server``, HTTP on
  127.0.0.1), whose first decide loads the model (shown apart from the later ones);
- the chat turn that made the proposal (``Session.send``), for scale.

The call is ``run_step`` of the extract step (a real pipeline run). Run from the repository
root::

    python bench/assistant_page.py --repeat 5

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REQUEST = "Run only the extract step."


def waiting_session(root: Path) -> tuple[str, float]:
    """A semi session waiting on the extract step (and how long its turn took)."""
    from blase.agent import Session

    with Session(root, autonomy="semi", provider="llamacpp") as session:
        t0 = time.perf_counter()
        turn = session.send(REQUEST)
        seconds = time.perf_counter() - t0
        assert turn.pending is not None and turn.pending.tool == "run_step", turn
        return session.session_id, seconds


def post(base: str, path: str, body: object, token: str) -> tuple[float, dict]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-Blase-Token": token})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        data = json.loads(response.read())
    return time.perf_counter() - t0, data


def get(base: str, path: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=60) as response:
        data = json.loads(response.read())
    return time.perf_counter() - t0, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()

    from blase.agent import Session

    from blase.scaffold import create_project
    from blase.ui import Dashboard, make_server

    rows: dict[str, list[float]] = {"chat turn to the proposal (`Session.send`)": [],
                                    "terminal: approve in process (anchor)": [],
                                    "page: open the session (GET /api/sessions/ID)": [],
                                    "page: approve (POST .../decide), first": [],
                                    "page: approve (POST .../decide), later": []}
    with tempfile.TemporaryDirectory() as tmp:
        project = create_project(Path(tmp) / "proj")
        with project.config_path.open("a") as f:
            f.write("\nagent:\n  provider: llamacpp\n")
        server, state = make_server(Dashboard([project.root]), host="127.0.0.1", port=0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            for i in range(opts.repeat):
                sid, seconds = waiting_session(project.root)
                rows["chat turn to the proposal (`Session.send`)"].append(seconds)
                t0 = time.perf_counter()
                with Session(project.root, session_id=sid) as session:
                    turn = session.decide("approve")
                rows["terminal: approve in process (anchor)"].append(time.perf_counter() - t0)
                assert turn.pending is None and turn.answer, turn

                sid, _ = waiting_session(project.root)
                seconds, shown = get(base, f"/api/sessions/{sid}")
                assert shown["pending"] and shown["pending"]["tool"] == "run_step", "the page shows no waiting call"
                rows["page: open the session (GET /api/sessions/ID)"].append(seconds)
                seconds, answered = post(base, f"/api/sessions/{sid}/decide", {"action": "approve"}, state.token)
                assert answered.get("pending") is None and answered.get("answer"), answered
                rows["page: approve (POST .../decide), first" if i == 0 else
                     "page: approve (POST .../decide), later"].append(seconds)
        finally:
            server.shutdown()

    anchor = statistics.median(rows["terminal: approve in process (anchor)"])
    print(f"\nthe assistant page with the embedded model, `{REQUEST}` approved, {opts.repeat} repeats\n")
    print("| step | n | median | min | max | vs anchor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, values in rows.items():
        if values:
            med = statistics.median(values)
            print(f"| {name} | {len(values)} | {med:.2f} s | {min(values):.2f} s | {max(values):.2f} s | "
                  f"{med / anchor:.1f}x |")


if __name__ == "__main__":
    main()
