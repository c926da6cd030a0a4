"""The environment fingerprint: Python, platform, key package versions, GPU."""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from blase.hashing._config import hash_config

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- environment

_KEY_PACKAGES = (
    "blase",
    "numpy",
    "pyarrow",
    "duckdb",
    "torch",
    "pydantic",
    "pandas",
    "polars",
    "scikit-learn",
    "scipy",
    "xxhash",
)


def _package_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in _KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.lru_cache(maxsize=1)
def _nvidia_smi() -> tuple[tuple[str, str], ...]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ()
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=2,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("nvidia-smi failed: %s", exc)
        return ()
    rows = [
        tuple(part.strip() for part in line.split(",", 1))
        for line in out.splitlines()
        if line.strip()
    ]
    return tuple((r[0], r[1] if len(r) > 1 else "") for r in rows)


def _gpu() -> dict[str, Any] | None:
    torch = sys.modules.get("torch")
    cuda: str | None = None
    names: list[str] = []
    driver: str | None = None
    if torch is not None:
        cuda = getattr(getattr(torch, "version", None), "cuda", None)
        try:
            # Only read names from an initialised CUDA: initialising it here would break
            # forked DataLoader workers later.
            if torch.cuda.is_initialized():
                names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        except Exception as exc:  # any torch build, any driver state
            logger.debug("could not read GPU names from torch: %s", exc)
    if not names:
        smi = _nvidia_smi()
        names = [name for name, _ in smi]
        driver = smi[0][1] if smi else None
    if not names and cuda is None:
        return None
    return {"cuda": cuda, "devices": names, "driver": driver}


def environment_fingerprint() -> dict[str, Any]:
    """Python, platform, key package versions and GPU, as a JSON-ready dict.

    Package versions come from installed metadata (``None`` when not installed); nothing is
    imported. The kernel release is left out on purpose: an OS update should not invalidate
    every cached step. ``gpu`` is ``None`` without torch or ``nvidia-smi``.
    """
    import platform

    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
        },
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "packages": _package_versions(),
        "gpu": _gpu(),
    }


def environment_hash(fp: Mapping[str, Any] | None = None) -> str:
    """:func:`hash_config` of ``fp``, by default of :func:`environment_fingerprint`."""
    return hash_config(environment_fingerprint() if fp is None else fp)

