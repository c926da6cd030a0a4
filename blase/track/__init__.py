"""Track: record runs (params, metrics, tags, events, artifacts, hashes, resources) and query them.

Writing::

    from blase.track import Track

    with Track("baseline", params={"lr": 0.01}) as run:
        run.log_metric("loss", 0.3, step=1)

Reading::

    from blase.track import list_runs, load_run

    best = list_runs(where="status = 'finished'", sort="-acc", limit=5)
    run = load_run("3fa9")  # id prefix, name or "latest"

Each run is an append-only folder ``<project>/runs/<run_id>/`` (see ``_layout``); artifacts
are stored once by content hash in ``<project>/.blase/store``.
"""

from blase.track._index import RunFilter, RunIndex
from blase.track._indexed import AGGREGATES, IndexedRun, MetricStat, lower_is_better, read_histories
from blase.track._models import RunDetail, RunSummary
from blase.track._query import list_runs, load_run
from blase.track._store import ContentStore, StoredObject
from blase.track._writer import Track, active_run

__all__ = [
    "AGGREGATES",
    "ContentStore",
    "IndexedRun",
    "MetricStat",
    "RunDetail",
    "RunFilter",
    "RunIndex",
    "RunSummary",
    "StoredObject",
    "Track",
    "active_run",
    "list_runs",
    "load_run",
    "lower_is_better",
    "read_histories",
]
