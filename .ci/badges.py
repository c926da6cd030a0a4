"""Write the README's badges (static SVGs, no external service) from the package's metadata.

``python .ci/badges.py`` rewrites ``.github/badges/{version,license,python}.svg`` from
``blase/_version.py`` and ``pyproject.toml``; ``tests/test_release.py`` fails when a committed
badge differs from what this script would write (run it after a version bump).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from xml.sax.saxutils import escape

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / ".github" / "badges"
#: Width of a character in the 11px Verdana the badge's text uses, roughly (shields' layout).
CHAR_PX = 7


def badge(label: str, value: str, color: str) -> str:
    """A flat two-part badge, ``label | value``, as shields.io draws one."""
    lw, vw = 10 + CHAR_PX * len(label), 10 + CHAR_PX * len(value)
    width = lw + vw
    label, value = escape(label), escape(value)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{label}: {value}">\n'
        f"  <title>{label}: {value}</title>\n"
        f'  <rect width="{lw}" height="20" fill="#555"/>\n'
        f'  <rect x="{lw}" width="{vw}" height="20" fill="{color}"/>\n'
        '  <g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">\n'
        f'    <text x="{lw / 2}" y="14">{label}</text>\n'
        f'    <text x="{lw + vw / 2}" y="14">{value}</text>\n'
        "  </g>\n</svg>\n"
    )


def badges() -> dict[str, str]:
    """File name -> SVG text, from the metadata of this checkout."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    version = re.search(r'__version__ = "([^"]+)"', (ROOT / "blase" / "_version.py").read_text()).group(1)
    pythons = [c.rsplit(" :: ", 1)[1] for c in meta["classifiers"]
               if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    return {
        "version.svg": badge("version", version, "#007ec6"),
        "license.svg": badge("license", meta["license"], "#97ca00"),
        "python.svg": badge("python", " | ".join(pythons), "#3776ab"),
    }


def main() -> int:
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name, text in badges().items():
        (FOLDER / name).write_text(text)
        print(f"wrote {FOLDER / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
