"""Small real datasets that ship with Blase, so examples and the demo run offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["dataset_path", "write_digit_images"]

_DATASETS = {"penguins": "penguins.csv", "digits": "digits.csv"}


def dataset_path(name: str) -> Path:
    """Path of a bundled dataset file (``"penguins"``: 344 rows, 3 species, with NAs;
    ``"digits"``: 600 8x8 handwritten digits, a label and 64 pixels from 0 to 16 per row)."""
    if name not in _DATASETS:
        from blase.errors import BlaseError

        raise BlaseError(f"no bundled dataset named {name!r}", hint=f"choose one of {sorted(_DATASETS)}")
    return Path(str(resources.files(__name__).joinpath(_DATASETS[name])))


def write_digit_images(folder: Path, rows: range | None = None) -> int:
    """Write the bundled digits (or ``rows`` of them) as 8x8 grey PNG files under ``folder``,
    one subfolder per class (``folder/3/0042.png``); returns how many were written."""
    import csv

    import numpy as np
    from PIL import Image

    with open(dataset_path("digits"), newline="") as fh:
        table = list(csv.reader(fh))[1:]
    chosen = range(len(table)) if rows is None else rows
    for i in chosen:
        label, *pixels = table[i]
        image = np.asarray([int(p) for p in pixels], dtype=np.float32).reshape(8, 8) * (255 / 16)
        (folder / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(image).astype(np.uint8), "L").save(folder / label / f"{i:04d}.png")
    return len(chosen)
