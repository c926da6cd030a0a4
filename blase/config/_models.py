"""Pydantic models of ``blase.yaml``.

Every model forbids unknown keys, so a misspelt key is an error with a suggestion rather
than a silently ignored setting. Defaults are chosen so that a short file is a complete one:
only ``project`` and ``data.source`` are needed to run a pipeline.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from blase._formats import FormatError, check_format

__all__ = [
    "BUILTIN_FORMATS",
    "BUILTIN_OPS",
    "MODEL_NAME_PATTERN",
    "PLUGIN_NAME_PATTERN",
    "AgentConfig",
    "DataConfig",
    "DeployConfig",
    "DistributedConfig",
    "DriftTestChoice",
    "EvaluateConfig",
    "MonitorConfig",
    "PluginEntry",
    "PrepareConfig",
    "ProjectConfig",
    "SplitConfig",
    "TrackConfig",
    "TrainConfig",
    "TransformStep",
    "UpdateConfig",
    "check_model_name",
    "check_model_ref",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


#: What a plugin's name may be (as :class:`blase.plugins.Plugin` checks it).
PLUGIN_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
#: The built-in readers of ``data.format``; any other name is a ``source`` plugin's.
BUILTIN_FORMATS: tuple[str, ...] = ("auto", "csv", "parquet", "json", "ndjson", "arrow", "sqlite", "duckdb")
#: The built-in transform operations of ``op:``; any other name is an ``operation`` plugin's.
BUILTIN_OPS: tuple[str, ...] = ("select", "drop", "rename", "cast", "filter", "impute", "scale", "clip",
                                "log1p", "onehot", "ordinal", "hash", "datetime", "sql")


def _builtin_or_plugin(value: str, builtins: tuple[str, ...], what: str) -> str:
    """``value`` when it is a built-in name or could be a plugin's (checked when the plugin is
    looked up, since reading the config imports no plugin)."""
    if value in builtins or re.match(PLUGIN_NAME_PATTERN, value):
        return value
    raise ValueError(f"{value!r} is neither a built-in {what} ({', '.join(builtins)}) nor a plugin name "
                     "(lower-case letters, digits and '_')")


def _check_size(value: str | int | None) -> str | int | None:
    """Validate a memory size ("2GB", "auto", bytes) without importing psutil."""
    if value is None or isinstance(value, int) or value == "auto":
        return value
    from blase.resources import parse_size

    parse_size(value)  # raises ResourceError (a ValueError-like message) on bad input
    return value


def _size_value(value: str | int) -> str | int:
    """A field validator's check of a size, its error a plain ValueError pydantic reports."""
    try:
        _check_size(value)
    except Exception as exc:  # ResourceError carries the readable message
        raise ValueError(getattr(exc, "message", str(exc))) from None
    return value


