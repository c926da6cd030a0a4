"""``blase agent eval``: how well a model drives Blase's tools, measured on a fixed suite.

The suite (:mod:`agent.eval_tasks`) runs against a scratch project the eval builds itself
(``blase create`` in a temporary folder, a full pipeline run and a second run from train, so
there are runs, two model versions and new data to talk about). Single-call and irrelevance
tasks are one model call with every tool bound, as the first turn of ``blase chat``; a
multi-step task is a whole question in a real :class:`~agent._session.Session` at autonomy
``auto`` (destructive calls approved, as the eval measures the model, not the gate), scored
by the project's state afterwards.

Scores: the pass rate per category over all attempts, and pass^k: the share of tasks passed
in every one of ``k`` repeats (tau-bench). The result is a Track run of kind ``agent-eval``
(params provider, model, k; metrics ``pass_rate.<category>``, ``pass_k.<category>``,
``latency.*``). :func:`unevaluated_warning` looks those runs up for ``auto`` autonomy.

A task's timeout is soft: a model call cannot be cut short in-process, so a task whose
calls ran past it fails as ``timeout``, and a multi-step task's tools are refused once its
time budget is spent.
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blase.project import Project

from .eval_tasks import ANY, TASKS, EvalTask, ExpectedCall, load_suite, suite_hash

__all__ = [
    "CATEGORIES",
    "EvalResult",
    "Score",
    "build_scratch_project",
    "eval_on_record",
    "run_eval",
    "score_irrelevance",
    "score_single",
    "score_state",
    "snapshot",
    "unevaluated_warning",
]

logger = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = ("single", "irrelevance", "multi")


@dataclass(frozen=True)
class Score:
    """Whether an attempt passed, and why not."""

    passed: bool
    reason: str = "ok"


# ---------------------------------------------------------------------- scorers (pure)


def fill(value: Any, facts: dict[str, str]) -> Any:
    """``value`` with ``{run}``-style placeholders replaced by the scratch project's facts."""
    if isinstance(value, str):
        for key, fact in facts.items():
            value = value.replace("{" + key + "}", fact)
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(fill(v, facts) for v in value)
    if isinstance(value, dict):
        return {k: fill(v, facts) for k, v in value.items()}
    return value


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        text = text.removeprefix("./")
        if "=" in text and " " in text:
            text = "=".join(p.strip() for p in text.split("="))
        return text.lower()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _same(got: Any, want: Any, *, unordered: bool = False) -> bool:
    if want == ANY:
        return True
    a, b = _norm(got), _norm(want)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if unordered and isinstance(a, list) and isinstance(b, list):
        return sorted(map(repr, a)) == sorted(map(repr, b))
    return a == b


def _match(expected: ExpectedCall, call: dict[str, Any], facts: dict[str, str]) -> Score:
    from blase.tools import ToolError, get_tool

    if call["name"] != expected.tool:
        return Score(False, f"wrong tool {call['name']!r}, expected {expected.tool!r}")
    args = call.get("args") or {}
    try:
        tool = get_tool(expected.tool)
        validated = tool.validate(args)
    except ToolError as exc:
        return Score(False, f"invalid arguments: {exc.message}")
    for key, accepted in expected.args.items():
        if key not in args or args[key] is None:
            if key in expected.optional:
                continue
            return Score(False, f"missing argument {key!r}")
        wanted = [fill(v, facts) for v in accepted]
        if not any(_same(args[key], w, unordered=key in expected.unordered) for w in wanted):
            return Score(False, f"{key}={args[key]!r} is not an accepted value ({', '.join(map(repr, wanted))})")
    fields = type(validated).model_fields
    for key, value in args.items():
        if key in expected.args:
            continue
        info = fields.get(key)
        default = info.get_default(call_default_factory=True) if info is not None else None
        if not _same(value, default):
            return Score(False, f"unexpected argument {key}={value!r}")
    return Score(True)


def score_single(task: EvalTask, calls: list[dict[str, Any]], facts: dict[str, str]) -> Score:
    """BFCL-style: exactly one call, right tool, valid arguments with accepted values.

    ``calls`` are ``{"name", "args"}`` dicts; a malformed call has ``"invalid"`` set.
    """
    if not calls:
        return Score(False, "no tool call")
    if len(calls) > 1:
        return Score(False, f"{len(calls)} tool calls, expected one ({', '.join(c['name'] for c in calls)})")
    call = calls[0]
    if call.get("invalid"):
        return Score(False, f"malformed call to {call['name']}: {call['invalid']}")
    reasons = []
    for expected in task.expected:
        score = _match(expected, call, facts)
        if score.passed:
            return score
        reasons.append(score.reason)
    return Score(False, reasons[0] if len(set(reasons)) == 1 else "; ".join(dict.fromkeys(reasons)))


