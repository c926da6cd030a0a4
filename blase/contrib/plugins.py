"""The manifests of Blase's own plugins (the targets of its ``blase.plugins`` entry points).
Reading them imports none of the plugins' code or libraries (xgboost, lightgbm, keras,
python-calamine)."""

from __future__ import annotations

from blase._version import __version__
from blase.contrib._keras_setup import KerasOptions
from blase.contrib._options import LightGBMOptions, XGBoostOptions
from blase.contrib._rl_options import PPOOptions, RLEvalOptions
from blase.plugins import Plugin

__all__ = ["AUDIO", "EXCEL", "EXPLODE", "FLATTEN", "IMAGES", "IMAGE_CNN", "IMAGE_ERRORS", "KERAS", "LIGHTGBM", "MMD", "NESTED_JSON",
           "PPO", "RL_EVALUATE", "XGBOOST"]

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

EXCEL = Plugin(
    name="excel",
    kind="source",
    target="blase.contrib._excel:ExcelReader",
    version="1.0",
    description="Excel and OpenDocument sheets (.xlsx .xlsm .xlsb .xls .ods), read with python-calamine",
    requires=("python_calamine",),
    extra="excel",
    suffixes=(".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"),
)

MMD = Plugin(
    name="mmd",
    kind="drift_test",
    target="blase.contrib._mmd:MMDTest",
    version="1.0",
    description="maximum mean discrepancy with a seeded permutation p-value (numeric and categorical)",
    requires=("numpy",),
)

KERAS = Plugin(
    name="keras", kind="model", target="blase.contrib.keras:KerasModel", version=__version__,
    description="a Keras 3 network (built-in MLP or a build_model script) on torch, tensorflow or jax",
    config_schema=KerasOptions.model_json_schema(), requires=("keras",), extra="keras",
)

NESTED_JSON = Plugin(
    name="nested_json", kind="source", target="blase.contrib._nested_json:NestedJSONReader", version="1.0",
    description="NDJSON and JSON arrays of nested objects and lists: one schema across files, type changes "
    "named by file and line",
    requires=("pyarrow",),
)
FLATTEN = Plugin(
    name="flatten", kind="operation", target="blase.contrib._flatten:Flatten", version="1.0",
    description="nested struct columns as dotted columns (user.address.city), to a depth limit; lists as "
    "their length, JSON text, or dropped",
    requires=("pyarrow",),
)
EXPLODE = Plugin(
    name="explode", kind="operation", target="blase.contrib._flatten:Explode", version="1.0",
    description="one row per element of a list column (the other columns repeated), objects flattened",
    requires=("pyarrow",),
)

PPO = Plugin(
    name="ppo", kind="model", target="blase.contrib.rl:PPOModel", version="1.0",
    description="a PPO policy trained in a Gymnasium environment (train.options.env), seeded, checkpointed",
    config_schema=PPOOptions.model_json_schema(), requires=("gymnasium",), extra="rl",
)
RL_EVALUATE = Plugin(
    name="rl_evaluate", kind="step", target="blase.contrib.rl:RLEvaluateStep", version="1.0",
    description="seeded evaluation episodes of the policy against a random policy, and the learning curve",
    config_schema=RLEvalOptions.model_json_schema(), requires=("gymnasium", "matplotlib"), extra="rl",
)

IMAGES = Plugin(
    name="images", kind="source", target="blase.contrib._images:ImageReader", version="1.0",
    description="a folder of images (a class per subfolder) or a CSV/Parquet listing, decoded once into "
                "uint8 pixel columns by worker processes, indexed so a re-read decodes only changed files",
    requires=("PIL",), extra="images", suffixes=(".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"),
)

IMAGE_CNN = Plugin(
    name="image_cnn", kind="model", target="blase.contrib._image_cnn:ImageCNN", version="1.0",
    description="a small CNN over the images source's pixel columns (seeded flip/shift augmentation)",
    config_schema=None, requires=("torch",),
)

IMAGE_ERRORS = Plugin(
    name="image_errors", kind="step", target="blase.contrib._image_errors:ImageErrorsStep", version="1.0",
    description="after evaluate: a PNG grid of the misclassified test images (images source)",
    requires=("matplotlib",),
)

AUDIO = Plugin(
    name="audio", kind="source", target="blase.contrib._audio:AudioReader", version="1.0",
    description="a folder of WAV/FLAC/OGG files (a class per subfolder) or a listing, decoded once into "
                "uint8 log-mel spectrograms by worker processes and indexed",
    requires=("soundfile",), extra="audio", suffixes=(".wav", ".flac", ".ogg"),
)
