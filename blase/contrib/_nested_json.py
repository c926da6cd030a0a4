"""The ``nested_json`` source: NDJSON files and JSON arrays of objects with nested objects and
lists, read as Arrow struct and list columns under a memory budget.

Two passes over the files, a block of whole lines at a time (``block_bytes``), parsed by
pyarrow's JSON reader (C++):

1. the schema: each block's inferred types are merged across every file (a field missing in
   some records is null there; integers and fractions make a float; a timestamp-looking text
   and other text make text). A field whose type changes (a number, then a text; an object,
   then a list) stops the read with the first file and line where it had each type, unless
   ``data.bad_rows: quarantine`` sets the records that disagree aside;
2. the rows: each block parsed again with the merged schema, so every file gives the same
   columns, and sliced into batches.

Only a block that pyarrow refuses is looked at in Python, line by line, to name the line
(a record that is not an object, invalid JSON, a type change) or to drop the bad records into
``outputs/rejects/<source>.ndjson``.

Once the schema pass has found every record good, the rows are read by DuckDB's JSON reader
(faster than pyarrow's) with the learned columns fixed; with ``bad_rows: quarantine`` or
``text_fields`` the blocks above read them, setting records aside or turning fields to text.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from blase.contrib._json_records import (
    Block,
    Conflict,
    Seen,
    array_blocks,
    as_text,
    is_array,
    merge_schema,
    ndjson_blocks,
    record_conflict,
    text_type,
    value_kind,
)
from blase.errors import ExtractError
from blase.extract import SourceReader

__all__ = ["NestedJSONOptions", "NestedJSONReader"]


class NestedJSONOptions(BaseModel):
    """``data.options`` of ``data.format: nested_json``."""

    model_config = ConfigDict(extra="forbid")

    block_bytes: int = Field(default=8 << 20, ge=1 << 12, description="bytes of whole lines parsed at a time")
    text_fields: list[str] = Field(
        default_factory=list,
        description="dotted fields read as text whatever their JSON type (the fix for a field whose "
        "type changes, e.g. user.age holding 30 and \"unknown\")",
    )


# --------------------------------------------------------------------------- DuckDB's road


def _duck_connect() -> Any:
    import duckdb

    # one thread: with two, the rows keep their order but the batches' sizes vary from run to run,
    # so extract's Parquet (its row groups and pages) was not the same bytes twice (reproduce --verify)
    return duckdb.connect(config={"threads": 1, "memory_limit": "256MB", "preserve_insertion_order": True})


def _duck_columns(schema: pa.Schema, files: Sequence[Path]) -> tuple[str, dict[str, str]] | None:
    """The read_json format and DuckDB column types of ``schema`` (the one the schema pass
    learned); None for files that mix NDJSON and arrays."""
    arrays = {is_array(f) for f in files}
    if len(arrays) != 1:
        return None
    con = _duck_connect()
    try:
        con.register("_blase_schema", pa.Table.from_batches([], schema=schema))
        columns = {str(r[0]): str(r[1]) for r in con.execute("DESCRIBE _blase_schema").fetchall()}
    finally:
        con.close()
    return ("array" if arrays.pop() else "newline_delimited"), columns


def _exact_batches(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """``batches`` regrouped into batches of exactly ``rows`` rows (the last may be shorter)."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(held).combine_chunks()
            yield from table.slice(0, rows).to_batches(max_chunksize=rows)
            rest = table.slice(rows)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield from pa.Table.from_batches(held).combine_chunks().to_batches(max_chunksize=rows)


def _duck_read(path: Path, fmt: str, columns: dict[str, str], *, batch_rows: int) -> Iterator[pa.RecordBatch]:
    from blase._duck import sql_quote

    spec = "{" + ", ".join(f"{sql_quote(n)}: {sql_quote(t)}" for n, t in columns.items()) + "}"
    con = _duck_connect()
    try:
        rel = con.sql(f"SELECT * FROM read_json({sql_quote(str(path))}, format='{fmt}', columns={spec})")
        reader = rel.to_arrow_reader(batch_rows) if hasattr(rel, "to_arrow_reader") else rel.fetch_record_batch(batch_rows)
        yield from reader
    finally:
        con.close()


# --------------------------------------------------------------------------- the reader


