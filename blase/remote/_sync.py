"""Push and pull runs, their step-store entries and model packages, by content hash.

A remote holds::

    objects/<h[:2]>/<h>          every file once, named by its xxh3-128 hash (immutable)
    steps/<key>.json             a step entry: {path in the entry folder: [hash, size]}
    models/<NAME>/<vN>.json      a model package: its files, and the run it came from
    runs/<run_id>.json           a run: its run folder's files, step keys, store objects,
                                 packages, and whether it was pinned or deployed

A push lists ``objects/`` once, sends only the objects the remote lacks, then writes the
entry, package and run files that name them, the run's last: a reader (or a concurrent
push, or ``gc --remote``) never sees an index that names a missing object, and two machines
pushing at once only ever write the same bytes under the same name. A push or a pull that
is killed resumes: what reached the other side is not sent again (a pull keeps what it
fetched in ``.blase/remote/pull/`` until it is in place).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blase.errors import BlaseError
from blase.hashing import StatCache, hash_file
from blase.project import Project
from blase.remote._backend import RemoteError, RemoteStore

__all__ = ["PullReport", "PushReport", "RemoteGCReport", "gc_remote", "pull", "push", "remote_runs", "verify_remote"]

Progress = Callable[[str, int, int], None]
FORMAT = 1


def _object(digest: str) -> str:
    return f"objects/{digest[:2]}/{digest}"


@dataclass
class PushReport:
    """What :func:`push` sent: runs, objects and bytes (``bytes_total``: all the files named)."""

    runs: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    objects_sent: int = 0
    objects_total: int = 0
    bytes_sent: int = 0
    bytes_total: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PullReport:
    runs: list[str] = field(default_factory=list)
    steps: int = 0
    models: list[str] = field(default_factory=list)
    objects_fetched: int = 0
    bytes_fetched: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- what a run needs


@dataclass
class _Files:
    """Files by their path on the other side, with their hash and size."""

    files: dict[str, list[Any]] = field(default_factory=dict)
    local: dict[str, Path] = field(default_factory=dict)

    def add_tree(self, folder: Path, cache: StatCache, *, skip: Iterable[str] = ()) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.name not in skip and ".tmp" not in path.name:
                digest = hash_file(path, cache=cache)
                self.files[path.relative_to(folder).as_posix()] = [digest, path.stat().st_size]
                self.local[digest] = path


def _run_plan(project: Project, run_id: str, cache: StatCache) -> tuple[dict[str, Any], dict[str, _Files], dict[str, Path]]:
    """The run's manifest, the step entries and packages it names, and the local file of
    every hash involved."""
    from blase.cache import StepStore
    from blase.gc import pinned
    from blase.track import ContentStore, load_run

    run = load_run(run_id, [project.root], history=False)
    if run.status == "running":
        raise RemoteError(f"run {run.id} is still running", hint="push it once it has finished")
    run_files = _Files()
    run_files.add_tree(project.runs_dir / run.id, cache, skip=("heartbeat",))
    keys = sorted({(e.get("data") or {}).get("key") for e in run.event_list if e.get("event") == "step_cache"} - {None})
    store = StepStore(project)
    parts: dict[str, _Files] = {}
    missing = []
    for key in keys:
        folder = store.root / key
        if not (folder / "entry.json").is_file():
            missing.append(key)
            continue
        entry = _Files()
        entry.add_tree(folder, cache)
        parts[f"steps/{key}.json"] = entry
    objects = ContentStore(project.store_dir)
    stored = {a.get("hash") for a in run.artifacts}
    for e in run.event_list:
        if e.get("event") == "code_snapshot":
            stored |= set(((e.get("data") or {}).get("files") or {}).values())
    stored_objects = sorted(h for h in stored if h and objects.has(h))
    models = _packages_of(project, run.id)
    for label, folder in models.items():
        package = _Files()
        package.add_tree(folder, cache)
        parts[f"models/{label.replace('@', '/')}.json"] = package
    local = {**run_files.local, **{h: objects.path_for(h) for h in stored_objects}}
    for part in parts.values():
        local.update(part.local)
    manifest = {
        "format": FORMAT, "run": run.id, "name": run.name, "status": run.status, "kind": run.kind,
        "started_at": run.started_at, "ended_at": run.ended_at, "metrics": run.metrics,
        "params": run.params, "project": project.name, "pushed_by": socket.gethostname(),
        "pushed_at": time.time(), "files": run_files.files, "steps": sorted(k for k in keys if k not in missing),
        "objects": {h: objects.path_for(h).stat().st_size for h in stored_objects},
        "models": sorted(models), "pinned": run.id in pinned(project), "missing_steps": missing,
    }
    return manifest, parts, local


def _packages_of(project: Project, run_id: str) -> dict[str, Path]:
    """``{"NAME@vN": folder}`` of the model versions deployed from ``run_id``."""
    from blase.deploy import list_models, load_package

    found = {}
    for model in list_models(project):
        for version in model.versions:
            try:
                package = load_package(model.path / version, verify=False)
            except BlaseError:
                continue
            if (package.info.get("lineage") or {}).get("run_id") == run_id:
                found[f"{model.name}@{version}"] = model.path / version
    return found


# --------------------------------------------------------------------------- push


def push(project: Project, remote: RemoteStore, runs: list[str] | None = None, *,
         progress: Progress | None = None) -> PushReport:
    """Copy runs (ids or prefixes; every finished run when None) to ``remote``: the objects it
    lacks first, then the step entries, packages and run manifests that name them."""
    from blase.track import list_runs, load_run

    report = PushReport()
    cache = StatCache.for_project(project)
    if runs is None:
        ids = [r.id for r in list_runs([project.root]) if r.status != "running"]
        ids.reverse()  # oldest first
    else:
        ids = [load_run(ref, [project.root], history=False).id for ref in runs]
    have = {rel.rpartition("/")[2] for rel in remote.listing("objects")}
    tmp = project.state_dir / "tmp"
    for run_id in ids:
        try:
            manifest, parts, local = _run_plan(project, run_id, cache)
        except RemoteError as exc:
            report.skipped[run_id] = str(exc).splitlines()[0]
            continue
        if manifest["missing_steps"]:
            report.warnings.append(f"run {run_id}: {len(manifest['missing_steps'])} step result(s) were collected "
                                   "from the store and are not pushed (`blase reproduce` recomputes them)")
        todo = sorted(local)
        report.objects_total += len(todo)
        for i, digest in enumerate(todo, 1):
            size = local[digest].stat().st_size
            report.bytes_total += size
            if digest not in have:
                remote.put_file(local[digest], _object(digest))
                have.add(digest)
                report.objects_sent += 1
                report.bytes_sent += size
            if progress:
                progress(run_id, i, len(todo))
        for rel, part in parts.items():
            extra = {"run": run_id} if rel.startswith("models/") else {}
            remote.put_json(rel, {"format": FORMAT, "files": part.files, **extra}, tmp)
        remote.put_json(f"runs/{run_id}.json", manifest, tmp)  # last: the index names only what is there
        report.runs.append(run_id)
    return report


# --------------------------------------------------------------------------- list


def remote_runs(remote: RemoteStore) -> list[dict[str, Any]]:
    """The run manifests on ``remote``, newest first (files and objects left out)."""
    out = []
    for rel in sorted(remote.listing("runs")):
        if not rel.endswith(".json"):
            continue
        data = remote.get_json(rel)
        out.append({k: v for k, v in data.items() if k not in ("files", "objects")})
    out.sort(key=lambda r: str(r.get("started_at") or ""), reverse=True)
    return out


def _find_run(remote: RemoteStore, ref: str) -> str:
    ids = [rel[len("runs/"):-len(".json")] for rel in remote.listing("runs") if rel.endswith(".json")]
    found = [i for i in ids if i.startswith(ref)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise RemoteError(f"remote {remote.name} has no run {ref!r}",
                          hint=f"list its runs with `blase runs --remote {remote.name}`")
    raise RemoteError(f"{ref!r} names {len(found)} runs on remote {remote.name}: {', '.join(sorted(found)[:5])}",
                      hint="give more characters of the run id")


# --------------------------------------------------------------------------- pull


class _Fetcher:
    """Objects fetched into ``.blase/remote/pull/`` (verified by hash; kept until placed)."""

    def __init__(self, project: Project, remote: RemoteStore, report: PullReport) -> None:
        self.dir = project.state_dir / "remote" / "pull"
        self.remote = remote
        self.report = report
        self.used: set[Path] = set()

    def get(self, digest: str) -> Path:
        path = self.dir / digest
        if not (path.is_file() and hash_file(path) == digest):
            self.remote.get_file(_object(digest), path)
            if hash_file(path) != digest:
                path.unlink(missing_ok=True)
                raise RemoteError(f"object {digest} on remote {self.remote.name} does not match its hash",
                                  hint=f"push the run again from a machine that has it; `blase remote verify {self.remote.name}` lists damage")
            self.report.objects_fetched += 1
            self.report.bytes_fetched += path.stat().st_size
        self.used.add(path)
        return path

    def build(self, files: dict[str, list[Any]], final: Path) -> bool:
        """Make ``final`` from ``files`` (in a staging folder renamed at the end); False when
        ``final`` is already there."""
        if final.exists():
            return False
        staging = final.parent / f".tmp-pull-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            for rel, (digest, _size) in sorted(files.items()):
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.get(digest), target)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True

    def done(self) -> None:
        for path in self.used:
            path.unlink(missing_ok=True)


def pull(project: Project, remote: RemoteStore, ref: str) -> PullReport:
    """Bring a run (id or prefix: its folder, step entries, code snapshot, artifacts and
    packages) or a model version (``NAME@vN``) from ``remote`` into ``project``."""
    from blase.track import ContentStore

    report = PullReport()
    fetch = _Fetcher(project, remote, report)
    if "@" in ref:
        name, _, version = ref.partition("@")
        _pull_model(project, remote, fetch, name, version, report)
        fetch.done()
        return report
    run_id = _find_run(remote, ref)
    manifest = remote.get_json(f"runs/{run_id}.json")
    store = project.store_dir / "steps"
    for key in manifest.get("steps", []):
        entry = remote.get_json(f"steps/{key}.json")
        if fetch.build(entry["files"], store / key):
            report.steps += 1
    objects = ContentStore(project.store_dir)
    for digest in manifest.get("objects", {}):
        if not objects.has(digest):
            objects.put_file(fetch.get(digest))
    for label in manifest.get("models", []):
        name, _, version = label.partition("@")
        _pull_model(project, remote, fetch, name, version, report)
    fetch.build(manifest["files"], project.runs_dir / run_id)  # last: the run shows once it is whole
    report.runs.append(run_id)
    fetch.done()
    return report


def _pull_model(project: Project, remote: RemoteStore, fetch: _Fetcher, name: str, version: str,
                report: PullReport) -> None:
    from blase._fs import write_text_atomic
    from blase.deploy import model_folder

    folder = model_folder(project, name)
    package = remote.get_json(f"models/{name}/{version}.json")
    here = folder / version / "package.json"
    digest = package["files"].get("package.json", [None])[0]
    if here.is_file() and hash_file(here) != digest:
        raise RemoteError(f"{name}@{version} on remote {remote.name} is another model than this project's "
                          f"models/{name}/{version} (each machine numbers its own versions)",
                          hint=f"pull it into another project folder, or deploy under another name here (`blase models` lists {name}'s versions)")
    fetch.build(package["files"], folder / version)
    if not (folder / "current").is_file():  # the first version here becomes current
        write_text_atomic(folder / "current", version + "\n")
    report.models.append(f"{name}@{version}")


# --------------------------------------------------------------------------- verify and gc


def verify_remote(remote: RemoteStore) -> list[str]:
    """Problems of ``remote``: index files naming objects it lacks, or objects of another size."""
    have = {rel.rpartition("/")[2]: item.size for rel, item in remote.listing("objects").items()}
    problems = []
    for rel in sorted(remote.listing("runs")) + sorted(remote.listing("steps")) + sorted(remote.listing("models")):
        data = remote.get_json(rel)
        named = {d: s for d, s in (data.get("files") or {}).values()} | dict(data.get("objects") or {})
        for digest, size in sorted(named.items()):
            if digest not in have:
                problems.append(f"{rel} names object {digest}, which is missing")
            elif have[digest] != size:
                problems.append(f"{rel}: object {digest} has {have[digest]} bytes, not {size}")
    return problems


@dataclass
class RemoteGCReport:
    dry_run: bool
    kept_runs: list[str] = field(default_factory=list)
    protected: dict[str, str] = field(default_factory=dict)
    removed_runs: list[str] = field(default_factory=list)
    removed_files: int = 0
    freed_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def gc_remote(remote: RemoteStore, *, keep_last: int | None = None, dry_run: bool = False,
              grace_s: float = 3600.0) -> RemoteGCReport:
    """Remove from ``remote`` the runs beyond the newest ``keep_last`` (never a run that was
    pinned or deployed when pushed), then every entry, package and object no kept run names.

    Objects younger than ``grace_s`` stay: a concurrent push may have found one already there
    and not yet written the run that names it.
    """
    report = RemoteGCReport(dry_run=dry_run)
    runs = remote_runs(remote)
    kept = []
    for i, run in enumerate(runs):
        why = "pinned" if run.get("pinned") else (f"deployed as {', '.join(run['models'])}" if run.get("models") else None)
        if why:
            report.protected[run["run"]] = why
        if why or keep_last is None or i < keep_last:
            kept.append(run["run"])
        else:
            report.removed_runs.append(run["run"])
    report.kept_runs = kept
    need_parts: set[str] = set()
    need_objects: set[str] = set()
    for run_id in kept:
        data = remote.get_json(f"runs/{run_id}.json")
        need_objects |= {d for d, _s in data["files"].values()} | set(data.get("objects") or {})
        need_parts |= {f"steps/{k}.json" for k in data.get("steps", [])}
        need_parts |= {f"models/{m.replace('@', '/')}.json" for m in data.get("models", [])}
    for rel in need_parts:
        try:
            need_objects |= {d for d, _s in remote.get_json(rel)["files"].values()}
        except RemoteError:
            continue
    now = time.time()
    doomed = [f"runs/{r}.json" for r in report.removed_runs]
    doomed += [rel for prefix in ("steps", "models") for rel in remote.listing(prefix) if rel not in need_parts]
    objects = remote.listing("objects")
    doomed += [rel for rel, item in objects.items()
               if rel.rpartition("/")[2] not in need_objects and now - item.mtime > grace_s]
    doomed += remote.stale_temporary(grace_s)  # a killed push's partial files (folder remotes)
    for rel in doomed:  # index files first: nothing left names a removed object
        report.removed_files += 1
        report.freed_bytes += objects[rel].size if rel in objects else 0
        if not dry_run:
            remote.delete(rel)
    return report
