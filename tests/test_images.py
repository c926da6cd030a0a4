"""The images plugins: the source (index, listings, modes, bad files), the CNN, the grid."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from blase.contrib._images import ImageOptions, ImageReader
from blase.errors import ExtractError
from blase.extract import Extract, PluginOptions


def _folder(root: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(1)
    for label, base in (("dark", 40), ("light", 200)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            arr = np.clip(rng.normal(base, 10, (10, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr, "RGB").save(root / label / f"{i}.png")
    return root


def _read(root: Path, **options) -> pa.Table:
    reader = ImageReader(ImageOptions(workers=1, **options))
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return pa.Table.from_batches(list(reader.read_files(files, root=root, batch_rows=1000)))


def test_a_folder_per_class_gives_labels_sizes_statistics_and_pixels(tmp_path):
    table = _read(_folder(tmp_path / "images"), size=4, mode="RGB")
    assert table.num_rows == 6
    assert sorted(set(table["label"].to_pylist())) == ["dark", "light"]
    assert set(table["width"].to_pylist()) == {12} and set(table["height"].to_pylist()) == {10}
    # the pixels are one tensor column: each row's 4 x 4 x 3 bytes
    assert not [c for c in table.column_names if c.startswith("px_")]
    assert table.schema.field("px").type == pa.binary()
    assert {len(v) for v in table["px"].to_pylist()} == {4 * 4 * 3}
    rows = table.to_pylist()
    dark = [r["brightness"] for r in rows if r["label"] == "dark"]
    light = [r["brightness"] for r in rows if r["label"] == "light"]
    assert max(dark) < 60 < 180 < min(light)
    # the statistics are those of the pixels written
    first = np.frombuffer(rows[0]["px"], dtype=np.uint8).astype(np.float32)
    assert rows[0]["brightness"] == pytest.approx(first.mean(), rel=1e-5)


def test_the_index_decodes_only_new_and_changed_files(tmp_path):
    root = _folder(tmp_path / "images")
    (tmp_path / ".blase").mkdir()
    files = sorted(root.rglob("*.png"))
    for file in files:  # older than the window in which the index reads a just-written file again
        os.utime(file, ns=(file.stat().st_atime_ns, file.stat().st_mtime_ns - 3600 * 10**9))
    reader = ImageReader(ImageOptions(workers=1, size=4))
    list(reader.read_files(files, root=root, batch_rows=100))
    assert reader.index_stats == {"files": 6, "unchanged": 0, "decoded": 6}
    assert list((tmp_path / ".blase" / "index").glob("images-*/manifest.parquet"))
    list(reader.read_files(files, root=root, batch_rows=100))
    assert reader.index_stats == {"files": 6, "unchanged": 6, "decoded": 0}
    # one image replaced by a bright one: only it is decoded again, and the new pixels show
    Image.new("RGB", (12, 10), (255, 255, 255)).save(files[0])
    os.utime(files[0], ns=(1, 1))
    table = pa.Table.from_batches(list(reader.read_files(files, root=root, batch_rows=100)))
    assert reader.index_stats == {"files": 6, "unchanged": 5, "decoded": 1}
    assert table["brightness"][0].as_py() == pytest.approx(255.0)


def test_unusual_modes_are_converted(tmp_path):
    root = tmp_path / "images" / "a"
    root.mkdir(parents=True)
    Image.new("CMYK", (5, 5), (0, 0, 0, 0)).save(root / "cmyk.jpg")
    Image.fromarray(np.full((5, 5), 65535, dtype=np.uint16)).save(root / "deep.png")  # 16-bit grey
    Image.new("P", (5, 5), 3).save(root / "palette.png")
    Image.new("RGBA", (5, 5), (0, 0, 0, 0)).save(root / "clear.png")  # transparent: over white
    table = _read(root.parent, size=2, mode="L")
    assert table.num_rows == 4
    brightness = dict(zip(table["path"].to_pylist(), table["brightness"].to_pylist(), strict=True))
    assert brightness["a/deep.png"] == pytest.approx(255) and brightness["a/clear.png"] == pytest.approx(255)
    assert brightness["a/cmyk.jpg"] > 250  # no ink: white


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n not really a png"], ids=["empty", "corrupt"])
def test_a_bad_file_is_an_error_naming_it_and_the_fix(tmp_path, content):
    root = _folder(tmp_path / "images", n=1)
    (root / "dark" / "bad.png").write_bytes(content)
    with pytest.raises(ExtractError) as err:
        _read(root)
    assert "bad.png" in err.value.message
    assert "empty" in err.value.message or "cannot be decoded" in err.value.message
    assert "bad_files: quarantine" in err.value.hint


def test_quarantined_files_are_listed_and_counted_in_the_run(project, tmp_path):
    root = _folder(project.root / "data" / "images", n=2)
    (root / "dark" / "empty.png").write_bytes(b"")
    extract = Extract("data/images", PluginOptions(options={"size": 4, "bad_files": "quarantine"}),
                      format="images", project=project)
    result = extract.to_parquet(tmp_path / "out")
    assert result.rows_out == 4 and result.rows_rejected == 1
    rejects = project.root / "outputs" / "rejects"
    (listing,) = rejects.glob("*.csv")
    rows = list(csv.DictReader(listing.open()))
    assert rows == [{"file": "data/images/dark/empty.png", "reason": "is empty (0 bytes)"}]
    assert any("quarantined" in w for w in result.warnings)


def test_a_listing_of_paths_and_labels(tmp_path):
    root = _folder(tmp_path / "images", n=1)
    listing = tmp_path / "images" / "labels.csv"
    listing.write_text("path,label\ndark/0.png,night\nlight/0.png,day\n")
    reader = ImageReader(ImageOptions(workers=1, size=2))
    table = pa.Table.from_batches(list(reader.read_files([listing], root=root, batch_rows=10)))
    assert table["label"].to_pylist() == ["night", "day"]
    listing.write_text("path,label\ndark/0.png,night\nlight/9.png,day\n")
    with pytest.raises(ExtractError, match=r"labels.csv, row 3: images file light/9.png does not exist"):
        list(reader.read_files([listing], root=root, batch_rows=10))


def test_worker_processes_give_the_same_rows(tmp_path):
    root = _folder(tmp_path / "images", n=40)  # 80 files: over the pool's threshold
    one = _read(root, size=4)
    two = pa.Table.from_batches(list(ImageReader(ImageOptions(workers=2, size=4)).read_files(
        sorted(root.rglob("*.png")), root=root, batch_rows=1000)))
    assert one.equals(two)


def test_the_cnn_augments_with_the_seed_and_only_in_training():
    import torch

    from blase.contrib._image_cnn import SmallCNN, image_shape

    assert image_shape(8 * 8) == (1, 8) and image_shape(3 * 16 * 16) == (3, 16)
    net = SmallCNN(1, 8, 3, flip=True, crop=1)
    x = torch.arange(64, dtype=torch.float32).repeat(16, 1)
    torch.manual_seed(0)
    a = net.augment(net.images(x))
    torch.manual_seed(0)
    b = net.augment(net.images(x))
    assert torch.equal(a, b) and not torch.equal(a, net.images(x))
    net.eval()
    assert torch.equal(net(x), net(x))  # no augmentation when scoring


@pytest.mark.slow
@pytest.mark.parametrize("name", ["images", "audio", "image_cnn", "image_errors"])
def test_blase_plugin_check_passes(name, cli, project):
    """The conformance suite of each kind (the model and the step run on the images template)."""
    import json

    checked = cli("plugin", "check", name, "--json", cwd=project.root)
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    (report,) = json.loads(checked.stdout)
    assert all(c["passed"] for c in report["checks"]), checked.stdout


def test_shard_dataset_yields_seeded_augmented_image_batches(tmp_path):
    import pyarrow.parquet as pq
    import torch

    from blase.prepare import ImageView, Prepare, ShardDataset

    table = _read(_folder(tmp_path / "images", n=8), size=4, mode="RGB")
    pq.write_table(table.drop(["path"]), tmp_path / "images.parquet")
    Prepare("label", split=(1.0, 0.0, 0.0), seed=0).run(tmp_path / "images.parquet", tmp_path / "shards")
    plain = ShardDataset(tmp_path / "shards", batch_size=16, shuffle=False, image=ImageView(3, 4))
    ((x, _),) = list(plain)
    assert x.shape == (16, 3, 4, 4) and float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # channel r of the first image is its px bytes at offsets 0, 3, 6... divided by 255
    first = np.frombuffer(table["px"][0].as_py(), dtype=np.uint8)[[0, 3]] / 255
    assert np.allclose(x[0, 0, 0, :2].numpy(), first)
    view = ImageView(3, 4, flip=True, crop=1)
    a = [b for b, _ in ShardDataset(tmp_path / "shards", batch_size=16, seed=5, image=view)]
    b = [b for b, _ in ShardDataset(tmp_path / "shards", batch_size=16, seed=5, image=view)]
    c = [b for b, _ in ShardDataset(tmp_path / "shards", batch_size=16, seed=6, image=view)]
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    with pytest.raises(Exception, match="an image of 1 x 4 x 4 needs 16"):
        ShardDataset(tmp_path / "shards", image=ImageView(1, 4))


def test_the_extract_hashes_the_folder_with_the_index_digests_as_hash_files_does(tmp_path):
    from blase.hashing import hash_files

    root = _folder(tmp_path / "images")
    (tmp_path / ".blase").mkdir()
    extract = Extract(str(root), PluginOptions(options={"size": 4, "workers": 1}), format="images")
    result = extract.to_parquet(tmp_path / "out")
    files = sorted(root.rglob("*.png"))
    assert len(extract._plugin[1].digests) == len(files)  # the index knew every file's digest
    assert list(result.inputs.values()) == [hash_files(files)]


def test_a_run_keys_the_folder_by_the_index_not_a_stat_cache_entry_per_image(tmp_path):
    """The extract step's cache key takes each image's digest from the index (as hash_file
    gives it), so a run writes no stat-cache entry per image, and a second run is a cache hit."""
    from blase.hashing import hash_files
    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(tmp_path / "digits", template="images")
    first = Pipeline(project).run(to_step="extract")
    stat_entries = list((project.root / ".blase" / "cache" / "stat").rglob("*.json"))
    images = sorted((project.root / "data" / "images").rglob("*.png"))
    assert len(images) == 500 and len(stat_entries) < 10
    again = Pipeline(project).run(to_step="extract")
    assert first.run_id and "extract" in first.steps and "extract" not in first.cached
    assert "extract" in again.cached, again.reasons
    one = images[0]
    one.write_bytes(one.read_bytes())  # same bytes, new mtime: the index re-reads it, same digest
    assert "extract" in Pipeline(project).run(to_step="extract").cached
    with one.open("ab") as fh:
        fh.write(b"\0")  # a changed file (PNG readers ignore trailing bytes): a new key
    changed = Pipeline(project).run(to_step="extract")
    assert "extract" not in changed.cached
    # the step's record: the folder's digest over the files' contents, as hash_files gives it
    assert changed.steps["extract"].inputs == {"data/images": hash_files(images)}