def score_irrelevance(task: EvalTask, calls: list[dict[str, Any]], answer: str | None = None) -> Score:
    """No tool fits: any call (valid or not) fails; a plain answer passes."""
    if calls:
        return Score(False, f"called {', '.join(c['name'] for c in calls)} although no tool fits")
    return Score(True)


def snapshot(project: Project) -> dict[str, Any]:
    """The state multi-step tasks are scored against: run ids, model versions, current ones."""
    from blase.deploy import list_models

    runs = {e.name for e in project.runs_dir.iterdir() if e.is_dir() and not e.name.startswith(".")} \
        if project.runs_dir.is_dir() else set()
    models = {m.name: {"versions": list(m.versions), "current": m.current} for m in list_models(project)}
    return {"runs": sorted(runs), "models": models}


def _param(params: dict[str, Any], key: str) -> Any:
    return params.get(key)


def score_state(task: EvalTask, project: Project, before: dict[str, Any], facts: dict[str, str]) -> Score:
    """tau-bench style: the project's state after the task, whatever calls led there."""
    from blase.track import load_run

    after = snapshot(project)
    new_ids = [r for r in after["runs"] if r not in set(before["runs"])]
    new_runs = []
    for rid in new_ids:
        try:
            new_runs.append(load_run(rid, [project.root], history=False))
        except Exception:  # a damaged run is no evidence
            continue
    for check in task.checks:
        spec = fill(dict(check.spec), facts)
        if check.kind == "new_run":
            pipelines = [r for r in new_runs if r.kind == "pipeline"]
            if not pipelines:
                return Score(False, "no new pipeline run")
            good = [r for r in pipelines if r.status == "finished"]
            if not good:
                return Score(False, f"the new pipeline run {pipelines[0].id} did not finish ({pipelines[0].status})")
            for key, want in (spec.get("params") or {}).items():
                good = [r for r in good if _same(_param(r.params, key), want)]
                if not good:
                    return Score(False, f"no new finished pipeline run has {key}={want}")
            if spec.get("steps"):
                good = [r for r in good if str(r.params.get("run.steps")) == spec["steps"]]
                if not good:
                    return Score(False, f"no new finished pipeline run ran exactly {spec['steps']}")
            if spec.get("evaluated"):
                good = [r for r in good if any(k.startswith("test.") for k in r.metrics)]
                if not good:
                    return Score(False, "the new run was not evaluated")
        elif check.kind == "version_added":
            model = spec["model"]
            had = len(before["models"].get(model, {}).get("versions", []))
            has = len(after["models"].get(model, {}).get("versions", []))
            if has - had != int(spec.get("count", 1)):
                return Score(False, f"model {model} has {has - had} new versions, expected {spec.get('count', 1)}")
        elif check.kind == "current_version":
            model = spec["model"]
            current = after["models"].get(model, {}).get("current")
            if current != spec["version"]:
                return Score(False, f"model {model} current version is {current}, expected {spec['version']}")
        elif check.kind == "file_rows":
            path = project.root / spec["path"]
            if not path.is_file():
                return Score(False, f"{spec['path']} does not exist")
            rows = _count_rows(path)
            if rows < int(spec.get("min_rows", 1)):
                return Score(False, f"{spec['path']} has {rows} rows")
        elif check.kind == "best_deployed":
            model, metric = spec["model"], spec["metric"]
            versions = after["models"].get(model, {}).get("versions", [])
            if not versions:
                return Score(False, f"model {model} has no versions")
            from blase.deploy import resolve_model
            from blase.track import list_runs

            newest = resolve_model(project, f"{model}@{versions[-1]}")
            scores = {r.id: r.metrics.get(metric) for r in list_runs([project.root])
                      if r.kind == "pipeline" and r.id in set(before["runs"]) and isinstance(r.metrics.get(metric), float)}
            if not scores:
                return Score(False, f"no run before the task has {metric}")
            best = max(scores.values())
            if scores.get(str(newest.run_id)) != best:
                return Score(False, f"{model} {versions[-1]} packages run {newest.run_id}, not a run with the best {metric} {best:.4g}")
        else:
            return Score(False, f"unknown check {check.kind!r}")
    return Score(True)


