"""The options of the reference model plugins (``train.options`` in blase.yaml).

Pydantic models with ``extra="forbid"``: a misspelt key is an error naming
``train.options.<key>``. They import nothing but pydantic, so the manifests can publish their
JSON schemas without importing xgboost or lightgbm.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BoostingOptions", "LightGBMOptions", "XGBoostOptions"]


class BoostingOptions(BaseModel):
    """What both boosting libraries share."""

    model_config = ConfigDict(extra="forbid")

    n_estimators: int = Field(default=500, ge=1, description="boosting rounds at most")
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    early_stopping_rounds: int | None = Field(
        default=20, ge=1, description="stop when the val metric has not improved for this many rounds"
    )
    subsample: float = Field(default=1.0, gt=0, le=1, description="share of rows per tree")
    colsample_bytree: float = Field(default=1.0, gt=0, le=1, description="share of features per tree")
    reg_lambda: float = Field(default=1.0, ge=0, description="L2 regularisation of leaf weights")
    reg_alpha: float = Field(default=0.0, ge=0, description="L1 regularisation of leaf weights")
    n_jobs: int | None = Field(default=None, ge=1, description="threads; default: the library's (every core)")


class XGBoostOptions(BoostingOptions):
    """``train.options`` of ``train.model: xgboost``."""

    max_depth: int = Field(default=6, ge=0, description="depth of a tree (0: no limit)")
    min_child_weight: float = Field(default=1.0, ge=0)
    max_bin: int = Field(default=256, ge=2, description="histogram bins per feature")
    external_memory: bool | Literal["auto"] = Field(
        default="auto",
        description="true: quantised pages cached on disk (ExtMemQuantileDMatrix), any size; false: "
        "the quantised rows in memory (QuantileDMatrix, about a byte per value); auto: in memory "
        "when they take at most a quarter of the memory budget",
    )
    cache_dir: str | None = Field(
        default=None,
        description="folder for the external-memory cache (absolute, or relative to the project; "
        "default: the project's .blase/tmp); its free space is checked before XGBoost writes",
    )


class LightGBMOptions(BoostingOptions):
    """``train.options`` of ``train.model: lightgbm``."""

    num_leaves: int = Field(default=31, ge=2, le=131072)
    max_depth: int = Field(default=-1, description="depth of a tree (-1: no limit)")
    min_child_samples: int = Field(default=20, ge=1, description="rows in a leaf at least")
    max_bin: int = Field(default=255, ge=2, description="histogram bins per feature")
    reg_lambda: float = Field(default=0.0, ge=0, description="L2 regularisation of leaf weights")
