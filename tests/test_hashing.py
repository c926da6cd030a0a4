"""Tests for blase.hashing: files, folders, the stat cache, configs, code and environment."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blase.errors import HashError
from blase.hashing import (
    RACY_WINDOW_NS,
    CodeHash,
    StatCache,
    _files,
    canonical_json,
    code_hash,
    environment_fingerprint,
    environment_hash,
    hash_bytes,
    hash_config,
    hash_file,
    hash_files,
    hash_folder,
)
from blase.project import Project

PROPERTY = settings(
    derandomize=True,
    database=None,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def write(path: Path, data: bytes, *, age_s: float = 60.0) -> Path:
    """Write ``data`` and date the file ``age_s`` seconds back, out of the racy window."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    set_age(path, age_s)
    return path


def set_age(path: Path, age_s: float) -> None:
    t = time.time_ns() - int(age_s * 1e9)
    os.utime(path, ns=(t, t))


# --------------------------------------------------------------------------- bytes and files


@PROPERTY
@given(data=st.binary(max_size=4096))
def test_same_bytes_same_hash(tmp_path: Path, data: bytes) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        a = write(Path(d, "a"), data)
        b = write(Path(d, "sub", "b"), data)
        assert hash_file(a) == hash_file(b) == hash_bytes(data)
        assert hash_bytes(data) == xxhash.xxh3_128_hexdigest(data)


@PROPERTY
@given(data=st.binary(min_size=1, max_size=4096), where=st.floats(0, 1), delta=st.integers(1, 255))
def test_one_changed_byte_changes_hash(
    tmp_path: Path, data: bytes, where: float, delta: int
) -> None:
    i = min(int(where * len(data)), len(data) - 1)
    changed = bytearray(data)
    changed[i] = (changed[i] + delta) % 256
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        assert hash_file(write(Path(d, "a"), data)) != hash_file(
            write(Path(d, "b"), bytes(changed))
        )


def test_large_file_is_plain_xxh3_128(tmp_path: Path) -> None:
    # Several read buffers long, and not a multiple of the buffer: no tree, no chunk seams.
    data = os.urandom(3 * _files._CHUNK + 12345)
    path = write(tmp_path / "big.bin", data)
    assert hash_file(path) == xxhash.xxh3_128_hexdigest(data)
    assert hash_file(tmp_path / "big.bin") == hash_file(str(path))


def test_empty_file(tmp_path: Path) -> None:
    assert hash_file(write(tmp_path / "empty", b"")) == hash_bytes(b"")


def test_missing_file_names_path_and_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(HashError) as info:
        hash_file(missing)
    assert str(missing) in info.value.message
    assert "no such file" in info.value.message
    assert info.value.hint


def test_folder_passed_to_hash_file(tmp_path: Path) -> None:
    with pytest.raises(HashError) as info:
        hash_file(tmp_path)
    assert str(tmp_path) in info.value.message
    assert "hash_folder" in (info.value.hint or "")


def test_broken_symlink(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(HashError, match="broken symbolic link"):
        hash_file(link)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "secret", b"x")
    path.chmod(0)
    try:
        with pytest.raises(HashError) as info:
            hash_file(path)
    finally:
        path.chmod(0o600)
    assert str(path) in info.value.message
    assert "chmod" in (info.value.hint or "")


def test_unreadable_file_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root can read a chmod 000 file, so also check the message with a refusing open().
    path = write(tmp_path / "secret", b"x")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(_files, "open", refuse, raising=False)
    with pytest.raises(HashError) as info:
        hash_file(path)
    assert str(path) in info.value.message
    assert "permission denied" in info.value.message
    assert "chmod" in (info.value.hint or "")


# --------------------------------------------------------------------------- stat cache


@pytest.fixture
def cache(tmp_path: Path) -> StatCache:
    return StatCache(tmp_path / "stat-cache")


def test_unchanged_file_is_not_read_again(
    tmp_path: Path, cache: StatCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "data.bin", os.urandom(10_000))
    first = hash_file(path, cache=cache)
    assert (cache.hits, cache.misses) == (0, 1)

    def no_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was read again")

    monkeypatch.setattr(_files, "open", no_reads, raising=False)
    assert hash_file(path, cache=cache) == first
    assert (cache.hits, cache.misses) == (1, 1)


def test_cache_is_shared_through_the_project(tmp_path: Path) -> None:
    project = Project(tmp_path)
    path = write(tmp_path / "data" / "a.csv", b"a,b\n1,2\n")
    digest = hash_file(path, cache=StatCache.for_project(project))
    other = StatCache.for_project(project)  # another process, say
    assert other.directory == tmp_path / ".blase" / "cache" / "stat"
    assert hash_file(path, cache=other) == digest
    assert other.hits == 1


