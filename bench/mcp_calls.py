"""Benchmark `blase mcp`: what a tool call costs over MCP, beside calling the tool in Python.

Side by side in one run, on one scratch project with ``--runs`` finished runs:

- the anchor: ``blase.tools.call_tool("list_runs", ...)`` in process (no gate, no record);
- the same call through the shared gate with its Track record (``McpSession.check`` + ``run``);
- over MCP stdio and over MCP streamable HTTP on 127.0.0.1, with the official SDK's client;
- ``blase runs --json`` as a subprocess per call (what a client without MCP would shell out to).

Also the time from starting ``blase mcp`` to an initialized MCP session. Run from the
repository root::

    python bench/mcp_calls.py               # 30 calls each
    python bench/mcp_calls.py --calls 10

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import anyio  # noqa: E402
from mcp import ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

ARGS = {"limit": 10}


def make_project(base: Path, runs: int) -> Path:
    from blase.scaffold import create_project
    from blase.track import Track

    project = create_project(base / "proj")
    # more calls than the default budget (20 a minute) allows: this measures cost, not the gate
    with project.config_path.open("a") as f:
        f.write("\nagent:\n  max_tool_calls: 100000\n")
    for i in range(runs):
        with Track(f"run-{i}", project=project, params={"i": i}, sample_resources=False) as t:
            t.log_metric("accuracy", 0.5 + i / (2 * runs))
    return project.root


def timed(fn: Callable[[], object], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


async def over_mcp(connect: Callable[[], object], calls: int) -> tuple[float, list[float]]:
    """(seconds to an initialized session, per-call seconds)."""
    t0 = time.perf_counter()
    async with connect() as streams, ClientSession(streams[0], streams[1]) as s:
        await s.initialize()
        ready = time.perf_counter() - t0
        times = []
        for _ in range(calls):
            t1 = time.perf_counter()
            result = await s.call_tool("list_runs", ARGS)
            assert not result.is_error, result.content
            times.append(time.perf_counter() - t1)
    return ready, times


def bench_stdio(root: Path, calls: int) -> tuple[float, list[float]]:
    server = StdioServerParameters(command=sys.executable,
                                   args=["-m", "blase", "mcp", "--autonomy", "manual", "--project", str(root)])
    return anyio.run(over_mcp, lambda: stdio_client(server, errlog=subprocess.DEVNULL), calls)


def bench_http(root: Path, calls: int) -> tuple[float, list[float]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "blase", "mcp", "--transport", "http", "--port", str(port),
                             "--project", str(root)], stderr=subprocess.DEVNULL)
    try:
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        started = time.perf_counter() - t0
        ready, times = anyio.run(over_mcp, lambda: streamable_http_client(f"http://127.0.0.1:{port}/mcp"), calls)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return started + ready, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--runs", type=int, default=50, help="finished runs in the scratch project")
    opts = parser.parse_args()

    from blase.agent import McpSession
    from blase.tools import ToolContext, call_tool

    rows: list[tuple[str, str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = make_project(Path(tmp), opts.runs)
        ctx = ToolContext.for_project(root)
        call_tool("list_runs", ARGS, ctx)  # warm imports and the page cache
        rows.append(("call_tool in process (anchor)", "-", timed(lambda: call_tool("list_runs", ARGS, ctx), opts.calls)))
        with McpSession(root, autonomy="manual", transport="stdio") as session:
            def gated() -> None:
                session.run(session.check("list_runs", ARGS, client="bench"))

            rows.append(("gate + Track record, in process", "-", timed(gated, opts.calls)))
        ready, times = bench_stdio(root, opts.calls)
        rows.append(("MCP stdio (SDK client)", f"{ready:.2f} s", times))
        ready, times = bench_http(root, opts.calls)
        rows.append(("MCP streamable HTTP, 127.0.0.1", f"{ready:.2f} s", times))
        cli = [sys.executable, "-m", "blase", "runs", "--json", "--limit", "10", "--project", str(root)]
        few = max(3, opts.calls // 5)
        rows.append((f"`blase runs --json` subprocess ({few} calls)", "-",
                     timed(lambda: subprocess.run(cli, capture_output=True, check=True), few)))

    anchor = statistics.median(rows[0][2])
    print(f"\nlist_runs (limit 10) on a project with {opts.runs} runs, {opts.calls} calls each\n")
    print("| path | start to ready | median per call | p90 per call | vs anchor |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, ready, times in rows:
        med = statistics.median(times)
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        print(f"| {name} | {ready} | {med * 1000:.1f} ms | {p90 * 1000:.1f} ms | {med / anchor:.1f}x |")


if __name__ == "__main__":
    main()
