"""What the ``images`` and ``audio`` sources share: a collection of media files (a folder with a
class per subfolder, or a CSV/Parquet listing of paths and labels), decoded once by worker
processes into fixed-size uint8 rows and indexed, so reading the folder again decodes only the
files that changed.

A kind subclasses :class:`CollectionReader`: its :attr:`~CollectionReader.suffixes`, the
worker function that decodes one file (:meth:`~CollectionReader.decoder`, in a light module),
the manifest columns it records per file (:attr:`~CollectionReader.meta`), and the columns it
computes from the decoded values (:meth:`~CollectionReader.statistics`).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import shutil
import tempfile
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from blase.contrib._decode import decode_many
from blase.errors import ExtractError
from blase.extract import SourceReader
from blase.hashing import RACY_WINDOW_NS

__all__ = ["CollectionIndex", "CollectionOptions", "CollectionReader"]

logger = logging.getLogger(__name__)

_LISTINGS = (".csv", ".parquet")
#: Files decoded in the calling process below this count (starting workers costs ~0.3 s).
_POOL_MIN = 64
#: The manifest's metadata key: when its stats were taken (ns since the epoch).
_SCANNED = "blase.scanned_ns"
_BASE = [("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("inode", pa.int64()),
         ("hash", pa.string()), ("label", pa.string()), ("error", pa.string())]


class CollectionOptions(BaseModel):
    """The options every media source takes (``data.options``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workers: int | None = Field(default=None, ge=1, description="decoding processes (default: the cores, up to 8)")
    bad_files: Literal["error", "quarantine"] = Field(
        default="error", description="a file that cannot be decoded: fail naming it, or list it in outputs/rejects/")
    path_column: str = Field(default="path", description="a CSV/Parquet listing: the column of file paths")
    label_column: str | None = Field(default="label", description="a listing: the column of labels (None: none)")


@dataclass
class _Entries:
    """The files of a collection: each one's path, its path relative to the root (what the
    manifest keys), and its label. A list of paths (what ``stat`` and the decoders take) and
    two Arrow columns, not an object per file: a re-scan of 100,000 unchanged files spends its
    time in ``stat``, and compares these columns with the manifest's in C."""

    paths: list[str]
    rels: pa.Array
    labels: pa.Array
    #: Every path is absolute (no ``abspath`` needed to key the digests).
    absolute: bool = False

    def __len__(self) -> int:
        return len(self.paths)

    @classmethod
    def of(cls, paths: list[str], rels: list[str], labels: list[str | None]) -> _Entries:
        return cls(paths, pa.array(rels, pa.string()), pa.array(labels, pa.string()))

    @classmethod
    def concat(cls, parts: list[_Entries]) -> _Entries:
        return cls([p for part in parts for p in part.paths],
                   pa.concat_arrays([part.rels for part in parts]) if parts else pa.array([], pa.string()),
                   pa.concat_arrays([part.labels for part in parts]) if parts else pa.array([], pa.string()))


def _index_dir(root: Path) -> Path:
    """``.blase/index`` of the project around ``root``, else the user's cache folder."""
    for folder in (root, *root.parents):
        if (folder / ".blase").is_dir():
            return folder / ".blase" / "index"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "blase" / "index"


class CollectionIndex:
    """What is known about each file of one folder under one set of decoding options.

    ``manifest.parquet`` holds a row per file (path, size, mtime, inode, content hash, label,
    why it could not be decoded, and the kind's own columns: an image's width and height) and
    ``values.npy`` the decoded uint8 rows in the same order, memory-mapped. :meth:`update`
    stats every file and decodes only those whose size, mtime or inode changed since (the
    stat cache's rule), or whose mtime was within :data:`~blase.hashing.RACY_WINDOW_NS` of the
    moment the index last stat'ed it (a rewrite in the same timestamp tick would not show:
    git's "racily clean" entries); when nothing changed nothing is written.
    """

    def __init__(self, root: Path, name: str, key: str, width: int, meta: list[tuple[str, pa.DataType]]) -> None:
        import xxhash

        digest = xxhash.xxh3_64_hexdigest(f"{root.resolve()}|{key}".encode("utf-8", "surrogateescape"))
        self.folder = _index_dir(root) / f"{name}-{digest}"
        self.width = width
        self.schema = pa.schema(_BASE + meta)
        self.meta = [m for m, _ in meta]
        self.hits = self.misses = 0
        self.manifest: pa.Table | None = None
        self.values: np.ndarray | None = None

    @property
    def file(self) -> Path:
        return self.folder / "manifest.parquet"

    def _load(self) -> tuple[pa.Table, np.ndarray] | None:
        import pyarrow.parquet as pq

        try:
            manifest = pq.read_table(self.file)
            values = np.load(self.folder / "values.npy", mmap_mode="r")
        except (OSError, ValueError, pa.ArrowInvalid):
            return None  # a rebuildable cache: a missing or bad one is rebuilt
        if values.shape != (manifest.num_rows, self.width) or manifest.schema != self.schema:
            return None
        return manifest, values

    def update(self, entries: _Entries, stats: np.ndarray,
               decode: Callable[[list[str]], list[dict[str, Any]]], chunk: int, *, scanned_ns: int) -> None:
        """Bring the index up to date with ``entries`` (their ``stats``: size, mtime and
        inode, taken from ``scanned_ns`` on; decoding with ``decode``); then
        :attr:`manifest` and :attr:`values` describe them, in their order."""
        old = self._load()
        rows = np.full(len(entries), -1, dtype=np.int64)
        if old is not None:
            at = _rows_of(entries.rels, old[0].column("path"))
            then = np.column_stack([old[0].column(c).to_numpy() for c in ("size", "mtime_ns", "inode")])
            settled = then[:, 1] < self._scanned_ns(old[0]) - RACY_WINDOW_NS
            same = (at >= 0) & (then[np.maximum(at, 0)] == stats).all(axis=1) & settled[np.maximum(at, 0)] \
                if len(then) else at >= 0
            rows[same] = at[same]
        self.hits = int((rows >= 0).sum())
        self.misses = len(entries) - self.hits
        if old is not None and self.misses == 0 and np.array_equal(rows, np.arange(old[0].num_rows)):
            # nothing changed: the manifest and values as they are on disk, nothing written
            manifest, labels = old[0], old[0].column("label")
            if not labels.equals(pa.chunked_array([entries.labels], pa.string())):  # a listing relabelled
                manifest = manifest.set_column(manifest.schema.get_field_index("label"), "label", entries.labels)
            self.manifest, self.values = manifest, old[1]
            return
        self._rewrite(entries, stats, rows, old, decode, chunk,
                      self.schema.with_metadata({_SCANNED: str(scanned_ns)}))

    def _scanned_ns(self, manifest: pa.Table) -> int:
        """When the stats in ``manifest`` were taken (an index written before this was recorded:
        its file's mtime, a later moment)."""
        try:
            return int((manifest.schema.metadata or {})[_SCANNED.encode()])
        except (KeyError, ValueError):
            try:
                return self.file.stat().st_mtime_ns
            except OSError:
                return 0

    def _rewrite(self, entries: _Entries, stats: np.ndarray, rows: np.ndarray,
                 old: tuple[pa.Table, np.ndarray] | None, decode: Callable[[list[str]], list[dict[str, Any]]],
                 chunk: int, schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        from blase._fs import replace_dir

        self.folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=self.folder.parent))
        try:
            values = np.lib.format.open_memmap(tmp / "values.npy", mode="w+", dtype=np.uint8,
                                               shape=(len(entries), self.width))
            known = old[0].to_pylist() if old is not None else []
            rels, labels = entries.rels.to_pylist(), entries.labels.to_pylist()
            kept = ["hash", "error", *self.meta]
            records: list[dict[str, Any]] = []
            for start in range(0, len(entries), chunk):
                part = np.arange(start, min(start + chunk, len(entries)))
                hit = part[rows[part] >= 0]
                if len(hit):
                    values[hit] = old[1][rows[hit]]  # type: ignore[index]
                todo = [int(k) for k in part if rows[k] < 0]
                results = dict(zip(todo, decode([entries.paths[k] for k in todo]), strict=True))
                for k in part:
                    size, mtime_ns, inode = (int(v) for v in stats[k])
                    record = {"path": rels[k], "size": size, "mtime_ns": mtime_ns,
                              "inode": inode, "label": labels[k]}
                    if rows[k] >= 0:
                        record |= {c: known[rows[k]][c] for c in kept}
                    else:
                        got = results[int(k)]
                        record |= {c: got.get(c) for c in kept}
                        if got.get("values") is not None:
                            values[k] = np.frombuffer(got["values"], dtype=np.uint8)
                    records.append(record)
            values.flush()
            del values
            pq.write_table(pa.Table.from_pylist(records, schema=schema), tmp / "manifest.parquet")
            replace_dir(tmp, self.folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.manifest = pq.read_table(self.file)
        self.values = np.load(self.folder / "values.npy", mmap_mode="r")


class CollectionReader(SourceReader):
    """A source plugin over a collection of media files (see the module docstring)."""

    reads_collection = True
    #: The file suffixes of the kind (``.png``...); a listing is a ``.csv`` or ``.parquet``.
    suffixes: ClassVar[tuple[str, ...]] = ()
    #: The tensor column of the values (``px_`` for pixels: the column ``px``, whose bytes
    #: Prepare turns into the features ``px_00000``...).
    prefix: ClassVar[str] = "v_"
    #: The manifest columns the decoder returns per file besides its values.
    meta: ClassVar[list[tuple[str, pa.DataType]]] = []

    @property
    def opts(self) -> Any:
        return self.options if self.options is not None else self.config_model()  # type: ignore[misc]

    @abstractmethod
    def decoder(self) -> tuple[str, dict[str, Any]]:
        """``(kind, params)``: :func:`blase.contrib._decode.decode_many` decodes a file with
        ``DECODERS[kind](path, **params)``."""

    @abstractmethod
    def width(self) -> int:
        """The uint8 values per file."""

    @abstractmethod
    def statistics(self, values: np.ndarray) -> list[tuple[str, pa.Array]]:
        """The columns computed from a batch of decoded rows (what Monitor compares)."""

    def statistic_names(self) -> list[str]:
        return [name for name, _ in self.statistics(np.zeros((1, self.width()), dtype=np.uint8))]

    def schema(self) -> pa.Schema:
        fields = [("path", pa.string()), ("label", pa.string()), *self.meta, ("bytes", pa.int64())]
        fields += [(name, pa.float32()) for name in self.statistic_names()]
        return pa.schema([*fields, (self.column, pa.binary())])

    @property
    def column(self) -> str:
        """The tensor column: each row's ``width()`` uint8 values as one binary value."""
        return self.prefix.rstrip("_")

    def read(self, path: Path, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        yield from self.read_files([path], root=path.parent, batch_rows=batch_rows)

    def index(self, files: Sequence[Path], *, root: Path) -> CollectionIndex:
        """The index of ``files``, brought up to date (new and changed files decoded)."""
        entries = self._entries(files, root)
        scanned_ns = time.time_ns()
        stats = _stat_all(entries.paths)
        self._indexed = entries
        if not entries:
            raise ExtractError(f"{root} holds no {self.name} files ({', '.join(self.suffixes)})",
                               hint=f"put the files in class subfolders (data/{self.name}/CLASS/FILE), "
                                    "or list them in a CSV of path,label")
        kind, params = self.decoder()
        index = CollectionIndex(root, self.name, f"{kind}|{sorted(params.items())}", self.width(), self.meta)
        workers = self._workers()
        pool: ProcessPoolExecutor | None = None

        def decode(paths: list[str]) -> list[dict[str, Any]]:
            nonlocal pool, workers
            if len(paths) < _POOL_MIN or workers < 2:
                return decode_many(kind, paths, params)
            if pool is None:
                pool = _pool(workers)
            n = max(1, -(-len(paths) // (4 * workers)))
            parts = [paths[i:i + n] for i in range(0, len(paths), n)]
            try:
                return [r for part in pool.map(decode_many, [kind] * len(parts), parts, [params] * len(parts))
                        for r in part]
            except BrokenProcessPool:  # workers that cannot start (a script read from stdin)
                logger.warning("%s: the decoding processes failed to start; decoding in this one", self.name)
                workers = 1
                return decode_many(kind, paths, params)

        try:
            index.update(entries, stats, decode, chunk=max(256, 64 * workers), scanned_ns=scanned_ns)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        self.index_stats = {"files": len(entries), "unchanged": index.hits, "decoded": index.misses}
        return index

    def read_files(self, files: Sequence[Path], *, root: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
        self.rejected = []
        index = self.index(files, root=root)
        assert index.manifest is not None and index.values is not None
        self.digests = self._digests(index)
        errors = index.manifest.column("error")
        if errors.null_count < len(errors):
            for i in np.flatnonzero(~np.asarray(errors.is_null())):
                self._bad(str(root / index.manifest.column("path")[int(i)].as_py()), errors[int(i)].as_py())
        schema = self.schema()
        chunk = max(1, min(batch_rows, 4096))
        for start in range(0, index.manifest.num_rows, chunk):
            part = index.manifest.slice(start, chunk)
            good = np.asarray(part.column("error").is_null())
            batch = self._batch(part.filter(pa.array(good)), np.asarray(index.values[start:start + chunk])[good],
                                schema)
            if batch.num_rows:
                yield batch

    def content_digests(self, files: Sequence[Path], *, root: Path) -> dict[str, str] | None:
        """The index's digest of each file (the index brought up to date first)."""
        return self._digests(self.index(files, root=root)) or None

    def _digests(self, index: CollectionIndex) -> dict[str, str]:
        assert index.manifest is not None
        paths = self._indexed.paths
        if len(paths) != index.manifest.num_rows:
            return {}
        if not self._indexed.absolute:
            paths = [p if os.path.isabs(p) else os.path.abspath(p) for p in paths]
        return dict(zip(paths, index.manifest.column("hash").to_pylist(), strict=True))

    def _batch(self, manifest: pa.Table, values: np.ndarray, schema: pa.Schema) -> pa.RecordBatch:
        columns: list[Any] = [manifest.column(c).combine_chunks() for c in ("path", "label", *(m for m, _ in self.meta))]
        columns.append(manifest.column("size").combine_chunks())
        columns += [array for _, array in self.statistics(values)]
        columns.append(_binary(values))
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def write_example(self, folder: Path) -> Path:
        """A few files of two classes under ``folder`` and a listing of them (what ``blase
        plugin check`` reads)."""
        root = Path(folder) / self.name
        rows = [f"{path.relative_to(root).as_posix()},{path.parent.name}" for path in self.example_files(root)]
        listing = root / "labels.csv"
        listing.write_text("path,label\n" + "\n".join(rows) + "\n")
        return listing

    def example_files(self, root: Path) -> list[Path]:
        """Write a few example files of two classes under ``root/CLASS/``; return them."""
        raise NotImplementedError(f"{type(self).__name__} does not define example_files(root)")

    # -- the files --------------------------------------------------------------------------------

    def _entries(self, files: Sequence[Path], root: Path) -> _Entries:
        texts = list(map(os.fspath, files))
        top = os.fspath(root).rstrip(os.sep) + os.sep
        folder = _folder_entries(texts, top, self.suffixes)
        if folder is not None:
            return folder
        media = tuple(self.suffixes)
        parts: list[_Entries] = []
        paths: list[str] = []
        rels: list[str] = []
        labels: list[str | None] = []
        for text in texts:
            low = text.lower()
            if low.endswith(_LISTINGS):
                parts.append(self._listed(Path(text), root))
            elif low.endswith(media):
                rel = (text[len(top):].replace(os.sep, "/") if text.startswith(top)
                       else _relative(Path(text), root))
                label, slash, _ = rel.partition("/")
                paths.append(text)
                rels.append(rel)
                labels.append(label if slash and label else None)
        return _Entries.concat([*parts, _Entries.of(paths, rels, labels)])

    def _listed(self, listing: Path, root: Path) -> _Entries:
        opts = self.opts
        if listing.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            types = {opts.path_column: pa.string(), **({opts.label_column: pa.string()} if opts.label_column else {})}
            table = pcsv.read_csv(listing, convert_options=pcsv.ConvertOptions(column_types=types))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(listing)
        for column in (opts.path_column, opts.label_column):
            if column and column not in table.column_names:
                raise ExtractError(f"{listing}: no column {column!r} (columns: {', '.join(table.column_names)})",
                                   hint="set data.options.path_column / label_column to the listing's columns")
        paths = table.column(opts.path_column).to_pylist()
        labels = table.column(opts.label_column).to_pylist() if opts.label_column else [None] * len(paths)
        files: list[str] = []
        rels: list[str] = []
        for row, text in enumerate(paths, start=2):
            if not text:
                raise ExtractError(f"{listing}, row {row}: column {opts.path_column!r} is empty",
                                   hint="give every row the path of a file (relative to the listing's folder)")
            path = Path(text) if Path(text).is_absolute() else listing.parent / text
            if not path.is_file():
                raise ExtractError(f"{listing}, row {row}: {self.name} file {text} does not exist ({path})",
                                   hint="fix the path (relative to the listing's folder) or remove the row")
            files.append(str(path))
            rels.append(_relative(path, root))
        return _Entries.of(files, rels, [None if label is None else str(label) for label in labels])

    def _bad(self, path: str, error: str) -> None:
        if self.opts.bad_files == "quarantine":
            self.rejected.append((path, error))
            return
        raise ExtractError(f"{self.name} file {path} {error}",
                           hint="replace or delete the file, or set data.options.bad_files: quarantine to "
                                "list such files in outputs/rejects/ and go on without them")

    def _workers(self) -> int:
        if self.opts.workers is not None:
            return int(self.opts.workers)
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        return max(1, min(cores, 8))


def _stat_some(paths: list[str]) -> np.ndarray:
    """``[n, 3]``: size, mtime (ns) and inode of each path. Each file is stat'ed relative to its
    folder's descriptor where the OS allows (the kernel resolves one name, not the whole path),
    and the numbers go into one flat list (a tuple per file costs as much again as the stat)."""
    out: list[int] = []
    put = out.extend
    stat = os.stat
    folder, fd = None, None
    try:
        for path in paths:
            head, _, name = path.rpartition(os.sep)
            if head != folder:
                if fd is not None:
                    os.close(fd)
                folder, fd = head, _open_folder(head)
            st = stat(path) if fd is None else stat(name, dir_fd=fd)
            put((st.st_size, st.st_mtime_ns, st.st_ino))
    except OSError as exc:
        raise ExtractError(f"cannot read {path}: {exc.strerror}",
                           hint="the file changed while it was indexed (moved, deleted, permissions): "
                                "run the command again") from None
    finally:
        if fd is not None:
            os.close(fd)
    return np.array(out, dtype=np.int64).reshape(-1, 3)


def _open_folder(folder: str) -> int | None:
    """A descriptor of ``folder`` for ``stat(name, dir_fd=...)``, or None (no ``dir_fd`` on this
    OS, a bare name, a folder that can be searched but not read)."""
    if not folder or os.stat not in os.supports_dir_fd:
        return None
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None


def _stat_all(paths: list[str], threads: int = 1) -> np.ndarray:
    """``[n, 3]`` int64: size, mtime (ns) and inode of every path, by ``threads`` threads. One
    by default: on a local disk whose inodes are cached a stat is too short for threads to gain
    (4 threads took 0.44 s where one took 0.29 s for 100,000 files, fighting over the GIL); more
    may pay on a network file system, where each stat waits."""
    n = len(paths)
    if n < 2048 or threads <= 1:
        return _stat_some(paths)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(_stat_some, [paths[i * n // threads:(i + 1) * n // threads] for i in range(threads)]))
    return np.concatenate(parts)


def _rows_of(rels: pa.Array, known: pa.ChunkedArray) -> np.ndarray:
    """For each of ``rels``, its row among the manifest's paths ``known``, or -1."""
    import pyarrow.compute as pc

    if len(known) == len(rels) and known.equals(pa.chunked_array([rels], pa.string())):
        return np.arange(len(rels), dtype=np.int64)  # the same files in the same order: no lookup
    at = pc.index_in(rels, value_set=known.combine_chunks())
    return pc.fill_null(at, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _ends_with(texts: pa.Array, suffixes: Sequence[str]) -> pa.Array:
    """Which of ``texts`` end with one of ``suffixes``, ignoring case (as ``str.lower``)."""
    import pyarrow.compute as pc

    return pc.match_substring_regex(texts, "(?:" + "|".join(map(re.escape, suffixes)) + ")$", ignore_case=True)


def _folder_entries(texts: list[str], top: str, suffixes: Sequence[str]) -> _Entries | None:
    """The entries of ``texts`` when they are the files of the folder ``top`` (the common case:
    no listing among them), computed over an Arrow column (string operations per file in
    Python cost as much as the ``stat`` itself on 100,000 files); else None."""
    import pyarrow.compute as pc

    if not texts:
        return _Entries.of([], [], [])
    try:
        array = pa.array(texts, pa.string())
    except UnicodeEncodeError:  # a name that is not UTF-8 (kept as surrogate escapes)
        return None
    if not pc.all(pc.starts_with(array, top)).as_py() or pc.any(_ends_with(array, _LISTINGS)).as_py():
        return None
    keep = _ends_with(array, suffixes)
    if not pc.all(keep).as_py():
        texts = list(itertools.compress(texts, keep.to_pylist()))
        array = array.filter(keep)
    rels = pc.utf8_slice_codeunits(array, len(top))
    if os.sep != "/":
        rels = pc.replace_substring(rels, os.sep, "/")
    labels = pc.extract_regex(rels, r"^(?P<label>[^/]+)/").flatten()[0]
    return _Entries(texts, rels, labels, absolute=os.path.isabs(top))


def _binary(values: np.ndarray) -> pa.Array:
    """The rows of a uint8 ``[n, width]`` block as a binary array (one buffer copy)."""
    n, width = values.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.Array.from_buffers(pa.binary(), n, [None, offsets, pa.py_buffer(np.ascontiguousarray(values).tobytes())])


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from a fork server that imported only the decoding module: the
    reader runs inside DuckDB's scan threads, and forking a threaded process can deadlock."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["blase.contrib._decode"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)
