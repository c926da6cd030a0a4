"""The autopilot's final answer: what was done, what was only recommended, and why.

Built by code from the recorded decisions (not written by the model), so it is exact whatever
the model's size: every pipeline run with what caused it and its test metrics, every change
that ran (and who approved it), every recommendation with its ``blase`` command and reason,
every rejection with the person's note, and the budget denials.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["AutopilotReport", "build_report"]


@dataclass
class AutopilotReport:
    """The outcome of ``blase run --autonomy``."""

    session_id: str
    autonomy: str
    model: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    done: list[dict[str, Any]] = field(default_factory=list)
    recommended: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    not_done: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    final_run: str | None = None
    final_metrics: dict[str, Any] = field(default_factory=dict)
    deployed: dict[str, Any] | None = None
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AutopilotReport:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _metrics_text(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()) or "no test metrics"


def build_report(pilot: Any, state: dict[str, Any]) -> AutopilotReport:
    """The report of an autopilot whose graph ended with ``state``."""
    from blase.track import load_run

    from ._records import step_records, test_metrics

    root = pilot.project.root
    runs = []
    deployed = None
    for info in state.get("runs", []):
        row = {"run": info["run_id"], "status": info["status"], "from_step": info.get("from_step"),
               "cause": info.get("cause"), "error": info.get("error"), "metrics": {}}
        try:
            detail = load_run(info["run_id"], [root], history=False)
            row["metrics"] = {k: round(v, 4) for k, v in test_metrics(detail).items()}
            dep = step_records(detail).get("deploy")
            if dep and dep.get("state") in ("ran", "cached") and (dep.get("details") or {}).get("deployed", True):
                d = dep.get("details") or {}
                deployed = {"model": d.get("model"), "version": d.get("version"), "promoted": d.get("promoted")}
        except Exception:  # a damaged run still gets its line
            pass
        runs.append(row)
    actions = state.get("actions", [])
    report = AutopilotReport(
        session_id=pilot.session_id, autonomy=state.get("autonomy", pilot.autonomy), model=pilot.spec.label,
        runs=runs,
        done=[a for a in actions if a["decision"] in ("ran", "approved") and a["tool"] != "accept_step"],
        recommended=[a for a in actions if a["decision"] == "recommended"],
        rejected=[a for a in actions if a["decision"] == "rejected"],
        not_done=[a for a in actions if a["decision"] in ("denied", "failed")],
        accepted=[a["step"] for a in actions if a["decision"] == "accepted"],
        undecided=[a["step"] for a in actions if a["decision"] == "undecided"],
        overrides=list(state.get("overrides", [])), final_run=runs[-1]["run"] if runs else None,
        final_metrics=runs[-1]["metrics"] if runs else {}, deployed=deployed,
    )
    if deployed and deployed.get("model"):
        from blase.deploy import current_version

        deployed["current"] = current_version(pilot.project, deployed["model"])
    first = (state.get("runs") or [{}])[0]
    report.text = _text(report, initial=list(first.get("overrides") or []))
    return report


def _text(r: AutopilotReport, *, initial: list[str]) -> str:
    lines = [f"Autopilot report (autonomy {r.autonomy}, model {r.model}, session {r.session_id})"]
    lines.append("Pipeline runs:")
    for row in r.runs:
        cause = row.get("cause")
        why = (f"re-run from {row['from_step']} after {cause['step']}: {cause['key']}={cause['value']}"
               if cause else "the deterministic pipeline")
        lines.append(f"  {row['run']} ({row['status']}) {why}; {_metrics_text(row['metrics'])}"
                     + (f"; error: {row['error']}" if row.get("error") else ""))
    lines.append("Done:" if r.done else "Done: nothing beyond the pipeline.")
    for a in r.done:
        who = f"approved by {a['by']}" if a["decision"] == "approved" else "run by the gate (auto, within budget)"
        lines.append(f"  after {a['step']}: {a['tool']} {a['summary']} ({who})"
                     + (f" -> run {a['result_run']}" if a.get("result_run") else "")
                     + (f"; why: {a['reason']}" if a.get("reason") else ""))
    if r.recommended:
        lines.append("Recommended, not run:")
        for a in r.recommended:
            lines.append(f"  after {a['step']}: {a['command']}")
            lines.append(f"    why: {a['reason'] or a['tool']}; not run because {a.get('gate_reason') or 'the gate said so'}")
    if r.rejected:
        lines.append("Rejected:")
        for a in r.rejected:
            lines.append(f"  after {a['step']}: {a['tool']} {a['summary']} was rejected by {a['by']}; nothing re-ran"
                         + (f" (note: {a['note']})" if a.get("note") else "")
                         + (f"; the model's reason was: {a['reason']}" if a.get("reason") else ""))
    if r.not_done:
        lines.append("Not done:")
        for a in r.not_done:
            lines.append(f"  after {a['step']}: {a['tool']} {a['summary']}: {a.get('gate_reason') or a['decision']}")
    if r.accepted:
        lines.append(f"Accepted without change: {', '.join(r.accepted)}.")
    if r.undecided:
        lines.append(f"No decision (the model only read): {', '.join(r.undecided)}.")
    if r.deployed:
        d = r.deployed
        lines.append(f"Model: {d.get('model')} {d.get('version')} packaged; current version {d.get('current') or 'none'}.")
    if r.overrides != initial and r.done:
        new = [o for o in r.overrides if o not in initial]
        lines.append("The changes were applied with --set only; blase.yaml is unchanged. To keep them, put "
                     f"{', '.join(new)} into blase.yaml.")
    return "\n".join(lines)
