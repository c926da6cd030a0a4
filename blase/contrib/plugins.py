"""The manifests of Blase's reference plugins (the targets of its ``blase.plugins`` entry
points). Reading them imports neither xgboost, lightgbm nor keras."""

from __future__ import annotations

from blase._version import __version__
from blase.contrib._keras_setup import KerasOptions
from blase.contrib._options import LightGBMOptions, XGBoostOptions
from blase.plugins import Plugin

__all__ = ["KERAS", "LIGHTGBM", "XGBOOST"]

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
KERAS = Plugin(
    name="keras", kind="model", target="blase.contrib.keras:KerasModel", version=__version__,
    description="a Keras 3 network (built-in MLP or a build_model script) on torch, tensorflow or jax",
    config_schema=KerasOptions.model_json_schema(), requires=("keras",), extra="keras",
)
