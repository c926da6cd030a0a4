"""The public surface, guarded by golden files: what a user or a plugin may build on.

* ``tests/golden/api/PACKAGE.txt``: every name in each package's ``__all__`` with its signature
  (a class with its public methods and properties);
* ``tests/golden/cli/COMMAND.txt``: every command's help, arguments and options (names, types,
  defaults), one file per command;
* ``tests/golden/cli_json/COMMAND.txt``: the keys of each ``--json`` output, run on a real project.

A difference fails the test, and so does a missing golden file. After a deliberate change (or a
merge that adds commands), regenerate and review the diff::

    BLASE_UPDATE_GOLDEN=1 pytest -q tests/test_public_api.py && git diff tests/golden/
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
from pathlib import Path

import pytest
import typer.main

from tests.conftest import check_golden, pin_mlp

GOLDEN = Path(__file__).parent / "golden"
#: The packages whose ``__all__`` is public (DESIGN.md's modules, the tools and the agent).
PACKAGES = [
    "blase", "blase.cache", "blase.config", "blase.deploy", "blase.evaluate",
    "blase.extract", "blase.hashing", "blase.model", "blase.monitor", "blase.pipeline", "blase.plugins",
    "blase.prepare", "blase.profile", "blase.schema", "blase.steps", "blase.testing", "blase.track",
    "blase.train", "blase.transform", "blase.ui", "blase.update", "blase.errors", "blase.project",
    "blase.scaffold", "blase.reproduce", "blase.diff", "blase.gc", "blase.lineage", "blase.checks",
    "blase.doctor", "blase.resources", "blase.upgrade", "blase.tools", "blase.agent",
]


def _clean(text: str) -> str:
    return re.sub(r" at 0x[0-9a-f]+", "", text)


def _signature(obj: object, indent: str = "    ") -> str:
    """``(a, b=1) -> R``; a long one gets a parameter per line, so a golden diff shows the one changed."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    text = _clean(str(sig))
    if len(text) <= 100:
        return text
    params = [_clean(str(p)) for p in sig.parameters.values()]
    marks = []  # the / and * separators str(sig) would show
    for i, p in enumerate(sig.parameters.values()):
        prev = list(sig.parameters.values())[i - 1].kind if i else None
        if p.kind is p.KEYWORD_ONLY and prev not in (p.KEYWORD_ONLY, p.VAR_POSITIONAL):
            marks.append(f"{indent}    *,")
        marks.append(f"{indent}    {params[i]},")
    tail = "" if sig.return_annotation is sig.empty else f" -> {_clean(inspect.formatannotation(sig.return_annotation))}"
    return "(\n" + "\n".join(marks) + f"\n{indent}){tail}"


def _describe(name: str, obj: object) -> list[str]:
    if inspect.isclass(obj):
        bases = ", ".join(b.__name__ for b in obj.__bases__ if b is not object)
        lines = [f"class {name}{f'[{bases}]' if bases else ''}{_signature(obj)}"]
        for attr, value in sorted(vars(obj).items()):
            if attr.startswith("_"):
                continue
            if isinstance(value, property):
                lines.append(f"    {attr}: property")
            elif isinstance(value, (staticmethod, classmethod)):
                lines.append(f"    {attr}{_signature(value.__func__)}  [{type(value).__name__}]")
            elif inspect.isfunction(value):
                lines.append(f"    {attr}{_signature(value)}")
        return lines
    if callable(obj):
        return [f"def {name}{_signature(obj)}"]
    return [f"{name}: {type(obj).__name__}"]


def api_text(package: str) -> str:
    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{package} has no __all__: its public names are not declared"
    lines = [f"# {package}: names in __all__ and their signatures"]
    for name in sorted(names):
        lines += _describe(name, getattr(module, name))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("package", PACKAGES)
def test_public_api_matches_its_golden_file(package):
    check_golden(GOLDEN / "api" / f"{package}.txt", api_text(package), f"the public API of {package}")


# -- the CLI ------------------------------------------------------------------------------


