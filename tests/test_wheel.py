"""The distribution: `python -m build` makes an sdist and a wheel (built from the sdist) that pass
`twine check`; the wheel, installed into a fresh virtual environment, runs `blase demo`, the web
app's and the server's `--help`, and both templates' smoke runs, with every file of package data.

To stay fast the fresh environment borrows this environment's dependencies through a `.pth` line
(a plain path: this environment's editable install of Blase is *not* activated there) and gets the
wheel with `pip install --no-deps`; the test checks that `blase` imports from the wheel.
`.ci/run` runs this file in its own step (the main test command skips it there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("BLASE_SKIP_WHEEL_TEST") == "1",
                       reason="CI runs tests/test_wheel.py in its own step"),
]
#: Package data a user's install needs (the web app's page, templates, the demo data, prompts).
PACKAGE_DATA = [
    "blase/py.typed",
    "blase/ui/static/index.html",
    "blase/ui/static/app.js",
    "blase/ui/static/style.css",
    "blase/templates/tabular/blase.yaml",
    "blase/templates/tabular/scripts/train.py.tmpl",
    "blase/templates/plugin/pyproject.toml.tmpl",
    "blase/datasets/penguins.csv",
    "blase/prompts/system.md",
]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # no isolation: setuptools and wheel come from the dev extra (no download); the wheel is
    # built from the unpacked sdist, so a file missing from the sdist fails here
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], cwd=out)
    return out


def test_sdist_and_wheel_pass_twine_check_and_hold_the_package_data(dist):
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    _run([sys.executable, "-m", "twine", "check", "--strict", str(wheels[0]), str(sdists[0])], cwd=dist)
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    assert [n for n in PACKAGE_DATA if n not in names] == []
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"blase", wheels[0].name.split("-py3")[0] + ".dist-info"}  # no generic top level
    meta = zipfile.ZipFile(wheels[0]).read(f"{wheels[0].name.split('-py3')[0]}.dist-info/METADATA").decode()
    assert "License-Expression: Apache-2.0" in meta and "Requires-Python: >=3.10" in meta
    assert "Project-URL: Changelog" in meta and "Programming Language :: Python :: 3.12" in meta


def test_the_installed_wheel_runs_the_demo_and_the_templates(dist, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp_path).strip())
    (site / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("*.whl"))
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)], cwd=tmp_path)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "200"}
    blase = str(venv / "bin" / "blase")

    where = _run([str(python), "-c", "import blase, blase.agent, blase.tools; print(blase.__file__)"],
                 cwd=tmp_path, env=env)
    assert where.strip().startswith(str(site)), f"blase imported from {where}, not from the wheel"
    assert _run([blase, "--version"], cwd=tmp_path, env=env).strip() == f"blase {wheel.name.split('-')[1]}"
    assert "--read-only" in _run([blase, "ui", "--help"], cwd=tmp_path, env=env)
    assert "--max-body" in _run([blase, "serve", "--help"], cwd=tmp_path, env=env)

    # the demo: bundled data, the whole pipeline, a deployed model
    _run([blase, "demo", "demo"], cwd=tmp_path, env=env)
    models = json.loads(_run([blase, "models", "--json"], cwd=tmp_path / "demo", env=env))
    assert models[0]["current"] == "v1"
    # the web app's page is in the wheel and served
    page = _run([str(python), "-c", "from importlib.resources import files; "
                 "print(len((files('blase.ui') / 'static' / 'index.html').read_text()))"], cwd=tmp_path, env=env)
    assert int(page) > 100

    # the tabular template's own script, then the runs it logged
    _run([blase, "create", "proj"], cwd=tmp_path, env=env)
    _run([str(python), "scripts/train.py", "--epochs", "3"], cwd=tmp_path / "proj", env=env)
    runs = json.loads(_run([blase, "runs", "--json"], cwd=tmp_path / "proj", env=env))
    assert runs[0]["status"] == "finished"

    # the plugin template: made, installed (no deps) and passing its conformance suite
    _run([blase, "create", "blase-zclip", "--template", "plugin", "--kind", "operation"], cwd=tmp_path, env=env)
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-build-isolation", "--no-index", str(tmp_path / "blase-zclip")], cwd=tmp_path)
    checked = json.loads(_run([blase, "plugin", "check", "zclip", "--json"], cwd=tmp_path, env=env))
    assert all(c["passed"] for c in checked[0]["checks"])
