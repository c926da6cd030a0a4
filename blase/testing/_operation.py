"""Conformance checks for plugin authors, in the spirit of scikit-learn's ``check_estimator``.

Run :func:`check_operation` in your tests on every transform operation you write::

    from blase.testing import check_operation

    def test_my_operation():
        check_operation(MyOperation(factor=2.0))

It raises ``AssertionError`` naming the first broken rule of the contract that
:class:`blase.transform.Operation` documents.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

__all__ = ["check_operation", "sample_table"]


def sample_table(rows: int = 200, seed: int = 0) -> pa.Table:
    """A small table with the column kinds operations act on, nulls included.

    Columns: ``x`` (float64, ~10% nulls), ``y`` (int64), ``z`` (float64 with a spread),
    ``cat`` (string, 4 categories, nulls), ``city`` (string, 12 categories),
    ``when`` (timestamp), ``label`` (int64).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.normal(10, 3, rows)
    x_mask = rng.random(rows) < 0.1
    cats = np.array(["a", "b", "c", "d"])[rng.integers(0, 4, rows)].astype(object)
    cats[rng.random(rows) < 0.08] = None
    start = datetime(2024, 1, 1)
    return pa.table(
        {
            "x": pa.array(x, pa.float64(), mask=x_mask),
            "y": pa.array(rng.integers(0, 50, rows), pa.int64()),
            "z": pa.array(rng.exponential(5, rows), pa.float64()),
            "cat": pa.array(list(cats), pa.string()),
            "city": pa.array([f"city{int(v)}" for v in rng.zipf(1.6, rows) % 12], pa.string()),
            "when": pa.array([start + timedelta(hours=int(h)) for h in rng.integers(0, 24 * 400, rows)],
                             pa.timestamp("us")),
            "label": pa.array(rng.integers(0, 2, rows), pa.int64()),
        }
    )


def _fail(op: Any, rule: str, detail: str) -> AssertionError:
    return AssertionError(f"{type(op).__name__} breaks the operation contract: {rule}: {detail}")


def _loose(table: pa.Table) -> pa.Table:
    """The table with every field nullable (DuckDB and Arrow disagree on the flag only)."""
    return table.cast(pa.schema([f.with_nullable(True) for f in table.schema]))


def _fit(op: Any, table: pa.Table, exclude: tuple[str, ...], rows: int | None) -> Any:
    """Fit as Transform does: built-ins get ``exclude``; an operation that overrides
    ``fit`` gets an iterator of record batches, its documented input."""
    from blase.transform import Operation

    batches = iter(table.to_batches(max_chunksize=rows))
    if type(op).fit is not Operation.fit:
        return op.fit(batches)
    return op.fit(batches if rows else table, exclude=exclude)


