"""Steps: the contract every pipeline step follows, and the records steps leave.

- :class:`Step` and :class:`StepContext`: what a step is (name, inputs by name, cache key
  parts, ``run(inputs, out_dir, ctx)``), for the built-in steps and a plugin's alike; and what
  it does after a run: ``verify`` (:class:`Verification`, for ``blase reproduce --verify``),
  ``restore`` (``blase restore``) and ``review`` (:class:`ReviewContext`, :class:`StepReview`,
  for ``blase run --autonomy``).
- Typed outputs (:class:`StepOutput` and the built-in :class:`Extracted`,
  :class:`FittedTransform`, :class:`Shards`, :class:`TrainedModel`, :class:`Evaluation`,
  :class:`Package`): what one step hands the next, with paths relative to its folder.
- :class:`StepResult` and :func:`record_step`: the record of one execution in Track.
- :func:`finished_steps`, :func:`latest_with`, :func:`step_records`: steps read back from a run.
"""

from blase.steps._contract import Step, StepContext, Verification
from blase.steps._outputs import (
    Evaluation,
    Extracted,
    FittedTransform,
    Package,
    Shards,
    StepOutput,
    StepOutputError,
    TrainedModel,
    output_type,
)
from blase.steps._records import BUILTIN_STEPS, finished_steps, latest_with, step_records
from blase.steps._result import (
    StepMeter,
    StepResult,
    current_peak_rss,
    measure_step,
    record_step,
    reset_peak_rss,
)
from blase.steps._review import ReviewContext, StepReview

__all__ = [
    "BUILTIN_STEPS",
    "Evaluation",
    "Extracted",
    "FittedTransform",
    "Package",
    "ReviewContext",
    "Shards",
    "Step",
    "StepContext",
    "StepMeter",
    "StepOutput",
    "StepOutputError",
    "StepResult",
    "StepReview",
    "TrainedModel",
    "Verification",
    "current_peak_rss",
    "finished_steps",
    "latest_with",
    "measure_step",
    "output_type",
    "record_step",
    "reset_peak_rss",
    "step_records",
]
