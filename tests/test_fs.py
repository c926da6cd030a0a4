"""blase._fs: the one atomic writer, on real files (no mocks of os)."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from blase._fs import (
    AtomicTarget,
    atomic_path,
    replace_dir,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_write_bytes_text_and_json(tmp_path: Path) -> None:
    write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01")
    write_text_atomic(tmp_path / "b.txt", "héllo\n")
    write_json_atomic(tmp_path / "c.json", {"b": 1, "a": [1.5, None]}, sort_keys=True)
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_text(encoding="utf-8") == "héllo\n"
    text = (tmp_path / "c.json").read_text()
    assert text.endswith("\n") and json.loads(text) == {"a": [1.5, None], "b": 1}
    assert text.index('"a"') < text.index('"b"')
    assert _leftovers(tmp_path, {"a.bin", "b.txt", "c.json"}) == []


def test_new_file_has_the_usual_mode(tmp_path: Path) -> None:
    """A temporary then rename must not leave a file more private than a plain open()."""
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    write_bytes_atomic(tmp_path / "atomic", b"x")
    with atomic_path(tmp_path / "named") as tmp, open(tmp, "wb") as f:
        np.save(f, np.arange(3))  # a file object: given a name, numpy would append ".npy"
    mode = stat.S_IMODE(plain.stat().st_mode)
    assert stat.S_IMODE((tmp_path / "atomic").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "named").stat().st_mode) == mode


def test_a_writer_that_raises_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    before = path.read_bytes()

    with pytest.raises(RuntimeError, match="half-way"), atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, pa.schema([("x", pa.int64())])) as writer:
            writer.write_table(pa.table({"x": [3]}))
        raise RuntimeError("failed half-way")

    assert path.read_bytes() == before
    assert _leftovers(tmp_path, {"table.parquet"}) == []


def test_a_failed_json_encode_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_json_atomic(path, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"v": object()})
    assert json.loads(path.read_text()) == {"v": 1}
    assert _leftovers(tmp_path, {"state.json"}) == []


def test_a_block_that_writes_nothing_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("old")
    with atomic_path(path):
        pass
    assert path.read_text() == "old"


def test_atomic_target_commit_and_discard(tmp_path: Path) -> None:
    kept = AtomicTarget(tmp_path / "kept.csv")
    kept.tmp.write_text("a\n1\n")
    assert not (tmp_path / "kept.csv").exists()  # nothing visible before commit
    kept.commit()
    dropped = AtomicTarget(tmp_path / "kept.csv")
    dropped.tmp.write_text("half")
    dropped.discard()
    assert (tmp_path / "kept.csv").read_text() == "a\n1\n"
    assert _leftovers(tmp_path, {"kept.csv"}) == []


def test_commit_of_a_read_only_temporary(tmp_path: Path) -> None:
    """The content store makes its objects read-only before the rename."""
    with atomic_path(tmp_path / "obj") as tmp:
        tmp.write_bytes(b"immutable")
        os.chmod(tmp, 0o444)
    assert (tmp_path / "obj").read_bytes() == b"immutable"


def _hammer(path: str, byte: int, times: int) -> None:
    payload = bytes([byte]) * 200_000
    for _ in range(times):
        write_bytes_atomic(path, payload)


def test_concurrent_writers_never_tear_the_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.bin"
    write_bytes_atomic(path, b"a" * 200_000)
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_hammer, args=(str(path), b, 40)) for b in b"bcd"]
    for w in writers:
        w.start()
    seen = set()
    while any(w.is_alive() for w in writers):
        data = path.read_bytes()
        assert len(data) == 200_000 and len(set(data)) == 1, "a reader saw a torn file"
        seen.add(data[0])
    for w in writers:
        w.join()
        assert w.exitcode == 0
    data = path.read_bytes()
    assert len(data) == 200_000 and len(set(data)) == 1
    assert _leftovers(tmp_path, {"shared.bin"}) == []


def test_replace_dir_swaps_a_whole_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    tmp = tmp_path / ".out.tmp"
    tmp.mkdir()
    (tmp / "new.txt").write_text("new")
    replace_dir(tmp, out)
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert _leftovers(tmp_path, {"out"}) == []


def test_resolved_relative_gives_what_resolve_and_relative_to_give(tmp_path, monkeypatch):
    """The extract step keys each file by this: a change of key would re-run every cached step."""
    from blase._fs import resolved_relative

    root = tmp_path / "proj"
    (root / "data" / "día").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    real = root / "data" / "día" / "ñ.png"
    real.write_bytes(b"x")
    (tmp_path / "elsewhere" / "out.png").write_bytes(b"y")
    (root / "data" / "link.png").symlink_to(real)  # a linked file: keyed by its target
    (root / "data" / "linked").symlink_to(root / "data" / "día")  # a linked folder
    (root / "data" / "away.png").symlink_to(tmp_path / "elsewhere" / "out.png")  # out of the project
    monkeypatch.chdir(root)
    files = [real, root / "data" / "link.png", root / "data" / "linked" / "ñ.png",
             root / "data" / "día" / ".." / "día" / "ñ.png", Path("data/día/ñ.png"),
             root / "data" / "away.png", tmp_path / "elsewhere" / "out.png"]

    def resolve_each(path: Path) -> str:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(path)

    expected = [resolve_each(f) for f in files]
    assert resolved_relative(files, root) == expected
    assert expected[:5] == ["data/día/ñ.png"] * 5 and expected[5:] == [str(f) for f in files[5:]]
