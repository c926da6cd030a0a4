"""The runner gives back, between steps, the memory the earlier steps of the same process left."""

from __future__ import annotations

import re
import sys

import pytest

from blase.pipeline import Pipeline
from blase.track import load_run


def _budget(project, memory: str):
    text = project.config_path.read_text()
    project.config_path.write_text(re.sub(r"(?m)^memory:.*$", f"memory: {memory}", text, count=1))
    return project


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the heap and file pages are given back on Linux")
def test_steps_after_the_first_start_from_what_the_earlier_ones_gave_back(project):
    """Under a tight budget the process holds more than an eighth of it between steps: each
    step after the first starts once the runner has given memory back (what that frees is
    tested in tests/test_resources.py), the step's record and the tracked run say how much,
    and transform and prepare then run DuckDB again from code pages read back."""
    result = Pipeline(_budget(project, "256MB")).run(to_step="prepare")
    assert "memory_release" not in result.steps["extract"].details  # nothing ran before it
    for step in ("transform", "prepare"):
        released = result.steps[step].details["memory_release"]
        assert set(released["actions"]) >= {"gc", "arrow_pool", "malloc_trim", "pageout_file_pages"}
        assert released["released"] == max(0, released["rss_before"] - released["rss_after"])
        assert released["rss_after"] <= released["rss_before"] + (4 << 20)  # noise of other threads at most
        assert result.steps[step].rows_out > 0
    recorded = {e["data"]["step"]: e["data"] for e in load_run(result.run_id, [project.root]).event_list
                if e["event"] == "step"}
    assert recorded["prepare"]["details"]["memory_release"] == result.steps["prepare"].details["memory_release"]


def test_a_roomy_budget_gives_nothing_back(project):
    """Leftovers that are a small share of the budget are left where they are (releasing costs
    time, and the next step reads the pages back)."""
    result = Pipeline(_budget(project, "1TB")).run(to_step="transform")
    assert all("memory_release" not in r.details for r in result.steps.values())
