"""Every command that a hint or a message prints is a real command line.

The hint strings (and every other message) of blase/, tools/ and agent/ are read from the source
with ``ast``; each backticked ``blase ...`` command in them is parsed by the real Typer app (a
Click context, nothing runs). A hint naming a command, an option or a ``--set`` key that does not
exist fails here, with the file and line of the string.
"""

from __future__ import annotations

import ast
import re
import shlex
import typing
from pathlib import Path

import pytest
import typer

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as click
except ImportError:  # pragma: no cover - older typer on top of click
    import click

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"(?<!`)`(blase [^`]+)`(?!`)")
PLACEHOLDER = "x1"  # stands for an f-string's {value}


def _text(node: ast.AST) -> str | None:
    """The text of a string literal, an f-string (values as PLACEHOLDER) or a sum of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(PLACEHOLDER if isinstance(v, ast.FormattedValue) else (_text(v) or "") for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return None if left is None or right is None else left + right
    return None


def hint_commands() -> list[tuple[str, str]]:
    """(file:line, command) for every backticked `blase ...` in the code's strings."""
    found: dict[tuple[str, str], None] = {}
    for package in ("blase", "tools", "agent"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                text = _text(node)
                for match in COMMAND.finditer(text or ""):
                    found[(f"{path.relative_to(ROOT)}:{node.lineno}", match.group(1))] = None
    return list(found)


def _check_set_key(key: str) -> None:
    """A --set key must name a field of blase.yaml's model: list items by index, dict keys
    as the user's; a key an f-string fills in (PLACEHOLDER) is not known here."""
    from pydantic import BaseModel

    from blase.config import ProjectConfig

    if PLACEHOLDER in key:
        return
    model: typing.Any = ProjectConfig
    parts = key.split(".")
    while parts:
        part = parts.pop(0)
        if typing.get_origin(model) is list or model is list:
            if not part.isdigit():
                raise click.UsageError(f"--set {key}: {part!r} is not a list index (0, 1, ...)")
            model = (typing.get_args(model) or (typing.Any,))[0]
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return  # inside a mapping or a plain value: the user's keys
        if part not in model.model_fields:
            raise click.UsageError(f"--set {key}: {part!r} is not a key of {model.__name__}")
        model = model.model_fields[part].annotation
        options = (model,) if typing.get_origin(model) is list else (typing.get_args(model) or (model,))
        for arg in options:  # X | None: the model or list in it
            if typing.get_origin(arg) is list or (isinstance(arg, type) and issubclass(arg, BaseModel)):
                model = arg
                break


def parse(command: str) -> None:
    """Parse ``blase ...`` with the real app, down to the subcommand; raise click's error.

    An f-string value that stands alone as a word may be several options (``blase run
    {pairs}``): when the command does not parse with it as one extra argument, it is parsed
    again without it.
    """
    words = shlex.split(command)[1:]
    try:
        _parse(words)
    except click.UsageError as exc:
        if PLACEHOLDER not in words or "unexpected extra argument" not in str(exc):
            raise
        _parse([w for w in words if w != PLACEHOLDER])


def _parse(words: list[str]) -> None:
    from blase.cli._app import app
    from blase.cli._common import root_options_first

    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("blase", root_options_first(words))
    while hasattr(cmd, "resolve_command"):  # a group: find the subcommand and parse its part
        rest = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
        if not rest:
            return
        name, cmd, rest = cmd.resolve_command(ctx, rest)
        ctx = cmd.make_context(name, rest, parent=ctx)
    for value in ctx.params.get("overrides") or []:
        _check_set_key(value.partition("=")[0])


COMMANDS = hint_commands()


def test_the_code_prints_commands():
    assert len(COMMANDS) > 40  # the collector finds them (a broken regex would pass everything)
    assert any(c.startswith("blase run --resume") for _, c in COMMANDS)


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w} {c}" for w, c in COMMANDS])
def test_every_hinted_command_parses(where, command):
    try:
        parse(command)
    except click.MissingParameter:
        pass  # a mention of a command without its arguments (`blase predict`): still a real command
    except click.BadOptionUsage as exc:
        if "requires an argument" not in exc.message:  # a mention of an option: `blase run --autonomy`
            pytest.fail(f"{where}: `{command}` does not parse: {exc.format_message()}")
    except click.UsageError as exc:
        pytest.fail(f"{where}: `{command}` does not parse: {exc.format_message()}")


@pytest.mark.parametrize("bad", [
    "blase run prepare",
    "blase runs --nope",
    "blase run --set prepare.drop_null_labels=true",
    "blase rollbak m",
    "blase run --set transform.first.strategy=mean",
    "blase run --set transform.0.strategee=mean",
])
def test_the_parser_check_catches_a_wrong_command(bad):
    with pytest.raises(click.UsageError):
        parse(bad)


def test_the_null_label_hint_is_a_command_that_works(cli, project):
    """The hint of a null label names a blase.yaml key and a command, and following it works."""
    data = project.root / "data" / "penguins.csv"
    lines = data.read_text().splitlines()
    for i in range(1, 11):  # ten penguins whose species nobody wrote down
        lines[i] = "," + lines[i].partition(",")[2]
    data.write_text("\n".join(lines) + "\n")
    r = cli("run", "--set", "train.epochs=2", cwd=project.root)
    assert r.exit_code == 1
    assert "label column 'species' has 10 null values" in r.stderr
    assert "drop_null_label=True" not in r.stderr  # a Python-only argument
    hinted = [c for c in COMMAND.findall(r.stderr.replace("\n", " ")) if "drop_null_label" in c]
    assert hinted == ["blase run --set prepare.drop_null_label=true"]
    r = cli(*shlex.split(hinted[0])[1:], "--set", "train.epochs=2", cwd=project.root)
    assert r.exit_code == 0, r.stderr
    from blase.track import load_run

    run = load_run("latest", [project.root])
    prepare = next(e["data"] for e in run.event_list if e.get("event") == "step" and e["data"]["step"] == "prepare")
    assert prepare["rows_out"] == 344 - 10
