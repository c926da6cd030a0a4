"""Source plugins: a reader for a file format Blase does not know, streamed like the built-ins.

A ``source`` plugin's target is a :class:`SourceReader` subclass::

    class SheetReader(SourceReader):
        name = "sheets"
        config_model = SheetOptions            # its options (data.options in blase.yaml)

        def read(self, path, *, batch_rows):
            for rows in ...:                   # at most batch_rows rows at a time
                yield pa.RecordBatch.from_pylist(rows)

    plugin = Plugin(name="sheets", kind="source", target="pkg.sheets:SheetReader",
                    suffixes=(".sheet",))

``data.format: sheets`` selects it (or a file ending in one of its ``suffixes``, with
``data.format: auto``). Extract reads each file of the source in order and hands the batches
to DuckDB as one Arrow stream, so dtypes, previews, counts, the Parquet parts, the content
hashes of the files and ``blase predict``/``monitor`` on new files all work as for a
built-in format. Every file must give the same columns; a reader that raises fails the step
with an :class:`~blase.errors.ExtractError` naming the plugin and the file.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from blase.errors import BlaseError, ExtractError
from blase.extract._sources import ResolvedSource, display_path

if TYPE_CHECKING:
    import pyarrow as pa

    from blase.plugins import Plugin

__all__ = ["PluginStream", "SourceReader", "collection_root", "load_reader_class"]


class SourceReader(ABC):
    """Base class of a ``source`` plugin: reads one file as Arrow record batches.

    Class attributes
    ----------------
    name:
        The plugin's name (``data.format: NAME``).
    config_model:
        The pydantic model of its options (``data.options`` in ``blase.yaml``), with
        ``extra="forbid"``; None: it takes none. The validated options are :attr:`options`.
    """

    name: ClassVar[str] = ""
    config_model: ClassVar[type[BaseModel] | None] = None
    #: True for a reader of a whole collection of files at once (:meth:`read_files`): a folder
    #: of images decoded in worker processes and indexed once, a listing of paths and labels.
    reads_collection: ClassVar[bool] = False

    def __init__(self, options: BaseModel | None = None) -> None:
        self.options = options
        #: Files the reader set aside (``(path, why)``) in its last pass, when its options say
        #: to quarantine bad files: Extract lists them in ``outputs/rejects/`` and counts them
        #: as rejected rows. A reader clears it when it starts a pass.
        self.rejected: list[tuple[str, str]] = []
        #: Content digests of the files read in the last pass (xxh3-128, as
        #: :func:`blase.hashing.hash_file` gives), by absolute path, when the reader knew them
        #: (a collection's index): Extract hashes the source with them instead of reading
        #: every file again.
        self.digests: dict[str, str] = {}

    @abstractmethod
    def read(self, path: Path, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Yield the rows of ``path`` in order, as record batches of at most ``batch_rows``
        rows, each with the same schema. Raise :class:`~blase.errors.ExtractError` naming the
        row and column of a value it cannot read."""

    def content_digests(self, files: Sequence[Path], *, root: Path) -> dict[str, str] | None:
        """Content digests of ``files`` (xxh3-128 of their bytes), by absolute path, when the
        reader keeps them (an index); None (the default): Blase hashes the files itself."""
        return None

    #: Records the reader set aside under ``data.bad_rows: quarantine`` in the last stream
    #: (counted in the run as rejected rows).
    rows_rejected: int = 0

    def begin(  # noqa: B027 (an optional hook)
        self, files: Sequence[Path], *, bad_rows: str = "error", rejects_file: Path | None = None,
        base_dir: Path | None = None,
    ) -> None:
        """Called before each stream over the source with all its ``files`` (a reader that
        needs a schema across files learns it here), the ``data.bad_rows`` policy, the file
        where quarantined records go, and the folder file names are shown relative to.
        Default: nothing."""
    def read_files(self, files: Sequence[Path], *, root: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """For a reader with :attr:`reads_collection`: yield the rows of all ``files`` (every
        file of the source, sorted) as record batches of at most ``batch_rows`` rows. ``root``
        is the folder the source names (or holds the file or glob it names): paths and
        labels (a class per subfolder) are relative to it. Raise
        :class:`~blase.errors.ExtractError` naming the file at fault. Default: :meth:`read`
        file by file."""
        for path in files:
            yield from self.read(path, batch_rows=batch_rows)

    def write_example(self, folder: Path) -> Path:
        """Write a small file of this format into ``folder`` and return it: the conformance
        checks (``blase plugin check``) read it. Override it; the default says so."""
        raise NotImplementedError(f"{type(self).__name__} does not define write_example(folder)")


def collection_root(source: ResolvedSource) -> Path:
    """The folder a source names: the folder itself, the folder of a file, or the part of a
    glob before its first wildcard."""
    spec = Path(source.spec).expanduser()
    if not spec.is_absolute() and source.base_dir is not None:
        spec = source.base_dir / spec
    if spec.is_dir():
        return spec
    text = str(spec)
    cut = min((text.index(c) for c in "*?[" if c in text), default=None)
    return Path(os.path.dirname(text[:cut])) if cut is not None else spec.parent


def load_reader_class(plugin: Plugin) -> type[SourceReader]:
    """The plugin's :class:`SourceReader` subclass, checked against its manifest."""
    return plugin.load_class(SourceReader)


class PluginStream:
    """The files of a source read by a plugin, as one Arrow stream with one schema.

    ``failures`` collects the error that ended a stream DuckDB was reading (DuckDB only
    passes its text on), so Extract can raise it as it was.
    """

    def __init__(self, plugin: Plugin, reader: SourceReader, source: ResolvedSource, batch_rows: int,
                 failures: list[BlaseError], *, bad_rows: str = "error", rejects_file: Path | None = None) -> None:
        self.bad_rows, self.rejects_file = bad_rows, rejects_file
        self.plugin = plugin
        self.reader = reader
        self.source = source
        self.batch_rows = batch_rows
        self.failures = failures

    def open(self) -> pa.RecordBatchReader:
        """The stream, its schema taken from the first batch (read now)."""
        import pyarrow as pa

        try:
            self.reader.begin(self.source.files, bad_rows=self.bad_rows, rejects_file=self.rejects_file,
                              base_dir=self.source.base_dir)
        except BlaseError as exc:
            self.failures.append(exc)
            raise
        batches = self._batches()
        try:
            first = next(batches)
        except StopIteration:
            shown = ", ".join(display_path(f, self.source.base_dir) for f in self.source.files[:3])
            raise ExtractError(f"{shown} has no rows ({self.plugin.label} read none)",
                               hint="check the file and the plugin's options (data.options)") from None
        return pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], batches))

    def _batches(self) -> Iterator[pa.RecordBatch]:
        schema = None
        first_file = None
        if self.reader.reads_collection:  # one call over every file (the reader names the culprit)
            parts: Iterator[tuple[Path, Iterator[pa.RecordBatch]]] = iter(
                [(self.source.files[0], self._read(None))])
        else:
            parts = ((path, self._read(path)) for path in self.source.files)
        for path, batches in parts:
            for batch in batches:
                if schema is None:
                    schema, first_file = batch.schema, path
                elif not batch.schema.equals(schema):
                    batch = self._conform(batch, schema, path, first_file)
                yield from (batch.slice(i, self.batch_rows) for i in range(0, max(batch.num_rows, 1),
                                                                           self.batch_rows))

    def _read(self, path: Path | None) -> Iterator[pa.RecordBatch]:
        """The batches of one file, or (``path`` None) of a collection reader's every file."""
        import pyarrow as pa

        shown = (f"{len(self.source.files)} files of {self.source.spec}" if path is None
                 else display_path(path, self.source.base_dir))
        try:
            items = (self.reader.read(path, batch_rows=self.batch_rows) if path is not None else
                     self.reader.read_files(self.source.files, root=collection_root(self.source),
                                            batch_rows=self.batch_rows))
            for item in items:
                if isinstance(item, pa.Table):
                    yield from item.to_batches()
                elif isinstance(item, pa.RecordBatch):
                    yield item
                else:
                    raise ExtractError(f"{self.plugin.label} yielded {type(item).__name__} reading {shown}",
                                       hint="a SourceReader.read yields pyarrow.RecordBatch objects")
        except BlaseError as exc:
            self.failures.append(exc)
            raise
        except Exception as exc:  # the plugin broke: say which plugin and which file
            error = ExtractError(f"{self.plugin.label} failed reading {shown}: {type(exc).__name__}: {exc}",
                                 hint="check the file and the plugin's options (data.options in blase.yaml)")
            self.failures.append(error)
            raise error from exc

    def _conform(self, batch: pa.RecordBatch, schema: pa.Schema, path: Path, first: Any) -> pa.RecordBatch:
        import pyarrow as pa

        a, b = display_path(first, self.source.base_dir), display_path(path, self.source.base_dir)
        if batch.schema.names != schema.names:
            error = ExtractError(f"files of one source disagree on their columns: {a} has {schema.names}, "
                                 f"{b} has {batch.schema.names}",
                                 hint="make the files share their columns, or extract them separately")
        else:
            try:
                return pa.Table.from_batches([batch]).cast(schema).combine_chunks().to_batches()[0]
            except Exception as exc:  # pyarrow raises several kinds here
                error = ExtractError(f"{b} does not fit the column types of {a} ({self.plugin.label}): {exc}",
                                     hint="give the column a type with data.dtypes, or make the files agree")
        self.failures.append(error)
        raise error
