"""Plugins: a whole step and hooks, from a project file and from an installed package.

The installed package is real: a wheel built by pip from a tiny source tree and installed
into a folder on ``PYTHONPATH`` (its entry points found by importlib.metadata, as for any
installed distribution), then used by the real ``blase`` command in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from blase.pipeline import STEPS, Pipeline
from blase.plugins import Plugin, PluginError, plugin_set
from blase.track import load_run

REPORT = '''
import json
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from blase.plugins import Plugin
from blase.steps import Step, StepOutput, StepResult


@dataclass(kw_only=True)
class QualityReport(StepOutput):
    file: str = "report.json"


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: float = 0.5


class ReportStep(Step):
    name = "report"
    needs = ("evaluate",)
    after = "evaluate"
    output_type = QualityReport
    config_model = Options

    def run(self, inputs, out_dir, ctx):
        accuracy = inputs["evaluate"].metrics["accuracy"]
        RAISE
        (out_dir / "report.json").write_text(json.dumps(
            {"accuracy": accuracy, "passed": accuracy >= self.options.threshold}))
        return StepResult(step=self.name, output=QualityReport())


plugin = Plugin(name="report", kind="step", target=":ReportStep", version="1.0",
                description="a pass/fail report after evaluate")
'''

HOOKS = '''
import json
from pathlib import Path

from blase.plugins import Hooks, Plugin


class Recorder(Hooks):
    def on_step_end(self, *, step, run_id, state, result, **future_kwargs):
        with open(Path(__file__).parent.parent / "events.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "state": state}) + "\\n")
        if step == "train":
            raise RuntimeError("observer bug")

    def on_run_end(self, *, run_id, status, **future_kwargs):
        with open(Path(__file__).parent.parent / "events.jsonl", "a") as f:
            f.write(json.dumps({"run": status}) + "\\n")


plugin = Plugin(name="recorder", kind="hooks", target=":Recorder")
'''


def _use(project, *entries, body: str = REPORT, name: str = "report.py") -> None:
    (project.root / "scripts" / name).write_text(body.replace("RAISE", "pass"))
    config = yaml.safe_load(project.config_path.read_text())
    config["plugins"] = list(entries)
    config.setdefault("train", {})["epochs"] = 3
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_a_project_step_plugin_runs_after_evaluate_is_cached_and_rerun_on_new_options(project):
    _use(project, {"path": "scripts/report.py", "options": {"threshold": 0.1}})
    first = Pipeline(project).run()
    assert list(first.steps) == [*STEPS[:5], "report", "deploy"]
    report = first.steps["report"].output
    data = json.loads(report.path(report.file).read_text())
    assert data["passed"] is True and data["accuracy"] == first.steps["evaluate"].output.metrics["accuracy"]
    second = Pipeline(project).run()
    assert "report" in second.cached  # same inputs and options: from the step store
    _use(project, {"path": "scripts/report.py", "options": {"threshold": 1.01}})
    third = Pipeline(project).run()
    assert third.reasons["report"] == ["options.threshold 0.1 -> 1.01"]
    assert "evaluate" in third.cached
    out = third.steps["report"].output
    assert json.loads(out.path(out.file).read_text())["passed"] is False
    # the record holds the typed output, so --from can continue after it
    run = load_run(third.run_id, [project.root])
    recorded = next(e["data"] for e in run.event_list if e.get("event") == "step" and e["data"]["step"] == "report")
    assert recorded["output"]["type"] == "QualityReport" and recorded["output"]["file"] == "report.json"
    resumed = Pipeline(project).run(from_step="deploy")
    assert set(resumed.reused) == {*STEPS[:5], "report"}


def test_plugin_failures_are_clear_errors_naming_the_plugin(project, cli):
    _use(project, "scripts/report.py")
    (project.root / "scripts" / "report.py").write_text(REPORT.replace("RAISE", "raise ValueError('no metric')"))
    result = cli("run", cwd=project.root)
    assert result.exit_code != 0 and "Traceback" not in result.stderr + result.stdout
    assert "step report of plugin report (scripts/report.py) failed: ValueError: no metric" in result.stderr

    _use(project, {"path": "scripts/report.py", "options": {"treshold": 0.3}})
    result = cli("run", cwd=project.root)
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert "options of step 'report'" in result.stderr and "treshold" in result.stderr

    _use(project, "scripts/report.py", body=REPORT.replace('name = "report"', 'name = "train"')
         .replace('name="report"', 'name="train"'))
    result = cli("run", cwd=project.root)
    assert "takes the name of Blase's built-in step 'train'" in result.stderr

    _use(project, "scripts/report.py", "scripts/report2.py")
    (project.root / "scripts" / "report2.py").write_text(REPORT.replace("RAISE", "pass").replace("QualityReport", "Other"))
    result = cli("run", cwd=project.root)
    assert "two step plugins are named 'report': scripts/report.py and scripts/report2.py" in result.stderr

    _use(project, "reprot")
    result = cli("run", cwd=project.root)
    assert "lists the plugin 'reprot', which is not installed" in result.stderr


def test_hooks_observe_every_step_and_a_failing_hook_does_not_break_the_run(project):
    _use(project, "scripts/recorder.py", body=HOOKS, name="recorder.py")
    result = Pipeline(project).run()
    assert result.status == "finished"
    events = [json.loads(line) for line in (project.root / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if "step" in e] == list(STEPS)
    assert events[-1] == {"run": "finished"}
    run = load_run(result.run_id, [project.root])
    warnings = [e["data"]["message"] for e in run.event_list if e.get("event") == "warning"]
    assert any("hook on_step_end of plugin recorder raised RuntimeError: observer bug" in w for w in warnings)


def test_a_plugin_outside_the_project_is_refused(project, tmp_path):
    outside = tmp_path / "evil.py"
    outside.write_text(REPORT.replace("RAISE", "pass"))
    with pytest.raises(PluginError, match="outside the project"):
        plugin_set(project.root, [{"path": "../evil.py"}])


def test_a_bad_manifest_is_refused_at_once():
    with pytest.raises(PluginError, match="kind 'modle'"):
        Plugin(name="x", kind="modle", target="m:X")  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="is not a name"):
        Plugin(name="My Plugin", kind="step", target="m:X")


class _NotAnOperation:
    op_name = "clip3"


def _plugin_module(**attrs):
    import types

    module = types.ModuleType("a_plugin_file")
    module.__dict__.update(attrs)
    return module


def test_a_plugin_class_of_the_wrong_kind_or_name_is_refused_naming_the_fix():
    """Every kind loads its class through Plugin.load_class: the wrong base class, or a class
    whose name attribute is not the manifest's, is a PluginError that says what to set."""
    from blase.transform import Clip, Operation

    wrong_base = Plugin(name="clip3", kind="operation", target=":_NotAnOperation",
                        module=_plugin_module(_NotAnOperation=_NotAnOperation))
    with pytest.raises(PluginError, match=r"is not a blase\.transform\.Operation subclass") as info:
        wrong_base.load_class(Operation, name_attr="op_name")
    assert "subclasses blase.transform.Operation" in info.value.hint

    class Clip3(Clip):
        op_name = "clip"  # the manifest says clip3

    misnamed = Plugin(name="clip3", kind="operation", target=":Clip3", module=_plugin_module(Clip3=Clip3))
    with pytest.raises(PluginError, match="its class has op_name 'clip'") as info:
        misnamed.load_class(Operation, name_attr="op_name")
    assert "set `op_name = 'clip3'` on Clip3" in info.value.hint
    Clip3.op_name = "clip3"
    assert misnamed.load_class(Operation, name_attr="op_name") is Clip3