def _commands(group, prefix: tuple[str, ...] = ()):
    for name, command in sorted(getattr(group, "commands", {}).items()):
        if getattr(command, "hidden", False):
            continue
        yield (*prefix, name), command
        yield from _commands(command, (*prefix, name))


def help_text(path: tuple[str, ...], command) -> str:
    """What ``blase PATH --help`` says, without the terminal layout: usage, text, then each
    argument and option as its help record (names, type, help, default)."""
    ctx = command.context_class(command, info_name=" ".join(("blase", *path)))
    lines = [command.get_usage(ctx), "", inspect.cleandoc(command.help or ""), ""]
    for param in command.params:
        record = param.get_help_record(ctx)
        if record is not None and param.name != "help":
            lines += [f"  {record[0]}", f"      {' '.join(record[1].split())}"]
    return "\n".join(lines).rstrip() + "\n"


def cli_texts() -> dict[str, str]:
    from blase.cli._app import app

    root = typer.main.get_command(app)
    texts = {"blase": help_text((), root)}
    for path, command in _commands(root):
        texts["blase " + " ".join(path)] = help_text(path, command)
    return texts


def test_cli_commands_and_options_match_their_golden_files():
    texts = cli_texts()
    folder = GOLDEN / "cli"
    for command, text in texts.items():
        check_golden(folder / f"{command.replace(' ', '_')}.txt", text, f"`{command}`'s options")
    stale = sorted(p.name for p in folder.glob("*.txt") if p.stem.replace("_", " ") not in texts)
    if stale and os.environ.get("BLASE_UPDATE_GOLDEN"):
        for name in stale:
            (folder / name).unlink()
    else:
        assert not stale, f"golden files of commands that are gone: {stale} (regenerate to remove them)"


def test_every_help_has_an_example():
    """`blase --help`, each group's and each command's help show one (bold) example to copy."""
    missing = [name for name, text in cli_texts().items() if "Example: [bold]blase " not in text]
    assert missing == []


# -- every command, run for real, with --project after it; the keys of its --json --------------

