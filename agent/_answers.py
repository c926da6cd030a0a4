"""Answers to a waiting proposal from more than one place: the terminal and ``blase ui``.

``blase run --autonomy semi`` waits in its own process for a person. While it waits it keeps
a small *answer box* under ``.blase/agent/answers/SESSION/``: ``waiting.json`` says which call
waits and which process waits on it, and the first answer to that call is
``CALL_ID.json``. An answer is written to a temporary file and then hard-linked to its final
name, which fails when the name exists, so exactly one answer wins whichever process writes
first, and a loser reads the answer that stands. The waiting process applies the winning answer
through the same :class:`~agent._calls.CallGate` as every other decision (recorded with who
made it, e.g. ``person (blase ui)``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from blase.project import Project

from ._errors import SessionError
from ._session import store_path

__all__ = ["ACTIONS", "AnswerBox", "ClaimResult"]

ACTIONS = ("approve", "reject", "edit")
WAITING = "waiting.json"


class ClaimResult:
    """What :meth:`AnswerBox.claim` found: whether this answer won, and the answer that stands."""

    def __init__(self, won: bool, answer: dict[str, Any]) -> None:
        self.won = won
        self.answer = answer

    def __repr__(self) -> str:
        return f"ClaimResult(won={self.won}, answer={self.answer})"


class AnswerBox:
    """The answer box of one session (see the module's docstring).

    Parameters
    ----------
    project:
        The project the session belongs to.
    session_id:
        The session (the ``agent-session`` run's id).
    """

    def __init__(self, project: Project, session_id: str) -> None:
        if not session_id or "/" in session_id or session_id.startswith("."):
            raise SessionError(f"{session_id!r} is not a session id", hint="the assistant page lists the sessions")
        self.folder = store_path(project).parent / "answers" / session_id

    # ------------------------------------------------------------------ the waiting side

    def open(self, call_id: str) -> None:
        """Say that this process waits on ``call_id`` (an earlier waiting note is replaced)."""
        from blase import _fs

        self.folder.mkdir(parents=True, exist_ok=True)
        _fs.write_json_atomic(self.folder / WAITING, {"call_id": call_id, "pid": os.getpid(),
                                                      "host": socket.gethostname(), "since": time.time()})

    def close(self) -> None:
        """Nothing waits any more (the answer files stay, as a record of who answered)."""
        try:
            (self.folder / WAITING).unlink()
        except FileNotFoundError:
            pass

    def wait(self, call_id: str, *, poll: float = 0.25, timeout: float | None = None) -> dict[str, Any]:
        """Block until an answer to ``call_id`` is claimed; returns it.

        Raises
        ------
        SessionError
            When ``timeout`` seconds pass without an answer.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found = self.answer(call_id)
            if found is not None:
                return found
            if deadline is not None and time.monotonic() >= deadline:
                raise SessionError(f"no answer to call {call_id} within {timeout:g} s",
                                   hint="answer it on the session's page of `blase ui`, or in the terminal")
            time.sleep(poll)

    # ------------------------------------------------------------------ any side

    def waiting(self) -> dict[str, Any] | None:
        """The waiting note (``call_id``, ``pid``), or ``None`` when no live process waits."""
        try:
            note = json.loads((self.folder / WAITING).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(note, dict) or not isinstance(note.get("call_id"), str):
            return None
        if note.get("host") == socket.gethostname() and not _alive(note.get("pid")):
            return None  # the process that waited is gone (killed): nobody would read an answer
        return note

    def answer(self, call_id: str) -> dict[str, Any] | None:
        """The answer that stands for ``call_id``, or ``None``."""
        try:
            found = json.loads(self._answer_path(call_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def claim(self, call_id: str, answer: dict[str, Any]) -> ClaimResult:
        """Record ``answer`` (``action``, ``args``, ``note``, ``by``) for ``call_id`` unless one
        is there already; the first claim wins, on any machine sharing the folder.

        Raises
        ------
        SessionError
            For an action other than approve, reject or edit.
        """
        if answer.get("action") not in ACTIONS:
            raise SessionError(f"unknown decision {answer.get('action')!r}", hint=f"choose one of: {', '.join(ACTIONS)}")
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self._answer_path(call_id)
        record = {**answer, "call_id": call_id, "at": time.time()}
        tmp = self.folder / f".{final.name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(record, f, default=str)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, final)  # atomic, and refuses an existing name: one winner
            except FileExistsError:
                stands = self.answer(call_id)
                return ClaimResult(False, stands if stands is not None else record)
        finally:
            tmp.unlink(missing_ok=True)
        return ClaimResult(True, record)

    def _answer_path(self, call_id: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in call_id).lstrip(".")
        return self.folder / f"{safe or 'call'}.json"


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
