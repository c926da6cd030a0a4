"""Shared fixtures: a real project on disk, and the real CLI (in process or as a subprocess)."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _seed_and_isolate(monkeypatch, tmp_path_factory):
    """Deterministic randomness, no project chosen by the environment, and a user folder
    (registered projects, saved views of `blase ui`) of the test session's own."""
    random.seed(0)
    try:
        import numpy as np

        np.random.seed(0)
    except ImportError:  # pragma: no cover
        pass
    monkeypatch.delenv("BLASE_PROJECT", raising=False)
    monkeypatch.delenv("BLASE_DEBUG", raising=False)
    monkeypatch.setenv("BLASE_HOME", str(tmp_path_factory.getbasetemp() / "blase-home"))


@pytest.fixture
def project(tmp_path):
    """A fresh project made by `blase create` (with the bundled example data), training the
    template's MLP alone: tests of other things need one quick, deterministic torch model, not
    ``train.model: auto``'s three candidates (tests/test_auto_model.py runs the template as is)."""
    from blase.scaffold import create_project

    return pin_mlp(create_project(tmp_path / "proj"))


def pin_mlp(project):
    """``project`` with ``train.model: mlp`` instead of the template's ``auto``."""
    text = project.config_path.read_text()
    pinned = re.sub(r"(?m)^  model: auto\b", "  model: mlp ", text, count=1)
    assert pinned != text, "the template no longer says `model: auto`: update pin_mlp"
    project.config_path.write_text(pinned)
    return project


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `blase ARGS` in this process, from `cwd`; returns exit code, stdout, stderr."""
    from blase.cli import main

    def run(*args: str, cwd: Path | None = None) -> Result:
        saved = dict(os.environ)
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        out = capsys.readouterr()
        return Result(code, out.out, out.err)

    return run


@pytest.fixture
def blase_exe():
    """Run the installed `blase` console script as a subprocess (what a user types)."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120) -> Result:
        exe = Path(sys.executable).with_name("blase")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "blase"]
        full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
        p = subprocess.run([*cmd, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
        return Result(p.returncode, p.stdout, p.stderr)

    return run


def check_golden(path: Path, text: str, what: str) -> None:
    """Compare ``text`` with the golden file ``path``; ``BLASE_UPDATE_GOLDEN=1`` rewrites it.

    A missing golden file fails (it is never written on the fly, which would make the test
    pass whatever the code does).
    """
    regenerate = f"regenerate it with BLASE_UPDATE_GOLDEN=1 pytest {_test_file()} and commit it"
    if os.environ.get("BLASE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"golden file {path} is missing: {regenerate}", pytrace=False)
    assert text == path.read_text(), f"{what} changed: if intended, {regenerate}"


def _test_file() -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "tests")
    return current.split("::", 1)[0]


def update_project(root: Path, frame: Any, train: dict, update: dict) -> Any:
    """A project named after ``root`` whose source is ``frame``'s first 330 rows (data/old.csv,
    label ``target``), the rest in data/new.csv for `blase update`; ``train`` and ``update``
    are those sections of blase.yaml."""
    import yaml

    from blase.scaffold import create_project

    project = create_project(root, example=False)
    frame.iloc[:330].to_csv(project.root / "data" / "old.csv", index=False)
    frame.iloc[330:].to_csv(project.root / "data" / "new.csv", index=False)
    project.config_path.write_text(yaml.safe_dump({
        "project": root.name, "seed": 1, "data": {"source": "data/old.csv", "label": "target"},
        "transform": [{"op": "impute", "strategy": "median"}],
        "train": train, "deploy": {"onnx": False}, "update": update,
    }, sort_keys=False))
    return project
