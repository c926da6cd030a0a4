"""Small real datasets that ship with Blase, so examples and the demo run offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["TONES", "dataset_path", "write_digit_images", "write_tone_clips"]

_DATASETS = {"penguins": "penguins.csv", "orders": "orders.ndjson", "cartpole": "cartpole.csv", "digits": "digits.csv"}


def dataset_path(name: str) -> Path:
    """Path of a bundled dataset file (``"penguins"``: 344 rows, 3 species, with NAs;
    ``"orders"``: 3,000 generated nested JSON orders; ``"cartpole"``: CartPole-v1 observations
    and the actions of a balancing controller; ``"digits"``: 600 8x8 handwritten digits, a label
    and 64 pixels from 0 to 16 per row)."""
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


#: The classes of the generated example clips, and how each sounds.
TONES = {"hum": "a low steady tone (90-250 Hz)", "whistle": "a high steady tone (1.5-4 kHz)",
         "chirp": "a rising sweep", "noise": "white noise"}


def write_tone_clips(root: Path, *, per_class: int, seed: int, sample_rate: int = 16000,
                suffix: str = ".wav") -> int:
    """Write ``per_class`` one-second clips of each class of :data:`TONES` under ``root/CLASS/``
    (16-bit PCM, random pitch, loudness and length 0.6-1.2 s, a little noise, from ``seed``)."""
    import numpy as np
    import soundfile

    rng = np.random.default_rng(seed)
    count = 0
    for label in TONES:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            n = int(sample_rate * rng.uniform(0.6, 1.2))
            t = np.arange(n) / sample_rate
            if label == "hum":
                wave = np.sin(2 * np.pi * rng.uniform(90, 250) * t)
            elif label == "whistle":
                wave = np.sin(2 * np.pi * rng.uniform(1500, 4000) * t)
            elif label == "chirp":
                f0, f1 = rng.uniform(200, 600), rng.uniform(2000, 6000)
                wave = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * t[-1])))
            else:
                wave = rng.normal(0, 0.5, n)
            wave = rng.uniform(0.1, 0.8) * wave + rng.normal(0, 0.01, n)
            soundfile.write(root / label / f"{label}-{seed}-{i:03d}{suffix}", np.clip(wave, -1, 1), sample_rate,
                            subtype="PCM_16")
            count += 1
    return count
