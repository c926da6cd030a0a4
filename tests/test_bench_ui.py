"""bench/ui.py's bulk import into MLflow's SQLite store reads back through MLflow's own store code
exactly as the generated runs: every run's params, latest values and each metric's history, a
search sorted by a metric, a filter. (A fast import that MLflow read wrongly would make the
benchmark's comparison meaningless.)"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("mlflow")

BENCH = Path(__file__).resolve().parents[1] / "bench" / "ui.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_ui", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # mlflow's schema migrations take ~10 s
def test_the_bulk_import_reads_back_through_mlflow(tmp_path):
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    bench = _bench()
    runs = bench.make_runs(12, 4, 7, 3, seed=5)
    exps, phases = bench.write_mlflow(tmp_path / "mlflow.db", tmp_path / "art", runs, 4, 7, 3)
    assert not (tmp_path / "mlflow.db.partial").exists() and set(phases) == {"rows", "indexes"}
    con = sqlite3.connect(tmp_path / "mlflow.db")  # mlflow's indexes are back, its schema unchanged
    indexes = {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'metrics'")}
    assert {"index_metrics_run_uuid", "index_metrics_run_uuid_key_step"} <= indexes
    con.close()
    store = SqlAlchemyStore(f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "art"))
    for r in runs:
        got = store.get_run(r["id"])
        assert got.info.experiment_id == exps[r["project"]] and got.info.run_name == r["name"]
        assert got.data.params == {k: str(v) for k, v in r["params"].items()}
        for j, key in enumerate(bench.metric_names(4)):
            assert got.data.metrics[key] == r["values"][j, -1]
            history = store.get_metric_history(r["id"], key)
            assert [(m.step, m.value) for m in history] == list(enumerate(r["values"][j].tolist()))
    best = store.search_runs(exps, "", 1, max_results=3, order_by=["metrics.m03 DESC"])
    assert [r.info.run_id for r in best] == [r["id"] for r in sorted(runs, key=lambda r: -r["values"][3, -1])[:3]]
    adam = store.search_runs(exps, "metrics.m01 > 0.5 and params.optimizer = 'adam'", 1, max_results=50)
    assert {r.info.run_id for r in adam} == {r["id"] for r in runs
                                             if r["values"][1, -1] > 0.5 and r["params"]["optimizer"] == "adam"}
    store.engine.dispose()