@PROPERTY
@given(
    data=st.binary(max_size=512),
    extra=st.binary(min_size=1, max_size=64),
    shift_ns=st.integers(1, 10**12),
)
def test_touch_or_resize_invalidates(
    tmp_path: Path, data: bytes, extra: bytes, shift_ns: int
) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        cache = StatCache(Path(d, "cache"))
        path = write(Path(d, "f"), data, age_s=3600)
        hash_file(path, cache=cache)
        hash_file(path, cache=cache)
        assert cache.hits == 1

        # touch: same bytes, new mtime (still out of the racy window) -> a miss, same digest
        st0 = path.stat()
        os.utime(path, ns=(st0.st_atime_ns, st0.st_mtime_ns + shift_ns))
        assert hash_file(path, cache=cache) == hash_bytes(data)
        assert cache.hits == 1

        # resize with the mtime put back: the size alone invalidates
        mtime = path.stat().st_mtime_ns
        path.write_bytes(data + extra)
        os.utime(path, ns=(mtime, mtime))
        assert hash_file(path, cache=cache) == hash_bytes(data + extra)
        assert cache.hits == 1


def test_replaced_file_with_same_size_and_mtime_is_a_miss(tmp_path: Path, cache: StatCache) -> None:
    path = write(tmp_path / "f", b"aaaa")
    hash_file(path, cache=cache)
    mtime = path.stat().st_mtime_ns
    tmp = write(tmp_path / "g", b"bbbb")
    os.utime(tmp, ns=(mtime, mtime))
    os.replace(tmp, path)  # a new inode
    assert hash_file(path, cache=cache) == hash_bytes(b"bbbb")
    assert cache.hits == 0


def test_racily_clean_file_is_not_cached(tmp_path: Path, cache: StatCache) -> None:
    path = write(tmp_path / "fresh", b"just written", age_s=0)
    hash_file(path, cache=cache)
    hash_file(path, cache=cache)
    assert cache.hits == 0
    assert not cache.put(path, path.stat(), hash_bytes(b"just written"))
    set_age(path, RACY_WINDOW_NS / 1e9 + 1)
    assert cache.put(path, path.stat(), hash_bytes(b"just written"))


def test_corrupt_entry_is_a_miss(tmp_path: Path, cache: StatCache) -> None:
    path = write(tmp_path / "f", b"content")
    digest = hash_file(path, cache=cache)
    (entry,) = [p for p in cache.directory.rglob("*.json")]
    for garbage in (b"", b"{not json", b"[1, 2]", b'{"v": 1}', b"\xff\xfe"):
        entry.write_bytes(garbage)
        assert cache.get(path, path.stat()) is None
        assert hash_file(path, cache=cache) == digest  # and the entry is rewritten
    assert cache.get(path, path.stat()) == digest


def test_clear(tmp_path: Path, cache: StatCache) -> None:
    path = write(tmp_path / "f", b"content")
    hash_file(path, cache=cache)
    cache.clear()
    assert cache.get(path, path.stat()) is None
    cache.clear()  # clearing an empty cache is fine


def test_unwritable_cache_does_not_break_hashing(tmp_path: Path) -> None:
    blocker = write(tmp_path / "blocker", b"a file where the cache folder should be")
    cache = StatCache(blocker / "stat")
    path = write(tmp_path / "f", b"content")
    assert hash_file(path, cache=cache) == hash_bytes(b"content")


def test_concurrent_writers_never_corrupt_entries(tmp_path: Path, cache: StatCache) -> None:
    paths = [write(tmp_path / f"f{i}", os.urandom(1000)) for i in range(8)]
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                for p in paths:
                    assert hash_file(p, cache=cache) == hash_bytes(p.read_bytes())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not list(cache.directory.rglob("*.tmp"))
    assert cache.hits > 0


# --------------------------------------------------------------------------- sets and folders


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        write(root / rel, data)


TREE = {
    "a.csv": b"x\n1\n",
    "sub/b.csv": b"y\n2\n",
    "sub/deeper/c.json": b"{}",
    "img/d.png": b"\x89PNG",
}


def test_hash_folder_ignores_creation_order(tmp_path: Path) -> None:
    make_tree(tmp_path / "one", TREE)
    make_tree(tmp_path / "two", dict(reversed(list(TREE.items()))))
    assert hash_folder(tmp_path / "one") == hash_folder(tmp_path / "two")


