"""Two-stage, grammar-constrained tool calls for small models.

A 135M model cannot pick among twenty tools from a 3,500-token list, nor write their JSON
reliably. Here one turn is:

1. **Retrieval** (:mod:`agent._retrieval`): the request is scored against every bound tool;
   at most :data:`~agent._retrieval.MAX_SHOWN` are shown, none when the request is about no
   tool. A request that names something the project holds (a run id, a model, a data file,
   a ``KEY=VALUE`` override) is about the project whatever its words.
2. **Tool choice** under a grammar that allows only the shown tool names or ``none``.
   With ``choice="retrieval"`` (the embedded model's default: on our development requests
   the 135M model's own pick among eight tools was right about half as often as the best
   retrieved tool) the model only chooses between the best tool and ``none`` when the
   request names nothing of the project and retrieval is not sure; ``choice="model"`` lets
   it choose among all the shown tools.
3. **Arguments**: what the request names is filled in by code (:func:`agent._values.ground`);
   the rest is generated under the tool's JSON schema, with the project's values (run ids,
   model names, files, columns) as the allowed values.

The decoder talks to a :class:`ConstrainedLM` (llama.cpp implements it); the result is a
:class:`Decision` whose ``trace`` the model-call event records.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ._retrieval import MAX_SHOWN, MIN_SCORE, VOCAB_WORDS, Retrieved, ToolIndex, tokens
from ._values import (
    ARG_KINDS,
    LATEST_RUN,
    RUN_PRONOUN,
    Grounding,
    ProjectValues,
    enum_groups,
    ground,
    literals,
    metrics_named,
    named_in_order,
    norm_words,
    range_end,
    restate_products,
    said_settings,
)

__all__ = [
    "NONE",
    "ConstrainedLM",
    "Decision",
    "LlamaConstrained",
    "OpenAIConstrained",
    "Pick",
    "decide_call",
    "rank_tools",
    "retrieval_pick",
]

NONE = "none"
#: A best retrieval score at or above this needs no "is it about a tool?" question.
SURE_SCORE = 6.0
#: Share of a request's words the tools know above which an unsure retrieval still counts.
MIN_COVERAGE = 0.5
#: Score added per argument kind of a tool that the request spells out (a path, an override).
LITERAL_BONUS = 2.0

Choice = Literal["retrieval", "model"]


class ConstrainedLM(Protocol):
    """A model that can pick one of a set of words and write JSON under a schema."""

    def pick(self, system: str, user: str, options: Sequence[str], prefix: str) -> tuple[str, dict[str, Any]]:
        """One of ``options`` (and timings)."""
        ...

    def json(self, system: str, user: str, schema: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """An object valid under ``schema`` (and timings)."""
        ...

    def answer(self, system: str, user: str) -> tuple[str, dict[str, Any]]:
        """A short free-text answer (and timings)."""
        ...


@dataclass
class Decision:
    """One tool call (``tool``, ``args``) or none, with how it was reached."""

    tool: str | None
    args: dict[str, Any] = field(default_factory=dict)
    trace: dict[str, Any] = field(default_factory=dict)


_INDEXES: dict[tuple[str, ...], ToolIndex] = {}


def _index(specs: Sequence[Mapping[str, Any]]) -> ToolIndex:
    key = tuple(json.dumps(s, sort_keys=True) for s in specs)
    if key not in _INDEXES:
        _INDEXES[key] = ToolIndex(specs)
    return _INDEXES[key]


def _anchors(request: str, values: ProjectValues) -> set[str]:
    """Kinds of project values the request names (``run``, ``model``, ``data``, ``overrides`` ...)."""
    lit = literals(request)
    words = {w.lower() for w in lit.words}
    norm = norm_words(lit)
    found = set()
    named_runs = [r for r in values.runs if r in request] or \
        [r for r in values.runs if any(len(w) >= 8 and r.startswith(w) for w in words)]
    if named_runs or LATEST_RUN.search(request):  # "my last run" is the project's too
        found.add("run")
    if len(named_runs) >= 2:
        found.add("runs")
    if any(m.lower() in words for m in values.models):
        found |= {"model_ref", "model_name"}
    if lit.names:
        found.add("model_name")
    if lit.paths:  # a known data file is data; a new file is where output goes
        found |= {"data"} if all(p in values.data_files or p.startswith("data/") for p in lit.paths) \
            else {"data", "out"}
    if lit.overrides or said_settings(request):
        found.add("overrides")
    if lit.versions:
        found.add("version")
    if metrics_named(values.metrics, norm):
        found.add("metric")
    return found


_QUESTION = re.compile(r"^\s*(?:what|which|who|whose|how|why|when|where|did|does|do|is|are|was|were|has|have)\b",
                       re.I)


def is_question(request: str) -> bool:
    """A request asked as a question ("which versions are deployed?"), not an order: it wants a
    read. "Can you run ...?" is an order, politely."""
    return bool(_QUESTION.match(request))


def _fits_enum(request: str, props: Mapping[str, Any], keys: list[str], tools: set[str]) -> bool:
    """Whether the values the request names of this enum fit these arguments: one value named
    alone fits one argument (``step``); two, or one after "from"/"to", fit a range.

    A value that is also a tool's name ("deploy", "evaluate") named alone is that tool's
    evidence, unless the request also names the argument ("the deploy step")."""
    named = named_in_order(request, list(props[keys[0]]["enum"]))
    if len(keys) == 1:
        noun = set(tokens(keys[0])) & set(tokens(request))
        return (len(named) == 1 and range_end(request, named[0]) is None
                and (str(named[0]) not in tools or bool(noun)))
    return len(named) >= 2 or (len(named) == 1 and range_end(request, named[0]) is not None)


def _kinds(props: Mapping[str, Any]) -> list[str]:
    """The kinds of value a tool's arguments take; two run arguments (``a``, ``b``) take runs."""
    kinds = [ARG_KINDS.get(k, "") for k in props]
    return [("runs" if k == "run" and kinds.count("run") > 1 else k) for k in kinds]


