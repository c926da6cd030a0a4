"""Assistant commands: ``blase chat`` and ``blase session`` ([6/7]).

Commands register themselves on :data:`blase.cli._common.app`; the assistant (``blase.agent``,
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

from blase.cli import _common as common
from blase.cli._common import ProjectOpt, app

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
            elif name == "pipeline_run":
                cause = d.get("cause") or {}
                why = f" (re-run after {cause.get('step')}: {cause.get('key')}={cause.get('value')})" if cause else ""
                lines.append(f"[dim]{at}[/] [bold]pipeline run {d.get('run')}[/] {d.get('status')}{escape(why)}")
            elif name == "step_review":
                signals = "; ".join(d.get("signals") or []) or "no signals"
                lines.append(f"[dim]{at}[/] [cyan]review {d.get('step')}[/] of {d.get('run')}: {escape(signals)}")
            elif name in ("stopped", "autonomy", "error", "warning"):
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

    common.use_project(project)
    root = find_project().root
    if as_json:
        common.print_json(session_replay(root, ref))
        return
    out = common.out()
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


def _ask_person(out: Any, pending: Any, answered: Any = None) -> dict[str, Any] | None:
    """Ask about one waiting call; returns the decision as keyword arguments of decide(), or
    ``None`` when ``answered()`` says it was answered elsewhere (``blase ui``) first."""
    from rich.markup import escape
    from rich.panel import Panel

    body = (f"[bold]{pending.tool}[/] ({pending.risk})\nargs: {escape(json.dumps(pending.args))}\n"
            f"why asked: {escape(pending.reason)}\nsame as: {escape(pending.command or '')}")
    out.print(Panel(body, title="approval needed", border_style="yellow"))
    if answered is not None:
        out.print("[dim]or answer it on this session's page of `blase ui`[/]")

    def ask(text: str, default: str) -> str | None:
        return _prompt_until(text, default, answered)

    while True:
        answer = ask("approve? [y]es / [n]o / [e]dit", "n")
        if answer is None:
            return None
        answer = answer.strip().lower()
        if answer in ("y", "yes"):
            return {"action": "approve"}
        if answer in ("n", "no"):
            note = ask("note for the assistant (optional)", "")
            return None if note is None else {"action": "reject", "note": note or None}
        if answer in ("e", "edit"):
            text = ask("arguments as JSON", json.dumps(pending.args))
            if text is None:
                return None
            try:
                args = json.loads(text)
            except json.JSONDecodeError as exc:
                out.print(f"[red]not JSON:[/] {exc}")
                continue
            if not isinstance(args, dict):
                out.print("[red]the arguments must be a JSON object[/]")
                continue
            return {"action": "edit", "args": args}


def _prompt_until(text: str, default: str, answered: Any) -> str | None:
    """``typer.prompt``, except that on a terminal (or pipe) it gives up and returns ``None``
    as soon as ``answered()`` is true; where stdin cannot be polled it is a plain prompt."""
    import select
    import sys

    try:
        fd = sys.stdin.fileno()
        select.select([fd], [], [], 0)
    except (AttributeError, OSError, ValueError):  # no real file (a test runner's stdin) or no select
        fd = None
    if answered is None or fd is None:
        return typer.prompt(text, default=default, show_default=bool(default))
    sys.stdout.write(f"{text} [{default}]: " if default else f"{text}: ")
    sys.stdout.flush()
    while True:
        if answered():
            sys.stdout.write("\n")
            return None
        ready, _, _ = select.select([fd], [], [], 0.25)
        if ready:
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line.rstrip("\n") or default


def _terminal_answer(out: Any, pending: Any, answered: Any) -> dict[str, Any] | None:
    try:
        return _ask_person(out, pending, answered)
    except (EOFError, typer.Abort):
        return {"action": "reject", "note": "no answer (no terminal to ask)"}


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
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve the write calls that ask; destructive ones (promote, rollback, gc) still ask.")] = False,
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

    common.use_project(project)
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
            common.out().print(f"[yellow]moved the session store aside to[/] {moved}", highlight=False)
    scripted = message is not None or approve or reject
    out = common.out()
    quiet = as_json
    sess = Session(found, session_id=resume, autonomy=autonomy, provider=provider, model=model,
                   base_url=base_url, auto_approve=yes, on_event=None if as_json else _printer(out))
    status = "finished"
    try:
        if not quiet:
            small = " — a small embedded model: one tool round per question, answers may be weak" \
                if sess.spec.small else ""
            out.print(f"[dim]session {sess.session_id} · model {sess.model_label}{small} · autonomy {sess.autonomy}[/]")
            if sess.autonomy == "auto":
                from blase.agent import unevaluated_warning

                warning = unevaluated_warning(found, sess.spec)
                if warning:
                    out.print(f"[yellow]warning:[/] {warning}")
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
            common.print_json(data)
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


# ---------------------------------------------------------------------- blase run --autonomy


def agent_decision_lines(project_root: Path, run: Any) -> list[str]:
    """The assistant's decisions about a pipeline run, step by step (rich markup), for
    ``blase inspect``: read from the autopilot session named by the run's ``agent_session`` tag."""
    from rich.markup import escape

    from blase.errors import BlaseError
    from blase.track import load_run

    sid = (getattr(run, "tags", None) or {}).get("agent_session")
    if not sid:
        return []
    try:
        session = load_run(sid, [project_root], history=False)
    except BlaseError:
        return [f"[yellow]the assistant session {sid} that ran this pipeline is gone[/]"]
    lines = []
    for e in session.event_list:
        d = e.get("data") or {}
        if e.get("event") == "agent_decision" and d.get("run") == run.id:
            what = f"{d.get('tool')} {d.get('summary') or ''}".strip()
            who = f" by {d.get('by')}" if d.get("by") not in (None, "gate", "model") else ""
            line = f"  after [bold]{d.get('step')}[/]: {escape(what)} → [yellow]{d.get('decision')}[/]{who}"
            if d.get("result_run"):
                line += f" → run {d['result_run']}"
            if d.get("decision") == "recommended" and d.get("command"):
                line += f"\n      [dim]{escape(str(d['command']))}[/]"
            if d.get("reason"):
                line += f"\n      [dim]why: {escape(str(d['reason']))}[/]"
            lines.append(line)
        elif e.get("event") == "agent_decision" and d.get("result_run") == run.id:
            lines.insert(0, f"  this run re-ran from {escape(str((d.get('change') or {}).get('from_step')))} "
                            f"after {d.get('step')} of run {d.get('run')}: {escape(str(d.get('summary')))}")
    if lines:
        lines.insert(0, f"[bold]assistant decisions[/] (session {sid}, `blase session {sid}`)")
    return lines


