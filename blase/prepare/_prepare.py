"""The prepare step: Parquet in (transformed, or raw plus a fitted transform that prepare
applies on the way, see :mod:`blase.prepare._feed`), split ``.npy`` shards and a manifest out.

Passes over the data, all through DuckDB under the step's memory budget (1 and 2 are the
checks of :mod:`blase.prepare._plan`):

1. one aggregate query: row count, nulls (and NaNs) per feature and in the label, the
   label's approximate distinct count;
2. classification only: the label's classes and their counts (``GROUP BY``);
3. stratified only: a window query over ``(label, hash, row index)`` that finds, per class,
   the last row of the train and val parts (see :mod:`blase.prepare._split`);
4. the stream: features cast to ``FLOAT`` (a final one-hot's source columns as they are,
   turned into codes in numpy), the label, and the split of each row, fetched in Arrow
   record batches in file order and appended to per-split shard writers, whose bytes a
   writer thread puts on disk while the next batch is built.

Everything is written into a temporary sibling folder that is renamed into place at the
end, so a crash or a full disk never leaves a manifest that lists a half-written shard.
"""

from __future__ import annotations

import errno
import glob
import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blase._duck import budget_note, connect, sql_ident, sql_quote
from blase._fs import disk_cause, replace_dir
from blase.errors import PrepareError
from blase.prepare._feed import ROW_ID, Feed, OneHotCodes, open_feed
from blase.prepare._manifest import (
    MANIFEST_NAME,
    Layout,
    Manifest,
    OneHotGroup,
    ShardInfo,
    TensorGroup,
)
from blase.prepare._parts import RowSink, fill_parts
from blase.prepare._plan import MAX_CLASSES_INTEGER, Plan, TaskName, class_key, make_plan
from blase.prepare._shards import SplitWriter, WriteBehind, WrittenShard
from blase.prepare._split import (
    SPLITS,
    Ratios,
    key_hash_sql,
    row_hash_sql,
    split_case_sql,
    stratified_case_sql,
    stratified_cuts,
)
from blase.prepare._tensor import tensor_block
from blase.progress import progress
from blase.resources import memory_budget
from blase.steps import StepResult, measure_step

if TYPE_CHECKING:
    from blase.executor import RayExecutor
    from blase.transform import Transform

__all__ = ["MAX_CLASSES_INTEGER", "Prepare"]

logger = logging.getLogger(__name__)

#: Largest float32 matrix prepare builds per batch (see ``_fill``).
MATRIX_BYTES = 16 << 20

_RESERVED = ("file_index", "file_row_number", "__idx")


def _imputed(transform: Transform | None) -> frozenset[str]:
    """The columns an ``impute`` operation of ``transform`` fills."""
    ops = transform.operations if transform is not None else []
    return frozenset(c for op in ops if getattr(op, "op_name", None) == "impute"
                     for c in getattr(op, "columns_", ()) or ())


