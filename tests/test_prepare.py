"""Prepare: deterministic splits, shards, manifest, the PyTorch dataset, TFRecord output."""

from __future__ import annotations

import errno
import json
import os
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from blase.config import SplitConfig
from blase.errors import PrepareError
from blase.prepare import Prepare, ShardDataset, ShardRows, _shards, read_manifest, row_hash
from blase.prepare._tfrecord import crc32c, masked_crc32c

N = 6000


def _table(n: int = N, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "rid": np.arange(n, dtype=np.int64),  # identifies a row inside the shards
            "a": rng.normal(size=n),
            "b": rng.integers(0, 5, n).astype(np.int32),
            "flag": rng.random(n) > 0.5,
            "species": rng.choice(["Adelie", "Chinstrap", "Gentoo"], n, p=[0.5, 0.42, 0.08]),
        }
    )


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "data.parquet"
    pq.write_table(_table(), path)
    return path


def _split_rows(out: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    m = read_manifest(out)
    xs = [ShardRows.of(out, m, s)[:] for s in m.shards[split]]
    ys = [np.load(out / s.labels_file) for s in m.shards[split]]
    d = m.n_features
    return (np.concatenate(xs) if xs else np.empty((0, d), np.float32)), (
        np.concatenate(ys) if ys else np.empty(0)
    )


def _same_rows(a: Path, b: Path) -> bool:
    """The float32 rows (expanded from any layout), labels and counts of every split agree."""
    for split in ("train", "val", "test"):
        (xa, ya), (xb, yb) = _split_rows(a, split), _split_rows(b, split)
        if not (np.array_equal(xa, xb) and np.array_equal(ya, yb)):
            return False
    return True


def _shard_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.npy"))}


# -- determinism ----------------------------------------------------------------------------


def test_same_inputs_give_byte_identical_shards(data, tmp_path):
    p = Prepare(label="species", shard_rows=1000)
    r1 = p.run(data, tmp_path / "o1", memory="256MB")
    r2 = p.run(data, tmp_path / "o2", memory="256MB")
    assert _shard_bytes(tmp_path / "o1") == _shard_bytes(tmp_path / "o2")
    assert r1.outputs["shards"] == r2.outputs["shards"]
    assert r1.inputs == r2.inputs


def test_split_does_not_depend_on_batch_shard_or_file_layout(data, tmp_path):
    base = Prepare(label="species", shard_rows=1000).run(data, tmp_path / "base")
    # the same rows cut into three files, read in tiny batches, with other shard sizes
    parts = tmp_path / "parts"
    parts.mkdir()
    t = pq.read_table(data)
    for i, (start, stop) in enumerate([(0, 1234), (1234, 4000), (4000, N)]):
        pq.write_table(t.slice(start, stop - start), parts / f"part-{i:05d}.parquet")
    other = Prepare(label="species", shard_rows=777, batch_rows=97).run(
        parts, tmp_path / "other", memory="64MB"
    )
    assert base.details["counts"] == other.details["counts"]
    for split in ("train", "val", "test"):
        xa, ya = _split_rows(tmp_path / "base", split)
        xb, yb = _split_rows(tmp_path / "other", split)
        assert xa.tobytes() == xb.tobytes() and ya.tobytes() == yb.tobytes()
    # shard size changes only where files are cut: equal shard sizes give equal bytes
    again = Prepare(label="species", shard_rows=1000, batch_rows=333).run(parts, tmp_path / "again")
    assert _shard_bytes(tmp_path / "base") == _shard_bytes(tmp_path / "again")
    assert again.outputs["shards"] == base.outputs["shards"]


def test_split_matches_the_documented_row_hash(data, tmp_path):
    Prepare(label="species", seed=7).run(data, tmp_path / "o")
    h = row_hash(np.arange(N), 7)
    t1, t2 = int(0.8 * 2**64), int(0.9 * 2**64)
    expected = np.where(h < np.uint64(t1), 0, np.where(h < np.uint64(t2), 1, 2))
    for code, split in enumerate(("train", "val", "test")):
        x, _ = _split_rows(tmp_path / "o", split)
        rid = x[:, 0].astype(np.int64)
        assert np.array_equal(rid, np.flatnonzero(expected == code))  # file order kept


def test_ratios_are_respected_and_seed_changes_the_split(data, tmp_path):
    r = Prepare(label="species", split=SplitConfig(train=0.7, val=0.2, test=0.1), seed=1).run(
        data, tmp_path / "a"
    )
    counts = r.details["counts"]
    assert sum(counts.values()) == N
    for name, share in (("train", 0.7), ("val", 0.2), ("test", 0.1)):
        assert abs(counts[name] / N - share) < 0.02
    Prepare(label="species", split=(0.7, 0.2, 0.1), seed=2).run(data, tmp_path / "b")
    assert not np.array_equal(
        _split_rows(tmp_path / "a", "val")[0], _split_rows(tmp_path / "b", "val")[0]
    )


def test_stratified_split_keeps_class_shares(tmp_path):
    rng = np.random.default_rng(3)
    n = 5000
    y = np.where(rng.random(n) < 0.05, "rare", "common")
    pq.write_table(pa.table({"x": rng.normal(size=n), "y": y}), tmp_path / "d.parquet")
    r = Prepare(label="y", stratify=True, seed=5).run(tmp_path / "d.parquet", tmp_path / "o")
    m = read_manifest(tmp_path / "o")
    n_rare = int((y == "rare").sum())
    rare = m.label_mapping["rare"]
    for split, share in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        got = m.class_counts[split][str(rare)]
        assert abs(got - n_rare * share) <= 1, (split, got)
        _, labels = _split_rows(tmp_path / "o", split)
        assert int((labels == rare).sum()) == got
    for split, share in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        assert abs(r.details["counts"][split] - n * share) <= 2  # one rounding per class
    # deterministic too
    Prepare(label="y", stratify=True, seed=5, batch_rows=300).run(
        tmp_path / "d.parquet", tmp_path / "o2"
    )
    assert _shard_bytes(tmp_path / "o") == _shard_bytes(tmp_path / "o2")


def test_key_split_is_stable_when_rows_are_reordered(tmp_path):
    t = _table(3000)
    key_ids = pa.array([f"user-{i}" for i in range(3000)])
    t = t.append_column("user", key_ids)
    pq.write_table(t, tmp_path / "a.parquet")
    order = np.random.default_rng(9).permutation(3000)
    pq.write_table(t.take(order), tmp_path / "b.parquet")
    feats = ["rid", "a"]
    Prepare(label="species", key="user", features=feats).run(
        tmp_path / "a.parquet", tmp_path / "oa"
    )
    Prepare(label="species", key="user", features=feats).run(
        tmp_path / "b.parquet", tmp_path / "ob"
    )
    for split in ("train", "val", "test"):
        ra = np.sort(_split_rows(tmp_path / "oa", split)[0][:, 0])
        rb = np.sort(_split_rows(tmp_path / "ob", split)[0][:, 0])
        assert np.array_equal(ra, rb)
    assert read_manifest(tmp_path / "oa").key == "user"


# -- manifest and labels --------------------------------------------------------------------


def test_manifest_describes_the_shards(data, tmp_path):
    out = tmp_path / "out"
    r = Prepare(label="species", shard_rows=2000, seed=11).run(data, out)
    m = read_manifest(out)
    raw = json.loads((out / "manifest.json").read_text())
    assert raw["version"] == 1 and raw["task"] == "multiclass"
    assert m.features == ["rid", "a", "b", "flag"] and m.n_features == 4
    assert m.dtypes == {"rid": "BIGINT", "a": "DOUBLE", "b": "INTEGER", "flag": "BOOLEAN"}
    assert m.label_mapping == {"Adelie": 0, "Chinstrap": 1, "Gentoo": 2}
    assert m.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert m.seed == 11 and m.split == {"train": 0.8, "val": 0.1, "test": 0.1} and m.key is None
    assert sum(m.counts.values()) == N == r.rows_in == r.rows_out
    assert r.details["manifest"] == str(out / "manifest.json")
    assert r.details["counts"] == m.counts
    assert r.step == "prepare" and set(r.inputs) == {"data", "params"}
    from blase.hashing import hash_file

    assert m.source_hash == hash_file(data)
    for split, shards in m.shards.items():
        assert sum(s.rows for s in shards) == m.counts[split]
        assert all(s.rows <= 2000 for s in shards)
        for s in shards:
            x = np.load(out / s.file, mmap_mode="r")
            y = np.load(out / s.labels_file, mmap_mode="r")
            assert x.dtype == np.float32 and x.shape == (s.rows, 4)
            assert y.dtype == np.int64 and y.shape == (s.rows,)
            assert (
                hash_file(out / s.file) == s.hash
                and hash_file(out / s.labels_file) == s.labels_hash
            )
    # labels decode back to the source values
    x, y = _split_rows(out, "train")
    species = pq.read_table(data).column("species").to_numpy()
    assert [m.classes[c] for c in y[:50]] == list(species[x[:50, 0].astype(int)])
    assert not list(tmp_path.glob(".out.tmp-*"))


def test_rerun_replaces_earlier_output_but_never_a_foreign_folder(data, tmp_path):
    out = tmp_path / "out"
    Prepare(label="species", shard_rows=500).run(data, out)
    Prepare(label="species", shard_rows=5000).run(data, out)
    assert not (out / "train" / "shard-00001.npy").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(PrepareError, match="not empty"):
        Prepare(label="species").run(data, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_task_inference_and_label_dtypes(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    cases = {
        "float": (rng.normal(size=n), "regression", np.float32),
        "few_ints": (rng.integers(0, 3, n), "multiclass", np.int64),
        "many_ints": (rng.integers(0, 500, n), "regression", np.float32),
        "bool": (rng.random(n) > 0.3, "binary", np.int64),
    }
    for name, (values, task, dtype) in cases.items():
        pq.write_table(
            pa.table({"x": rng.normal(size=n), "t": values}), tmp_path / f"{name}.parquet"
        )
        Prepare(label="t").run(tmp_path / f"{name}.parquet", tmp_path / name)
        m = read_manifest(tmp_path / name)
        assert m.task == task, name
        _, y = _split_rows(tmp_path / name, "train")
        assert y.dtype == dtype, name
    assert read_manifest(tmp_path / "bool").label_mapping == {"false": 0, "true": 1}
    # regression keeps the values (as float32)
    _x, y = _split_rows(tmp_path / "float", "train")
    assert read_manifest(tmp_path / "float").classes == []
    Prepare(label="t", task="classification").run(
        tmp_path / "many_ints.parquet", tmp_path / "forced"
    )
    assert read_manifest(tmp_path / "forced").task == "multiclass"
    with pytest.raises(PrepareError, match="regression"):
        Prepare(label="t", stratify=True).run(tmp_path / "float.parquet", tmp_path / "bad")


# -- errors ---------------------------------------------------------------------------------


def test_null_label_is_an_error_or_dropped_on_request(tmp_path):
    t = _table(1000)
    species = t.column("species").to_pylist()
    for i in range(0, 1000, 50):
        species[i] = None
    t = t.set_column(4, "species", pa.array(species))
    pq.write_table(t, tmp_path / "d.parquet")
    with pytest.raises(PrepareError) as err:
        Prepare(label="species").run(tmp_path / "d.parquet", tmp_path / "o")
    msg = str(err.value)
    assert "'species'" in msg and "20 null" in msg and "filter" in msg
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.tmp-*"))
    r = Prepare(label="species", drop_null_label=True).run(tmp_path / "d.parquet", tmp_path / "o")
    assert (r.rows_in, r.rows_out, r.rows_rejected) == (1000, 980, 20)
    assert read_manifest(tmp_path / "o").rows_rejected == 20


def test_text_feature_and_null_features_are_errors(tmp_path):
    t = _table(500).append_column("island", pa.array(["Biscoe"] * 500))
    pq.write_table(t, tmp_path / "text.parquet")
    with pytest.raises(PrepareError) as err:
        Prepare(label="species").run(tmp_path / "text.parquet", tmp_path / "o")
    assert "feature 'island' is text" in str(err.value)
    assert "add an `onehot` or `ordinal` transform for it (blase.yaml transform:)" in str(err.value)

    a = [None if i % 100 == 0 else float(i) for i in range(500)]
    b = [float("nan") if i % 250 == 0 else 1.0 for i in range(500)]
    t = pa.table({"a": a, "b": b, "y": [i % 2 for i in range(500)]})
    pq.write_table(t, tmp_path / "nulls.parquet")
    with pytest.raises(PrepareError) as err:
        Prepare(label="y").run(tmp_path / "nulls.parquet", tmp_path / "o")
    msg = str(err.value)
    assert "'a' has 5 nulls" in msg and "'b' has 2 NaNs" in msg and "impute" in msg

    with pytest.raises(PrepareError, match="did you mean 'species'"):
        Prepare(label="specie").run(tmp_path / "text.parquet", tmp_path / "o")


def test_full_disk_leaves_no_half_written_shard(data, tmp_path, monkeypatch):
    real = _shards._write_block

    def fill_up(f, array):
        if "shard-00000" not in f.name:  # the first shard of each split fits, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, array)

    out = tmp_path / "out"
    Prepare(label="species", shard_rows=5000).run(data, out)  # an earlier, complete output
    before = _shard_bytes(out)
    monkeypatch.setattr(_shards, "_write_block", fill_up)
    with pytest.raises(PrepareError) as err:
        Prepare(label="species", shard_rows=500).run(data, out)
    assert "disk filled up" in str(err.value)
    assert {p.name for p in tmp_path.iterdir()} == {"data.parquet", "out"}  # no temp folder left
    # the earlier output is untouched and every shard its manifest lists is whole
    assert _shard_bytes(out) == before
    m = read_manifest(out)
    for shards in m.shards.values():
        for s in shards:
            assert np.load(out / s.file).shape == (s.rows, m.n_features)


# -- ShardDataset ---------------------------------------------------------------------------


@pytest.fixture
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prep")
    pq.write_table(_table(), root / "d.parquet")
    Prepare(label="species", shard_rows=700).run(root / "d.parquet", root / "out")
    return root / "out"


def _epoch_rows(batches) -> list[int]:
    return [int(r) for xb, _ in batches for r in xb[:, 0].tolist()]


def test_dataset_covers_every_row_once_and_shuffles_by_seed_and_epoch(prepared):
    ds = ShardDataset(prepared, "train", batch_size=64, seed=3)
    train_ids = _split_rows(prepared, "train")[0][:, 0].astype(int).tolist()
    batches = list(ds)
    assert len(batches) == len(ds)
    assert all(xb.dtype.is_floating_point and xb.shape[1] == 4 for xb, _ in batches)
    assert all(yb.dtype.__str__() == "torch.int64" and len(yb) == len(xb) for xb, yb in batches)
    assert all(len(xb) <= 64 for xb, _ in batches)
    epoch0 = _epoch_rows(batches)
    assert sorted(epoch0) == sorted(train_ids) and len(set(epoch0)) == len(epoch0)
    assert epoch0 != sorted(epoch0)
    assert _epoch_rows(ShardDataset(prepared, "train", batch_size=64, seed=3)) == epoch0
    ds.set_epoch(1)
    epoch1 = _epoch_rows(ds)
    assert epoch1 != epoch0 and sorted(epoch1) == sorted(epoch0)
    assert _epoch_rows(ShardDataset(prepared, "train", batch_size=64, seed=4)) != epoch0
    ordered = _epoch_rows(ShardDataset(prepared, "train", batch_size=64, shuffle=False))
    assert ordered == train_ids
    dropped = ShardDataset(prepared, "train", batch_size=64, drop_last=True)
    assert all(len(xb) == 64 for xb, _ in dropped) and len(list(dropped)) == len(dropped)
    # labels travel with their rows
    x, y = _split_rows(prepared, "train")
    label_of = dict(zip(x[:, 0].astype(int).tolist(), y.tolist(), strict=False))
    assert all(
        label_of[int(r)] == int(c) for xb, yb in batches for r, c in zip(xb[:, 0], yb, strict=False)
    )


def test_dataloader_workers_yield_the_same_batches(prepared):
    from torch.utils.data import DataLoader

    ds = ShardDataset(prepared, "train", batch_size=100, seed=1)
    ds.set_epoch(2)
    single = list(ds)
    multi = list(DataLoader(ds, batch_size=None, num_workers=2))
    key = lambda bs: Counter(tuple(xb[:, 0].int().tolist()) for xb, _ in bs)  # noqa: E731
    assert len(multi) == len(single) == len(ds)
    assert key(multi) == key(single)
    assert ds.manifest.counts["train"] == sum(len(xb) for xb, _ in multi)


def test_dataset_errors(prepared):
    with pytest.raises(PrepareError, match="split 'dev'"):
        ShardDataset(prepared, "dev")
    with pytest.raises(PrepareError, match=r"manifest\.json"):
        ShardDataset(prepared.parent / "nowhere")


# -- TFRecord -------------------------------------------------------------------------------


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf: bytes) -> list[tuple[int, int, bytes | int]]:
    """(field number, wire type, payload) of a protobuf message: a minimal decoder."""
    out: list[tuple[int, int, bytes | int]] = []
    i = 0
    while i < len(buf):
        tag, i = _varint(buf, i)
        field, wire = tag >> 3, tag & 7
        if wire == 2:
            n, i = _varint(buf, i)
            out.append((field, wire, buf[i : i + n]))
            i += n
        elif wire == 0:
            v, i = _varint(buf, i)
            out.append((field, wire, v))
        else:  # pragma: no cover - not produced
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _decode_example(data: bytes) -> dict[str, tuple[str, list]]:
    (features,) = [p for f, w, p in _fields(data) if f == 1]
    result = {}
    for field, _, entry in _fields(features):
        assert field == 1
        parts = dict((f, p) for f, _, p in _fields(entry))
        key = parts[1].decode()
        ((kind, _, lst),) = _fields(parts[2])
        ((_, _, packed),) = _fields(lst)
        if kind == 2:
            result[key] = ("float", list(struct.unpack(f"<{len(packed) // 4}f", packed)))
        elif kind == 3:
            vals, j = [], 0
            while j < len(packed):
                v, j = _varint(packed, j)
                vals.append(v - (1 << 64) if v >= 1 << 63 else v)
            result[key] = ("int64", vals)
    return result


def _read_frames(path: Path) -> list[bytes]:
    buf = path.read_bytes()
    records, i = [], 0
    while i < len(buf):
        (length,) = struct.unpack_from("<Q", buf, i)
        (len_crc,) = struct.unpack_from("<I", buf, i + 8)
        assert len_crc == masked_crc32c(buf[i : i + 8])
        data = buf[i + 12 : i + 12 + length]
        (data_crc,) = struct.unpack_from("<I", buf, i + 12 + length)
        assert data_crc == masked_crc32c(data)
        records.append(data)
        i += 16 + length
    return records


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value of CRC-32C
    assert crc32c(b"") == 0


@pytest.mark.parametrize("kind", ["classification", "regression"])
def test_tfrecord_frames_decode_to_the_shards(tmp_path, kind):
    rng = np.random.default_rng(2)
    n = 900
    if kind == "classification":
        label = rng.integers(0, 300, n)  # codes above 127 need two-byte varints
        task = "classification"
    else:
        label = rng.normal(size=n)
        task = "regression"
    pq.write_table(
        pa.table({"a": rng.normal(size=n), "b": rng.random(n), "t": label}), tmp_path / "d.parquet"
    )
    Prepare(label="t", task=task, shard_rows=400).run(
        tmp_path / "d.parquet", tmp_path / "o", tfrecord=True
    )
    out = tmp_path / "o"
    m = read_manifest(out)
    seen = 0
    for shards in m.shards.values():
        for s in shards:
            assert s.tfrecord and (out / s.tfrecord).is_file()
            x = np.load(out / s.file)
            y = np.load(out / s.labels_file)
            records = [_decode_example(r) for r in _read_frames(out / s.tfrecord)]
            assert len(records) == s.rows
            for k, rec in enumerate(records):
                assert rec["x"][0] == "float"
                assert np.array_equal(np.asarray(rec["x"][1], np.float32), x[k])
                if kind == "classification":
                    assert rec["label"] == ("int64", [int(y[k])])
                else:
                    assert rec["label"][0] == "float" and np.float32(rec["label"][1][0]) == y[k]
            seen += len(records)
    assert seen == n


# -- a transform applied on the way -----------------------------------------------------------


def _raw_for_transform(tmp_path: Path) -> Path:
    """Two Parquet files with nulls in a number and a category, and a rare category."""
    rng = np.random.default_rng(3)
    folder = tmp_path / "raw"
    folder.mkdir()
    for part in range(2):
        n = 2500
        city = rng.choice(["oslo", "rome", "lima", "pune", "kyiv"], n, p=[0.4, 0.3, 0.2, 0.07, 0.03])
        cities = pa.array([None if i % 97 == 0 else c for i, c in enumerate(city)])
        x = rng.normal(size=n)
        pq.write_table(pa.table({
            "x": pa.array([None if i % 41 == 0 else float(v) for i, v in enumerate(x)]),
            "city": cities,
            "tier": rng.choice(["a", "b"], n),
            "y": rng.integers(0, 2, n),
        }), folder / f"part-{part:05d}.parquet")
    return folder


@pytest.mark.parametrize("final_onehot", [True, False])
def test_prepare_through_a_transform_gives_the_shards_of_transform_then_prepare(tmp_path, final_onehot):
    from blase.transform import Impute, OneHot, Scale, Transform

    raw = _raw_for_transform(tmp_path)
    ops = [Impute(strategy="mean"), Scale(method="standard"),
           OneHot(columns=["city"], max_categories=3), OneHot(columns=["tier"])]
    if not final_onehot:
        ops.append(Scale(columns=["x"], method="minmax"))
    tf = Transform(ops, exclude=["y"]).fit(raw)
    tf.run(raw, tmp_path / "transformed", fit=False)
    prep = Prepare(label="y", seed=1, stratify=True)
    two_steps = tmp_path / "two"
    fused = tmp_path / "fused"
    prep.run(tmp_path / "transformed", two_steps)
    result = prep.run(raw, fused, transform=tf)

    m = read_manifest(fused)
    assert m.features == read_manifest(two_steps).features
    assert "city_other" in m.features  # the rare cities share a column
    assert _same_rows(fused, two_steps)
    labels_and_ids = lambda out: {k: v for k, v in _shard_bytes(out).items() if ".labels." in k or ".ids." in k}  # noqa: E731
    assert labels_and_ids(fused) == labels_and_ids(two_steps)
    if final_onehot:  # the final one-hot (tier) is stored compactly: one code per row, not 2 floats
        assert m.layout is not None and [g.column for g in m.layout.onehot] == ["tier"]
        assert np.load(fused / m.shards["train"][0].file).shape[1] == len(m.features) - 2
        assert np.load(fused / m.shards["train"][0].codes_file).dtype == np.int16
    else:
        assert m.layout is None and _shard_bytes(fused) == _shard_bytes(two_steps)
    assert "transform" in result.inputs
    x, _ = _split_rows(fused, "train")
    city = [j for j, f in enumerate(m.features) if f.startswith("city_")]
    ones = x[:, city].sum(axis=1)
    assert set(np.unique(ones)) == {0.0, 1.0}  # one city per row, none for a null city
    assert not (tmp_path / "fused" / ".transformed").exists()


def test_prepare_through_a_transform_with_a_python_step(tmp_path):
    from blase.transform import Impute, OneHot, Transform, UserFunction

    raw = _raw_for_transform(tmp_path)

    def double(table: pa.Table) -> pa.Table:
        import pyarrow.compute as pc

        return table.set_column(table.column_names.index("x"), "x", pc.multiply(table.column("x"), 2.0))

    tf = Transform([Impute(strategy="mean", columns=["x"]), UserFunction(double),
                    OneHot(columns=["city", "tier"])], exclude=["y"]).fit(raw)
    tf.write(raw, tmp_path / "transformed")  # nested functions cannot be saved: no state file
    Prepare(label="y").run(tmp_path / "transformed", tmp_path / "two")
    Prepare(label="y").run(raw, tmp_path / "fused", transform=tf)
    assert _same_rows(tmp_path / "fused", tmp_path / "two")


def test_row_ids_and_split_do_not_depend_on_how_the_transform_runs(tmp_path):
    """A Python step (no SQL form) makes prepare apply the transform on Arrow batches; each
    shard row still carries its position in the source files (after a filter too), so the
    split (hashed from it) is the one the all-SQL transform gives, and the ids point back at
    the rows."""
    from blase.prepare import read_manifest
    from blase.transform import Filter, Impute, OneHot, Transform, UserFunction

    raw = _raw_for_transform(tmp_path)
    source_y = pa.concat_tables([pq.read_table(f) for f in sorted(raw.glob("*.parquet"))]).column("y").to_numpy()

    def double(table: pa.Table) -> pa.Table:
        import pyarrow.compute as pc

        return table.set_column(table.column_names.index("x"), "x", pc.multiply(table.column("x"), 2.0))

    first = [Filter("tier = 'a'"), Impute(strategy="mean", columns=["x"])]  # a filter drops about half the rows
    sql_only = Transform([*first, OneHot(columns=["city", "tier"])], exclude=["y"])
    python = Transform([*first, UserFunction(double), OneHot(columns=["city", "tier"])], exclude=["y"])
    Prepare(label="y").run(raw, tmp_path / "sql", transform=sql_only.fit(raw))
    Prepare(label="y").run(raw, tmp_path / "python", transform=python.fit(raw))

    def ids(out: Path) -> dict[str, np.ndarray]:
        m = read_manifest(out)
        return {split: np.concatenate([np.load(out / s.ids_file) for s in shards]) for split, shards in m.shards.items()}

    a, b = ids(tmp_path / "sql"), ids(tmp_path / "python")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    m = read_manifest(tmp_path / "python")
    for shards in m.shards.values():
        for shard in shards:
            labels = np.load(tmp_path / "python" / shard.labels_file)
            assert np.array_equal(source_y[np.load(tmp_path / "python" / shard.ids_file)], labels)


def test_prepare_refuses_an_unfitted_transform(tmp_path):
    from blase.transform import NotFittedError, OneHot, Transform

    raw = _raw_for_transform(tmp_path)
    with pytest.raises(NotFittedError, match="not fitted"):
        Prepare(label="y").run(raw, tmp_path / "out", transform=Transform([OneHot(columns=["city"])]))
    assert not (tmp_path / "out").exists()


_MEMORY_CHILD = r"""
import sys
from pathlib import Path
from blase.prepare import Prepare
from blase.steps import current_peak_rss, reset_peak_rss
from blase.transform import Impute, OneHot, Scale, Transform

def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))

raw, small, out, budget = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
ops = lambda: [Impute(strategy="mean"), Scale(method="standard"), OneHot(columns=["cat"], max_categories=60)]
warm = Transform(ops(), exclude=["y"]).fit(small, memory=budget)  # load every library first
Prepare(label="y").run(small, out / "warm", memory=budget, transform=warm)
base = rss()
if not reset_peak_rss():
    print("noreset")
    sys.exit(0)
tf = Transform(ops(), exclude=["y"]).fit(raw, memory=budget)
result = Prepare(label="y").run(raw, out / "big", memory=budget, transform=tf)
print(base, current_peak_rss(), result.rows_out, result.details["n_features"])
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_fit_and_prepare_of_data_far_larger_than_the_budget_stay_near_it(tmp_path):
    import subprocess
    import sys

    budget = 128_000_000
    rng = np.random.default_rng(0)
    raw = tmp_path / "raw"
    raw.mkdir()
    for part in range(6):  # 6 x 500k rows: 3M x 61 float32 features = 730 MB of shards
        n = 500_000
        x = rng.normal(size=(n, 4))
        x[rng.random(n) < 0.05, 0] = np.nan
        pq.write_table(pa.table({
            **{f"x{j}": x[:, j] for j in range(4)},
            "cat": pa.array(np.char.add("c", rng.integers(0, 80, n).astype(str))),
            "y": rng.integers(0, 2, n),
        }), raw / f"part-{part:05d}.parquet")
    small = tmp_path / "small.parquet"
    pq.write_table(pq.read_table(raw / "part-00000.parquet").slice(0, 1000), small)
    done = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(raw), str(small), str(tmp_path), str(budget)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "BLASE_PROGRESS": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    if done.stdout.strip() == "noreset":
        pytest.skip("cannot reset the peak-RSS mark here")
    base, peak, rows, n_features = map(int, done.stdout.split())
    assert rows == 3_000_000 and n_features == 64
    assert peak - base < 1.3 * budget, f"peak {peak / 1e6:.0f} MB over a base of {base / 1e6:.0f} MB"


def test_label_values_differing_only_by_whitespace_or_case_are_warned_about(tmp_path):
    labels = ["yes", " yes", "no", "No"] * 30
    pq.write_table(pa.table({"x": [float(i) for i in range(120)], "ans": labels}), tmp_path / "d.parquet")
    r = Prepare(label="ans").run(tmp_path / "d.parquet", tmp_path / "o")
    warning = next(w for w in r.warnings if "whitespace or case" in w)
    assert "' yes' / 'yes'" in warning and "'No' / 'no'" in warning and "lower(trim(ans))" in warning
    # clean labels get no such warning
    pq.write_table(pa.table({"x": [1.0, 2.0] * 20, "ans": ["yes", "no"] * 20}), tmp_path / "c.parquet")
    assert not [w for w in Prepare(label="ans").run(tmp_path / "c.parquet", tmp_path / "o2").warnings
                if "whitespace" in w]
