"""Tensor columns: a binary column of fixed-size uint8 values (the images source's ``px``)
carried whole into uint8 shard blocks, against the same values as one column each."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from blase.errors import PrepareError
from blase.prepare import ImageView, Prepare, ShardRows, read_manifest, tensor_block


def _tables(n: int = 40, width: int = 48) -> tuple[pa.Table, pa.Table]:
    """The same rows twice: pixels as one binary column ``px``, and as ``px_00000``... columns."""
    rng = np.random.default_rng(3)
    values = rng.integers(0, 256, (n, width), dtype=np.uint8)
    common = {"path": [f"img/{i}.png" for i in range(n)], "label": [f"c{i % 3}" for i in range(n)],
              "brightness": values.mean(axis=1).astype(np.float32)}
    packed = pa.table(common | {"px": pa.array([row.tobytes() for row in values], pa.binary())})
    wide = pa.table(common | {f"px_{i:05d}": values[:, i] for i in range(width)})
    return packed, wide


def _prepare(table: pa.Table, folder, **kwargs):
    pq.write_table(table, folder / "data.parquet")
    Prepare("label", key="path", split=(0.6, 0.2, 0.2), seed=1, shard_rows=16, **kwargs).run(
        folder / "data.parquet", folder / "shards")
    return read_manifest(folder / "shards")


def test_a_tensor_column_gives_the_rows_of_one_column_per_value_in_a_quarter_of_the_bytes(tmp_path):
    packed, wide = _tables()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = _prepare(packed, tmp_path / "a"), _prepare(wide, tmp_path / "b")
    assert a.features == b.features and a.features[1:3] == ["px_00000", "px_00001"]
    assert a.counts == b.counts and a.layout is not None and b.layout is None
    (group,) = a.layout.tensors
    assert group.column == "px" and group.features == list(range(1, 49)) and a.layout.dense == [0]
    for split in ("train", "val", "test"):
        for sa, sb in zip(a.shards[split], b.shards[split], strict=True):
            assert np.array_equal(np.load(tmp_path / "a" / "shards" / sa.labels_file),
                                  np.load(tmp_path / "b" / "shards" / sb.labels_file))
            rows_a = ShardRows.of(tmp_path / "a" / "shards", a, sa)
            rows_b = ShardRows.of(tmp_path / "b" / "shards", b, sb)
            assert np.array_equal(rows_a[0:sa.rows], rows_b[0:sb.rows])
            picked = np.array([0, 2, 3])
            assert np.array_equal(rows_a[picked], rows_b[picked])
            stored = np.load(tmp_path / "a" / "shards" / sa.tensor_file)
            assert stored.dtype == np.uint8 and stored.shape == (sa.rows, 48)


def test_tensor_shards_are_the_same_bytes_every_run(tmp_path):
    packed, _ = _tables()
    hashes = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        manifest = _prepare(packed, tmp_path / name)
        hashes.append([(s.hash, s.tensor_hash, s.labels_hash) for s in manifest.shards["train"]])
    assert hashes[0] == hashes[1] and all(t for _, t, _ in hashes[0])


def test_image_batches_from_the_uint8_block_equal_those_of_float_rows(tmp_path):
    from blase.prepare import ShardDataset

    packed, wide = _tables(width=4 * 4 * 3)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _prepare(packed, tmp_path / "a", features=["px"])
    _prepare(wide, tmp_path / "b", features=[f"px_{i:05d}" for i in range(48)])
    view = ImageView(3, 4, flip=True, crop=1)
    for shuffle in (False, True):
        a = list(ShardDataset(tmp_path / "a" / "shards", batch_size=8, seed=4, shuffle=shuffle, image=view))
        b = list(ShardDataset(tmp_path / "b" / "shards", batch_size=8, seed=4, shuffle=shuffle, image=view))
        assert len(a) == len(b) and all(
            np.array_equal(xa.numpy(), xb.numpy()) and np.array_equal(ya.numpy(), yb.numpy())
            for (xa, ya), (xb, yb) in zip(a, b, strict=True))
    # the crop is a shift of each image within its edge-padded copy
    x = np.arange(2 * 48, dtype=np.uint8).reshape(2, 48)
    shifted = ImageView(3, 4, crop=1).images(x, np.random.default_rng(0)).numpy()
    rng = np.random.default_rng(0)
    shifts = rng.integers(0, 3, size=(2, 2))
    padded = np.pad(x.reshape(2, 4, 4, 3), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    for i, (dy, dx) in enumerate(shifts):
        assert np.array_equal(shifted[i], padded[i, dy:dy + 4, dx:dx + 4].transpose(2, 0, 1) / np.float32(255))


def test_a_tensor_column_whose_rows_differ_in_length_is_refused_naming_it(tmp_path):
    packed, _ = _tables()
    values = packed["px"].to_pylist()
    values[7] = values[7][:-1]
    table = packed.set_column(packed.schema.get_field_index("px"), "px", pa.array(values, pa.binary()))
    with pytest.raises(PrepareError, match="feature 'px' is a binary \\(tensor\\) column whose values have 47 to 48"):
        _prepare(table, tmp_path)


def test_predict_reads_the_features_of_a_tensor_column():
    from blase.deploy._predict import features_matrix

    packed, wide = _tables(n=5)
    features = ["brightness", *[f"px_{i:05d}" for i in range(48)]]
    assert np.array_equal(features_matrix(packed, features), features_matrix(wide, features))
    assert tensor_block(packed["px"].slice(2, 2)).tolist() == [
        list(packed["px"][2].as_py()), list(packed["px"][3].as_py())]
