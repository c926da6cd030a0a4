"""Release metadata: the licence, the changelog and the README's badges agree with the package."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from blase import __version__

ROOT = Path(__file__).resolve().parents[1]


def _badges_module():
    spec = importlib.util.spec_from_file_location("badges", ROOT / ".ci" / "badges.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_badges_match_the_metadata():
    expected = _badges_module().badges()
    for name, text in expected.items():
        path = ROOT / ".github" / "badges" / name
        assert path.is_file() and path.read_text() == text, f"{path} is stale: run `python .ci/badges.py`"
        assert f"](.github/badges/{name})" in (ROOT / "README.md").read_text()
    assert f">{__version__}<" in expected["version.svg"]
    assert ">Apache-2.0<" in expected["license.svg"]


def test_license_is_the_apache_2_text_pyproject_names():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert 'license = "Apache-2.0"' in (ROOT / "pyproject.toml").read_text()


def test_changelog_has_unreleased_and_this_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.M)
    assert headings[0] == "Unreleased" and __version__ in headings
    for heading in headings:  # every section links to its diff or release
        assert re.search(rf"^\[{re.escape(heading)}\]: https://", text, re.M), heading