#: How the test runs each command on a trained project, from a folder outside it, with
#: ``--project PROJECT`` (and, for half of them, ``--debug``) AFTER the command: the arguments,
#: the exit codes that count as done, and (``json``) whether its ``--json`` keys are golden.
#: Placeholders: {name} the model, {run}/{run2} the two pipeline runs, {tmp} a scratch folder,
#: {project} the project. A command that serves (serve, ui, mcp) runs as a process until it answers.
COMMANDS: dict[str, dict] = {
    # --project names the new folder; the project's own folder holds files, so demo refuses it and
    # says which (the whole demo is tests/test_cli.py's)
    "blase create": {"args": ["create"], "project": "{tmp}/made", "made": "{tmp}/made/blase.yaml"},
    "blase demo": {"args": ["demo"], "codes": (1,), "stderr": "{project} is not empty"},
    "blase check": {"args": ["check", "--json"], "json": True},
    "blase schema": {"args": ["schema", "data/penguins.csv", "--label", "species", "--json"], "json": True},
    "blase run": {"args": ["run", "--json"], "json": True},
    "blase runs": {"args": ["runs", "--json"], "json": True},
    "blase inspect": {"args": ["inspect", "{run}", "--json"], "json": True},
    "blase inspect --lineage": {"args": ["inspect", "{run}", "--lineage", "--json"], "json": True},
    "blase diff": {"args": ["diff", "{run}", "{run2}", "--json"], "json": True},
    "blase trace": {"args": ["trace", "{name}@v1", "--json"], "json": True},
    "blase reproduce": {"args": ["reproduce", "{run}", "--verify", "--json"], "json": True},
    "blase restore": {"args": ["restore", "{run}", "--step", "transform", "--out", "{tmp}/restored", "--json"],
                      "json": True},
    "blase deploy": {"args": ["deploy", "{run}", "--json"], "json": True},
    "blase models": {"args": ["models", "--json"], "json": True},
    "blase promote": {"args": ["promote", "{name}", "v1"]},
    "blase rollback": {"args": ["rollback", "{name}", "--to", "v1"]},
    "blase predict": {"args": ["predict", "{name}", "{project}/data/penguins.csv", "--out", "{tmp}/p.csv",
                               "--force", "--json"], "json": True},
    "blase monitor": {"args": ["monitor", "{name}", "{project}/data/penguins.csv", "--json"], "json": True},
    "blase update": {"args": ["update", "{name}", "{project}/data/penguins.csv", "--epochs", "1", "--json"],
                     "json": True},
    # --keep-last 0: the second run's train entry is always collectable, so the keys of an entry show
    # whatever other commands ran before this one on the shared project
    "blase gc": {"args": ["gc", "--keep-last", "0", "--dry-run", "--json"], "json": True},
    "blase pin": {"args": ["pin", "{run}"]},
    "blase upgrade": {"args": ["upgrade", "--dry-run", "--json"], "json": True},
    "blase doctor": {"args": ["doctor", "--json"], "json": True, "codes": (0, 1)},
    "blase plugins": {"args": ["plugins", "--json"], "json": True},
    "blase plugin check": {"args": ["plugin", "check", "mmd", "--json"], "json": True},
    "blase sweep": {"args": ["sweep", "--set", "train.epochs=1,2", "--to", "train", "--json"], "json": True},
    "blase remote add": {"args": ["remote", "add", "share", "{tmp}/share"]},
    "blase remote list": {"args": ["remote", "list", "--json"], "json": True},
    "blase remote verify": {"args": ["remote", "verify", "lab"]},
    "blase remote remove": {"args": ["remote", "remove", "old"], "before": [["remote", "add", "old", "{tmp}/old"]]},
    "blase push": {"args": ["push", "{run}", "--remote", "lab", "--json"], "json": True},
    "blase pull": {"args": ["pull", "{run}", "--remote", "lab", "--json"], "json": True,
                   "before": [["push", "{run}", "--remote", "lab"]]},
    "blase chat": {"args": ["chat", "-m", "list my runs", "--json", "--provider", "openai", "--model", "local",
                            "--base-url", "{llm}"], "json": True},
    "blase session": {"args": ["session", "latest", "--json"], "json": True,
                      "before": [["chat", "-m", "list my runs", "--provider", "openai", "--model", "local",
                                  "--base-url", "{llm}"]]},
    # parsed only: its run builds a scratch project (17 s); tests/test_eval.py runs it with --project
    "blase agent eval": {"args": ["agent", "eval", "--task", "i01", "--help"]},
    "blase serve": {"serve": ["serve", "{name}", "--port", "{port}"], "path": "/health"},
    "blase ui": {"serve": ["ui", "--port", "{port}", "--only"], "path": "/"},
    "blase mcp": {"serve": ["mcp", "--transport", "http", "--port", "{port}"], "path": None},
}


def json_keys(value: object) -> list[str]:
    """The key paths of a JSON value (``artifacts[].hash``), values left out, three levels deep
    (an event's own payload may grow). A dict whose keys are data (metric names with dots,
    columns, params) shows as ``*``, its values' keys merged."""
    return sorted({path.lstrip(".") for path in _key_paths(value, "", 3)})


def _key_paths(value: object, prefix: str, depth: int) -> set[str]:
    if depth == 0:
        return {prefix}
    if isinstance(value, list):
        return {k for item in value for k in _key_paths(item, f"{prefix}[]", depth - 1)} or {f"{prefix}[]"}
    if isinstance(value, dict):
        if not value:
            return {prefix + "{}"}
        record = all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in value)
        return {k for key, v in value.items()
                for k in _key_paths(v, f"{prefix}.{key if record else '*'}", depth - 1)}
    return {prefix}


def _leaf_commands() -> list[str]:
    names = list(cli_texts())
    return [n for n in names if n != "blase" and not any(o.startswith(n + " ") for o in names)]


