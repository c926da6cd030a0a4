"""Every `blase ...` command README.md and the docs pages (docs/**/*.md) show must parse, and
its `--set` pairs must apply.

A documented command that the CLI rejects (an unknown option, a `--set` key that cannot be
applied to the config `blase create` writes) fails here instead of on a user's first try.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The documentation users read: the front page and every page of the docs site.
DOCUMENTS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
#: Words that stand for something the reader fills in (table syntax, not a command to type).
_PLACEHOLDER = re.compile(r"\[|\.\.\.|\||\b[A-Z]{2,}(_[A-Z]+)*\b")


def _text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in DOCUMENTS)


def _commands() -> list[str]:
    """Whole commands: the lines of the code blocks."""
    text = _text()
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
    text = _text()
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


def test_the_front_page_shows_every_command_with_an_example():
    """README's command overview: one example line per command the CLI has (groups by their
    subcommands), each of which parses above."""
    from tests.test_public_api import cli_texts

    text = README.read_text(encoding="utf-8")
    overview = text[text.index("## Commands"):]
    shown = {line.split("#")[0].strip() for line in overview.split("```")[1].splitlines()}
    leaves = [c for c in cli_texts() if c != "blase" and not any(o.startswith(c + " ") for o in cli_texts())]
    missing = [c for c in leaves if not any(line == c or line.startswith(c + " ") for line in shown)]
    assert not missing, f"README's command overview has no example of {missing}"


@pytest.mark.parametrize("command", _mentions())
def test_readme_mention_names_a_command_and_its_options(command):
    try:
        _parse(shlex.split(command)[1:])
    except Exception as exc:  # typer ships its own click: match the class by name
        if type(exc).__name__ != "MissingParameter":
            raise  # a mention may leave the arguments out; unknown commands and options fail


@pytest.mark.parametrize("command", _commands())
def test_readme_command_parses(command, tmp_path):
    args = shlex.split(command)[1:]
    if args[:1] in (["--install-completion"], ["--show-completion"]):  # parsing would install it
        from blase.cli._app import app

        names = {n for p in typer.main.get_command(app).params for n in p.opts}
        assert args[0] in names
        return
    ctx = _parse(args)
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
    """The docs: `--set transform.1.strategy=mean` changes the second transform operation."""
    assert "blase run --set transform.1.strategy=mean" in _commands()
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
