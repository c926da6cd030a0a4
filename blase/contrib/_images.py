"""The ``images`` source plugin: a folder of image files (a class per subfolder), or a CSV or
Parquet listing of paths and labels, decoded once into fixed-size uint8 pixel columns.

``data: {source: data/images, format: images, options: {size: 28, mode: L}}`` reads every
``.png``/``.jpg``/``.jpeg``/``.bmp``/``.gif``/``.webp``/``.tif`` file under ``data/images``;
the first folder under it is the label (``data/images/cat/001.png`` is a ``cat``; a file
directly in the folder has no label, as for new images to score). Each image is converted to
``mode`` (``L`` grey or ``RGB``: palette, CMYK, 16-bit and alpha images are converted, never
refused), resized to ``size`` x ``size`` and written as one uint8 column per value
(``px_00000``..., row-major, channels last), beside ``path``, ``label``, the original
``width`` and ``height``, ``bytes`` and the image statistics Monitor compares
(``brightness``, ``contrast``, ``mean_r``/``mean_g``/``mean_b``).

Decoding runs in ``workers`` processes. The result of every file is kept in an index, one
Parquet file per folder and decoding options under the project's ``.blase/index/`` (path,
size, mtime, inode, content hash, width, height, label and the decoded pixels), so reading
the folder again (``blase check``, the schema, a new run, ``blase predict``) stats each file
and decodes only the new and changed ones.

A zero-byte or undecodable file is an error naming it, or with ``bad_files: quarantine`` a
row of ``outputs/rejects/<source>.csv`` (counted as rejected in the run).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from blase.contrib._decode import decode_image, decode_many
from blase.errors import ExtractError
from blase.extract import SourceReader

__all__ = ["IMAGE_SUFFIXES", "ImageIndex", "ImageOptions", "ImageReader", "decode_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_LISTINGS = (".csv", ".parquet")
logger = logging.getLogger(__name__)
#: Files decoded in the calling process below this count (starting workers costs ~0.3 s).
_POOL_MIN = 64


class ImageOptions(BaseModel):
    """``data.options`` of an image source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(default=32, ge=1, le=1024, description="images are resized to size x size pixels")
    mode: Literal["L", "RGB"] = Field(default="RGB", description="L (grey, one channel) or RGB (three)")
    workers: int | None = Field(default=None, ge=1, description="decoding processes (default: up to 2 per core free)")
    bad_files: Literal["error", "quarantine"] = Field(
        default="error", description="a file that cannot be decoded: fail naming it, or list it in outputs/rejects/")
    path_column: str = Field(default="path", description="a CSV/Parquet listing: the column of image paths")
    label_column: str | None = Field(default="label", description="a listing: the column of labels (None: none)")


@dataclass
class _Entry:
    path: Path
    rel: str
    label: str | None


def _index_dir(root: Path) -> Path:
    """``.blase/index`` of the project around ``root``, else the user's cache folder."""
    for folder in (root, *root.parents):
        if (folder / ".blase").is_dir():
            return folder / ".blase" / "index"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "blase" / "index"


