"""The conformance suite of the operation, source and drift_test kinds: it passes good plugins
and fails, by name, one that pickles, one that is not deterministic, and one whose state,
options or outcome do not round-trip (as tests/test_plugins.py does for step plugins)."""

from __future__ import annotations

import pytest

from blase.plugins import project_plugins
from blase.testing import check_plugin

OPERATION = '''
import base64, pickle, random
import pyarrow as pa
import pyarrow.compute as pc
from blase.plugins import Plugin
from blase.transform import Operation


class Offset(Operation):
    op_name = "offset"

    def __init__(self, columns: list[str] | None = None):
        self.columns = columns

    def fit(self, batches, *, exclude=()):
        total = n = 0
        for batch in batches:
            values = batch.column("x").drop_null()
            total += pc.sum(values).as_py() or 0.0
            n += len(values)
        self.offset_ = total / n
        LEARN
        return self

    def apply(self, table):
        self.check_fitted()
        return table.set_column(0, "x", pc.subtract(table["x"], USE))


plugin = Plugin(name="offset", kind="operation", target=":Offset")
'''

SOURCE = '''
import pickle, random
import pyarrow as pa
from pydantic import BaseModel, ConfigDict
from blase.extract import SourceReader
from blase.plugins import Plugin


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")
    OPTION


class Lines(SourceReader):
    name = "lines"
    config_model = Options

    def read(self, path, *, batch_rows):
        lines = path.read_text().splitlines()
        READ
        for start in range(0, len(lines), batch_rows):
            chunk = lines[start:start + batch_rows]
            yield pa.RecordBatch.from_pydict({"line": chunk, "n": [len(v) + NOISE for v in chunk]})

    def write_example(self, folder):
        path = folder / "example.lines"
        path.write_text("".join(f"row {i}\\n" for i in range(12)))
        return path


plugin = Plugin(name="lines", kind="source", target=":Lines", suffixes=(".lines",))
'''

DRIFT = '''
import pickle
import numpy as np
from blase.monitor import DriftOutcome, DriftTest
from blase.plugins import Plugin


class Shift(DriftTest):
    name = "shift"
    kinds = ("numeric",)

    def test(self, reference, current, *, seed):
        EXTRA
        shift = abs(current.values.mean() - reference.values.mean()) / (reference.values.std() or 1.0)
        return DriftOutcome(statistic=float(shift), drifted=bool(shift > 0.5), threshold=0.5, p_value=PVALUE)


plugin = Plugin(name="shift", kind="drift_test", target=":Shift")
'''


def _failed(project, body: str, **parts: str) -> dict[str, str]:
    for key, value in parts.items():
        body = body.replace(key, value)
    (project.root / "scripts" / "candidate.py").write_text(body)
    plugin = project_plugins(project.root, ["scripts/candidate.py"])[0]
    results = check_plugin(plugin)
    assert results[0].name == "loads" and results[0].passed, results[0].detail
    return {r.name: r.detail for r in results if not r.passed}


GOOD = {
    "operation": (OPERATION, {"LEARN": "pass", "USE": "self.offset_"}),
    "source": (SOURCE, {"OPTION": "size: int = 1", "READ": "pass", "NOISE": "0"}),
    "drift_test": (DRIFT, {"EXTRA": "pass", "PVALUE": "None"}),
}


@pytest.mark.parametrize("kind", GOOD)
def test_a_good_plugin_of_each_kind_passes(project, kind):
    body, parts = GOOD[kind]
    assert _failed(project, body, **parts) == {}


@pytest.mark.parametrize("kind, parts", [
    ("operation", {"LEARN": "self.blob_ = base64.b64encode(pickle.dumps({'a': 1})).decode()", "USE": "self.offset_"}),
    ("source", {"OPTION": "size: int = 1", "READ": "pickle.loads(pickle.dumps(lines))", "NOISE": "0"}),
    ("drift_test", {"EXTRA": "pickle.dumps(reference.values)", "PVALUE": "None"}),
])
def test_the_checker_fails_a_plugin_that_pickles(project, kind, parts):
    failed = _failed(project, GOOD[kind][0], **parts)
    assert "no_pickle" in failed and "pickle" in failed["no_pickle"]


@pytest.mark.parametrize("kind, parts, check", [
    ("operation", {"LEARN": "self.offset_ += random.random()", "USE": "self.offset_"}, "deterministic"),
    ("source", {"OPTION": "size: int = 1", "READ": "pass", "NOISE": "random.random()"}, "deterministic"),
    ("drift_test", {"EXTRA": "shift_noise = np.random.default_rng().random()\n        reference = "
                    "type(reference)(reference.column, reference.kind, reference.values + shift_noise)",
                    "PVALUE": "None"}, "numeric_deterministic"),
])
def test_the_checker_fails_a_plugin_that_is_not_deterministic(project, kind, parts, check):
    assert check in _failed(project, GOOD[kind][0], **parts)


@pytest.mark.parametrize("kind, parts, check", [
    # int keys come back from JSON as text: the reloaded operation applies another offset
    ("operation", {"LEARN": "self.by_key_ = {1: self.offset_}", "USE": "self.by_key_.get(1, 0.0)"},
     "state_round_trip"),
    ("source", {"OPTION": "size: object = object()", "READ": "pass", "NOISE": "0"}, "options_round_trip"),
    ("drift_test", {"EXTRA": "pass", "PVALUE": "1.5"}, "numeric_outcome"),
])
def test_the_checker_fails_state_options_or_outcomes_that_do_not_round_trip(project, kind, parts, check):
    failed = _failed(project, GOOD[kind][0], **parts)
    assert check in failed, failed


def test_the_checker_fails_unknown_options_accepted_and_a_misnamed_class(project):
    failed = _failed(project, SOURCE.replace('extra="forbid"', 'extra="allow"'),
                     OPTION="size: int = 1", READ="pass", NOISE="0")
    assert set(failed) == {"bad_options_refused"}
    failed = _failed(project, DRIFT.replace('name = "shift"', 'name = "shifted"'), EXTRA="pass", PVALUE="None")
    assert failed == {"contract": "the test is named 'shifted', the manifest 'shift'"}