#: New data named in words ("the newly labelled samples", "fresh data"): its file is still to choose.
NEW_DATA = re.compile(r"\b(?:new|newly|fresh|more|incoming|additional|extra|latest|recent)\b(?:\s+[\w-]+){0,2}?\s+"
                      r"(?:data|dataset|samples|rows|records|labels|observations|patients|cases|batch|examples)\b", re.I)


def _unfilled(request: str, props: Mapping[str, Any], required: Sequence[str], named: set[str],
              values: ProjectValues) -> int:
    """How much the request leaves open or would lose with this tool: one per required argument it
    does not name and the project cannot fill alone (no run named for a run, no new data, no
    version to promote, no model among several), and one when it states settings the tool has no
    argument for (they would be dropped)."""
    if not (values.runs or values.models):  # nothing known of the project: nothing to judge
        return 0
    count = int("overrides" in named and "overrides" not in props)
    one_run = "run" in named  # one run named fills one of a two-run tool's runs (a diff against it)
    for key, kind in zip(props, _kinds(props), strict=True):
        if kind == "runs" and one_run and key in required:
            one_run = False
            continue
        if key not in required or kind in named or (kind == "run" and RUN_PRONOUN.search(request)):
            continue
        if kind in ("run", "runs", "version") \
                or (kind == "data" and not NEW_DATA.search(request)) \
                or (kind in ("model_ref", "model_name") and len(values.models) > 1) \
                or ("enum" in props[key] and not named_in_order(request, list(props[key]["enum"]))):
            count += 1
    return count


def _structure_bonus(request: str, spec: Mapping[str, Any], named: set[str], question: bool,
                     tools: set[str], values: ProjectValues) -> float:
    """What the request's structure says for one tool: :data:`LITERAL_BONUS` per argument kind it
    spells out, per enum whose named values fit its arguments (one step, or a range of steps),
    and for a read tool when the request is a question; minus as much per required argument it
    leaves open (:func:`_unfilled`)."""
    fn = spec["function"]
    params = fn.get("parameters") or {}
    props = params.get("properties") or {}
    kinds = set(_kinds(props)) & named
    if "runs" in named:  # two runs named: a tool that takes one run holds only one of them
        kinds.discard("run")
    fits = sum(_fits_enum(request, props, keys, tools) for keys in enum_groups(props))
    reads = question and "[risk: read]" in fn.get("description", "")
    open_ = _unfilled(request, props, params.get("required") or [], named, values)
    return LITERAL_BONUS * (len(kinds) + fits + reads - open_)


