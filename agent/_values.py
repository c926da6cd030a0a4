"""What the project already knows, and which of it a request names: the allowed values of
tool arguments for a small model.

:func:`project_values` reads run ids, model names and versions, data files and their
columns from the project (cheap: folder listings and CSV headers). :func:`ground` turns a
request and a tool's JSON schema into the arguments the request fixes outright (a run id it
names, a ``KEY=VALUE`` override, a path) and, for the rest, the values allowed when the model
generates them (an enum of run ids, of model names...). Nothing here calls a model.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blase.project import Project

from ._retrieval import NUMBER_WORDS as _NUMBER_WORDS

__all__ = [
    "LATEST_RUN",
    "RUN_PRONOUN",
    "Grounding",
    "ProjectValues",
    "enum_groups",
    "ground",
    "literals",
    "mentioned",
    "metric_named",
    "metrics_named",
    "named_in_order",
    "norm_words",
    "pipeline_settings",
    "project_values",
    "range_end",
    "ranges",
    "restate_products",
    "said_settings",
]

_DATA_SUFFIXES = {".csv", ".parquet", ".json", ".ndjson", ".jsonl", ".arrow", ".feather", ".sqlite", ".duckdb", ".db"}


#: Most run ids offered to the model as the allowed values of a run argument (newest first).
MAX_OFFERED_RUNS = 30


@dataclass(frozen=True)
class ProjectValues:
    """Values tool arguments can take in one project (run ids newest first)."""

    runs: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    versions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    data_files: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()


def project_values(project: Project | None) -> ProjectValues:
    """What ``project`` holds now (every run, so an old run named in a request is known);
    empty values without a project."""
    if project is None:
        return ProjectValues()
    runs_dir = project.runs_dir
    runs: list[str] = []
    if runs_dir.is_dir():
        entries = [e for e in runs_dir.iterdir() if e.is_dir() and not e.name.startswith(".")]
        runs = [e.name for e in sorted(entries, key=lambda e: e.stat().st_mtime, reverse=True)]
    from blase.deploy import list_models

    try:
        models = list_models(project)
    except Exception:  # a damaged model folder must not stop the assistant from answering
        models = []
    files = _data_files(project.root / "data")
    columns: list[str] = []
    for f in files[:20]:
        if f.suffix.lower() == ".csv":
            with open(f, encoding="utf-8", errors="replace") as fh:
                header = fh.readline().strip()
            columns += [c.strip().strip('"') for c in header.split(",") if c.strip()]
    return ProjectValues(
        runs=tuple(runs), models=tuple(m.name for m in models),
        versions={m.name: tuple(m.versions) for m in models},
        data_files=tuple(project.relative(f) for f in files), columns=tuple(dict.fromkeys(columns)),
        metrics=_metric_names(project),
    )


#: Runs whose metric names are read (newest first): enough to know what a project logs.
METRIC_RUNS = 20


def _metric_names(project: Project) -> tuple[str, ...]:
    """The metric names the newest runs logged (``test.accuracy``, ``val.loss`` ...)."""
    from blase.track import list_runs

    try:
        runs = list_runs([project.root], limit=METRIC_RUNS)
    except Exception:  # an unreadable run must not stop the assistant from answering
        return ()
    return tuple(dict.fromkeys(m for r in runs for m in r.metrics))


def _data_files(folder: Path, *, depth: int = 2, cap: int = 200) -> list[Path]:
    """Data files under ``folder``, two levels deep and at most ``cap`` of them (a folder of a
    million images must not slow every turn)."""
    found: list[Path] = []
    level = [folder] if folder.is_dir() else []
    for _ in range(depth):
        below = []
        for d in level:
            for entry in sorted(d.iterdir()):
                if entry.is_dir():
                    below.append(entry)
                elif entry.suffix.lower() in _DATA_SUFFIXES:
                    found.append(entry)
                if len(found) >= cap:
                    return sorted(found)
        level = below
    return sorted(found)


# ---------------------------------------------------------------------- request literals

_OVERRIDE = re.compile(r"\b([A-Za-z_][\w-]*(?:\.[\w-]+)*)\s*=\s*([^\s,;()'\"]+)")
_PATH = re.compile(r"(?<![\w@])((?:\.{0,2}/)?[\w.-]+(?:/[\w.*-]+)*\.[A-Za-z][\w]{1,7}|[\w.-]+(?:/[\w.*-]+)+/?)(?![\w@])")
_VERSION = re.compile(r"\bv\d+\b")
_SIZE = re.compile(r"\b\d+(?:\.\d+)?\s?[KMGT]i?B\b", re.I)
_QUOTED = re.compile(r"[\"'`]([^\"'`]{1,80})[\"'`]")
#: A name the request gives a model ("deploy it under the name churn-v2", "a model called
#: churn", "as 'churn'"): a value, whose words are no evidence of a tool ("penguin" of
#: "penguin-clf" is not the penguins data a preview reads). After a bare "as" only what looks
#: like a name (quoted, or with a digit, "-" or "_"): "as before", "as a new version" give none.
_NEW_NAME = re.compile(r"\b(?:(named|called|call\s+it|under\s+the\s+name|with\s+the\s+name|name\s+it)|as)\s+"
                       r"([\"'`]?)([A-Za-z][\w.-]*[A-Za-z0-9_])\2(?![\w.-]*[\w])", re.I)
_NOT_NAMES = {"a", "an", "the", "it", "this", "that", "my", "our", "new", "model", "version", "before"}


def given_names(request: str) -> list[re.Match[str]]:
    """Where ``request`` gives a model a name (:data:`_NEW_NAME`); group 3 is the name."""
    out = []
    for m in _NEW_NAME.finditer(request):
        name = m.group(3)
        if name.lower() in _NOT_NAMES or _VERSION.fullmatch(name) or re.fullmatch(r"[0-9a-f]{8,}", name):
            continue
        if m.group(1) or m.group(2) or re.search(r"[\d_-]", name):
            out.append(m)
    return out


#: Folders of a Blase project: "data/raw" is a path, "train/val/test" or "and/or" are words.
_PROJECT_FOLDERS = ("data", "scripts", "models", "outputs", "runs")


def _is_path(text: str) -> bool:
    if re.fullmatch(r"[\d.]+", text):
        return False
    if re.search(r"\.[A-Za-z]\w{0,7}$", text.rstrip("/")) or text.startswith(("./", "../", "/")):
        return True
    return text.split("/", 1)[0] in _PROJECT_FOLDERS


@dataclass(frozen=True)
class Literals:
    """The values a request spells out, and its remaining words."""

    overrides: tuple[str, ...]
    paths: tuple[str, ...]
    versions: tuple[str, ...]
    sizes: tuple[str, ...]
    quoted: tuple[str, ...]
    numbers: tuple[int, ...]
    words: tuple[str, ...]
    identifiers: tuple[str, ...]
    names: tuple[str, ...] = ()  # a name given to a model: "under the name churn-v2"


def literals(request: str) -> Literals:
    """Overrides, paths, versions, sizes, numbers and words of ``request`` (words inside a
    literal are not words: ``train`` of ``train.lr=0.1`` does not name the train step)."""
    rest = request
    overrides = tuple(f"{k}={v.rstrip('.')}" for k, v in _OVERRIDE.findall(rest))
    rest = _OVERRIDE.sub(" ", rest)
    quoted = tuple(_QUOTED.findall(rest))
    paths = tuple(p.rstrip(".") for p in _PATH.findall(rest) if _is_path(p))
    rest = _PATH.sub(lambda m: m.group(0) if not _is_path(m.group(0)) else " ", rest)
    sizes = tuple(s.replace(" ", "").upper() for s in _SIZE.findall(rest))
    rest = _SIZE.sub(" ", rest)
    names = tuple(m.group(3) for m in given_names(rest))
    for name in names:
        rest = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", " ", rest)
    versions = tuple(_VERSION.findall(rest))
    words = tuple(re.findall(r"[A-Za-z0-9][\w-]*", rest))
    numbers = tuple(int(w) if w.isdigit() else _NUMBER_WORDS[w.lower()] for w in words
                    if (w.isdigit() and len(w) < 6) or w.lower() in _NUMBER_WORDS)
    identifiers = tuple(w for w in words if "_" in w.strip("_"))
    return Literals(overrides, paths, versions, sizes, quoted, numbers, words, identifiers, names)


# ---------------------------------------------------------------------- settings in words

#: Sections of blase.yaml a pipeline run's ``--set`` changes (transform is a list: its items are
#: named by index, which words do not give).
_PIPELINE_SECTIONS = ("", "data", "prepare", "train", "evaluate", "deploy")
#: Other words for a setting than its key's own ("lr" is what people call the learning rate).
_SAY = {"lr": ("learning rate", "lr")}
_NUM = r"(\d+(?:\.\d+)?(?:e-?\d+)?|" + "|".join(_NUMBER_WORDS) + r")"


@functools.cache
def pipeline_settings() -> dict[str, str]:
    """Phrase -> key for every numeric setting of the pipeline's sections (``epochs`` ->
    ``train.epochs``, ``learning rate`` -> ``train.lr``), from the config's own models."""
    import typing

    from pydantic import BaseModel

    from blase.config import ProjectConfig

    out: dict[str, str] = {}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            args = [a for a in typing.get_args(info.annotation) if a is not type(None)] or [info.annotation]
            sub = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), None)
            key = f"{prefix}{name}"
            if sub is not None and key in _PIPELINE_SECTIONS:
                walk(sub, f"{key}.")
            elif prefix.rstrip(".") in _PIPELINE_SECTIONS and any(a in (int, float) for a in args) and name not in ("version", "memory"):
                for phrase in _SAY.get(name, (name.replace("_", " "),)):
                    out.setdefault(phrase, key)  # the first section that has it (train's epochs)

    walk(ProjectConfig, "")
    return out


