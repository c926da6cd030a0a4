"""The images index (``.blase/index/images-*``): a re-scan of an unchanged folder decodes and
writes nothing, and every kind of change is still noticed, through the real reader and files."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from blase.contrib._images import ImageOptions, ImageReader
from blase.errors import ExtractError

HOUR_NS = 3600 * 10**9


def _image(path: Path, value: int, size: tuple[int, int] = (12, 10)) -> Path:
    """A BMP (uncompressed: two images of one size have the same byte count) of one grey value."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size[::-1], value, dtype=np.uint8), "L").save(path)
    return path


def _age(path: Path, ns: int = HOUR_NS) -> Path:
    """Make ``path`` older (by an hour): past the window in which a stat is not trusted."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - ns))
    return path


def _folder(tmp_path: Path, *, aged: bool = True) -> Path:
    """``images/dark/{0,1,2}.bmp`` (grey 40) and ``images/light/{0,1,2}.bmp`` (grey 200), an
    hour old unless ``aged`` is False (a folder written just before it is indexed)."""
    root = tmp_path / "images"
    (tmp_path / ".blase").mkdir(exist_ok=True)  # the index goes to tmp_path/.blase/index
    for label, value in (("dark", 40), ("light", 200)):
        for i in range(3):
            path = _image(root / label / f"{i}.bmp", value)
            if aged:
                _age(path)
    return root


def _scan(root: Path) -> tuple[ImageReader, pa.Table]:
    """Index the folder's files as a run does (listed again each time) and read the rows."""
    reader = ImageReader(ImageOptions(workers=1, size=4, mode="L"))
    files = sorted(p for p in root.rglob("*") if p.is_file())
    table = pa.Table.from_batches(list(reader.read_files(files, root=root, batch_rows=100)))
    return reader, table


def _row(table: pa.Table, path: str) -> dict:
    rows = [r for r in table.to_pylist() if r["path"] == path]
    assert len(rows) == 1, (path, table["path"].to_pylist())
    return rows[0]


def test_an_unchanged_folder_is_neither_decoded_nor_written_again(tmp_path):
    root = _folder(tmp_path)
    reader, first = _scan(root)
    assert reader.index_stats == {"files": 6, "unchanged": 0, "decoded": 6}
    manifest = next((tmp_path / ".blase" / "index").glob("images-*/manifest.parquet"))
    before = manifest.stat()
    reader, again = _scan(root)
    assert reader.index_stats == {"files": 6, "unchanged": 6, "decoded": 0}
    assert again.equals(first)
    after = manifest.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)  # not rewritten


def _rewrite_in_place_same_size(root: Path) -> None:
    path = root / "dark" / "0.bmp"
    old = path.stat()
    _image(path, 255)
    assert path.stat().st_size == old.st_size and path.stat().st_ino == old.st_ino
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns + 1))  # one nanosecond later


def _replace_same_mtime_other_size(root: Path) -> None:
    path = root / "dark" / "0.bmp"
    old = path.stat()
    _image(path, 255, size=(20, 16))
    assert path.stat().st_size != old.st_size
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))


def _replace_same_size_and_mtime_new_inode(root: Path) -> None:
    path = root / "dark" / "0.bmp"
    old = path.stat()
    other = shutil.copyfile(root / "light" / "0.bmp", root / "new.tmp")
    os.utime(other, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(other, path)  # how editors and `cp --preserve` over a file save it
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)