def rank_tools(request: str, specs: Sequence[Mapping[str, Any]], values: ProjectValues,
               *, question: bool | None = None) -> list[Retrieved]:
    """BM25 scores plus what the request's structure says (:func:`_structure_bonus`; ``question``:
    whether to count the question cue, by default when the request is one)."""
    named = _anchors(request, values)
    question = is_question(request) if question is None else question
    by_name = {s["function"]["name"]: s for s in specs}
    # "the latest run" names a run: its "latest" is the run's value, not a list's word
    words = _unnamed_paths(LATEST_RUN.sub(" run ", request))
    for name in literals(request).names:  # "under the name penguin-clf": a value, not words
        words = words.replace(name, " ")
    ranked = [Retrieved(r.name, round(r.score + _structure_bonus(request, by_name[r.name], named, question,
                                                                 set(by_name), values), 4))
              for r in _index(specs).scores(words)]
    later = _not_meant(request, by_name, named)
    return sorted(ranked, key=lambda r: (r.name in later, -r.score))


def _unnamed_paths(request: str) -> str:
    """``request`` with each path's file name left out, its folders and extension kept: a file is
    named by its user ("data/new.csv", "outputs/train_scores.csv"), so its name's words are no
    evidence of a tool ("new" data to check for drift, a "train" step), while "data/" and ".csv" say
    it is a data file. A file without a folder ("blase.yaml") keeps its name: it is the project's."""
    for path in literals(request).paths:
        folder, _, name = path.rstrip("/").rpartition("/")
        if not folder.strip("./"):
            continue
        ext = name.rpartition(".")[2] if "." in name else ""
        request = request.replace(path, f" {folder.replace('/', ' ')} {ext} ")
    return request


#: "Retrain", "re-train", "train it again": a new pipeline run, or an update on new data.
_RETRAIN = re.compile(r"\bre-?train\w*|\btrain\w*\s+(?:\w+\s+){0,2}again\b", re.I)


def _not_meant(request: str, specs: Mapping[str, Mapping[str, Any]], named: set[str]) -> set[str]:
    """Tools a request cannot mean whatever their words' score: "retrain" that names no new data
    (no data file, no "the new samples") is a pipeline run with the settings the request states,
    never an update of the deployed model on data the model would have to guess."""
    if not _RETRAIN.search(request) or "data" in named or NEW_DATA.search(request):
        return set()
    return {name for name, spec in specs.items()
            if "data" in _kinds((spec["function"].get("parameters") or {}).get("properties") or {})}