def qualified(override: str) -> str:
    """``KEY=VALUE`` with a setting's bare name put in its section (``lr=0.05`` is
    ``train.lr=0.05``, ``epochs=3`` ``train.epochs=3``): ``--set`` takes only the whole key."""
    key, value = override.split("=", 1)
    if "." not in key:
        key = {k.rsplit(".", 1)[-1]: k for k in reversed(pipeline_settings().values())}.get(key.lower(), key)
    return f"{key}={value}"


def spelled_overrides(request: str) -> list[str]:
    """The ``KEY=VALUE`` overrides ``request`` spells, keys made whole (:func:`qualified`)."""
    return list(dict.fromkeys(qualified(o) for o in literals(request).overrides))


def said_settings(request: str) -> list[str]:
    """``KEY=VALUE`` overrides for numeric settings a request states in words ("with 4 epochs",
    "a learning rate of 0.05", "seed 11"); keys it also spells as ``KEY=VALUE`` are left to that."""
    spelled = {o.split("=", 1)[0] for o in spelled_overrides(request)}
    out = []
    for phrase, key in pipeline_settings().items():
        words = r"\s+".join(map(re.escape, phrase.split()))
        found = (re.search(rf"\b{_NUM}\s+{words}\b", request, re.I)
                 or re.search(rf"\b{words}\s*(?:of|to|=|:|at|is)?\s*{_NUM}(?!\w|\.\d)", request, re.I))
        if found and key not in spelled:
            value = found.group(1).lower()
            out.append(f"{key}={_NUMBER_WORDS.get(value, value)}")
    return out


