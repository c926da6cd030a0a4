"""Images: prepare throughput and the index's re-scan, side by side with an ImageFolder-style
DataLoader pass over the same files.

    python bench/images.py --images 4000 --size 32 --index-files 100000

1. Decoding: the ``images`` source with 2 worker processes (first read: decode every file; second
   read: the index, nothing changed), then prepare's shards, against one epoch of a
   ``torch.utils.data.DataLoader(num_workers=2)`` over an ImageFolder-style dataset (PIL open,
   convert, resize, to a tensor: what ``torchvision.datasets.ImageFolder`` with ``Resize`` and
   ``ToTensor`` does; torchvision itself when it imports).
2. Training samples/s of one epoch of the same CNN fed from the prepared shards
   (``ShardDataset``) and from the raw folder (the DataLoader above).
3. The index of a folder of many small files: first scan (files just written, so in the page
   cache, and again with their pages dropped, as for a folder not read since a reboot), and a
   re-scan with nothing changed, against its floor: a bare ``os.stat`` of each file
   (``--images 0``: this part alone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from blase.hashing import RACY_WINDOW_NS


def make_folder(root: Path, n: int, side: int = 40, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        label = i % classes
        folder = root / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        arr = np.clip(rng.normal(20 * label, 30, (side, side, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr, "RGB").save(folder / f"{i:06d}.png")


class FolderDataset:
    """ImageFolder + Resize + ToTensor, in PIL and torch (torchvision's own when it imports)."""

    def __init__(self, root: Path, size: int) -> None:
        self.classes = sorted(p.name for p in root.iterdir())
        self.items = [(p, i) for i, c in enumerate(self.classes) for p in sorted((root / c).iterdir())]
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        import torch

        path, label = self.items[i]
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR))
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0, label


def folder_loader(root: Path, size: int, batch: int):
    import torch

    try:
        from torchvision import datasets, transforms

        dataset = datasets.ImageFolder(str(root), transforms.Compose([
            transforms.Resize((size, size)), transforms.ToTensor()]))
        what = "torchvision ImageFolder"
    except Exception:  # torchvision absent or not built for this torch
        dataset, what = FolderDataset(root, size), "ImageFolder-style (PIL)"
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=2,
                                       generator=torch.Generator().manual_seed(0)), what


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_decode(work: Path, n: int, size: int) -> list[tuple[str, float, float]]:
    from blase.extract import Extract, PluginOptions
    from blase.prepare import ImageView, Prepare, ShardDataset

    root = work / "images"
    (work / ".blase").mkdir(exist_ok=True)
    opts = PluginOptions(options={"size": size, "mode": "RGB", "workers": 2})
    loader, what = folder_loader(root, size, 256)
    anchor, _ = timed(lambda: sum(len(x) for x, _ in loader))
    first, _ = timed(lambda: Extract(str(root), opts, format="images").to_parquet(work / "extract1", memory="1GB"))
    again, _ = timed(lambda: Extract(str(root), opts, format="images").to_parquet(work / "extract2", memory="1GB"))
    prep, _ = timed(lambda: Prepare("label", key="path", features=["px"], split=(1.0, 0.0, 0.0), seed=0).run(
        work / "extract2", work / "shards", memory="1GB"))
    view = ImageView(channels=3, size=size, flip=True, crop=2)
    data = ShardDataset(work / "shards", split="train", batch_size=256, seed=0, image=view)
    epoch, _ = timed(lambda: sum(len(x) for x, _ in data))
    loaded, _ = timed(lambda: sum(len(x) for x, _ in data.loader(num_workers=2)))
    rows = [(f"anchor: {what} + DataLoader(num_workers=2), one pass", anchor, n / anchor),
            ("blase images source, 2 workers, first read (decode + index)", first, n / first),
            ("blase images source, re-read (index, nothing changed)", again, n / again),
            ("re-read + prepare (split, uint8 tensor shards)", again + prep, n / (again + prep)),
            ("one epoch from the shards: ShardDataset + ImageView (flip, crop), one process", epoch, n / epoch),
            ("one epoch from the shards: the same through DataLoader(num_workers=2)", loaded, n / loaded)]
    return [(f"{w} ({anchor / s:.2f}x the anchor)" if i else w, s, r) for i, (w, s, r) in enumerate(rows)]


