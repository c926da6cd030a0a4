"""The distribution: a wheel installs into a fresh venv, with agent/tools/prompts only under blase."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    (found,) = out.glob("blase-*.whl")
    return found


def test_wheel_layout(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"blase", next(t for t in tops if t.endswith(".dist-info"))}, tops
    for required in (
        "blase/py.typed",
        "blase/agent/__init__.py",
        "blase/tools/__init__.py",
        "blase/prompts/system.md",
        "blase/templates/tabular/blase.yaml",
        "blase/templates/tabular/scripts/train.py.tmpl",
        "blase/datasets/penguins.csv",
    ):
        assert required in names, required
    # every package of the source tree ships (the package list in pyproject.toml is explicit)
    for init in (ROOT / "blase").rglob("__init__.py"):
        rel = init.relative_to(ROOT).as_posix()
        if "templates/tabular" not in rel:
            assert rel in names, f"{rel} is missing from the wheel: add it to pyproject packages"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "blase = blase.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv(wheel, tmp_path):
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    # The dependencies come from this test environment, added after the fresh site-packages,
    # so `blase` itself can only be the freshly installed wheel.
    fresh_site = Path(
        subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       capture_output=True, text=True, check=True).stdout.strip()
    )
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (fresh_site / "zz_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    code = (
        "import blase, blase.tools, blase.agent, blase.prompts, importlib.util as u\n"
        "print(blase.__file__)\n"
        "print(blase.prompts.read_prompt('system.md')[:13])\n"
        "print(u.find_spec('tools') is None or 'site-packages/tools' not in str(u.find_spec('tools').origin))\n"
    )
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    lines = out.splitlines()
    assert lines[0].startswith(str(fresh_site)), lines
    assert lines[1] == "You are the B"
    assert lines[2] == "True"
    assert not (fresh_site / "tools").exists() and not (fresh_site / "agent").exists()
    blase_cmd = env_dir / "bin" / "blase"
    made = subprocess.run([str(blase_cmd), "create", "p"], cwd=tmp_path, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    checked = subprocess.run([str(blase_cmd), "check"], cwd=tmp_path / "p", capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
