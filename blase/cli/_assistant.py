"""Assistant commands: ``blase chat`` and ``blase session`` ([6/7]).

Commands register themselves on :data:`blase.cli._app.app`; the assistant (``blase.agent``,
LangGraph, the providers) is imported inside them only, so ``blase --help`` stays instant and
the engine runs without the ``agent`` extra. :func:`session_replay_lines` reads Track only; it
renders an agent session for ``blase session`` (and for ``blase inspect`` of such a run).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from blase.cli._app import ProjectOpt, _out, _print_json, _use_project, app

__all__ = ["session_replay", "session_replay_lines"]

_HELP = """commands: /autonomy manual|semi|auto  /runs  /session  /help  /quit
approvals: y (approve), n (reject, then an optional note), e (edit the arguments as JSON)"""


# ---------------------------------------------------------------------- replay (Track only)


def session_replay(project_root: Path, ref: str) -> dict[str, Any]:
    """The runs and events of an agent session, oldest first.

    ``ref`` is a session id, a run id (prefix) of one of its runs, or ``latest``.
    """
    from blase.errors import RunNotFoundError
    from blase.track import list_runs, load_run

    sessions = [r for r in list_runs([project_root]) if r.kind == "agent-session"]
    if not sessions:
        raise RunNotFoundError(f"no assistant sessions in {project_root}", hint="start one with `blase chat`")
    if ref.lower() in ("latest", "last"):
        sid = sessions[0].tags.get("session") or sessions[0].id
    else:
        run = load_run(ref, [project_root], history=False)
        sid = run.tags.get("session") or run.id
    runs = sorted((r for r in sessions if (r.tags.get("session") or r.id) == sid), key=lambda r: r.started_at or "")
    out = []
    for r in runs:
        detail = load_run(r.id, [project_root], history=False)
        out.append({"id": r.id, "status": r.status, "started_at": r.started_at, "params": r.params,
                    "events": detail.event_list})
    return {"session": sid, "runs": out}


def _clock(t: Any) -> str:
    try:
        return datetime.fromtimestamp(float(t), tz=timezone.utc).strftime("%H:%M:%S")
    except (TypeError, ValueError):
        return "--:--:--"


def session_replay_lines(project_root: Path, ref: str) -> list[str]:
    """A compact, readable replay of a session's conversation (rich markup)."""
    from rich.markup import escape

    data = session_replay(project_root, ref)
    lines = [f"[bold]session {data['session']}[/] · {len(data['runs'])} run(s)"]
    for run in data["runs"]:
        lines.append(f"[dim]── run {run['id']} ({run['status']}, started {run['started_at']})[/]")
        for e in run["events"]:
            d = e.get("data") or {}
            name, at = e.get("event"), _clock(e.get("t"))
            if name == "session_start":
                lines.append(f"[dim]{at}[/] model {escape(str(d.get('label') or d.get('model')))} · autonomy "
                             f"{d.get('autonomy')} · prompt {d.get('prompt')} #{d.get('prompt_hash')}")
            elif name == "user":
                lines.append(f"[dim]{at}[/] [bold cyan]you:[/] {escape(str(d.get('text')))}")
            elif name == "model_call":
                calls = ", ".join(d.get("tool_calls") or []) or "answers"
                lines.append(f"[dim]{at}   model call: {d.get('input_tokens')}→{d.get('output_tokens')} tokens, "
                             f"{d.get('latency_s')}s, {escape(calls)}[/]")
            elif name == "gate":
                who = d.get("by", "gate")
                extra = " (edited)" if d.get("edited") else ""
                note = f" — {escape(str(d['note']))}" if d.get("note") else ""
                lines.append(f"[dim]{at}[/]   {d.get('tool')}: [yellow]{d.get('decision')}[/]{extra} by {who}"
                             f"{' · ' + escape(str(d.get('reason'))) if d.get('reason') and who == 'gate' else ''}{note}")
            elif name == "tool_result":
                if d.get("status") == "ok":
                    lines.append(f"[dim]{at}[/]   [green]✓[/] {d.get('tool')}: {escape(str(d.get('summary', '')))}")
                else:
                    lines.append(f"[dim]{at}[/]   [red]✗[/] {d.get('tool')} {d.get('status')}: "
                                 f"{escape(str(d.get('error', '')))}")
                if d.get("runs"):
                    lines.append(f"        runs started: {', '.join(d['runs'])}")
            elif name == "answer":
                lines.append(f"[dim]{at}[/] [bold green]assistant:[/] {escape(str(d.get('text')))}")
            elif name in ("stopped", "autonomy", "error"):
                lines.append(f"[dim]{at}[/] [magenta]{name}[/] {escape(json.dumps(d, default=str))}")
    return lines


