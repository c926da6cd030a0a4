"""``blase serve`` against a bare FastAPI + uvicorn app calling ONNX Runtime, in one run.

Usage::

    python bench/serve.py --records 400 --batches 40

It trains the penguins demo model once (``blase.scaffold`` + ``Pipeline``, in a temporary
folder, or ``--project`` to reuse one), then starts, one after the other, each server as its own
process on a free port:

* ``blase serve``: ``blase serve NAME`` (numpy forward pass of the built-in MLP);
* ``blase serve --onnx``: the same, scoring with the package's ``model.onnx``;
* ``fastapi+onnxruntime`` (the anchor): ``uvicorn`` serving a FastAPI app whose one route runs
  ``model.onnx`` with onnxruntime on rows of **already transformed** features. It skips what
  ``blase serve`` does per request (input-schema check, the fitted transform: one-hot encoding,
  scaling, the derived column), so it is a floor, not a like-for-like rival.
* ``mlflow models serve`` (with ``--mlflow-python PYTHON``, an interpreter that has ``mlflow``,
  ``onnx`` and ``onnxruntime``; MLflow's dependencies conflict with nothing here but are many, so
  they live in their own environment): the same ``model.onnx`` logged with ``mlflow.onnx`` and
  served by ``mlflow models serve --env-manager local``, fed ``dataframe_records`` of the same
  transformed feature rows (also a floor: no transform).

Each server gets the same requests from one client thread over one keep-alive connection
(``http.client``): ``--records`` single-record requests, then ``--batches`` requests of 1,000 rows
(penguins rows drawn with replacement, seed 0). The table shows requests/s, rows/s, and the
p50/p99 latency seen by the client. Every answer is checked (status 200, the row count).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ANCHOR_APP = '''
import json, sys
import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import FastAPI, Request

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
features = json.loads(sys.argv[3])
app = FastAPI()

@app.get("/health")
def health():
    return {"status": "ok"}

@app.post("/predict")
async def predict(request: Request):
    body = await request.json()
    rows = [body] if isinstance(body, dict) else body
    x = np.array([[row[f] for f in features] for row in rows], dtype=np.float32)
    logits = session.run(None, {"features": x})[0]
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = z / z.sum(axis=1, keepdims=True)
    return {"predictions": [{"prediction": int(p.argmax()), "probs": p.tolist()} for p in probs]}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} not ready after {timeout} s")


def load(port: int, bodies: list[bytes], rows_each: int, route: str = "/predict") -> list[float]:
    """Send each body over one keep-alive connection; the latency of each, in seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for body in bodies:
        start = time.perf_counter()
        conn.request("POST", route, body=body, headers={"Content-Type": "application/json"})
        answer = conn.getresponse()
        data = answer.read()
        times.append(time.perf_counter() - start)
        # MLflow's ONNX flavour answers one entry per output value (rows x classes), not per row
        counted = route == "/predict"
        if answer.status != 200 or (counted and len(json.loads(data)["predictions"]) != rows_each):
            raise SystemExit(f"bad answer {answer.status}: {data[:300]!r}")
    conn.close()
    return times


def trained_project(folder: Path | None):
    from blase.project import find_project
    from blase.scaffold import create_project

    if folder is not None:
        return find_project(folder)
    from blase.pipeline import Pipeline

    project = create_project(Path(tempfile.mkdtemp(prefix="blase-bench-serve-")) / "peng")
    Pipeline(project).run()
    return project


def workloads(project, n_records: int, n_batches: int):
    """Raw rows for blase, transformed feature rows for the anchor: the same rows, both ways."""
    import pyarrow.csv as pacsv

    from blase.deploy import BatchScorer, features_matrix, resolve_model

    package = resolve_model(project, project.name)
    table = pacsv.read_csv(project.root / "data" / "penguins.csv").drop_columns([package.label])
    table = table.drop_null()  # complete rows: the anchor has no imputer
    rng = np.random.default_rng(0)
    scorer = BatchScorer(package)
    X = features_matrix(scorer.transform.apply(table.select(list(package.input_schema))), package.features)
    raw = table.to_pylist()
    feats = [dict(zip(package.features, map(float, row), strict=True)) for row in X]

    def bodies(count: int, size: int, rows: list) -> list[bytes]:
        picks = rng.integers(0, len(rows), size=(count, size))
        return [json.dumps(rows[p[0]] if size == 1 else [rows[i] for i in p]).encode() for p in picks]

    state = rng.bit_generator.state
    raw_work = (bodies(n_records, 1, raw), bodies(n_batches, 1000, raw))
    rng.bit_generator.state = state  # the same row picks for the anchor
    anchor_work = (bodies(n_records, 1, feats), bodies(n_batches, 1000, feats))
    return package, raw_work, anchor_work


