"""The versioned on-disk formats: each file Blase writes says which format it is in.

A reader accepts its current format and every earlier one (a file without the key is format
0, what Blase wrote before formats were numbered) and refuses a later one with a message that
says to upgrade Blase. ``blase upgrade`` brings a project's files to the current formats;
``tests/fixtures/formats/`` holds files written by each released format, which must keep reading.

| format | file | key |
| --- | --- | --- |
| config | ``blase.yaml`` | ``version`` |
| run | ``runs/RUN/meta.json`` | ``format`` |
| store_entry | ``.blase/store/steps/KEY/entry.json`` | ``format`` (a cache: another format is a miss) |
| package | ``models/NAME/vN/package.json`` | ``package_version`` |
| profile | ``models/NAME/vN/reference_profile.json`` | ``version`` |
| transform | ``transform.json`` (in a package and the step store) | ``version`` |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blase.errors import BlaseError

__all__ = ["FORMATS", "Format", "FormatError", "check_format"]


class FormatError(BlaseError):
    """A file is in a format this Blase cannot read (written by a newer one, or not a number)."""


@dataclass(frozen=True)
class Format:
    name: str
    file: str
    key: str
    current: int


FORMATS = {f.name: f for f in (
    Format("config", "blase.yaml", "version", 1),
    Format("run", "runs/RUN/meta.json", "format", 1),
    Format("store_entry", ".blase/store/steps/KEY/entry.json", "format", 2),
    Format("package", "models/NAME/vN/package.json", "package_version", 1),
    Format("profile", "models/NAME/vN/reference_profile.json", "version", 1),
    Format("transform", "transform.json", "version", 1),
)}


def check_format(name: str, found: Any, where: str) -> int:
    """The format number of a file (0 when ``found`` is None), refusing one this Blase cannot read."""
    fmt = FORMATS[name]
    if found is None:
        return 0
    if isinstance(found, bool) or not isinstance(found, int) or found < 0:
        raise FormatError(f"{where}: {fmt.key} {found!r} is not a format number",
                          hint=f"this Blase writes {fmt.key}: {fmt.current}")
    if found > fmt.current:
        raise FormatError(
            f"{where} is in {fmt.name} format {found}, written by a newer Blase; this one reads up to {fmt.current}",
            hint="upgrade Blase (pip install -U blase) to read it",
        )
    return found
