"""The manifests of Blase's reference plugins (the targets of its ``blase.plugins`` entry
points). Reading them imports neither xgboost nor lightgbm."""

from __future__ import annotations

from blase._version import __version__
from blase.contrib._options import LightGBMOptions, XGBoostOptions
from blase.plugins import Plugin

__all__ = ["LIGHTGBM", "XGBOOST"]

XGBOOST = Plugin(
    name="xgboost", kind="model", target="blase.contrib.xgboost:XGBoostModel", version=__version__,
    description="gradient-boosted trees (XGBoost), trained out of core from the shards",
    config_schema=XGBoostOptions.model_json_schema(), requires=("xgboost",), extra="xgboost",
)
LIGHTGBM = Plugin(
    name="lightgbm", kind="model", target="blase.contrib.lightgbm:LightGBMModel", version=__version__,
    description="gradient-boosted trees (LightGBM), fed one Sequence per shard",
    config_schema=LightGBMOptions.model_json_schema(), requires=("lightgbm",), extra="lightgbm",
)