def _source_files(source: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of a source: a file, a folder (recursively) or a glob."""
    text = os.fspath(source)
    p = Path(text)
    if p.is_file():
        files = [p]
    elif p.is_dir():
        files = sorted(
            f for f in p.rglob("*.parquet") if f.is_file() and not f.name.startswith(".")
        )
    elif any(ch in text for ch in "*?["):
        files = sorted(Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file())
    else:
        raise PrepareError(
            f"prepare source {text} does not exist",
            hint="run the transform step first, or pass the folder of Parquet files it wrote",
        )
    if not files:
        raise PrepareError(
            f"no Parquet files in {text}",
            hint="prepare reads the Parquet output of the transform step; run it first",
        )
    bad = [f for f in files if f.suffix.lower() != ".parquet"]
    if bad:
        raise PrepareError(
            f"prepare reads Parquet, but {bad[0]} is not a .parquet file",
            hint="run extract/transform first; they write Parquet that prepare reads",
        )
    return files


def _arrow_reader(result: Any, batch_rows: int) -> Any:
    """A ``pyarrow.RecordBatchReader`` over a relation (DuckDB 1.x and 2.x names)."""
    for name in ("to_arrow_reader", "fetch_arrow_reader", "record_batch"):
        to_reader = getattr(result, name, None)
        if to_reader is not None:
            return to_reader(batch_rows)
    raise AttributeError("this DuckDB has no Arrow batch reader")  # pragma: no cover


def _ratios(split: Any) -> Ratios:
    if hasattr(split, "train") and hasattr(split, "val"):
        values = (float(split.train), float(split.val), float(split.test))
    elif isinstance(split, dict):
        values = (
            float(split.get("train", 0.8)),
            float(split.get("val", 0.1)),
            float(split.get("test", 0.1)),
        )
    else:
        try:
            values = tuple(float(v) for v in split)
        except TypeError:
            values = ()
        if len(values) == 2:
            values = (values[0], values[1], 0.0)
    if (
        len(values) != 3
        or any(v < 0 for v in values)
        or values[0] <= 0
        or abs(sum(values) - 1) > 1e-6
    ):
        raise PrepareError(
            f"split {split!r} must be three shares (train, val, test) that add up to 1, with train > 0",
            hint="e.g. split=(0.8, 0.1, 0.1) or prepare: split: {train: 0.8, val: 0.1, test: 0.1}",
        )
    return Ratios(*values)


def _shard_info(shard: WrittenShard, **extra: Any) -> ShardInfo:
    return ShardInfo(file=shard.file, labels_file=shard.labels_file, rows=shard.rows, hash=shard.hash,
                     labels_hash=shard.labels_hash, ids_file=shard.ids_file,
                     codes_file=shard.codes_file, codes_hash=shard.codes_hash,
                     tensor_file=shard.tensor_file, tensor_hash=shard.tensor_hash, **extra)


def _tensor_groups(tensors: dict[str, list[int]]) -> list[TensorGroup]:
    groups, offset = [], 0
    for column, positions in tensors.items():
        groups.append(TensorGroup(column=column, features=positions, offset=offset))
        offset += len(positions)
    return groups


def _tensor_matrix(batch: Any, first: int, widths: list[int]) -> np.ndarray | None:
    """The uint8 ``[n, sum(widths)]`` values of the batch's tensor columns (from ``first``)."""
    if not widths:
        return None
    blocks = [tensor_block(batch.column(first + k), w) for k, w in enumerate(widths)]
    # a copy: the writer thread still writes it after the Arrow batch is gone
    return np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0].copy()


def _transform_digest(transform: Transform) -> str:
    """The fitted transform's content hash (its saved JSON; for one that cannot be saved,
    such as one calling a nested function, its operations' names and states)."""
    from blase.errors import TransformError
    from blase.hashing import hash_config

    try:
        return hash_config(transform.to_json())
    except TransformError:
        return hash_config([[op.op_name, repr(op.state())] for op in transform.operations])


