"""Refit: once the val split has chosen the number of epochs, train again on train + val.

Early stopping and the best epoch need rows the model does not learn from. On a small data
set those rows are a large share of what there is (15 % of 442 rows is 66 rows a linear model
fitted on everything would use), so after the first pass has chosen the best epoch ``E``,
``train.refit`` trains the same model again from the same initial weights, with the same
seed, optimizer and schedule, on the train and val rows together for ``E`` epochs, and keeps
those weights. It is what scikit-learn's ``*CV`` estimators do after choosing a parameter
(``refit=True``). ``auto`` refits only when train and val hold at most
:data:`REFIT_AUTO_ROWS` rows: on a large data set the val rows add little and the second pass
would double the training time.

The refit is deterministic (the same seed gives the same weights) and leaves the first pass's
history and checkpoint as they were, so a resumed run refits again from them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blase.model import REFIT_AUTO_ROWS

__all__ = ["REFIT_AUTO_ROWS", "RefitPlan", "refit_plan"]

#: The folder (inside the train step's output) the refit pass writes, removed afterwards.
REFIT_DIR = ".refit"


@dataclass(frozen=True)
class RefitPlan:
    """The second pass: how many epochs, over how many rows, and why."""

    epochs: int
    rows: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "rows": self.rows, "reason": self.reason}


def refit_plan(
    setting: bool | str, *, train_rows: int, val_rows: int, best_epoch: int | None
) -> RefitPlan | None:
    """The refit to run after the first pass, or None (no val split, no best epoch, or
    ``refit: false``, or ``auto`` on a data set above :data:`REFIT_AUTO_ROWS` rows)."""
    if setting is False or not val_rows or not best_epoch:
        return None
    rows = train_rows + val_rows
    if setting == "auto":
        if rows > REFIT_AUTO_ROWS:
            return None
        reason = f"auto: train and val hold {rows:,} rows (<= {REFIT_AUTO_ROWS:,})"
    else:
        reason = "train.refit is true"
    return RefitPlan(epochs=int(best_epoch), rows=rows, reason=reason)


def keep_refit_weights(out: Path, weights_name: str) -> None:
    """Move the refit pass's weights over the first pass's best ones, then drop its folder."""
    import os

    work = out / REFIT_DIR
    os.replace(work / weights_name, out / weights_name)
    shutil.rmtree(work, ignore_errors=True)


def refit_dir(out: Path) -> Path:
    """A fresh, empty folder for the refit pass."""
    work = out / REFIT_DIR
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work
