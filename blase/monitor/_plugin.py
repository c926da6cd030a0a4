"""Drift-test plugins: a test of one column kind chosen in ``monitor.tests``.

A ``drift_test`` plugin's target is a :class:`DriftTest` subclass::

    class MeanShift(DriftTest):
        name = "meanshift"
        kinds = ("numeric",)
        config_model = MeanShiftOptions        # its options, inline in monitor.tests

        def test(self, reference, current, *, seed):
            shift = abs(current.values.mean() - reference.values.mean())
            return DriftOutcome(statistic=shift, drifted=shift > self.options.limit,
                                threshold=self.options.limit)

``monitor: {tests: {numeric: meanshift}}`` makes it decide the drift of every numeric input
column (``categorical`` for text and boolean ones; ``auto`` keeps the built-in choice). The
test gets each side's non-null values (a sample: the reference keeps up to 1,000, the new
data up to ``monitor.sample_rows``) and its counts per key (bins of the reference's grid,
or categories). Its verdict is reported in the monitor table, the HTML report and the Track
run as the built-in tests' are; a null rate that moves still counts as drift beside it.
"""

from __future__ import annotations

import math
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel

from blase.errors import MonitorError

if TYPE_CHECKING:
    from blase.plugins import Plugin, PluginSet

__all__ = ["KINDS", "DriftOutcome", "DriftSample", "DriftTest", "chosen_tests", "load_test_class", "outcome_problem",
           "run_test"]

#: The column kinds a drift test can be chosen for.
KINDS = ("numeric", "categorical")


@dataclass(frozen=True)
class DriftSample:
    """One side of a comparison: a column of the reference or of the new data."""

    column: str
    kind: str
    #: Non-null values: float64 for numbers, text (an object array) for categories.
    values: np.ndarray
    #: Rows per key: bin centres (numbers) or categories, over all rows of that side.
    counts: dict[Any, float] = field(default_factory=dict)
    #: True when :attr:`values` holds every non-null value, not a sample.
    complete: bool = False


@dataclass(frozen=True)
class DriftOutcome:
    """A drift test's verdict: its statistic, a p-value when it has one, and the decision."""

    statistic: float
    drifted: bool
    threshold: float
    p_value: float | None = None
    note: str | None = None


class DriftTest(ABC):
    """Base class of a ``drift_test`` plugin.

    Class attributes
    ----------------
    name:
        The plugin's name (``monitor.tests.numeric: NAME``).
    kinds:
        The column kinds it can test (``"numeric"``, ``"categorical"``).
    config_model:
        The pydantic model of its options (inline in ``monitor.tests``), ``extra="forbid"``;
        None: it takes none. The validated options are :attr:`options`.
    """

    name: ClassVar[str] = ""
    kinds: ClassVar[tuple[str, ...]] = KINDS
    config_model: ClassVar[type[BaseModel] | None] = None

    def __init__(self, options: BaseModel | None = None) -> None:
        self.options = options

    @abstractmethod
    def test(self, reference: DriftSample, current: DriftSample, *, seed: int) -> DriftOutcome:
        """Compare ``current`` with ``reference``; the same inputs and ``seed`` must give the
        same outcome. Never called with an empty side."""


def load_test_class(plugin: Plugin) -> type[DriftTest]:
    """The plugin's :class:`DriftTest` subclass, checked against its manifest."""
    return plugin.load_class(DriftTest)


def chosen_tests(config: Any, plugins: PluginSet | None, config_path: Any = None) -> dict[str, tuple[Plugin, DriftTest]]:
    """``{kind: (plugin, test)}`` for the kinds ``monitor.tests`` gives a plugin."""
    from blase.config import options_model, validate_plugin_options
    from blase.plugins import PluginError

    out: dict[str, tuple[Plugin, DriftTest]] = {}
    for kind, choice in dict(getattr(config, "tests", {}) or {}).items():
        if choice.test == "auto":
            continue
        if plugins is None:
            from blase.plugins import plugin_set

            plugins = plugin_set()
        plugin = plugins.require("drift_test", choice.test, used_by=f"monitor.tests.{kind}")
        cls = load_test_class(plugin)
        if kind not in cls.kinds:
            raise PluginError(f"monitor.tests.{kind} names {plugin.label}, which tests {', '.join(cls.kinds)} "
                              "columns only", hint=f"choose another test for {kind} columns, or auto")
        options = validate_plugin_options(options_model(cls), choice.options, at=("monitor", "tests", kind),
                                          what=plugin.label, config_path=config_path)
        out[kind] = (plugin, cls(options if cls.config_model is not None else None))
    return out


def run_test(plugin: Plugin, test: DriftTest, reference: DriftSample, current: DriftSample) -> DriftOutcome:
    """Run one test, its failures and malformed outcomes as a :class:`MonitorError` naming
    the plugin and the column."""
    seed = zlib.crc32(reference.column.encode("utf-8"))
    try:
        outcome = test.test(reference, current, seed=seed)
    except Exception as exc:  # the plugin broke: say which plugin, on which column
        raise MonitorError(f"{plugin.label} failed on column {reference.column!r}: {type(exc).__name__}: {exc}",
                           hint="fix the plugin, or set monitor.tests back to auto for "
                                f"{reference.kind} columns") from exc
    problem = outcome_problem(outcome)
    if problem:
        raise MonitorError(f"{plugin.label} on column {reference.column!r}: {problem}",
                           hint="a DriftTest.test returns DriftOutcome(statistic=..., drifted=..., threshold=...)")
    return outcome


def outcome_problem(outcome: Any) -> str | None:
    """What is wrong with a test's outcome (None: it is a valid :class:`DriftOutcome`)."""
    if not isinstance(outcome, DriftOutcome):
        return f"returned {type(outcome).__name__}, not a DriftOutcome"
    for name in ("statistic", "threshold"):
        value = getattr(outcome, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(float(value)):
            return f"its {name} is {value!r}, not a number"
    p = outcome.p_value
    if p is not None and (not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0):
        return f"its p_value is {p!r}, not a probability"
    if not isinstance(outcome.drifted, (bool, np.bool_)):
        return f"its drifted is {outcome.drifted!r}, not a bool"
    return None
