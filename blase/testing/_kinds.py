"""Conformance checks of the ``operation``, ``source`` and ``drift_test`` plugin kinds.

Each kind yields small named checks (see :func:`blase.testing.plugin_checks`): the contract,
a JSON round trip of the options and of the learned state or output, the same input giving
the same output (and the same hash), no pickle anywhere (neither in what it saves nor called
while it works), and unknown options refused.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import pickle
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from blase.testing._files import options_checks

__all__ = ["drift_test_checks", "operation_checks", "source_checks"]

Check = Callable[[], str | None]
_PICKLE_HEADS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
_PICKLE_CALLS = ("dump", "dumps", "load", "loads")


@contextlib.contextmanager
def _pickle_watch() -> Iterator[list[str]]:
    """Record calls of ``pickle.dump(s)``/``load(s)`` made inside the block."""
    calls: list[str] = []
    saved = {name: getattr(pickle, name) for name in _PICKLE_CALLS}

    def spy(name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(f"pickle.{name}")
            return saved[name](*args, **kwargs)
        return call

    for name in _PICKLE_CALLS:
        setattr(pickle, name, spy(name))
    try:
        yield calls
    finally:
        for name, fn in saved.items():
            setattr(pickle, name, fn)


def _pickled_strings(value: Any) -> list[str]:
    """Strings inside a JSON value that hold a pickle (raw, latin-1 or base64)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _pickled_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _pickled_strings(v)]
    if not isinstance(value, str) or len(value) < 4:
        return []
    raw = value.encode("latin-1", "ignore")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    return [value[:24]] if raw.startswith(_PICKLE_HEADS) or decoded.startswith(_PICKLE_HEADS) else []


def _options_checks(impl: Any, *, from_signature: bool, given: dict[str, Any] | None = None
                    ) -> Iterator[tuple[str, Check]]:
    from blase.config import options_model

    yield from options_checks(options_model(impl, from_signature=from_signature), given)


def _table_hash(table: Any) -> str:
    """A hash of the table's schema and values: not of its buffers, whose chunking and bytes
    under nulls (what DuckDB leaves there) may differ between two equal tables."""
    import json

    from blase.hashing import hash_bytes

    text = json.dumps([str(table.schema), table.to_pylist()], default=str, sort_keys=True)
    return hash_bytes(text.encode())


# -- operation -----------------------------------------------------------------------------------


def operation_checks(plugin: Any, cls: Any) -> Iterator[tuple[str, Check]]:
    from blase.config import options_model
    from blase.testing._operation import check_operation, sample_table
    from blase.transform import Operation

    def contract() -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, Operation)):
            return f"{plugin.target} is not a blase.transform.Operation subclass"
        if cls.op_name != plugin.name:
            return f"op_name is {cls.op_name!r}, the manifest's name {plugin.name!r}"
        return None

    yield "contract", contract
    if not (isinstance(cls, type) and issubclass(cls, Operation)):
        return
    given, table = cls.example() or ({}, sample_table())
    yield from _options_checks(cls, from_signature=True, given=given)
    model = options_model(cls, from_signature=True)

    def make() -> Any:
        options = model(**given)
        return cls(**{k: getattr(options, k) for k in type(options).model_fields})

    seen: list[str] = []

    def fitted() -> tuple[Any, Any]:
        with _pickle_watch() as calls:
            op = make().fit(iter(table.to_batches()))
            out = op.apply(table)
        seen.extend(calls)
        return op, out

    def operation_contract() -> str | None:
        with _pickle_watch() as calls:
            try:
                check_operation(make(), table)
            except AssertionError as exc:
                return str(exc)
            finally:
                seen.extend(calls)
        return None

    def deterministic() -> str | None:
        (a, out_a), (b, out_b) = fitted(), fitted()
        if json.dumps(a.state(), sort_keys=True) != json.dumps(b.state(), sort_keys=True):
            return "two fits on the same data learned different state"
        return None if _table_hash(out_a) == _table_hash(out_b) else "the same input gave another output (hash)"

    def state_round_trip() -> str | None:
        op, out = fitted()
        again = cls.from_state(op.get_params(), json.loads(json.dumps(op.state())))
        return None if again.apply(table).equals(out) else "from_state(params, JSON state) applies differently"

    def no_pickle() -> str | None:
        op, _ = fitted()
        found = sorted(set(seen)) + [f"state holds a pickle ({s!r}...)" for s in _pickled_strings(op.state())]
        return None if not found else "pickle used: " + ", ".join(found)

    yield "operation_contract", operation_contract
    yield "deterministic", deterministic
    yield "state_round_trip", state_round_trip
    yield "no_pickle", no_pickle


# -- source --------------------------------------------------------------------------------------