# ---------------------------------------------------------------------- grounding

#: What kind of value each argument name takes (the tools share these names).
ARG_KINDS: Mapping[str, str] = {
    "run": "run", "a": "run", "b": "run", "resume": "resume", "runs": "runs",
    "model": "model_ref", "name": "model_name", "version": "version", "to": "version",
    "path": "data", "data": "data", "out": "out", "overrides": "overrides", "label": "column",
    "event": "identifier", "memory": "size", "max_size": "size", "status": "status", "kind": "kind",
    "sort": "metric", "contains": "text",
}
#: Words that ask for the highest or the lowest value of a metric first.
_HIGH = {"highest", "max", "maximum", "largest", "greatest"}
_LOW = {"lowest", "min", "minimum", "smallest", "least"}
#: Metrics where lower is better ("the best loss" is the lowest).
_LOWER_IS_BETTER = re.compile(r"loss|error|mse|rmse|mae|mape|logloss|brier|perplexity", re.I)
_STATUS = ("running", "finished", "failed", "interrupted")
_KINDS = ("pipeline", "deploy", "agent-session", "agent-eval")
#: "The latest run", "my most recent experiment", "the newest pipeline run", "deploy latest": one
#: run, the newest; "the last 3 runs" or "the latest experiments" are a list, "the latest
#: churn" a model, "the previous run" not the newest.
LATEST_RUN = re.compile(r"\b(?:latest|last|newest|most\s+recent|recent)"
                        r"(?:\s+(?:pipeline|training|trained|finished|successful))?\s+(?:run|experiment)\b(?!s)"
                        r"|\blatest(?=\s*(?:[.,;!?]|$))", re.I)
