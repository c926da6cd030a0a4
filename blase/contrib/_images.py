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

import io
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from blase.errors import ExtractError
from blase.extract import SourceReader

__all__ = ["IMAGE_SUFFIXES", "ImageIndex", "ImageOptions", "ImageReader", "decode_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_LISTINGS = (".csv", ".parquet")
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


def _to_mode(im: Any, mode: str) -> Any:
    """``im`` as an 8-bit ``L`` or ``RGB`` image: 16/32-bit greys are scaled to 8 bits,
    transparency is laid over white, palette and CMYK images are converted."""
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im.convert("RGBA"))
    return im.convert(mode) if im.mode != mode else im


def decode_image(path: str, size: int, mode: str) -> dict[str, Any]:
    """Read, hash, decode and resize one file: ``{"hash", "width", "height", "pixels"}``,
    or ``{"hash", "error"}`` saying what is wrong with it. Runs in the worker processes."""
    import xxhash
    from PIL import Image, UnidentifiedImageError

    with open(path, "rb") as fh:
        data = fh.read()
    digest = xxhash.xxh3_128_hexdigest(data)
    if not data:
        return {"hash": digest, "error": "is empty (0 bytes)"}
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            width, height = im.size
            small = _to_mode(im, mode).resize((size, size), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return {"hash": digest, "error": f"cannot be decoded as an image ({type(exc).__name__}: {exc})"}
    pixels = np.asarray(small, dtype=np.uint8)
    return {"hash": digest, "width": width, "height": height, "pixels": pixels.tobytes()}


def _decode_many(paths: list[str], size: int, mode: str) -> list[dict[str, Any]]:
    return [decode_image(p, size, mode) for p in paths]


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


class ImageIndex:
    """What is known about each file of one folder under one set of decoding options: its
    stat (size, mtime, inode), content hash, original size, label and decoded pixels, kept as
    one Parquet file. :meth:`lookup` says which files are unchanged since they were indexed."""

    COLUMNS = ("path", "size", "mtime_ns", "inode", "hash", "width", "height", "label", "pixels", "error")

    def __init__(self, root: Path, size: int, mode: str) -> None:
        import xxhash

        key = xxhash.xxh3_64_hexdigest(f"{root.resolve()}|{size}|{mode}".encode("utf-8", "surrogateescape"))
        self.file = _index_dir(root) / f"images-{key}.parquet"
        self.known: dict[str, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self.hits = self.misses = 0
        if self.file.is_file():
            import pyarrow.parquet as pq

            try:
                self.known = {r["path"]: r for r in pq.read_table(self.file).to_pylist()}
            except (OSError, pa.ArrowInvalid):
                self.known = {}  # a rebuildable cache: a bad one is rebuilt

    def lookup(self, rel: str, st: os.stat_result) -> dict[str, Any] | None:
        row = self.known.get(rel)
        if row is not None and (row["size"], row["mtime_ns"], row["inode"]) == (st.st_size, st.st_mtime_ns, st.st_ino):
            self.hits += 1
            return row
        self.misses += 1
        return None

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def save(self) -> None:
        """Write the files seen in this pass (files gone since are forgotten)."""
        import pyarrow.parquet as pq

        from blase._fs import atomic_path

        if self.misses == 0 and len(self.rows) == len(self.known):
            return  # nothing changed
        schema = pa.schema([("path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
                            ("inode", pa.int64()), ("hash", pa.string()), ("width", pa.int32()),
                            ("height", pa.int32()), ("label", pa.string()), ("pixels", pa.binary()),
                            ("error", pa.string())])
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.file, fsync=False) as tmp:
                pq.write_table(pa.Table.from_pylist(self.rows, schema=schema), tmp, compression="zstd")
        except OSError:
            pass  # a cache: the next read decodes again


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

    def read_files(self, files: Sequence[Path], *, root: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
        opts = self.opts
        self.rejected = []
        entries = self._entries(files, root)
        if not entries:
            raise ExtractError(f"{root} holds no image files ({', '.join(IMAGE_SUFFIXES)})",
                               hint="put images in class subfolders (data/images/cat/1.png), or list them in a CSV")
        index = ImageIndex(root, opts.size, opts.mode)
        schema = self.schema()
        chunk = max(1, min(batch_rows, 1024))
        pool = None
        try:
            for start in range(0, len(entries), chunk):
                rows, todo = self._known(entries[start:start + chunk], index)
                if todo:
                    if pool is None and len(entries) - start >= _POOL_MIN and self._workers() > 1:
                        pool = _pool(self._workers())
                    self._decode(todo, rows, pool)
                for row in rows:
                    index.add(row)
                    if row["error"] is not None:  # newly found, or known bad from the index
                        self._bad(row)
                batch = self._batch([r for r in rows if r["error"] is None], schema)
                if batch.num_rows:
                    yield batch
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        index.save()
        self.index_stats = {"files": len(entries), "unchanged": index.hits, "decoded": index.misses}

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

    @staticmethod
    def _known(entries: list[_Entry], index: ImageIndex) -> tuple[list[dict[str, Any]], list[int]]:
        rows: list[dict[str, Any]] = []
        todo: list[int] = []
        for entry in entries:
            st = entry.path.stat()
            row = {"path": entry.rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino,
                   "label": entry.label, "abs": str(entry.path)}
            known = index.lookup(entry.rel, st)
            if known is not None:
                row |= {k: known[k] for k in ("hash", "width", "height", "pixels", "error")}
            else:
                todo.append(len(rows))
            rows.append(row)
        return rows, todo

    def _decode(self, todo: list[int], rows: list[dict[str, Any]], pool: ProcessPoolExecutor | None) -> None:
        opts = self.opts
        paths = [rows[i]["abs"] for i in todo]
        if pool is None:
            results = _decode_many(paths, opts.size, opts.mode)
        else:
            n = max(1, -(-len(paths) // (4 * self._workers())))
            parts = [paths[i:i + n] for i in range(0, len(paths), n)]
            results = [r for part in pool.map(_decode_many, parts, [opts.size] * len(parts),
                                              [opts.mode] * len(parts)) for r in part]
        for i, result in zip(todo, results, strict=True):
            rows[i] |= {"width": None, "height": None, "pixels": None, "error": None} | result

    def _bad(self, row: dict[str, Any]) -> None:
        if self.opts.bad_files == "quarantine":
            self.rejected.append((row["abs"], row["error"]))
            return
        raise ExtractError(f"image {row['abs']} {row['error']}",
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

    def _batch(self, rows: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
        opts = self.opts
        channels = 1 if opts.mode == "L" else 3
        n = opts.size * opts.size * channels
        pixels = np.frombuffer(b"".join(r["pixels"] for r in rows), dtype=np.uint8).reshape(len(rows), n)
        per_channel = pixels.reshape(len(rows), -1, channels).astype(np.float32)
        columns: list[Any] = [pa.array([r["path"] for r in rows], pa.string()),
                              pa.array([r["label"] for r in rows], pa.string()),
                              pa.array([r["width"] for r in rows], pa.int32()),
                              pa.array([r["height"] for r in rows], pa.int32()),
                              pa.array([r["size"] for r in rows], pa.int64()),
                              pa.array(per_channel.mean(axis=(1, 2)), pa.float32()),
                              pa.array(per_channel.std(axis=(1, 2)), pa.float32())]
        if channels == 3:
            columns += [pa.array(per_channel[:, :, c].mean(axis=1), pa.float32()) for c in range(3)]
        columns += [pa.array(pixels[:, i]) for i in range(n)]
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
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes started fresh (spawn): the reader runs inside DuckDB's scan threads,
    and forking a threaded process can deadlock."""
    import multiprocessing

    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