def _pilot_printer(out: Any) -> Any:
    from rich.markup import escape

    def on_event(event: str, d: dict[str, Any]) -> None:
        if event == "pipeline_step" and d.get("state") in ("done", "cached", "failed"):
            mark = {"done": "[green]ok[/]", "cached": "[dim]cached[/]", "failed": "[red]failed[/]"}[d["state"]]
            out.print(f"  {mark} {d.get('step')}")
        elif event == "pipeline_run":
            out.print(f"[dim]pipeline run {d.get('run')} {d.get('status')} ({d.get('seconds')}s)[/]")
        elif event == "step_review":
            signals = "; ".join(d.get("signals") or []) or "no signals"
            out.print(f"[cyan]review[/] {d.get('step')} of {d.get('run')}: [dim]{escape(signals)}[/]")
        elif event == "model_call":
            calls = ", ".join(d.get("tool_calls") or []) or "answers"
            out.print(f"  [dim]model: {escape(calls)} ({d.get('latency_s')}s)[/]")
        elif event == "agent_decision" and d.get("decision") not in ("accepted", "undecided"):
            out.print(f"  [yellow]{d.get('decision')}[/] {d.get('tool')} {escape(str(d.get('summary') or ''))}"
                      + (f" [dim]({escape(str(d.get('reason')))})[/]" if d.get("reason") else ""))
        elif event == "warning":
            out.print(f"[yellow]warning:[/] {escape(str(d.get('text')))}")
        elif event == "gate" and str(d.get("by") or "").startswith("person ("):
            out.print(f"[yellow]answered by {escape(str(d['by']))}:[/] {d.get('decision')} {d.get('tool')}")

    return on_event


def run_with_assistant(
    *,
    autonomy: str | None,
    yes: bool,
    provider: str | None,
    model: str | None,
    from_step: str | None,
    to_step: str | None,
    memory: str | None,
    overrides: list[str] | None,
    resume: str | None,
    no_cache: bool,
    project: Path | None,
    as_json: bool,
) -> None:
    """``blase run --autonomy LEVEL``: the pipeline under the assistant, approvals at the prompt."""
    import importlib.util

    from blase.errors import BlaseError
    from blase.project import find_project

    common.use_project(project)
    if autonomy is None:
        raise BlaseError("--yes, --provider and --model go with --autonomy",
                         hint="add --autonomy manual|semi|auto, or drop them for a plain `blase run`")
    if importlib.util.find_spec("langgraph") is None:
        raise BlaseError("the assistant needs the agent extra", hint="pip install 'blase[agent]'")
    from blase.agent import Autopilot

    out = common.out()
    pilot = Autopilot(find_project(), autonomy=autonomy, provider=provider, model=model, overrides=overrides,
                      memory=memory, from_step=from_step, to_step=to_step, resume=resume, cache=not no_cache,
                      approve_writes=yes, on_event=None if as_json else _pilot_printer(out))
    status = "finished"
    try:
        if not as_json:
            out.print(f"[dim]assistant {pilot.spec.label} · autonomy {pilot.autonomy} · session {pilot.session_id}[/]")
        result = pilot.start()
        while result.pending is not None:
            result = pilot.wait_for_person(lambda pending, answered: _terminal_answer(out, pending, answered))
        report = result.report
        assert report is not None
        if as_json:
            common.print_json({"session": pilot.session_id, "warnings": result.warnings, "report": report.to_json()})
        else:
            from rich.markup import escape
            from rich.panel import Panel

            out.print(Panel(escape(report.text), title="assistant report", border_style="green"))
            out.print(f"[dim]decisions: blase inspect {report.final_run} · blase session {pilot.session_id}[/]")
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except BaseException:
        status = "failed"
        raise
    finally:
        pilot.close(status)


