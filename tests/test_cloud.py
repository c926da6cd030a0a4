"""Bucket sources (s3://) against moto's real S3 server on 127.0.0.1: a pipeline, predict and
monitor read a bucket; an unchanged bucket is a cache hit without one object download; a missing
bucket, an empty prefix and denied access say so, naming the credentials tried."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from blase.cloud import CloudError, list_objects
from blase.errors import ConfigError
from blase.pipeline import Pipeline
from tests import cloud_servers

moto_endpoint, s3 = cloud_servers.moto_endpoint, cloud_servers.s3  # the servers' fixtures

FAST = ["train.epochs=2", "evaluate.plots=false", "deploy.onnx=false"]


def _upload_penguins(fs, project, bucket: str, parts: int = 3) -> None:
    """The bundled penguins data as ``parts`` Parquet objects under ``bucket/penguins/``."""
    table = pcsv_table(project)
    fs.mkdir(bucket)
    step = -(-table.num_rows // parts)
    for i in range(parts):
        local = project.root / f"part-{i}.parquet"
        pq.write_table(table.slice(i * step, step), local)
        fs.put(str(local), f"{bucket}/penguins/part-{i}.parquet")
        local.unlink()


def pcsv_table(project):
    return pacsv.read_csv(project.root / "data" / "penguins.csv")


def _use_source(project, source: str) -> None:
    text = project.config_path.read_text()
    project.config_path.write_text(text.replace("source: data/penguins.csv", f"source: {source}"))


def test_pipeline_reads_a_bucket_and_an_unchanged_bucket_downloads_nothing(project, s3, cli):
    _upload_penguins(s3, project, "lab-data")
    _use_source(project, "s3://lab-data/penguins/*.parquet")
    first = Pipeline(project, overrides=FAST).run()
    assert first.steps["extract"].rows_out == 344
    assert s3.requests.object_gets("lab-data") >= 3  # the three parts were read once

    s3.requests.clear()
    second = Pipeline(project, overrides=FAST).run()
    assert "extract" in second.cached
    assert s3.requests.object_gets("lab-data") == 0, "an unchanged bucket was downloaded again"

    # one object changes: extract runs again and says which object changed
    table = pcsv_table(project).slice(0, 10)
    pq.write_table(table, project.root / "small.parquet")
    s3.put(str(project.root / "small.parquet"), "lab-data/penguins/part-2.parquet")
    third = Pipeline(project, overrides=FAST)
    result = third.run(to_step="extract")
    assert result.steps["extract"].rows_out == 2 * 115 + 10
    assert "s3://lab-data/penguins/part-2.parquet changed" in result.reasons["extract"]


def predict_and_monitor_from(fs, scheme: str, project, cli) -> None:
    """Train on the local data, then predict and monitor the same rows uploaded to ``scheme://incoming/march/``."""
    Pipeline(project, overrides=FAST).run()
    fs.mkdir("incoming")
    fs.put(str(project.root / "data" / "penguins.csv"), "incoming/march/penguins.csv")
    out = project.root / "outputs" / "scored.parquet"
    res = cli("predict", project.name, f"{scheme}://incoming/march/penguins.csv", "--out", str(out), cwd=project.root)
    assert res.exit_code == 0, res.stdout + res.stderr
    assert pq.read_table(out).num_rows == 344
    res = cli("monitor", project.name, f"{scheme}://incoming/march/", "--json", cwd=project.root)
    assert res.exit_code == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert report["rows"] == 344 and report["data"] == f"{scheme}://incoming/march/"
    assert report["drift_share"] == 0.0  # the training data again: nothing drifted


def test_predict_and_monitor_read_new_data_from_a_bucket(project, s3, cli):
    predict_and_monitor_from(s3, "s3", project, cli)


def missing_and_empty_are_clear_errors(fs, scheme: str, project, cli) -> None:
    """A missing bucket (listing and `blase run`) and a prefix that matches nothing, each in one line."""
    fs.mkdir("empty-bucket")
    with pytest.raises(CloudError, match=rf"bucket {scheme}://no-such-bucket does not exist"):
        list_objects(f"{scheme}://no-such-bucket/data/*.csv")
    with pytest.raises(CloudError, match=rf"{scheme}://empty-bucket/data/\*\.csv matches no objects"):
        list_objects(f"{scheme}://empty-bucket/data/*.csv")
    _use_source(project, f"{scheme}://no-such-bucket/penguins/*.parquet")
    res = cli("run", "--set", "train.epochs=1", cwd=project.root)
    text = res.stdout + res.stderr
    assert res.exit_code == 1
    assert f"{scheme}://no-such-bucket does not exist" in text and "Traceback" not in text


def test_missing_bucket_and_empty_prefix_are_clear_errors(project, s3, cli):
    missing_and_empty_are_clear_errors(s3, "s3", project, cli)


def test_an_override_may_name_another_prefix_of_the_same_bucket_only(project, s3):
    _upload_penguins(s3, project, "lab-data2")
    _use_source(project, "s3://lab-data2/penguins/part-0.parquet")
    Pipeline(project, overrides=[*FAST, "data.source=s3://lab-data2/penguins/*.parquet"]).run(to_step="extract")
    with pytest.raises(ConfigError, match=r"is a bucket blase\.yaml does not name"):
        Pipeline(project, overrides=["data.source=s3://someone-elses/secrets.csv"]).run(to_step="extract")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_denied_access_names_the_credentials_tried(monkeypatch, tmp_path):
    """A moto server that checks signatures (INITIAL_NO_AUTH_ACTION_COUNT=0) refuses unknown keys."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with pytest.raises(CloudError, match=r"access denied to s3://locked/data/.*the environment \(AWS_ACCESS_KEY_ID\)"):
            list_objects("s3://locked/data/*.parquet")
    finally:
        server.terminate()
        server.wait(timeout=10)


gcs_endpoint, gcs = cloud_servers.gcs_endpoint, cloud_servers.gcs


def test_pipeline_reads_a_gcs_bucket_and_caches_on_its_generations(project, gcs):
    gcs.mkdir("gcs-lab")
    gcs.put(str(project.root / "data" / "penguins.csv"), "gcs-lab/raw/penguins.csv")
    _use_source(project, "gs://gcs-lab/raw/penguins.csv")
    first = Pipeline(project).run(to_step="extract")
    assert first.steps["extract"].rows_out == 344
    again = Pipeline(project).run(to_step="extract")
    assert "extract" in again.cached
    with pytest.raises(CloudError, match=r"bucket gs://no-such does not exist"):
        list_objects("gs://no-such/raw/*.csv")


def test_an_unreachable_endpoint_names_the_endpoint(project, monkeypatch, cli):
    pytest.importorskip("s3fs")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's standard variable: no retries
    _use_source(project, "s3://anywhere/data.csv")
    res = cli("run", cwd=project.root)
    text = res.stdout + res.stderr
    assert res.exit_code == 1 and "cannot reach http://127.0.0.1:1 to read s3://anywhere/data.csv" in text
    assert "internal error" not in text and "Traceback" not in text
