"""Where XGBoost's external-memory cache goes, and whether it fits there.

``ExtMemQuantileDMatrix`` writes its quantised pages to disk from its own threads; when the
disk fills up there, the error is thrown inside XGBoost's C++ code where Python cannot catch
it, and the process aborts (SIGABRT) with the run half done. So the plugin estimates the
cache's size from the shards (rows x features x bytes per quantised value, with a margin)
and checks the folder's free space *before* XGBoost is called: a run that would not fit
stops with a :class:`~blase.model.TrainError` naming the folder, the bytes needed and free,
and the fix. Imports nothing heavy (no xgboost).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blase.model import TrainError

__all__ = ["MIN_FREE_BYTES", "cache_bytes", "cache_folder"]

#: Left free on the cache's disk beside the estimate, for everything else that writes there.
MIN_FREE_BYTES = 256 << 20
#: Fixed part of the estimate: the pages' headers, the histogram cuts, XGBoost's temporary files.
_SLACK_BYTES = 32 << 20


def cache_bytes(rows: int, n_features: int, max_bin: int) -> int:
    """An upper estimate of the cache XGBoost writes for ``rows`` rows: a bin index per value
    (1 byte up to 256 bins, 2 up to 65,536, else 4) plus its column index, 1.5 bytes a value
    of row and column offsets, 16 bytes a row, the histogram cuts, and a quarter more. Measured with xgboost 3.2
    (``ExtMemQuantileDMatrix``, CPU): 2.3 bytes a value at 256 bins (dense or sparse), 3.4 with
    half the values missing, 4.5 at 1024 bins; this gives 4.4 and 6.9."""
    index = 1 if max_bin <= 256 else 2 if max_bin <= 65_536 else 4
    per_value = 2 * index + 1.5
    cuts = 8 * n_features * (max_bin + 1)  # the cut values and their offsets
    return int((rows * n_features * per_value + 16 * rows + cuts) * 1.25) + _SLACK_BYTES


def _folder(cache_dir: str | None, default: Path, project_root: Path | None) -> Path:
    if cache_dir is None:
        return default
    folder = Path(cache_dir).expanduser()
    if not folder.is_absolute():
        folder = (project_root or Path.cwd()) / folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=".blase-probe-", dir=folder)
        os.rmdir(probe)
    except OSError as exc:
        raise TrainError(f"train.options.cache_dir: cannot write XGBoost's cache in {folder}: "
                         f"{exc.strerror or exc}",
                         hint="name a writable folder (absolute, or relative to the project), "
                              "or remove train.options.cache_dir to use the project's .blase/tmp") from None
    return folder


@contextmanager
def cache_folder(cache_dir: str | None, default: Path, *, need: int,
                 project_root: Path | None = None) -> Iterator[Path]:
    """A fresh folder for the cache under ``cache_dir`` (or ``default``), removed afterwards.

    Raises
    ------
    TrainError
        Before anything is written, when the folder's disk has less than ``need`` +
        :data:`MIN_FREE_BYTES` free, or when ``cache_dir`` cannot be written.
    """
    base = _folder(cache_dir, default, project_root)
    free = shutil.disk_usage(base).free
    if need + MIN_FREE_BYTES > free:
        raise TrainError(
            f"XGBoost's external-memory cache needs about {need / 1e9:.2f} GB ({need:,} bytes) in {base}, "
            f"whose disk has {free / 1e9:.2f} GB ({free:,} bytes) free (Blase keeps "
            f"{MIN_FREE_BYTES >> 20} MB of it free); XGBoost would abort the run when the disk filled up",
            hint="free space on that disk, or put the cache on a larger one: `blase run --set "
                 "train.options.cache_dir=/path/to/big/disk` (or train.options.cache_dir in blase.yaml); "
                 "train.options.external_memory: false trains in memory instead when the rows fit",
        )
    folder = Path(tempfile.mkdtemp(prefix="blase-xgb-cache-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