def _count_rows(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, encoding="utf-8", errors="replace") as f:
        return max(0, sum(1 for _ in f) - 1)


# ---------------------------------------------------------------------- the scratch project


def build_scratch_project(folder: Path) -> tuple[Project, dict[str, str]]:
    """``blase create`` in ``folder``, a quick full pipeline run, a second run from train and
    ``data/new.csv``; returns the project and the facts the tasks name."""
    import yaml

    from blase.pipeline import Pipeline
    from blase.scaffold import create_project

    project = create_project(folder / "evalproj")
    config = yaml.safe_load(project.config_path.read_text(encoding="utf-8"))
    config.setdefault("train", {})["epochs"] = 5  # quick: the eval is about the assistant
    config.setdefault("track", {})["sample_resources"] = False
    project.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    run1 = Pipeline(project).run().run_id
    run2 = Pipeline(project, overrides=["train.lr=0.02"]).run(from_step="train").run_id
    source = project.root / "data" / "penguins.csv"
    lines = source.read_text(encoding="utf-8").splitlines()
    (project.root / "data" / "new.csv").write_text("\n".join(lines[:81]) + "\n", encoding="utf-8")
    return project, {"run": run1, "run2": run2, "model": project.name}


def _setup(name: str | None, project: Project, facts: dict[str, str]) -> dict[str, str]:
    """Put the project in the state a multi-step task starts from; returns extra facts."""
    from blase.deploy import current_version, list_models, promote

    if name is None:
        return {}
    model = facts["model"]
    versions = next((m.versions for m in list_models(project) if m.name == model), [])
    if name == "current_not_v1":
        promote(project, model, versions[-1], reason="eval setup")
        return {}
    if name == "promote_latest":
        previous = "v1" if versions[-1] != "v1" else versions[0]
        promote(project, model, previous, reason="eval setup")
        promote(project, model, versions[-1], reason="eval setup")
        return {"previous": current_version(project, model) and previous}
    if name == "no_predictions":
        (project.root / "outputs" / "eval-pred.csv").unlink(missing_ok=True)
        return {}
    raise ValueError(f"unknown setup {name!r}")


# ---------------------------------------------------------------------- running


@dataclass
class Attempt:
    """One task, one repeat."""

    task: str
    category: str
    repeat: int
    passed: bool
    reason: str
    seconds: float
    model_calls: int
    latency_s: list[float] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    #: Seconds to the model's first token in this attempt (None: no token was generated; the
    #: embedded model's decoder often fills a call with no model call at all).
    first_token_s: float | None = None


@dataclass
class EvalResult:
    """Scores of one ``blase agent eval``."""

    provider: str
    model: str
    label: str
    k: int
    tasks: list[str]
    attempts: list[Attempt] = field(default_factory=list)
    complete: bool = True
    run_id: str | None = None
    suite: str = ""
    suite_file: str = "built-in"

    def per_category(self) -> dict[str, dict[str, Any]]:
        """``{category: {tasks, attempts, pass_rate, pass_k}}`` plus ``all``."""
        out: dict[str, dict[str, Any]] = {}
        for cat in (*CATEGORIES, "all"):
            rows = [a for a in self.attempts if cat == "all" or a.category == cat]
            if not rows:
                continue
            by_task: dict[str, list[bool]] = {}
            for a in rows:
                by_task.setdefault(a.task, []).append(a.passed)
            out[cat] = {
                "tasks": len(by_task), "attempts": len(rows),
                "pass_rate": sum(a.passed for a in rows) / len(rows),
                "pass_k": sum(all(v) and len(v) >= self.k for v in by_task.values()) / len(by_task),
            }
        return out

    def latency(self) -> dict[str, float]:
        """Seconds per model call (one turn of the model), the model's seconds in a turn with one
        tool call (``turn_p50_s``) and to the first generated token (``first_token_p50_s``)."""
        values = [v for a in self.attempts for v in a.latency_s]
        if not values:
            return {}
        out = {"mean_s": statistics.fmean(values), "p50_s": statistics.median(values), "max_s": max(values),
               "calls": float(len(values))}
        # the model's time in a turn that made one tool call (the tool's own run time excluded)
        turns = [sum(a.latency_s) for a in self.attempts if len(a.calls) == 1]
        firsts = [a.first_token_s for a in self.attempts if a.first_token_s is not None]
        if turns:
            out["turn_p50_s"] = statistics.median(turns)
        if firsts:
            out["first_token_p50_s"] = statistics.median(firsts)
        return out

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "label": self.label, "k": self.k,
                "suite": self.suite, "suite_file": self.suite_file, "complete": self.complete, "tasks": self.tasks, "run_id": self.run_id,
                "categories": self.per_category(), "latency": self.latency(),
                "attempts": [asdict(a) for a in self.attempts]}


