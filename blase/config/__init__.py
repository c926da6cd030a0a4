"""Configuration: pydantic models of ``blase.yaml`` and a loader whose errors name line and key."""

from blase.config._load import (
    apply_overrides,
    config_from_dict,
    config_from_text,
    load_config,
    parse_overrides,
)
from blase.config._models import (
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
)

__all__ = [
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
    "apply_overrides",
    "config_from_dict",
    "config_from_text",
    "load_config",
    "parse_overrides",
]