# -- an installed package -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``blase-report``, built into a wheel by pip and installed into a folder."""
    src = tmp_path_factory.mktemp("src")
    pkg = src / "blase_report"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from blase.plugins import Plugin

        plugin = Plugin(name="report", kind="step", target="blase_report._step:ReportStep",
                        version="1.2", description="a pass/fail report", requires=("json",))
    '''))
    (pkg / "_step.py").write_text(REPORT.replace("RAISE", "pass").replace("plugin = Plugin(", "_unused = dict("))
    return install_plugin_package(src, "blase-report", "1.2", "blase_report", "report = \"blase_report:plugin\"",
                                  tmp_path_factory.mktemp("site"))


def install_plugin_package(src: Path, dist: str, version: str, package: str, entry_point: str,
                           target: Path) -> Path:
    """Write ``src/pyproject.toml`` (``package`` publishing ``entry_point`` in the
    ``blase.plugins`` group), build it with pip and install it into ``target``; returns
    ``target``, for ``PYTHONPATH``."""
    (src / "pyproject.toml").write_text(textwrap.dedent(f'''
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "{version}"

        [project.entry-points."blase.plugins"]
        {entry_point}

        [tool.setuptools]
        packages = ["{package}"]
    '''))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True, timeout=300)
    return target


def test_an_installed_step_plugin_is_listed_and_used_by_name(installed, project, blase_exe):
    env = {"PYTHONPATH": str(installed)}
    listed = blase_exe("plugins", "--json", cwd=project.root, env=env)
    assert listed.exit_code == 0, listed.stderr
    report = next(p for p in json.loads(listed.stdout) if p["name"] == "report")
    assert report["kind"] == "step" and report["version"] == "1.2"
    assert report["origin"] == "package blase-report 1.2 (entry point report)"
    config = yaml.safe_load(project.config_path.read_text())
    config["plugins"] = ["report"]
    config["train"] = {**config.get("train", {}), "epochs": 3}
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    ran = blase_exe("run", cwd=project.root, env=env, timeout=300)
    assert ran.exit_code == 0, ran.stderr
    assert "ok report" in ran.stdout
    from blase.track import list_runs

    run = load_run(list_runs([project.root])[0].id, [project.root])
    steps = {e["data"]["step"]: e["data"] for e in run.event_list if e.get("event") == "step"}
    assert list(steps) == [*STEPS[:5], "report", "deploy"]
    assert steps["report"]["output"]["type"] == "QualityReport"
    # without the package, the same blase.yaml says what is missing
    gone = blase_exe("run", cwd=project.root)
    assert gone.exit_code != 0 and "lists the plugin 'report', which is not installed" in gone.stderr


def test_listing_plugins_imports_no_implementation(installed):
    code = ("import sys, blase.plugins as p; found = p.installed_plugins(); "
            "print(sorted(x.name for x in found), [m for m in ('blase_report._step', 'blase.contrib._excel', "
            "'blase.contrib._mmd', 'blase.contrib.xgboost', 'blase.contrib.lightgbm', 'blase.contrib.keras', "
            "'python_calamine', 'xgboost', 'lightgbm', 'keras', 'blase.extract', 'blase.monitor', "
            "'blase.contrib._images', 'blase.contrib._audio', 'PIL', 'soundfile') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    # Blase's own plugins (blase.contrib) are listed beside the package's, all from their manifests
    assert out.strip() == ("['audio', 'excel', 'explode', 'flatten', 'image_cnn', 'image_errors', 'images', 'keras', "
                           "'lightgbm', 'mmd', 'nested_json', 'ppo', 'report', 'rl_evaluate', 'xgboost'] []")


def test_plugins_of_a_project_do_not_load_when_blase_yaml_does_not_use_them(installed, project):
    code = ("import sys; from blase.pipeline import Pipeline; "
            f"p = Pipeline({str(project.root)!r}); print(p.steps, 'blase_report' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")
    assert "report" not in out.split(")")[0]


# -- the conformance suite ------------------------------------------------------------------------


def _checks(project, body: str) -> dict[str, str]:
    from blase.plugins import project_plugins
    from blase.testing import check_plugin

    (project.root / "scripts" / "candidate.py").write_text(body.replace("QualityReport", "CandidateReport"))
    plugin = project_plugins(project.root, ["scripts/candidate.py"])[0]
    return {r.name: r.detail for r in check_plugin(plugin) if not r.passed}


def test_the_checker_passes_a_good_step_plugin_through_the_cli(project, cli):
    (project.root / "scripts" / "report.py").write_text(REPORT.replace("RAISE", "pass"))
    result = cli("plugin", "check", "scripts/report.py", "--json", cwd=project.root)
    assert result.exit_code == 0, result.stdout + result.stderr
    checks = {c["name"]: c["passed"] for c in json.loads(result.stdout)[0]["checks"]}
    assert checks == dict.fromkeys(["loads", "contract", "options_round_trip", "bad_options_refused",
                                    "runs_on_real_inputs", "output_round_trip", "deterministic", "no_pickle"], True)


def test_the_checker_fails_a_plugin_that_pickles(project):
    body = REPORT.replace("RAISE", "import pickle; (out_dir / 'state.bin').write_bytes(pickle.dumps({'a': 1}))")
    assert set(_checks(project, body)) == {"no_pickle"}


def test_the_checker_fails_a_plugin_that_is_not_deterministic(project):
    body = REPORT.replace("RAISE", "import time; (out_dir / 'stamp.txt').write_text(str(time.time_ns()))")
    failed = _checks(project, body)
    assert set(failed) == {"deterministic"} and "stamp.txt" in failed["deterministic"]


def test_the_checker_fails_options_and_outputs_that_do_not_round_trip(project):
    body = (REPORT.replace("RAISE", "pass")
            .replace('model_config = ConfigDict(extra="forbid")', 'model_config = ConfigDict(extra="allow")')
            .replace('file: str = "report.json"', 'file: object = None')
            .replace("output=QualityReport()", "output=QualityReport(file=ReportStep)"))
    failed = _checks(project, body)
    assert "bad_options_refused" in failed and "output_round_trip" in failed