def test_hash_folder_sees_contents_names_and_new_files(tmp_path: Path) -> None:
    make_tree(tmp_path / "d", TREE)
    base = hash_folder(tmp_path / "d")
    write(tmp_path / "d" / "sub" / "b.csv", b"y\n3\n")
    changed = hash_folder(tmp_path / "d")
    assert changed != base
    (tmp_path / "d" / "sub" / "b.csv").rename(tmp_path / "d" / "sub" / "b2.csv")
    assert hash_folder(tmp_path / "d") not in (base, changed)


def test_hash_folder_leaves_out_blase_state(tmp_path: Path) -> None:
    make_tree(tmp_path / "d", TREE)
    base = hash_folder(tmp_path / "d")
    write(tmp_path / "d" / ".blase" / "cache" / "x", b"state")
    write(tmp_path / "d" / "sub" / ".blase-tmp", b"state")
    assert hash_folder(tmp_path / "d") == base
    write(tmp_path / "d" / ".hidden", b"user data")  # other dotfiles count
    assert hash_folder(tmp_path / "d") != base


def test_hash_folder_equals_hash_files_and_is_relocatable(tmp_path: Path, cache: StatCache) -> None:
    make_tree(tmp_path / "d", TREE)
    make_tree(tmp_path / "elsewhere" / "copy", TREE)
    files = [tmp_path / "d" / rel for rel in TREE]
    digest = hash_folder(tmp_path / "d", workers=1)
    assert digest == hash_files(files, root=tmp_path / "d", workers=3)
    assert digest == hash_folder(tmp_path / "elsewhere" / "copy", cache=cache)
    assert digest == hash_folder(tmp_path / "elsewhere" / "copy", cache=cache)
    assert cache.hits == len(TREE)


def test_hash_folder_include(tmp_path: Path) -> None:
    make_tree(tmp_path / "d", TREE)
    csvs = hash_folder(tmp_path / "d", include="*.csv")
    assert csvs == hash_files(
        [tmp_path / "d" / "a.csv", tmp_path / "d" / "sub" / "b.csv"], root=tmp_path / "d"
    )
    write(tmp_path / "d" / "img" / "e.png", b"more")
    assert hash_folder(tmp_path / "d", include=["*.csv", "sub/*"]) == hash_folder(
        tmp_path / "d", include=("*.csv", "sub/deeper/*")
    )
    assert hash_folder(tmp_path / "d", include="*.csv") == csvs


def test_hash_folder_follows_symlinks_once(tmp_path: Path) -> None:
    make_tree(tmp_path / "d", TREE)
    plain = hash_folder(tmp_path / "d")
    # a link back up the tree: the real folders are hashed once, the loop adds nothing
    (tmp_path / "d" / "sub" / "loop").symlink_to(tmp_path / "d", target_is_directory=True)
    assert hash_folder(tmp_path / "d") == plain
    # a link to a folder elsewhere is followed: its files count as if they were copied there
    make_tree(tmp_path / "elsewhere", {"e.csv": b"z\n3\n"})
    (tmp_path / "d" / "ext").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    make_tree(tmp_path / "copy", {**TREE, "ext/e.csv": b"z\n3\n"})
    linked = hash_folder(tmp_path / "d")
    assert linked != plain
    assert linked == hash_folder(tmp_path / "copy")
    # and a file link counts as its target's content
    (tmp_path / "d" / "ext").unlink()
    (tmp_path / "d" / "f.csv").symlink_to(tmp_path / "elsewhere" / "e.csv")
    make_tree(tmp_path / "copy2", {**TREE, "f.csv": b"z\n3\n"})
    assert hash_folder(tmp_path / "d") == hash_folder(tmp_path / "copy2")


def test_hash_files_order_duplicates_and_root(tmp_path: Path) -> None:
    make_tree(tmp_path, TREE)
    files = [tmp_path / rel for rel in TREE]
    digest = hash_files(files)
    assert hash_files(list(reversed(files)) + files[:2]) == digest
    assert hash_files([str(f) for f in files], root=tmp_path) == digest
    assert hash_files([]) == hash_files([])
    with pytest.raises(HashError, match="outside the root"):
        hash_files(files, root=tmp_path / "sub")
    with pytest.raises(HashError, match="no such file"):
        hash_files([*files, tmp_path / "missing.csv"])
    with pytest.raises(HashError, match="workers"):
        hash_files(files, workers=0)


def test_hash_folder_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(HashError, match="no such folder") as info:
        hash_folder(tmp_path / "missing")
    assert str(tmp_path / "missing") in info.value.message
    file = write(tmp_path / "f", b"x")
    with pytest.raises(HashError, match="it is a file") as info:
        hash_folder(file)
    assert "hash_file" in (info.value.hint or "")


