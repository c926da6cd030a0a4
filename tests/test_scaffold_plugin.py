"""`blase create --template plugin`: each kind's skeleton installs (a wheel built by pip into a
folder on PYTHONPATH), is listed by `blase plugins` and passes `blase plugin check`; its own
tests run Blase's conformance suite."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

KINDS = {"zclip": "operation", "pipes": "source", "tvd": "drift_test", "summary": "step", "ridge": "model"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    from blase.scaffold import create_plugin

    src = tmp_path_factory.mktemp("plugins")
    made = [create_plugin(src / f"blase-{name}", kind=kind) for name, kind in KINDS.items()]
    assert [(m.name, m.kind, m.module) for m in made] == [(n, k, f"blase_{n}") for n, k in KINDS.items()]
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), *(str(m.folder) for m in made)],
                   check=True, capture_output=True, timeout=300)
    return src, target


def test_the_skeletons_are_listed_and_pass_the_conformance_suite(installed, blase_exe, tmp_path):
    src, target = installed
    env = {"PYTHONPATH": str(target)}
    listed = blase_exe("plugins", "--json", cwd=tmp_path, env=env)
    assert listed.exit_code == 0, listed.stderr
    found = {p["name"]: p for p in json.loads(listed.stdout)}
    for name, kind in KINDS.items():
        assert found[name]["kind"] == kind and found[name]["origin"].startswith(f"package blase-{name} 0.1.0")
    for name in KINDS:
        checked = blase_exe("plugin", "check", name, "--json", cwd=tmp_path, env=env, timeout=300)
        assert checked.exit_code == 0, checked.stdout + checked.stderr
        assert all(c["passed"] for c in json.loads(checked.stdout)[0]["checks"])
    # the skeleton's own test runs the same suite
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                         cwd=src / "blase-tvd", env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_bad_names_and_kinds_are_clear_errors(cli, tmp_path):
    result = cli("create", str(tmp_path / "blase-impute"), "--template", "plugin")
    assert "the plugin name 'impute' is a built-in operation's" in result.stderr
    result = cli("create", str(tmp_path / "blase-x"), "--template", "plugin", "--kind", "sorce")
    assert "unknown plugin kind 'sorce'" in result.stderr
    result = cli("create", str(tmp_path / "blase-ok"), "--template", "plugin", "--kind", "source")
    assert result.exit_code == 0 and "plugin check ok" in " ".join(result.stdout.split())
    assert (tmp_path / "blase-ok" / "blase_ok" / "_impl.py").is_file()
