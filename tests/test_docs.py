"""The documentation site builds with --strict, and its command-line page lists every command."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="needs the docs extra: pip install -e '.[docs]'")
def test_site_builds_strict_with_every_command_and_the_api(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    for command in sorted((ROOT / "tests" / "golden" / "cli").glob("*.txt")):
        assert f"<code>{command.stem.replace('_', ' ')}</code>" in cli
    api = (tmp_path / "site" / "api" / "deploy" / "index.html").read_text()
    assert 'id="blase.deploy.ModelService"' in api and 'id="blase.deploy.predict"' in api
    assert not (tmp_path / "site" / "_hooks.py").exists()
    site = tmp_path / "site"
    for page in ("getting-started", "steps/extract", "steps/train", "steps/monitor", "templates/images",
                 "assistant", "ui", "plugins", "scale-out", "reproducibility", "benchmarks", "troubleshooting"):
        assert (site / page / "index.html").is_file(), page
    train = (site / "steps" / "train" / "index.html").read_text()
    assert "<code>train.early_stopping</code>" in train  # the keys table from TrainConfig
    trouble = (site / "troubleshooting" / "index.html").read_text()
    assert "did you mean" in trouble and trouble.count("<li>") > 100  # the hints, from the code


def test_every_error_with_a_hint_is_on_the_troubleshooting_page():
    """docs/_hooks.py reads the raises from the source: a new error class with a hint shows up."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "_hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    found = hooks.error_hints()
    assert {"DeployError", "ExtractError", "ServeError"} <= set(found)
    messages = [m for m, _, _ in found["DeployError"]]
    assert any("already exists; blase predict does not overwrite it" in m for m in messages)
