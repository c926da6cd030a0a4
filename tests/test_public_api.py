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


# -- the --json outputs ------------------------------------------------------------------

#: Commands run with --json on a trained demo project: their top-level keys are the contract
#: (for an array, the keys of its items).
JSON_COMMANDS = {
    "runs": ["runs", "--json"],
    "inspect": ["inspect", "latest", "--json"],
    "models": ["models", "--json"],
    "check": ["check", "--json"],
    "deploy": ["deploy", "latest", "--json"],
    "predict": ["predict", "{name}", "data/penguins.csv", "--out", "{root}/outputs/golden.csv", "--force", "--json"],
    "schema": ["schema", "data/penguins.csv", "--label", "species", "--json"],
    "gc": ["gc", "--dry-run", "--json"],
    "plugins": ["plugins", "--json"],
    "trace": ["trace", "{name}@v1", "--json"],
    "run": ["run", "--json"],
    "upgrade": ["upgrade", "--dry-run", "--json"],
}


def json_keys(value: object) -> str:
    if isinstance(value, list):
        return "[] of " + (json_keys(value[0]) if value else "nothing")
    if isinstance(value, dict):
        return "{" + ", ".join(sorted(value)) + "}"
    return type(value).__name__


@pytest.fixture(scope="module")
def demo_project(tmp_path_factory):
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = pin_mlp(create_project(tmp_path_factory.mktemp("api") / "golden"))
    Pipeline(project, overrides=["train.epochs=3"]).run()
    return project


@pytest.mark.slow
def test_json_outputs_keep_their_keys(demo_project, cli):
    for command, args in JSON_COMMANDS.items():
        args = [a.format(name=demo_project.name, root=demo_project.root) for a in args]
        result = cli(*args, "--project", str(demo_project.root))
        assert result.exit_code == 0, f"blase {' '.join(args)}: {result.stderr}"
        shown = " ".join(args).replace(str(demo_project.root), "PROJECT")
        text = f"blase {shown}\n{json_keys(json.loads(result.stdout))}\n"
        check_golden(GOLDEN / "cli_json" / f"{command}.txt", text, f"the keys of `blase {command} --json`")