def run_server(cmd: list[str], port: int, work, env=None, route: str = "/predict") -> dict[str, list[float]]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_ready(port, proc, timeout=120)
        load(port, work[0][:20], 1, route)  # warm up: first request loads and compiles
        return {"record": load(port, work[0], 1, route), "batch": load(port, work[1], 1000, route)}
    finally:
        proc.terminate()
        proc.wait(timeout=20)


MLFLOW_SAVE = '''
import sys, numpy as np, onnx, pandas as pd, mlflow
model = onnx.load(sys.argv[1])
example = pd.DataFrame(np.zeros((2, len(sys.argv[3].split(","))), dtype=np.float32), columns=sys.argv[3].split(","))
mlflow.onnx.save_model(model, sys.argv[2], input_example=example)
'''


def _records(body: bytes) -> bytes:
    """A feature-rows body as MLflow's ``dataframe_records`` payload."""
    rows = json.loads(body)
    return json.dumps({"dataframe_records": rows if isinstance(rows, list) else [rows]}).encode()


def run_mlflow(python: Path, package, work) -> dict[str, list[float]]:
    """``mlflow models serve`` of the package's ONNX model (an MLflow model folder, no tracking
    server), fed the transformed rows."""
    folder = Path(tempfile.mkdtemp(prefix="blase-bench-mlflow-")) / "model"
    # mlflow starts `uvicorn` from PATH: its environment's bin/ first
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PATH": f"{python.parent}:{os.environ.get('PATH', '')}"}
    subprocess.run([str(python), "-c", MLFLOW_SAVE, str(package.path / "model.onnx"), str(folder),
                    ",".join(package.features)], env=env, check=True, capture_output=True)
    port = free_port()
    requests = ([_records(b) for b in work[0]], [_records(b) for b in work[1]])
    cmd = [str(python), "-m", "mlflow", "models", "serve", "-m", str(folder), "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port)]
    return run_server(cmd, port, requests, env=env, route="/invocations")


def row(name: str, kind: str, times: list[float], rows_each: int) -> str:
    total = sum(times)
    q = statistics.quantiles(times, n=100)
    return (f"| {name} | {kind} | {len(times) / total:,.0f} | {len(times) * rows_each / total:,.0f} "
            f"| {statistics.median(times) * 1000:.2f} | {q[98] * 1000:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=400, help="single-record requests per server")
    parser.add_argument("--batches", type=int, default=40, help="1,000-row requests per server")
    parser.add_argument("--project", type=Path, help="a project with a deployed model (default: train one)")
    parser.add_argument("--mlflow-python", type=Path, help="a Python with mlflow, onnx and onnxruntime")
    args = parser.parse_args()

    project = trained_project(args.project)
    package, raw_work, anchor_work = workloads(project, args.records, args.batches)
    blase = [str(Path(sys.executable).with_name("blase")), "serve", package.name, "--project", str(project.root)]
    results = {}
    for name, extra in (("blase serve", []), ("blase serve --onnx", ["--onnx"])):
        port = free_port()
        results[name] = run_server([*blase, "--port", str(port), *extra], port, raw_work)
    port = free_port()
    anchor = [sys.executable, "-c", ANCHOR_APP, str(package.path / "model.onnx"), str(port),
              json.dumps(package.features)]
    results["fastapi+onnxruntime (anchor)"] = run_server(anchor, port, anchor_work,
                                                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if args.mlflow_python:
        results["mlflow models serve (anchor)"] = run_mlflow(args.mlflow_python, package, anchor_work)

    print(f"penguins MLP ({len(package.features)} features), {args.records} single records and "
          f"{args.batches} batches of 1,000 rows per server, one client over one keep-alive connection")
    print("| server | request | requests/s | rows/s | p50 ms | p99 ms |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, times in results.items():
        print(row(name, "1 record", times["record"], 1))
    for name, times in results.items():
        print(row(name, "1,000 rows", times["batch"], 1000))


if __name__ == "__main__":
    main()
