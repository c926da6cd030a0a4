"""Cloud sources, the shared remote and sweeps, each side by side with its local anchor.

Usage::

    pip install -e '.[cloud,dev]' && python bench/cloud.py --mb 64 --objects 1000

Everything runs against moto's S3 server on 127.0.0.1 (the same HTTP the clouds speak, no
network latency: the ratios are what Blase adds, not what a WAN costs). Four tables:

1. extract of the same Parquet files from the S3 server and from disk (throughput ratio);
2. the no-change cache check of a 1,000-object prefix: time, object GETs and bytes
   downloaded (target: none), against hashing the same files on disk;
3. a push whose objects are 90% already on the remote: bytes sent / total (target <= 0.12),
   to a shared folder and to the S3 server;
4. a sweep of 8 configurations with --parallel 2 against 8 sequential ``blase run`` calls
   (both stop after evaluate).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)) + " |")


class _Gets(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage()))

    def object_gets(self, bucket: str) -> int:
        pattern = re.compile(rf'"GET /{bucket}/[^ ?]+ HTTP')
        return sum(1 for line in self.lines if pattern.search(line))


def _server() -> tuple[object, str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=endpoint)
    return server, endpoint


def _parquet_files(folder: Path, mb: int, files: int = 8) -> list[Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    rows = mb * (1 << 20) // 8 // 8 // files  # 8 float64 columns, little compression on random data
    out = []
    for i in range(files):
        table = pa.table({f"x{j}": rng.standard_normal(rows) for j in range(8)})
        path = folder / f"part-{i:02d}.parquet"
        pq.write_table(table, path, compression="none")
        out.append(path)
    return out


def bench_extract(work: Path, fs, mb: int) -> None:
    from blase.extract import Extract

    local = work / "local"
    local.mkdir()
    files = _parquet_files(local, mb)
    fs.mkdir("bench-extract")
    for f in files:
        fs.put(str(f), f"bench-extract/data/{f.name}")
    size = sum(f.stat().st_size for f in files)
    rows = []
    for label, source in (("disk", str(local / "*.parquet")), ("S3 server (first read)", "s3://bench-extract/data/*.parquet"),
                          ("S3 server (objects staged)", "s3://bench-extract/data/*.parquet")):
        out = work / f"out-{len(rows)}"
        t = time.perf_counter()
        result = Extract(source, project=None).to_parquet(out, memory="1GB")
        seconds = time.perf_counter() - t
        rows.append([label, f"{size / 1e6:.0f} MB", f"{result.rows_out:,}", f"{seconds:.2f} s", f"{size / 1e6 / seconds:.0f} MB/s",
                     f"{result.peak_rss_bytes / 1e6:.0f} MB"])
    base = float(rows[0][4].split()[0])
    for row in rows:
        row.append(f"{float(row[4].split()[0]) / base:.2f}")
    _table("1. extract: S3 server vs disk (same files)", ["source", "size", "rows", "time", "throughput", "peak RSS", "ratio"], rows)


def bench_no_change(work: Path, fs, objects: int, gets: _Gets) -> None:
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(work / "nochange")
    folder = work / "small"
    folder.mkdir()
    line = (project.root / "data" / "penguins.csv").read_text().splitlines()
    fs.mkdir("bench-many")
    for i in range(objects):
        path = folder / f"part-{i:04d}.csv"
        path.write_text("\n".join([line[0], line[1 + i % 300]]) + "\n")
    fs.put(str(folder) + "/", "bench-many/rows/", recursive=True)
    text = project.config_path.read_text().replace("source: data/penguins.csv", "source: s3://bench-many/rows/*.csv")
    project.config_path.write_text(text)
    t = time.perf_counter()
    Pipeline(project).run(to_step="extract")
    first = time.perf_counter() - t
    gets.lines.clear()
    t = time.perf_counter()
    again = Pipeline(project).run(to_step="extract")
    check = time.perf_counter() - t
    assert "extract" in again.cached, again.reasons
    object_gets = gets.object_gets("bench-many")
    local_project = create_project(work / "nochange-local")
    shutil.copytree(folder, local_project.root / "data" / "rows")
    text = local_project.config_path.read_text().replace("source: data/penguins.csv", "source: data/rows/*.csv")
    local_project.config_path.write_text(text)
    t = time.perf_counter()
    Pipeline(local_project).run(to_step="extract")
    local_first = time.perf_counter() - t
    t = time.perf_counter()
    local_again = Pipeline(local_project).run(to_step="extract")
    local = time.perf_counter() - t
    assert "extract" in local_again.cached
    _table(f"2. no-change cache check of a {objects:,}-object prefix (`blase run --to extract` twice)",
           ["source", "first run", "re-run (cache hit)", "object GETs in the re-run", "bytes downloaded"], [
        ["S3 server: s3://bench-many/rows/*.csv", f"{first:.2f} s", f"{check:.2f} s", str(object_gets),
         "0" if object_gets == 0 else "some"],
        [f"anchor: the same {objects:,} files on disk", f"{local_first:.2f} s", f"{local:.2f} s", "-", "-"],
    ])


def bench_push(work: Path, fs) -> None:
    from blase.remote import add_remote, get_remote, push
    from blase.scaffold import create_project
    from blase.track import Track

    project = create_project(work / "push", example=False)
    data = project.root / "outputs" / "blobs"
    data.mkdir(parents=True)
    for i in range(9):
        (data / f"blob-{i}.bin").write_bytes(os.urandom(1 << 20))
    with Track("base", project=project, sample_resources=False) as run:
        run.log_artifact(data)
    base = run.run_id
    (data / "blob-9.bin").write_bytes(os.urandom(1 << 20))
    with Track("new", project=project, sample_resources=False) as run:
        run.log_artifact(data)
    new = run.run_id
    fs.mkdir("bench-remote")
    rows = []
    for label, url in (("shared folder", str(work / "share")), ("S3 server", "s3://bench-remote/blase")):
        add_remote(project, "r", url)
        push(project, get_remote(project, "r"), [base])
        t = time.perf_counter()
        report = push(project, get_remote(project, "r"), [new])
        seconds = time.perf_counter() - t
        rows.append([label, f"{report.bytes_total / 1e6:.2f} MB", f"{report.bytes_sent / 1e6:.2f} MB",
                     f"{report.bytes_sent / report.bytes_total:.3f}", f"{report.objects_sent}/{report.objects_total}", f"{seconds:.2f} s"])
    _table("3. push of a run whose objects are 90% on the remote already (target <= 0.12)",
           ["remote", "total", "sent", "sent/total", "files sent", "time"], rows)


def bench_sweep(work: Path, configs: int, epochs: int) -> None:
    from blase.scaffold import create_project

    lrs = ["0.001", "0.003", "0.01", "0.03"]
    hidden = ["[32]", "[64,32]"]
    assert len(lrs) * len(hidden) == configs
    common = [f"train.epochs={epochs}", "evaluate.plots=false"]
    exe = [sys.executable, "-m", "blase"]
    seq = create_project(work / "seq")
    t = time.perf_counter()
    for lr in lrs:
        for h in hidden:
            subprocess.run([*exe, "run", "--to", "evaluate", "--set", f"train.lr={lr}", "--set", f"train.hidden={h}",
                            *[a for c in common for a in ("--set", c)]], cwd=seq.root, check=True, capture_output=True)
    sequential = time.perf_counter() - t
    par = create_project(work / "par")
    t = time.perf_counter()
    subprocess.run([*exe, "sweep", "--set", "train.lr=" + ",".join(lrs), "--set", "train.hidden=" + ",".join(hidden),
                    *[a for c in common for a in ("--set", c)], "--parallel", "2"], cwd=par.root, check=True, capture_output=True)
    swept = time.perf_counter() - t
    _table(f"4. {configs} configurations (penguins, {epochs} epochs, to evaluate)", ["how", "wall", "ratio"], [
        [f"{configs} sequential `blase run` calls", f"{sequential:.1f} s", "1.00"],
        ["`blase sweep --parallel 2`", f"{swept:.1f} s", f"{swept / sequential:.2f}"],
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="size of the extract benchmark's Parquet files")
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--only", choices=["extract", "nochange", "push", "sweep"], action="append")
    args = parser.parse_args()
    import s3fs

    server, endpoint = _server()
    gets = _Gets()
    logging.getLogger("werkzeug").addHandler(gets)
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    logging.getLogger("werkzeug").propagate = False
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    work = Path(tempfile.mkdtemp(prefix="blase-bench-cloud-"))
    only = set(args.only or ["extract", "nochange", "push", "sweep"])
    try:
        if "extract" in only:
            bench_extract(work, fs, args.mb)
        if "nochange" in only:
            bench_no_change(work, fs, args.objects, gets)
        if "push" in only:
            bench_push(work, fs)
        if "sweep" in only:
            bench_sweep(work, 8, args.epochs)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