def test_every_command_has_a_case_here():
    """A command added without a line in COMMANDS fails: it must run with --project after it."""
    covered = {name.replace(" --lineage", "") for name in COMMANDS}
    assert sorted(set(_leaf_commands()) - covered) == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from blase.pipeline import Pipeline
    from blase.remote import add_remote
    from blase.scaffold import create_project

    base = tmp_path_factory.mktemp("every")
    project = pin_mlp(create_project(base / "golden"))
    first = Pipeline(project, overrides=["train.epochs=3"]).run().run_id
    second = Pipeline(project, overrides=["train.epochs=2"]).run(from_step="train").run_id
    add_remote(project, "lab", str(base / "lab"))
    (base / "elsewhere").mkdir()
    return project, first, second, base


@pytest.fixture(scope="module")
def llm():
    """A real OpenAI-compatible HTTP server answering every chat turn with a list_runs call, then text."""
    from tests.test_providers import _chat_completion, _tool_reply, local_server

    def handle(method, path, body):
        last = (body.get("messages") or [{}])[-1]
        if last.get("role") == "tool":
            return 200, _chat_completion({"content": "Here are your runs."})
        if body.get("tools"):
            return 200, _tool_reply("list_runs", {"limit": 5})
        return 200, _chat_completion({"content": "I can't help with that."})

    with local_server(handle) as (url, _):
        yield f"{url}/v1"


def _fill(args: list[str], values: dict[str, str]) -> list[str]:
    return [a.format(**values) for a in args]


@pytest.mark.slow
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_runs_with_project_after_it(command, trained, llm, cli, tmp_path):
    """Each command, from a folder outside the project, with ``--project DIR`` after it (and
    ``--debug`` after every other one): it acts on that project; its --json keys match the golden file."""
    project, first, second, base = trained
    case = COMMANDS[command]
    values = {"name": project.name, "run": first, "run2": second, "tmp": str(tmp_path),
              "project": str(project.root), "llm": llm, "port": str(_free_port())}
    if "serve" in case:
        return _serve_answers(_fill(case["serve"], values), case["path"], values, project.root, base)
    for before in case.get("before", []):
        done = cli(*_fill(before, values), "--project", str(project.root), cwd=base / "elsewhere")
        assert done.exit_code == 0, done.stderr
    args = _fill(case["args"], values)
    debug = ["--debug"] if list(COMMANDS).index(command) % 2 and case.get("codes", (0,)) == (0,) else []
    where = case.get("project", "{project}").format(**values)
    result = cli(*args, "--project", where, *debug, cwd=base / "elsewhere")
    assert result.exit_code in case.get("codes", (0,)), f"blase {' '.join(args)}: {result.stdout}{result.stderr}"
    if "stderr" in case:
        assert case["stderr"].format(**values) in result.stderr
    if "made" in case:
        assert Path(case["made"].format(**values)).is_file()
    if case.get("json"):
        shown = " ".join(args).replace(str(project.root), "PROJECT").replace(str(tmp_path), "TMP")
        shown = shown.replace(first, "RUN").replace(second, "RUN2").replace(llm, "LLM")
        keys = "\n".join(json_keys(json.loads(result.stdout)))
        name = command.removeprefix("blase ").replace(" --", "_").replace(" ", "_")
        check_golden(GOLDEN / "cli_json" / f"{name}.txt", f"blase {shown} --project PROJECT\n{keys}\n",
                     f"the keys of `{command} --json`")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_answers(args: list[str], path: str | None, values: dict, root: Path, cwd: Path) -> None:
    """Start ``blase ARGS --project ROOT --debug`` as a process; done when its port answers."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    cmd = [sys.executable, "-m", "blase", *args, "--project", str(root), "--debug"]
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1].decode()
            try:
                if path is None:
                    socket.create_connection(("127.0.0.1", int(values["port"])), timeout=1).close()
                    return
                with urllib.request.urlopen(f"http://127.0.0.1:{values['port']}{path}", timeout=2) as answer:
                    assert answer.status == 200
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"blase {' '.join(args)} did not answer in 60 s")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
