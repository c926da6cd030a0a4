"""Benchmark the embedded assistant: latency of a chat turn with one tool call, and the tool
it picks, next to the anchor (the single chatml-function-calling call with all 20 tools and
the full system prompt that the embedded provider made before retrieval and two-stage decoding).

Run from the repository root (needs the local-llm extra)::

    python bench/assistant.py

It builds a scratch project (like ``blase agent eval``), then for each request runs one real
``blase chat`` turn (Session: decode -> gate -> tool -> answer) and one anchor call on the same
model file. Prints a table; nothing here is a test. The requests are this script's own.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REQUESTS = [  # (request, the tool a person means)
    ("Give me an overview of my 6 newest runs.", "list_runs"),
    ("Which deployed models are there and which version serves?", "list_models"),
    ("Show the metrics and params of run {run}.", "inspect_run"),
    ("Print the configuration file of this project.", "show_config"),
    ("Look at the first 4 rows of data/penguins.csv.", "preview_data"),
]


def anchor_call(gguf: str, system: str, request: str) -> tuple[float, str | None]:
    """One call as the embedded provider made it before: every tool, chatml-function-calling."""
    from blase.tools import tool_schemas
    from llama_cpp import Llama

    global _ANCHOR
    if _ANCHOR is None:
        _ANCHOR = Llama(model_path=gguf, n_ctx=8192, chat_format="chatml-function-calling", verbose=False, seed=0)
    started = time.perf_counter()
    out = _ANCHOR.create_chat_completion(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": request}],
        tools=tool_schemas(), tool_choice="auto", temperature=0.0, max_tokens=384, repeat_penalty=1.3)
    calls = out["choices"][0]["message"].get("tool_calls") or []
    return time.perf_counter() - started, (calls[0]["function"]["name"] if calls else None)


_ANCHOR = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-anchor", action="store_true", help="Skip the anchor calls.")
    opts = parser.parse_args()

    from blase.agent import Session
    from blase.agent._eval import build_scratch_project, fill
    from blase.prompts import read_prompt

    from blase.doctor import find_smollm2_gguf

    gguf = str(find_smollm2_gguf())
    folder = Path(tempfile.mkdtemp(prefix="blase-bench-assistant-"))
    project, facts = build_scratch_project(folder)
    system = read_prompt("system.md") + f"\n\nProject: {project.name}."
    rows = []
    with Session(project, autonomy="manual", provider="llamacpp") as session:
        session.send("hello")  # load the model once, as a chat session has
        for text, want in REQUESTS:
            request = fill(text, facts)
            started = time.perf_counter()
            turn = session.send(request)
            wall = time.perf_counter() - started
            calls = [e for e in turn.events if e["event"] == "model_call"]
            tools = [e["tool"] for e in turn.events if e["event"] == "tool_result"]
            answer = (calls[-1].get("decode") or {}) if calls else {}
            decode_s = calls[0].get("latency_s") or 0.0 if calls else 0.0
            answer_s = calls[-1].get("latency_s") or 0.0 if len(calls) > 1 else 0.0
            tool_s = sum(e.get("seconds") or 0.0 for e in turn.events if e["event"] == "tool_result")
            # the first token the person sees: everything before the answer call, then its first token
            first_token = wall - answer_s + (answer.get("first_token_s") or 0.0)
            anchor_s, anchor_tool = anchor_call(gguf, system, request) if not opts.no_anchor else (float("nan"), None)
            rows.append((request, want, tools[0] if tools else None, wall, first_token, decode_s, tool_s, answer_s,
                         anchor_tool, anchor_s))
            print(f"  {request[:50]}: {wall:.2f}s {tools} | anchor {anchor_s:.2f}s {anchor_tool}", file=sys.stderr)
    print(f"\n{'request':48} {'tool (now)':15} {'turn s':>6} {'1st tok':>7} {'decode':>6} {'tool':>5} {'answer':>6} | "
          f"{'tool (anchor)':15} {'call s':>6}")
    for request, want, tool, wall, first, dec, ts, ans, a_tool, a_s in rows:
        print(f"{request[:48]:48} {(tool or '-') + (' ok' if tool == want else ' X'):15} {wall:6.2f} {first:7.2f} "
              f"{dec:6.2f} {ts:5.2f} {ans:6.2f} | {(a_tool or '-') + (' ok' if a_tool == want else ' X'):15} {a_s:6.2f}")
    med = [statistics.median(r[i] for r in rows) for i in (3, 4, 5, 6, 7, 9)]
    print(f"{'median':48} {'':15} {med[0]:6.2f} {med[1]:7.2f} {med[2]:6.2f} {med[3]:5.2f} {med[4]:6.2f} | "
          f"{'':15} {med[5]:6.2f}")
    print(f"right tool: now {sum(r[2] == r[1] for r in rows)}/{len(rows)}, anchor {sum(r[8] == r[1] for r in rows)}/{len(rows)}"
          " (anchor: its tool call only; its answer call came on top)")


if __name__ == "__main__":
    main()