@app.command()
def session(
    ref: Annotated[str, typer.Argument(help="Session id (or a run id of it, or 'latest').")] = "latest",
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the session's runs and events as JSON.")] = False,
) -> None:
    """Replay an assistant session: questions, model calls, gate decisions, tool results, answers.

    Example: [bold]blase session latest[/]
    """
    from blase.project import find_project

    _use_project(project)
    root = find_project().root
    if as_json:
        _print_json(session_replay(root, ref))
        return
    out = _out()
    for line in session_replay_lines(root, ref):
        out.print(line)


# ---------------------------------------------------------------------- chat


def _printer(out: Any) -> Any:
    from rich.markup import escape

    def on_event(event: str, d: dict[str, Any]) -> None:
        if event == "gate":
            decision = d.get("decision")
            if decision in ("ran", "approved"):
                args = json.dumps({k: v for k, v in (d.get("args") or {}).items()}) if d.get("edited") else ""
                out.print(f"  [cyan]→ {d.get('tool')}[/] [dim]{escape(args)}[/]"
                          + (f" [dim](approved by {d.get('by')})[/]" if decision == "approved" else ""))
            elif decision == "recommended":
                out.print(f"  [yellow]recommendation[/] ({d.get('tool')}, {d.get('risk')}): not run in manual mode")
            elif decision == "denied":
                out.print(f"  [red]denied[/] {d.get('tool')}: {escape(str(d.get('reason')))}")
            elif decision == "rejected":
                out.print(f"  [red]rejected[/] {d.get('tool')} by {d.get('by')}")
            elif decision == "error":
                out.print(f"  [red]invalid call[/] {d.get('tool')}: {escape(str(d.get('reason')))}")
        elif event == "tool_result":
            if d.get("status") == "ok":
                out.print(f"    [green]✓[/] {escape(str(d.get('summary', '')))}")
            else:
                out.print(f"    [red]✗[/] {escape(str(d.get('error') or d.get('status')))}")
            if d.get("runs"):
                out.print(f"    runs: {', '.join(d['runs'])}")

    return on_event


def _show_turn(out: Any, turn: Any) -> None:
    from rich.markup import escape

    for rec in turn.recommendations:
        out.print(f"  [yellow]you can run:[/] {escape(rec['command'])}")
    if turn.answer is not None:
        out.print(f"[bold green]assistant:[/] {escape(turn.answer)}")
    if turn.stopped:
        out.print(f"[magenta]{escape(turn.stopped)}[/]")


def _ask_person(out: Any, pending: Any) -> dict[str, Any]:
    """Ask about one waiting call; returns the decision as keyword arguments of decide()."""
    from rich.markup import escape
    from rich.panel import Panel

    body = (f"[bold]{pending.tool}[/] ({pending.risk})\nargs: {escape(json.dumps(pending.args))}\n"
            f"why asked: {escape(pending.reason)}\nsame as: {escape(pending.command or '')}")
    out.print(Panel(body, title="approval needed", border_style="yellow"))
    while True:
        answer = typer.prompt("approve? [y]es / [n]o / [e]dit", default="n").strip().lower()
        if answer in ("y", "yes"):
            return {"action": "approve"}
        if answer in ("n", "no"):
            note = typer.prompt("note for the assistant (optional)", default="", show_default=False)
            return {"action": "reject", "note": note or None}
        if answer in ("e", "edit"):
            text = typer.prompt("arguments as JSON", default=json.dumps(pending.args))
            try:
                args = json.loads(text)
            except json.JSONDecodeError as exc:
                out.print(f"[red]not JSON:[/] {exc}")
                continue
            if not isinstance(args, dict):
                out.print("[red]the arguments must be a JSON object[/]")
                continue
            return {"action": "edit", "args": args}


def _runs_table(out: Any, root: Path) -> None:
    from blase.cli._render import runs_table
    from blase.track import list_runs

    found = list_runs([root], limit=15)
    out.print(runs_table(found, multi_project=False) if found else "no runs yet")