# ---------------------------------------------------------------------- blase agent eval

agent_app = typer.Typer(name="agent", help="The assistant's own tools: evaluate a model on Blase's tool suite.\n\n"
                        "Example: [bold]blase agent eval --provider ollama --model qwen2.5:7b -k 3[/]",
                        no_args_is_help=True)
app.add_typer(agent_app)


@agent_app.command("eval")
def agent_eval(
    provider: Annotated[str | None, typer.Option("--provider", help="openai, ollama or llamacpp (default: as blase chat).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model name (llamacpp: a .gguf path).")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL, or the Ollama host.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Repeats of the suite; pass^k counts tasks passed in all of them.")] = 1,
    category: Annotated[
        list[str] | None, typer.Option("--category", "-c", help="Only this category (single, irrelevance, multi); repeatable.")
    ] = None,
    task: Annotated[list[str] | None, typer.Option("--task", help="Only tasks with this id (or id prefix); repeatable.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most N tasks per category.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per task (model time); slower fails.")] = 180.0,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the scratch project (its path is printed).")] = False,
    project: ProjectOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    tasks_file: Annotated[Path | None, typer.Option("--tasks", help="A suite file (YAML/JSON) instead of the built-in suite.")] = None,
) -> None:
    """Score a model on a fixed suite of Blase tool-use tasks (single calls, irrelevance, multi-step).

    The suite runs on a scratch project it builds itself; the result is recorded as a run of kind
    agent-eval in this project (or, outside one, in the kept scratch project), which
    `--autonomy auto` consults.

    Example: [bold]blase agent eval --provider ollama --model qwen2.5:7b -k 3[/]
    Your own suite: [bold]blase agent eval --tasks my-suite.yaml[/]
    """
    import importlib.util

    from blase.errors import BlaseError, ProjectError
    from blase.project import find_project

    common.use_project(project)
    if importlib.util.find_spec("langgraph") is None:
        raise BlaseError("the assistant needs the agent extra", hint="pip install 'blase[agent]'")
    from blase.agent import EVAL_CATEGORIES, run_eval

    for c in category or []:
        if c not in EVAL_CATEGORIES:
            raise BlaseError(f"unknown category {c!r}", hint=f"choose from {', '.join(EVAL_CATEGORIES)}")
    try:
        here = find_project()
    except ProjectError:
        here = None
    out = common.out()

    def progress(a: Any) -> None:
        if not as_json:
            mark = "[green]pass[/]" if a.passed else "[red]fail[/]"
            from rich.markup import escape

            out.print(f"  {mark} {a.task} (repeat {a.repeat + 1}, {a.seconds:.1f}s)"
                      + ("" if a.passed else f" [dim]{escape(a.reason)}[/]"))

    result = run_eval(provider=provider, model=model, base_url=base_url, k=k, categories=category, ids=task,
                      limit=limit, timeout=timeout, record_in=here, keep=keep or here is None, on_attempt=progress,
                      tasks_file=tasks_file)
    if as_json:
        common.print_json(result.to_json())
        return
    from rich.table import Table

    table = Table(title=f"agent eval · {result.label} · k={k}", title_justify="left", header_style="bold", box=None)
    for col in ("category", "tasks", "attempts", "pass rate", f"pass^{k}"):
        table.add_column(col, justify="left" if col == "category" else "right")
    for cat, row in result.per_category().items():
        table.add_row(cat, str(row["tasks"]), str(row["attempts"]), f"{row['pass_rate']:.0%}", f"{row['pass_k']:.0%}")
    out.print(table)
    lat = result.latency()
    if lat:
        out.print(f"latency per model call: mean {lat['mean_s']:.1f}s, median {lat['p50_s']:.1f}s, "
                  f"max {lat['max_s']:.1f}s over {int(lat['calls'])} calls; median of a turn with one tool call "
                  f"{lat.get('turn_p50_s', float('nan')):.1f}s, to the first token {lat.get('first_token_p50_s', float('nan')):.1f}s")
    if not result.complete:
        out.print("[yellow]a subset of the suite ran: this eval does not count for --autonomy auto[/]")
    out.print(f"recorded as run {result.run_id}" + (f" in {here.root}" if here else " in the scratch project"))
