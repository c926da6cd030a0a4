"""Peak memory of a fresh ``blase run`` (extract, transform, prepare and an XGBoost train step in
one process) under ``--memory``, measured from outside with ``/usr/bin/time -v``.

For each try, and for each version of Blase (``--baseline-rev REV``, exported with ``git
archive`` as bench/etl.py does, then this checkout), a fresh project is made around a hard link
to CSV (a flights-like file from bench/etl_data.py, the transform of bench/gbdt.py), and
``blase run --to train --json`` runs in a child process under ``/usr/bin/time -v``. The versions
alternate within each try, so both see the same load. Printed per run: the whole process's
maximum RSS (time's), the train step's peak RSS (its VmHWM, reset when the step starts), the
resident memory when train started (and what the runner gave back before it, where it did),
and each step's seconds.

    python bench/xgb_run_memory.py .bench/flights_2gb.csv --memory 1GB --tries 2 --baseline-rev main
    python bench/xgb_run_memory.py .bench/flights_2gb.csv --keep .bench/xgbrun   # keep the last project

Linux only (``/usr/bin/time -v``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

STEPS = ("extract", "transform", "prepare", "train")


def run_once(csv: Path, folder: Path, memory: str, rounds: int, pythonpath: Path | None) -> dict:
    """One fresh project under ``folder``, one ``blase run --to train``: what it measured."""
    from gbdt import FLIGHTS_LIKE_TRANSFORM, project_for

    folder.mkdir(parents=True)
    os.link(csv, folder / csv.name)
    project = project_for(folder / csv.name, "delayed", folder, memory, FLIGHTS_LIKE_TRANSFORM)
    env = {**os.environ, "COLUMNS": "200", "BLASE_PROGRESS": "0"}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    argv = ["/usr/bin/time", "-v", sys.executable, "-m", "blase", "run", "--json", "--memory", memory,
            "--to", "train", "--set", "data.bad_rows=skip", "--set", "train.model=xgboost",
            "--set", f"train.options.n_estimators={rounds}", "--set", "train.options.early_stopping_rounds=null"]
    done = subprocess.run(argv, cwd=project, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"`blase run` failed in {project}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    max_rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    run = json.loads(done.stdout[done.stdout.index("{"):])
    steps = {e["data"]["step"]: e["data"] for e in run["event_list"] if e["event"] == "step"}
    train = steps["train"]
    release = train.get("details", {}).get("memory_release")
    return {
        "max_rss": int(max_rss.group(1)) * 1024 if max_rss else 0,
        "train_peak": train.get("peak_rss_bytes") or 0,
        "train_start": release["rss_after"] if release else None,
        "released": release["released"] if release else None,
        "seconds": {s: steps[s]["seconds"] for s in STEPS if s in steps},
        "rows": train.get("rows_in"),
        "project": project,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", type=Path)
    parser.add_argument("--memory", default="1GB")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tries", type=int, default=2)
    parser.add_argument("--baseline-rev", metavar="REV", help="also Blase as of this git revision, alternated")
    parser.add_argument("--dir", type=Path, default=ROOT / ".bench", help="where projects and exports go")
    parser.add_argument("--keep", type=Path, default=None,
                        help="move the last project of this checkout here (its shards serve bench/xgb_memory.py)")
    args = parser.parse_args(argv)
    csv = args.csv.resolve()
    versions: list[tuple[str, Path | None]] = []
    if args.baseline_rev:
        from etl import baseline_checkout

        sha, path = baseline_checkout(args.baseline_rev, args.dir)
        versions.append((f"before ({sha[:8]})", path))
    versions.append(("this checkout", None))
    lines = ["| Blase | try | whole `blase run` max RSS (time -v) | train step peak RSS | RSS when train started "
             "| given back before train | extract / transform / prepare / train s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    rows = None
    for attempt in range(1, args.tries + 1):
        for label, pythonpath in versions:
            work = Path(tempfile.mkdtemp(prefix="xgb-run-memory-", dir=args.dir))
            try:
                got = run_once(csv, work / "p", args.memory, args.rounds, pythonpath)
                if args.keep and pythonpath is None and attempt == args.tries:
                    shutil.rmtree(args.keep, ignore_errors=True)
                    shutil.move(str(got["project"]), args.keep)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            rows = got["rows"]
            start = f"{got['train_start'] / 1e9:.3f} GB" if got["train_start"] else "(not measured)"
            given = f"{got['released'] / 1e6:.0f} MB" if got["released"] is not None else "(none)"
            secs = " / ".join(f"{got['seconds'].get(s, 0):.0f}" for s in STEPS)
            lines.append(f"| {label} | {attempt} | {got['max_rss'] / 1e9:.3f} GB | **{got['train_peak'] / 1e9:.3f} GB** "
                         f"| {start} | {given} | {secs} |")
            print(lines[-1], flush=True)
    print(f"\n{csv.name}: {rows:,} train rows; --memory {args.memory}; {args.rounds} rounds\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
