"""The import contracts of pyproject.toml ([tool.importlinter], DESIGN.md "Layers") hold, and
the checker is able to fail: it is run on a tiny package with a cycle and a layer breach."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location("_blase_lint_imports", ROOT / ".ci" / "lint_imports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_blase_keeps_its_import_contracts(capsys: pytest.CaptureFixture[str]) -> None:
    kept = _checker().lint()
    report = capsys.readouterr().out
    assert kept, report
    for name in ("blase layers", "_private modules", "no import cycles"):
        assert name in report  # every contract ran


def _package(root: Path, name: str, files: dict[str, str]) -> None:
    (root / name).mkdir()
    for module, text in {"__init__": "", **files}.items():
        (root / name / f"{module}.py").write_text(text)


def test_the_checker_fails_on_a_cycle_and_a_layer_breach(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"cyclic_{uuid.uuid4().hex[:8]}"
    _package(tmp_path, name, {
        "high": f"from {name} import low\n",
        # a cycle, hidden in a function as in the code this contract replaced
        "low": f"def later():\n    from {name} import high\n    return high\n",
        "_hidden": "",
        "other": f"from {name}.sub import _secret\n",
    })
    _package(tmp_path / name, "sub", {"_secret": ""})
    config = tmp_path / "pyproject.toml"
    config.write_text(f"""
[tool.importlinter]
root_packages = ["{name}"]

[[tool.importlinter.contracts]]
name = "layers"
type = "layers"
layers = ["{name}.high", "{name}.low"]

[[tool.importlinter.contracts]]
name = "acyclic"
type = "acyclic_siblings"
ancestors = ["{name}"]

[[tool.importlinter.contracts]]
name = "private"
type = "private_modules"
""")
    kept = _checker().lint(config, sys_path=[str(tmp_path)])
    report = capsys.readouterr().out
    assert not kept
    assert f"{name}.low -> {name}.high" in report
    assert "Contracts: 0 kept, 3 broken." in report
