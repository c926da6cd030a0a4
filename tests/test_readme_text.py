"""The README tells the truth a new user needs before their first command."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_cpu_torch_tip_comes_before_the_first_install_command():
    quickstart = README[README.index("## Quickstart"):]
    tip = quickstart.find("pip install torch --index-url\nhttps://download.pytorch.org/whl/cpu")
    if tip < 0:
        tip = quickstart.find("pip install torch --index-url https://download.pytorch.org/whl/cpu")
    assert 0 <= tip < quickstart.index("pip install -e . && blase demo")


def test_no_placeholders_or_pointers_to_files_that_are_not_there():
    assert "BENCH_TABLES" not in README
    root = Path(__file__).resolve().parents[1]
    if not (root / "DESIGN.md").exists():
        assert "DESIGN.md" not in README


def test_regression_is_mentioned_with_its_metrics():
    intro = README[: README.index("## Quickstart")]
    assert "regression" in intro and "R2" in intro