def source_checks(plugin: Any, cls: Any) -> Iterator[tuple[str, Check]]:
    from blase.config import options_model
    from blase.extract import SourceReader

    def contract() -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, SourceReader)):
            return f"{plugin.target} is not a blase.extract.SourceReader subclass"
        return None if cls.name == plugin.name else f"the reader is named {cls.name!r}, the manifest {plugin.name!r}"

    yield "contract", contract
    if not (isinstance(cls, type) and issubclass(cls, SourceReader)):
        return
    yield from _options_checks(cls, from_signature=False)
    reader = cls(options_model(cls)() if cls.config_model is not None else None)
    folder = Path(tempfile.mkdtemp(prefix="blase-plugin-check-"))
    state: dict[str, Any] = {}

    def example() -> str | None:
        path = reader.write_example(folder)
        if not Path(path).is_file():
            return f"write_example returned {path}, which is not a file"
        state["path"] = Path(path)
        return None

    def read(batch_rows: int) -> Any:
        with _pickle_watch() as calls:
            batches = list(reader.read(state["path"], batch_rows=batch_rows))
        state.setdefault("calls", []).extend(calls)
        return batches

    def reads_batches() -> str | None:
        import pyarrow as pa

        if "path" not in state:
            return "no example file to read"
        batches = read(5)
        wrong = [type(b).__name__ for b in batches if not isinstance(b, pa.RecordBatch)]
        if wrong or not batches:
            return f"read() yielded {wrong or 'nothing'}, not record batches"
        if any(b.num_rows > 5 for b in batches):
            return f"read(batch_rows=5) yielded batches of {max(b.num_rows for b in batches)} rows"
        if any(not b.schema.equals(batches[0].schema) for b in batches):
            return "the batches of one file have different schemas"
        state["table"] = pa.Table.from_batches(batches)
        return None if state["table"].num_rows else "the example file gave no rows"

    def deterministic() -> str | None:
        import pyarrow as pa

        if "table" not in state:
            return "not read"
        again = pa.Table.from_batches(read(7))
        return None if _table_hash(again.combine_chunks()) == _table_hash(state["table"].combine_chunks()) \
            else "two reads of the same file gave other rows (hash)"

    def no_pickle() -> str | None:
        found = sorted(set(state.get("calls", [])))
        return None if not found else "pickle used while reading: " + ", ".join(found)

    yield "writes_example", example
    yield "reads_batches", reads_batches
    yield "deterministic", deterministic
    yield "no_pickle", no_pickle


# -- drift test ----------------------------------------------------------------------------------


def _samples(kind: str, shift: bool, seed: int) -> tuple[Any, Any]:
    import numpy as np

    from blase.monitor import DriftSample

    rng = np.random.default_rng(seed)
    if kind == "numeric":
        ref = rng.normal(0.0, 1.0, 400)
        cur = rng.normal(3.0, 1.0, 400) if shift else ref.copy()
    else:
        ref = rng.choice(np.array(["a", "b", "c"], dtype=object), 400, p=[0.6, 0.3, 0.1])
        cur = rng.choice(np.array(["a", "b", "c"], dtype=object), 400, p=[0.1, 0.3, 0.6]) if shift else ref.copy()

    def counts(values: Any) -> dict[Any, float]:
        keys, n = np.unique(values.astype(str) if kind != "numeric" else np.round(values), return_counts=True)
        return {(k if kind != "numeric" else float(k)): float(c) for k, c in zip(keys, n, strict=True)}

    return (DriftSample("x", kind, ref, counts(ref), True), DriftSample("x", kind, cur, counts(cur), True))


def drift_test_checks(plugin: Any, cls: Any) -> Iterator[tuple[str, Check]]:
    from blase.config import options_model
    from blase.monitor import DRIFT_TEST_KINDS as KINDS
    from blase.monitor import DriftTest, outcome_problem

    def contract() -> str | None:
        if not (isinstance(cls, type) and issubclass(cls, DriftTest)):
            return f"{plugin.target} is not a blase.monitor.DriftTest subclass"
        if cls.name != plugin.name:
            return f"the test is named {cls.name!r}, the manifest {plugin.name!r}"
        bad = [k for k in cls.kinds if k not in KINDS]
        return None if cls.kinds and not bad else f"kinds {cls.kinds!r}: each one of {', '.join(KINDS)}"

    yield "contract", contract
    if not (isinstance(cls, type) and issubclass(cls, DriftTest)):
        return
    yield from _options_checks(cls, from_signature=False)
    test = cls(options_model(cls)() if cls.config_model is not None else None)
    calls: list[str] = []

    def run(kind: str, shift: bool) -> Any:
        with _pickle_watch() as seen:
            outcome = test.test(*_samples(kind, shift, seed=7), seed=11)
        calls.extend(seen)
        return outcome

    for kind in [k for k in cls.kinds if k in KINDS]:
        yield f"{kind}_outcome", lambda kind=kind: outcome_problem(run(kind, True))
        yield f"{kind}_deterministic", lambda kind=kind: (
            None if run(kind, True) == run(kind, True) else "the same samples and seed gave another outcome")
        yield f"{kind}_same_data_not_drift", lambda kind=kind: (
            None if not run(kind, False).drifted else "identical reference and new values are called drift")
        yield f"{kind}_shift_is_drift", lambda kind=kind: (
            None if run(kind, True).drifted else "a gross shift (3 standard deviations, a reversed mix) is not drift")
    yield "no_pickle", lambda: None if not calls else "pickle used: " + ", ".join(sorted(set(calls)))