# --------------------------------------------------------------------------- configs

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


def reordered(value: object) -> object:
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reordered(v) for v in value]
    return value


@settings(derandomize=True, database=None, max_examples=100, deadline=None)
@given(value=json_values)
def test_hash_config_ignores_key_order(value: object) -> None:
    assert hash_config(reordered(value)) == hash_config(value)
    assert hash_config(value) == hash_bytes(canonical_json(value).encode())


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Params:
    lr: float
    path: Path
    tags: set[str]


def test_canonical_json_of_rich_objects() -> None:
    from pydantic import BaseModel

    class Model(BaseModel):
        lr: float
        layers: tuple[int, ...]
        path: Path

    assert canonical_json({"b": 1, "a": 0.1}) == '{"a":0.1,"b":1}'
    assert canonical_json(Params(0.5, Path("data/x.csv"), {"z", "a"})) == (
        '{"lr":0.5,"path":"data/x.csv","tags":["a","z"]}'
    )
    assert canonical_json(Model(lr=0.1, layers=(3, 4), path=Path("p"))) == (
        '{"layers":[3,4],"lr":0.1,"path":"p"}'
    )
    assert canonical_json((1, Color.RED, frozenset({2, 1}))) == '[1,"red",[1,2]]'
    assert hash_config({"x": 1.0}) != hash_config({"x": 1})  # floats by repr
    assert hash_config({"x": (1, 2)}) == hash_config({"x": [1, 2]})


def test_canonical_json_of_numpy() -> None:
    np = pytest.importorskip("numpy")
    assert canonical_json({"k": np.int64(3), "x": np.float64(0.25), "b": np.bool_(True)}) == (
        '{"b":true,"k":3,"x":0.25}'
    )
    assert canonical_json(np.arange(3)) == "[0,1,2]"
    big = np.arange(100_000, dtype=np.int64)
    assert '"shape":[100000]' in canonical_json(big)  # big arrays by digest, not inline
    assert hash_config(big) == hash_config(big.copy())
    changed = big.copy()
    changed[-1] = -1
    assert hash_config(changed) != hash_config(big)


def test_hash_config_bad_values_say_where() -> None:
    with pytest.raises(HashError, match=r"config\['model'\]\['act'\] is a builtins.object"):
        hash_config({"model": {"act": object()}})
    with pytest.raises(HashError, match="two keys"):
        hash_config({1: "a", "1": "b"})
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(HashError, match="contains itself"):
        hash_config(loop)


# --------------------------------------------------------------------------- code


class CodeLoader:
    """Writes a small project of modules to a fresh folder and imports it."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.prefix = f"bh_{tmp_path.name.replace('-', '_')}_"
        self.version = 0
        self.names: set[str] = set()
        monkeypatch.setattr(sys, "dont_write_bytecode", True)

    def load(self, files: dict[str, str], main: str) -> tuple[object, Path]:
        self.version += 1
        root = self.tmp_path / f"v{self.version}"
        root.mkdir()
        for name, source in files.items():
            text = source.replace("MOD_", self.prefix)
            (root / f"{self.prefix}{name}.py").write_text(text)
            self.names.add(self.prefix + name)
        self.unload()
        sys.path.insert(0, str(root))
        try:
            importlib.invalidate_caches()
            module = importlib.import_module(self.prefix + main)
        finally:
            sys.path.remove(str(root))
        return module, root

    def unload(self) -> None:
        for name in self.names:
            sys.modules.pop(name, None)


@pytest.fixture
def loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    loader = CodeLoader(tmp_path, monkeypatch)
    yield loader
    loader.unload()


HELPERS = """
import math

def clean(x):
    return x.strip().lower()

def unrelated():
    return 1
"""

UTILS = """
def scale(x, k=2):
    return x * k

def unrelated():
    return "old"
"""

OTHER = """
def elsewhere():
    return 0
"""

TRANSFORMS = """
import MOD_helpers as helpers
from MOD_utils import scale

THRESHOLD = 0.5

def transform(rows):
    # keep the long ones
    return [scale(len(helpers.clean(r))) for r in rows if len(r) > THRESHOLD]

def plain(x):
    return x + 1
