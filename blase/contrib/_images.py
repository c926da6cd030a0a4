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

Decoding runs in ``workers`` processes. The result of every file is kept in an index per
folder and decoding options under the project's ``.blase/index/`` (a Parquet manifest of path,
size, mtime, inode, content hash, width, height and label, and the decoded pixels as one
memory-mapped uint8 array), so reading the folder again (``blase check``, a new run, ``blase
predict``) stats each file and decodes only the new and changed ones
(:mod:`blase.contrib._collection`).

A zero-byte or undecodable file is an error naming it, or with ``bad_files: quarantine`` a
row of ``outputs/rejects/<source>.csv`` (counted as rejected in the run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from blase.contrib._collection import CollectionIndex, CollectionOptions, CollectionReader

__all__ = ["IMAGE_SUFFIXES", "ImageIndex", "ImageOptions", "ImageReader"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: The index of an images source (one per folder and decoding options).
ImageIndex = CollectionIndex


class ImageOptions(CollectionOptions):
    """``data.options`` of an image source."""

    size: int = Field(default=32, ge=1, le=1024, description="images are resized to size x size pixels")
    mode: Literal["L", "RGB"] = Field(default="RGB", description="L (grey, one channel) or RGB (three)")


class ImageReader(CollectionReader):
    """Reads a folder of images (or a CSV/Parquet listing of them) as fixed-size pixel rows."""

    name = "images"
    config_model = ImageOptions
    suffixes = IMAGE_SUFFIXES
    prefix = "px_"
    meta: ClassVar[list[tuple[str, pa.DataType]]] = [("width", pa.int32()), ("height", pa.int32())]

    @property
    def channels(self) -> int:
        return 1 if self.opts.mode == "L" else 3

    def decoder(self) -> tuple[str, dict[str, Any]]:
        return "image", {"size": self.opts.size, "mode": self.opts.mode}

    def width(self) -> int:
        return self.opts.size * self.opts.size * self.channels

    def statistics(self, values: np.ndarray) -> list[tuple[str, pa.Array]]:
        per_channel = values.reshape(len(values), -1, self.channels).astype(np.float32)
        out = [("brightness", pa.array(per_channel.mean(axis=(1, 2)), pa.float32())),
               ("contrast", pa.array(per_channel.std(axis=(1, 2)), pa.float32()))]
        if self.channels == 3:
            out += [(f"mean_{c}", pa.array(per_channel[:, :, i].mean(axis=1), pa.float32()))
                    for i, c in enumerate("rgb")]
        return out

    def example_files(self, root: Path) -> list[Path]:
        from PIL import Image

        rng = np.random.default_rng(0)
        out = []
        for label, base in (("dark", 40), ("light", 200)):
            (root / label).mkdir(parents=True, exist_ok=True)
            for i in range(4):
                arr = np.clip(rng.normal(base, 20, (12, 12, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr, "RGB").save(root / label / f"{i}.png")
                out.append(root / label / f"{i}.png")
        return out
