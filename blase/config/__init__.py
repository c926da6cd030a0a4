"""Configuration: pydantic models of ``blase.yaml`` and a loader whose errors name line and key."""

from blase.config._confine import check_confined, config_places
from blase.config._load import (
    apply_overrides,
    config_from_dict,
    config_from_text,
    key_lines,
    load_config,
    parse_overrides,
)
from blase.config._models import (
    MODEL_NAME_PATTERN,
    AgentConfig,
    DataConfig,
    DeployConfig,
    EvaluateConfig,
    MonitorConfig,
    PrepareConfig,
    ProjectConfig,
    SplitConfig,
    TrackConfig,
    TrainConfig,
    TransformStep,
    UpdateConfig,
    check_model_name,
    check_model_ref,
)

__all__ = [
    "MODEL_NAME_PATTERN",
    "AgentConfig",
    "DataConfig",
    "DeployConfig",
    "EvaluateConfig",
    "MonitorConfig",
    "PrepareConfig",
    "ProjectConfig",
    "SplitConfig",
    "TrackConfig",
    "TrainConfig",
    "TransformStep",
    "UpdateConfig",
    "apply_overrides",
    "check_confined",
    "check_model_name",
    "check_model_ref",
    "config_from_dict",
    "config_from_text",
    "config_places",
    "key_lines",
    "load_config",
    "parse_overrides",
]
