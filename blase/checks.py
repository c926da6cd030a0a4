"""``blase check``: validate a project without running anything.

Beyond the schema of ``blase.yaml`` (see :mod:`blase.config`), it checks that the files the
configuration names exist: user functions (``call:``, ``train.model``) are errors when their
file or function is missing; a missing ``data.source`` is a warning, since data often arrives
after the project is made.
"""

from __future__ import annotations

import ast
import glob
from dataclasses import dataclass, field

import yaml

from blase.config import ProjectConfig, load_config
from blase.config._load import _key_lines
from blase.errors import ConfigError, ConfigProblem
from blase.project import Project

__all__ = ["CheckResult", "check_project"]


@dataclass
class CheckResult:
    config: ProjectConfig
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"valid": True, "warnings": self.warnings, "config": self.config.model_dump(mode="json")}


def check_project(project: Project) -> CheckResult:
    """Validate ``project``; raise :class:`ConfigError` listing every problem found."""
    config = load_config(project.config_path)
    text = project.config_path.read_text(encoding="utf-8")
    lines = _key_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    file = project.config_path.name
    problems: list[ConfigProblem] = []
    warnings: list[str] = []

    def line(*path: str | int) -> str:
        n = lines.get(tuple(path))
        return f" (line {n})" if n else ""

    for i, step in enumerate(config.transform):
        if step.call:
            problem = _check_callable(project, step.call)
            if problem:
                key = f"transform[{i}].call"
                problems.append(ConfigProblem(file, lines.get(("transform", i, "call")), key,
                                              f"{key}{line('transform', i, 'call')}: {problem}"))
    if ":" in config.train.model:
        problem = _check_callable(project, config.train.model)
        if problem:
            problems.append(ConfigProblem(file, lines.get(("train", "model")), "train.model",
                                          f"train.model{line('train', 'model')}: {problem}"))
    if problems:
        raise ConfigError(problems, hint="fix the paths above, then run `blase check` again")

    source = config.data.source
    if source is None:
        warnings.append("data.source is not set: `blase run` needs it")
    else:
        path = source
        head, sep, _ = source.rpartition(":")
        if sep and head.endswith((".sqlite", ".sqlite3", ".db", ".duckdb")):
            path = head  # 'file.sqlite:table'
        full = project.root / path
        if not glob.glob(str(full)) and not full.exists():
            warnings.append(f"data.source{line('data', 'source')}: {source} does not exist yet")
    return CheckResult(config, warnings)


def _check_callable(project: Project, ref: str) -> str | None:
    """Check 'path/to/file.py:function' without importing the file."""
    file, _, func = ref.rpartition(":")
    path = project.root / file
    if not path.is_file():
        return f"{file} does not exist in the project"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        return f"{file} has a syntax error at line {exc.lineno}: {exc.msg}"
    names = {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    names |= {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    if func not in names:
        defined = ", ".join(sorted(names)) or "nothing"
        return f"{file} defines no function {func!r} (it defines: {defined})"
    return None
