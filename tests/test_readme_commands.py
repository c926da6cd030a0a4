"""Every `blase ...` command README.md shows must parse, and its `--set` pairs must apply.

A documented command that the CLI rejects (an unknown option, a `--set` key that cannot be
applied to the config `blase create` writes) fails here instead of on a user's first try.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

README = Path(__file__).resolve().parents[1] / "README.md"
#: Words that stand for something the reader fills in (table syntax, not a command to type).
_PLACEHOLDER = re.compile(r"\[|\.\.\.|\||\b[A-Z]{2,}(_[A-Z]+)*\b")


def _commands() -> list[str]:
    """Whole commands: the lines of the code blocks."""
    text = README.read_text(encoding="utf-8")
    found: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words[:1] == ["blase"]:
                    found.append(shlex.join(words))
    return sorted(set(found))


def _mentions() -> list[str]:
    """Commands quoted in the text (their arguments may be left out: `blase monitor --act`)."""
    text = README.read_text(encoding="utf-8")
    found: list[str] = []
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for line in prose.splitlines():
        if line.lstrip().startswith("|"):
            continue  # the command table shows syntax with placeholders
        for cmd in re.findall(r"`(blase [^`]+)`", line):
            if not _PLACEHOLDER.search(cmd):
                found.append(cmd)
    return sorted(set(found))


def _parse(args: list[str]):
    """Parse ``args`` the way the console script does, down to the leaf command."""
    from blase.cli._app import app

    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("blase", list(args))
    while hasattr(cmd, "resolve_command"):  # a group (typer ships its own copy of click)
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
        rest = [*protected, *ctx.args]
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None, f"no command {name!r}"
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub
    return ctx


def test_the_readme_shows_commands():
    commands = _commands()
    assert len(commands) > 20
    assert "blase run --set train.epochs=5 --set train.lr=0.003 --memory 2GB" in commands
    assert "blase monitor --act" in _mentions()


@pytest.mark.parametrize("command", _mentions())
def test_readme_mention_names_a_command_and_its_options(command):
    try:
        _parse(shlex.split(command)[1:])
    except Exception as exc:  # typer ships its own click: match the class by name
        if type(exc).__name__ != "MissingParameter":
            raise  # a mention may leave the arguments out; unknown commands and options fail


@pytest.mark.parametrize("command", _commands())
def test_readme_command_parses(command, tmp_path):
    ctx = _parse(shlex.split(command)[1:])
    assert not hasattr(ctx.command, "resolve_command"), f"{command!r} names no command"
    pairs = ctx.params.get("set") or ctx.params.get("overrides") or []
    if pairs:
        import yaml

        from blase.config import apply_overrides, config_from_dict, parse_overrides
        from blase.scaffold import create_project

        project = create_project(tmp_path / "p")
        raw = yaml.safe_load(project.config_path.read_text())
        config_from_dict(apply_overrides(raw, parse_overrides(list(pairs))))


def test_set_reaches_a_list_item_as_the_readme_says(project, cli):
    """README: `--set transform.1.strategy=mean` changes the second transform operation."""
    assert "`transform.1.strategy=mean`" in README.read_text(encoding="utf-8")
    r = cli("run", "--set", "transform.1.strategy=mean", "--to", "extract", "--json", cwd=project.root)
    assert r.exit_code == 0, r.stdout + r.stderr
    r = cli("inspect", "latest", "--json", cwd=project.root)
    import json

    run = json.loads(r.stdout)
    assert run["params"]["run.overrides"] == {"transform.1.strategy": "mean"}
    ops = run["params"]["transform"]
    assert ops[1]["op"] == "impute" and ops[1]["strategy"] == "mean"
    assert ops[0].get("strategy") is None  # only item 1 changed


def test_set_names_a_list_index_that_does_not_exist(project, cli):
    r = cli("run", "--set", "transform.7.strategy=mean", cwd=project.root)
    assert r.exit_code == 1
    assert "transform.7: no item 7 in a list of 4" in r.stderr
    assert "Traceback" not in r.stderr
