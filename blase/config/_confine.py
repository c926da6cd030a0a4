"""Every file and every piece of code a config names stays inside the project.

``--set``, the tools' ``run_pipeline``/``run_step`` overrides and the assistant's config
changes can replace a whole section (``transform=[{call: /abs/evil.py:f}]``,
``data={source: /outside.csv}``), so checking override keys one by one is not enough: the
*resulting* config is checked, whatever shape the change had. What ``blase.yaml`` itself says
is the person's choice and stays allowed; every value an override brings in must name a file
inside the project root (after ``..`` and symlinks).
"""

from __future__ import annotations

import glob
import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from blase.cloud import is_remote, split_url
from blase.config._models import ProjectConfig
from blase.errors import ConfigError, ConfigProblem

__all__ = ["check_confined", "config_places", "confined_reads", "named_data"]

_TABLE_FILES = (".sqlite", ".sqlite3", ".db", ".duckdb")


def config_places(config: ProjectConfig) -> list[tuple[str, str, str]]:
    """``(kind, key path, value)`` for every value of ``config`` that names a file or code:
    ``data.source``, each ``transform[i].call``, a script ``train.model``, and a Ray cluster
    to send the run to (``ray.address``)."""
    places: list[tuple[str, str, str]] = []
    if config.data.source:
        places.append(("data", "data.source", config.data.source))
    for i, step in enumerate(config.transform):
        if step.call:
            places.append(("code", f"transform[{i}].call", step.call))
    if ":" in config.train.model:
        places.append(("code", "train.model", config.train.model))
    if config.ray.address and config.ray.address not in ("auto", "local"):
        places.append(("cluster", "ray.address", config.ray.address))  # the run's code and data go there
    return places


def _local_path(kind: str, value: str) -> str | None:
    """The file or folder part of a place's value; None when it is not a local file."""
    value = value.strip()
    if kind == "code":
        script = value.rpartition(":")[0]
        return script if script.endswith(".py") else None  # a module:function is not project code
    if "://" in value or value.startswith(("postgres", "host=")):
        return None
    head, sep, _table = value.rpartition(":")
    if sep and head.lower().endswith(_TABLE_FILES):
        value = head
    if glob.has_magic(value):  # the folder the pattern starts from
        fixed = []
        for part in Path(value).parts:
            if glob.has_magic(part):
                break
            fixed.append(part)
        value = str(Path(*fixed)) if fixed else "."
    return value


def named_data(config: ProjectConfig, root: str | os.PathLike[str]) -> list[Path]:
    """The local file or folder (a glob's fixed part) ``config``'s ``data.source`` names,
    resolved against ``root``; empty for a remote or database source. Reads confined to the
    project (the assistant's) may still read what ``blase.yaml`` itself names."""
    if not config.data.source:
        return []
    path = _local_path("data", config.data.source)
    if not path:
        return []
    raw = Path(os.path.expanduser(path))
    return [(raw if raw.is_absolute() else Path(root) / raw).resolve()]


def confined_reads(root: str | os.PathLike[str], config: ProjectConfig | None) -> AbstractContextManager[None]:
    """What reads on someone else's behalf (the assistant's tools, the ``blase ui`` page) may
    open: the project ``root`` (so what a data file in it names, such as a DuckDB view over
    another file, stays inside too), plus the data source ``config`` (the saved blase.yaml,
    the person's choice) names, wherever it is. A Postgres source needs DuckDB's network
    access, which confinement turns off: such a project's reads are not confined."""
    from blase._duck import confined_files

    if config is None:  # a blase.yaml that does not load names nothing
        return confined_files(root)
    if (config.data.source or "").strip().startswith(("postgres", "host=")):
        return nullcontext()
    return confined_files(root, *named_data(config, root))


def _bucket(url: str) -> str:
    scheme, bucket, _key = split_url(url)
    return f"{scheme}://{bucket}"


def _file_outside(value: str, root: Path) -> str | None:
    """The first file a folder or glob source reaches outside ``root`` (a symlink in it), if any."""
    from blase._sample import data_files

    head, sep, _table = value.strip().rpartition(":")
    raw = Path(os.path.expanduser(head if sep and head.lower().endswith(_TABLE_FILES) else value.strip()))
    for found in data_files(raw if raw.is_absolute() else root / raw):
        if _outside(str(found), root):
            return str(found)
    return None


def _outside(path: str, root: Path) -> bool:
    raw = Path(os.path.expanduser(path))
    full = (raw if raw.is_absolute() else root / raw).resolve()
    return full != root and root not in full.parents


def check_confined(
    config: ProjectConfig, root: str | os.PathLike[str], *, base: ProjectConfig | None = None,
    file: str = "--set",
) -> None:
    """Raise :class:`~blase.errors.ConfigError` when ``config`` names a file or code outside
    ``root``; values that ``base`` (the project's own ``blase.yaml``) already names are allowed.

    Model names (``deploy.name``) are checked by the config model itself.
    """
    root = Path(root).resolve()
    trusted: set[tuple[str, str]] = set()
    if base is not None:
        trusted = {(kind, value) for kind, _key, value in config_places(base)}
    problems = []
    buckets = {_bucket(value) for kind, value in trusted if kind == "data" and is_remote(value)}
    for kind, key, value in config_places(config):
        if (kind, value) in trusted:
            continue
        if kind == "data" and is_remote(value):
            if _bucket(value) not in buckets:
                problems.append(ConfigProblem(file, None, key, f"{key}: {value!r} is a bucket blase.yaml does not name"))
            continue  # another prefix of a bucket the person chose in blase.yaml
        if kind == "cluster":
            problems.append(ConfigProblem(file, None, key, f"{key}: {value!r} is a cluster blase.yaml does not name"))
            continue
        path = _local_path(kind, value)
        if path is None:
            problems.append(ConfigProblem(file, None, key, f"{key}: {value!r} is not a file of the project"))
        elif not path or _outside(path, root):
            problems.append(ConfigProblem(file, None, key, f"{key}: {value!r} is outside the project {root}"))
        elif kind == "data" and (escaped := _file_outside(value, root)) is not None:
            problems.append(ConfigProblem(file, None, key, f"{key}: {value!r} expands to {escaped}, "
                                          f"which is outside the project {root}"))
    if problems:
        raise ConfigError(
            problems,
            hint="an override may only name files and code inside the project (e.g. data/x.csv, "
            "scripts/transforms.py:fn), objects of a bucket blase.yaml's data.source names, or "
            "the Ray cluster blase.yaml names; "
            "put anything else in blase.yaml yourself",
        )