def retrieve_specs(messages: Sequence[Any], specs: Sequence[Mapping[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` tools of ``specs`` that fit the latest human message best (for providers with
    native tool calling: all stay possible, none is filtered for lack of score)."""
    request = next((str(m.content) for m in reversed(messages) if getattr(m, "type", "") == "human"), "")
    by_name = {s["function"]["name"]: dict(s) for s in specs}
    return [by_name[r.name] for r in rank_tools(request, specs, ProjectValues())[:k]]


def _first_sentence(text: str) -> str:
    text = re.sub(r"\[risk: \w+\]\s*", "", text).strip()
    return text.split(". ")[0].rstrip(".")


_PICK_SYSTEM = ("You pick the tool that does what the user asks about their machine-learning project, "
                "or none when no tool fits (general knowledge, chat, anything else).\nTools:\n")


#: What a request asks first, after the polite words in front ("could you please email ...").
_VERB = re.compile(r"^\W*(?:(?:please|kindly|now|ok|okay|hey|hi)\W+)*(?:(?:can|could|would|will)\s+you\s+"
                   r"(?:please\s+)?|i\s+(?:want|need|would\s+like)\s+(?:you\s+)?to\s+|go\s+ahead\s+and\s+)?"
                   r"([a-z]+)", re.I)
#: Actions outside the project that no tool does: such a request gets words, whatever it names.
_OUTSIDE = frozenset(["email", "mail", "send", "forward", "upload", "post", "publish", "tweet", "share", "text",
                      "message", "call", "phone", "buy", "order", "book", "install", "download", "browse",
                      "google"])
#: "How do I ...?", "how can we ...", "how to ...": a request for instructions, not an action.
_HOW_TO = re.compile(r"^\s*how\s+(?:do|does|can|could|should|would)\s+(?:i|we|you|one)\b|^\s*how\s+to\b", re.I)


#: Asking for a text to be written ("write me a SQL query", "translate ..."): no tool writes prose
#: or code, so such a request gets words unless it names something of the project ("write the
#: predictions of data/new.csv to outputs/p.csv").
_AUTHOR = frozenset(["write", "compose", "draft", "translate", "rephrase", "paraphrase", "proofread", "code"])


def _outside(request: str, anchored: bool = False) -> str | None:
    """Why the request is about no tool whatever it names, or ``None``."""
    verb = _VERB.match(request)
    if verb and verb.group(1).lower() in _OUTSIDE - VOCAB_WORDS:  # "order my runs by f1" sorts them
        return f"none: no tool can {verb.group(1).lower()}"
    if verb and verb.group(1).lower() in _AUTHOR and not anchored:
        return f"none: no tool can {verb.group(1).lower()} a text"
    return None


def _choose(request: str, ranked: list[Retrieved], specs: Mapping[str, Mapping[str, Any]], anchored: bool,
            coverage: float, lm: ConstrainedLM, choice: Choice, trace: dict[str, Any],
            values: ProjectValues = ProjectValues()) -> str | None:
    best = ranked[0] if ranked else None
    # a question's cue only orders the tools: it never makes an off-topic question about one
    about = max((r.score for r in rank_tools(request, list(specs.values()), values, question=False)), default=0.0) \
        if ranked else 0.0
    outside = _outside(request, anchored)
    if outside:
        trace["choice"] = outside
        return None
    called = None if _HOW_TO.match(request) else _called(request, specs)
    if called is not None:
        trace["choice"] = "retrieval: the request says the tool's name"
        return called
    if best is None or (about < MIN_SCORE and not anchored):
        trace["choice"] = "none: retrieval found no tool"
        return None
    reads = "[risk: read]" in specs[best.name]["function"].get("description", "")
    if _HOW_TO.match(request) and not (reads and (anchored or coverage == 1.0)):
        trace["choice"] = "none: a question of how to do something is answered in words"
        return None
    if "[risk: destructive]" in specs[best.name]["function"].get("description", "") and not anchored \
            and not _acted_on(request, best.name, specs):
        trace["choice"] = "none: a destructive tool, and the request names nothing it acts on"
        return None
    shown = [r.name for r in ranked[:MAX_SHOWN] if r.score > 0]
    trace["shown"] = shown
    if choice == "retrieval":
        if anchored or about >= SURE_SCORE or coverage > MIN_COVERAGE:
            trace["choice"] = "retrieval"
            return best.name
        trace["choice"] = f"none: {coverage:.0%} of the request's words name anything a tool does"
        return None
    options = shown
    lines = "\n".join(f"- {n}: {_first_sentence(specs[n]['function'].get('description', ''))}" for n in options)
    picked, timing = lm.pick(_PICK_SYSTEM + lines + f"\n- {NONE}: no tool fits", request, [*options, NONE], "Tool:")
    trace["choice"] = f"model among {len(options) + 1}"
    trace.setdefault("calls", []).append({"stage": "tool", **timing})
    return None if picked == NONE else picked


#: Words that say to delete: alone, they name nothing a destructive tool acts on.
_DELETING = frozenset(tokens("delete remove wipe purge erase clear clean cleanup prune free"))


def _acted_on(request: str, tool: str, specs: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether ``request`` names something ``tool`` acts on in the tool's own words, besides a
    word for deleting: "delete old runs", "free disk space", "clean the cache" do; "delete my
    browser history" or "the files in ~/Downloads" name nothing of the project to delete."""
    index = _index(list(specs.values()))
    doc = index.docs_[index.names.index(tool)]
    return bool((set(tokens(request)) & set(doc)) - _DELETING)


def _called(request: str, specs: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The one read tool whose name holds every word of a terse request ("models?", "schema",
    "log"), however low its score: the name is what people call it. ``None`` when the words are in
    several names ("runs?") or in none; a tool that changes anything is never chosen this way."""
    words = set(tokens(request))
    fits = [name for name, spec in specs.items() if "[risk: read]" in spec["function"].get("description", "")
            and words and words <= set(tokens(name.replace("_", " ")))]
    return fits[0] if len(fits) == 1 else None


@dataclass(frozen=True)
class Pick:
    """What retrieval alone picks for a request: the tool (``None``: no tool), its risk class and
    the kinds of value its arguments take (``run``, ``model_ref`` ...)."""

    tool: str | None
    risk: str | None = None
    kinds: frozenset[str] = frozenset()


def spelled(request: str, specs: Sequence[Mapping[str, Any]], values: ProjectValues) -> str:
    """``request`` with its typos put right against the tools' words (:meth:`ToolIndex.correct`),
    the project's own names (models, columns) kept as they are, and what a step makes named as
    the end of a range to it (:func:`agent._values.restate_products`)."""
    corrected = _index(specs).correct(request, keep=[*values.models, *values.columns])
    return restate_products(corrected)


def retrieval_pick(request: str, specs: Sequence[Mapping[str, Any]], values: ProjectValues) -> Pick:
    """The tool retrieval alone picks for ``request`` (no model is asked)."""
    request = spelled(request, specs, values)
    by_name = {s["function"]["name"]: s for s in specs}
    ranked = rank_tools(request, specs, values)
    name = _choose(request, ranked, by_name, bool(_anchors(request, values)), _index(specs).coverage(request),
                   None, "retrieval", {}, values)  # type: ignore[arg-type]  # the retrieval policy never asks a model
    if name is None:
        return Pick(None)
    fn = by_name[name]["function"]
    risk = re.match(r"\[risk: (\w+)\]", fn.get("description", ""))
    props = (fn.get("parameters") or {}).get("properties") or {}
    return Pick(name, risk.group(1) if risk else None, frozenset(ARG_KINDS.get(k, "") for k in props) - {""})


def _arg_schema(prop: Mapping[str, Any], allowed: list[Any] | None) -> dict[str, Any]:
    if allowed is None:
        keep = {k: v for k, v in prop.items() if k in ("type", "items", "minimum", "maximum", "minItems", "maxItems", "enum")}
        return keep or {"type": "string"}
    if prop.get("type") == "array":
        if allowed and isinstance(allowed[0], list):  # whole lists the request spelled out
            return {"enum": allowed}
        items = {"type": "string", "enum": list(dict.fromkeys(allowed))}
        return {"type": "array", "items": items, "minItems": prop.get("minItems", 1),
                "maxItems": min(prop.get("maxItems", 4), 4)}
    return {"type": prop.get("type", "string"), "enum": list(dict.fromkeys(allowed))}


def _arguments(request: str, spec: Mapping[str, Any], values: ProjectValues, lm: ConstrainedLM,
               trace: dict[str, Any]) -> dict[str, Any]:
    fn = spec["function"]
    params = fn.get("parameters") or {}
    grounding: Grounding = ground(request, params, values)
    trace["fixed"] = sorted(grounding.fixed)
    if grounding.complete:
        return dict(grounding.fixed)
    props = params.get("properties") or {}
    open_props = {k: _arg_schema(props[k], v) for k, v in grounding.choices.items()}
    schema = {"type": "object", "properties": open_props, "required": list(open_props),
              "additionalProperties": False}
    lines = "\n".join(f"- {k}: {props[k].get('description', '')}" for k in open_props)
    known = ", ".join(f"{k}={json.dumps(v)}" for k, v in grounding.fixed.items())
    system = (f"Write the JSON arguments of the tool {fn['name']} for the user's request.\n"
              f"{_first_sentence(fn.get('description', ''))}.\nArguments:\n{lines}"
              + (f"\nAlready set: {known}" if known else ""))
    generated, timing = lm.json(system, request, schema)
    trace.setdefault("calls", []).append({"stage": "arguments", **timing})
    trace["generated"] = sorted(generated)
    return {**grounding.fixed, **generated}


def decide_call(request: str, specs: Sequence[Mapping[str, Any]], values: ProjectValues, lm: ConstrainedLM,
                *, choice: Choice = "retrieval", force: str | None = None) -> Decision:
    """The tool call (or none) for ``request`` among the tools ``specs`` (``force``: this tool,
    only its arguments are decided)."""
    started = time.perf_counter()
    trace: dict[str, Any] = {"policy": choice}
    corrected = spelled(request, specs, values)
    if corrected != request:
        trace["spelled"] = request = corrected
    by_name = {s["function"]["name"]: s for s in specs}
    ranked = rank_tools(request, specs, values)
    trace["retrieved"] = [[r.name, r.score] for r in ranked[:MAX_SHOWN] if r.score > 0]
    anchored = bool(_anchors(request, values))
    coverage = _index(specs).coverage(request)
    if force is not None and force in by_name:
        tool: str | None = force
        trace["choice"] = "forced"
    else:
        tool = _choose(request, ranked, by_name, anchored, coverage, lm, choice, trace, values)
    args = _arguments(request, by_name[tool], values, lm, trace) if tool else {}
    trace["seconds"] = round(time.perf_counter() - started, 3)
    return Decision(tool, args, trace)


# ---------------------------------------------------------------------- llama.cpp


def chatml(system: str, user: str, prefix: str = "") -> str:
    """A ChatML prompt (SmolLM2's template) ending in the assistant's turn and ``prefix``."""
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            f"<|im_start|>assistant\n{prefix}")


class LlamaConstrained:
    """:class:`ConstrainedLM` over a ``llama_cpp.Llama``: GBNF grammars, greedy decoding."""

    def __init__(self, llama: Any) -> None:
        self.llama = llama

    def complete(self, prompt: str, *, grammar: Any = None, max_tokens: int = 64,
                 stop: Sequence[str] = ("<|im_end|>",), repeat_penalty: float = 1.0) -> tuple[str, dict[str, Any]]:
        """Greedy completion of ``prompt``, streamed to time its first token."""
        started = time.perf_counter()
        first = None
        parts = []
        for chunk in self.llama.create_completion(prompt, max_tokens=max_tokens, temperature=0.0, grammar=grammar,
                                                  stop=list(stop), stream=True,
                                                  repeat_penalty=repeat_penalty):
            if first is None:
                first = time.perf_counter() - started
            parts.append(chunk["choices"][0]["text"])
        seconds = time.perf_counter() - started
        timing = {"prompt_tokens": len(self.llama.tokenize(prompt.encode("utf-8"), special=True)),
                  "output_tokens": len(parts), "first_token_s": round(first if first is not None else seconds, 3),
                  "seconds": round(seconds, 3)}
        return "".join(parts), timing

    def pick(self, system: str, user: str, options: Sequence[str], prefix: str) -> tuple[str, dict[str, Any]]:
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_string('root ::= " " (' + " | ".join(json.dumps(o) for o in options) + ")",
                                           verbose=False)
        text, timing = self.complete(chatml(system, user, prefix), grammar=grammar, max_tokens=16)
        text = text.strip()
        return (text if text in options else options[-1]), timing

    def json(self, system: str, user: str, schema: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        text, timing = self.complete(chatml(system, user), grammar=grammar, max_tokens=160)
        return _object(text), timing

    def answer(self, system: str, user: str) -> tuple[str, dict[str, Any]]:
        text, timing = self.complete(chatml(system, user), max_tokens=60, repeat_penalty=1.3)
        return text.strip(), timing


def _object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:  # cut at max_tokens: the grammar allows nothing else
        return {}
    return value if isinstance(value, dict) else {}


class OpenAIConstrained:
    """:class:`ConstrainedLM` over an OpenAI-compatible server with structured output
    (``response_format`` of type ``json_schema``, strict): OpenAI, vLLM, llama.cpp's server,
    recent Ollama."""

    def __init__(self, client: Any, model: str) -> None:
        self.client = client
        self.model = model

    def _ask(self, system: str, user: str, schema: Mapping[str, Any] | None, name: str) -> tuple[str, dict[str, Any]]:
        started = time.perf_counter()
        request: dict[str, Any] = {"model": self.model, "temperature": 0,
                                   "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
        if schema is not None:
            request["response_format"] = {"type": "json_schema",
                                          "json_schema": {"name": name, "strict": True, "schema": dict(schema)}}
        response = self.client.chat.completions.create(**request)
        usage = response.usage
        seconds = round(time.perf_counter() - started, 3)
        timing = {"prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                  "output_tokens": getattr(usage, "completion_tokens", 0) or 0, "first_token_s": seconds,
                  "seconds": seconds}
        return response.choices[0].message.content or "", timing

    def pick(self, system: str, user: str, options: Sequence[str], prefix: str) -> tuple[str, dict[str, Any]]:
        schema = {"type": "object", "properties": {"tool": {"type": "string", "enum": list(options)}},
                  "required": ["tool"], "additionalProperties": False}
        text, timing = self._ask(system, user, schema, "tool_choice")
        picked = _object(text).get("tool")
        return (picked if picked in options else options[-1]), timing

    def json(self, system: str, user: str, schema: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        text, timing = self._ask(system, user, schema, "arguments")
        return _object(text), timing

    def answer(self, system: str, user: str) -> tuple[str, dict[str, Any]]:
        text, timing = self._ask(system, user, None, "answer")
        return text.strip(), timing
