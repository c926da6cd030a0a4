"""The pipeline under the assistant: ``blase run --autonomy manual|semi|auto``.

A deterministic driver runs the pipeline as ``blase run`` would (one tracked run), then shows
the model each step's Track record in order (:func:`~agent._records.step_brief`) with the tools
that fit that moment, and the autonomy gate (:func:`~agent._gate.decide`, code) decides what
happens to every proposal:

- ``manual``: read tools run; a proposed change becomes a recommendation with the exact
  ``blase run --set ... --from STEP`` command. Nothing runs beyond the deterministic pipeline.
- ``semi``: write and destructive proposals wait for a person (LangGraph ``interrupt``; resume
  with :meth:`Autopilot.decide` or ``Command(resume=...)``; ``approve_writes`` is ``--yes``).
- ``auto``: write proposals run within the budgets (``agent.max_write_actions``, agent time
  ``agent.max_seconds``, tool calls per step); destructive ones still wait for a person.

An approved config change re-runs the pipeline from the step it affects (a new pipeline run,
``deploy.promote=false``, ``deploy.always=true``), and the review continues on the new run from
that step. The end is
a :class:`AutopilotReport`: what was done, what was only recommended, what was rejected, and
why. The driver's record is an ``agent-session`` run (tag ``autopilot``); the pipeline runs
carry the tag ``agent_session`` and every decision is an ``agent_decision`` event naming its
run and step, which ``blase inspect`` shows next to the steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.project import Project

from ._errors import SessionError
from ._gate import Budgets
from ._pilot_state import SYSTEM_PROMPT, AutopilotState
from ._report import AutopilotReport
from ._session import TrackedScope

__all__ = ["SYSTEM_PROMPT", "Autopilot", "AutopilotResult", "AutopilotState"]

logger = logging.getLogger(__name__)

@dataclass
class AutopilotResult:
    """Where the driver stopped: a call waiting for a person, or the final report."""

    session_id: str
    pending: Any = None
    report: AutopilotReport | None = None
    warnings: list[str] = field(default_factory=list)


class Autopilot(TrackedScope):
    """Run a project's pipeline under the assistant.

    Parameters
    ----------
    project:
        The project (or a path inside one; default: the current one).
    autonomy:
        ``manual``, ``semi`` or ``auto`` (default: ``agent.autonomy``).
    provider, model, base_url, llm:
        The model, as for :class:`~agent._session.Session` (tests pass a fake ``llm``).
    overrides, memory, from_step, to_step, resume, cache:
        The deterministic run, as ``blase run`` takes them.
    approve_writes:
        ``--yes``: approve every write proposal that asks; destructive ones still ask.
    on_event:
        ``on_event(event, fields)`` for every recorded event (the CLI's progress).
    budgets:
        Override ``agent:`` budgets (max tool calls per step, write actions and agent seconds
        per autopilot).
    max_rounds:
        Model calls per step (read tools, then a decision); default 3, 1 for small models.
    """

    def __init__(
        self,
        project: Project | str | Path | None = None,
        *,
        autonomy: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        llm: Any = None,
        overrides: list[str] | None = None,
        memory: str | None = None,
        from_step: str | None = None,
        to_step: str | None = None,
        resume: str | None = None,
        cache: bool = True,
        approve_writes: bool = False,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        budgets: Budgets | None = None,
        max_rounds: int | None = None,
    ) -> None:
        from ._graph import hash_text
        from ._providers import ProviderSpec, attach_project, make_chat_model, resolve_provider

        config = self._settle(project, autonomy, budgets)
        if llm is None:
            self.spec = resolve_provider(provider=provider, model=model, base_url=base_url, config=config)
            llm = attach_project(make_chat_model(self.spec), self.project)
        else:
            self.spec = ProviderSpec(provider or "custom", model or type(llm).__name__, base_url, source="given")
        self.llm = llm
        self.max_rounds = max_rounds or (1 if self.spec.small else 3)
        self.approve_writes = approve_writes
        self.on_event = on_event
        self.memory = memory
        self.prompt_hash = hash_text(SYSTEM_PROMPT)
        self.warnings: list[str] = []
        self._plan = {"from_step": from_step, "to_step": to_step, "resume": resume, "cache": cache}
        self._overrides = list(overrides or [])
        self._profile: dict[str, Any] | bool | None = False
        self._registry: Any = None
        self._track: Any = None
        self._conn: Any = None
        self._start_track()
        if self.autonomy == "auto":
            from ._eval import unevaluated_warning

            note = unevaluated_warning(self.project, self.spec)
            if note:
                self.warnings.append(note)
                logger.warning("%s", note)
                self._record("warning", text=note)
        from blase.tools import ToolContext

        from ._session import open_store, store_path

        self.ctx = ToolContext(project=self.project, session_id=self.session_id, autonomy=self.autonomy,
                               session_track=self._track)
        try:
            self._conn, saver = open_store(store_path(self.project))
        except BaseException:
            self.close("failed")
            raise
        from ._pilot_graph import build_pilot_graph

        self.graph = build_pilot_graph(self, checkpointer=saver)
        self.config = {"configurable": {"thread_id": self.session_id}, "recursion_limit": 1000}

    # ------------------------------------------------------------------ lifecycle

    def _start_track(self) -> None:
        params = {"provider": self.spec.provider, "model": self.spec.model, "autonomy": self.autonomy,
                  "prompt_hash": self.prompt_hash, "mode": "autopilot", "overrides": list(self._overrides)}
        self._start_session_run("autopilot", params, {"autopilot": "1"})
        self._record("session_start", provider=self.spec.provider, model=self.spec.model, label=self.spec.label,
                     autonomy=self.autonomy, prompt="autopilot (agent/_autopilot.py)", prompt_hash=self.prompt_hash,
                     resumed=False, mode="autopilot")

    @property
    def run_id(self) -> str:
        """The driver's own Track run (kind ``agent-session``)."""
        return self.session_id

    # ------------------------------------------------------------------ driving

    def start(self) -> AutopilotResult:
        """Run the pipeline and the reviews until the report or a call that needs a person."""
        state = {
            "autonomy": self.autonomy, "overrides": list(self._overrides), "plan": dict(self._plan), "runs": [],
            "run_id": None, "queue": [], "step": None, "messages": [], "rounds": 0, "pending": [], "actions": [],
            "tool_calls": 0, "write_actions": 0, "invalid": 0, "agent_seconds": 0.0, "step_done": True,
            "reviews": 0, "stop": None, "report": None,
        }
        return self._drive(state)

    @property
    def pending(self) -> Any:
        """The proposal waiting for a person (an :class:`~agent._session.Approval`), or None."""
        from ._session import Approval

        for task in self.graph.get_state(self.config).tasks:
            for intr in task.interrupts:
                v = intr.value
                return Approval(v["call_id"], v["tool"], v["args"], v["risk"], v["reason"], v.get("command"))
        return None

    def decide(self, action: str, *, args: dict[str, Any] | None = None, note: str | None = None,
               by: str = "person") -> AutopilotResult:
        """Answer the waiting proposal: ``approve``, ``reject`` (with a note) or ``edit`` (new args)."""
        from langgraph.types import Command

        return self.resume(Command(resume={"action": action, "args": args, "note": note, "by": by}))

    def wait_for_person(self, ask: Callable[[Any, Callable[[], bool]], dict[str, Any] | None] | None = None, *,
                        poll: float = 0.25, timeout: float | None = None) -> AutopilotResult:
        """Wait for the answer to the waiting proposal, from ``ask`` (the terminal) or from
        ``blase ui`` (the session's :class:`~agent._answers.AnswerBox`), whichever comes first,
        then go on as :meth:`decide` does.

        ``ask(approval, answered)`` asks a person and returns ``decide``'s keyword arguments, or
        ``None`` once ``answered()`` says another place answered first. Without ``ask`` the
        answer comes from the page only (``timeout`` seconds at most).

        Raises
        ------
        SessionError
            When nothing waits, or no answer comes within ``timeout``.
        """
        from ._answers import AnswerBox

        pending = self.pending
        if pending is None:
            raise SessionError("no proposal is waiting for approval")
        box = AnswerBox(self.project, self.session_id)
        box.open(pending.call_id)
        try:
            mine = ask(pending, lambda: box.answer(pending.call_id) is not None) if ask is not None else None
            if mine is not None:
                stands = box.claim(pending.call_id, {"by": "person", **mine}).answer
            else:
                stands = box.wait(pending.call_id, poll=poll, timeout=timeout)
        finally:
            box.close()
        args = stands.get("args")
        return self.decide(str(stands["action"]), args=args if isinstance(args, dict) else None,
                           note=stands.get("note") or None, by=str(stands.get("by") or "person"))

    def resume(self, command: Any) -> AutopilotResult:
        """Continue after an interrupt with a LangGraph ``Command(resume=...)``."""
        if self.pending is None:
            raise SessionError("no proposal is waiting for approval")
        return self._drive(command)

    def _drive(self, value: Any) -> AutopilotResult:
        from langgraph.types import Command

        while True:
            self.graph.invoke(value, self.config)
            pending = self.pending
            if pending is not None and self.approve_writes and pending.risk == "write":
                value = Command(resume={"action": "approve", "by": "--yes"})
                continue
            break
        if pending is not None:
            return AutopilotResult(self.session_id, pending=pending, warnings=list(self.warnings))
        values = self.graph.get_state(self.config).values
        report = AutopilotReport.from_json(values["report"]) if values.get("report") else None
        return AutopilotResult(self.session_id, report=report, warnings=list(self.warnings))

    # ------------------------------------------------------------------ used by the graph

    def profile(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """The data profile (schema suggestions), computed once per autopilot."""
        if self._profile is False:
            from ._records import data_profile

            self._profile = data_profile(self.project, config)
        return self._profile if isinstance(self._profile, dict) else None

    def steps(self) -> Any:
        """The project's step registry (the built-in steps and the step plugins of
        ``blase.yaml``): what the review walks through and asks each step about."""
        if self._registry is None:
            from blase.pipeline import Pipeline

            self._registry = Pipeline(self.project, memory=self.memory).registry
        return self._registry

    def new_data(self, config: dict[str, Any]) -> list[str]:
        """Data files in ``data/`` other than the training source (candidates for drift/update)."""
        source = str((config.get("data") or {}).get("source") or "")
        folder = self.project.root / "data"
        if not folder.is_dir():
            return []
        found = []
        for p in sorted(folder.iterdir()):
            rel = self.project.relative(p)
            if p.is_file() and p.suffix in (".csv", ".parquet", ".json", ".ndjson", ".arrow") and rel != source \
                    and not source.endswith(p.name):
                found.append(rel)
        return found

    def run_pipeline(self, overrides: list[str], *, from_step: str | None = None, to_step: str | None = None,
                     resume: str | None = None, cache: bool = True, first: bool = False,
                     cause: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run (a slice of) the pipeline as one tracked run; a failed step is part of the result.

        Re-runs the assistant starts never promote (``deploy.promote=false``) but always deploy
        (``deploy.always=true``), so the review of their deploy step has a version to judge; the
        first, deterministic run is exactly what ``blase run`` would do.
        """
        from blase.errors import BlaseError
        from blase.pipeline import Pipeline
        from blase.track import active_run

        extra = [] if first else ["deploy.promote=false", "deploy.always=true"]
        seen: dict[str, Any] = {"run": None}
        started = time.perf_counter()

        def on_step(step: str, state: str) -> None:
            if seen["run"] is None:
                run = active_run()
                if run is not None and run.kind == "pipeline":
                    seen["run"] = run.run_id
            if self.on_event is not None:
                self.on_event("pipeline_step", {"run": seen["run"], "step": step, "state": state})

        pipeline = Pipeline(self.project, overrides=[*overrides, *extra], memory=self.memory)
        tags = {"agent_session": self.session_id, "agent_tool": "autopilot", "autonomy": self.autonomy}
        error = None
        try:
            result = pipeline.run(from_step=from_step, to_step=to_step, resume=resume, on_step=on_step,
                                  cache=cache, tags=tags)
            run_id, status = result.run_id, "finished"
        except BlaseError as exc:
            if seen["run"] is None:
                raise
            run_id, status, error = seen["run"], "failed", str(exc)
        self.ctx.link_runs([run_id], "autopilot")
        return {"run_id": run_id, "status": status, "from_step": from_step, "to_step": to_step,
                "overrides": list(overrides), "error": error, "cause": cause,
                "seconds": round(time.perf_counter() - started, 3)}
