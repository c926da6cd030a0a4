"""The pipeline: the registered steps run in order as one tracked, cached run.

>>> from blase.pipeline import Pipeline
>>> result = Pipeline(".").run()          # doctest: +SKIP
>>> result.steps["evaluate"].output.metrics  # doctest: +SKIP

See :mod:`blase.pipeline._runner` (the runner, caching, ``--resume``/``--from``),
:mod:`blase.pipeline._builtin` (the six built-in steps) and :mod:`blase.pipeline._registry`.
"""

from blase.pipeline._builtin import (
    DeployStep,
    EvaluateStep,
    ExtractStep,
    PrepareStep,
    TrainStep,
    TransformStep,
)
from blase.pipeline._registry import StepRegistry, StepRegistryError, default_registry
from blase.pipeline._runner import STEPS, Pipeline, PipelineError, PipelineResult
from blase.steps import finished_steps, latest_with, step_records

__all__ = [
    "STEPS",
    "DeployStep",
    "EvaluateStep",
    "ExtractStep",
    "Pipeline",
    "PipelineError",
    "PipelineResult",
    "PrepareStep",
    "StepRegistry",
    "StepRegistryError",
    "TrainStep",
    "TransformStep",
    "default_registry",
    "finished_steps",
    "latest_with",
    "step_records",
]