class NestedJSONReader(SourceReader):
    """NDJSON or JSON arrays of objects, nested objects and lists kept as struct and list
    columns (the ``flatten`` and ``explode`` operations make flat columns of them)."""

    name: ClassVar[str] = "nested_json"
    config_model = NestedJSONOptions

    def __init__(self, options: NestedJSONOptions | None = None) -> None:
        super().__init__(options or NestedJSONOptions())
        self.rows_rejected = 0
        self._schema: pa.Schema | None = None
        self._key: tuple[Any, ...] | None = None
        self._bad_rows = "error"
        self._rejects: Path | None = None
        self._rejects_fh: Any = None
        self._base: Path | None = None
        #: DuckDB's read_json format and columns, when it reads the files (clean data).
        self._duck: tuple[str, dict[str, str]] | None = None

    # -- the contract -------------------------------------------------------------------------

    def begin(self, files: Sequence[Path], *, bad_rows: str = "error", rejects_file: Path | None = None,
              base_dir: Path | None = None) -> None:
        """Learn one schema across ``files`` (cached while they are unchanged)."""
        self._bad_rows, self._rejects, self._base = bad_rows, rejects_file, base_dir
        self.rows_rejected = 0  # each stream starts afresh: the last one read is the extract's
        if rejects_file is not None and bad_rows == "quarantine":
            rejects_file.unlink(missing_ok=True)
        key = (*((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files), bad_rows)
        if key != self._key:
            self._schema = self._infer(files)
            fast = bad_rows != "quarantine" and not self.options.text_fields
            self._duck = _duck_columns(self._schema, files) if fast else None
            self._key = key

    def read(self, path: Path, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        # batches of exactly batch_rows rows (the last shorter), whichever path read them: extract
        # writes a row group per batch, so the same rows must come in the same batches to give
        # the same Parquet bytes (reproduce --verify)
        yield from _exact_batches(self._read(path, batch_rows=batch_rows), batch_rows)

    def _read(self, path: Path, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        if self._schema is None:
            self.begin([path], base_dir=self._base)
        if self._duck is not None:
            yield from _duck_read(path, *self._duck, batch_rows=batch_rows)
            return
        schema = self._schema
        assert schema is not None
        try:
            for block in self._blocks(path):
                table = self._parse(block, path, schema, write_rejects=True, threads=True)
                yield from table.to_batches(max_chunksize=batch_rows)
        finally:
            if self._rejects_fh is not None:
                self._rejects_fh.close()
                self._rejects_fh = None

    def write_example(self, folder: Path) -> Path:
        path = folder / "example.ndjson"
        rows = [{"id": i, "user": {"name": f"u{i}", "age": 20 + i}, "tags": ["a", "b"][: i % 3]}
                for i in range(5)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    @property
    def schema_(self) -> pa.Schema | None:
        return self._schema

    # -- the passes ---------------------------------------------------------------------------

    def _shown(self, path: Path) -> str:
        if self._base is not None:
            try:
                return path.resolve().relative_to(self._base.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    def _blocks(self, path: Path) -> Iterator[Block]:
        size = self.options.block_bytes
        return array_blocks(path, size, self._shown(path)) if is_array(path) else ndjson_blocks(path, size)

    def _forced(self) -> pa.Schema | None:
        """The explicit schema of ``text_fields`` (nested fields as structs holding them)."""
        fields: dict[str, pa.DataType] = {}
        for dotted in self.options.text_fields:
            top, *rest = dotted.split(".")
            fields[top] = text_type(fields.get(top, pa.struct([])), rest) if rest else pa.string()
        return pa.schema(list(fields.items())) if fields else None

    def _infer(self, files: Sequence[Path]) -> pa.Schema:
        forced = self._forced()
        schema = forced
        for path in files:
            for block in self._blocks(path):
                try:
                    table = self._parse(block, path, forced, write_rejects=False)
                    if schema is None or not table.schema.equals(schema):
                        schema = merge_schema(schema, table.schema)
                except (Conflict, pa.ArrowInvalid) as conflict:
                    if self._bad_rows != "quarantine":
                        raise self._locate(files, path, conflict) from None
                    # keep the type seen first: the block's disagreeing records go to rejects
                    data = self._clean(block, path, schema, write_rejects=False)
                    table = self._parse(Block(data, block.first_line), path, forced, write_rejects=False)
                    schema = merge_schema(schema, table.schema)
        if schema is None or not len(schema):
            shown = ", ".join(self._shown(f) for f in files[:3])
            raise ExtractError(f"{shown} holds no JSON records", hint="check data.source in blase.yaml")
        return schema

    def _parse(self, block: Block, path: Path, schema: pa.Schema | None, *, write_rejects: bool,
               threads: bool = False) -> pa.Table:
        """The block as a table (of ``schema`` when given, types inferred beyond it); a block
        pyarrow refuses is cleaned record by record first."""
        import pyarrow.json as pj

        if self.options.text_fields:
            data = self._clean(block, path, schema, write_rejects=write_rejects)
        else:
            data = block.data
        parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer", newlines_in_values=False)
        # pyarrow parses 1 MiB chunks of the block on its threads, rows in order; but the fields a
        # schema does not name yet come in the order the threads met them, so the schema pass
        # (no schema, or one still growing) parses on one thread: the columns' order is then the
        # order fields first appear in the file, the same on every run (reproduce --verify); the
        # read pass (`threads`), whose schema names every field, uses the threads
        read = pj.ReadOptions(block_size=1 << 20, use_threads=threads)
        try:
            table = pj.read_json(io.BytesIO(data), read_options=read, parse_options=parse)
        except pa.ArrowInvalid:
            if data is not block.data or not write_rejects:
                raise  # the schema pass names the first bad line itself (_infer)
            data = self._clean(block, path, schema, write_rejects=write_rejects)
            table = pj.read_json(io.BytesIO(data), read_options=read, parse_options=parse)
        if schema is not None and table.schema != schema and set(table.schema.names) <= set(schema.names):
            table = table.select([n for n in schema.names if n in table.schema.names])
            table = pa.table({n: table[n] if n in table.column_names else pa.nulls(len(table), schema.field(n).type)
                              for n in schema.names}).cast(schema)
        return table

    def _clean(self, block: Block, path: Path, schema: pa.Schema | None, *, write_rejects: bool) -> bytes:
        """The block's good records (text fields as text); a bad one is an error naming its
        line, or (quarantine) set aside into the rejects file."""
        seen = Seen()
        kept: list[bytes] = []
        texts = [f.split(".") for f in self.options.text_fields]
        for i, raw in enumerate(block.data.split(b"\n")):
            if not raw.strip():
                continue
            line = block.line_of(i)
            problem, record = None, None
            try:
                record = json.loads(raw)
            except ValueError as exc:
                problem = f"not valid JSON ({exc})"
            if problem is None and not isinstance(record, dict):
                problem = f"a JSON {value_kind(record)}, not an object"
            if problem is None:
                for parts in texts:
                    record = as_text(record, parts)
                hit = record_conflict(record, pa.struct(list(schema)) if schema is not None else None, "")
                if hit:
                    problem = f"field {hit[0]!r} is {hit[2]} here but {hit[1]} before"
                elif (local := seen.visit(record, "", "", line)) is not None:
                    problem = f"field {local[0]!r} is {local[4]} here but {local[1]} on line {local[3]}"
            if problem is None:
                kept.append(json.dumps(record, separators=(",", ":")).encode() if texts else raw)
                continue
            if self._bad_rows != "quarantine":
                raise self._bad_record(path, line, problem)
            if write_rejects:
                self._reject(path, line, problem, raw)
        return b"\n".join(kept) + b"\n"

    # -- errors and rejects -------------------------------------------------------------------

    def _bad_record(self, path: Path, line: int, problem: str) -> ExtractError:
        return ExtractError(
            f"{self._shown(path)}, line {line}: {problem}",
            hint="fix that record, or set data.bad_rows: quarantine to set such records aside in "
            "outputs/rejects/ (counted in the run)",
        )

    def _locate(self, files: Sequence[Path], upto: Path, conflict: Exception) -> ExtractError:
        """Scan from the first file in Python for the first line where a field changes type."""
        seen = Seen()
        for path in files:
            for block in self._blocks(path):
                for i, raw in enumerate(block.data.split(b"\n")):
                    if not raw.strip():
                        continue
                    line = block.line_of(i)
                    try:
                        record = json.loads(raw)
                    except ValueError as exc:
                        return self._bad_record(path, line, f"not valid JSON ({exc})")
                    hit = seen.visit(record, "", self._shown(path), line) if isinstance(record, dict) else None
                    if not isinstance(record, dict):
                        return self._bad_record(path, line, f"a JSON {value_kind(record)}, not an object")
                    if hit:
                        name, was, where, first, now = hit
                        return ExtractError(
                            f"{self._shown(path)}, line {line}: field {name!r} is {now} here but {was} "
                            f"in {where}, line {first} (the first {was} value)",
                            hint=f"read it as text with data.options: {{text_fields: [{name.rstrip('[]')}]}}, "
                            "fix the record, or set data.bad_rows: quarantine to set such records aside",
                        )
            if path == upto:
                break
        return ExtractError(f"{self._shown(upto)}: records of different types ({conflict})",
                            hint="read the field as text with data.options: {text_fields: [FIELD]}, or set "
                            "data.bad_rows: quarantine")

    def _reject(self, path: Path, line: int, problem: str, raw: bytes) -> None:
        self.rows_rejected += 1
        if self._rejects is None:
            return
        if self._rejects_fh is None:
            self._rejects.parent.mkdir(parents=True, exist_ok=True)
            self._rejects_fh = open(self._rejects, "a", encoding="utf-8")  # noqa: SIM115 (closed by read)
        entry = {"file": self._shown(path), "line": line, "error": problem,
                 "record": raw.decode("utf-8", "replace")}
        self._rejects_fh.write(json.dumps(entry) + "\n")