def _close(a: Any, b: Any, rel: float = 1e-9) -> bool:
    """Equal, floats within ``rel`` (a sum over batches may round differently)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, rel) for x, y in zip(a, b, strict=True))
    return _same(a, b)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # e.g. numpy arrays: compare their identity instead
        return a is b


def check_operation(op: Any, data: pa.Table | None = None, *, exclude: tuple[str, ...] = ("label",)) -> None:
    """Check that ``op`` (an unfitted operation) follows the operation contract.

    Parameters
    ----------
    op:
        An instance of a :class:`blase.transform.Operation` subclass, not yet fitted.
    data:
        A table to fit and apply on (default :func:`sample_table`); name columns of it in
        ``op``'s parameters.
    exclude:
        Columns treated as the label/key (not picked by default).

    Checks
    ------
    1. ``__init__`` stores its parameters only: ``get_params()`` gives back every argument
       unchanged, there are no other public attributes, nothing ends in ``_`` yet, and
       ``type(op)(**op.get_params())`` builds an equal operation.
    2. Applying before fitting raises ``NotFittedError`` (a ``TransformError``).
    3. ``fit`` returns ``self``, does not change the parameters, and learns at least one
       attribute; every new public attribute ends in ``_``.
    4. ``state()`` is JSON, and ``from_state(params, json.loads(json.dumps(state)))``
       applies exactly as the original (bit for bit).
    5. ``apply`` is deterministic, does not modify its input, keeps the rows (or, when
       ``preserves_rows`` is False, never adds any), and its schema is ``output_schema``.
    6. Fitting on the data cut in small batches gives the same state as fitting on it
       whole (the out-of-core fit equals the in-memory one; floats within 1e-9 relative,
       since a sum over batches may round differently).
    7. When the operation has a SQL form, running it in DuckDB gives the same table.
    """
    from blase.errors import TransformError
    from blase.transform import NotFittedError, Operation, query_batch

    if not isinstance(op, Operation):
        raise AssertionError(f"{type(op).__name__} is not a blase.transform.Operation")
    table = sample_table() if data is None else data

    # 1. parameters only
    params = op.get_params()
    public = {k for k in vars(op) if not k.startswith("_")}
    if public != set(params):
        raise _fail(op, "__init__ must store exactly its parameters",
                    f"attributes {sorted(public)} vs parameters {sorted(params)}")
    learned = [k for k in public if k.endswith("_")]
    if learned or op.is_fitted:
        raise _fail(op, "__init__ must not learn anything", f"found {learned}")
    clone = type(op)(**copy.deepcopy(params))
    if clone.get_params().keys() != params.keys() or not all(
        _same(clone.get_params()[k], v) or callable(v) for k, v in params.items()
    ):
        raise _fail(op, "type(op)(**op.get_params()) must rebuild it", f"{clone!r} != {op!r}")

    # 2. unfitted apply
    try:
        op.apply(table)
    except NotFittedError:
        pass
    except Exception as exc:
        raise _fail(op, "apply before fit must raise NotFittedError", f"got {type(exc).__name__}: {exc}") from exc
    else:
        raise _fail(op, "apply before fit must raise NotFittedError", "it returned a table")

    # 3. fit
    before = copy.deepcopy(params)
    returned = _fit(op, table, exclude, rows=None)
    if returned is not op:
        raise _fail(op, "fit must return self", f"returned {type(returned).__name__}")
    if not all(_same(op.get_params()[k], v) or callable(v) for k, v in before.items()):
        raise _fail(op, "fit must not change the parameters", f"{before} -> {op.get_params()}")
    new = {k for k in vars(op) if not k.startswith("_")} - set(params)
    bad = sorted(k for k in new if not k.endswith("_"))
    if bad:
        raise _fail(op, "learned attributes must end in '_'", f"found {bad}")
    if not op.is_fitted:
        raise _fail(op, "fit must learn at least one attribute ending in '_'", "none found")

    # 4. state round trip
    state = op.state()
    try:
        text = json.dumps(state)
    except (TypeError, ValueError) as exc:
        raise _fail(op, "state() must be JSON", str(exc)) from exc
    reloaded = type(op).from_state(op.get_params(), json.loads(text))
    snapshot = table.select(table.column_names)
    out = op.apply(table)
    if not reloaded.apply(table).equals(out):
        raise _fail(op, "a reloaded operation must apply exactly as the original",
                    "from_state(params, json state).apply(data) differs")

    # 5. apply
    if not op.apply(table).equals(out):
        raise _fail(op, "apply must be deterministic", "two calls gave different tables")
    if not table.equals(snapshot):
        raise _fail(op, "apply must not modify its input", "the input table changed")
    if op.preserves_rows and out.num_rows != table.num_rows:
        raise _fail(op, "apply must keep the rows", f"{table.num_rows} rows in, {out.num_rows} out")
    if out.num_rows > table.num_rows and not op.adds_rows:
        raise _fail(op, "apply must never add rows", f"{table.num_rows} rows in, {out.num_rows} out")
    declared = op.output_schema(table.schema)
    if not declared.equals(out.schema):
        raise _fail(op, "output_schema must be the schema apply returns",
                    f"declared {declared}, got {out.schema}")
    # applying batch by batch equals applying at once (no cross-row state in apply)
    if op.preserves_rows:
        parts = [op.apply(pa.Table.from_batches([b])) for b in table.to_batches(max_chunksize=37)]
        if not pa.concat_tables(parts).equals(out):
            raise _fail(op, "apply must treat each batch alone", "batch-wise apply differs")

    # 6. batched fit equals whole fit
    other = type(op)(**op.get_params())
    _fit(other, table, exclude, rows=29)
    if not _close(other.state(), state):
        raise _fail(op, "fitting on batches must equal fitting on the whole data",
                    f"{other.state()} != {state}")

    # 7. SQL form
    stage = op.sql(table.schema)
    if stage is not None:
        try:
            via_sql = query_batch(table, stage)
        except TransformError:
            raise
        except Exception as exc:
            raise _fail(op, "sql() must be valid DuckDB SQL", str(exc)) from exc
        if not _loose(via_sql).equals(_loose(out)):
            raise _fail(op, "the SQL form must give the same table as apply", "they differ")