_MANIFEST = pa.schema([("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
                       ("inode", pa.int64()), ("hash", pa.string()), ("width", pa.int32()),
                       ("height", pa.int32()), ("label", pa.string()), ("error", pa.string())])


class ImageIndex:
    """What is known about each file of one folder under one set of decoding options.

    ``manifest.parquet`` holds a row per file (path, size, mtime, inode, content hash, width,
    height, label, and why it could not be decoded) and ``pixels.npy`` the decoded, resized
    uint8 pixels in the same order, memory-mapped. :meth:`update` stats every file and
    decodes only those whose size, mtime or inode changed since (the stat cache's rule);
    when nothing changed nothing is written.
    """

    def __init__(self, root: Path, size: int, mode: str) -> None:
        import xxhash

        key = xxhash.xxh3_64_hexdigest(f"{root.resolve()}|{size}|{mode}".encode("utf-8", "surrogateescape"))
        self.folder = _index_dir(root) / f"images-{key}"
        self.size, self.mode = size, mode
        self.width = size * size * (1 if mode == "L" else 3)
        self.hits = self.misses = 0
        self.manifest: pa.Table | None = None
        self.pixels: np.ndarray | None = None

    @property
    def file(self) -> Path:
        return self.folder / "manifest.parquet"

    def _load(self) -> tuple[pa.Table, np.ndarray] | None:
        import pyarrow.parquet as pq

        try:
            manifest = pq.read_table(self.file)
            pixels = np.load(self.folder / "pixels.npy", mmap_mode="r")
        except (OSError, ValueError, pa.ArrowInvalid):
            return None  # a rebuildable cache: a missing or bad one is rebuilt
        if pixels.shape != (manifest.num_rows, self.width) or manifest.schema != _MANIFEST:
            return None
        return manifest, pixels

    def update(self, entries: list[_Entry], decode: Callable[[list[str]], list[dict[str, Any]]],
               chunk: int) -> None:
        """Bring the index up to date with ``entries`` (decoding with ``decode``); then
        :attr:`manifest` and :attr:`pixels` describe them, in their order."""
        stats = [e.path.stat() for e in entries]
        old = self._load()
        where: dict[str, int] = {}
        if old is not None:
            where = {p: i for i, p in enumerate(old[0].column("path").to_pylist())}
            size, mtime, inode = (old[0].column(c).to_numpy() for c in ("size", "mtime_ns", "inode"))
        rows = np.full(len(entries), -1, dtype=np.int64)
        for k, (entry, st) in enumerate(zip(entries, stats, strict=True)):
            i = where.get(entry.rel, -1)
            if i >= 0 and (size[i], mtime[i], inode[i]) == (st.st_size, st.st_mtime_ns, st.st_ino):
                rows[k] = i
        self.hits = int((rows >= 0).sum())
        self.misses = len(entries) - self.hits
        if old is not None and self.misses == 0 and np.array_equal(rows, np.arange(old[0].num_rows)):
            labels = pa.array([e.label for e in entries], pa.string())
            self.manifest, self.pixels = old[0].set_column(7, "label", labels), old[1]
            return
        self._rewrite(entries, stats, rows, old, decode, chunk)

    def _rewrite(self, entries: list[_Entry], stats: list[os.stat_result], rows: np.ndarray,
                 old: tuple[pa.Table, np.ndarray] | None, decode: Callable[[list[str]], list[dict[str, Any]]],
                 chunk: int) -> None:
        import pyarrow.parquet as pq

        from blase._fs import replace_dir

        self.folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=self.folder.parent))
        try:
            pixels = np.lib.format.open_memmap(tmp / "pixels.npy", mode="w+", dtype=np.uint8,
                                               shape=(len(entries), self.width))
            known = old[0].to_pylist() if old is not None else []
            records: list[dict[str, Any]] = []
            for start in range(0, len(entries), chunk):
                part = range(start, min(start + chunk, len(entries)))
                todo = [k for k in part if rows[k] < 0]
                results = dict(zip(todo, decode([str(entries[k].path) for k in todo]), strict=True))
                for k in part:
                    st = stats[k]
                    record = {"path": entries[k].rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                              "inode": st.st_ino, "label": entries[k].label}
                    if rows[k] >= 0:
                        record |= {c: known[rows[k]][c] for c in ("hash", "width", "height", "error")}
                        pixels[k] = old[1][rows[k]]  # type: ignore[index]
                    else:
                        got = results[k]
                        record |= {"hash": got["hash"], "width": got.get("width"), "height": got.get("height"),
                                   "error": got.get("error")}
                        if got.get("pixels") is not None:
                            pixels[k] = np.frombuffer(got["pixels"], dtype=np.uint8)
                    records.append(record)
            pixels.flush()
            del pixels
            pq.write_table(pa.Table.from_pylist(records, schema=_MANIFEST), tmp / "manifest.parquet")
            replace_dir(tmp, self.folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.manifest = pq.read_table(self.file)
        self.pixels = np.load(self.folder / "pixels.npy", mmap_mode="r")


class ImageReader(SourceReader):
    """Reads a folder of images (or a CSV/Parquet listing of them) as fixed-size pixel rows."""

    name = "images"
    config_model = ImageOptions
    reads_collection = True

    @property
    def opts(self) -> ImageOptions:
        return self.options if isinstance(self.options, ImageOptions) else ImageOptions()

    def read(self, path: Path, *, batch_rows: int) -> Iterator[pa.RecordBatch]:
        yield from self.read_files([path], root=path.parent, batch_rows=batch_rows)

    def index(self, files: Sequence[Path], *, root: Path) -> ImageIndex:
        """The index of ``files``, brought up to date (new and changed files decoded)."""
        opts = self.opts
        entries = self._entries(files, root)
        if not entries:
            raise ExtractError(f"{root} holds no image files ({', '.join(IMAGE_SUFFIXES)})",
                               hint="put images in class subfolders (data/images/cat/1.png), or list them in a CSV")
        index = ImageIndex(root, opts.size, opts.mode)
        workers = self._workers()
        pool: ProcessPoolExecutor | None = None
        try:
            def decode(paths: list[str]) -> list[dict[str, Any]]:
                nonlocal pool, workers
                if len(paths) < _POOL_MIN or workers < 2:
                    return decode_many(paths, opts.size, opts.mode)
                if pool is None:
                    pool = _pool(workers)
                n = max(1, -(-len(paths) // (4 * workers)))
                parts = [paths[i:i + n] for i in range(0, len(paths), n)]
                try:
                    return [r for part in pool.map(decode_many, parts, [opts.size] * len(parts),
                                                   [opts.mode] * len(parts)) for r in part]
                except BrokenProcessPool:  # workers that cannot start (a script read from stdin)
                    logger.warning("images: the decoding processes failed to start; decoding in this one")
                    workers = 1
                    return decode_many(paths, opts.size, opts.mode)

            index.update(entries, decode, chunk=max(256, 64 * workers))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        self.index_stats = {"files": len(entries), "unchanged": index.hits, "decoded": index.misses}
        return index

    def read_files(self, files: Sequence[Path], *, root: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
        self.rejected = []
        index = self.index(files, root=root)
        assert index.manifest is not None and index.pixels is not None
        errors = index.manifest.column("error")
        if errors.null_count < len(errors):
            for i in np.flatnonzero(~np.asarray(errors.is_null())):
                self._bad(str(root / index.manifest.column("path")[int(i)].as_py()), errors[int(i)].as_py())
        schema = self.schema()
        chunk = max(1, min(batch_rows, 4096))
        for start in range(0, index.manifest.num_rows, chunk):
            part = index.manifest.slice(start, chunk)
            good = np.asarray(part.column("error").is_null())
            batch = self._batch(part.filter(pa.array(good)), np.asarray(index.pixels[start:start + chunk])[good], schema)
            if batch.num_rows:
                yield batch

    # -- phases ---------------------------------------------------------------------------------

    def _entries(self, files: Sequence[Path], root: Path) -> list[_Entry]:
        out: list[_Entry] = []
        for path in files:
            if path.suffix.lower() in _LISTINGS:
                out.extend(self._listed(path, root))
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                rel = _relative(path, root)
                parts = rel.split("/")
                out.append(_Entry(path, rel, parts[0] if len(parts) > 1 else None))
        return out

    def _listed(self, listing: Path, root: Path) -> list[_Entry]:
        opts = self.opts
        if listing.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(listing, convert_options=pcsv.ConvertOptions(
                column_types={opts.path_column: pa.string(), **({opts.label_column: pa.string()}
                                                                if opts.label_column else {})}))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(listing)
        for column in (opts.path_column, opts.label_column):
            if column and column not in table.column_names:
                raise ExtractError(f"{listing}: no column {column!r} (columns: {', '.join(table.column_names)})",
                                   hint="set data.options.path_column / label_column to the listing's columns")
        paths = table.column(opts.path_column).to_pylist()
        labels = table.column(opts.label_column).to_pylist() if opts.label_column else [None] * len(paths)
        out = []
        for row, (text, label) in enumerate(zip(paths, labels, strict=True), start=2):
            if not text:
                raise ExtractError(f"{listing}, row {row}: column {opts.path_column!r} is empty",
                                   hint="give every row the path of an image (relative to the listing's folder)")
            path = Path(text) if Path(text).is_absolute() else listing.parent / text
            if not path.is_file():
                raise ExtractError(f"{listing}, row {row}: image {text} does not exist ({path})",
                                   hint="fix the path (relative to the listing's folder) or remove the row")
            out.append(_Entry(path, _relative(path, root), None if label is None else str(label)))
        return out

    def _bad(self, path: str, error: str) -> None:
        if self.opts.bad_files == "quarantine":
            self.rejected.append((path, error))
            return
        raise ExtractError(f"image {path} {error}",
                           hint="replace or delete the file, or set data.options.bad_files: quarantine to "
                                "list such files in outputs/rejects/ and go on without them")

    def schema(self) -> pa.Schema:
        opts = self.opts
        channels = 1 if opts.mode == "L" else 3
        stats = ["brightness", "contrast"] + (["mean_r", "mean_g", "mean_b"] if channels == 3 else [])
        n = opts.size * opts.size * channels
        return pa.schema([("path", pa.string()), ("label", pa.string()), ("width", pa.int32()),
                          ("height", pa.int32()), ("bytes", pa.int64())]
                         + [(s, pa.float32()) for s in stats]
                         + [(f"px_{i:05d}", pa.uint8()) for i in range(n)])

    def _batch(self, manifest: pa.Table, pixels: np.ndarray, schema: pa.Schema) -> pa.RecordBatch:
        channels = 1 if self.opts.mode == "L" else 3
        per_channel = pixels.reshape(len(pixels), -1, channels).astype(np.float32)
        columns: list[Any] = [manifest.column("path").combine_chunks(), manifest.column("label").combine_chunks(),
                              manifest.column("width").combine_chunks(), manifest.column("height").combine_chunks(),
                              manifest.column("size").combine_chunks(),
                              pa.array(per_channel.mean(axis=(1, 2)), pa.float32()),
                              pa.array(per_channel.std(axis=(1, 2)), pa.float32())]
        if channels == 3:
            columns += [pa.array(per_channel[:, :, c].mean(axis=1), pa.float32()) for c in range(3)]
        columns += [pa.array(pixels[:, i]) for i in range(pixels.shape[1])]
        return pa.RecordBatch.from_arrays(columns, schema=schema)

    def _workers(self) -> int:
        if self.opts.workers is not None:
            return self.opts.workers
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:
            cores = os.cpu_count() or 1
        return max(1, min(cores, 8))

    def write_example(self, folder: Path) -> Path:
        from PIL import Image

        root = Path(folder) / "images"
        rng = np.random.default_rng(0)
        for label in ("dark", "light"):
            (root / label).mkdir(parents=True, exist_ok=True)
            for i in range(4):
                base = 40 if label == "dark" else 200
                arr = np.clip(rng.normal(base, 20, (12, 12, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr, "RGB").save(root / label / f"{i}.png")
        return root


def _relative(path: Path, root: Path) -> str:
    for a, b in ((path, root), (path.resolve(), root.resolve())):
        try:
            return a.relative_to(b).as_posix()
        except ValueError:
            continue
    return path.as_posix()


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes forked from a fork server that imported only the decoding module: the
    reader runs inside DuckDB's scan threads, and forking a threaded process can deadlock."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["blase.contrib._decode"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)