"""


def project(**changes: str) -> dict[str, str]:
    files = {"helpers": HELPERS, "utils": UTILS, "other": OTHER, "transforms": TRANSFORMS}
    files.update(changes)
    return files


def transform_hash(loader: CodeLoader, **changes: str) -> CodeHash:
    module, root = loader.load(project(**changes), "transforms")
    return code_hash(module.transform, project_root=root)


def test_code_hash_covers_helpers(loader: CodeLoader) -> None:
    base = transform_hash(loader)
    p = loader.prefix
    assert set(base.sources) == {
        f"{p}transforms.transform",
        f"{p}transforms.THRESHOLD",
        f"{p}helpers",
        f"{p}utils.scale",
    }
    assert base == transform_hash(loader)  # same code in another folder: same hash

    # the helper module it calls through an attribute chain
    assert transform_hash(loader, helpers=HELPERS.replace("lower()", "upper()")) != base
    # the function it imported by name, and a global it reads
    assert transform_hash(loader, utils=UTILS.replace("k=2", "k=3")) != base
    assert transform_hash(loader, transforms=TRANSFORMS.replace("0.5", "0.6")) != base
    # its own body
    assert (
        transform_hash(loader, transforms=TRANSFORMS.replace("> THRESHOLD", ">= THRESHOLD")) != base
    )


def test_code_hash_ignores_unrelated_code_and_formatting(loader: CodeLoader) -> None:
    base = transform_hash(loader)
    assert transform_hash(loader, utils=UTILS.replace('"old"', '"new"')) == base
    assert transform_hash(loader, other=OTHER.replace("0", "42")) == base
    assert transform_hash(loader, transforms=TRANSFORMS.replace("x + 1", "x + 2")) == base
    # comments, blank lines and spaces between tokens are not code
    reformatted = TRANSFORMS.replace("# keep the long ones", "# keep   long rows\n\n").replace(
        "len(r) > THRESHOLD", "len( r )>THRESHOLD"
    )
    assert transform_hash(loader, transforms=reformatted) == base


def test_code_hash_of_module_class_closure_and_cycles(loader: CodeLoader) -> None:
    files = {
        "a": "import MOD_b as b\n\ndef f():\n    return b.g()\n",
        "b": "import MOD_a as a\n\ndef g():\n    return a.f\n",
        "shapes": (
            "import MOD_a as a\n\n"
            "class Base:\n    def area(self):\n        return 0\n\n"
            "class Square(Base):\n    def __init__(self, s):\n        self.s = s\n"
            "    def area(self):\n        return a.f() or self.s ** 2\n\n"
            "def make(k):\n    inner = lambda v: v * k\n"
            "    def run(x):\n        return inner(Square(x).area())\n    return run\n"
        ),
    }
    module, root = loader.load(files, "shapes")
    p = loader.prefix
    whole = code_hash(module, project_root=root)  # a module, with an import cycle
    assert isinstance(whole, CodeHash) and str(whole) == whole.digest
    assert {f"{p}shapes", f"{p}a", f"{p}b"} <= set(whole.sources)

    cls = code_hash(module.Square, project_root=root)
    assert {f"{p}shapes.Square", f"{p}shapes.Base", f"{p}a"} <= set(cls.sources)
    assert code_hash(module.Square(3).area, project_root=root).sources  # a bound method

    closure = code_hash(module.make(2), project_root=root)
    assert f"{p}shapes.Square" in closure.sources  # reached through closure cells
    assert closure != code_hash(module.make(3), project_root=root)  # closed-over data counts

    files["b"] = files["b"].replace("return a.f", "return a.f, 1")
    module2, root2 = loader.load(files, "shapes")
    assert code_hash(module2.Square, project_root=root2) != cls


def test_code_hash_of_third_party_and_builtins() -> None:
    import json

    assert code_hash(len).sources == ()
    assert code_hash(json.dumps).sources == ()
    assert code_hash(json.dumps) != code_hash(json.loads)  # the name still counts
    assert code_hash(json.dumps) == code_hash(json.dumps)


def test_code_hash_without_project_root_sees_local_files(loader: CodeLoader) -> None:
    module, _ = loader.load(project(), "transforms")
    found = code_hash(module.transform)
    assert f"{loader.prefix}helpers" in found.sources
    assert not any(s.startswith(("math", "blase.")) for s in found.sources)


# --------------------------------------------------------------------------- environment


def test_environment_fingerprint() -> None:
    had_torch = "torch" in sys.modules
    fp = environment_fingerprint()
    assert fp["python"]["version"].count(".") == 2
    assert fp["platform"]["machine"]
    assert fp["packages"]["xxhash"] == xxhash.VERSION
    assert "torch" in fp["packages"] and "numpy" in fp["packages"]
    assert ("torch" in sys.modules) == had_torch  # versions come from metadata, not imports
    assert environment_hash(fp) == hash_config(fp) == environment_hash()
    changed = {**fp, "packages": {**fp["packages"], "numpy": "0.0.1"}}
    assert environment_hash(changed) != environment_hash(fp)
