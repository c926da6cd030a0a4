"""The step contract: what every pipeline step is, built-in or a plugin's.

A step is a small object with class attributes that say what it is and three methods that do
the work::

    class Report(Step):
        name = "report"
        needs = ("evaluate",)          # outputs it reads, by the name of the step that made them
        after = "evaluate"             # where a plugin step goes in the pipeline
        output_type = ReportOutput     # a StepOutput dataclass

        def config_sections(self, config):      # what of blase.yaml its cache key covers
            return {"report": ...}

        def run(self, inputs, out_dir, ctx):    # write into out_dir, return a StepResult
            metrics = inputs["evaluate"].metrics
            ...
            return StepResult(step=self.name, output=ReportOutput(file="report.html"))

The runner (:class:`blase.pipeline.Pipeline`) wires steps by name: it passes each step the
typed outputs of the steps in :attr:`Step.needs`, computes the cache key from
:meth:`Step.config_sections`, :meth:`Step.code` and :meth:`Step.cache_inputs` plus the output
digests of those inputs, and gives the step a fresh ``out_dir`` inside the step store. A step
never reads another step's ``details``; those are for people.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from blase.steps._outputs import StepOutput
from blase.steps._result import StepResult
from blase.steps._review import ReviewContext, StepReview

if TYPE_CHECKING:
    from blase.project import Project

__all__ = ["Step", "StepContext", "Verification"]


@dataclass
class StepContext:
    """What a running step may know about the run around it."""

    project: Project
    #: The resolved :class:`~blase.config.ProjectConfig` of this run.
    config: Any
    #: Where user scripts are loaded from (the project root, or a run's code snapshot).
    code_root: Path
    #: The memory budget of the data steps (``"2GB"``, bytes, or None for the default).
    memory: int | str | None = None
    #: The run's :class:`~blase.track.Track` (None while a cache key is computed).
    track: Any = None
    #: The run this one resumes (``--resume``), if any.
    resume_from: str | None = None
    #: ``{step: cache key}`` of the steps done so far in this run (run, cached or reused).
    keys: dict[str, str] = field(default_factory=dict)
    #: Digests of raw files, remembered by stat (see :class:`blase.hashing.StatCache`).
    stat_cache: Any = None

    @property
    def run_id(self) -> str:
        return self.track.run_id if self.track is not None else ""


@dataclass
class Verification:
    """How a step's output files in a reproduction compare with the original run's
    (:meth:`Step.verify`, read by ``blase reproduce --verify``)."""

    #: The output files whose content hashes differ (or that only one run has), sorted.
    differ: list[str] = field(default_factory=list)
    #: For a step that trains weights (:attr:`Step.weights_file`): whether they are
    #: bit-identical; None for other steps.
    weights_identical: bool | None = None


class Step(ABC):
    """One pipeline step. Subclasses set the class attributes and implement :meth:`run`.

    Class attributes
    ----------------
    name:
        The step's name: in ``blase run --from NAME``, in records and in cache reasons.
    needs:
        The steps whose outputs :meth:`run` reads (``inputs[name]``).
    output_type:
        The :class:`~blase.steps.StepOutput` subclass :meth:`run` returns in its result.
    after:
        For a plugin step: the step it follows (the built-in steps ignore it).
    version:
        Bump when the step's behaviour changes in a way its config does not show: it is part
        of the cache key.
    cacheable:
        False for a step whose result must not come from the step store (deploy): the runner
        asks :meth:`reuse` instead.
    public:
        True when the step's files should also appear under ``outputs/<run>/`` (evaluate).
    config_model:
        For a plugin step: the pydantic model of its ``options`` in ``blase.yaml``
        (``plugins: [{name: report, options: {...}}]``); the validated options are
        :attr:`options` on the instance, and part of its cache key.
    weights_file:
        The output file that holds trained weights (train's ``model.safetensors``):
        ``blase reproduce --verify`` says whether it is bit-identical.
    restore_needs:
        The steps whose data :meth:`restore` needs, restored first (transform stores only its
        fitted state, so restoring its data needs extract's).
    review_inputs:
        What the assistant gathers before :meth:`review` (``blase run --autonomy``):
        ``"profile"`` (the training data's profile), ``"new_data"`` (data files other than
        the training source).
    check_template:
        For a plugin step: the project template (``blase create --template``) that ``blase
        plugin check`` runs it in (``tabular`` by default, ``images``...).
    review_tools:
        The assistant's tools (names in ``blase.tools``) offered after this step;
        ``review_tools_if_stopped`` are offered too when the run stopped before the
        pipeline's last step (``--to``).
    """

    name: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    output_type: ClassVar[type[StepOutput]] = StepOutput
    after: ClassVar[str | None] = None
    version: ClassVar[int] = 1
    cacheable: ClassVar[bool] = True
    public: ClassVar[bool] = False
    config_model: ClassVar[type[BaseModel] | None] = None
    weights_file: ClassVar[str | None] = None
    restore_needs: ClassVar[tuple[str, ...]] = ()
    review_inputs: ClassVar[frozenset[str]] = frozenset()
    review_tools: ClassVar[tuple[str, ...]] = ("propose_config_change", "accept_step")
    review_tools_if_stopped: ClassVar[tuple[str, ...]] = ()
    check_template: ClassVar[str] = "tabular"

    def __init__(self, options: BaseModel | None = None) -> None:
        self.options = options

    @classmethod
    def example(cls) -> tuple[str, list[str]] | None:
        """The project template the conformance checks (``blase plugin check``) run up to
        this step, and their ``--set`` overrides, for a step that needs another kind of
        project than the tabular template (a policy). Default: :attr:`check_template` with
        ``train.epochs=2`` (None for ``tabular``)."""
        return None if cls.check_template == "tabular" else (cls.check_template, ["train.epochs=2"])

    # -- what the cache key covers ------------------------------------------------------------

    def config_sections(self, config: Any) -> Mapping[str, Any]:
        """The parts of the project config this step reads (JSON values): a change in any of
        them runs it again. Default: the step's own :attr:`options`."""
        return {"options": self.options.model_dump(mode="json")} if self.options is not None else {}

    def code(self, ctx: StepContext) -> Mapping[str, Callable[..., Any] | object]:
        """``{"scripts/x.py:func": object}``: the user code this step calls, hashed into its key
        and snapshotted with the run."""
        return {}

    def cache_inputs(self, ctx: StepContext) -> Mapping[str, Any]:
        """Further named key components (``"data.<file>": digest``, ``"env.device": ...``).
        A value of :data:`blase.cache.UNCACHEABLE` makes the step run every time."""
        return {}

    # -- the work ----------------------------------------------------------------------------

    @abstractmethod
    def run(self, inputs: Mapping[str, StepOutput], out_dir: Path, ctx: StepContext) -> StepResult:
        """Do the step: read ``inputs``, write files only into ``out_dir``, and return a
        :class:`StepResult` whose ``output`` (an :attr:`output_type`) names them relative to
        ``out_dir``."""

    def replay(self, result: StepResult, ctx: StepContext) -> None:  # noqa: B027 (an optional hook)
        """Log into this run what running would have logged (metrics), for a result taken
        from the step store. Default: nothing."""

    def reuse(self, inputs: Mapping[str, StepOutput], ctx: StepContext) -> StepResult | None:
        """For a step that is not :attr:`cacheable`: a result that stands for running it, or
        None to run it."""
        return None

    def on_failure(self, out_dir: Path, ctx: StepContext) -> None:  # noqa: B027 (an optional hook)
        """Called when :meth:`run` raised (or was interrupted): keep what a resume needs."""

    # -- after the run: reproduce, restore, review ------------------------------------------------

    def verify(self, original: Mapping[str, str], again: Mapping[str, str]) -> Verification:
        """Compare the output files (``{relative path: content hash}``) of this step in a run
        and in its reproduction. Default: every file must hash the same, and the
        :attr:`weights_file`, when the step has one, is reported on its own."""
        differ = sorted(k for k in set(original) | set(again) if original.get(k) != again.get(k))
        weights = None
        if self.weights_file is not None:
            before = original.get(self.weights_file)
            weights = before is not None and before == again.get(self.weights_file)
        return Verification(differ=differ, weights_identical=weights)

    def restore(self, output: StepOutput, out_dir: Path, inputs: Mapping[str, StepOutput],
                ctx: StepContext) -> None:
        """Write the data as it was after this step into ``out_dir`` (a new folder), from the
        stored ``output`` and the restored outputs of :attr:`restore_needs` (``inputs``).
        Default: a copy of the output folder. A step that overrides this runs with the run's
        recorded config and code (``ctx.config``, ``ctx.code_root``)."""
        shutil.copytree(output.root, out_dir)

    def review(self, result: StepResult | None, ctx: ReviewContext) -> StepReview:
        """Facts and signals about one finished (or failed) execution of this step, for
        whoever reviews the run (the assistant under ``blase run --autonomy``). ``result``
        is None when the step failed or is missing. Default: the typed output's fields."""
        if result is None or result.output is None or not ctx.finished:
            return StepReview()
        fields = {k: v for k, v in result.output.to_json(with_root=False).items() if k != "type"}
        shown = ", ".join(f"{k} {_short(v)}" for k, v in fields.items())
        return StepReview(lines=[f"Output {result.output.type_name}" + (f": {shown}" if shown else "")])


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