def _interactive(sess: Any, out: Any) -> None:
    from blase.errors import BlaseError

    out.print(_HELP, style="dim")
    while True:
        pending = sess.pending
        try:
            if pending is not None:
                turn = sess.decide(**_ask_person(out, pending))
            else:
                try:
                    text = typer.prompt("you", prompt_suffix="> ").strip()
                except (EOFError, typer.Abort):
                    break
                if not text:
                    continue
                if text in ("/quit", "/exit", "/q"):
                    break
                if text == "/help":
                    out.print(_HELP, style="dim")
                    continue
                if text == "/runs":
                    _runs_table(out, sess.project.root)
                    continue
                if text == "/session":
                    out.print(f"session {sess.session_id} · run {sess.run_id} · {sess.model_label} · autonomy {sess.autonomy}")
                    continue
                if text.startswith("/autonomy"):
                    parts = text.split()
                    if len(parts) == 2:
                        sess.set_autonomy(parts[1])
                    out.print(f"autonomy: [bold]{sess.autonomy}[/]")
                    continue
                if text.startswith("/"):
                    out.print(f"[red]unknown command[/] {text}; /help lists them")
                    continue
                turn = sess.send(text)
        except KeyboardInterrupt:
            out.print(f"\n[magenta]interrupted[/]; the session goes on (resume later with "
                      f"`blase chat --resume {sess.session_id}`)")
            continue
        except BlaseError as exc:
            out.print(f"[red]error:[/] {exc}")
            if type(exc).__name__ in ("ProviderError", "SessionError"):
                break
            continue
        _show_turn(out, turn)


@app.command()
def chat(
    message: Annotated[str | None, typer.Option("--message", "-m", help="Ask one question and exit (for scripts).")] = None,
    autonomy: Annotated[
        str | None, typer.Option("--autonomy", "-a", help="manual, semi or auto (default: agent.autonomy).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve every call that asks (a person's blanket approval).")] = False,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue a session (its id, or 'latest').")] = None,
    approve: Annotated[bool, typer.Option("--approve", help="With --resume: approve the call waiting for approval.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="With --resume: reject the call waiting for approval.")] = False,
    note: Annotated[str | None, typer.Option("--note", help="With --reject: a note for the assistant.")] = None,
    provider: Annotated[str | None, typer.Option("--provider", help="openai, ollama or llamacpp.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name (llamacpp: a .gguf path).")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL, or the Ollama host.")] = None,
    new_store: Annotated[
        bool, typer.Option("--new-store", help="Move a damaged session store aside and start afresh.")
    ] = False,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result of -m as JSON.")] = False,
) -> None:
    """Talk to the assistant about this project, with the autonomy you choose.

    Example: [bold]blase chat[/], or [bold]blase chat -m "which run is best?" --json[/]
    """
    import importlib.util

    from blase.project import find_project

    _use_project(project)
    if importlib.util.find_spec("langgraph") is None:
        from blase.errors import BlaseError

        raise BlaseError("the assistant needs the agent extra", hint="pip install 'blase[agent]'")
    from blase.agent import Session, SessionError, move_store_aside

    found = find_project()
    if approve and reject:
        raise SessionError("--approve and --reject exclude each other")
    if (approve or reject) and not resume:
        raise SessionError("--approve / --reject answer a waiting call of a resumed session",
                           hint="add --resume SESSION")
    if new_store:
        moved = move_store_aside(found)
        if moved is not None:
            _out().print(f"[yellow]moved the session store aside to[/] {moved}", highlight=False)
    scripted = message is not None or approve or reject
    out = _out()
    quiet = as_json
    sess = Session(found, session_id=resume, autonomy=autonomy, provider=provider, model=model,
                   base_url=base_url, auto_approve=yes, on_event=None if as_json else _printer(out))
    status = "finished"
    try:
        if not quiet:
            small = " — a small embedded model: one tool round per question, answers may be weak" \
                if sess.spec.small else ""
            out.print(f"[dim]session {sess.session_id} · model {sess.model_label}{small} · autonomy {sess.autonomy}[/]")
        if not scripted:
            _interactive(sess, out)
            return
        turn = None
        if approve or reject:
            turn = sess.decide("approve" if approve else "reject", note=note)
        if message is not None:
            if turn is not None and turn.pending is not None:
                pass  # another call waits; answer it before asking more
            else:
                turn = sess.send(message)
        assert turn is not None
        if as_json:
            data = turn.to_json()
            data["run_id"] = sess.run_id
            _print_json(data)
        else:
            _show_turn(out, turn)
            if turn.pending is not None:
                p = turn.pending
                out.print(f"[yellow]waiting for approval:[/] {p.tool} {json.dumps(p.args)} ({p.risk}): {p.reason}")
                out.print(f"  approve: blase chat --resume {sess.session_id} --approve")
                out.print(f"  reject:  blase chat --resume {sess.session_id} --reject --note '...'")
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException:
        status = "failed"
        raise
    finally:
        sess.close(status)