def bench_train(work: Path, n: int, size: int) -> list[tuple[str, float, float]]:
    import torch

    from blase.contrib._image_cnn import SmallCNN
    from blase.prepare import ShardDataset

    torch.set_num_threads(1)

    def epoch(batches) -> int:
        torch.manual_seed(0)
        net = SmallCNN(3, size, 10)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        seen = 0
        for x, y in batches:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), torch.as_tensor(y).long())
            loss.backward()
            opt.step()
            seen += len(x)
        return seen

    def from_shards():  # what Blase's training loop reads: float32 rows of the uint8 pixels
        yield from ShardDataset(work / "shards", split="train", batch_size=256, seed=0)

    def from_folder():
        loader, _ = folder_loader(work / "images", size, 256)
        for x, y in loader:  # NCHW in [0, 1] -> the CNN's flat channels-last 0-255 rows
            yield (x.permute(0, 2, 3, 1).reshape(len(x), -1) * 255.0), y

    epoch(batch for i, batch in enumerate(from_shards()) if i < 2)  # warm-up: torch's first convolutions
    shards_s, rows_a = timed(lambda: epoch(from_shards()))
    folder_s, rows_b = timed(lambda: epoch(from_folder()))
    return [("train the CNN one epoch from the raw folder (DataLoader, 2 workers)", folder_s, rows_b / folder_s),
            (f"train the CNN one epoch from the shards ({folder_s / shards_s:.2f}x)", shards_s, rows_a / shards_s)]


def bench_index(work: Path, n: int) -> list[tuple[str, float, float]]:
    from blase.contrib._images import ImageOptions, ImageReader

    root = work / "many"
    tiny = np.zeros((4, 4), dtype=np.uint8)
    for i in range(n):
        folder = root / f"c{i % 10}"
        if i < 10:
            folder.mkdir(parents=True)
        Image.fromarray(tiny + i % 200, "L").save(folder / f"{i:06d}.png")
    (work / ".blase").mkdir(exist_ok=True)
    files = sorted(root.rglob("*.png"))
    # a real folder is older than the window in which the index reads a just-written file again,
    # and is on disk: no writeback of 100,000 new files competes with the scans timed below
    os.sync()
    time.sleep(RACY_WINDOW_NS / 1e9)
    reader = ImageReader(ImageOptions(size=4, mode="L", workers=2))
    first, index = timed(lambda: reader.index(files, root=root))
    again = sorted(timed(lambda: reader.index(files, root=root))[0] for _ in range(3))[1]
    assert reader.index_stats["decoded"] == 0, reader.index_stats
    texts = list(map(os.fspath, files))
    floor = sorted(timed(lambda: [os.stat(t) for t in texts])[0] for _ in range(3))[1]
    rows = [(f"index {n:,} small files: first scan, files just written (in the page cache)", first, n / first)]
    cold = None
    if hasattr(os, "posix_fadvise"):  # a folder that was not just written: its files' pages are on disk only
        shutil.rmtree(index.folder)
        evict(texts)
        cold, _ = timed(lambda: reader.index(files, root=root))
        rows.append((f"index {n:,} small files: first scan, files not in the page cache", cold, n / cold))

    def share(seconds: float) -> str:
        return f"{seconds / first:.1%} of the cached first scan" + (f", {seconds / cold:.1%} of the uncached" if cold else "")

    return [*rows, (f"index {n:,} small files: re-scan, nothing changed, median of 3 ({share(again)})", again, n / again),
            (f"the floor: a bare `os.stat` of each file, median of 3 ({share(floor)})", floor, n / floor)]


def evict(paths: list[str]) -> None:
    """Drop the files' pages from the page cache (``POSIX_FADV_DONTNEED``; no root needed), as
    after a reboot or on a folder too large to stay cached; the inodes stay cached."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # only clean pages can be dropped
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--index-files", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="blase-bench-images-"))
    print(f"\n{args.images} PNG images 40x40 RGB -> {args.size}x{args.size}, {args.index_files} tiny PNG files "
          f"to index; {os.cpu_count()} cores\n")
    print("| what | seconds | images/s |\n| --- | ---: | ---: |", flush=True)

    def show(rows: list[tuple[str, float, float]]) -> None:
        for what, seconds, rate in rows:
            print(f"| {what} | {seconds:.2f} | {rate:,.0f} |", flush=True)

    try:
        if args.images:
            make_folder(work / "images", args.images)
            show(bench_decode(work, args.images, args.size))
            show(bench_train(work, args.images, args.size))
        if args.index_files:
            show(bench_index(work, args.index_files))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
