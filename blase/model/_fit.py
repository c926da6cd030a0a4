"""Fit any model kind on prepared shards into a train step's folder.

:func:`fit_model` is the one driver the train step, ``blase update`` and the benchmarks
use: it opens the shards (:class:`~blase.model.TrainingData`), gives the kind a scratch
folder, measures time and peak memory, saves the model, writes ``model.json`` and
``history.json``, logs the history to the run and returns the step's
:class:`~blase.steps.StepResult`.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from blase._fs import write_json_atomic
from blase.errors import BlaseError
from blase.model._contract import FitContext, FitReport, ModelKind
from blase.model._data import TrainingData
from blase.model._errors import TrainError
from blase.model._spec import MODEL_JSON, write_spec
from blase.steps import StepResult, measure_step

__all__ = ["HISTORY_JSON", "fit_model"]

logger = logging.getLogger(__name__)

HISTORY_JSON = "history.json"


def fit_model(kind: ModelKind, shards_dir: str | Path, ctx: FitContext) -> StepResult:
    """Fit ``kind`` on the shards in ``shards_dir`` and save it into ``ctx.out_dir``.

    Raises
    ------
    TrainError
        For shards without training rows, a kind that does not write the files it names,
        or whatever the kind raises about its data or options.
    """
    from blase.hashing import hash_config, hash_file

    data = TrainingData(shards_dir)
    if data.rows("train") == 0:
        raise TrainError(f"the train split in {data.manifest_file} has no rows",
                         hint="prepare more data, or give the train split a larger share")
    out = Path(ctx.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if ctx.init is not None and not kind.can_continue:
        ctx = dataclasses.replace(ctx, init=None)
    scratch = Path(tempfile.mkdtemp(prefix="blase-fit-", dir=ctx.tmp_dir))
    try:
        with measure_step() as meter:
            _fit_and_save(kind, data, dataclasses.replace(ctx, tmp_dir=scratch), out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = getattr(kind, "report_", None) or FitReport()
    spec = kind.describe(data)
    write_spec(out, spec)
    missing = [f for f in spec.files if not (out / f).is_file()]
    if missing:
        raise TrainError(f"model kind {kind.name!r} did not write {', '.join(missing)} into {out}",
                         hint="its save() must write every file its `files` names")
    if report.history is not None:
        write_json_atomic(out / HISTORY_JSON, report.history)
        _log(ctx.track, kind, spec.options, report)
    inputs = {"shards": hash_file(data.manifest_file),
              "config": hash_config({"model": kind.name, "options": spec.options, "seed": ctx.seed})}
    details: dict[str, Any] = {"task": data.task, "model": kind.name, **report.details}
    result = StepResult(
        step="train", inputs=report.inputs or inputs,
        outputs={name: hash_file(out / name) for name in [*spec.files, MODEL_JSON]},
        rows_in=data.rows("train") + data.rows("val"), rows_out=0, seconds=meter.seconds,
        peak_rss_bytes=meter.peak_rss_bytes, details=details,
    )
    result.warnings.extend(report.warnings)
    return result


def _fit_and_save(kind: ModelKind, data: TrainingData, ctx: FitContext, out: Path) -> None:
    """``kind.fit`` then ``kind.save``; a failure that is not a :class:`BlaseError` (a bug in
    a plugin, a library's own error) becomes a :class:`TrainError` naming the kind."""
    try:
        kind.fit(data, ctx)
        kind.save(out)
    except BlaseError:
        raise
    except Exception as exc:
        raise TrainError(f"model {kind.name!r} failed on {data.root}: {type(exc).__name__}: {exc}",
                         hint=f"check train.options in blase.yaml; if they are right, the {kind.name} model "
                         "kind has a bug (`blase --debug run` shows the traceback)") from exc


def _log(track: Any, kind: ModelKind, options: dict[str, Any], report: FitReport) -> None:
    """The kind's history into the run (as the torch trainer logs its epochs)."""
    if track is None:
        from blase.track import active_run

        track = active_run()
    if track is None or not getattr(track, "active", True):
        return
    track.log_event("train_start", model=kind.name, options=options)
    for row in report.history or []:
        step = row.get("round", row.get("epoch"))
        track.log_metrics({k: v for k, v in row.items() if k not in ("round", "epoch")
                           and isinstance(v, (int, float)) and not isinstance(v, bool)}, step=step)
    track.log_event("train_end", model=kind.name, **report.details)
