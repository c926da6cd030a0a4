"""A conversation with the assistant: one LangGraph thread, one Track run per process.

A session's id is the id of its first Track run (kind ``agent-session``); the conversation
persists in a SQLite checkpointer at ``.blase/agent/sessions.sqlite`` under that id, so
``blase chat --resume ID`` continues it in a new process (as a new Track run whose parent is
the first and whose tag ``session`` is the id). Every model call, tool proposal, gate
decision, tool result and error is an event of the session's run.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blase.project import Project, find_project

from ._errors import SessionError
from ._gate import AUTONOMY, Budgets

__all__ = ["Approval", "Session", "TurnResult", "move_store_aside", "store_path"]

logger = logging.getLogger(__name__)

STORE_NAME = "sessions.sqlite"
#: Tool rounds per question for a small model: a read, then an action on what it found
#: (agent/_clauses.py); it plans nothing longer.
MAX_SMALL_ROUNDS = 2


def store_path(project: Project) -> Path:
    """Where a project's conversations persist."""
    return project.state_dir / "agent" / STORE_NAME


def move_store_aside(project: Project) -> Path | None:
    """Rename a (damaged) session store out of the way; returns its new path."""
    path = store_path(project)
    if not path.exists():
        return None
    target = path.with_name(f"{STORE_NAME}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(STORE_NAME + suffix)
        if extra.exists():
            extra.rename(target.with_name(target.name + suffix))
    return target


def _damaged(path: Path, exc: BaseException) -> SessionError:
    return SessionError(
        f"the session store {path} is damaged ({type(exc).__name__}: {exc})",
        hint=f"start afresh with `blase chat --new-store` (it moves the file aside), "
        f"or move it yourself: mv {path} {path}.bak",
    )


def open_store(path: Path) -> tuple[sqlite3.Connection, Any]:
    """Open (creating if needed) the SQLite checkpointer; a damaged file is a SessionError."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        saver = SqliteSaver(conn)
        saver.setup()
        conn.execute("SELECT count(*) FROM checkpoints").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _damaged(path, exc) from None
    return conn, saver


@dataclass
class Approval:
    """A call waiting for a person: approve, reject (with a note) or edit its arguments."""

    call_id: str
    tool: str
    args: dict[str, Any]
    risk: str
    reason: str
    command: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TurnResult:
    """What one question (or one approval) led to."""

    session_id: str
    answer: str | None = None
    pending: Approval | None = None
    stopped: str | None = None
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["pending"] = self.pending.to_json() if self.pending else None
        return data


class TrackedScope:
    """A Track run plus a checkpointer connection, closed together; as a context manager the
    run ends ``interrupted`` on Ctrl-C, ``failed`` on an error, else ``finished``. What the
    chat session, the autopilot and the MCP server share."""

    _track: Any = None
    _conn: Any = None
    on_event: Callable[[str, dict[str, Any]], None] | None = None

    def _settle(self, project: Project | str | Path | None, autonomy: str | None,
                budgets: Budgets | None) -> Any:
        """The project, the autonomy level (checked) and the budgets, from the arguments or
        ``blase.yaml``'s ``agent:`` section (returned)."""
        self.project = project if isinstance(project, Project) else find_project(project)
        config = self.project.config().agent
        self.autonomy = autonomy or config.autonomy
        if self.autonomy not in AUTONOMY:
            raise SessionError(f"unknown autonomy level {self.autonomy!r}", hint=f"choose one of: {', '.join(AUTONOMY)}")
        self.budgets = budgets or Budgets.from_config(config)
        return config

    def _start_session_run(self, name: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        """Start this scope's own ``agent-session`` Track run; its id is the session id."""
        from blase.track import Track

        self._track = Track(name, project=self.project, kind="agent-session", params=params, tags=tags,
                            sample_resources=False)
        self._track.start()
        self.session_id = self._track.run_id
        self._track.set_tag("session", self.session_id)

    def _record(self, event: str, **fields: Any) -> None:
        """One event in the session's run (and to ``on_event``); recording never fails a call."""
        if self._track is not None and self._track.active:
            try:
                self._track.log_event(event, **fields)
            except Exception:
                logger.warning("could not record %s in the session run", event, exc_info=True)
        if self.on_event is not None:
            self.on_event(event, fields)

    def close(self, status: str = "finished") -> None:
        """End the Track run and close the store (a conversation stays resumable)."""
        if self._track is not None and self._track.active:
            self._track.end(status)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed" if exc else "finished")


class Session(TrackedScope):
    """A conversation with the assistant about one project.

    Parameters
    ----------
    project:
        The project (or a path inside one; default: the current one).
    session_id:
        Resume this session (an id, a unique prefix, or ``"latest"``); default: a new one.
    autonomy:
        ``manual``, ``semi`` or ``auto`` (default: ``agent.autonomy`` of ``blase.yaml``).
    provider, model, base_url:
        Override the provider choice (see :func:`~agent._providers.resolve_provider`).
    llm:
        A ready chat model (tests pass a fake); skips the provider choice.
    on_event:
        ``on_event(event, fields)`` for every recorded event, as it happens (the chat UI).
    auto_approve:
        ``True`` (``--yes``): approve the *write* calls that ask; a destructive call (promote,
        rollback, gc, ...) still waits for a person, as ``blase run --autonomy --yes`` does.
        ``"all"`` approves destructive calls too (the eval harness, which works on a copy).
        Each decision is recorded as by ``--yes``.
    """

    def __init__(
        self,
        project: Project | str | Path | None = None,
        *,
        session_id: str | None = None,
        autonomy: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        llm: Any = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
        auto_approve: bool | str = False,
        budgets: Budgets | None = None,
    ) -> None:
        config = self._settle(project, autonomy, budgets)
        self.on_event = on_event
        self.auto_approve = auto_approve
        self._turn_events: list[dict[str, Any]] = []
        self._track: Any = None
        self._conn: sqlite3.Connection | None = None

        from blase.prompts import read_prompt

        from ._graph import build_graph, hash_text
        from ._providers import ProviderSpec, attach_project, make_chat_model, resolve_provider

        if llm is None:
            self.spec = resolve_provider(provider=provider, model=model, base_url=base_url, config=config)
            llm = attach_project(make_chat_model(self.spec), self.project)
        else:
            self.spec = ProviderSpec(provider or "custom", model or type(llm).__name__, base_url, source="given")
        self.model_label = self.spec.label
        self.prompt = read_prompt("system.md")
        self.prompt_hash = hash_text(self.prompt)

        self._store = store_path(self.project)
        self._conn, self._saver = open_store(self._store)
        resumed = session_id is not None
        try:
            self.session_id = self._resolve(session_id) if resumed else None
            self._start_track(resumed)
        except BaseException:
            self._conn.close()
            raise
        from blase.tools import ToolContext

        self.ctx = ToolContext(project=self.project, session_id=self.session_id, autonomy=self.autonomy,
                               session_track=self._track)
        self.graph = build_graph(
            llm, ctx=self.ctx, record=self._record, budgets=self.budgets,
            system_prompt=self.prompt + f"\n\nProject: {self.project.name}.",
            provider=self.spec.provider, model_name=self.spec.model,
            max_tool_rounds=MAX_SMALL_ROUNDS if self.spec.small else None, checkpointer=self._saver,
        )
        self.config = {"configurable": {"thread_id": self.session_id},
                       "recursion_limit": 4 * self.budgets.max_tool_calls + 25}
        if resumed and autonomy is None:
            # a resumed session keeps the level it had, unless the person names another
            previous = self.graph.get_state(self.config).values.get("autonomy")
            if previous in AUTONOMY:
                self.autonomy = self.ctx.autonomy = previous
        self._record("session_start", provider=self.spec.provider, model=self.spec.model, label=self.model_label,
                     autonomy=self.autonomy, prompt="system.md", prompt_hash=self.prompt_hash, resumed=resumed,
                     budgets=asdict(self.budgets))

    # ------------------------------------------------------------------ lifecycle

    def _resolve(self, ref: str) -> str:
        ref = ref.strip()
        if self._has_thread(ref):
            return ref
        from blase.errors import RunNotFoundError
        from blase.track import list_runs, load_run

        if ref.lower() in ("latest", "last"):
            found = list_runs([self.project.root], where="kind = 'agent-session'", limit=1)
            if not found:
                raise SessionError("there is no session to resume yet", hint="start one with `blase chat`")
            run = found[0]
        else:
            try:
                run = load_run(ref, [self.project.root], history=False)
            except RunNotFoundError:
                run = None
            if run is None or run.kind != "agent-session":
                raise SessionError(
                    f"no session {ref!r} in {self.project.root}",
                    hint="list sessions with `blase runs --where \"kind = 'agent-session'\"`",
                )
        sid = str(run.tags.get("session") or run.id)
        if not self._has_thread(sid):
            raise SessionError(
                f"session {sid} has no saved conversation in {self._store}",
                hint="the store may have been moved aside; start a new session with `blase chat`",
            )
        return sid

    def _has_thread(self, sid: str) -> bool:
        try:
            return self._saver.get_tuple({"configurable": {"thread_id": sid}}) is not None
        except sqlite3.DatabaseError as exc:
            raise _damaged(self._store, exc) from None
        except Exception as exc:  # an undecodable checkpoint
            raise _damaged(self._store, exc) from None

    def _start_track(self, resumed: bool) -> None:
        from blase.track import Track

        params = {"provider": self.spec.provider, "model": self.spec.model, "autonomy": self.autonomy,
                  "prompt_hash": self.prompt_hash}
        if resumed:
            track = Track(f"chat-{self.session_id}", project=self.project, kind="agent-session",
                          parent=self.session_id, tags={"session": self.session_id}, params=params,
                          sample_resources=False)
            track.start()
        else:
            track = Track("chat", project=self.project, kind="agent-session", params=params, sample_resources=False)
            track.start()
            self.session_id = track.run_id
            track.set_tag("session", track.run_id)
        self._track = track

    @property
    def run_id(self) -> str:
        """This process's Track run of the session."""
        return self._track.run_id

    # ------------------------------------------------------------------ recording

    def _record(self, event: str, **fields: Any) -> None:
        self._turn_events.append({"event": event, **fields})
        super()._record(event, **fields)

    # ------------------------------------------------------------------ conversation

    def set_autonomy(self, level: str) -> None:
        """Change the autonomy level for the next questions (recorded)."""
        if level not in AUTONOMY:
            raise SessionError(f"unknown autonomy level {level!r}", hint=f"choose one of: {', '.join(AUTONOMY)}")
        self._record("autonomy", before=self.autonomy, after=level, by="person")
        self.autonomy = level
        self.ctx.autonomy = level

    @property
    def pending(self) -> Approval | None:
        """The call waiting for a person, if the conversation is paused on one."""
        try:
            state = self.graph.get_state(self.config)
        except sqlite3.DatabaseError as exc:
            raise _damaged(self._store, exc) from None
        for task in state.tasks:
            for intr in task.interrupts:
                v = intr.value
                return Approval(v["call_id"], v["tool"], v["args"], v["risk"], v["reason"], v.get("command"))
        return None

    def history(self) -> list[Any]:
        """The conversation's messages so far."""
        return list(self.graph.get_state(self.config).values.get("messages", []))

    def send(self, text: str) -> TurnResult:
        """Ask a question; runs until an answer or a call that needs a person."""
        if self.pending is not None:
            raise SessionError(
                "a tool call is waiting for approval; answer it first",
                hint="approve, reject or edit it (in chat: y / n / edit; in scripts: --approve / --reject)",
            )
        self._record("user", text=text[:4000])
        start = {
            "messages": [_human(text)], "autonomy": self.autonomy, "pending": [], "tool_calls": 0,
            "write_actions": 0, "rounds": 0, "invalid": 0, "turn_started": time.time(), "stop": None,
            "recommendations": [],
        }
        return self._drive(start)

    def decide(self, action: str, *, args: dict[str, Any] | None = None, note: str | None = None,
               by: str = "person") -> TurnResult:
        """Answer the waiting call: ``approve``, ``reject`` (``note`` goes to the model) or
        ``edit`` (with new ``args``)."""
        if self.pending is None:
            raise SessionError("no tool call is waiting for approval")
        from langgraph.types import Command

        return self._drive(Command(resume={"action": action, "args": args, "note": note, "by": by}))

    def _drive(self, value: Any) -> TurnResult:
        self._turn_events = []
        events: list[dict[str, Any]] = []
        while True:
            try:
                self.graph.invoke(value, self.config)
            except sqlite3.DatabaseError as exc:
                raise _damaged(self._store, exc) from None
            events += self._turn_events
            self._turn_events = []
            pending = self.pending
            if pending is not None and self.auto_approve and (
                    self.auto_approve == "all" or pending.risk != "destructive"):
                from langgraph.types import Command

                value = Command(resume={"action": "approve", "by": "--yes"})
                continue
            break
        state = self.graph.get_state(self.config).values
        answer = None
        if pending is None:
            last = (state.get("messages") or [None])[-1]
            answer = str(getattr(last, "content", "") or "")
            self._record("answer", text=answer[:4000])
        return TurnResult(
            session_id=self.session_id or "", answer=answer, pending=pending, stopped=state.get("stop"),
            recommendations=list(state.get("recommendations", [])) if pending is None else [],
            events=events, model=self.model_label,
        )


def _human(text: str) -> Any:
    from langchain_core.messages import HumanMessage

    return HumanMessage(content=text)