#: "It", "that run": the run a previous round found (:mod:`agent._clauses` puts it in).
RUN_PRONOUN = re.compile(r"\b(?:it|that run|this run|that one|this one|the same run|the best one|the best run)\b", re.I)
_RESUME = {"resume", "continue", "resumed", "continued", "restart", "unfinished"}
#: Words that say what a boolean argument means when the request does not spell its name.
_BOOLEAN_WORDS: Mapping[str, frozenset[str]] = {
    "verify": frozenset({"verify", "check", "confirm", "identical", "same", "match", "matches", "exactly"}),
}


@dataclass
class Grounding:
    """Arguments the request fixes (``fixed``), the allowed values of the ones the model
    must still generate (``choices``; ``None`` means any value of the schema's type), and
    the argument names to leave out."""

    fixed: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, list[Any] | None] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.choices


def mentioned(value: str, words: set[str]) -> bool:
    norm = re.sub(r"[^a-z0-9]", "", value.lower())
    return bool(norm) and norm in words


def norm_words(lit: Literals) -> set[str]:
    low = [re.sub(r"[^a-z0-9]", "", w.lower()) for w in lit.words]
    return set(low) | {a + b for a, b in itertools.pairwise(low)}


def _runs_named(request: str, values: ProjectValues) -> list[str]:
    found = []
    for token in re.findall(r"[\w-]{6,}", request):
        match = [r for r in values.runs if r == token or (len(token) >= 8 and r.startswith(token))]
        if match and match[0] not in found:
            found.append(match[0])
    return found


