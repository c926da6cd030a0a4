"""Cut a plain CSV file into byte ranges at line starts, for tasks that read a range each.

A range is read as the file's preamble (its skipped lines and header) followed by the range's
lines (:func:`blase._sample.csv_excerpt`, the monitor's sampler's way), with the file's pinned
dialect and column types: the same rows as the whole file gives, in the same order, provided
every line start is a row start. That holds unless a quoted field holds a line break, so the
cut is refused for a file where any line holds an odd number of quote characters (a quoted
field spans lines, or a stray quote makes it impossible to tell), where an escape character
other than the quote occurs (an escaped quote does not close a field), and for compressed
files, rows ended by ``\\r`` alone and encodings other than UTF-8 and Latin-1 (a line break is
not the byte ``\\n`` there). The check reads the file once, in blocks; a block without a quote
character costs two byte counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blase.extract._csv import CSVPlan

__all__ = ["CutRefused", "line_spans", "preamble_lines", "splittable"]

_BLOCK = 8 << 20
_BYTE_ENCODINGS = ("utf-8", "utf8", "latin-1", "latin1", "iso-8859-1")


class CutRefused(Exception):
    """Why a file cannot be cut at line starts (the message says it, for the step's warning)."""


def _literal(plan: CSVPlan, key: str, default: str) -> str:
    """A ``read_csv`` argument of the plan as the string it quotes (``'"'`` -> ``"``)."""
    sql = plan.args.get(key)
    return default if sql is None else sql[1:-1].replace("''", "'")


def preamble_lines(plan: CSVPlan) -> int:
    """Lines before the first row: the skipped ones, then the header."""
    return int(plan.args.get("skip", "0")) + (1 if plan.args.get("header") == "true" else 0)


def splittable(plan: CSVPlan, compression: str | None) -> str | None:
    """Why no file read with ``plan`` can be cut at line starts; None when one may be."""
    if compression or _literal(plan, "compression", "auto") not in ("auto", "none"):
        return "a compressed file is read whole"
    if _literal(plan, "encoding", "utf-8").lower() not in _BYTE_ENCODINGS:
        return f"its encoding {_literal(plan, 'encoding', 'utf-8')} does not end lines with the byte \\n"
    if _literal(plan, "new_line", "\\n") == "\\r":
        return "its rows end with \\r alone"
    return None


def line_spans(path: Path, plan: CSVPlan, target: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]``: the rows of ``path`` (after its preamble) in byte ranges of
    about ``target`` bytes, each from a line start to the next range's start (the last to the
    end of the file). Raises :class:`CutRefused` when a line start may not be a row start."""
    import numpy as np

    quote = _literal(plan, "quote", '"').encode("latin-1")
    escape = _literal(plan, "escape", '"').encode("latin-1")
    size = path.stat().st_size
    spans: list[tuple[int, int]] = []
    with open(path, "rb") as f:
        preamble = b"".join(f.readline() for _ in range(preamble_lines(plan)))
        start = pos = f.tell()
        line = preamble.count(b"\n") + 1  # of the block's first byte
        odd = bool(quote) and preamble.count(quote) % 2 == 1
        while block := f.read(_BLOCK):
            if escape and escape != quote and (at := block.find(escape)) >= 0:
                bad = line + block.count(b"\n", 0, at)
                raise CutRefused(f"quotes are escaped with {escape.decode('latin-1')} (line {bad})")
            if quote and quote in block:
                data = np.frombuffer(block, dtype=np.uint8)
                ends = np.flatnonzero(data == 10)
                # the quotes before each line break, mod 2 (a uint8 count wraps at 256: even)
                parity = (np.cumsum(data == quote[0], dtype=np.uint8)[ends] + odd) & 1
                if parity.any():
                    bad = line + int(np.argmax(parity != 0))
                    raise CutRefused(f"a quoted field spans lines, or a line holds an odd number of "
                                     f"{quote.decode('latin-1')} (line {bad})")
                odd = bool((block.count(quote) + odd) % 2)
            elif odd and b"\n" in block:
                raise CutRefused(f"a quoted field spans lines (line {line})")
            while start + target < pos + len(block):
                at = block.find(b"\n", max(0, start + target - pos))
                if at < 0:
                    break  # the line goes on into the next block
                cut = pos + at + 1
                if cut >= size:
                    break
                spans.append((start, cut))
                start = cut
            line += block.count(b"\n")
            pos += len(block)
    spans.append((start, size))
    return spans
