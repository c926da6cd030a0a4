"""`blase serve`: a real server on a free port, a real HTTP client (urllib), real penguins models.

Every answer is checked against `blase predict` on the version the answer names.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from blase.deploy import ModelService, make_model_server, predict, promote, rollback
from blase.pipeline import Pipeline


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Two versions of one model (v2 trained for fewer epochs, so it scores differently), v1
    current, the raw rows, each version's `blase predict` output, and a live server."""
    from blase.scaffold import create_project

    project = create_project(tmp_path_factory.mktemp("serve") / "peng")
    Pipeline(project, overrides=["train.model=mlp", "train.epochs=10"]).run()
    Pipeline(project, overrides=["train.model=mlp", "train.epochs=2", "deploy.always=true"]).run()
    promote(project, "peng", "v1")
    out = tmp_path_factory.mktemp("predicted")
    expected = {v: pq.read_table(predict(project, f"peng@{v}", project.root / "data" / "penguins.csv",
                                         out / f"{v}.parquet").output).to_pylist() for v in ("v1", "v2")}
    assert expected["v1"][0]["prob_Adelie"] != pytest.approx(expected["v2"][0]["prob_Adelie"])
    rows = pacsv.read_csv(project.root / "data" / "penguins.csv").drop_columns(["species"]).to_pylist()
    server = make_model_server(ModelService(project, "peng"), port=0, max_body=1_000_000)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield project, f"http://127.0.0.1:{server.server_address[1]}", rows, expected
    server.shutdown()
    server.server_close()


def _call(url: str, body: bytes | None = None, kind: str = "application/json") -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": kind} if body is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def _post(base: str, payload, kind: str = "application/json") -> tuple[int, dict, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _call(f"{base}/predict", body, kind)


def _same_as_predict(answer: dict, expected: dict, first: int = 0) -> None:
    want = expected[answer["version"]][first:first + len(answer["predictions"])]
    assert [p["prediction"] for p in answer["predictions"]] == [w["prediction"] for w in want]
    for cls in ("Adelie", "Chinstrap", "Gentoo"):
        np.testing.assert_allclose([p[f"prob_{cls}"] for p in answer["predictions"]],
                                   [w[f"prob_{cls}"] for w in want], rtol=1e-6, atol=1e-9)


def test_health_and_model_info(served):
    _, base, _, _ = served
    status, health, headers = _call(f"{base}/health")
    assert status == 200 and health == {"status": "ok", "model": "peng", "version": "v1"}
    assert headers["X-Blase-Model-Version"] == "v1"
    status, info, _ = _call(f"{base}/model")
    assert status == 200 and info["version"] == "v1" and info["follows_current"] is True
    assert info["task"] == "multiclass" and info["classes"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert info["input_schema"]["bill_length_mm"] == "double" and "species" not in info["input_schema"]
    assert "accuracy" in info["metrics"]


def test_one_record_is_scored_as_blase_predict_scores_it(served):
    _, base, rows, expected = served
    status, answer, headers = _post(base, rows[0])
    assert status == 200 and answer["version"] == headers["X-Blase-Model-Version"] == "v1"
    assert len(answer["predictions"]) == 1
    _same_as_predict(answer, expected)


def test_json_batch_csv_and_parquet_uploads_match_blase_predict(served):
    project, base, rows, expected = served
    status, answer, _ = _post(base, rows)
    assert status == 200 and len(answer["predictions"]) == 344
    _same_as_predict(answer, expected)
    csv = (project.root / "data" / "penguins.csv").read_bytes()
    status, answer, _ = _post(base, csv, "text/csv")
    assert status == 200 and len(answer["predictions"]) == 344
    assert answer["predictions"][0]["truth"] == "Adelie"  # the label column rides along, as in predict
    _same_as_predict(answer, expected)
    import io

    import pyarrow as pa

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows[100:150]), sink)
    status, answer, _ = _post(base, sink.getvalue(), "application/vnd.apache.parquet")
    assert status == 200 and len(answer["predictions"]) == 50
    _same_as_predict(answer, expected, first=100)


def test_bad_requests_get_a_clear_4xx(served):
    _, base, rows, _ = served
    record = dict(rows[0])
    del record["island"]
    status, answer, _ = _post(base, [rows[1], record])
    assert status == 422 and answer["error"].startswith("record 1 is missing column(s) 'island'")
    assert "send null for a missing value" in answer["hint"]

    status, answer, _ = _post(base, {**rows[0], "body_mass_g": "heavy"})
    assert status == 422
    assert answer["error"] == "record 0, column 'body_mass_g': 'heavy' is not a number (the model was trained on int64)"

    status, answer, _ = _post(base, {**rows[0], "flipper_length_mm": 181.5})  # a fraction in an int column
    assert status == 422 and "'flipper_length_mm'" in answer["error"]

    csv = b"island,bill_length_mm\nDream,40.1\n"
    status, answer, _ = _post(base, csv, "text/csv")
    assert status == 422 and "the uploaded CSV file is missing column(s) 'bill_depth_mm'" in answer["error"]

    assert _post(base, b"{not json")[0] == 400
    assert _post(base, [])[0] == 400
    assert _post(base, [1, 2])[1]["error"] == "record 0 is int, not a JSON object"
    status, answer, _ = _post(base, b"x", "application/xml")
    assert status == 415 and "text/csv" in answer["hint"]
    status, answer, _ = _post(base, b"x" * 1_000_001, "text/csv")
    assert status == 413 and "--max-body" in answer["hint"]
    assert _call(f"{base}/nope")[0] == 404
    assert _call(f"{base}/predict")[0] == 405
    # the server still answers well after all that
    assert _post(base, rows[0])[0] == 200


def test_requests_follow_promote_and_rollback_without_a_torn_answer(served):
    project, base, rows, expected = served
    answers: list[tuple[str, dict]] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            status, answer, headers = _post(base, rows[:20])
            if status != 200:
                failures.append(f"{status}: {answer}")
            answers.append((headers.get("X-Blase-Model-Version", ""), answer))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        promote(project, "peng", "v2")
        after_promote = _post(base, rows[:20])[1]
        rollback(project, "peng")
        after_rollback = _post(base, rows[:20])[1]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert after_promote["version"] == "v2" and after_rollback["version"] == "v1"
    _same_as_predict(after_promote, expected)
    assert answers
    for version, answer in answers:  # each answer is whole: one version, that version's scores
        assert answer["version"] == version
        _same_as_predict(answer, expected)


def test_a_pinned_version_ignores_promotions(served):
    project, _, rows, expected = served
    service = ModelService(project, "peng@v2")
    promote(project, "peng", "v1")
    answer = service.predict_json(rows[0]).to_json()
    assert answer["version"] == "v2"
    _same_as_predict(answer, expected)


def test_cli_binds_loopback_and_refuses_an_unknown_model(served, blase_exe):
    project, _, _, _ = served
    bad = blase_exe("serve", "nope", "--project", str(project.root))
    assert bad.exit_code == 1 and "no model named 'nope'" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
    exe = Path(sys.executable).with_name("blase")
    proc = subprocess.Popen([str(exe), "serve", "peng", "--port", "0", "--project", str(project.root)],
                            stdout=subprocess.PIPE, text=True, env={"COLUMNS": "300", "PATH": str(exe.parent)})
    try:
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].split(":", 2)
        assert url[1] == "//127.0.0.1"
        base = f"http://127.0.0.1:{url[2].split(':')[0]}"
        assert _call(f"{base}/health")[1]["model"] == "peng"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
