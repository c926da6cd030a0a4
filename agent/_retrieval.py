"""Which tools a request is about: BM25 over each tool's name, description, argument
descriptions and a few words people use for it.

Small models pick worse as the tool list grows, so a turn shows the model only the tools
that fit the request (at most :data:`MAX_SHOWN`). The index is lexical and built from the
tool registry in milliseconds: nothing is downloaded or loaded at run time. Its scores also
gate the "no tool" choice: a request that shares no meaningful word with any tool (a
haiku, the capital of France) gets no tool shown at all.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_SHOWN", "MIN_SCORE", "NUMBER_WORDS", "VOCAB_WORDS", "Retrieved", "ToolIndex", "tokens"]

#: The most tools a turn shows the model.
MAX_SHOWN = 8
#: Below this best score a request is about no tool (set on the development set in
#: tests/test_agent_retrieval.py, never on the eval suite).
MIN_SCORE = 2.0

_STOP = frozenset(["a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "from", "with", "and", "or", "but", "not", "no", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did", "done", "doing", "this", "that", "these", "those", "it", "its", "me", "my", "i", "you", "your", "we", "our", "us", "he", "she", "they", "them", "their", "what", "which", "who", "whom", "how", "why", "when", "where", "there", "here", "can", "could", "would", "should", "will", "shall", "may", "might", "must", "please", "show", "tell", "give", "let", "make", "get", "got", "want", "need", "know", "see", "some", "any", "all", "each", "every", "one", "only", "also", "just", "about", "into", "over", "than", "then", "so", "as", "if", "up", "out", "new", "now", "again", "more", "most", "very", "s", "t",
                   # fillers: how people ask, not what they ask for ("pull up", "at the moment")
                   "pull", "bring", "display", "fetch", "open", "view", "use", "using", "used", "moment", "currently", "right",
                   "yet", "still", "already", "quick", "quickly", "thanks", "thank", "okay", "ok", "hey", "hi",
                   "like", "would", "ll", "ve", "re", "don", "doesn", "didn", "won", "anything", "something",
                   "everything", "nothing", "else", "thing", "things", "bit", "end", "ended", "happen", "try",
                   # greetings and courtesy: a polite request is not about other things ("good morning,
                   # could you kindly ... thank you so much")
                   "hello", "morning", "afternoon", "evening", "dear", "kindly", "much", "lot", "lots",
                   "sorry", "cheers", "appreciate", "appreciated", "grateful", "thx", "pls", "plz", "wondering"])

#: "Good morning": a greeting, where "good" is no word of the request.
_TIMES_OF_DAY = frozenset(["morning", "afternoon", "evening", "day", "night"])

#: Numbers in words: a count, like a digit, is no evidence of a tool ("the five most recent runs").
NUMBER_WORDS = {w: n for n, w in enumerate(
    ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"])}

#: Words people use for a tool that its description does not say (synonyms, not requests).
_VOCAB: Mapping[str, str] = {
    "list_runs": "overview runs history experiments recent newest latest last failed finished status sort rank order best top table",
    "inspect_run": "run details detail summary params hyperparameters metrics scores results artifacts error wrong info",
    "read_run_log": "log logs events event tail last lines happened failure step_failed trace",
    "compare_runs": "compare comparison side versus vs metrics better worse between",
    "diff_runs": "diff difference differences different why changed change between hashes versus setup",
    "preview_data": "preview rows lines head first peek look columns file csv parquet sample table data",
    "suggest_schema": "schema column kinds types label target profile infer suggest recommend propose features dataset",
    "show_config": "config configuration configured settings yaml blase.yaml setup",
    "list_models": "models deployed versions current serving registry production",
    "check_drift": "drift shift distribution changed new data retrain recommendation monitor",
    "run_step": "step only single train transform prepare extract evaluate run once rerun redo training extraction transformation preparation",
    "run_pipeline": "pipeline run whole full again retrain train override overrides seed epochs rerun extraction transformation preparation start begin stop finish onwards",
    "evaluate": "evaluate evaluation test split score accuracy metrics assess",
    "reproduce": "reproduce rerun replay identical same verify determinism reproducible",
    "deploy": "deploy package release ship version new version model",
    "predict": "predict predictions score scoring inference infer apply write output",
    "trigger_update": "update finetune fine tune retrain new labelled labeled data incremental",
    "promote": "promote current make switch serve production live activate version",
    "rollback": "rollback roll back revert previous undo version before",
    "gc": "gc garbage collect clean cleanup cache delete remove wipe purge erase clear free disk space prune keep",
}


#: Every word of :data:`_VOCAB`: the words people use for some tool ("order" runs by a metric).
VOCAB_WORDS = frozenset(w for words in _VOCAB.values() for w in words.split())

#: Common words that are still evidence because a tool's own vocabulary lists them ("make" ...
#: current, "only" one step, run "again"): dropping them would silently delete those synonyms.
_SKIPPED = _STOP - VOCAB_WORDS


#: Irregular forms whose stem is not a suffix away ("ran" is what "run" says in the past).
_IRREGULAR = {"ran": "run", "reran": "rerun", "began": "begin", "chose": "choose", "made": "make", "built": "build",
              "wrote": "write", "went": "go"}


def _stem(word: str) -> str:
    """A light stemmer that gives every form of a word the same stem: ``compare``, ``compared``,
    ``comparing`` and ``compares`` all give ``compar``; ``running`` gives ``run``."""
    word = _IRREGULAR.get(word, word)
    if len(word) > 6 and word.endswith("ly"):  # recently -> recent, newly -> newly
        word = word[:-2]
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # running -> run, stopped -> stop (not roll, pass)
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def tokens(text: str) -> list[str]:
    """Lower-case word stems of ``text`` without stop words; ``fine-tune`` and ``roll back``
    also give ``finetune`` and ``rollback``, and ``snake_case`` names give their parts."""
    # every tool is Blase's: its name alone says nothing of which one ("how do I use blase?"), unlike
    # the project's file blase.yaml
    text = re.sub(r"\bblase\b(?!\.ya?ml)", " ", text.lower())
    words = re.findall(r"[a-z0-9]+(?:[_-][a-z0-9]+)*", text)
    out = []
    for w in words:
        parts = re.split(r"[_-]", w)
        if len(parts) > 1:
            out.append("".join(parts))
        out += parts
    joined = [a + b for a, b in itertools.pairwise(words) if a in ("roll", "fine", "garbage")]
    out = [w for w, after in zip(out, [*out[1:], ""], strict=True) if not (w == "good" and after in _TIMES_OF_DAY)]
    return [_stem(w) for w in out + joined
            if w not in _SKIPPED and w not in NUMBER_WORDS and not w.isdigit() and len(w) > 1]


@dataclass(frozen=True)
class Retrieved:
    """A tool and its score for one request."""

    name: str
    score: float


class ToolIndex:
    """BM25 (k1=1.2, b=0.75) over one document per tool.

    Parameters
    ----------
    schemas:
        OpenAI-style function specs (``{"type": "function", "function": {...}}``).
    vocab:
        Extra words per tool name (default: :data:`_VOCAB`).
    """

    k1 = 1.2
    b = 0.5

    def __init__(self, schemas: Sequence[Mapping[str, Any]], vocab: Mapping[str, str] | None = None) -> None:
        self.schemas = list(schemas)
        vocab = _VOCAB if vocab is None else vocab
        self.names = [s["function"]["name"] for s in self.schemas]
        self.docs_ = [Counter(tokens(_document(s["function"], vocab.get(s["function"]["name"], ""))))
                      for s in self.schemas]
        n = len(self.docs_)
        df = Counter(t for d in self.docs_ for t in d)
        self.idf_ = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.avgdl_ = sum(sum(d.values()) for d in self.docs_) / max(n, 1)
        # the words people spell when they ask for a tool (before stemming), to put typos right
        self.words_ = frozenset(w for s in self.schemas
                                for w in re.findall(r"[a-z]+", _document(s["function"], vocab.get(s["function"]["name"], "")).lower())
                                ) | _STOP | frozenset(NUMBER_WORDS)

    def correct(self, text: str, keep: Iterable[str] = ()) -> str:
        """``text`` with each misspelt word ("shwo", "modles", "pipline") replaced by the tool word
        one edit away (a swap of two letters; for words of five letters or more also one letter
        missing, extra or wrong). Words the tools know, ``keep`` (the project's own names) and
        paths, ids and ``KEY=VALUE`` parts are left as they are."""
        kept = {k.lower() for k in keep}

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            low = word.lower()
            if low in self.words_ or low in kept or _stem(low) in self.idf_:
                return word
            return _one_edit(low, self.words_) or word

        return re.sub(r"(?<![\w./@=-])[A-Za-z]{4,}(?![\w./@=-])", fix, text)

    def scores(self, request: str) -> list[Retrieved]:
        """Every tool with its score for ``request``, best first (ties: registry order)."""
        query = set(tokens(request))
        out = []
        for name, doc in zip(self.names, self.docs_, strict=False):
            length = sum(doc.values())
            score = 0.0
            for term in query:
                tf = doc.get(term, 0)
                if tf:
                    norm = tf + self.k1 * (1 - self.b + self.b * length / self.avgdl_)
                    score += self.idf_[term] * tf * (self.k1 + 1) / norm
            out.append(Retrieved(name, round(score, 4)))
        return sorted(out, key=lambda r: -r.score)

    def coverage(self, request: str) -> float:
        """Share of the request's words that some tool's document has (0 for no words): a
        request mostly in words no tool knows is about something else."""
        query = set(tokens(request))
        return sum(t in self.idf_ for t in query) / len(query) if query else 0.0

    def retrieve(self, request: str, k: int = MAX_SHOWN, min_score: float = MIN_SCORE) -> list[Retrieved]:
        """The ``k`` best tools for ``request``; none when even the best scores under ``min_score``."""
        ranked = self.scores(request)
        if not ranked or ranked[0].score < min_score:
            return []
        return [r for r in ranked[:k] if r.score > 0]

    def shown(self, request: str, k: int = MAX_SHOWN, min_score: float = MIN_SCORE) -> list[dict[str, Any]]:
        """The specs of the tools :meth:`retrieve` picks, in score order."""
        by_name = dict(zip(self.names, self.schemas, strict=False))
        return [by_name[r.name] for r in self.retrieve(request, k, min_score)]


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _one_edit(word: str, known: frozenset[str]) -> str | None:
    """The known word (four letters or more) one edit from ``word``: two neighbours swapped
    ("shwo", "modles"); in words of six letters or more a letter missing or extra ("happend",
    "pipline"); in words of seven or more a wrong letter ("evaluste"). Shorter words get fewer
    edits because more real words lie one edit from each other ("least" is not "last")."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    edits = [[a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1]]
    if len(word) >= 6:
        edits += [[a + c + b for a, b in splits for c in _LETTERS] + [a + b[1:] for a, b in splits if b]]
    if len(word) >= 7:
        edits += [[a + c + b[1:] for a, b in splits if b for c in _LETTERS]]
    for group in edits:
        found = sorted({w for w in group if w in known and len(w) >= 4})
        if found:
            return found[0]
    return None


def _document(fn: Mapping[str, Any], extra: str) -> str:
    props = (fn.get("parameters") or {}).get("properties") or {}
    args = " ".join(f"{k} {v.get('description', '')} {' '.join(map(str, v.get('enum', [])))}"
                    for k, v in props.items())
    description = re.sub(r"\[risk: \w+\]", "", fn.get("description", ""))
    # the name counts three times: it is the strongest evidence of what a tool does
    return " ".join([fn["name"]] * 3 + [description, args, extra])


def names_of(specs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Tool names of OpenAI-style specs."""
    return [s["function"]["name"] for s in specs]
