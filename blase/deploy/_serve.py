"""``blase serve``: a deployed model behind HTTP, through the same path as ``blase predict``.

:class:`ModelService` holds the logic (no HTTP in it): it turns a JSON record, a JSON batch or a
CSV/Parquet upload into an Arrow table, checks it against the package's input schema, and scores
it with :class:`~blase.deploy.BatchScorer`, the transform and model ``blase predict`` uses.

A service started on ``NAME`` follows the registry: every request reads ``models/NAME/current``
(one small file, replaced atomically by ``blase promote``/``rollback``) and is answered whole
by the version it named, loaded once and kept. ``NAME@vN`` or a package folder pins a version.
"""

from __future__ import annotations

import io
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase._version import __version__
from blase.deploy._package import DeployError
from blase.deploy._predict import BatchNotes, BatchScorer, _family
from blase.deploy._registry import current_version, model_folder, resolve_model
from blase.errors import BlaseError
from blase.project import Project

__all__ = ["ModelService", "Prediction", "ServeError"]

#: What a JSON value must be for a column of each kind (see ``_family`` in ``_predict``).
_JSON_KINDS: dict[str, tuple[tuple[type, ...], str]] = {
    "number": ((int, float), "a number"),
    "text": ((str,), "a string"),
    "boolean": ((bool,), "true or false"),
    "datetime": ((str,), "an ISO date or time string"),
}
#: Upload formats by Content-Type.
UPLOAD_TYPES = {
    "text/csv": ".csv",
    "application/csv": ".csv",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-parquet": ".parquet",
    "application/parquet": ".parquet",
}


class ServeError(DeployError):
    """A prediction request the model cannot answer; ``status`` is its HTTP status."""

    def __init__(self, message: str, *, hint: str | None = None, status: int = 400) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class Prediction:
    """The answer to one request: the version that scored it and one dict per row."""

    model: str
    version: str
    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "predictions": self.rows,
                "warnings": self.warnings, "seconds": round(self.seconds, 6)}


class ModelService:
    """Answers prediction requests for one model of ``project``.

    ``ref`` is ``NAME`` (follows its current version), ``NAME@vN`` or a package folder (pinned).
    """

    def __init__(self, project: Project, ref: str, *, use_onnx: bool = False,
                 trust_package: bool = False) -> None:
        self.project = project
        self.use_onnx = use_onnx
        self.trust_package = trust_package
        first = resolve_model(project, ref, trust_package=trust_package)  # fails early on a bad ref
        pinned = "@" in ref or (Path(ref) / "package.json").is_file()
        self.ref = ref
        self.name = first.name
        self.follows = None if pinned else first.name
        self._scorers: dict[str, BatchScorer] = {first.version: BatchScorer(first, use_onnx=use_onnx)}
        self._pinned = first.version if pinned else None
        self._load_lock = threading.Lock()
        self.started = time.time()

    # ------------------------------------------------------------------ which version

    def scorer(self) -> BatchScorer:
        """The scorer of the version to answer with now (loaded on first use, then kept)."""
        version = self._pinned or self._current()
        found = self._scorers.get(version)
        if found is not None:
            return found
        with self._load_lock:
            if version not in self._scorers:
                package = resolve_model(self.project, f"{self.name}@{version}")
                self._scorers[version] = BatchScorer(package, use_onnx=self.use_onnx)
            return self._scorers[version]

    def _current(self) -> str:
        version = current_version(self.project, self.name)
        if version:
            return version
        versions = sorted((p.name for p in model_folder(self.project, self.name).glob("v*")
                           if p.name[1:].isdigit()), key=lambda v: int(v[1:]))
        if not versions:
            raise ServeError(f"model {self.name!r} has no version left to serve", status=503,
                             hint="deploy one with `blase deploy RUN --promote`")
        return versions[-1]

    # ------------------------------------------------------------------ what it serves

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.name, "version": self.scorer().package.version}

    def info(self) -> dict[str, Any]:
        package = self.scorer().package
        return {
            "model": package.name,
            "version": package.version,
            "follows_current": self.follows is not None,
            "task": package.task,
            "label": package.label,
            "classes": package.classes,
            "input_schema": package.input_schema,
            "features": package.features,
            "metrics": package.metrics,
            "run_id": package.run_id,
            "scorer": "onnx" if self.use_onnx and package.has_onnx else "native",
            "blase_version": __version__,
            "uptime_s": round(time.time() - self.started, 3),
        }

    # ------------------------------------------------------------------ predictions

    def predict_json(self, payload: Any) -> Prediction:
        """A JSON object (one record) or a JSON array of objects (a batch)."""
        scorer = self.scorer()
        records = [payload] if isinstance(payload, dict) else payload
        if not isinstance(records, list) or not records:
            raise ServeError("the request body must be a JSON object (one record) or a non-empty "
                             "array of objects (a batch)",
                             hint='send e.g. {"bill_length_mm": 39.1, "island": "Torgersen"}')
        table = records_table(records, scorer.package.input_schema)
        return self._score(scorer, [table], source="the request")

    def predict_upload(self, body: bytes, content_type: str) -> Prediction:
        """A CSV or Parquet file, read as ``blase predict`` reads one."""
        from blase.extract import Extract

        suffix = UPLOAD_TYPES.get(content_type)
        if suffix is None:
            raise ServeError(f"cannot read a request of Content-Type {content_type!r}", status=415,
                             hint="send application/json, text/csv or application/vnd.apache.parquet")
        scorer = self.scorer()
        source = f"the uploaded {suffix[1:].upper()} file"
        with tempfile.TemporaryDirectory(prefix="blase-serve-") as tmp:
            path = Path(tmp) / f"upload{suffix}"
            path.write_bytes(body)
            try:
                extract = Extract.like_training(str(path), scorer.package.info.get("extract_options"),
                                                project=self.project)
                schema = extract.schema()
            except BlaseError:
                raise
            except Exception as exc:  # pyarrow's reader: a file that is not what it says
                raise ServeError(f"{source} cannot be read: {exc}",
                                 hint=f"check that the body is a whole {suffix[1:]} file") from None
            scorer.check(schema, source=source)
            return self._score(scorer, (t for t in _tables(extract)), source=source)

    def _score(self, scorer: BatchScorer, tables: Any, *, source: str) -> Prediction:
        import pyarrow as pa

        start = time.perf_counter()
        notes: list[str] = []
        changed = BatchNotes()
        parts = []
        rows = 0
        for table in tables:
            if not parts:
                notes = scorer.check(table.schema, source=source)
            result, batch_notes = scorer.score(table, source=source, first_row=rows)
            changed.add(batch_notes)
            parts.append(result)
            rows += result.num_rows
        if not rows:
            raise ServeError(f"{source} has no rows to predict", status=422)
        out = pa.concat_tables(parts).drop_columns(["row_id"]).to_pylist()
        package = scorer.package
        return Prediction(package.name, package.version, out, notes + changed.messages(scorer.means),
                          time.perf_counter() - start)