def _calls(ai: Any) -> list[dict[str, Any]]:
    calls = [{"name": c["name"], "args": c.get("args") or {}} for c in ai.tool_calls]
    calls += [{"name": c.get("name") or "(none)", "args": None, "invalid": c.get("error") or "invalid JSON"}
              for c in ai.invalid_tool_calls]
    return calls


def select_tasks(*, categories: list[str] | None = None, ids: list[str] | None = None,
                 limit: int | None = None, suite: tuple[EvalTask, ...] = TASKS) -> list[EvalTask]:
    """The tasks to run: by category and id, at most ``limit`` per category, in suite order."""
    chosen = [t for t in suite if (not categories or t.category in categories)
              and (not ids or t.id in ids or any(t.id.startswith(i) for i in ids))]
    if limit is not None:
        counts: dict[str, int] = {}
        kept = []
        for t in chosen:
            counts[t.category] = counts.get(t.category, 0) + 1
            if counts[t.category] <= limit:
                kept.append(t)
        chosen = kept
    return chosen


def run_eval(
    *,
    provider: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    llm: Any = None,
    k: int = 1,
    categories: list[str] | None = None,
    ids: list[str] | None = None,
    limit: int | None = None,
    timeout: float = 180.0,
    record_in: Project | None = None,
    workdir: Path | None = None,
    keep: bool = False,
    on_attempt: Callable[[Attempt], None] | None = None,
    tasks_file: str | Path | None = None,
) -> EvalResult:
    """Run the suite ``k`` times and record the scores (in ``record_in``, else the scratch project).

    ``tasks_file``: a suite file in the format of :func:`~agent.eval_tasks.load_suite` instead of
    the built-in suite."""
    from blase.prompts import read_prompt
    from blase.tools import tool_schemas
    from langchain_core.messages import HumanMessage, SystemMessage

    from ._gate import Budgets
    from ._providers import ProviderSpec, attach_project, make_chat_model, resolve_provider
    from ._session import Session

    if k < 1:
        raise ValueError("k must be at least 1")
    suite = load_suite(tasks_file) if tasks_file is not None else TASKS
    if llm is None:
        spec = resolve_provider(provider=provider, model=model, base_url=base_url)
        llm = make_chat_model(spec)
    else:
        spec = ProviderSpec(provider or "custom", model or type(llm).__name__, base_url, source="given")
    tasks = select_tasks(categories=categories, ids=ids, limit=limit, suite=suite)
    result = EvalResult(spec.provider, spec.model, spec.label, k, [t.id for t in tasks],
                        complete=len(tasks) == len(suite), suite=suite_hash(suite),
                        suite_file=str(tasks_file) if tasks_file is not None else "built-in")
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="blase-eval-"))
    project, facts = build_scratch_project(folder)
    attach_project(llm, project)
    system = read_prompt("system.md") + f"\n\nProject: {project.name}.\n\nAutonomy level now: auto."
    bound = llm.bind_tools(tool_schemas())
    try:
        for repeat in range(k):
            for task in tasks:
                started = time.perf_counter()
                if task.category in ("single", "irrelevance"):
                    prompt = fill(task.prompt, facts)
                    ai = bound.invoke([SystemMessage(system), HumanMessage(prompt)])
                    seconds = time.perf_counter() - started
                    latency = [float((ai.response_metadata or {}).get("latency_s", seconds))]
                    first = (ai.response_metadata or {}).get("first_token_s")
                    calls = _calls(ai)
                    score = score_single(task, calls, facts) if task.category == "single" \
                        else score_irrelevance(task, calls, str(ai.content))
                    names = [c["name"] for c in calls]
                else:
                    extra = _setup(task.setup, project, facts)
                    task_facts = {**facts, **extra}
                    before = snapshot(project)
                    budgets = Budgets(max_tool_calls=8, max_write_actions=4, max_seconds=timeout)
                    with Session(project, autonomy="auto", llm=llm, provider=spec.provider, model=spec.model,
                                 auto_approve="all", budgets=budgets) as sess:
                        turn = sess.send(fill(task.prompt, task_facts))
                    seconds = time.perf_counter() - started
                    latency = [float(e.get("latency_s") or 0.0) for e in turn.events if e["event"] == "model_call"]
                    first = next(((e.get("decode") or {}).get("first_token_s") for e in turn.events
                                  if e["event"] == "model_call"), None)
                    names = [e["tool"] for e in turn.events if e["event"] == "tool_result"]
                    score = score_state(task, project, before, task_facts)
                if score.passed and sum(latency) > timeout:
                    score = Score(False, f"timeout: {sum(latency):.0f}s > {timeout:g}s")
                attempt = Attempt(task.id, task.category, repeat, score.passed, score.reason, round(seconds, 3),
                                  len(latency), [round(v, 3) for v in latency], names, first)
                result.attempts.append(attempt)
                if on_attempt is not None:
                    on_attempt(attempt)
        result.run_id = _record(result, record_in or project, timeout=timeout, limit=limit)
    finally:
        if not keep and workdir is None and record_in is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return result