CHANGES: dict[str, tuple[Callable[[Path], object], dict[str, int], Callable[[pa.Table], None]]] = {
    "rewritten in place, same size, mtime 1 ns later": (
        _rewrite_in_place_same_size, {"files": 6, "unchanged": 5, "decoded": 1},
        lambda t: _row(t, "dark/0.bmp")["brightness"] == pytest.approx(255.0)),
    "replaced by another size, same mtime": (
        _replace_same_mtime_other_size, {"files": 6, "unchanged": 5, "decoded": 1},
        lambda t: _row(t, "dark/0.bmp")["width"] == 20),
    "replaced by another file, same size and mtime": (
        _replace_same_size_and_mtime_new_inode, {"files": 6, "unchanged": 5, "decoded": 1},
        lambda t: _row(t, "dark/0.bmp")["brightness"] == pytest.approx(200.0)),
    "added": (
        lambda root: _age(_image(root / "light" / "9.bmp", 230)), {"files": 7, "unchanged": 6, "decoded": 1},
        lambda t: _row(t, "light/9.bmp")["label"] == "light"),
    "removed": (
        lambda root: (root / "dark" / "1.bmp").unlink(), {"files": 5, "unchanged": 5, "decoded": 0},
        lambda t: "dark/1.bmp" not in t["path"].to_pylist()),
    "renamed": (
        lambda root: (root / "dark" / "1.bmp").rename(root / "dark" / "one.bmp"),
        {"files": 6, "unchanged": 5, "decoded": 1},
        lambda t: "dark/1.bmp" not in t["path"].to_pylist() and _row(t, "dark/one.bmp")["brightness"] == 40.0),
    "moved to another class folder": (
        lambda root: (root / "dark" / "1.bmp").rename(root / "light" / "1-was-dark.bmp"),
        {"files": 6, "unchanged": 5, "decoded": 1},
        lambda t: _row(t, "light/1-was-dark.bmp")["label"] == "light"),
    "class folder renamed": (
        lambda root: (root / "light").rename(root / "bright"), {"files": 6, "unchanged": 3, "decoded": 3},
        lambda t: sorted(set(t["label"].to_pylist())) == ["bright", "dark"]),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_to_the_folder_is_noticed(tmp_path, change):
    make, stats, check = CHANGES[change]
    root = _folder(tmp_path)
    _scan(root)
    make(root)
    reader, table = _scan(root)
    assert reader.index_stats == stats
    assert check(table) is not False
    # the index now holds the change: a third scan decodes nothing and reads the same rows
    reader, again = _scan(root)
    assert reader.index_stats["decoded"] == 0 and again.equals(table)


def test_a_file_rewritten_in_the_same_timestamp_tick_as_its_scan_is_noticed(tmp_path):
    """A folder indexed just after it was written: a rewrite of the same size whose mtime shows no
    change (coarse clocks tick every few ms; FAT every 2 s) is still read again, because the index
    does not trust a stat that close to the moment it was taken (git's "racily clean" rule)."""
    root = _folder(tmp_path, aged=False)
    _scan(root)
    path = root / "dark" / "0.bmp"
    old = path.stat()
    _image(path, 255)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))  # the same size and mtime as indexed
    reader, table = _scan(root)
    assert _row(table, "dark/0.bmp")["brightness"] == pytest.approx(255.0)
    # once the files are older than the window, nothing is decoded again
    for file in root.rglob("*.bmp"):
        _age(file)
    _scan(root)
    reader, _ = _scan(root)
    assert reader.index_stats == {"files": 6, "unchanged": 6, "decoded": 0}


def test_a_listing_relabelled_is_not_decoded_again(tmp_path):
    root = _folder(tmp_path)
    listing = root / "labels.csv"
    listing.write_text("path,label\ndark/0.bmp,night\nlight/0.bmp,day\n")
    reader = ImageReader(ImageOptions(workers=1, size=4, mode="L"))
    list(reader.read_files([listing], root=root, batch_rows=10))
    listing.write_text("path,label\ndark/0.bmp,evening\nlight/0.bmp,morning\n")
    table = pa.Table.from_batches(list(reader.read_files([listing], root=root, batch_rows=10)))
    assert reader.index_stats == {"files": 2, "unchanged": 2, "decoded": 0}
    assert table["label"].to_pylist() == ["evening", "morning"]


def test_names_beyond_ascii_keep_their_paths_and_labels(tmp_path):
    root = tmp_path / "imágenes"
    (tmp_path / ".blase").mkdir()
    _age(_image(root / "día" / "ñ.bmp", 200))
    _age(_image(root / "noche" / "1.bmp", 40))
    _age(_image(root / "top.bmp", 90))  # no class folder: no label
    reader, table = _scan(root)
    assert table["path"].to_pylist() == ["día/ñ.bmp", "noche/1.bmp", "top.bmp"]
    assert table["label"].to_pylist() == ["día", "noche", None]
    reader, _ = _scan(root)
    assert reader.index_stats["decoded"] == 0


def test_a_file_gone_before_it_is_indexed_is_an_error_naming_it(tmp_path):
    root = _folder(tmp_path)
    files = sorted(root.rglob("*.bmp"))
    files[2].unlink()
    reader = ImageReader(ImageOptions(workers=1, size=4, mode="L"))
    with pytest.raises(ExtractError, match=rf"cannot read {files[2]}: No such file") as err:
        reader.index(files, root=root)
    assert "run the command again" in err.value.hint