def _tables(extract: Any) -> Any:
    import pyarrow as pa

    for batch in extract.batches():
        yield pa.Table.from_batches([batch])


def records_table(records: list[Any], input_schema: dict[str, str]) -> Any:
    """An Arrow table of JSON records, each column typed as the model's input schema says.

    A value of the wrong kind, or a record without a column the model needs, is refused with
    the record's index and the column's name; columns the model does not use pass through.
    """
    import pyarrow as pa

    columns: dict[str, list[Any]] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ServeError(f"record {i} is {type(record).__name__}, not a JSON object", status=400,
                             hint="send each record as {\"column\": value, ...}")
        missing = [c for c in input_schema if c not in record]
        if missing:
            raise ServeError(f"record {i} is missing column(s) {', '.join(map(repr, missing))} that the "
                             "model needs", status=422,
                             hint=f"the model was trained on: {', '.join(input_schema)} (send null for "
                             "a missing value)")
        for key in record:
            columns.setdefault(key, [None] * i)
        for key, values in columns.items():
            values.append(record.get(key))
    arrays = {}
    for name, values in columns.items():
        want = input_schema.get(name)
        arrays[name] = _column(name, values, want, _family(want) if want else None)
    return pa.table(arrays)


def _column(name: str, values: list[Any], want: str | None, family: str | None) -> Any:
    import pyarrow as pa

    allowed = _JSON_KINDS.get(family or "")
    if allowed is not None:
        kinds, words = allowed
        for i, value in enumerate(values):
            bad = value is not None and (not isinstance(value, kinds)
                                         or (family == "number" and isinstance(value, bool)))
            if bad:
                raise ServeError(f"record {i}, column {name!r}: {value!r} is not {words} (the model was "
                                 f"trained on {want})", status=422,
                                 hint=f"send {name!r} as {words}, or null for a missing value")
    try:
        array = pa.array(values)
        if want is not None:
            array = array.cast(_arrow_type(want) or array.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ServeError(f"column {name!r} cannot be read as {want or 'one type'}: {exc}", status=422,
                         hint=f"send every value of {name!r} as one kind of JSON value") from None
    return array


def _arrow_type(name: str) -> Any:
    import pyarrow as pa

    try:
        return pa.type_for_alias(name)
    except (ValueError, KeyError):
        return None  # e.g. timestamp[us, tz=UTC]: let Arrow's inferred type through


def read_json(body: bytes) -> Any:
    """The request body as JSON, or a 400 naming where it broke."""
    import json

    try:
        return json.load(io.BytesIO(body))
    except ValueError as exc:
        raise ServeError(f"the request body is not valid JSON: {exc}",
                         hint="send a JSON object (one record) or an array of objects") from None