class DataConfig(_Strict):
    """Where the raw data lives and what to predict."""

    source: str | None = Field(
        default=None,
        description="file, folder or glob (CSV, Parquet, JSON/NDJSON, Arrow) or "
        "'file.sqlite:table' / 'file.duckdb:table'",
    )
    format: str = Field(default="auto", description="auto (from the extension), csv, parquet, json, ndjson, "
                        "arrow, sqlite, duckdb, or the name of a source plugin")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="a source plugin's own options, validated by the plugin")
    label: str | None = Field(default=None, description="the column to predict")
    key: str | None = Field(default=None, description="a stable row id, used for splitting")
    delimiter: str | None = None
    null_values: list[str] | None = None
    dtypes: dict[str, str] = Field(default_factory=dict)
    bad_rows: Literal["error", "skip", "quarantine"] = "error"
    max_line_size: int | None = Field(
        default=None, ge=1, description="CSV: the longest line in bytes (default 2,000,000)"
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return _builtin_or_plugin(value, BUILTIN_FORMATS, "format")

    @model_validator(mode="after")
    def _options_for_plugins(self) -> DataConfig:
        if self.options and self.format != "auto" and self.format in BUILTIN_FORMATS:
            raise ValueError(f"data.options are a source plugin's options; format {self.format!r} is built in "
                             "(its settings are data.delimiter, data.dtypes, ...)")
        return self


class TransformStep(_Strict):
    """One transform operation (``op``) or a user function (``call``)."""

    op: str | None = Field(default=None, description="a built-in operation or an operation plugin's name")
    call: str | None = Field(
        default=None, description="a user function, 'scripts/transforms.py:func'"
    )
    columns: list[str] | None = None
    strategy: Literal["mean", "median", "most_frequent", "constant"] | None = None
    method: Literal["standard", "minmax", "robust"] | None = None
    value: Any = None
    where: str | None = None
    expr: str | None = None
    name: str | None = None
    mapping: dict[str, str] | None = None
    dtype: str | None = None
    lower: float | None = None
    upper: float | None = None
    max_categories: int | None = Field(default=None, ge=1)
    n_features: int | None = Field(default=None, ge=1)
    parts: list[Literal["year", "month", "day", "dayofweek", "hour", "minute"]] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    #: An operation plugin's own keys (``- op: winsorize`` then ``quantile: 0.99``), validated
    #: by the plugin when the transform is built; written back inline.
    options: dict[str, Any] = Field(default_factory=dict)

    #: The keys each op reads, and those it needs (a tuple inside: at least one of them).
    _OP_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "select": ("columns",),
        "drop": ("columns",),
        "rename": ("mapping",),
        "cast": ("columns", "dtype"),
        "filter": ("where",),
        "impute": ("columns", "strategy", "value"),
        "scale": ("columns", "method"),
        "clip": ("columns", "lower", "upper"),
        "log1p": ("columns",),
        "onehot": ("columns", "max_categories"),
        "ordinal": ("columns", "max_categories"),
        "hash": ("columns", "n_features", "name"),
        "datetime": ("columns", "parts"),
        "sql": ("expr", "name"),
    }
    _OP_NEEDS: ClassVar[dict[str, tuple[str | tuple[str, ...], ...]]] = {
        "select": ("columns",),
        "drop": ("columns",),
        "rename": ("mapping",),
        "cast": ("columns", "dtype"),
        "filter": ("where",),
        "clip": (("lower", "upper"),),
        "sql": ("expr", "name"),
    }

    @property
    def is_plugin(self) -> bool:
        """True for an operation plugin's step (``op`` is not a built-in)."""
        return self.op is not None and self.op not in BUILTIN_OPS

    @model_validator(mode="before")
    @classmethod
    def _plugin_keys(cls, data: Any) -> Any:
        """Every key of a plugin's step but ``op`` is the plugin's option."""
        if isinstance(data, dict) and isinstance(data.get("op"), str) and data["op"] not in BUILTIN_OPS \
                and "call" not in data:
            return {"op": data["op"], "options": {k: v for k, v in data.items() if k != "op"}}
        return data

    @model_serializer(mode="wrap")
    def _inline_options(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        options = data.pop("options", None) or {}
        return {"op": data["op"], **options} if self.is_plugin else data

    @field_validator("op")
    @classmethod
    def _known_op(cls, value: str | None) -> str | None:
        return None if value is None else _builtin_or_plugin(value, BUILTIN_OPS, "operation")

    @field_validator("where", "expr")
    @classmethod
    def _one_sql_expression(cls, value: str | None) -> str | None:
        # spliced into a DuckDB statement: one expression, never a second statement
        if value is None:
            return None
        from blase._duck import check_sql_expression

        return check_sql_expression(value)

    @model_validator(mode="after")
    def _one_of_op_or_call(self) -> TransformStep:
        if (self.op is None) == (self.call is None):
            raise ValueError("give exactly one of 'op' (a built-in operation) or 'call' (your function)")
        if self.call is not None and ":" not in self.call:
            raise ValueError(
                f"call {self.call!r} must be 'path/to/file.py:function', e.g. scripts/transforms.py:clean"
            )
        what = f"op {self.op!r}" if self.op else "call"
        if self.options and not self.is_plugin:
            raise ValueError(f"{what} does not take options (only an operation plugin's step has its own keys)")
        allowed = set(self._OP_KEYS.get(self.op, ())) if self.op else set()
        stray = [k for k in self._OP_KEYS["impute"] + ("where", "expr", "name", "mapping", "dtype",
                                                       "lower", "upper", "max_categories",
                                                       "n_features", "parts", "method")
                 if k not in allowed and getattr(self, k) is not None]
        if stray:
            uses = ", ".join(sorted(allowed)) or "only 'params' (keyword arguments for your function)"
            raise ValueError(f"{what} does not take {', '.join(sorted(set(stray)))}; it uses {uses}")
        for need in self._OP_NEEDS.get(self.op or "", ()):
            keys = need if isinstance(need, tuple) else (need,)
            if all(getattr(self, k) is None for k in keys):
                raise ValueError(f"{what} needs {' or '.join(keys)}")
        if self.op == "impute" and self.strategy == "constant" and self.value is None:
            raise ValueError("op 'impute' with strategy 'constant' needs a value")
        return self


class SplitConfig(_Strict):
    train: float = Field(default=0.8, gt=0, lt=1)
    val: float = Field(default=0.1, ge=0, lt=1)
    test: float = Field(default=0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"split ratios must add up to 1 (train + val + test = {total:g})")
        return self


class PrepareConfig(_Strict):
    split: SplitConfig = Field(default_factory=SplitConfig)
    stratify: bool = False
    shard_rows: int = Field(default=262_144, ge=1)
    features: list[str] | None = Field(default=None, description="default: every column but the label")
    drop_null_label: bool = Field(default=False, description="drop rows whose label is null instead of failing")


class DistributedConfig(_Strict):
    """``train.distributed``: train a torch model with DDP, launched through ``torchrun``."""

    nproc_per_node: int = Field(default=1, ge=1, description="processes on this machine (one per GPU); "
                                "with launcher: ray, the Ray Train workers, placed anywhere on the cluster")
    launcher: Literal["torchrun", "ray"] = Field(
        default="torchrun", description="torchrun, or ray: Ray Train's TorchTrainer runs the same loop "
        "(the cluster of ray: in blase.yaml)")
    backend: Literal["auto", "gloo", "nccl"] = Field(
        default="auto", description="auto: nccl when training on CUDA, else gloo"
    )
    nnodes: int = Field(default=1, ge=1, description="machines; more than 1 needs a shared filesystem")
    node_rank: int = Field(default=0, ge=0, description="this machine's index (0 writes the model)")
    master_addr: str = Field(default="127.0.0.1", description="node 0's address (nnodes > 1)")
    master_port: int = Field(default=29500, ge=1, le=65535, description="node 0's port (nnodes > 1)")

    @model_validator(mode="after")
    def _rank_in_range(self) -> DistributedConfig:
        if self.node_rank >= self.nnodes:
            raise ValueError(f"node_rank {self.node_rank} must be below nnodes {self.nnodes}")
        if self.launcher == "ray" and self.nnodes > 1:
            raise ValueError("with launcher: ray, Ray places the workers on the cluster's nodes: remove nnodes "
                             "and set nproc_per_node to the number of workers")
        return self

    @model_serializer(mode="wrap")
    def _omit_torchrun(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a torchrun config dumps (and so hashes) as it did before the key existed
        data = handler(self)
        if isinstance(data, dict) and data.get("launcher") == "torchrun":
            data.pop("launcher")
        return data


#: The models ``train.distributed`` can train: the torch kinds (a factory script too).
DISTRIBUTED_MODELS = ("linear", "mlp")


class TrainConfig(_Strict):
    model: str = Field(
        default="mlp",
        description="'linear', 'mlp', a model plugin ('xgboost', 'lightgbm'; see `blase plugins`), "
        "or 'scripts/model.py:build_model'",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="a model plugin's options (xgboost: n_estimators, learning_rate, max_depth...), "
        "validated by the plugin when training starts",
    )
    hidden: list[Annotated[int, Field(ge=1)]] = Field(default_factory=lambda: [64, 32])
    dropout: float = Field(default=0.0, ge=0, lt=1)
    batch_norm: bool = False
    linear_skip: bool = Field(
        default=False,
        description="mlp: add a linear path from the inputs to the output (wide and deep), so "
        "the MLP holds the linear model",
    )
    epochs: int = Field(default=10, ge=1)
    refit: bool | Literal["auto"] = Field(
        default="auto",
        description="after the val split has chosen the best epoch, train again from the same "
        "start on the train and val rows for that many epochs; auto: when train and val hold "
        "at most 50,000 rows (where the val rows are worth most)",
    )
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    batch_size: int = Field(default=256, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    schedule: Literal["none", "cosine", "step"] = "none"
    early_stopping: int | None = Field(default=None, ge=1, description="patience in epochs")
    grad_clip: float | None = Field(default=None, gt=0)
    class_weights: Literal["none", "balanced"] = "none"
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    threads: int | None = Field(
        default=None,
        ge=1,
        description="torch CPU threads; default: chosen from the cores free when training starts",
    )
    mixed_precision: bool = False
    deterministic: bool = True
    distributed: DistributedConfig | None = Field(
        default=None,
        description="train with DDP through torchrun: {nproc_per_node: N, backend: gloo|nccl} "
        "(linear, mlp or a factory script)",
    )

    @model_validator(mode="after")
    def _distributed_needs_torch(self) -> TrainConfig:
        if self.distributed is not None and self.model not in DISTRIBUTED_MODELS and ":" not in self.model:
            raise ValueError(
                f"train.distributed trains the torch models (linear, mlp, a factory script), not "
                f"model {self.model!r}: set `model: mlp` under train:, or remove train.distributed"
            )
        return self

    @model_serializer(mode="wrap")
    def _omit_no_distributed(self, handler: SerializerFunctionWrapHandler) -> Any:
        # a single-process config dumps (and so hashes) as it did before the key existed
        data = handler(self)
        if isinstance(data, dict) and data.get("distributed", 0) is None:
            data.pop("distributed")
        return data


class EvaluateConfig(_Strict):
    plots: bool = True


#: What a model name may be: it becomes a folder under ``models/``, so no separators or ``..``.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def check_model_name(name: str) -> str:
    """``name`` if it is a model name (an identifier), else ``ValueError`` saying why."""
    if not isinstance(name, str) or not re.match(MODEL_NAME_PATTERN, name) or ".." in name:
        raise ValueError(
            f"model name {name!r} is not a name: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit, no '..', no '/')"
        )
    return name


def check_model_ref(ref: str) -> str:
    """``ref`` if it is ``NAME`` or ``NAME@vN``, else ``ValueError`` saying why."""
    name, at, version = str(ref).partition("@")
    check_model_name(name)
    if at and not re.match(r"^v[0-9]{1,9}$", version):
        raise ValueError(f"model version {version!r} in {ref!r} is not a version like v3")
    return ref


class DeployConfig(_Strict):
    name: str | None = Field(default=None, description="model name; default: the project name")
    promote: bool = False
    always: bool = Field(default=False, description="deploy every run; by default a run deploys a new version "
                         "only when it is the first, is promoted, or beats the current one's test metric")
    onnx: bool = True

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str | None) -> str | None:
        return None if value is None else check_model_name(value)


class DriftTestChoice(_Strict):
    """The test of one column kind under ``monitor.tests``: ``auto`` (the built-in choice) or
    a ``drift_test`` plugin by name, with its own options inline (``{test: mmd, alpha: 0.01}``)."""

    test: str = "auto"
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"test": data}
        if isinstance(data, dict) and "test" in data:
            return {"test": data["test"], "options": {k: v for k, v in data.items() if k != "test"}}
        return data

    @model_serializer(mode="wrap")
    def _inline_options(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        options = data.pop("options", None) or {}
        return {**data, **options} if options else data["test"]

    @field_validator("test")
    @classmethod
    def _a_name(cls, value: str) -> str:
        if value != "auto" and not re.match(PLUGIN_NAME_PATTERN, value):
            raise ValueError(f"test {value!r} is neither 'auto' nor a drift_test plugin's name")
        return value

    @model_validator(mode="after")
    def _options_need_a_plugin(self) -> DriftTestChoice:
        if self.options and self.test == "auto":
            raise ValueError(f"options {', '.join(sorted(self.options))} need a drift_test plugin (test: NAME)")
        return self


class MonitorConfig(_Strict):
    """``monitor:``: when new data counts as drifted, and when to retrain (``blase monitor --act``)."""

    #: The keys ``retrain_when`` understands.
    TRIGGERS: ClassVar[tuple[str, ...]] = ("drift_share", "metric_drop", "new_rows")

    drift_threshold: float = Field(default=0.5, gt=0, le=1, description="share of drifted columns")
    retrain_when: dict[str, float] = Field(
        default_factory=dict,
        description="retrain when any holds: drift_share >= x, metric_drop >= x (accuracy points, "
        "or relative RMSE rise), new_rows >= x",
    )
    sample_rows: int = Field(default=50_000, ge=100, description="rows scored for prediction drift")
    ignore: list[str] = Field(
        default_factory=list,
        description="input columns left out of drift (ids, or anything that moves by design); "
        "new data must still have them",
    )
    include: list[str] = Field(
        default_factory=list,
        description="datetime input columns compared all the same (by default they are not, as in "
        "Evidently: later data always lies beyond the training dates)",
    )
    tests: dict[Literal["numeric", "categorical"], DriftTestChoice] = Field(
        default_factory=dict,
        description="the drift test per column kind: auto (the built-in choice) or a drift_test plugin, "
        "e.g. {numeric: mmd}",
    )

    @model_validator(mode="after")
    def _not_both(self) -> MonitorConfig:
        both = sorted(set(self.ignore) & set(self.include))
        if both:
            raise ValueError(f"monitor.ignore and monitor.include both name {', '.join(both)}; keep one")
        return self

    @field_validator("retrain_when")
    @classmethod
    def _known_triggers(cls, value: dict[str, float]) -> dict[str, float]:
        import difflib

        for key, threshold in value.items():
            if key not in cls.TRIGGERS:
                close = difflib.get_close_matches(key, cls.TRIGGERS, n=1)
                raise ValueError(
                    f"unknown trigger {key!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                    + f" (use {', '.join(cls.TRIGGERS)})"
                )
            if threshold < 0:
                raise ValueError(f"retrain_when.{key} must be >= 0, not {threshold}")
        return value


class UpdateConfig(_Strict):
    """``update:``: how ``blase update`` retrains a deployed model and when it promotes it."""

    mode: Literal["finetune", "retrain"] = "finetune"
    replay: float = Field(default=0.2, ge=0, lt=1, description="share of old rows in the training mix")
    epochs: int | None = Field(default=None, ge=1, description="default: train.epochs")
    margin: float = Field(default=0.01, ge=0, description="win needed on the new holdout "
                          "(accuracy points; relative RMSE for regression)")
    tolerance: float = Field(default=0.02, ge=0, description="loss allowed on the original test set")
    holdout: float = Field(default=0.2, gt=0, lt=1, description="share of new rows held out")


class TrackConfig(_Strict):
    sample_resources: bool = True
    sample_interval: float = Field(default=2.0, gt=0, description="seconds between resource samples")


class AgentConfig(_Strict):
    provider: Literal["auto", "openai", "ollama", "llamacpp"] = "auto"
    model: str | None = None
    base_url: str | None = None
    tool_retrieval: int | None = Field(default=None, ge=1)  # show the model only the N tools that fit best
    autonomy: Literal["manual", "semi", "auto"] = "manual"
    max_tool_calls: int = Field(default=20, ge=1)
    max_write_actions: int = Field(default=5, ge=0)
    max_seconds: float = Field(default=600, gt=0)
    eval_threshold: float = Field(
        default=0.8, ge=0, le=1,
        description="autonomy auto warns unless `blase agent eval` recorded this pass rate for the model",
    )


class PluginEntry(_Strict):
    """One item of ``plugins:``: an installed plugin by ``name``, or a project file by
    ``path`` (``scripts/my_plugin.py``), with the ``options`` its config model validates."""

    name: str | None = None
    path: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_of(self) -> PluginEntry:
        if (self.name is None) == (self.path is None):
            raise ValueError("give a plugin either `name` (installed) or `path` (a .py file of the project)")
        if self.path is not None and not self.path.endswith(".py"):
            raise ValueError(f"plugin path {self.path!r} is not a .py file")
        return self


class RayConfig(_Strict):
    """``ray:``: the Ray cluster of ``executor: ray``."""

    address: str | None = Field(
        default=None,
        description="a running cluster (ray://host:10001, host:6379 or auto); none: RAY_ADDRESS, "
        "else a local Ray started for the run. Its nodes must see the project's files at the same path",
    )
    task_memory: str | int = Field(
        default="auto", description="memory budget of each data task, e.g. '1GB'; auto: the step's budget "
        "shared among the cluster's CPUs (at least 256MB)")
    num_cpus: int | None = Field(default=None, ge=1, description="CPUs of a local Ray started for the run (default: all)")
    partition_size: str | int = Field(
        default="auto", description="uncompressed size of one task's share of a large Parquet file (whole row "
        "groups), e.g. '64MB'; auto: a quarter of task_memory")

    @field_validator("task_memory", "partition_size")
    @classmethod
    def _task_memory_is_a_size(cls, value: str | int) -> str | int:
        return _size_value(value)


class ProjectConfig(_Strict):
    """The whole of ``blase.yaml``."""

    version: int | None = Field(
        default=None,
        description="the format of this file (blase upgrade sets it; none means the format before 1)",
    )
    project: str = Field(description="the project's name")
    seed: int = 42
    memory: str | int = Field(
        default="auto", description="memory budget for data steps: 'auto' or a size like '2GB'"
    )
    executor: Literal["local", "ray"] = Field(
        default="local", description="where the data steps read their partitions: local, or ray (Ray tasks; "
        "the same shards, bit for bit)")
    ray: RayConfig = Field(default_factory=RayConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    transform: list[TransformStep] = Field(default_factory=list)
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    update: UpdateConfig = Field(default_factory=UpdateConfig)
    track: TrackConfig = Field(default_factory=TrackConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    plugins: list[PluginEntry] = Field(
        default_factory=list,
        description="plugins this project uses: installed ones by name, its own as scripts/x.py files",
    )

    @field_validator("version")
    @classmethod
    def _readable_format(cls, value: int | None) -> int | None:
        try:
            check_format("config", value, "blase.yaml")
        except FormatError as exc:
            raise ValueError(f"{exc.message}; {exc.hint}") from None
        return value

    @field_validator("plugins", mode="before")
    @classmethod
    def _plugin_shorthand(cls, value: Any) -> Any:
        """``- xgboost`` and ``- scripts/my_plugin.py`` are short for ``{name: ...}`` / ``{path: ...}``."""
        if isinstance(value, list):
            return [({"path": v} if v.endswith(".py") else {"name": v}) if isinstance(v, str) else v for v in value]
        return value

    @field_validator("memory")
    @classmethod
    def _memory_is_a_size(cls, value: str | int) -> str | int:
        return _size_value(value)