def _record(result: EvalResult, project: Project, *, timeout: float, limit: int | None) -> str:
    from blase.track import Track

    params = {"provider": result.provider, "model": result.model, "label": result.label, "k": result.k,
              "suite": result.suite, "suite_file": result.suite_file, "complete": result.complete, "tasks": len(result.tasks),
              "limit": limit, "timeout_s": timeout}
    with Track(f"agent-eval-{result.provider}", project=project, kind="agent-eval", params=params,
               tags={"provider": result.provider}, sample_resources=False) as track:
        for a in result.attempts:
            track.log_event("eval_task", **asdict(a))
        for cat, row in result.per_category().items():
            track.log_metrics({f"pass_rate.{cat}": row["pass_rate"], f"pass_k.{cat}": row["pass_k"]})
        track.log_metrics({f"latency.{k}": v for k, v in result.latency().items()})
        run_id = track.run_id
    result.run_id = run_id
    return run_id


# ---------------------------------------------------------------------- on record


def _same_model(params: dict[str, Any], provider: str, model: str) -> bool:
    if params.get("provider") != provider:
        return False
    got = str(params.get("model") or "")
    return got == model or (provider == "llamacpp" and Path(got).name == Path(model).name)


def eval_on_record(project: Project, provider: str, model: str) -> list[dict[str, Any]]:
    """Finished ``agent-eval`` runs of this provider and model: ``{run, score, complete}``,
    best first (score: the pass rate over every attempt)."""
    from blase.track import list_runs

    found = []
    for r in list_runs([project.root]):
        if r.kind != "agent-eval" or r.status != "finished" or not _same_model(r.params, provider, model):
            continue
        if r.params.get("suite_file", "built-in") != "built-in":  # a user's suite says nothing of autonomy
            continue
        score = r.metrics.get("pass_rate.all")
        if isinstance(score, (int, float)):
            found.append({"run": r.id, "score": float(score), "complete": bool(r.params.get("complete"))})
    return sorted(found, key=lambda f: (-f["complete"], -f["score"]))


def unevaluated_warning(project: Project, spec: Any) -> str | None:
    """A warning for ``auto`` autonomy when the model has no complete eval on record at or above
    ``agent.eval_threshold``; None when it has one."""
    threshold = float(getattr(project.config().agent, "eval_threshold", 0.8))
    found = eval_on_record(project, spec.provider, spec.model)
    complete = [f for f in found if f["complete"]]
    how = f"`blase agent eval --provider {spec.provider} --model {spec.model}`"
    if complete and complete[0]["score"] >= threshold:
        return None
    if complete:
        best = complete[0]
        return (f"autonomy auto with {spec.label}: its best eval on record (run {best['run']}) passed "
                f"{best['score']:.0%} of the tasks, below agent.eval_threshold {threshold:.0%}; "
                "it acts without asking within budgets, so watch it or use --autonomy semi")
    partial = f" (only partial evals: {', '.join(f['run'] for f in found)})" if found else ""
    return (f"autonomy auto with {spec.label}: no complete agent eval on record{partial}; run {how} "
            f"(threshold agent.eval_threshold {threshold:.0%}) or use --autonomy semi")