def _candidates(kind: str, prop: Mapping[str, Any], request: str, lit: Literals, words: set[str],
                values: ProjectValues, paths: list[str]) -> tuple[list[Any], list[Any]]:
    """``(named, allowed)``: values of this kind the request names, and every value the project
    allows when it names none (empty: unconstrained or nothing known)."""
    if "enum" in prop:
        return (named_in_order(request, list(prop["enum"])) or _described(request, prop)), list(prop["enum"])
    if kind == "resume" and not words & _RESUME:  # a run named is resumed only when the request says so
        return [], []
    if kind in ("run", "resume"):
        named = _runs_named(request, values)
        latest = ["latest"] if LATEST_RUN.search(request) else []
        return named or latest, ["latest", *values.runs[:MAX_OFFERED_RUNS]]
    if kind == "model_ref":
        named = [m for m in values.models if mentioned(m, words)]
        named = [f"{m}@{lit.versions[0]}" if lit.versions and f"{m}@" in request else m for m in named]
        return named, list(values.models)
    if kind == "model_name":  # a deployed model, else the name the request gives one (a new one)
        return [m for m in values.models if mentioned(m, words)] or list(lit.names[:1]), list(values.models)
    if kind == "version":
        every = sorted({v for vs in values.versions.values() for v in vs})
        return list(lit.versions), every
    if kind == "data":
        known = [p for p in paths if p in values.data_files or p.startswith("data/")]
        return known, list(values.data_files)
    if kind == "out":
        return [p for p in paths if p not in values.data_files and not p.startswith("data/")], []
    if kind == "overrides":
        every = [*spelled_overrides(request), *said_settings(request)]
        return ([every] if every else []), []
    if kind == "column":
        return [c for c in values.columns if mentioned(c, words)], list(values.columns)
    if kind == "metric":
        return [_ordered(m, words) for m in metrics_named(values.metrics, words)], []
    if kind == "identifier":
        return list(lit.identifiers), []
    if kind == "text":  # a fragment to look for is the text the request quotes ("mention 'epoch'")
        return list(lit.quoted), []
    if kind == "size":
        return list(lit.sizes), []
    if kind == "status":
        return [s for s in _STATUS if mentioned(s, words)], list(_STATUS)
    if kind == "kind":
        return [k for k in _KINDS if mentioned(k, words) and k != "deploy"], list(_KINDS)
    return [], []


def _described(request: str, prop: Mapping[str, Any]) -> list[Any]:
    """The enum values whose meaning, as the argument's description states it ("finetune: continue
    from the deployed weights; retrain: from scratch"), the request says: the whole meaning or
    its last two words ("from scratch", "the deployed weights")."""
    found = []
    text = " ".join(request.lower().split())
    for value in prop.get("enum", []):
        said = re.search(rf"\b{re.escape(str(value))}:\s*([^;.]+)", prop.get("description", ""))
        words = said.group(1).lower().split() if said else []
        if words and (" ".join(words) in text or (len(words) > 2 and " ".join(words[-2:]) in text)):
            found.append(value)
    return found


def enum_groups(props: Mapping[str, Any]) -> list[list[str]]:
    """The arguments that take an enum, grouped by the enum: one argument (``step``), or two or
    more that are the ends of a range over its values (``from_step``, ``to_step``: start first)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for key, prop in props.items():
        if prop.get("enum"):
            groups.setdefault(tuple(map(str, prop["enum"])), []).append(key)
    return list(groups.values())


def ranges(props: Mapping[str, Any]) -> list[list[str]]:
    """The groups of :func:`enum_groups` that are ranges."""
    return [keys for keys in enum_groups(props) if len(keys) > 1]


def named_in_order(request: str, enum: list[Any]) -> list[Any]:
    """The values of ``enum`` the request names, in the enum's own order (a pipeline's steps run in it).

    A value is named by its own word, or by another form of it ("training", "evaluation") where a
    range leads to it ("stop after training"), "step" follows it or "redo/rerun/only" leads to it; not inside a slash-joined list
    ("the train/val/test splits" names no step) nor after a negation ("don't train anything")."""
    kept = _unlisted(_unnegated(request))
    words = norm_words(literals(kept))
    return [v for v in enum if mentioned(str(v), words) or _form_named(kept, str(v))]


#: A negation and what it covers, up to the end of its clause ("don't train anything yet").
_NEGATED = re.compile(r"\b(?:don'?t|do\s+not|doesn'?t|never|without|no|not|skip(?:ping)?|except)\b[^.,;!?]*", re.I)


def _unnegated(request: str) -> str:
    return _NEGATED.sub(" ", request)


def _unlisted(request: str) -> str:
    return re.sub(r"\w+(?:/\w+)+", " ", request)


_END = r"(?:to|until|till|through|thru|upto|up\s+to|stop(?:ping)?\s+(?:at|after)|end(?:ing)?\s+(?:at|with|after)|finish(?:ing)?\s+(?:at|with|after)|as\s+far\s+as)"
_START = r"(?:from|start(?:ing)?\s+(?:at|with|from)|begin(?:ning)?\s+(?:at|with)|after)"


#: What a step makes, in the words people use for it: asking for it asks for a run up to that step
#: ("make the train/val/test splits", "build the shards" run up to prepare). A list of split names
#: ("train/val/test") is such a word too, not the steps or the test split.
_SPLIT = r"(?:train(?:ing)?|val(?:idation)?|dev|test)"
_SETS = r"(?:\s+(?:data\s+)?(?:splits?|sets?|shards?))"
_PRODUCTS = {"prepare": re.compile(rf"\b(?:the\s+)?(?:{_SPLIT}(?:\s*/\s*{_SPLIT})+{_SETS}?"
                                   rf"|{_SPLIT}(?:(?:,\s*|,?\s+and\s+){_SPLIT})+{_SETS}"
                                   r"|(?:data\s+)?(?:splits|shards))\b", re.I)}


def restate_products(request: str) -> str:
    """``request`` with what a step makes named as the end of a range to that step: "just make the
    train/val/test splits" reads "just make up to the prepare step"."""
    for step, words in _PRODUCTS.items():
        request = words.sub(f" up to the {step} step ", request)
    return re.sub(r"\s{2,}", " ", request).strip()