class Prepare:
    """Split transformed data and write ready-to-train shards.

    Parameters
    ----------
    label:
        The column to predict.
    features:
        Feature columns, in this order (default: every column but the label and the key).
        Each must be numeric or boolean and free of nulls and NaNs.
    key:
        A column whose value decides a row's split (rows with the same key share a split,
        and a row keeps its split when rows are added or reordered). Default: the row's
        position in the source.
    split:
        ``(train, val, test)`` shares, a dict, or a :class:`blase.config.SplitConfig`.
    seed:
        Seed of the split hash.
    stratify:
        Keep each class's share the same in every split (classification only).
    shard_rows:
        Rows per shard file (the last shard of a split may hold fewer).
    task:
        ``"binary"``, ``"multiclass"``, ``"classification"`` (binary or multiclass from the
        number of classes), ``"regression"``, or ``None`` to infer: a text or boolean label,
        or an integer label with at most :data:`MAX_CLASSES_INTEGER` (20) distinct values, is
        classification; any other number is regression.
    drop_null_label:
        Drop rows whose label is null (counted as rejected) instead of failing.
    batch_rows:
        Rows per Arrow batch read from DuckDB (default: sized from the memory budget). It
        changes memory use and speed, never the output.
    classes:
        Fix the classes, in code order (e.g. a deployed model's), so that data holding only
        some of them gets the same codes; a label value outside the list is an error.
        Classification only; give ``task`` with it.
    """

    step = "prepare"

    def __init__(
        self,
        label: str,
        features: list[str] | None = None,
        key: str | None = None,
        split: Any = (0.8, 0.1, 0.1),
        seed: int = 42,
        stratify: bool = False,
        shard_rows: int = 262_144,
        task: TaskName | None = None,
        *,
        drop_null_label: bool = False,
        batch_rows: int | None = None,
        classes: list[Any] | None = None,
    ) -> None:
        self.label = label
        self.features = features
        self.key = key
        self.split = split
        self.seed = seed
        self.stratify = stratify
        self.shard_rows = shard_rows
        self.task = task
        self.drop_null_label = drop_null_label
        self.batch_rows = batch_rows
        self.classes = classes

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> Prepare:
        """Build from a :class:`blase.config.ProjectConfig` (``data.label``, ``data.key``,
        ``seed`` and ``prepare:``)."""
        kwargs: dict[str, Any] = {
            "label": config.data.label,
            "features": config.prepare.features,
            "key": config.data.key,
            "split": config.prepare.split,
            "seed": config.seed,
            "stratify": config.prepare.stratify,
            "shard_rows": config.prepare.shard_rows,
            "drop_null_label": config.prepare.drop_null_label,
        }
        kwargs.update(overrides)
        if not kwargs["label"]:
            raise PrepareError(
                "no label column is set (data.label in blase.yaml)",
                hint="add `label: YOUR_COLUMN` under `data:` in blase.yaml",
            )
        return cls(**kwargs)

    def params(self) -> dict[str, Any]:
        """The settings that decide the output (hashed into the step's inputs)."""
        r = _ratios(self.split)
        fixed = {"classes": self.classes} if self.classes is not None else {}
        return fixed | {
            "label": self.label,
            "features": self.features,
            "key": self.key,
            "split": r.as_dict(),
            "seed": self.seed,
            "stratify": self.stratify,
            "shard_rows": self.shard_rows,
            "task": self.task,
            "drop_null_label": self.drop_null_label,
        }

    # -- checks ---------------------------------------------------------------------------

    def _validate_params(self) -> Ratios:
        if not isinstance(self.shard_rows, int) or self.shard_rows < 1:
            raise PrepareError(
                f"shard_rows={self.shard_rows!r} must be a positive integer",
                hint="e.g. shard_rows=262144",
            )
        if self.task not in (None, "classification", "binary", "multiclass", "regression"):
            raise PrepareError(
                f"task {self.task!r} is unknown",
                hint="use 'binary', 'multiclass', 'classification', 'regression' or None (infer)",
            )
        if self.stratify and self.task == "regression":
            raise PrepareError(
                "stratify=True needs a classification label, but task='regression'",
                hint="turn stratify off, or set task='classification'",
            )
        return _ratios(self.split)

    # -- run ------------------------------------------------------------------------------

    def run(
        self,
        source: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        memory: int | str | None = None,
        tfrecord: bool = False,
        transform: Transform | None = None,
        *,
        source_name: str | None = None,
        executor: RayExecutor | None = None,
    ) -> StepResult:
        """Split ``source`` and write shards and ``manifest.json`` into ``out_dir``.

        Parameters
        ----------
        source:
            A Parquet file, a folder of Parquet files (read recursively, in sorted path
            order), or a glob.
        out_dir:
            The output folder; replaced as a whole when it holds an earlier prepare output.
        memory:
            Memory budget (``"2GB"``, bytes, ``"auto"``/None).
        tfrecord:
            Also write a ``.tfrecord`` file beside each shard (see :func:`write_tfrecord`).
        transform:
            A fitted :class:`~blase.transform.Transform` to apply to ``source`` on the way
            (the pipeline's path: the transformed table is never written out). The shards
            are the same as those of ``transform.run`` followed by prepare, except that row
            ids count rows of ``source``, before any filter.
        source_name:
            How errors name the data (default: ``source``): the pipeline passes the user's
            ``data.source``, not the step cache's copy of it.
        executor:
            A :class:`~blase.executor.RayExecutor`: the rows (files, runs of row groups) are
            transformed, split and turned into float32 in its tasks; the checks and the
            stratified cut points stay here, and the shards are the same bytes.

        Returns
        -------
        StepResult
            Step ``"prepare"``; ``details`` holds ``counts`` per split, ``task``, ``manifest``
            (its path) and ``n_features``.

        Raises
        ------
        PrepareError
            For a missing column, a text feature, nulls, a null label, or a full disk.
        """
        from blase.hashing import hash_config, hash_file, hash_files

        ratios = self._validate_params()
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise PrepareError(f"output {out} is a file", hint="choose a folder for the shards")
        if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
            raise PrepareError(
                f"output folder {out} is not empty and holds no {MANIFEST_NAME}",
                hint="prepare replaces only its own earlier output; choose an empty or new folder",
            )
        files = _source_files(source)
        where = source_name or str(source)
        budget = memory_budget(memory)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        writers: dict[str, SplitWriter] = {}
        try:
            with measure_step() as meter:
                con = connect(budget, tmp_dir=tmp / ".duckdb")
                try:
                    logger.info(
                        "prepare: %d file(s) from %s, memory %s",
                        len(files),
                        where,
                        budget_note(budget),
                    )
                    self._check_reserved(con, files, where)
                    if transform is not None:
                        transform._check_fitted()
                    protect = tuple(c for c in (self.label, self.key) if c)
                    feed = open_feed(con, files, transform, tmp / ".transformed", budget,
                                     protect=protect)
                    plan = make_plan(self, con, files, feed, where, imputed=_imputed(transform))
                    source_hash = hash_file(files[0]) if len(files) == 1 else hash_files(files)
                    writers, layout = self._stream(con, plan, feed, ratios, tmp, budget, executor)
                finally:
                    con.close()
                shutil.rmtree(tmp / ".duckdb", ignore_errors=True)
                shutil.rmtree(tmp / ".transformed", ignore_errors=True)
                tfrecords = (self._write_tfrecords(tmp, writers, len(plan.features), layout)
                             if tfrecord else {})
                manifest = self._manifest(plan, ratios, writers, str(source), source_hash, tfrecords,
                                          layout)
                (tmp / MANIFEST_NAME).write_text(
                    json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8"
                )
                replace_dir(tmp, out)
        except OSError as exc:
            for w in writers.values():
                w.abort()
            shutil.rmtree(tmp, ignore_errors=True)
            cause = disk_cause(exc)
            if cause is not None:
                what = "the disk filled up while writing" if exc.errno != errno.EFBIG else "cannot write"
                raise PrepareError(
                    f"{what} shards into {out} ({cause}); nothing was kept",
                    hint="raise the file size limit (ulimit -f)" if exc.errno == errno.EFBIG
                    else "free disk space or write the shards to another disk",
                ) from exc
            raise PrepareError(
                f"cannot write shards into {out}: {exc}",
                hint="check the folder's permissions and free space",
            ) from exc
        except BaseException:
            for w in writers.values():
                w.abort()
            shutil.rmtree(tmp, ignore_errors=True)
            raise

        shard_hashes = {s.file: s.hash for w in writers.values() for s in w.shards} | {
            s.labels_file: s.labels_hash for w in writers.values() for s in w.shards
        } | {s.codes_file: s.codes_hash for w in writers.values() for s in w.shards if s.codes_file} | {
            s.tensor_file: s.tensor_hash for w in writers.values() for s in w.shards if s.tensor_file}
        counts = manifest.counts
        result = StepResult(
            step=self.step,
            inputs={"data": source_hash, "params": hash_config(self.params())}
            | ({"transform": _transform_digest(transform)} if transform is not None else {}),
            outputs={
                "shards": hash_config(shard_hashes),
                "manifest": hash_file(out / MANIFEST_NAME),
            },
            rows_in=plan.rows + plan.rejected,
            rows_out=sum(counts.values()),
            rows_rejected=plan.rejected,
            seconds=meter.seconds,
            peak_rss_bytes=meter.peak_rss_bytes,
            memory_budget_bytes=budget,
            details={
                "counts": counts,
                "task": plan.task,
                "n_features": len(plan.features),
                "executor": executor.name if executor is not None else "local",
                "manifest": str(out / MANIFEST_NAME),
                "out_dir": str(out),
            },
        )
        result.warnings += plan.warnings
        if plan.rejected:
            result.warnings.append(
                f"dropped {plan.rejected:,} rows with a null label '{self.label}'"
            )
        for name in SPLITS:
            if counts[name] == 0 and getattr(ratios, name) > 0:
                result.warnings.append(
                    f"split '{name}' is empty; the data may be too small for its share"
                )
        for warning in result.warnings:  # said now, as extract says its own; the run records them
            logger.warning("%s", warning)
        return result

    @staticmethod
    def _check_reserved(con: Any, files: list[Path], where: str) -> None:
        listed = ", ".join(sql_quote(str(f)) for f in files)
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet([{listed}])").fetchall()
        for name in (r[0] for r in rows):
            if name in _RESERVED:
                raise PrepareError(
                    f"column '{name}' in {where} clashes with a name prepare needs",
                    hint="rename it with a `rename` transform (blase.yaml transform:)",
                )

    def _hashed(self, plan: Plan, feed: Feed) -> tuple[str, list[int], OneHotCodes | None, Layout | None]:
        """The query of each row's dense features, one-hot sources, label, row id and split
        hash ``__h``; the positions of the dense features; the one-hot codes and layout."""
        label = sql_ident(self.label)
        in_tensor = {p for positions in plan.tensors.values() for p in positions}
        dense = [(j, f) for j, f in enumerate(plan.features) if f not in feed.expanded and j not in in_tensor]
        hot = OneHotCodes(feed, plan.features) if feed.onehot is not None else None
        hot = hot if hot is not None and hot.sources else None
        layout = None if hot is None and not plan.tensors else Layout(
            dense=[j for j, _ in dense],
            onehot=[OneHotGroup(column=src, features=pos) for src, pos in hot.groups()] if hot else [],
            tensors=_tensor_groups(plan.tensors),
        )
        tensors = list(plan.tensors)
        select = [f"CAST({sql_ident(f)} AS FLOAT) AS __f{j}" for j, f in dense]
        select += [f"{sql_ident(c)} AS __c{m}" for m, c in enumerate(hot.sources if hot else [])]
        select += [f"{sql_ident(c)} AS __t{m}" for m, c in enumerate(tensors)]
        base = f"SELECT {', '.join(select)}, {label} AS __y, {ROW_ID} AS __idx"
        if self.key is not None:
            base += f", {key_hash_sql(sql_ident(self.key), self.seed)} AS __h"
        base += f" FROM {feed.relation} AS _feed"
        if plan.rejected:
            base += f" WHERE {label} IS NOT NULL"
        query = f"({base})"
        if self.key is None:
            for name, expr in row_hash_sql("__idx", self.seed):
                query = f"(SELECT *, {expr} AS {name} FROM {query})"
        return query, [j for j, _ in dense], hot, layout

    @staticmethod
    def _final(hashed: str, dense: list[int], hot: OneHotCodes | None, case: str, *, tensors: int = 0) -> str:
        """What :meth:`_fill` streams: ``hashed`` with each row's split (``case``)."""
        cols = [f"__f{j}" for j in dense] + [f"__c{m}" for m in range(len(hot.sources if hot else []))]
        cols += [f"__t{m}" for m in range(tensors)]
        return f"SELECT {', '.join(cols)}, __y, {case} AS __split, __idx FROM {hashed}"

    def _stream(
        self, con: Any, plan: Plan, feed: Feed, ratios: Ratios, root: Path, budget: int,
        executor: RayExecutor | None = None,
    ) -> tuple[dict[str, SplitWriter], Layout | None]:
        hashed, dense, hot, layout = self._hashed(plan, feed)
        if self.stratify:
            case = stratified_case_sql(
                "__y", self._stratified_thresholds(con, plan, hashed, ratios)
            )
        else:
            case = split_case_sql(ratios)
        d = len(plan.features)
        y_dtype = np.dtype("<f4") if plan.task == "regression" else np.dtype("<i8")
        sink = WriteBehind()
        width = len(dense) if layout is not None else d
        writers = {
            s: SplitWriter(root, s, width, y_dtype, self.shard_rows, sink,
                           n_codes=len(hot.sources) if hot else 0,
                           codes_dtype=hot.dtype if hot else np.dtype("<i2"),
                           n_tensor=layout.tensor_width if layout is not None else 0)
            for s in SPLITS
        }
        try:
            if executor is None:
                self._fill(con, plan, self._final(hashed, dense, hot, case, tensors=len(plan.tensors)), dense, hot,
                           writers, budget)
            else:
                fill_parts(self, plan, feed, case, writers, executor, budget)
            for w in writers.values():
                w.close()
            sink.drain()
        finally:
            sink.close()  # before any abort removes the files it writes
        return writers, layout

    def _fill(self, con: Any, plan: Plan, final: str, dense: list[int], hot: OneHotCodes | None,
              writers: Mapping[str, RowSink], budget: int, *, bar: bool = True) -> None:
        """Stream ``final`` (the ``dense`` feature columns, the one-hot sources, label, split,
        row id) into float32 rows (the dense features) and one-hot codes, and hand each
        split's rows to its writer."""
        import pyarrow as pa
        import pyarrow.compute as pc

        d = len(plan.features)
        n_dense = len(dense)
        n_hot = n_dense + (len(hot.sources) if hot else 0)
        widths = [len(p) for p in plan.tensors.values()]
        nd = n_hot + len(widths)
        # tensor values are bytes: a float32 feature's 16 bytes per value become ~3
        d = d - sum(widths) + sum(widths) // 5
        # Arrow batch, the float32 matrix and the per-split copies: about 16 bytes per value.
        # And the matrix stays under 16 MB: glibc hands blocks over 32 MB out as fresh mmap
        # pages, so bigger batches pay a page fault per 4 KB each time (measured: prepare at
        # 0.2 GB took 4-6 s with 50 MB matrices, 2.3-2.8 s with 16 MB ones).
        batch_rows = self.batch_rows or int(min(1 << 20, budget * 0.2 // (16 * (d + 2)),
                                                MATRIX_BYTES // (4 * d)))
        batch_rows = max(2048, batch_rows)
        value_set = None
        if plan.task != "regression":
            value_set = pa.array(plan.classes)
        reader = _arrow_reader(con.sql(final), batch_rows)
        with progress("prepare", total=plan.rows) if bar else nullcontext() as shown:
            for batch in reader:
                n = batch.num_rows
                if n == 0:
                    continue
                # a new matrix per batch: the writer thread may still be writing the last one
                x = np.empty((n, n_dense), dtype=np.float32)
                for i in range(n_dense):
                    x[:, i] = batch.column(i).to_numpy(zero_copy_only=False)
                codes = hot.codes([batch.column(i) for i in range(n_dense, n_hot)]) if hot else None
                tensor = _tensor_matrix(batch, n_hot, widths)
                ycol = batch.column(nd)  # the label, split and row id follow the features
                if value_set is not None:
                    if ycol.type != value_set.type:
                        ycol = ycol.cast(value_set.type)
                    y = (
                        pc.index_in(ycol, value_set=value_set)
                        .to_numpy(zero_copy_only=False)
                        .astype(np.int64)
                    )
                else:
                    y = ycol.cast(pa.float32()).to_numpy(zero_copy_only=False)
                split = batch.column(nd + 1).to_numpy(zero_copy_only=False)
                ids = batch.column(nd + 2).to_numpy(zero_copy_only=False).astype(np.int64)
                for code, name in enumerate(SPLITS):
                    mask = split == code
                    if mask.all():
                        writers[name].append(x, y, ids, codes, tensor)
                    elif mask.any():
                        writers[name].append(x[mask], y[mask], ids[mask],
                                             codes[mask] if codes is not None else None,
                                             tensor[mask] if tensor is not None else None)
                if shown is not None:
                    shown.advance(n)

    def _stratified_thresholds(
        self, con: Any, plan: Plan, hashed: str, ratios: Ratios
    ) -> dict[Any, tuple[tuple[int, int] | None, tuple[int, int] | None]]:
        wanted: dict[Any, tuple[int, int]] = {
            value: stratified_cuts(n, ratios)
            for value, n in zip(plan.classes, plan.class_counts, strict=False)
        }
        ranks = sorted({k for pair in wanted.values() for k in pair if k > 0})
        if not ranks:
            return {value: (None, None) for value in plan.classes}
        rows = con.execute(
            f"SELECT __y, rn, __h, __idx FROM (SELECT __y, __h, __idx, row_number() OVER "
            f"(PARTITION BY __y ORDER BY __h, __idx) AS rn FROM {hashed}) "
            f"WHERE rn IN ({', '.join(map(str, ranks))})"
        ).fetchall()
        at = {(r[0], int(r[1])): (int(r[2]), int(r[3])) for r in rows}
        return {
            value: (at.get((value, k1)) if k1 else None, at.get((value, k2)) if k2 else None)
            for value, (k1, k2) in wanted.items()
        }

    @staticmethod
    def _write_tfrecords(root: Path, writers: dict[str, SplitWriter], n_features: int,
                         layout: Layout | None) -> dict[str, tuple[str, str]]:
        from blase.hashing import hash_file
        from blase.prepare._rows import ShardRows
        from blase.prepare._tfrecord import write_tfrecord_shard

        written: dict[str, tuple[str, str]] = {}
        for w in writers.values():
            for s in w.shards:
                x = ShardRows(root, _shard_info(s), n_features=n_features, layout=layout)
                y = np.load(root / s.labels_file, mmap_mode="r")
                target = write_tfrecord_shard(x, y, (root / s.file).with_suffix(".tfrecord"))
                written[s.file] = (target.relative_to(root).as_posix(), hash_file(target))
        return written

    def _manifest(
        self,
        plan: Plan,
        ratios: Ratios,
        writers: dict[str, SplitWriter],
        where: str,
        source_hash: str,
        tf: dict[str, tuple[str, str]],
        layout: Layout | None,
    ) -> Manifest:
        shards = {
            name: [
                _shard_info(s, tfrecord=tf[s.file][0] if s.file in tf else None,
                            tfrecord_hash=tf[s.file][1] if s.file in tf else None)
                for s in w.shards
            ]
            for name, w in writers.items()
        }
        class_counts: dict[str, dict[str, int]] = {}
        if plan.task != "regression":
            for name, w in writers.items():
                totals = np.zeros(len(plan.classes), dtype=np.int64)
                for s in w.shards:
                    y = np.load(Path(w.root) / s.labels_file, mmap_mode="r")
                    totals += np.bincount(y, minlength=len(plan.classes))
                class_counts[name] = {str(i): int(c) for i, c in enumerate(totals)}
        classes = [c.item() if hasattr(c, "item") else c for c in plan.classes]
        return Manifest(
            task=plan.task,  # type: ignore[arg-type]
            label=self.label,
            label_dtype=plan.columns[self.label],
            label_mapping={class_key(c): i for i, c in enumerate(classes)},
            classes=classes,
            features=plan.features,
            dtypes={f: plan.columns[f] for f in plan.features},
            n_features=len(plan.features),
            y_dtype="float32" if plan.task == "regression" else "int64",
            counts={name: w.rows for name, w in writers.items()},
            class_counts=class_counts,
            shards=shards,
            layout=layout,
            seed=self.seed,
            split=ratios.as_dict(),
            stratify=self.stratify,
            key=self.key,
            shard_rows=self.shard_rows,
            rows_rejected=plan.rejected,
            source=where,
            source_hash=source_hash,
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

