"""Benchmark how long `blase mcp` takes to answer its first ``tools/list``, beside the SDK's floor.

A client (editor, desktop assistant) starts the server over stdio and waits for the tool list
before it can offer anything, so this is the latency a person sees once per client session.
Side by side in one run, each started ``--repeat`` times in turn on one scratch project:

- the anchor: a minimal server written with the same ``mcp`` SDK (one tool), started the same
  way (``python -c``): the floor of Python + the SDK on this machine;
- ``blase mcp`` from this checkout (``sys.executable``);
- with ``--before PYTHON``: ``blase mcp`` of another installation, e.g. the main branch's venv
  (``--before /work/main/.venv/bin/python``), to compare before and after a change;
- ``blase --help`` for each installation (the CLI's own start, which must stay fast).

Each number is process start to the answer (``initialize`` + ``tools/list`` for the servers).
Run from the repository root::

    python bench/mcp_start.py --repeat 5 --before /work/main/.venv/bin/python

Prints a table; nothing here is a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

#: The anchor: the smallest useful server the SDK makes (one tool, low-level API like blase's).
FLOOR = """
import anyio, mcp.types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[types.Tool(name="ping", description="ping",
                                                   input_schema={"type": "object", "properties": {}})])

server = Server("floor", on_list_tools=list_tools)

async def main():
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())

anyio.run(main)
"""


def first_list(command: str, args: list[str]) -> tuple[float, int]:
    """Seconds from starting the server to its first tools/list answer, and the tools listed."""
    server = StdioServerParameters(command=command, args=args)
    out: list[tuple[float, int]] = []

    async def main() -> None:
        t0 = time.perf_counter()
        async with stdio_client(server, errlog=subprocess.DEVNULL) as (read, write), \
                ClientSession(read, write) as s:
            await s.initialize()
            tools = (await s.list_tools()).tools
            out.append((time.perf_counter() - t0, len(tools)))

    anyio.run(main)
    return out[0]


def help_seconds(python: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([python, "-m", "blase", "--help"], capture_output=True, check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", help="the python of another installation to compare (its `blase mcp`)")
    opts = parser.parse_args()

    from blase.scaffold import create_project

    pythons = {"this checkout": sys.executable, **({"before": opts.before} if opts.before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        root = str(create_project(Path(tmp) / "proj").root)
        variants = {"MCP SDK minimal server (anchor)": (sys.executable, ["-c", FLOOR])}
        for label, python in pythons.items():
            variants[f"`blase mcp`, {label}"] = (python, ["-m", "blase", "mcp", "--autonomy", "manual",
                                                          "--project", root])
        times: dict[str, list[float]] = {name: [] for name in variants}
        tools: dict[str, int] = {}
        helps: dict[str, list[float]] = {label: [] for label in pythons}
        for _ in range(opts.repeat):  # interleaved, so a burst of load hits every variant alike
            for name, (python, args) in variants.items():
                seconds, tools[name] = first_list(python, args)
                times[name].append(seconds)
            for label, python in pythons.items():
                helps[label].append(help_seconds(python))

    anchor = statistics.median(times["MCP SDK minimal server (anchor)"])
    print(f"\nstart to the first tools/list answer over stdio, {opts.repeat} starts each (interleaved)\n")
    print("| server | tools | median | min | max | vs anchor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {tools[name]} | {med:.2f} s | {min(values):.2f} s | {max(values):.2f} s | "
              f"{med / anchor:.1f}x |")
    for label, values in helps.items():
        print(f"| `blase --help`, {label} | - | {statistics.median(values):.2f} s | {min(values):.2f} s | "
              f"{max(values):.2f} s | - |")


if __name__ == "__main__":
    main()