def _forms(value: str) -> str:
    """A pattern for the forms of a word value: ``train`` -> training, trained; ``evaluate`` ->
    evaluation, evaluating; ``prepare`` -> preparation."""
    stem = value[:-1] if value.endswith("e") else value
    return rf"{re.escape(stem)}\w*"


def _form_named(request: str, value: str) -> bool:
    if len(value) < 5 or not value.isalpha():
        return False
    form = _forms(value)
    return bool(re.search(rf"\b(?:{_END}|{_START})\s+(?:the\s+)?{form}\b|\b{form}\s+step\b"
                          rf"|\b(?:redo|rerun|re-run|repeat|only)\s+(?:the\s+)?{form}\b", request, re.I))


def range_end(request: str, value: Any) -> str | None:
    """``"start"`` or ``"end"`` when the request leads to ``value`` with "from ..." or
    "to/until/through/stop after ..." (one end of a range), else ``None`` (the value is named alone)."""
    form = _forms(str(value)) if len(str(value)) >= 5 and str(value).isalpha() else re.escape(str(value))
    for end, words in (("end", _END), ("start", _START)):
        if re.search(rf"\b{words}\s+(?:the\s+)?{form}\b", request, re.I):
            return end
    return None


def _ground_range(request: str, keys: list[str], enum: list[Any]) -> dict[str, Any]:
    """The ends of a range the request names: two values or more span from the first to the
    last; one value is the end when "to/until/through" leads to it, else the start."""
    named = named_in_order(request, enum)
    if len(named) >= 2:
        return {keys[0]: named[0], keys[-1]: named[-1]}
    if not named:
        return {}
    return {keys[-1] if range_end(request, named[0]) == "end" else keys[0]: named[0]}


def metric_named(metric: str, words: set[str]) -> bool:
    """Whether the request names ``metric``: its whole name, or each part of it in any order and
    form ("the most accurate run on the test set" names ``test.accuracy``)."""
    if mentioned(metric, words):
        return True
    parts = [p for p in re.split(r"[._-]", metric.lower()) if p]

    def said(part: str) -> bool:
        if part in words:
            return True
        n = max(4, len(part) - 2)  # accuracy ~ accurate, precision ~ precise
        return (len(part) >= 5 and any(len(w) >= n and w[:n] == part[:n] for w in words)) \
            or (len(part) >= 3 and any(len(w) > len(part) + 2 and w.startswith(part) for w in words))  # val ~ validation

    return len(parts) > 1 and all(map(said, parts))


