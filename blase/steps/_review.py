"""What a step says about one of its executions to whoever reviews a run.

Under ``blase run --autonomy`` the assistant reviews a pipeline run one step at a time. The
facts it reads about a step (rows, metrics, the config that step reads) and the *signals*
(observations computed by code: the best epoch was the last one, balanced accuracy lags
accuracy) come from :meth:`blase.steps.Step.review`, so a plugin's step is reviewed the way
the built-in ones are. Signals are hints; what runs is still decided by the assistant's gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blase.project import Project

__all__ = ["ReviewContext", "StepReview"]

#: The states a reviewed step can be in: ran, cached, reused, failed, missing.
UNFINISHED = ("failed", "missing")


@dataclass
class ReviewContext:
    """What a step's :meth:`~blase.steps.Step.review` may know besides its own result."""

    project: Project
    #: The pipeline run under review.
    run_id: str
    #: ``ran``, ``cached``, ``reused``, ``failed`` or ``missing``.
    state: str
    #: The project config as it is now (``blase.yaml`` with the overrides in effect), as JSON.
    config: dict[str, Any] = field(default_factory=dict)
    #: The training data's profile (schema suggestions), when the step asked for it
    #: (``"profile"`` in :attr:`~blase.steps.Step.review_inputs`).
    profile: dict[str, Any] | None = None
    #: Data files other than the training source (``"new_data"`` in ``review_inputs``).
    new_data: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """True when the step has a result to review (it ran, or came from the cache)."""
        return self.state not in UNFINISHED


@dataclass
class StepReview:
    """Lines of facts and the signals a step's review adds."""

    lines: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)

    def __iadd__(self, other: StepReview) -> StepReview:
        self.lines += other.lines
        self.signals += other.signals
        return self
