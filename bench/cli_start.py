"""``blase --help`` wall time with and without plugins installed, in one run.

Usage::

    python bench/cli_start.py --repeat 21

Each mode runs the installed ``blase`` command (``blase --help``) in ``--repeat`` fresh
processes, the modes interleaved round by round so a busy machine slows them alike; the
table shows the median, the fastest and the slowest run, and each mode's ratio to the mode
with the ``blase.plugins`` entry points hidden:

* ``hidden``: ``importlib.metadata.entry_points`` answers nothing for the ``blase.plugins``
  group (a ``sitecustomize`` on ``PYTHONPATH``), as if no plugin were installed, the reference
  plugins Blase ships included;
* ``installed``: the plugins this environment has (whatever entry points are installed);
* ``installed + 1 package``: the same plus a tiny plugin package built by pip into
  ``.bench/cli-start/site`` and put on ``PYTHONPATH``, as a user's ``pip install`` would.

Every mode runs with the same ``sitecustomize`` (it imports ``importlib.metadata`` in all of
them, hiding only in one), so the ratio measures the plugins, not the harness. ``python -c
pass`` is timed too, for the interpreter's own start.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SITECUSTOMIZE = '''
import importlib.metadata as _md
import os as _os

if _os.environ.get("BLASE_BENCH_HIDE_PLUGINS") == "1":
    _entry_points = _md.entry_points

    def entry_points(**params):
        if params.get("group") == "blase.plugins":
            return _md.EntryPoints(())
        found = _entry_points(**params)
        if not params and hasattr(found, "select"):
            return _md.EntryPoints(ep for ep in found if ep.group != "blase.plugins")
        return found

    _md.entry_points = entry_points
'''

PLUGIN_INIT = '''
from blase.plugins import Plugin

plugin = Plugin(name="bench_probe", kind="step", target="blase_bench_probe._step:ProbeStep",
                version="0.1", description="a step that does nothing (bench/cli_start.py)")
'''

PLUGIN_STEP = '''
from dataclasses import dataclass

from blase.steps import Step, StepOutput, StepResult


@dataclass(kw_only=True)
class ProbeOutput(StepOutput):
    pass


class ProbeStep(Step):
    name = "bench_probe"
    after = "evaluate"
    output_type = ProbeOutput

    def run(self, inputs, out_dir, ctx):
        return StepResult(step=self.name, output=ProbeOutput())
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "blase-bench-probe"
version = "0.1"

[project.entry-points."blase.plugins"]
bench_probe = "blase_bench_probe:plugin"

[tool.setuptools]
packages = ["blase_bench_probe"]
'''


def prepare(folder: Path) -> tuple[Path, Path]:
    """The ``sitecustomize`` folder and a site folder holding the tiny plugin package."""
    hook = folder / "hook"
    hook.mkdir(parents=True, exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    site = folder / "site"
    if not (site / "blase_bench_probe" / "__init__.py").is_file():
        src = folder / "src"
        shutil.rmtree(src, ignore_errors=True)
        (src / "blase_bench_probe").mkdir(parents=True)
        (src / "blase_bench_probe" / "__init__.py").write_text(textwrap.dedent(PLUGIN_INIT))
        (src / "blase_bench_probe" / "_step.py").write_text(textwrap.dedent(PLUGIN_STEP))
        (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--target", str(site), str(src)], check=True, capture_output=True)
    return hook, site


def modes(hook: Path, site: Path) -> dict[str, dict[str, str]]:
    """The environment of each mode (on top of this process's, ``PYTHONPATH`` replaced)."""
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BLASE_BENCH_HIDE_PLUGINS")}
    return {
        "hidden": {**base, "PYTHONPATH": str(hook), "BLASE_BENCH_HIDE_PLUGINS": "1"},
        "installed": {**base, "PYTHONPATH": str(hook)},
        "installed + 1 package": {**base, "PYTHONPATH": os.pathsep.join([str(hook), str(site)])},
    }


def visible_plugins(env: dict[str, str]) -> list[str]:
    """The ``blase.plugins`` entry points a process with ``env`` sees."""
    code = ("from importlib.metadata import entry_points; "
            "print(','.join(sorted(ep.name for ep in entry_points(group='blase.plugins'))))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return [n for n in out.stdout.strip().split(",") if n]


def time_once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def measure(blase: str, envs: dict[str, dict[str, str]], repeat: int, warmup: int) -> dict[str, list[float]]:
    """``repeat`` timed runs per mode (after ``warmup`` untimed ones), interleaved round by round."""
    runs: dict[str, list[float]] = {name: [] for name in [*envs, "python -c pass"]}
    commands = {name: ([blase, "--help"], env) for name, env in envs.items()}
    commands["python -c pass"] = ([sys.executable, "-c", "pass"], envs["installed"])
    for round_ in range(warmup + repeat):
        for name, (argv, env) in commands.items():
            elapsed = time_once(argv, env)
            if round_ >= warmup:
                runs[name].append(elapsed)
    return runs


def print_table(runs: dict[str, list[float]], plugins: dict[str, list[str]], repeat: int) -> None:
    reference = statistics.median(runs["hidden"])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n## `blase --help`, {repeat} fresh processes per mode (interleaved; load average {load})\n")
    print("| mode | blase.plugins entry points | median ms | min ms | max ms | vs hidden |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, times in runs.items():
        median = statistics.median(times)
        seen = plugins.get(name)
        shown = "n/a" if seen is None else (", ".join(seen) if seen else "none")
        ratio = f"{median / reference:.2f}x" if name != "python -c pass" else ""
        print(f"| {name} | {shown} | {median * 1e3:.0f} | {min(times) * 1e3:.0f} | {max(times) * 1e3:.0f} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per mode")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per mode first (disk cache)")
    parser.add_argument("--dir", type=Path, default=ROOT / ".bench" / "cli-start")
    parser.add_argument("--blase", default=shutil.which("blase", path=str(Path(sys.executable).parent)) or "blase",
                        help="the blase command to time (default: the one beside this Python)")
    args = parser.parse_args()
    hook, site = prepare(args.dir.resolve())
    envs = modes(hook, site)
    plugins = {name: visible_plugins(env) for name, env in envs.items()}
    if plugins["hidden"]:
        raise SystemExit(f"the hidden mode still sees {plugins['hidden']}: the sitecustomize did not load")
    runs = measure(args.blase, envs, args.repeat, args.warmup)
    print_table(runs, plugins, args.repeat)


if __name__ == "__main__":
    main()