def metrics_named(metrics: tuple[str, ...], words: set[str]) -> list[str]:
    """The metrics the request names (:func:`metric_named`), else those whose last part it names
    ("the best accuracy"): the test split's first, the figure on data no model saw."""
    named = [m for m in metrics if metric_named(m, words)]
    if named:
        return named
    last = [m for m in metrics if "." in m and mentioned(m.rsplit(".", 1)[1], words)]
    return [m for m in last if m.startswith("test.")][:1] or last


def _number(prop: Mapping[str, Any], numbers: tuple[int, ...]) -> int | None:
    """The first of ``numbers`` the argument's bounds allow (80 samples are no replay share)."""
    low, high = prop.get("minimum", float("-inf")), prop.get("maximum", float("inf"))
    return next((n for n in numbers if low <= n <= high), None)


def _ordered(metric: str, words: set[str]) -> str:
    """A sort key for ``metric``: the lowest first when the request asks for it, the highest first
    when it asks for that, else the best first ("best", "top", "rank by", "worst" the other way):
    ascending for a metric where lower is better (a loss, an error), descending for the others."""
    lower_better = bool(_LOWER_IS_BETTER.search(metric))
    if words & _LOW or words & _HIGH:
        low = bool(words & _LOW)
    else:
        low = lower_better != ("worst" in words)
    return metric if low else f"-{metric}"


def ground(request: str, schema: Mapping[str, Any], values: ProjectValues) -> Grounding:
    """Split a tool's arguments into what ``request`` fixes and what the model must choose.

    An optional argument the request does not name is left out (its default applies); a
    required one is offered with the project's values as its allowed values.
    """
    lit = literals(request)
    words = norm_words(lit)
    paths = list(dict.fromkeys(lit.paths))
    # a number that states a setting ("with 8 epochs") is that setting's, no other argument's
    settled = {o.split("=", 1)[1] for o in said_settings(request)}
    numbers = tuple(n for n in lit.numbers if str(n) not in settled)
    props: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    out = Grounding()
    run_args = [k for k in props if ARG_KINDS.get(k) == "run"]
    named_runs = _runs_named(request, values)
    in_range = set()
    for keys in ranges(props):
        out.fixed.update(_ground_range(request, keys, list(props[keys[0]]["enum"])))
        in_range.update(keys)
    for key, prop in props.items():
        if key in in_range:
            if key in required and key not in out.fixed:
                out.choices[key] = list(prop["enum"])
            continue
        kind = ARG_KINDS.get(key, prop.get("type", ""))
        if kind == "runs":
            if len(named_runs) >= int(prop.get("minItems", 1)):
                out.fixed[key] = named_runs
            elif key in required:
                out.choices[key] = ["latest", *values.runs[:MAX_OFFERED_RUNS]]
            continue
        if kind == "run" and len(run_args) > 1:  # a, b: in the order the request names them
            index = run_args.index(key)
            if index < len(named_runs):
                out.fixed[key] = named_runs[index]
            elif key in required:
                out.choices[key] = ["latest", *values.runs[:MAX_OFFERED_RUNS]]
            continue
        if kind in ("integer", "number"):
            number = _number(prop, numbers)
            if number is not None:
                out.fixed[key] = number
            continue
        if kind == "boolean":
            if all(mentioned(part, words) or any(w.startswith(part) for w in words)
                   for part in key.split("_")) or words & _BOOLEAN_WORDS.get(key, frozenset()):
                out.fixed[key] = True
            continue
        named, allowed = _candidates(kind, prop, request, lit, words, values, paths)
        if kind == "data" and named:
            paths = [p for p in paths if p != named[0]]
        if len(named) == 1:
            out.fixed[key] = named[0]
        elif named:
            out.choices[key] = named
        elif key in required:
            if len(allowed) == 1:
                out.fixed[key] = allowed[0]
            else:
                out.choices[key] = allowed or None
    return out
