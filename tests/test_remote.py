"""The shared remote against real storage: moto's S3 server on 127.0.0.1 and a shared folder.

Push, pull into a second project, reproduce --verify there; two concurrent pushes; a push
killed half-way, then resumed; gc --remote keeps pinned and deployed runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from blase.gc import pin
from blase.pipeline import Pipeline
from blase.remote import add_remote, gc_remote, get_remote, pull, push, remote_runs, verify_remote
from blase.scaffold import create_project
from blase.track import Track
from tests import cloud_servers

moto_endpoint, s3 = cloud_servers.moto_endpoint, cloud_servers.s3  # the servers' fixtures
FAST = ["train.epochs=2", "evaluate.plots=false", "deploy.onnx=false"]


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    """A project with one pipeline run, deployed as v1."""
    project = create_project(tmp_path_factory.mktemp("origin") / "origin")
    result = Pipeline(project, overrides=FAST).run()
    return project, result.run_id


def _artifact_run(project, name: str, files: int, size: int) -> str:
    folder = project.root / "outputs" / name
    folder.mkdir(parents=True)
    for i in range(files):
        (folder / f"blob-{i:03d}.bin").write_bytes(os.urandom(size))
    with Track(name, project=project, sample_resources=False) as run:
        run.log_artifact(folder)
    return run.run_id


@pytest.mark.slow
def test_push_pull_then_reproduce_diff_and_predict_on_another_machine(origin, s3, tmp_path, cli):
    project, run_id = origin
    s3.mkdir("lab-remote")
    add_remote(project, "lab", "s3://lab-remote/blase")
    first = push(project, get_remote(project, "lab"), [run_id])
    assert first.runs == [run_id] and first.objects_sent == first.objects_total > 10
    again = push(project, get_remote(project, "lab"), [run_id])
    assert again.bytes_sent == 0 and again.bytes_total == first.bytes_total

    listed = cli("runs", "--remote", "lab", "--json", cwd=project.root)
    assert listed.exit_code == 0 and run_id in listed.stdout and f"{project.name}@v1" in listed.stdout

    other = create_project(tmp_path / "laptop")
    assert cli("remote", "add", "lab", "s3://lab-remote/blase", cwd=other.root).exit_code == 0
    res = cli("pull", run_id[:6], "--remote", "lab", cwd=other.root)
    assert res.exit_code == 0, res.stdout + res.stderr
    assert f"run {run_id}" in res.stdout and f"{project.name}@v1" in res.stdout
    res = cli("reproduce", run_id, "--verify", cwd=other.root)
    assert res.exit_code == 0, res.stdout + res.stderr
    assert "bit for bit" in res.stdout
    res = cli("predict", f"{project.name}@v1", "data/penguins.csv", "--out", "outputs/p.csv", cwd=other.root)
    assert res.exit_code == 0, res.stdout + res.stderr
    assert len((other.root / "outputs" / "p.csv").read_text().splitlines()) == 345
    assert cli("diff", run_id, "latest", cwd=other.root).exit_code == 0

    res = cli("pull", "0000000", "--remote", "lab", cwd=other.root)
    assert res.exit_code == 1 and "has no run '0000000'" in res.stdout + res.stderr


def test_a_push_sends_only_what_the_remote_lacks(origin, tmp_path):
    project, _ = origin
    remote = tmp_path / "share"
    add_remote(project, "share", str(remote))
    base = _artifact_run(project, "base", files=9, size=50_000)
    push(project, get_remote(project, "share"), [base])
    # a second run logs the same nine files and one new one: only the new one travels
    extra = project.root / "outputs" / "base" / "blob-new.bin"
    extra.write_bytes(os.urandom(50_000))
    with Track("more", project=project, sample_resources=False) as run:
        run.log_artifact(project.root / "outputs" / "base")
    report = push(project, get_remote(project, "share"), [run.run_id])
    blobs = 10 * 50_000
    assert report.bytes_sent < 0.12 * report.bytes_total + 5_000  # the run's own log files are new too
    assert 50_000 <= report.bytes_sent < blobs


@pytest.mark.slow
def test_two_concurrent_pushes_leave_a_consistent_remote(origin, tmp_path, blase_exe):
    project, run_id = origin
    second = create_project(tmp_path / "second")
    Pipeline(second, overrides=[*FAST, "train.lr=0.02"]).run(to_step="evaluate")
    share = tmp_path / "share"
    for p in (project, second):
        add_remote(p, "share", str(share))
    procs = [subprocess.Popen([sys.executable, "-m", "blase", "push", "--all", "--remote", "share", "-p", str(p.root)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for p in (project, second)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    remote = get_remote(project, "share")
    assert verify_remote(remote) == []
    ids = {r["run"] for r in remote_runs(remote)}
    assert run_id in ids and len(ids) >= 2
    laptop = create_project(tmp_path / "laptop")
    add_remote(laptop, "share", str(share))
    for rid in ids:
        pull(laptop, get_remote(laptop, "share"), rid)
    assert {p.name for p in laptop.runs_dir.iterdir()} >= ids


@pytest.mark.slow
def test_a_push_killed_half_way_resumes_without_sending_twice(s3, tmp_path):
    project = create_project(tmp_path / "big", example=False)
    run_id = _artifact_run(project, "big", files=120, size=100_000)
    s3.mkdir("killed")
    add_remote(project, "lab", "s3://killed/blase")
    proc = subprocess.Popen([sys.executable, "-m", "blase", "push", run_id, "--remote", "lab", "-p", str(project.root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    remote = get_remote(project, "lab")
    deadline = time.time() + 60
    while time.time() < deadline and len(remote.listing("objects")) < 15:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    sent_before = len(remote.listing("objects"))
    assert 15 <= sent_before < 120, "the push was not caught half-way"
    assert remote_runs(remote) == []  # no index names a run whose objects are not all there
    assert verify_remote(remote) == []
    resumed = push(project, get_remote(project, "lab"), [run_id])
    assert resumed.objects_sent == resumed.objects_total - sent_before
    assert [r["run"] for r in remote_runs(remote)] == [run_id]
    laptop = create_project(tmp_path / "laptop", example=False)
    add_remote(laptop, "lab", "s3://killed/blase")
    pull(laptop, get_remote(laptop, "lab"), run_id)
    assert len(list((laptop.store_dir / "objects").rglob("*"))) >= 120


def test_gc_remote_keeps_what_pinned_and_deployed_runs_need(origin, tmp_path, cli):
    project, deployed_run = origin
    share = tmp_path / "gc-share"
    add_remote(project, "gcshare", str(share))
    pinned_run = _artifact_run(project, "pinned", files=2, size=10_000)
    pin(project, pinned_run)
    loose_run = _artifact_run(project, "loose", files=2, size=10_000)
    push(project, get_remote(project, "gcshare"), [deployed_run, pinned_run, loose_run])
    remote = get_remote(project, "gcshare")
    before = len(remote.listing("objects"))
    dry = cli("gc", "--remote", "gcshare", "--keep-last", "0", "--dry-run", cwd=project.root)
    assert dry.exit_code == 0 and "would remove 1 run(s)" in dry.stdout
    partial = share / "objects" / "ab" / "abcdef.tmp-4242-0000"  # what a killed push leaves
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"half")
    report = gc_remote(remote, keep_last=0, grace_s=0)
    assert not partial.exists()
    assert report.removed_runs == [loose_run]
    assert set(report.protected) == {deployed_run, pinned_run}
    assert len(remote.listing("objects")) < before
    assert verify_remote(remote) == []
    laptop = create_project(tmp_path / "laptop")
    add_remote(laptop, "gcshare", str(share))
    pull(laptop, get_remote(laptop, "gcshare"), f"{project.name}@v1")
    assert (laptop.models_dir / project.name / "v1" / "package.json").is_file()


def test_a_model_version_numbered_differently_here_is_not_overwritten(origin, tmp_path, cli):
    project, run_id = origin
    share = tmp_path / "share"
    add_remote(project, "share", str(share))
    push(project, get_remote(project, "share"), [run_id])
    laptop = create_project(tmp_path / "laptop", example=False)
    mine = laptop.models_dir / project.name / "v1"
    mine.mkdir(parents=True)
    (mine / "package.json").write_text('{"name": "my own v1"}')
    assert cli("remote", "add", "share", str(share), cwd=laptop.root).exit_code == 0
    res = cli("pull", f"{project.name}@v1", cwd=laptop.root)  # the only remote: no --remote needed
    assert res.exit_code == 1 and "is another model than this project's" in res.stdout + res.stderr
    assert (mine / "package.json").read_text() == '{"name": "my own v1"}'
